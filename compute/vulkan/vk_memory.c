/*
 * vk_memory.c - device memory for the Vulkan backend: tensors are carved first-fit out of a
 * few large device-local blocks (one VkBuffer each, addressed by buffer device address), a
 * staging buffer moves data to and from discrete GPUs (unified-memory devices are written
 * through a mapping instead), a small host-visible flag buffer lets shaders report bad ids,
 * and scratch allocations for multi-pass ops are released at the next sync.
 * It never records ops; uploads and downloads synchronise first.
 */
#include "vk_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALIGN 256u
#define DEFAULT_BLOCK (256ull << 20)
#define STAGING_BYTES (64ull << 20)
#define MIB(x) ((double)(x) / 1048576.0)

static VkDeviceSize round_up(VkDeviceSize x, VkDeviceSize a) { return (x + a - 1) / a * a; }

static const VkBufferUsageFlags TENSOR_USAGE =
    VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_SHADER_DEVICE_ADDRESS_BIT |
    VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT |
    VK_BUFFER_USAGE_UNIFORM_TEXEL_BUFFER_BIT; /* matmul inputs are read as texel buffers */

/* Memory type with all of want in its flags among bits; UINT32_MAX if none. */
static uint32_t find_type(const lt_vk *vk, uint32_t bits, VkMemoryPropertyFlags want)
{
    for (uint32_t i = 0; i < vk->memprops.memoryTypeCount; i++)
        if ((bits & (1u << i)) && (vk->memprops.memoryTypes[i].propertyFlags & want) == want)
            return i;
    return UINT32_MAX;
}

/* Create a buffer + memory of bytes with type index ti; maps it when host-visible. */
static VkResult make_buffer(lt_vk *vk, VkDeviceSize bytes, VkBufferUsageFlags usage,
                            uint32_t ti, bool bda, VkBuffer *buf, VkDeviceMemory *mem,
                            void **mapped)
{
    const lt_vk_fns *f = &vk->f;
    *buf = VK_NULL_HANDLE;
    *mem = VK_NULL_HANDLE;
    if (mapped)
        *mapped = NULL;
    VkBufferCreateInfo bci = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
                              .size = bytes,
                              .usage = usage,
                              .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    VkResult r = f->vkCreateBuffer(vk->device, &bci, NULL, buf);
    if (r != VK_SUCCESS) {
        *buf = VK_NULL_HANDLE;
        return r;
    }
    VkMemoryRequirements req;
    f->vkGetBufferMemoryRequirements(vk->device, *buf, &req);
    if (!(req.memoryTypeBits & (1u << ti))) {
        r = VK_ERROR_FEATURE_NOT_PRESENT;
        goto destroy_buffer;
    }
    VkMemoryAllocateFlagsInfo flags = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_FLAGS_INFO,
                                       .flags = VK_MEMORY_ALLOCATE_DEVICE_ADDRESS_BIT};
    VkMemoryAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
                               .pNext = bda ? &flags : NULL,
                               .allocationSize = req.size,
                               .memoryTypeIndex = ti};
    r = f->vkAllocateMemory(vk->device, &ai, NULL, mem);
    if (r != VK_SUCCESS) {
        *mem = VK_NULL_HANDLE;
        goto destroy_buffer;
    }
    r = f->vkBindBufferMemory(vk->device, *buf, *mem, 0);
    if (r != VK_SUCCESS)
        goto free_memory;
    if (mapped && (vk->memprops.memoryTypes[ti].propertyFlags & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT)) {
        r = f->vkMapMemory(vk->device, *mem, 0, VK_WHOLE_SIZE, 0, mapped);
        if (r != VK_SUCCESS)
            goto free_memory;
    }
    return VK_SUCCESS;
free_memory:
    f->vkFreeMemory(vk->device, *mem, NULL);
    *mem = VK_NULL_HANDLE;
destroy_buffer:
    f->vkDestroyBuffer(vk->device, *buf, NULL);
    *buf = VK_NULL_HANDLE;
    return r;
}

