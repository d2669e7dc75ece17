/*
 * vk_cache.c - the Vulkan pipeline cache on disk, so a second run skips shader compilation.
 *
 * One file per device, vkpipelines-VVVV-DDDD.bin (vendor and device ids) in the cache folder:
 * $LATHE_CACHE_DIR, else $LATHE_HOME/cache (the workspace's), else $XDG_CACHE_HOME/lathe, else
 * ~/.cache/lathe. LATHE_CACHE_DIR=off disables it. The file carries a header (magic, format
 * version, vendor, device, driver version, pipelineCacheUUID, data length, FNV-1a checksum)
 * and is checked when read: a short, corrupt or foreign file is ignored (a note on stderr
 * when LATHE_VK_DEBUG is set), never trusted and never fatal. It is written to a temporary
 * name, fsynced and renamed, so a crash never leaves half a cache.
 * Nothing here may fail the device: every error ends in "no cache".
 */
#include "vk_impl.h"
#include "vk_debug.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CACHE_MAGIC "LTVKPC\r\n"
#define CACHE_VERSION 1u
#define CACHE_MAX_BYTES ((size_t)256 << 20)

typedef struct cache_header {
    char magic[8];
    uint32_t version;
    uint32_t vendor_id, device_id, driver_version;
    uint8_t uuid[VK_UUID_SIZE];
    uint64_t data_bytes;
    uint64_t checksum; /* FNV-1a 64 of the data */
} cache_header;

static void note(const lt_vk *vk, const char *fmt, const char *a, const char *b)
{
    const char *d = getenv("LATHE_VK_DEBUG");
    if (!d || !d[0] || strcmp(d, "0") == 0)
        return;
    fprintf(stderr, "lathe %s: pipeline cache: ", vk->dev->name);
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
}

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static void fill_header(const lt_vk *vk, cache_header *h)
{
    memset(h, 0, sizeof *h);
    memcpy(h->magic, CACHE_MAGIC, 8);
    h->version = CACHE_VERSION;
    h->vendor_id = vk->props.vendorID;
    h->device_id = vk->props.deviceID;
    h->driver_version = vk->props.driverVersion;
    memcpy(h->uuid, vk->props.pipelineCacheUUID, VK_UUID_SIZE);
}

/* The cache folder into dir (dirlen bytes); false when caching is off or no folder is known. */
static bool cache_dir(char *dir, size_t dirlen)
{
    const char *e = getenv("LATHE_CACHE_DIR");
    if (e && strcmp(e, "off") == 0)
        return false;
    int n = -1;
    const char *home = getenv("HOME"), *ws = getenv("LATHE_HOME"), *xdg = getenv("XDG_CACHE_HOME");
    if (e && e[0])
        n = snprintf(dir, dirlen, "%s", e);
    else if (ws && ws[0])
        n = snprintf(dir, dirlen, "%s/cache", ws);
    else if (xdg && xdg[0])
        n = snprintf(dir, dirlen, "%s/lathe", xdg);
    else if (home && home[0])
        n = snprintf(dir, dirlen, "%s/.cache/lathe", home);
    return n > 0 && (size_t)n < dirlen;
}

/* mkdir -p; true when dir exists afterwards. */
static bool make_dirs(char *dir)
{
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        int r = mkdir(dir, 0755);
        *p = '/';
        if (r != 0 && errno != EEXIST)
            return false;
    }
    return mkdir(dir, 0755) == 0 || errno == EEXIST;
}

