/*
 * vk_coopmat.c - choosing the cooperative-matrix matmul (VK_KHR_cooperative_matrix).
 *
 * Three steps, none of which can fail the device. Query (before vkCreateDevice): the variant
 * must be built in (glslc accepted GL_KHR_cooperative_matrix at configure time:
 * LATHE_HAVE_COOPMAT / LATHE_HAVE_COOPMAT_BF16), the device must expose the extension with the
 * cooperativeMatrix feature, shaderFloat16 (and VK_KHR_shader_bfloat16 for bf16), and list a
 * subgroup-scope (M, N, K) = (16, 16, 16) configuration with 16-bit A/B and fp32 C/result, or
 * for f16 an (8, 8, 8) one (lavapipe's only shape; the matmul_coopmat8 kernel).
 * Chain: the features are enabled at device creation only for wanted variants. Self-test
 * (after the device is up): each wanted variant runs a few awkward shapes next to the tiled
 * kernel and is turned on only if every result agrees within fp32 rounding of the sums.
 * LATHE_VK_NO_COOPMAT=1 skips all of it, and so does a validation layer (LATHE_VK_VALIDATION=1)
 * older than the extension. Without the build-time support this file queries
 * nothing, so devices behave exactly as before.
 */
#include "vk_debug.h"
#include "vk_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(LATHE_HAVE_COOPMAT)
static bool has_ext(const lt_vk *vk, const char *name)
{
    uint32_t n = 0;
    if (vk->f.vkEnumerateDeviceExtensionProperties(vk->phys, NULL, &n, NULL) != VK_SUCCESS)
        return false;
    VkExtensionProperties *p = calloc(n ? n : 1, sizeof *p);
    bool found = false;
    if (p && vk->f.vkEnumerateDeviceExtensionProperties(vk->phys, NULL, &n, p) == VK_SUCCESS)
        for (uint32_t i = 0; i < n && !found; i++)
            found = strcmp(p[i].extensionName, name) == 0;
    free(p);
    return found;
}

/* True when the device lists a size x size x size subgroup configuration with inputs ab, fp32
 * out. */
static bool has_config(const lt_vk *vk, VkComponentTypeKHR ab, uint32_t size)
{
    PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR get =
        (PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR)vk->f.vkGetInstanceProcAddr(
            vk->instance, "vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR");
    uint32_t n = 0;
    if (!get || get(vk->phys, &n, NULL) != VK_SUCCESS || n == 0)
        return false;
    VkCooperativeMatrixPropertiesKHR *p = calloc(n, sizeof *p);
    if (!p)
        return false;
    for (uint32_t i = 0; i < n; i++)
        p[i].sType = LT_VK_STYPE_COOPMAT_PROPERTIES;
    bool found = false;
    if (get(vk->phys, &n, p) == VK_SUCCESS || n > 0)
        for (uint32_t i = 0; i < n && !found; i++)
            found = p[i].MSize == size && p[i].NSize == size && p[i].KSize == size &&
                    p[i].AType == ab && p[i].BType == ab &&
                    p[i].CType == VK_COMPONENT_TYPE_FLOAT32_KHR &&
                    p[i].ResultType == VK_COMPONENT_TYPE_FLOAT32_KHR &&
                    p[i].scope == VK_SCOPE_SUBGROUP_KHR && !p[i].saturatingAccumulation;
    free(p);
    return found;
}
#endif

