/*
 * vk_debug.h - test hooks of the Vulkan backend. Not part of the compute contract: only tests
 * and diagnostics include it.
 *
 * Setting LATHE_VK_VALIDATION=1 before lt_device_open("vulkan:N") enables the Khronos
 * validation layer (when installed) with a debug messenger that counts every error and
 * warning; errors are also stopped before they reach the driver.
 * LATHE_VK_LOADER names the loader library to dlopen instead of libvulkan.so.1.
 * LATHE_VK_NO_TEXEL=1 makes matmul read its inputs by address (the variant for devices
 * without texel buffers), so tests can compare the variants bit for bit.
 * LATHE_VK_NO_TILED_ATTENTION=1 selects the one-query-per-workgroup attention forward.
 * LATHE_VK_NO_COOPMAT=1 keeps the cooperative-matrix kernels off (the tiled fp32 ones run);
 * so does a validation layer older than VK_KHR_cooperative_matrix (Debian 12's 1.3.239).
 * LATHE_CACHE_DIR names the pipeline-cache folder ("off": no cache file).
 * LATHE_VK_BLOCK_BYTES sets the size of the allocator's shared blocks (tests force tiny ones
 * so a run spans hundreds of blocks); LATHE_VK_BUDGET_BYTES caps the bytes of blocks lathe
 * may hold (tests force out-of-memory with it); LATHE_VK_NO_MEMORY_BUDGET=1 ignores
 * VK_EXT_memory_budget (tests reach the fallback on a device that has it);
 * LATHE_VK_MAX_INDEX lowers the element count above which ops split or refuse a tensor (tests
 * reach the 2^31 limit with small tensors).
 */
#ifndef LATHE_VK_DEBUG_H
#define LATHE_VK_DEBUG_H

#include "compute.h"

/* Errors + warnings counted so far on a Vulkan device, or -1 when validation is not active
 * (not requested, layer not installed, or not a Vulkan device). */
int lt_vk_validation_messages(const lt_device *dev);

/* Bytes of pipeline-cache data accepted from disk when the device opened (0: none, the file
 * was missing, corrupt or foreign), or -1 when dev is not a Vulkan device. */
long lt_vk_pipeline_cache_loaded(const lt_device *dev);

/* Blocks of the Vulkan allocator live now (shared and dedicated), or -1 when dev is not a
 * Vulkan device; *peak (may be NULL) receives the most live at once since the device opened,
 * *block_bytes the shared block size, *reserved_bytes the bytes of all live blocks. */
int lt_vk_debug_blocks(const lt_device *dev, int *peak, uint64_t *block_bytes,
                       uint64_t *reserved_bytes);

/* The cooperative-matrix matmul kernel a Vulkan device uses for f16 x f16 products
 * ("matmul_coopmat", "matmul_coopmat8"), or NULL when none passed its self-test (not built
 * in, not offered, LATHE_VK_NO_COOPMAT set, or not a Vulkan device). */
const char *lt_vk_coopmat_kernel(const lt_device *dev);
/* Whether this build embeds a cooperative-matrix matmul kernel (compiled or committed). */
bool lt_vk_coopmat_built(void);
#endif
