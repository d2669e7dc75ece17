/*
 * device.c - the compute front end's device and tensor half: status and dtype strings, scalar
 * f16/bf16 conversions, opening and closing devices, tensor and view lifetimes, memory
 * accounting, profiling tables and host<->device copies.
 *
 * Every argument is checked here before a backend sees it; a backend is only asked to
 * allocate, copy or run an op with arguments that passed. Nothing in this file aborts on bad
 * input: it writes a message with lt_dev_error() and returns a status.
 */
#include "compute_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- strings ---------------------------------------------------------------------------- */

const char *lt_status_str(lt_status s)
{
    switch (s) {
    case LT_OK: return "ok";
    case LT_ERR_ARG: return "bad argument";
    case LT_ERR_SHAPE: return "shape mismatch";
    case LT_ERR_DTYPE: return "unsupported dtype";
    case LT_ERR_DEVICE_MISMATCH: return "tensors on different devices";
    case LT_ERR_OOM: return "out of memory";
    case LT_ERR_DEVICE: return "device failure";
    case LT_ERR_UNSUPPORTED: return "unsupported by the device";
    case LT_ERR_NOT_FOUND: return "no such device";
    }
    return "unknown status";
}

const char *lt_dtype_name(lt_dtype dt)
{
    switch (dt) {
    case LT_F32: return "f32";
    case LT_F16: return "f16";
    case LT_BF16: return "bf16";
    case LT_I32: return "i32";
    case LT_NF4: return "nf4";
    case LT_DTYPE_COUNT: break;
    }
    return "invalid";
}

size_t lt_dtype_size(lt_dtype dt)
{
    switch (dt) {
    case LT_F32: return 4;
    case LT_F16: return 2;
    case LT_BF16: return 2;
    case LT_I32: return 4;
    case LT_NF4: return 0;
    case LT_DTYPE_COUNT: break;
    }
    return 0;
}

bool lt_dtype_is_float(lt_dtype dt) { return dt == LT_F32 || dt == LT_F16 || dt == LT_BF16; }

/* ---- scalar conversions ----------------------------------------------------------------- */

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t lt_f32_to_f16(float f)
{
    uint32_t x = f32_bits(f);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) /* NaN: keep it a (quiet) NaN, keep the top payload bits */
        return (uint16_t)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));
    if (ax >= 0x477ff000u) /* >= 65520 rounds to infinity (and infinity itself) */
        return (uint16_t)(sign | 0x7c00u);
    if (ax >= 0x38800000u) { /* normal f16: rebias, round the 13 dropped bits to even */
        uint32_t odd = (ax >> 13) & 1u;
        ax += 0xfffu + odd;
        ax -= 112u << 23;
        return (uint16_t)(sign | (ax >> 13));
    }
    /* subnormal or zero: adding 0.5 puts the f16 subnormal ulp (2^-24) at the float's last
     * mantissa bit, so the FPU does the round-to-nearest-even for us */
    float t = bits_f32(ax) + 0.5f;
    return (uint16_t)(sign | (f32_bits(t) - 0x3f000000u));
}

float lt_f16_to_f32(uint16_t h)
{
    uint32_t sign = ((uint32_t)h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1fu;
    uint32_t m = h & 0x3ffu;
    if (e == 0) {
        float v = (float)m * (1.0f / 16777216.0f); /* m * 2^-24, exact */
        return sign ? -v : v;
    }
    if (e == 31)
        return bits_f32(sign | 0x7f800000u | (m << 13));
    return bits_f32(sign | ((e + 112u) << 23) | (m << 13));
}

uint16_t lt_f32_to_bf16(float f)
{
    uint32_t x = f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) /* NaN: quiet it, keep the sign */
        return (uint16_t)((x >> 16) | 0x0040u);
    x += 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

float lt_bf16_to_f32(uint16_t b) { return bits_f32((uint32_t)b << 16); }

/* ---- errors ----------------------------------------------------------------------------- */

lt_status lt_dev_error(lt_device *dev, lt_status status, const char *fmt, ...)
{
    if (dev) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(dev->err, sizeof dev->err, fmt, ap);
        va_end(ap);
        if (status == LT_ERR_OOM && dev->oom_hint[0] && !strstr(dev->err, dev->oom_hint)) {
            size_t n = strlen(dev->err);
            snprintf(dev->err + n, sizeof dev->err - n, "; %s", dev->oom_hint);
        }
    }
    return status;
}