void lt_vk_coopmat_query(lt_vk *vk)
{
    vk->cm_want_f16 = vk->cm_want_bf16 = vk->cm_f16 = vk->cm_bf16 = false;
    vk->cm_size = 0;
#if defined(LATHE_HAVE_COOPMAT)
    const char *off = getenv("LATHE_VK_NO_COOPMAT");
    /* a validation layer older than the extension (header 1.3.255; Debian 12 ships 1.3.239)
     * rejects its feature structure at vkCreateDevice: under it, no cooperative matrices */
    if (vk->validation && vk->validation_layer < VK_MAKE_API_VERSION(0, 1, 3, 255))
        return;
    if ((off && off[0] && strcmp(off, "0") != 0) || !vk->info.cooperative_matrix ||
        !vk->info.fp16 || vk->info.subgroup_size == 0 ||
        4 * vk->info.subgroup_size > vk->info.max_workgroup_invocations)
        return;
    VkPhysicalDeviceCooperativeMatrixFeaturesKHR cm = {.sType = LT_VK_STYPE_COOPMAT_FEATURES};
    lt_vk_bf16_features bf = {.sType = LT_VK_STYPE_BF16_FEATURES};
    bool bf_ext = has_ext(vk, "VK_KHR_shader_bfloat16");
    if (bf_ext)
        cm.pNext = &bf;
    VkPhysicalDeviceVulkan12Features f12 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES, .pNext = &cm};
    VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
                                    .pNext = &f12};
    vk->f.vkGetPhysicalDeviceFeatures2(vk->phys, &f2);
    if (!cm.cooperativeMatrix || !f12.shaderFloat16 || !f12.vulkanMemoryModel)
        return;
    vk->cm_wg = 4 * vk->info.subgroup_size;
    /* f16: the 16 x 16 x 16 kernel where listed, else the 8 x 8 x 8 one (lavapipe) */
    vk->cm_size = has_config(vk, VK_COMPONENT_TYPE_FLOAT16_KHR, 16) ? 16 : 0;
#if defined(LATHE_HAVE_COOPMAT8)
    if (!vk->cm_size && has_config(vk, VK_COMPONENT_TYPE_FLOAT16_KHR, 8))
        vk->cm_size = 8;
#endif
    vk->cm_want_f16 = vk->cm_size != 0;
#if defined(LATHE_HAVE_COOPMAT_BF16)
    vk->cm_want_bf16 = bf_ext && bf.shaderBFloat16Type && bf.shaderBFloat16CooperativeMatrix &&
                       has_config(vk, LT_VK_COMPONENT_BF16, 16);
#endif
#endif
}

void *lt_vk_coopmat_chain_init(const lt_vk *vk, lt_vk_coopmat_chain *c, void *next)
{
    memset(c, 0, sizeof *c);
    if (!vk->cm_want_f16 && !vk->cm_want_bf16)
        return next;
    c->cm = (VkPhysicalDeviceCooperativeMatrixFeaturesKHR){
        .sType = LT_VK_STYPE_COOPMAT_FEATURES, .pNext = next, .cooperativeMatrix = VK_TRUE};
    c->exts[c->n_exts++] = "VK_KHR_cooperative_matrix";
    if (!vk->cm_want_bf16)
        return &c->cm;
    c->bf = (lt_vk_bf16_features){.sType = LT_VK_STYPE_BF16_FEATURES,
                                  .pNext = &c->cm,
                                  .shaderBFloat16Type = VK_TRUE,
                                  .shaderBFloat16CooperativeMatrix = VK_TRUE};
    c->exts[c->n_exts++] = "VK_KHR_shader_bfloat16";
    return &c->bf;
}

/* ---- self-test --------------------------------------------------------------------------- */

typedef struct st_tensor {
    lt_tensor t;
    bool ok;
} st_tensor;

static void st_new(lt_vk *vk, st_tensor *s, lt_dtype dt, int64_t rows, int64_t cols)
{
    memset(s, 0, sizeof *s);
    s->t.dev = vk->dev;
    s->t.dtype = dt;
    s->t.ndim = 2;
    s->t.shape[0] = rows;
    s->t.shape[1] = cols;
    s->t.numel = rows * cols;
    s->ok = lt_vk_alloc_bytes(vk->dev, (size_t)s->t.numel * lt_dtype_size(dt), &s->t.buf) ==
            LT_OK;
}

static void st_free(lt_vk *vk, st_tensor *s)
{
    if (s->ok)
        lt_vk_release(vk->dev, s->t.buf);
    s->ok = false;
}

/* One shape: random 16-bit inputs (multiples of 1/64 in [-1, 1], exact in f16 and bf16),
 * C by the variant and by the tiled kernel; agree when |d| <= 1e-5 * (1 + sum |a||b|). */