static void drop_buffer(lt_vk *vk, VkBuffer *buf, VkDeviceMemory *mem)
{
    if (*buf)
        vk->f.vkDestroyBuffer(vk->device, *buf, NULL);
    if (*mem)
        vk->f.vkFreeMemory(vk->device, *mem, NULL); /* unmaps implicitly */
    *buf = VK_NULL_HANDLE;
    *mem = VK_NULL_HANDLE;
}

lt_status lt_vk_memory_init(lt_vk *vk)
{
    lt_device *dev = vk->dev;
    /* the memory types a tensor buffer may use */
    VkBuffer probe;
    VkBufferCreateInfo bci = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
                              .size = 4096,
                              .usage = TENSOR_USAGE,
                              .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    VkResult r = vk->f.vkCreateBuffer(vk->device, &bci, NULL, &probe);
    if (r != VK_SUCCESS)
        return lt_vk_fail(vk, "vkCreateBuffer", r);
    VkMemoryRequirements req;
    vk->f.vkGetBufferMemoryRequirements(vk->device, probe, &req);
    vk->f.vkDestroyBuffer(vk->device, probe, NULL);

    const VkMemoryPropertyFlags local = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT;
    const VkMemoryPropertyFlags host =
        VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    bool unified_kind = vk->props.deviceType == VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU ||
                        vk->props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU;
    uint32_t ti = UINT32_MAX;
    if (unified_kind)
        ti = find_type(vk, req.memoryTypeBits, local | host);
    vk->unified = ti != UINT32_MAX;
    if (ti == UINT32_MAX)
        ti = find_type(vk, req.memoryTypeBits, local);
    if (ti == UINT32_MAX)
        ti = find_type(vk, req.memoryTypeBits, 0);
    if (ti == UINT32_MAX)
        return lt_dev_error(dev, LT_ERR_UNSUPPORTED, "%s: no memory type for storage buffers",
                            dev->name);
    vk->device_type_index = ti;
    vk->heap_bytes = vk->memprops.memoryHeaps[vk->memprops.memoryTypes[ti].heapIndex].size;
    vk->block_bytes = DEFAULT_BLOCK;
    if (vk->info.max_allocation_bytes && vk->block_bytes > vk->info.max_allocation_bytes)
        vk->block_bytes = vk->info.max_allocation_bytes;
    if (vk->block_bytes > vk->heap_bytes / 4)
        vk->block_bytes = vk->heap_bytes / 4;

    vk->staging_type_index = UINT32_MAX;
    if (!vk->unified) {
        vk->staging_type_index = find_type(vk, 0xffffffffu, host | VK_MEMORY_PROPERTY_HOST_CACHED_BIT);
        if (vk->staging_type_index == UINT32_MAX)
            vk->staging_type_index = find_type(vk, 0xffffffffu, host);
        if (vk->staging_type_index == UINT32_MAX)
            return lt_dev_error(dev, LT_ERR_UNSUPPORTED,
                                "%s: no host-visible memory for staging", dev->name);
        vk->staging_bytes = STAGING_BYTES;
        r = make_buffer(vk, vk->staging_bytes,
                        VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                        vk->staging_type_index, false, &vk->staging, &vk->staging_mem,
                        &vk->staging_map);
        if (r != VK_SUCCESS)
            return lt_vk_fail(vk, "staging buffer allocation", r);
    }
    uint32_t fti = find_type(vk, 0xffffffffu, host);
    if (fti == UINT32_MAX)
        return lt_dev_error(dev, LT_ERR_UNSUPPORTED, "%s: no host-visible memory", dev->name);
    void *fm = NULL;
    r = make_buffer(vk, 256, VK_BUFFER_USAGE_STORAGE_BUFFER_BIT |
                                 VK_BUFFER_USAGE_SHADER_DEVICE_ADDRESS_BIT,
                    fti, true, &vk->flag_buf, &vk->flag_mem, &fm);
    if (r != VK_SUCCESS || !fm)
        return lt_vk_fail(vk, "flag buffer allocation", r != VK_SUCCESS ? r : VK_ERROR_MEMORY_MAP_FAILED);
    vk->flag_map = fm;
    memset(vk->flag_map, 0, 256);
    VkBufferDeviceAddressInfo bai = {.sType = VK_STRUCTURE_TYPE_BUFFER_DEVICE_ADDRESS_INFO,
                                     .buffer = vk->flag_buf};
    vk->flag_addr = vk->f.vkGetBufferDeviceAddress(vk->device, &bai);
    return LT_OK;
}

