/*
 * vk_impl.h - the Vulkan backend's private state, shared by the files of compute/vulkan/ only.
 *
 * Design in one paragraph. The loader is opened at run time (dlopen), every entry point is
 * fetched through vkGetInstanceProcAddr / vkGetDeviceProcAddr into lt_vk_fns. Tensors live in
 * device-local blocks (a table that grows as needed; a large tensor gets a block of its own;
 * see lt_vk_block) and are addressed by buffer device address (Vulkan 1.2
 * bufferDeviceAddress, required by 1.3): shaders receive 64-bit addresses in push constants, so
 * there are no descriptor sets and maxStorageBufferRange never limits a tensor's size. Shaders
 * index elements with 32-bit integers, which address arithmetic treats as signed: an op whose
 * tensor has 2^31 elements or more is split into pieces by address (elementwise ops) or
 * refused by name (lt_vk_check_index). Ops are
 * recorded into a command buffer; a global memory barrier is inserted only when a dispatch
 * touches an address range written earlier in the same batch (or writes one read earlier).
 * This file must never format user-facing argument errors: the front end validated them.
 */
#ifndef LATHE_VK_IMPL_H
#define LATHE_VK_IMPL_H

#include "compute_impl.h"

#include <vulkan/vulkan.h>

/* VK_KHR_cooperative_matrix and VK_KHR_shader_bfloat16, for headers older than them
 * (Debian 12 ships 1.3.239); values from the Vulkan registry. */
#ifndef VK_KHR_cooperative_matrix
#define VK_KHR_cooperative_matrix 1
typedef enum VkComponentTypeKHR {
    VK_COMPONENT_TYPE_FLOAT16_KHR = 0,
    VK_COMPONENT_TYPE_FLOAT32_KHR = 1,
    VK_COMPONENT_TYPE_MAX_ENUM_KHR = 0x7FFFFFFF
} VkComponentTypeKHR;
typedef enum VkScopeKHR {
    VK_SCOPE_SUBGROUP_KHR = 3,
    VK_SCOPE_MAX_ENUM_KHR = 0x7FFFFFFF
} VkScopeKHR;
typedef struct VkCooperativeMatrixPropertiesKHR {
    VkStructureType sType;
    void *pNext;
    uint32_t MSize, NSize, KSize;
    VkComponentTypeKHR AType, BType, CType, ResultType;
    VkBool32 saturatingAccumulation;
    VkScopeKHR scope;
} VkCooperativeMatrixPropertiesKHR;
typedef struct VkPhysicalDeviceCooperativeMatrixFeaturesKHR {
    VkStructureType sType;
    void *pNext;
    VkBool32 cooperativeMatrix;
    VkBool32 cooperativeMatrixRobustBufferAccess;
} VkPhysicalDeviceCooperativeMatrixFeaturesKHR;
typedef VkResult(VKAPI_PTR *PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR)(
    VkPhysicalDevice, uint32_t *, VkCooperativeMatrixPropertiesKHR *);
#endif
#define LT_VK_STYPE_COOPMAT_FEATURES ((VkStructureType)1000506000)
#define LT_VK_STYPE_COOPMAT_PROPERTIES ((VkStructureType)1000506001)
#define LT_VK_STYPE_BF16_FEATURES ((VkStructureType)1000141000)
#define LT_VK_COMPONENT_BF16 ((VkComponentTypeKHR)1000141000)
typedef struct lt_vk_bf16_features { /* VkPhysicalDeviceShaderBfloat16FeaturesKHR */
    VkStructureType sType;
    void *pNext;
    VkBool32 shaderBFloat16Type, shaderBFloat16DotProduct, shaderBFloat16CooperativeMatrix;
} lt_vk_bf16_features;

/* Entry points, fetched at run time. G = global, I = instance, D = device level. */
#define LT_VK_GLOBAL_FNS(X)                                                                   \
    X(vkCreateInstance)                                                                       \
    X(vkEnumerateInstanceExtensionProperties)                                                 \
    X(vkEnumerateInstanceLayerProperties)                                                     \
    X(vkEnumerateInstanceVersion)

