/*
 * vk_memory.c - device memory for the Vulkan backend: tensors are carved first-fit out of
 * device-local blocks (one VkBuffer each, addressed by buffer device address) kept in a table
 * that grows as needed; a tensor of half a block or more gets a dedicated block, released
 * with it; empty shared blocks stay cached until an allocation needs the room. Every new
 * block is checked against the budget (VK_EXT_memory_budget where the device has it, else the
 * heap's size; LATHE_VK_BUDGET_BYTES caps it), and out of memory is an error naming the
 * device and the bytes asked for, in use and in the budget. A staging buffer moves data to
 * and from discrete GPUs (unified-memory devices are written through a mapping instead), a
 * small host-visible flag buffer lets shaders report bad ids, and scratch allocations for
 * multi-pass ops are released at the next sync.
 * It never records ops; uploads and downloads synchronise first.
 */
#include "vk_impl.h"
#include "vk_debug.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALIGN 256u
#define MIN_BLOCK (256ull << 20)
#define MAX_BLOCK (2048ull << 20)
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

/*
 * Size of a shared block: 1/16 of the tensor heap rounded down to a power of two, clamped to
 * [256 MiB, 2 GiB], then to maxMemoryAllocationSize and to a quarter of the heap (small
 * heaps). So a 2-16 GiB heap gets 256 MiB - 1 GiB blocks, 24 GiB gets 1 GiB, 48 GiB and up
 * 2 GiB: a partly filled block wastes at most 1/16 of the heap, and an 80 GiB card needs
 * about 40 blocks. LATHE_VK_BLOCK_BYTES overrides it (tests force tiny blocks).
 */
static VkDeviceSize default_block(const lt_vk *vk)
{
    VkDeviceSize b = MIN_BLOCK;
    while (b * 2 <= vk->heap_bytes / 16 && b * 2 <= MAX_BLOCK)
        b *= 2;
    if (vk->info.max_allocation_bytes && b > vk->info.max_allocation_bytes)
        b = vk->info.max_allocation_bytes / ALIGN * ALIGN;
    if (b > vk->heap_bytes / 4)
        b = vk->heap_bytes / 4 / ALIGN * ALIGN;
    return b < ALIGN ? ALIGN : b;
}

/* Reads a byte count from environment variable name into *out (unset: leaves *out). */
static lt_status env_bytes(lt_vk *vk, const char *name, VkDeviceSize lo, VkDeviceSize *out)
{
    const char *v = getenv(name);
    if (!v || !v[0])
        return LT_OK;
    char *end = NULL;
    unsigned long long n = strtoull(v, &end, 10);
    if (*end || v[0] == '-' || n < lo || n > (1ull << 50))
        return lt_dev_error(vk->dev, LT_ERR_ARG,
                            "%s: %s must be a byte count from %llu to 2^50, got '%.64s'",
                            vk->dev->name, name, (unsigned long long)lo, v);
    *out = n;
    return LT_OK;
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
    vk->heap_index = vk->memprops.memoryTypes[ti].heapIndex;
    vk->heap_bytes = vk->memprops.memoryHeaps[vk->heap_index].size;
    vk->block_bytes = default_block(vk);
    lt_status st = env_bytes(vk, "LATHE_VK_BLOCK_BYTES", 4096, &vk->block_bytes);
    if (st == LT_OK)
        st = env_bytes(vk, "LATHE_VK_BUDGET_BYTES", 1, &vk->budget_cap);
    if (st != LT_OK)
        return st;
    vk->block_bytes = round_up(vk->block_bytes, ALIGN);

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

/* Give block slot i back to the driver and mark the slot unused. */
static void drop_block(lt_vk *vk, int i)
{
    lt_vk_block *b = &vk->blocks[i];
    if (!b->mem)
        return;
    drop_buffer(vk, &b->buf, &b->mem);
    free(b->free_list);
    vk->reserved_bytes -= b->size;
    vk->live_blocks--;
    memset(b, 0, sizeof *b);
    while (vk->n_blocks > 0 && !vk->blocks[vk->n_blocks - 1].mem)
        vk->n_blocks--;
}

void lt_vk_memory_free(lt_vk *vk)
{
    lt_vk_release_deferred(vk);
    free(vk->deferred);
    vk->deferred = NULL;
    for (int i = vk->n_blocks - 1; i >= 0; i--)
        drop_block(vk, i);
    free(vk->blocks);
    vk->blocks = NULL;
    vk->n_blocks = vk->cap_blocks = 0;
    drop_buffer(vk, &vk->staging, &vk->staging_mem);
    drop_buffer(vk, &vk->flag_buf, &vk->flag_mem);
}

/* Release every cached empty shared block; returns the bytes given back. */
static VkDeviceSize trim(lt_vk *vk)
{
    VkDeviceSize freed = 0;
    for (int i = vk->n_blocks - 1; i >= 0; i--) {
        const lt_vk_block *b = &vk->blocks[i];
        if (b->mem && !b->dedicated && b->n_allocs == 0) {
            freed += b->size;
            drop_block(vk, i);
        }
    }
    return freed;
}

/* The budget tensor blocks are allocated against: its bytes, the bytes of it already used,
 * and where the figure comes from. */
typedef struct budget_view {
    VkDeviceSize budget, usage;
    const char *source;
} budget_view;

static budget_view budget_of(lt_vk *vk)
{
    budget_view v = {vk->heap_bytes, vk->reserved_bytes, "the heap's size"};
    if (vk->memory_budget) {
        VkPhysicalDeviceMemoryBudgetPropertiesEXT mb = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_BUDGET_PROPERTIES_EXT};
        VkPhysicalDeviceMemoryProperties2 mp = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_PROPERTIES_2, .pNext = &mb};
        vk->f.vkGetPhysicalDeviceMemoryProperties2(vk->phys, &mp);
        if (mb.heapBudget[vk->heap_index] > 0) {
            v.budget = mb.heapBudget[vk->heap_index];
            v.usage = mb.heapUsage[vk->heap_index];
            v.source = "VK_EXT_memory_budget";
        }
    }
    VkDeviceSize left = v.budget > v.usage ? v.budget - v.usage : 0;
    if (vk->budget_cap) {
        VkDeviceSize cap_left =
            vk->budget_cap > vk->reserved_bytes ? vk->budget_cap - vk->reserved_bytes : 0;
        if (cap_left <= left)
            v = (budget_view){vk->budget_cap, vk->reserved_bytes, "LATHE_VK_BUDGET_BYTES"};
    }
    return v;
}