void lt_vk_memory_free(lt_vk *vk)
{
    lt_vk_release_deferred(vk);
    free(vk->deferred);
    vk->deferred = NULL;
    for (int i = 0; i < vk->n_blocks; i++) {
        drop_buffer(vk, &vk->blocks[i].buf, &vk->blocks[i].mem);
        free(vk->blocks[i].free_list);
    }
    vk->n_blocks = 0;
    drop_buffer(vk, &vk->staging, &vk->staging_mem);
    drop_buffer(vk, &vk->flag_buf, &vk->flag_mem);
}

/* Bytes lathe holds in blocks, and bytes of the heap it could still get. */
static VkDeviceSize blocks_total(const lt_vk *vk)
{
    VkDeviceSize s = 0;
    for (int i = 0; i < vk->n_blocks; i++)
        s += vk->blocks[i].size;
    return s;
}

static lt_status oom(lt_vk *vk, size_t bytes, const char *why)
{
    VkDeviceSize total = blocks_total(vk), used = 0;
    for (int i = 0; i < vk->n_blocks; i++)
        used += vk->blocks[i].used;
    VkDeviceSize avail = vk->heap_bytes > total ? vk->heap_bytes - total : 0;
    avail += total - used;
    return lt_dev_error(vk->dev, LT_ERR_OOM,
                        "%s: out of device memory: asked for %zu bytes (%.1f MiB), about %llu "
                        "bytes (%.1f MiB) available (heap %.1f MiB, %.1f MiB in use by "
                        "lathe)%s%s",
                        vk->dev->name, bytes, MIB(bytes), (unsigned long long)avail, MIB(avail),
                        MIB(vk->heap_bytes), MIB(used), why ? ": " : "", why ? why : "");
}

static lt_status add_block(lt_vk *vk, VkDeviceSize bytes, int *index)
{
    if (vk->n_blocks >= LT_VK_MAX_BLOCKS)
        return oom(vk, (size_t)bytes, "too many memory blocks");
    if (blocks_total(vk) + bytes > vk->heap_bytes)
        return oom(vk, (size_t)bytes, NULL);
    if (vk->info.max_allocation_bytes && bytes > vk->info.max_allocation_bytes)
        return oom(vk, (size_t)bytes, "larger than the device's maxMemoryAllocationSize");
    lt_vk_block *b = &vk->blocks[vk->n_blocks];
    memset(b, 0, sizeof *b);
    VkResult r = make_buffer(vk, bytes, TENSOR_USAGE, vk->device_type_index, true, &b->buf,
                             &b->mem, vk->unified ? &b->mapped : NULL);
    if (r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY)
        return oom(vk, (size_t)bytes, lt_vk_result_str(r));
    if (r != VK_SUCCESS)
        return lt_vk_fail(vk, "device memory allocation", r);
    VkBufferDeviceAddressInfo bai = {.sType = VK_STRUCTURE_TYPE_BUFFER_DEVICE_ADDRESS_INFO,
                                     .buffer = b->buf};
    b->addr = vk->f.vkGetBufferDeviceAddress(vk->device, &bai);
    b->size = bytes;
    b->free_list = malloc(8 * sizeof *b->free_list);
    if (!b->free_list) {
        drop_buffer(vk, &b->buf, &b->mem);
        return lt_dev_error(vk->dev, LT_ERR_OOM, "%s: out of host memory", vk->dev->name);
    }
    b->cap_free = 8;
    b->n_free = 1;
    b->free_list[0] = (lt_vk_span){0, bytes};
    *index = vk->n_blocks++;
    return LT_OK;
}