#define LT_VK_INSTANCE_FNS(X)                                                                 \
    X(vkDestroyInstance)                                                                      \
    X(vkEnumeratePhysicalDevices)                                                             \
    X(vkGetPhysicalDeviceProperties)                                                          \
    X(vkGetPhysicalDeviceProperties2)                                                         \
    X(vkGetPhysicalDeviceFeatures2)                                                           \
    X(vkGetPhysicalDeviceMemoryProperties)                                                    \
    X(vkGetPhysicalDeviceMemoryProperties2)                                                   \
    X(vkGetPhysicalDeviceQueueFamilyProperties)                                               \
    X(vkGetPhysicalDeviceFormatProperties)                                                    \
    X(vkEnumerateDeviceExtensionProperties)                                                   \
    X(vkCreateDevice)                                                                         \
    X(vkGetDeviceProcAddr)

#define LT_VK_DEVICE_FNS(X)                                                                   \
    X(vkDestroyDevice)                                                                        \
    X(vkGetDeviceQueue)                                                                       \
    X(vkAllocateMemory)                                                                       \
    X(vkFreeMemory)                                                                           \
    X(vkMapMemory)                                                                            \
    X(vkUnmapMemory)                                                                          \
    X(vkCreateBuffer)                                                                         \
    X(vkDestroyBuffer)                                                                        \
    X(vkGetBufferMemoryRequirements)                                                          \
    X(vkBindBufferMemory)                                                                     \
    X(vkGetBufferDeviceAddress)                                                               \
    X(vkCreateShaderModule)                                                                   \
    X(vkDestroyShaderModule)                                                                  \
    X(vkCreatePipelineLayout)                                                                 \
    X(vkDestroyPipelineLayout)                                                                \
    X(vkCreateComputePipelines)                                                               \
    X(vkDestroyPipeline)                                                                      \
    X(vkCreateCommandPool)                                                                    \
    X(vkDestroyCommandPool)                                                                   \
    X(vkAllocateCommandBuffers)                                                               \
    X(vkBeginCommandBuffer)                                                                   \
    X(vkEndCommandBuffer)                                                                     \
    X(vkResetCommandBuffer)                                                                   \
    X(vkCmdBindPipeline)                                                                      \
    X(vkCmdPushConstants)                                                                     \
    X(vkCmdDispatch)                                                                          \
    X(vkCmdPipelineBarrier)                                                                   \
    X(vkCmdCopyBuffer)                                                                        \
    X(vkCmdWriteTimestamp)                                                                    \
    X(vkCmdResetQueryPool)                                                                    \
    X(vkCreateQueryPool)                                                                      \
    X(vkDestroyQueryPool)                                                                     \
    X(vkGetQueryPoolResults)                                                                  \
    X(vkQueueSubmit)                                                                          \
    X(vkCreateFence)                                                                          \
    X(vkDestroyFence)                                                                         \
    X(vkWaitForFences)                                                                        \
    X(vkResetFences)                                                                          \
    X(vkDeviceWaitIdle)                                                                       \
    X(vkCreateBufferView)                                                                     \
    X(vkDestroyBufferView)                                                                    \
    X(vkCreateDescriptorSetLayout)                                                            \
    X(vkDestroyDescriptorSetLayout)                                                           \
    X(vkCreateDescriptorPool)                                                                 \
    X(vkDestroyDescriptorPool)                                                                \
    X(vkResetDescriptorPool)                                                                  \
    X(vkAllocateDescriptorSets)                                                               \
    X(vkUpdateDescriptorSets)                                                                 \
    X(vkCmdBindDescriptorSets)                                                                \
    X(vkCreatePipelineCache)                                                                  \
    X(vkDestroyPipelineCache)                                                                 \
    X(vkGetPipelineCacheData)

typedef struct lt_vk_fns {
    PFN_vkGetInstanceProcAddr vkGetInstanceProcAddr;
#define LT_VK_DECLARE(name) PFN_##name name;
    LT_VK_GLOBAL_FNS(LT_VK_DECLARE)
    LT_VK_INSTANCE_FNS(LT_VK_DECLARE)
    LT_VK_DEVICE_FNS(LT_VK_DECLARE)
#undef LT_VK_DECLARE
    PFN_vkCreateDebugUtilsMessengerEXT vkCreateDebugUtilsMessengerEXT;
    PFN_vkDestroyDebugUtilsMessengerEXT vkDestroyDebugUtilsMessengerEXT;
} lt_vk_fns;