bool lt_vk_mem_budget(lt_device *dev, uint64_t *budget_bytes, uint64_t *usage_bytes)
{
    budget_view v = budget_of(lt_vk_of(dev));
    *budget_bytes = v.budget;
    *usage_bytes = v.usage;
    return true;
}

static VkDeviceSize used_total(const lt_vk *vk)
{
    VkDeviceSize used = 0;
    for (int i = 0; i < vk->n_blocks; i++)
        used += vk->blocks[i].used;
    return used;
}

static lt_status oom(lt_vk *vk, size_t bytes, const char *why)
{
    budget_view v = budget_of(vk);
    VkDeviceSize used = used_total(vk), left = v.budget > v.usage ? v.budget - v.usage : 0;
    return lt_dev_error(vk->dev, LT_ERR_OOM,
                        "%s: out of device memory: asked for %zu bytes (%.1f MiB); lathe has "
                        "%llu bytes (%.1f MiB) in use, %.1f MiB reserved in %d block%s; budget "
                        "%llu bytes (%.1f MiB, from %s), %.1f MiB of it used, about %llu "
                        "bytes (%.1f MiB) available%s%s",
                        vk->dev->name, bytes, MIB(bytes), (unsigned long long)used, MIB(used),
                        MIB(vk->reserved_bytes), vk->live_blocks, vk->live_blocks == 1 ? "" : "s",
                        (unsigned long long)v.budget, MIB(v.budget), v.source, MIB(v.usage),
                        (unsigned long long)left, MIB(left), why ? ": " : "", why ? why : "");
}

/* A free slot in the block table (growing it), or -1 on host OOM. */
static int free_slot(lt_vk *vk)
{
    for (int i = 0; i < vk->n_blocks; i++)
        if (!vk->blocks[i].mem)
            return i;
    if (vk->n_blocks == vk->cap_blocks) {
        int cap = vk->cap_blocks ? vk->cap_blocks * 2 : 16;
        lt_vk_block *n = realloc(vk->blocks, (size_t)cap * sizeof *n);
        if (!n)
            return -1;
        vk->blocks = n;
        vk->cap_blocks = cap;
    }
    memset(&vk->blocks[vk->n_blocks], 0, sizeof vk->blocks[0]);
    return vk->n_blocks++;
}

/* A new block of bytes (dedicated: for one tensor) in slot *index. Within the budget: cached
 * empty blocks are released first when the new one would not fit otherwise. */