void lt_device_set_oom_hint(lt_device *dev, const char *hint)
{
    if (dev)
        snprintf(dev->oom_hint, sizeof dev->oom_hint, "%s", hint ? hint : "");
}

/* MemAvailable from /proc/meminfo in bytes; false when it cannot be read. */
static bool host_mem_available(uint64_t *bytes)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f)
        return false;
    char line[256];
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) {
        unsigned long long kib;
        if (sscanf(line, "MemAvailable: %llu kB", &kib) == 1) {
            *bytes = (uint64_t)kib * 1024;
            found = true;
        }
    }
    fclose(f);
    return found;
}

bool lt_device_mem_budget(const lt_device *dev, uint64_t *budget_bytes, uint64_t *usage_bytes)
{
    uint64_t b = 0, u = 0, avail = 0;
    bool ok = false;
    if (dev && dev->be && dev->be->mem_budget) {
        ok = dev->be->mem_budget((lt_device *)dev, &b, &u);
    } else if (dev && host_mem_available(&avail)) {
        u = dev->mem_in_use;
        b = avail + u;
        ok = true;
    }
    if (!ok)
        b = u = 0;
    if (budget_bytes)
        *budget_bytes = b;
    if (usage_bytes)
        *usage_bytes = u;
    return ok;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- devices ---------------------------------------------------------------------------- */

/* Parses "vulkan:N"; returns N or -1. */
static int parse_vulkan_index(const char *spec)
{
    if (strncmp(spec, "vulkan:", 7) != 0)
        return -1;
    const char *p = spec + 7;
    if (*p < '0' || *p > '9')
        return -1;
    char *end = NULL;
    long n = strtol(p, &end, 10);
    if (*end || n < 0 || n > 1024)
        return -1;
    return (int)n;
}

lt_device *lt_device_open(const char *spec, int n_threads, char *err, size_t errlen)
{
    set_err(err, errlen, "%s", "");
    if (!spec) {
        const char *env = getenv("LATHE_DEVICE");
        spec = (env && *env) ? env : "auto";
    }
    if (n_threads < 0) {
        set_err(err, errlen, "n_threads must be >= 0 (0 = all usable cores), got %d", n_threads);
        return NULL;
    }
    lt_device *dev = calloc(1, sizeof *dev);
    if (!dev) {
        set_err(err, errlen, "out of memory opening device '%s'", spec);
        return NULL;
    }
    lt_status st;
    if (strcmp(spec, "cpu") == 0) {
        st = lt_cpu_backend_init(dev, n_threads, err, errlen);
        if (st != LT_OK)
            goto fail_free;
    } else if (strcmp(spec, "auto") == 0) {
        int idx = lt_vk_auto_index();
        st = LT_ERR_NOT_FOUND;
        if (idx >= 0) {
            st = lt_vk_backend_init(dev, idx, err, errlen);
            if (st != LT_OK) /* a GPU that fails to start: fall back to the CPU */
                memset(dev, 0, sizeof *dev);
        }
        if (st != LT_OK) {
            st = lt_cpu_backend_init(dev, n_threads, err, errlen);
            if (st != LT_OK)
                goto fail_free;
        }
    } else {
        int idx = parse_vulkan_index(spec);
        if (idx < 0) {
            set_err(err, errlen, "unknown device '%s': expected cpu, vulkan:N or auto", spec);
            goto fail_free;
        }
        st = lt_vk_backend_init(dev, idx, err, errlen);
        if (st != LT_OK)
            goto fail_free;
        if (dev->n_threads <= 0)
            dev->n_threads = 1;
    }
    dev->err[0] = '\0';
    set_err(err, errlen, "%s", "");
    return dev;

fail_free:
    free(dev);
    return NULL;
}

static void tensor_unlink(lt_tensor *t)
{
    lt_device *dev = t->dev;
    if (t->prev)
        t->prev->next = t->next;
    else
        dev->tensors = t->next;
    if (t->next)
        t->next->prev = t->prev;
}

static void tensor_release(lt_tensor *t)
{
    lt_device *dev = t->dev;
    if (!t->parent && t->buf) {
        dev->be->release(dev, t->buf);
        dev->mem_in_use -= t->alloc_bytes;
    }
    free(t);
}

void lt_device_close(lt_device *dev)
{
    if (!dev)
        return;
    if (dev->be)
        dev->be->sync(dev);
    /* views first, so no parent's memory is released while a view still names it */
    for (int pass = 0; pass < 2; pass++) {
        lt_tensor *t = dev->tensors;
        while (t) {
            lt_tensor *next = t->next;
            if ((pass == 0) == (t->parent != NULL)) {
                tensor_unlink(t);
                tensor_release(t);
            }
            t = next;
        }
    }
    if (dev->be && dev->be->close)
        dev->be->close(dev);
    free(dev);
}

lt_device_kind lt_device_get_kind(const lt_device *dev) { return dev ? dev->kind : LT_DEVICE_CPU; }
const char *lt_device_name(const lt_device *dev) { return dev ? dev->name : "(no device)"; }
int lt_device_threads(const lt_device *dev) { return dev ? dev->n_threads : 0; }
const char *lt_device_last_error(const lt_device *dev) { return dev ? dev->err : "no device"; }

lt_status lt_device_sync(lt_device *dev)
{
    if (!dev)
        return LT_ERR_ARG;
    return dev->be->sync(dev);
}

size_t lt_device_mem_in_use(const lt_device *dev) { return dev ? dev->mem_in_use : 0; }
size_t lt_device_mem_peak(const lt_device *dev) { return dev ? dev->mem_peak : 0; }
void lt_device_reset_peak(lt_device *dev)
{
    if (dev) {
        dev->mem_peak = dev->mem_in_use;
        dev->host_peak = dev->host_in_use;
    }
}

void lt_device_host_mem_add(lt_device *dev, int64_t delta_bytes)
{
    if (!dev)
        return;
    if (delta_bytes < 0 && (size_t)(-delta_bytes) > dev->host_in_use)
        dev->host_in_use = 0; /* a release larger than what was registered: clamp */
    else
        dev->host_in_use = (size_t)((int64_t)dev->host_in_use + delta_bytes);
    if (dev->host_in_use > dev->host_peak)
        dev->host_peak = dev->host_in_use;
}
size_t lt_device_host_mem_in_use(const lt_device *dev) { return dev ? dev->host_in_use : 0; }
size_t lt_device_host_mem_peak(const lt_device *dev) { return dev ? dev->host_peak : 0; }

void lt_device_set_profiling(lt_device *dev, bool on)
{
    if (!dev)
        return;
    dev->profiling = on;
    if (on) {
        dev->n_profile = 0;
        memset(dev->profile, 0, sizeof dev->profile);
    }
}

int lt_device_profile(const lt_device *dev, lt_profile_entry *out, int max)
{
    if (!dev)
        return 0;
    for (int i = 0; i < dev->n_profile && i < max && out; i++)
        out[i] = dev->profile[i];
    return dev->n_profile;
}

/* ---- tensors ---------------------------------------------------------------------------- */

static void tensor_link(lt_device *dev, lt_tensor *t)
{
    t->dev = dev;
    t->prev = NULL;
    t->next = dev->tensors;
    if (dev->tensors)
        dev->tensors->prev = t;
    dev->tensors = t;
}

static lt_status check_shape(lt_device *dev, const char *fn, int ndim, const int64_t *shape,
                             int64_t *numel)
{
    if (ndim < 1 || ndim > LT_MAX_DIMS)
        return lt_dev_error(dev, LT_ERR_ARG, "%s: ndim must be 1..%d, got %d", fn, LT_MAX_DIMS,
                            ndim);
    if (!shape)
        return lt_dev_error(dev, LT_ERR_ARG, "%s: shape is NULL", fn);
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 1 || shape[i] > ((int64_t)1 << 40))
            return lt_dev_error(dev, LT_ERR_ARG, "%s: dim %d is %lld, expected 1..2^40", fn, i,
                                (long long)shape[i]);
        if (n > ((int64_t)1 << 42) / shape[i])
            return lt_dev_error(dev, LT_ERR_ARG, "%s: shape has more than 2^42 elements", fn);
        n *= shape[i];
    }
    *numel = n;
    return LT_OK;
}