static bool selftest_shape(lt_vk *vk, lt_dtype dt, int64_t M, int64_t N, int64_t K, bool ta,
                           bool tb)
{
    st_tensor a, b, c1, c2;
    st_new(vk, &a, dt, ta ? K : M, ta ? M : K);
    st_new(vk, &b, dt, tb ? N : K, tb ? K : N);
    st_new(vk, &c1, LT_F32, M, N);
    st_new(vk, &c2, LT_F32, M, N);
    bool pass = false;
    size_t na = (size_t)(M * K), nb = (size_t)(K * N), nc = (size_t)(M * N);
    uint16_t *h = malloc((na + nb) * 2);
    float *r1 = malloc(nc * 4), *r2 = malloc(nc * 4);
    if (!a.ok || !b.ok || !c1.ok || !c2.ok || !h || !r1 || !r2)
        goto done;
    uint32_t x = 0x9e3779b9u;
    for (size_t i = 0; i < na + nb; i++) {
        x = x * 1664525u + 1013904223u;
        float v = (float)((int)(x >> 25) - 64) / 64.0f;
        h[i] = dt == LT_F16 ? lt_f32_to_f16(v) : lt_f32_to_bf16(v);
    }
    lt_matmul_geom g = {1, M, N, K, false, false};
    if (lt_vk_upload(vk->dev, &a.t, h, na * 2) != LT_OK ||
        lt_vk_upload(vk->dev, &b.t, h + na, nb * 2) != LT_OK ||
        lt_vk_matmul(vk->dev, &c1.t, &a.t, &b.t, ta, tb, 1.0f, 0.0f, &g, true) != LT_OK ||
        lt_vk_matmul(vk->dev, &c2.t, &a.t, &b.t, ta, tb, 1.0f, 0.0f, &g, false) != LT_OK ||
        lt_vk_flush(vk) != LT_OK || lt_vk_download(vk->dev, &c1.t, r1, nc * 4) != LT_OK ||
        lt_vk_download(vk->dev, &c2.t, r2, nc * 4) != LT_OK)
        goto done;
    pass = true;
    for (size_t i = 0; i < nc && pass; i++) /* |a|, |b| <= 1: sum |a||b| <= K */
        pass = fabsf(r1[i] - r2[i]) <= 1e-5f * (1.0f + (float)K);
done:
    free(h);
    free(r1);
    free(r2);
    st_free(vk, &a);
    st_free(vk, &b);
    st_free(vk, &c1);
    st_free(vk, &c2);
    return pass;
}

static bool selftest(lt_vk *vk, lt_dtype dt)
{
    static const int64_t shapes[][5] = {
        {64, 64, 32, 0, 0}, {130, 77, 100, 0, 1}, {65, 128, 33, 1, 0}, {200, 96, 64, 1, 1}};
    for (int i = 0; i < 4; i++)
        if (!selftest_shape(vk, dt, shapes[i][0], shapes[i][1], shapes[i][2], shapes[i][3],
                            shapes[i][4]))
            return false;
    return true;
}

void lt_vk_coopmat_selftest(lt_vk *vk)
{
    if (vk->cm_want_f16) {
        vk->cm_f16 = true; /* lets lt_vk_matmul pick the variant during the test */
        vk->cm_f16 = selftest(vk, LT_F16);
    }
    if (vk->cm_want_bf16) {
        vk->cm_bf16 = true;
        vk->cm_bf16 = selftest(vk, LT_BF16);
    }
    vk->dev->err[0] = 0; /* a failed variant is not the caller's error */
}

const char *lt_vk_coopmat_kernel(const lt_device *dev)
{
    if (!dev || lt_device_get_kind(dev) != LT_DEVICE_VULKAN || !dev->impl)
        return NULL;
    const lt_vk *vk = lt_vk_of(dev);
    if (!vk->cm_f16)
        return NULL;
    return vk->cm_size == 8 ? "matmul_coopmat8" : "matmul_coopmat";
}

bool lt_vk_coopmat_built(void)
{
#if defined(LATHE_HAVE_COOPMAT) || defined(LATHE_HAVE_COOPMAT8)
    return true;
#else
    return false;
#endif
}