static lt_status add_block(lt_vk *vk, VkDeviceSize bytes, bool dedicated, int *index)
{
    if (vk->info.max_allocation_bytes && bytes > vk->info.max_allocation_bytes)
        return oom(vk, (size_t)bytes, "larger than the device's maxMemoryAllocationSize");
    uint32_t max_count = vk->props.limits.maxMemoryAllocationCount;
    /* + 3: the new block, the staging and the flag buffers */
    if (max_count && (uint32_t)vk->live_blocks + 3 > max_count && trim(vk) == 0)
        return oom(vk, (size_t)bytes, "the device's maxMemoryAllocationCount is reached "
                                      "(LATHE_VK_BLOCK_BYTES too small?)");
    budget_view v = budget_of(vk);
    if (v.usage + bytes > v.budget && trim(vk) > 0)
        v = budget_of(vk);
    if (v.usage + bytes > v.budget)
        return oom(vk, (size_t)bytes, NULL);
    int i = free_slot(vk);
    if (i < 0)
        return lt_dev_error(vk->dev, LT_ERR_OOM, "%s: out of host memory", vk->dev->name);
    lt_vk_block *b = &vk->blocks[i];
    VkResult r = make_buffer(vk, bytes, TENSOR_USAGE, vk->device_type_index, true, &b->buf,
                             &b->mem, vk->unified ? &b->mapped : NULL);
    if ((r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY) && trim(vk) > 0) {
        i = free_slot(vk); /* trim may have shrunk the table */
        if (i < 0)
            return lt_dev_error(vk->dev, LT_ERR_OOM, "%s: out of host memory", vk->dev->name);
        b = &vk->blocks[i];
        r = make_buffer(vk, bytes, TENSOR_USAGE, vk->device_type_index, true, &b->buf, &b->mem,
                        vk->unified ? &b->mapped : NULL);
    }
    if (r != VK_SUCCESS) {
        memset(b, 0, sizeof *b);
        while (vk->n_blocks > 0 && !vk->blocks[vk->n_blocks - 1].mem)
            vk->n_blocks--;
        if (r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY)
            return oom(vk, (size_t)bytes, lt_vk_result_str(r));
        return lt_vk_fail(vk, "device memory allocation", r);
    }
    VkBufferDeviceAddressInfo bai = {.sType = VK_STRUCTURE_TYPE_BUFFER_DEVICE_ADDRESS_INFO,
                                     .buffer = b->buf};
    b->addr = vk->f.vkGetBufferDeviceAddress(vk->device, &bai);
    b->size = bytes;
    b->dedicated = dedicated;
    vk->reserved_bytes += bytes;
    vk->live_blocks++;
    if (vk->live_blocks > vk->peak_blocks)
        vk->peak_blocks = vk->live_blocks;
    if (dedicated) { /* taken whole at once: no free list */
        b->used = bytes;
        b->n_allocs = 1;
    } else {
        b->free_list = malloc(8 * sizeof *b->free_list);
        if (!b->free_list) {
            drop_block(vk, i);
            return lt_dev_error(vk->dev, LT_ERR_OOM, "%s: out of host memory", vk->dev->name);
        }
        b->cap_free = 8;
        b->n_free = 1;
        b->free_list[0] = (lt_vk_span){0, bytes};
    }
    *index = i;
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
    lt_status st = LT_OK;
    if (need >= vk->block_bytes / 2) { /* a block of its own, freed with the tensor */
        st = add_block(vk, need, true, &bi);
    } else {
        for (int i = 0; i < vk->n_blocks && bi < 0; i++)
            if (vk->blocks[i].mem && !vk->blocks[i].dedicated &&
                take(&vk->blocks[i], need, &off))
                bi = i;
        if (bi < 0) {
            /* near the end of the budget, a block only as large as what is left */
            VkDeviceSize size = vk->block_bytes;
            budget_view v = budget_of(vk);
            VkDeviceSize left = v.budget > v.usage ? v.budget - v.usage : 0;
            if (left < size)
                size = left / ALIGN * ALIGN < need ? need : left / ALIGN * ALIGN;
            st = add_block(vk, size, false, &bi);
            if (st == LT_OK)
                take(&vk->blocks[bi], need, &off);
        }
    }
    if (st != LT_OK) {
        free(a);
        return st;
    }
    a->block = bi;
    a->offset = off;
    a->size = need;
    a->addr = vk->blocks[bi].addr + off;
    *buf = a;
    return LT_OK;
}

/* Give an allocation back to its block; a dedicated block goes back to the driver, an empty
 * shared one stays cached (trim releases it under pressure). */
static void free_alloc(lt_vk *vk, lt_vk_alloc *a)
{
    int bi = a->block;
    lt_vk_block *b = &vk->blocks[bi];
    if (b->dedicated)
        drop_block(vk, bi);
    else
        give_back(b, a->offset, a->size);
    free(a);
}

int lt_vk_debug_blocks(const lt_device *dev, int *peak, uint64_t *block_bytes,
                       uint64_t *reserved_bytes)
{
    if (!dev || dev->kind != LT_DEVICE_VULKAN || !dev->impl)
        return -1;
    const lt_vk *vk = lt_vk_of(dev);
    if (peak)
        *peak = vk->peak_blocks;
    if (block_bytes)
        *block_bytes = vk->block_bytes;
    if (reserved_bytes)
        *reserved_bytes = vk->reserved_bytes;
    return vk->live_blocks;
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