/* Bytes of a tensor's memory: packed codes and scales for NF4. */
static size_t tensor_bytes_of(lt_dtype dt, int64_t numel, bool nf4_dq)
{
    if (dt == LT_NF4)
        return lt_nf4_bytes(numel, nf4_dq);
    return (size_t)numel * lt_dtype_size(dt);
}

static lt_tensor *tensor_new(lt_device *dev, lt_dtype dt, int ndim, const int64_t *shape,
                             bool nf4_dq);

lt_tensor *lt_tensor_new(lt_device *dev, lt_dtype dt, int ndim, const int64_t *shape)
{
    return tensor_new(dev, dt, ndim, shape, false);
}

lt_tensor *lt_tensor_new_nf4(lt_device *dev, int ndim, const int64_t *shape, bool double_quant)
{
    return tensor_new(dev, LT_NF4, ndim, shape, double_quant);
}

bool lt_tensor_nf4_double_quant(const lt_tensor *t) { return t && t->nf4_dq; }

static lt_tensor *tensor_new(lt_device *dev, lt_dtype dt, int ndim, const int64_t *shape,
                             bool nf4_dq)
{
    if (!dev)
        return NULL;
    int64_t numel;
    if (check_shape(dev, "lt_tensor_new", ndim, shape, &numel) != LT_OK)
        return NULL;
    if ((unsigned)dt >= LT_DTYPE_COUNT) {
        lt_dev_error(dev, LT_ERR_DTYPE, "lt_tensor_new: invalid dtype %d", (int)dt);
        return NULL;
    }
    lt_tensor *t = calloc(1, sizeof *t);
    if (!t) {
        lt_dev_error(dev, LT_ERR_OOM, "lt_tensor_new: out of host memory");
        return NULL;
    }
    t->dtype = dt;
    t->ndim = ndim;
    memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    t->numel = numel;
    t->nf4_dq = dt == LT_NF4 && nf4_dq;
    size_t bytes = tensor_bytes_of(dt, numel, t->nf4_dq);
    if (dev->be->alloc(dev, bytes, &t->buf) != LT_OK) {
        char d[96];
        t->dev = dev;
        size_t keep = strlen(dev->err);
        char prev[1536];
        snprintf(prev, sizeof prev, "%.1500s", keep ? dev->err : "allocation failed");
        char budget[384] = ""; /* the Vulkan backend's message has these figures already */
        uint64_t b, u;
        if (dev->kind == LT_DEVICE_CPU && lt_device_mem_budget(dev, &b, &u))
            snprintf(budget, sizeof budget,
                     " (%s: lathe has %zu bytes in use; budget %llu bytes: MemAvailable + "
                     "lathe's)",
                     dev->name, dev->mem_in_use, (unsigned long long)b);
        lt_dev_error(dev, LT_ERR_OOM, "lt_tensor_new: cannot allocate %s (%zu bytes)%s: %s",
                     lt_tensor_describe(t, d, sizeof d), bytes, budget, prev);
        free(t);
        return NULL;
    }
    t->alloc_bytes = bytes;
    dev->mem_in_use += bytes;
    if (dev->mem_in_use > dev->mem_peak)
        dev->mem_peak = dev->mem_in_use;
    tensor_link(dev, t);
    return t;
}