/* Read and check the file; returns malloc'd driver data (*bytes) or NULL. */
static void *read_cache(const lt_vk *vk, const char *path, size_t *bytes)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    void *data = NULL;
    const char *why = NULL;
    cache_header h, want;
    fill_header(vk, &want);
    if (fread(&h, sizeof h, 1, fp) != 1 || memcmp(h.magic, CACHE_MAGIC, 8) != 0 ||
        h.version != CACHE_VERSION)
        why = "not a lathe pipeline cache (or another version)";
    else if (h.vendor_id != want.vendor_id || h.device_id != want.device_id ||
             h.driver_version != want.driver_version || memcmp(h.uuid, want.uuid, VK_UUID_SIZE))
        why = "written for another device or driver";
    else if (h.data_bytes == 0 || h.data_bytes > CACHE_MAX_BYTES)
        why = "bad length";
    if (!why) {
        data = malloc((size_t)h.data_bytes);
        if (!data || fread(data, 1, (size_t)h.data_bytes, fp) != (size_t)h.data_bytes ||
            fgetc(fp) != EOF)
            why = "truncated or too long";
        else if (fnv1a(data, (size_t)h.data_bytes) != h.checksum)
            why = "checksum mismatch";
    }
    fclose(fp);
    if (why) {
        note(vk, "ignoring %s: %s", path, why);
        free(data);
        return NULL;
    }
    *bytes = (size_t)h.data_bytes;
    return data;
}

void lt_vk_cache_load(lt_vk *vk)
{
    char dir[3800];
    vk->pcache_path[0] = 0;
    vk->pcache_loaded = 0;
    if (cache_dir(dir, sizeof dir))
        snprintf(vk->pcache_path, sizeof vk->pcache_path, "%s/vkpipelines-%04x-%04x.bin", dir,
                 vk->props.vendorID, vk->props.deviceID);
    size_t bytes = 0;
    void *data = vk->pcache_path[0] ? read_cache(vk, vk->pcache_path, &bytes) : NULL;
    VkPipelineCacheCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO,
                                    .initialDataSize = data ? bytes : 0,
                                    .pInitialData = data};
    VkResult r = vk->f.vkCreatePipelineCache(vk->device, &ci, NULL, &vk->pcache);
    if (r != VK_SUCCESS && data) { /* the driver refused the data: start empty */
        note(vk, "the driver refused %s%s", vk->pcache_path, "");
        free(data);
        data = NULL;
        ci.initialDataSize = 0;
        ci.pInitialData = NULL;
        r = vk->f.vkCreatePipelineCache(vk->device, &ci, NULL, &vk->pcache);
    }
    if (r != VK_SUCCESS)
        vk->pcache = VK_NULL_HANDLE; /* pipelines are created without a cache */
    else if (data)
        vk->pcache_loaded = bytes;
    free(data);
}

void lt_vk_cache_save(lt_vk *vk)
{
    if (!vk->pcache || !vk->pcache_path[0] || vk->n_pipes == 0)
        return;
    size_t bytes = 0;
    if (vk->f.vkGetPipelineCacheData(vk->device, vk->pcache, &bytes, NULL) != VK_SUCCESS ||
        bytes == 0 || bytes > CACHE_MAX_BYTES || bytes == vk->pcache_loaded)
        return; /* nothing new (same size as read): keep the file as it is */
    uint8_t *data = malloc(bytes);
    if (!data)
        return;
    char dir[4096], tmp[4200];
    cache_header h;
    int fd = -1;
    if (vk->f.vkGetPipelineCacheData(vk->device, vk->pcache, &bytes, data) != VK_SUCCESS)
        goto free_data;
    fill_header(vk, &h);
    h.data_bytes = bytes;
    h.checksum = fnv1a(data, bytes);
    snprintf(dir, sizeof dir, "%s", vk->pcache_path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = 0;
        if (!make_dirs(dir)) {
            note(vk, "cannot create %s%s", dir, "");
            goto free_data;
        }
    }
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", vk->pcache_path, (long)getpid());
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        goto free_data;
    bool ok = write(fd, &h, sizeof h) == (ssize_t)sizeof h &&
              write(fd, data, bytes) == (ssize_t)bytes && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, vk->pcache_path) != 0) {
        note(vk, "cannot write %s%s", vk->pcache_path, "");
        unlink(tmp);
    }
free_data:
    free(data);
}

long lt_vk_pipeline_cache_loaded(const lt_device *dev)
{
    if (!dev || dev->kind != LT_DEVICE_VULKAN || !dev->impl)
        return -1;
    return (long)lt_vk_of(dev)->pcache_loaded;
}