/* First fit in block bi; returns true and the offset when it fits. */
static bool take(lt_vk_block *b, VkDeviceSize bytes, VkDeviceSize *offset)
{
    for (int i = 0; i < b->n_free; i++) {
        lt_vk_span *s = &b->free_list[i];
        if (s->size < bytes)
            continue;
        *offset = s->offset;
        s->offset += bytes;
        s->size -= bytes;
        if (s->size == 0) {
            memmove(s, s + 1, (size_t)(b->n_free - i - 1) * sizeof *s);
            b->n_free--;
        }
        b->used += bytes;
        b->n_allocs++;
        return true;
    }
    return false;
}

/* Return [offset, offset + bytes) to block b, coalescing; false on host OOM. */
static bool give_back(lt_vk_block *b, VkDeviceSize offset, VkDeviceSize bytes)
{
    int i = 0;
    while (i < b->n_free && b->free_list[i].offset < offset)
        i++;
    bool merge_prev = i > 0 && b->free_list[i - 1].offset + b->free_list[i - 1].size == offset;
    bool merge_next = i < b->n_free && offset + bytes == b->free_list[i].offset;
    if (merge_prev && merge_next) {
        b->free_list[i - 1].size += bytes + b->free_list[i].size;
        memmove(&b->free_list[i], &b->free_list[i + 1],
                (size_t)(b->n_free - i - 1) * sizeof *b->free_list);
        b->n_free--;
    } else if (merge_prev) {
        b->free_list[i - 1].size += bytes;
    } else if (merge_next) {
        b->free_list[i].offset = offset;
        b->free_list[i].size += bytes;
    } else {
        if (b->n_free == b->cap_free) {
            lt_vk_span *n = realloc(b->free_list, (size_t)b->cap_free * 2 * sizeof *n);
            if (!n)
                return false; /* the span leaks inside the block; never corrupts */
            b->free_list = n;
            b->cap_free *= 2;
        }
        memmove(&b->free_list[i + 1], &b->free_list[i],
                (size_t)(b->n_free - i) * sizeof *b->free_list);
        b->free_list[i] = (lt_vk_span){offset, bytes};
        b->n_free++;
    }
    b->used -= bytes;
    b->n_allocs--;
    return true;
}

lt_status lt_vk_alloc_bytes(lt_device *dev, size_t bytes, void **buf)
{
    lt_vk *vk = lt_vk_of(dev);
    *buf = NULL;
    if (bytes > (size_t)1 << 46)
        return oom(vk, bytes, NULL);
    VkDeviceSize need = round_up(bytes ? bytes : 1, ALIGN);
    lt_vk_alloc *a = calloc(1, sizeof *a);
    if (!a)
        return lt_dev_error(dev, LT_ERR_OOM, "%s: out of host memory", dev->name);
    int bi = -1;
    VkDeviceSize off = 0;
    for (int i = 0; i < vk->n_blocks && bi < 0; i++)
        if (take(&vk->blocks[i], need, &off))
            bi = i;
    if (bi < 0) {
        VkDeviceSize bytes_block = need > vk->block_bytes ? need : vk->block_bytes;
        /* near the end of the heap, a block only as large as asked for */
        if (blocks_total(vk) + bytes_block > vk->heap_bytes)
            bytes_block = need;
        lt_status st = add_block(vk, bytes_block, &bi);
        if (st != LT_OK) {
            free(a);
            return st;
        }
        take(&vk->blocks[bi], need, &off);
    }
    a->block = bi;
    a->offset = off;
    a->size = need;
    a->addr = vk->blocks[bi].addr + off;
    *buf = a;
    return LT_OK;
}

/* Give an allocation back to its block; an empty last block goes back to the driver. */
static void free_alloc(lt_vk *vk, lt_vk_alloc *a)
{
    int bi = a->block;
    lt_vk_block *b = &vk->blocks[bi];
    give_back(b, a->offset, a->size);
    free(a);
    while (vk->n_blocks > 1 && vk->blocks[vk->n_blocks - 1].n_allocs == 0) {
        b = &vk->blocks[vk->n_blocks - 1];
        drop_buffer(vk, &b->buf, &b->mem);
        free(b->free_list);
        memset(b, 0, sizeof *b);
        vk->n_blocks--;
    }
}