lt_tensor *lt_tensor_new_1d(lt_device *dev, lt_dtype dt, int64_t n0)
{
    int64_t s[1] = {n0};
    return lt_tensor_new(dev, dt, 1, s);
}

lt_tensor *lt_tensor_new_2d(lt_device *dev, lt_dtype dt, int64_t n0, int64_t n1)
{
    int64_t s[2] = {n0, n1};
    return lt_tensor_new(dev, dt, 2, s);
}

lt_tensor *lt_tensor_new_3d(lt_device *dev, lt_dtype dt, int64_t n0, int64_t n1, int64_t n2)
{
    int64_t s[3] = {n0, n1, n2};
    return lt_tensor_new(dev, dt, 3, s);
}

lt_tensor *lt_tensor_new_4d(lt_device *dev, lt_dtype dt, int64_t n0, int64_t n1, int64_t n2,
                            int64_t n3)
{
    int64_t s[4] = {n0, n1, n2, n3};
    return lt_tensor_new(dev, dt, 4, s);
}

lt_tensor *lt_tensor_view(lt_tensor *parent, int64_t offset, int ndim, const int64_t *shape)
{
    if (!parent)
        return NULL;
    lt_device *dev = parent->dev;
    int64_t numel;
    char d[96];
    if (check_shape(dev, "lt_tensor_view", ndim, shape, &numel) != LT_OK)
        return NULL;
    if (parent->dtype == LT_NF4) {
        lt_dev_error(dev, LT_ERR_DTYPE,
                     "lt_tensor_view: %s '%s' is NF4 (packed codes and scales); NF4 tensors "
                     "have no views",
                     lt_tensor_describe(parent, d, sizeof d), parent->name);
        return NULL;
    }
    if (offset < 0 || offset > parent->numel || numel > parent->numel - offset) {
        lt_dev_error(dev, LT_ERR_SHAPE,
                     "lt_tensor_view: elements [%lld, %lld) leave parent %s '%s' of %lld "
                     "elements",
                     (long long)offset, (long long)(offset + numel),
                     lt_tensor_describe(parent, d, sizeof d), parent->name,
                     (long long)parent->numel);
        return NULL;
    }
    lt_tensor *t = calloc(1, sizeof *t);
    if (!t) {
        lt_dev_error(dev, LT_ERR_OOM, "lt_tensor_view: out of host memory");
        return NULL;
    }
    lt_tensor *root = parent->parent ? parent->parent : parent;
    t->dtype = parent->dtype;
    t->ndim = ndim;
    memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    t->numel = numel;
    t->buf = parent->buf;
    t->offset = parent->offset + (size_t)offset * lt_dtype_size(parent->dtype);
    t->alloc_bytes = 0;
    t->parent = root;
    tensor_link(dev, t);
    return t;
}

