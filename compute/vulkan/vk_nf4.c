/*
 * vk_nf4.c - the Vulkan backend's matmul with an NF4 weight as B (shaders/matmul_nf4.comp):
 * the packed codes and scales stay on the device as compute/nf4.c lays them out, and the
 * shader dequantizes them in its tile loader into fp32. Upload and download of NF4 tensors are
 * the backend's ordinary byte copies (the front end quantizes on the host before uploading,
 * and dequantizes after downloading).
 *
 * Never writes B; A is F32 and B 2-D (validated by the front end).
 */
#include "vk_impl.h"

#include <string.h>

static uint64_t cdiv(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

/* The bytes t covers, widened to whole words. */
static lt_vk_range range_of(const lt_tensor *t, size_t bytes)
{
    VkDeviceAddress a = lt_vk_addr(t);
    return (lt_vk_range){a & ~(VkDeviceAddress)3, (a + bytes + 3) & ~(VkDeviceAddress)3};
}

lt_status lt_vk_matmul_nf4(lt_device *dev, lt_tensor *C, const lt_tensor *A, const lt_tensor *B,
                           bool trans_a, bool trans_b, float alpha, float beta,
                           const lt_matmul_geom *g)
{
    lt_vk *vk = lt_vk_of(dev);
    const uint64_t numel = (uint64_t)B->numel, nb = cdiv(numel, LT_NF4_BLOCK);
    const uint64_t codes = ((numel + 1) / 2 + 3) & ~(uint64_t)3;
    const uint64_t aq = (nb + 3) & ~(uint64_t)3;
    const uint64_t max_groups = vk->props.limits.maxComputeWorkGroupCount[2];
    /* A and C are indexed by element (32-bit, signed in address arithmetic), B by its codes'
     * 32-bit words from an unsigned element index */
    lt_status st = lt_vk_check_index(vk, "matmul", A);
    if (st == LT_OK)
        st = lt_vk_check_index(vk, "matmul", C);
    if (st != LT_OK)
        return st;
    if (numel > 0xffffffffull)
        return lt_dev_error(dev, LT_ERR_UNSUPPORTED,
                            "%s: lt_matmul: NF4 weight '%s' has %llu elements; the Vulkan "
                            "shader indexes at most 2^32 - 1",
                            dev->name, B->name[0] ? B->name : "(unnamed)",
                            (unsigned long long)numel);
    if ((uint64_t)g->batch > max_groups)
        return lt_dev_error(dev, LT_ERR_UNSUPPORTED,
                            "lt_matmul: batch %lld exceeds the device's %llu workgroups in z",
                            (long long)g->batch, (unsigned long long)max_groups);
    struct {
        uint64_t c, a, b;
        uint32_t M, N, K, a_bstride;
        uint32_t trans_a, trans_b, dq, scale_word, dq_word, n_dq;
        float alpha, beta;
    } pc = {lt_vk_addr(C),
            lt_vk_addr(A),
            lt_vk_addr(B),
            (uint32_t)g->M,
            (uint32_t)g->N,
            (uint32_t)g->K,
            g->a_batched ? (uint32_t)(g->M * g->K) : 0u,
            trans_a,
            trans_b,
            B->nf4_dq,
            (uint32_t)(codes / 4),
            (uint32_t)((codes + aq) / 4),
            (uint32_t)cdiv(nb, LT_NF4_DQ_BLOCK),
            alpha,
            beta};
    lt_vk_dispatch d = {.shader = "matmul_nf4",
                        .pc = &pc,
                        .pc_bytes = sizeof pc,
                        .groups = {(uint32_t)cdiv((uint64_t)g->N, 16),
                                   (uint32_t)cdiv((uint64_t)g->M, 16), (uint32_t)g->batch},
                        .reads = {range_of(A, (size_t)A->numel * 4),
                                  range_of(B, lt_tensor_bytes(B)),
                                  range_of(C, (size_t)C->numel * 4)},
                        .n_reads = beta != 0.0f ? 3 : 2,
                        .writes = {range_of(C, (size_t)C->numel * 4)},
                        .n_writes = 1};
    st = lt_vk_op_begin(vk, "matmul_nf4");
    if (st == LT_OK)
        st = lt_vk_record(vk, &d);
    lt_vk_op_end(vk);
    return st;
}