static bool defer(lt_vk *vk, lt_vk_alloc *a)
{
    if (vk->n_deferred == vk->cap_deferred) {
        int cap = vk->cap_deferred ? vk->cap_deferred * 2 : 16;
        lt_vk_alloc **n = realloc(vk->deferred, (size_t)cap * sizeof *n);
        if (!n)
            return false;
        vk->deferred = n;
        vk->cap_deferred = cap;
    }
    vk->deferred[vk->n_deferred++] = a;
    return true;
}

void lt_vk_release(lt_device *dev, void *buf)
{
    lt_vk *vk = lt_vk_of(dev);
    lt_vk_alloc *a = buf;
    if (!a)
        return;
    /* recorded work may still read it: keep it until the next sync */
    if (lt_vk_busy(vk) && defer(vk, a))
        return;
    if (lt_vk_busy(vk))
        lt_vk_flush(vk);
    free_alloc(vk, a);
}

lt_status lt_vk_scratch(lt_vk *vk, size_t bytes, VkDeviceAddress *addr)
{
    void *buf;
    lt_status st = lt_vk_alloc_bytes(vk->dev, bytes, &buf);
    if (st != LT_OK)
        return st;
    if (!defer(vk, buf)) {
        free_alloc(vk, buf);
        return lt_dev_error(vk->dev, LT_ERR_OOM, "%s: out of host memory", vk->dev->name);
    }
    *addr = ((lt_vk_alloc *)buf)->addr;
    return LT_OK;
}

/* Called when no recorded work is pending. */
void lt_vk_release_deferred(lt_vk *vk)
{
    int n = vk->n_deferred;
    vk->n_deferred = 0;
    for (int i = n - 1; i >= 0; i--)
        free_alloc(vk, vk->deferred[i]);
}

/* Copy between a tensor's bytes and the staging buffer, one chunk at a time. */
static lt_status staged_copy(lt_vk *vk, const lt_tensor *t, void *host, size_t bytes, bool up)
{
    const lt_vk_alloc *a = t->buf;
    VkBuffer dst = vk->blocks[a->block].buf;
    VkDeviceSize base = a->offset + t->offset;
    for (size_t done = 0; done < bytes;) {
        size_t n = bytes - done;
        if (n > vk->staging_bytes)
            n = (size_t)vk->staging_bytes;
        if (up)
            memcpy(vk->staging_map, (char *)host + done, n);
        VkBufferCopy region = {.srcOffset = up ? 0 : base + done,
                               .dstOffset = up ? base + done : 0,
                               .size = n};
        VkCommandBuffer cb;
        lt_status st = lt_vk_command_buffer(vk, &cb);
        if (st != LT_OK)
            return st;
        if (up)
            vk->f.vkCmdCopyBuffer(cb, vk->staging, dst, 1, &region);
        else
            vk->f.vkCmdCopyBuffer(cb, dst, vk->staging, 1, &region);
        st = lt_vk_flush(vk);
        if (st != LT_OK)
            return st;
        if (!up)
            memcpy((char *)host + done, vk->staging_map, n);
        done += n;
    }
    return LT_OK;
}

lt_status lt_vk_upload(lt_device *dev, lt_tensor *t, const void *src, size_t bytes)
{
    lt_vk *vk = lt_vk_of(dev);
    lt_status st = lt_vk_flush(vk); /* ops recorded earlier see the old contents */
    if (st != LT_OK)
        return st;
    const lt_vk_alloc *a = t->buf;
    if (vk->unified) {
        memcpy((char *)vk->blocks[a->block].mapped + a->offset + t->offset, src, bytes);
        return LT_OK;
    }
    return staged_copy(vk, t, (void *)src, bytes, true);
}

lt_status lt_vk_download(lt_device *dev, const lt_tensor *t, void *dst, size_t bytes)
{
    lt_vk *vk = lt_vk_of(dev);
    lt_status st = lt_vk_sync(dev);
    if (st != LT_OK)
        return st;
    const lt_vk_alloc *a = t->buf;
    if (vk->unified) {
        memcpy(dst, (char *)vk->blocks[a->block].mapped + a->offset + t->offset, bytes);
        return LT_OK;
    }
    return staged_copy(vk, t, dst, bytes, false);
}