void lt_tensor_free(lt_tensor *t)
{
    if (!t)
        return;
    tensor_unlink(t);
    tensor_release(t);
}

lt_device *lt_tensor_device(const lt_tensor *t) { return t ? t->dev : NULL; }
lt_dtype lt_tensor_dtype(const lt_tensor *t) { return t ? t->dtype : LT_DTYPE_COUNT; }
int lt_tensor_ndim(const lt_tensor *t) { return t ? t->ndim : 0; }

int64_t lt_tensor_dim(const lt_tensor *t, int i)
{
    if (!t)
        return 0;
    if (i < 0)
        i += t->ndim;
    if (i < 0 || i >= t->ndim)
        return 0;
    return t->shape[i];
}

int64_t lt_tensor_numel(const lt_tensor *t) { return t ? t->numel : 0; }
size_t lt_tensor_bytes(const lt_tensor *t)
{
    return t ? tensor_bytes_of(t->dtype, t->numel, t->nf4_dq) : 0;
}

char *lt_tensor_describe(const lt_tensor *t, char *buf, size_t buflen)
{
    if (!buf || buflen == 0)
        return buf;
    if (!t) {
        snprintf(buf, buflen, "(null)");
        return buf;
    }
    size_t n = 0;
    n += (size_t)snprintf(buf, buflen, "%s[", lt_dtype_name(t->dtype));
    for (int i = 0; i < t->ndim && n < buflen; i++)
        n += (size_t)snprintf(buf + n, buflen - n, "%s%lld", i ? ", " : "",
                              (long long)t->shape[i]);
    if (n < buflen)
        snprintf(buf + n, buflen - n, "]");
    return buf;
}

void lt_tensor_set_name(lt_tensor *t, const char *name)
{
    if (t)
        snprintf(t->name, sizeof t->name, "%s", name ? name : "");
}

const char *lt_tensor_name(const lt_tensor *t) { return t ? t->name : ""; }

/* ---- host copies ------------------------------------------------------------------------ */

static lt_status check_copy(const lt_tensor *t, const void *p, size_t bytes, const char *fn)
{
    char d[96];
    if (!t)
        return LT_ERR_ARG;
    if (!p)
        return lt_dev_error(t->dev, LT_ERR_ARG, "%s: host pointer is NULL for tensor %s '%s'",
                            fn, lt_tensor_describe(t, d, sizeof d), t->name);
    if (bytes != lt_tensor_bytes(t))
        return lt_dev_error(t->dev, LT_ERR_SHAPE,
                            "%s: %zu bytes given for tensor %s '%s', expected %zu", fn, bytes,
                            lt_tensor_describe(t, d, sizeof d), t->name, lt_tensor_bytes(t));
    return LT_OK;
}