/*
 * Device memory (vk_memory.c). Every tensor lives in a block: one VkDeviceMemory bound to one
 * VkBuffer, addressed by buffer device address. A shared block (LT_VK block_bytes, see
 * lt_vk_memory_init for the size rule) is carved first fit into many tensors; a tensor of at
 * least half a block gets a dedicated block of its own size, released when the tensor is
 * freed. The block table is a growable array of slots; a released block's slot is reused, so
 * an allocation's block index never changes while it lives. Shared blocks that become empty
 * stay cached for the next allocation (a training step frees and re-allocates the same
 * activations) and are released when an allocation would otherwise exceed the budget, or at
 * close.
 */
typedef struct lt_vk_span {
    VkDeviceSize offset, size;
} lt_vk_span;

typedef struct lt_vk_block {
    VkDeviceMemory mem;    /* VK_NULL_HANDLE: an unused slot */
    VkBuffer buf;
    VkDeviceAddress addr;
    VkDeviceSize size;
    void *mapped;          /* non-NULL when host-visible (unified memory) */
    lt_vk_span *free_list; /* sorted by offset, coalesced */
    int n_free, cap_free;
    VkDeviceSize used;
    int n_allocs;
    bool dedicated;        /* holds one tensor alone; released with it */
} lt_vk_block;

/* The handle stored in lt_tensor.buf. */
typedef struct lt_vk_alloc {
    int block;
    VkDeviceSize offset, size;
    VkDeviceAddress addr;
} lt_vk_alloc;

/* A cached compute pipeline: shader name + specialization constants. */
#define LT_VK_MAX_SPEC 8
typedef struct lt_vk_pipeline {
    const char *shader;
    int n_spec;
    uint32_t spec[LT_VK_MAX_SPEC];
    VkPipeline pipe;
} lt_vk_pipeline;

/* An address range touched by a dispatch, for hazard tracking. */
typedef struct lt_vk_range {
    VkDeviceAddress lo, hi; /* [lo, hi) */
} lt_vk_range;

#define LT_VK_CMDBUFS 3
#define LT_VK_OPS_PER_BATCH 1024 /* dispatches recorded before a batch is submitted */
#define LT_VK_TEX_PER_DISPATCH 2 /* texel-buffer inputs a dispatch may bind (set 0) */

/* A read-only input seen through a uniform texel buffer (R32G32B32A32_UINT, 16 bytes per
 * texel): a range of one block's VkBuffer. */
typedef struct lt_vk_texel {
    int block;
    VkDeviceSize offset, range; /* bytes; offset aligned, range a multiple of 16 */
} lt_vk_texel;

typedef struct lt_vk_batch {
    VkCommandBuffer cb;
    VkFence fence;
    VkQueryPool queries;
    bool recording, in_flight;
    int n_dispatch;
    int n_stamps;                         /* timestamps written */
    const char *stamp_op[LT_VK_OPS_PER_BATCH]; /* op name of timestamp pair k */
    /* texel-buffer inputs of this batch's dispatches: freed / reset when it completes */
    VkDescriptorPool tex_pool;
    VkBufferView views[LT_VK_TEX_PER_DISPATCH * LT_VK_OPS_PER_BATCH];
    int n_views, n_sets;
} lt_vk_batch;

typedef struct lt_vk {
    lt_device *dev;
    void *lib;
    lt_vk_fns f;
    VkInstance instance;
    VkDebugUtilsMessengerEXT messenger;
    int validation_messages; /* errors + warnings seen by the debug messenger */
    bool validation;
    uint32_t validation_layer; /* the validation layer's specVersion (0: not loaded) */
    VkPhysicalDevice phys;
    VkDevice device;
    VkQueue queue;
    uint32_t queue_family;
    lt_vk_device_info info;
    VkPhysicalDeviceProperties props;
    VkPhysicalDeviceMemoryProperties memprops;
    float timestamp_period_ns;
    bool timestamps;

    /* memory: blocks[0, n_blocks) are slots, live where mem != VK_NULL_HANDLE */
    lt_vk_block *blocks;
    int n_blocks, cap_blocks;
    int live_blocks, peak_blocks;  /* live now, most live at once since open */
    VkDeviceSize reserved_bytes;   /* sum of the live blocks' sizes */
    uint32_t heap_index;           /* the heap tensor blocks come from */
    bool memory_budget;            /* VK_EXT_memory_budget enabled */
    VkDeviceSize budget_cap;       /* LATHE_VK_BUDGET_BYTES: most bytes of blocks; 0 = none */
    uint32_t device_type_index;  /* memory type for tensor blocks */
    uint32_t staging_type_index; /* host-visible coherent type for staging (UINT32_MAX: none) */
    bool unified;                /* tensor blocks are host-visible: no staging needed */
    VkDeviceSize block_bytes;    /* size of a shared block (LATHE_VK_BLOCK_BYTES overrides) */
    VkDeviceSize heap_bytes;     /* size of the heap tensor blocks come from */
    VkBuffer staging;
    VkDeviceMemory staging_mem;
    void *staging_map;
    VkDeviceSize staging_bytes;
    /* a small host-visible buffer the shaders raise error flags in (bad ids, bad labels) */
    VkBuffer flag_buf;
    VkDeviceMemory flag_mem;
    uint32_t *flag_map;
    VkDeviceAddress flag_addr;
    /* scratch tensors (attention delta, grad-norm partials, ...) freed at the next sync */
    lt_vk_alloc **deferred;
    int n_deferred, cap_deferred;

    /* pipelines */
    VkPipelineCache pcache;   /* loaded from / saved to disk (vk_cache.c) */
    char pcache_path[4096];   /* "" when there is no cache file */
    size_t pcache_loaded;     /* bytes of driver data read at open (0: none) */
    VkPipelineLayout layout;
    /* texel-buffer inputs: set 0 holds LT_VK_TEX_PER_DISPATCH uniform texel buffers */
    bool texel;                     /* usable: format supported, layouts created */
    VkDeviceSize texel_align;       /* view offset alignment, bytes (>= 16) */
    uint64_t max_texels;            /* maxTexelBufferElements */
    VkDescriptorSetLayout tex_set_layout;
    VkPipelineLayout tex_layout;
    /* cooperative matrices (vk_coopmat.c): wanted = built in, offered by the device with a
     * 16x16x16 subgroup configuration and enabled at device creation; on = self-test passed */
    bool cm_want_f16, cm_want_bf16, cm_f16, cm_bf16;
    uint32_t cm_wg;   /* workgroup size: 4 subgroups */
    uint32_t cm_size; /* f16 kernel's matrix size: 16 (matmul_coopmat) or 8 (..._coopmat8) */
    uint32_t push_bytes;
    lt_vk_pipeline *pipes;
    int n_pipes, cap_pipes;

    /* recording */
    VkCommandPool pool;
    lt_vk_batch batch[LT_VK_CMDBUFS];
    int cur; /* batch being recorded */
    lt_vk_range *written, *read; /* since the last barrier */
    int n_written, n_read, cap_written, cap_read;
    const char *op_name; /* the op being recorded (profiling) */
    int op_dispatches;
} lt_vk;

static inline lt_vk *lt_vk_of(const lt_device *dev) { return (lt_vk *)dev->impl; }

/* vk_device.c */
void lt_vk_close(lt_device *dev);
const char *lt_vk_result_str(VkResult r);
lt_status lt_vk_fail(lt_vk *vk, const char *what, VkResult r);

/* vk_memory.c */
lt_status lt_vk_memory_init(lt_vk *vk);
void lt_vk_memory_free(lt_vk *vk);
lt_status lt_vk_alloc_bytes(lt_device *dev, size_t bytes, void **buf);
/* The budget of the tensor heap as compute.h's lt_device_mem_budget defines it. */
bool lt_vk_mem_budget(lt_device *dev, uint64_t *budget_bytes, uint64_t *usage_bytes);
void lt_vk_release(lt_device *dev, void *buf);
lt_status lt_vk_upload(lt_device *dev, lt_tensor *t, const void *src, size_t bytes);
lt_status lt_vk_download(lt_device *dev, const lt_tensor *t, void *dst, size_t bytes);
/* A scratch allocation that lives until the next sync completes. */
lt_status lt_vk_scratch(lt_vk *vk, size_t bytes, VkDeviceAddress *addr);
void lt_vk_release_deferred(lt_vk *vk);
static inline VkDeviceAddress lt_vk_addr(const lt_tensor *t)
{
    return ((const lt_vk_alloc *)t->buf)->addr + t->offset;
}