lt_status lt_tensor_upload(lt_tensor *t, const void *src, size_t bytes)
{
    lt_status st = check_copy(t, src, bytes, "lt_tensor_upload");
    if (st != LT_OK)
        return st;
    return t->dev->be->upload(t->dev, t, src, bytes);
}

lt_status lt_tensor_download(const lt_tensor *t, void *dst, size_t bytes)
{
    lt_status st = check_copy(t, dst, bytes, "lt_tensor_download");
    if (st != LT_OK)
        return st;
    return t->dev->be->download(t->dev, t, dst, bytes);
}

static lt_status check_copy_f32(const lt_tensor *t, const void *p, int64_t n, const char *fn)
{
    char d[96];
    if (!t)
        return LT_ERR_ARG;
    if (!lt_dtype_is_float(t->dtype) && t->dtype != LT_NF4)
        return lt_dev_error(t->dev, LT_ERR_DTYPE, "%s: tensor %s '%s' is not a float tensor",
                            fn, lt_tensor_describe(t, d, sizeof d), t->name);
    return check_copy(t, p, n == t->numel ? lt_tensor_bytes(t) : (size_t)-1, fn);
}

lt_status lt_tensor_upload_f32(lt_tensor *t, const float *src, int64_t n)
{
    lt_status st = check_copy_f32(t, src, n, "lt_tensor_upload_f32");
    if (st != LT_OK)
        return st;
    if (t->dtype == LT_F32)
        return t->dev->be->upload(t->dev, t, src, (size_t)n * 4);
    if (t->dtype == LT_NF4) {
        size_t bytes = lt_tensor_bytes(t);
        void *q = malloc(bytes);
        if (!q)
            return lt_dev_error(t->dev, LT_ERR_OOM, "lt_tensor_upload_f32: out of host memory");
        lt_nf4_quantize(q, src, n, t->nf4_dq);
        st = t->dev->be->upload(t->dev, t, q, bytes);
        free(q);
        return st;
    }
    uint16_t *tmp = malloc((size_t)n * 2);
    if (!tmp)
        return lt_dev_error(t->dev, LT_ERR_OOM, "lt_tensor_upload_f32: out of host memory");
    for (int64_t i = 0; i < n; i++)
        tmp[i] = t->dtype == LT_F16 ? lt_f32_to_f16(src[i]) : lt_f32_to_bf16(src[i]);
    st = t->dev->be->upload(t->dev, t, tmp, (size_t)n * 2);
    free(tmp);
    return st;
}

lt_status lt_tensor_download_f32(const lt_tensor *t, float *dst, int64_t n)
{
    lt_status st = check_copy_f32(t, dst, n, "lt_tensor_download_f32");
    if (st != LT_OK)
        return st;
    if (t->dtype == LT_F32)
        return t->dev->be->download(t->dev, t, dst, (size_t)n * 4);
    if (t->dtype == LT_NF4) {
        size_t bytes = lt_tensor_bytes(t);
        void *q = malloc(bytes);
        if (!q)
            return lt_dev_error(t->dev, LT_ERR_OOM, "lt_tensor_download_f32: out of host memory");
        st = t->dev->be->download(t->dev, t, q, bytes);
        if (st == LT_OK)
            lt_nf4_dequantize(dst, q, n, t->nf4_dq, 0, n);
        free(q);
        return st;
    }
    uint16_t *tmp = malloc((size_t)n * 2);
    if (!tmp)
        return lt_dev_error(t->dev, LT_ERR_OOM, "lt_tensor_download_f32: out of host memory");
    st = t->dev->be->download(t->dev, t, tmp, (size_t)n * 2);
    if (st == LT_OK)
        for (int64_t i = 0; i < n; i++)
            dst[i] = t->dtype == LT_F16 ? lt_f16_to_f32(tmp[i]) : lt_bf16_to_f32(tmp[i]);
    free(tmp);
    return st;
}