/* vk_exec.c */
lt_status lt_vk_exec_init(lt_vk *vk);
void lt_vk_exec_free(lt_vk *vk);
lt_status lt_vk_sync(lt_device *dev);
/* True while recorded work has not completed. */
bool lt_vk_busy(const lt_vk *vk);
/* The command buffer being recorded (begun if needed). */
lt_status lt_vk_command_buffer(lt_vk *vk, VkCommandBuffer *cb);
/* Submit what is recorded and wait for it (sync without the error-flag check). */
lt_status lt_vk_flush(lt_vk *vk);
/* Start / end an op: profiling brackets every dispatch between them. */
lt_status lt_vk_op_begin(lt_vk *vk, const char *name);
lt_status lt_vk_op_end(lt_vk *vk);
/*
 * Record one dispatch of shader (with n_spec specialization constants) over groups
 * (x, y, z) with push constants pc (pc_bytes <= 128). reads / writes: address ranges for
 * hazard tracking.
 */
typedef struct lt_vk_dispatch {
    const char *shader;
    const uint32_t *spec;
    int n_spec;
    const void *pc;
    uint32_t pc_bytes;
    uint32_t groups[3];
    lt_vk_range reads[12];
    int n_reads;
    lt_vk_range writes[4];
    int n_writes;
    lt_vk_texel tex[LT_VK_TEX_PER_DISPATCH]; /* with n_tex > 0 the shader uses set 0 */
    int n_tex;
} lt_vk_dispatch;
lt_status lt_vk_record(lt_vk *vk, const lt_vk_dispatch *d);
/* The most elements a shader may index from one address (2^31 - 1; LATHE_VK_MAX_INDEX lowers
 * it so tests reach the limit with small tensors). */
int64_t lt_vk_max_index(void);
/* LT_OK when tensor t (NULL: nothing to check) fits the shaders' 32-bit indices, else an
 * LT_ERR_UNSUPPORTED naming op, the tensor and its size. */
lt_status lt_vk_check_index(lt_vk *vk, const char *op, const lt_tensor *t);

/* vk_cache.c: the on-disk pipeline cache. Never fails: a missing, corrupt or foreign file
 * gives an empty cache (with a debug note when LATHE_VK_DEBUG is set). */
void lt_vk_cache_load(lt_vk *vk);
void lt_vk_cache_save(lt_vk *vk);

/* vk_coopmat.c: before device creation, find the cooperative-matrix variants worth enabling
 * (sets cm_want_*); then chain the features they need into the device's create info; after
 * the device is up, run the self-test that turns them on. None of it fails the device. */
void lt_vk_coopmat_query(lt_vk *vk);
typedef struct lt_vk_coopmat_chain {
    VkPhysicalDeviceCooperativeMatrixFeaturesKHR cm;
    lt_vk_bf16_features bf;
    const char *exts[2];
    uint32_t n_exts;
} lt_vk_coopmat_chain;
/* Fill chain for the wanted variants and return the pNext head to put in front of next. */
void *lt_vk_coopmat_chain_init(const lt_vk *vk, lt_vk_coopmat_chain *c, void *next);
void lt_vk_coopmat_selftest(lt_vk *vk);

/* vk_ops.c */
/* matmul with the cooperative-matrix variants allowed (allow_coopmat) or not */
lt_status lt_vk_matmul(lt_device *dev, lt_tensor *C, const lt_tensor *A, const lt_tensor *B,
                       bool trans_a, bool trans_b, float alpha, float beta,
                       const lt_matmul_geom *g, bool allow_coopmat);
extern const lt_backend lt_vk_backend;
/* vk_nf4.c: lt_matmul with an NF4 B */
lt_status lt_vk_matmul_nf4(lt_device *dev, lt_tensor *C, const lt_tensor *A, const lt_tensor *B,
                           bool trans_a, bool trans_b, float alpha, float beta,
                           const lt_matmul_geom *g);

#endif
