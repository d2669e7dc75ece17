/*
 * vk_exec.c - recording and running work on a Vulkan device: the pipeline cache (one pipeline
 * per shader + specialization constants, created on first use), command buffers recorded op
 * by op with a barrier only where a dispatch touches memory written earlier in the batch (or
 * writes memory read earlier), submission when the batch budget fills or at a sync point,
 * timestamp profiling, the error flags shaders raise for bad ids, and the texel-buffer views
 * and descriptor sets of dispatches that read inputs through texel buffers (one pool per
 * batch, reset when the batch completes).
 * It never allocates tensors (vk_memory.c) and knows no op semantics (vk_ops.c).
 */
#include "vk_impl.h"

#include "shaders.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Texel-buffer inputs need R32G32B32A32_UINT uniform texel buffers (required by the spec,
 * checked anyway) and a set layout; without them matmul reads through addresses. */
static lt_status texel_init(lt_vk *vk, const VkPushConstantRange *pcr)
{
    const lt_vk_fns *f = &vk->f;
    VkFormatProperties fp;
    f->vkGetPhysicalDeviceFormatProperties(vk->phys, VK_FORMAT_R32G32B32A32_UINT, &fp);
    if (!(fp.bufferFeatures & VK_FORMAT_FEATURE_UNIFORM_TEXEL_BUFFER_BIT) ||
        getenv("LATHE_VK_NO_TEXEL"))
        return LT_OK;
    VkDescriptorSetLayoutBinding bind[LT_VK_TEX_PER_DISPATCH];
    for (uint32_t i = 0; i < LT_VK_TEX_PER_DISPATCH; i++)
        bind[i] = (VkDescriptorSetLayoutBinding){
            .binding = i,
            .descriptorType = VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER,
            .descriptorCount = 1,
            .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT};
    VkDescriptorSetLayoutCreateInfo sli = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
        .bindingCount = LT_VK_TEX_PER_DISPATCH,
        .pBindings = bind};
    VkResult r = f->vkCreateDescriptorSetLayout(vk->device, &sli, NULL, &vk->tex_set_layout);
    if (r != VK_SUCCESS)
        return lt_vk_fail(vk, "vkCreateDescriptorSetLayout", r);
    VkPipelineLayoutCreateInfo lci = {.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
                                      .setLayoutCount = 1,
                                      .pSetLayouts = &vk->tex_set_layout,
                                      .pushConstantRangeCount = 1,
                                      .pPushConstantRanges = pcr};
    r = f->vkCreatePipelineLayout(vk->device, &lci, NULL, &vk->tex_layout);
    if (r != VK_SUCCESS)
        return lt_vk_fail(vk, "vkCreatePipelineLayout", r);
    VkDeviceSize a = vk->props.limits.minTexelBufferOffsetAlignment;
    vk->texel_align = a > 16 ? a : 16;
    vk->max_texels = vk->props.limits.maxTexelBufferElements;
    vk->texel = true;
    return LT_OK;
}

/* Destroy the views of a completed batch and recycle its descriptor sets. */
static void release_texels(lt_vk *vk, lt_vk_batch *b)
{
    for (int i = 0; i < b->n_views; i++)
        vk->f.vkDestroyBufferView(vk->device, b->views[i], NULL);
    b->n_views = 0;
    if (b->n_sets > 0)
        vk->f.vkResetDescriptorPool(vk->device, b->tex_pool, 0);
    b->n_sets = 0;
}

lt_status lt_vk_exec_init(lt_vk *vk)
{
    const lt_vk_fns *f = &vk->f;
    VkResult r;
    vk->push_bytes = vk->props.limits.maxPushConstantsSize < 128
                         ? vk->props.limits.maxPushConstantsSize
                         : 128;
    VkPushConstantRange pcr = {.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
                               .offset = 0,
                               .size = vk->push_bytes};
    VkPipelineLayoutCreateInfo lci = {.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
                                      .pushConstantRangeCount = 1,
                                      .pPushConstantRanges = &pcr};
    r = f->vkCreatePipelineLayout(vk->device, &lci, NULL, &vk->layout);
    if (r != VK_SUCCESS)
        return lt_vk_fail(vk, "vkCreatePipelineLayout", r);
    lt_status st = texel_init(vk, &pcr);
    if (st != LT_OK)
        return st;
    lt_vk_cache_load(vk);
    VkCommandPoolCreateInfo pci = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                                   .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
                                   .queueFamilyIndex = vk->queue_family};
    r = f->vkCreateCommandPool(vk->device, &pci, NULL, &vk->pool);
    if (r != VK_SUCCESS)
        return lt_vk_fail(vk, "vkCreateCommandPool", r);
    for (int i = 0; i < LT_VK_CMDBUFS; i++) {
        lt_vk_batch *b = &vk->batch[i];
        VkCommandBufferAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                          .commandPool = vk->pool,
                                          .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                          .commandBufferCount = 1};
        r = f->vkAllocateCommandBuffers(vk->device, &ai, &b->cb);
        if (r != VK_SUCCESS)
            return lt_vk_fail(vk, "vkAllocateCommandBuffers", r);
        VkFenceCreateInfo fci = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
        r = f->vkCreateFence(vk->device, &fci, NULL, &b->fence);
        if (r != VK_SUCCESS)
            return lt_vk_fail(vk, "vkCreateFence", r);
        if (vk->texel) {
            VkDescriptorPoolSize ps = {.type = VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER,
                                       .descriptorCount = LT_VK_TEX_PER_DISPATCH *
                                                          LT_VK_OPS_PER_BATCH};
            VkDescriptorPoolCreateInfo dpi = {
                .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
                .maxSets = LT_VK_OPS_PER_BATCH,
                .poolSizeCount = 1,
                .pPoolSizes = &ps};
            r = f->vkCreateDescriptorPool(vk->device, &dpi, NULL, &b->tex_pool);
            if (r != VK_SUCCESS)
                return lt_vk_fail(vk, "vkCreateDescriptorPool", r);
        }
        if (vk->timestamps) {
            VkQueryPoolCreateInfo qci = {.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
                                         .queryType = VK_QUERY_TYPE_TIMESTAMP,
                                         .queryCount = 2 * LT_VK_OPS_PER_BATCH};
            r = f->vkCreateQueryPool(vk->device, &qci, NULL, &b->queries);
            if (r != VK_SUCCESS)
                return lt_vk_fail(vk, "vkCreateQueryPool", r);
        }
    }
    return LT_OK;
}

void lt_vk_exec_free(lt_vk *vk)
{
    const lt_vk_fns *f = &vk->f;
    lt_vk_cache_save(vk);
    if (vk->pcache)
        f->vkDestroyPipelineCache(vk->device, vk->pcache, NULL);
    vk->pcache = VK_NULL_HANDLE;
    for (int i = 0; i < vk->n_pipes; i++)
        f->vkDestroyPipeline(vk->device, vk->pipes[i].pipe, NULL);
    free(vk->pipes);
    vk->pipes = NULL;
    vk->n_pipes = 0;
    for (int i = 0; i < LT_VK_CMDBUFS; i++) {
        if (vk->batch[i].tex_pool) {
            release_texels(vk, &vk->batch[i]);
            f->vkDestroyDescriptorPool(vk->device, vk->batch[i].tex_pool, NULL);
        }
        if (vk->batch[i].fence)
            f->vkDestroyFence(vk->device, vk->batch[i].fence, NULL);
        if (vk->batch[i].queries)
            f->vkDestroyQueryPool(vk->device, vk->batch[i].queries, NULL);
    }
    if (vk->pool)
        f->vkDestroyCommandPool(vk->device, vk->pool, NULL);
    if (vk->layout)
        f->vkDestroyPipelineLayout(vk->device, vk->layout, NULL);
    if (vk->tex_layout)
        f->vkDestroyPipelineLayout(vk->device, vk->tex_layout, NULL);
    if (vk->tex_set_layout)
        f->vkDestroyDescriptorSetLayout(vk->device, vk->tex_set_layout, NULL);
    free(vk->written);
    free(vk->read);
    vk->written = vk->read = NULL;
}

/* ---- pipelines --------------------------------------------------------------------------- */

static lt_status get_pipeline(lt_vk *vk, const char *shader, const uint32_t *spec, int n_spec,
                              VkPipelineLayout layout, VkPipeline *out)
{
    for (int i = 0; i < vk->n_pipes; i++) {
        const lt_vk_pipeline *p = &vk->pipes[i];
        if (p->n_spec == n_spec && strcmp(p->shader, shader) == 0 &&
            (n_spec == 0 || memcmp(p->spec, spec, (size_t)n_spec * sizeof *spec) == 0)) {
            *out = p->pipe;
            return LT_OK;
        }
    }
    const lt_shader_blob *blob = lt_shader_find(shader);
    if (!blob)
        return lt_dev_error(vk->dev, LT_ERR_UNSUPPORTED, "%s: shader '%s' is not built in",
                            vk->dev->name, shader);
    if (n_spec > LT_VK_MAX_SPEC)
        return lt_dev_error(vk->dev, LT_ERR_ARG, "%s: too many specialization constants",
                            vk->dev->name);
    if (vk->n_pipes == vk->cap_pipes) {
        int cap = vk->cap_pipes ? vk->cap_pipes * 2 : 32;
        lt_vk_pipeline *n = realloc(vk->pipes, (size_t)cap * sizeof *n);
        if (!n)
            return lt_dev_error(vk->dev, LT_ERR_OOM, "%s: out of host memory", vk->dev->name);
        vk->pipes = n;
        vk->cap_pipes = cap;
    }
    const lt_vk_fns *f = &vk->f;
    VkShaderModuleCreateInfo mci = {.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
                                    .codeSize = blob->bytes,
                                    .pCode = blob->words};
    VkShaderModule mod;
    VkResult r = f->vkCreateShaderModule(vk->device, &mci, NULL, &mod);
    if (r != VK_SUCCESS)
        return lt_vk_fail(vk, shader, r);
    VkSpecializationMapEntry entries[LT_VK_MAX_SPEC];
    for (int i = 0; i < n_spec; i++)
        entries[i] = (VkSpecializationMapEntry){
            .constantID = (uint32_t)i, .offset = (uint32_t)(i * 4), .size = 4};
    VkSpecializationInfo si = {.mapEntryCount = (uint32_t)n_spec,
                               .pMapEntries = entries,
                               .dataSize = (size_t)n_spec * 4,
                               .pData = spec};
    VkComputePipelineCreateInfo cci = {
        .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        .stage = {.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                  .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                  .module = mod,
                  .pName = "main",
                  .pSpecializationInfo = n_spec ? &si : NULL},
        .layout = layout};
    VkPipeline pipe;
    r = f->vkCreateComputePipelines(vk->device, vk->pcache, 1, &cci, NULL, &pipe);
    f->vkDestroyShaderModule(vk->device, mod, NULL);
    if (r != VK_SUCCESS)
        return lt_vk_fail(vk, shader, r);
    lt_vk_pipeline *p = &vk->pipes[vk->n_pipes++];
    p->shader = blob->name;
    p->n_spec = n_spec;
    if (n_spec)
        memcpy(p->spec, spec, (size_t)n_spec * sizeof *spec);
    p->pipe = pipe;
    *out = pipe;
    return LT_OK;
}

/* ---- batches ----------------------------------------------------------------------------- */

static void add_profile(lt_device *dev, const char *op, double seconds)
{
    for (int i = 0; i < dev->n_profile; i++) {
        if (strcmp(dev->profile[i].op, op) == 0) {
            dev->profile[i].calls++;
            dev->profile[i].seconds += seconds;
            return;
        }
    }
    if (dev->n_profile < LT_PROFILE_MAX)
        dev->profile[dev->n_profile++] = (lt_profile_entry){op, 1, seconds};
}

/* Wait for batch b to finish and collect its timestamps. */
static lt_status finish_batch(lt_vk *vk, lt_vk_batch *b)
{
    if (!b->in_flight)
        return LT_OK;
    const lt_vk_fns *f = &vk->f;
    VkResult r = f->vkWaitForFences(vk->device, 1, &b->fence, VK_TRUE, UINT64_MAX);
    b->in_flight = false;
    if (r != VK_SUCCESS)
        return lt_vk_fail(vk, "waiting for the GPU", r);
    f->vkResetFences(vk->device, 1, &b->fence);
    release_texels(vk, b);
    if (b->n_stamps > 0) {
        uint64_t *ts = malloc((size_t)b->n_stamps * 2 * sizeof *ts);
        if (ts && f->vkGetQueryPoolResults(vk->device, b->queries, 0, (uint32_t)b->n_stamps * 2,
                                           (size_t)b->n_stamps * 2 * sizeof *ts, ts,
                                           sizeof *ts,
                                           VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT) ==
                      VK_SUCCESS) {
            for (int k = 0; k < b->n_stamps; k++) {
                double ns = (double)(ts[2 * k + 1] - ts[2 * k]) * vk->timestamp_period_ns;
                add_profile(vk->dev, b->stamp_op[k], ns * 1e-9);
            }
        }
        free(ts);
        b->n_stamps = 0;
    }
    return LT_OK;
}

static void full_barrier(lt_vk *vk, VkCommandBuffer cb)
{
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_MEMORY_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_MEMORY_READ_BIT | VK_ACCESS_MEMORY_WRITE_BIT};
    vk->f.vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_ALL_COMMANDS_BIT,
                               VK_PIPELINE_STAGE_ALL_COMMANDS_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
}

lt_status lt_vk_command_buffer(lt_vk *vk, VkCommandBuffer *cb)
{
    lt_vk_batch *b = &vk->batch[vk->cur];
    if (!b->recording) {
        lt_status st = finish_batch(vk, b);
        if (st != LT_OK)
            return st;
        const lt_vk_fns *f = &vk->f;
        f->vkResetCommandBuffer(b->cb, 0);
        VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                       .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
        VkResult r = f->vkBeginCommandBuffer(b->cb, &bi);
        if (r != VK_SUCCESS)
            return lt_vk_fail(vk, "vkBeginCommandBuffer", r);
        if (b->queries)
            f->vkCmdResetQueryPool(b->cb, b->queries, 0, 2 * LT_VK_OPS_PER_BATCH);
        /* earlier batches may still run: order this one after them */
        full_barrier(vk, b->cb);
        b->recording = true;
        b->n_dispatch = 0;
        b->n_stamps = 0;
        vk->n_written = vk->n_read = 0;
    }
    *cb = b->cb;
    return LT_OK;
}

/* End and submit the batch being recorded; wait for it when wait is set. */
static lt_status submit(lt_vk *vk, bool wait)
{
    lt_vk_batch *b = &vk->batch[vk->cur];
    if (!b->recording)
        return LT_OK;
    const lt_vk_fns *f = &vk->f;
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_MEMORY_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_HOST_READ_BIT};
    f->vkCmdPipelineBarrier(b->cb, VK_PIPELINE_STAGE_ALL_COMMANDS_BIT,
                            VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
    b->recording = false;
    VkResult r = f->vkEndCommandBuffer(b->cb);
    if (r != VK_SUCCESS)
        return lt_vk_fail(vk, "vkEndCommandBuffer", r);
    VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
                       .commandBufferCount = 1,
                       .pCommandBuffers = &b->cb};
    r = f->vkQueueSubmit(vk->queue, 1, &si, b->fence);
    if (r != VK_SUCCESS)
        return lt_vk_fail(vk, "vkQueueSubmit", r);
    b->in_flight = true;
    vk->cur = (vk->cur + 1) % LT_VK_CMDBUFS;
    return wait ? finish_batch(vk, b) : LT_OK;
}

bool lt_vk_busy(const lt_vk *vk)
{
    for (int i = 0; i < LT_VK_CMDBUFS; i++)
        if (vk->batch[i].recording || vk->batch[i].in_flight)
            return true;
    return false;
}

lt_status lt_vk_flush(lt_vk *vk)
{
    lt_status st = submit(vk, false);
    for (int i = 0; i < LT_VK_CMDBUFS; i++) {
        lt_status s2 = finish_batch(vk, &vk->batch[i]);
        if (st == LT_OK)
            st = s2;
    }
    if (st == LT_OK)
        lt_vk_release_deferred(vk);
    return st;
}

lt_status lt_vk_sync(lt_device *dev)
{
    lt_vk *vk = lt_vk_of(dev);
    lt_status st = lt_vk_flush(vk);
    if (st != LT_OK)
        return st;
    /* flags raised by shaders: [0] embedding id, [1] cross-entropy label, [2] gather id;
     * [4 + k] holds the offending value */
    static const char *what[3] = {"lt_embedding: an id", "lt_cross_entropy: a label",
                                  "lt_logprob_gather: an id"};
    for (int k = 0; k < 3; k++) {
        if (vk->flag_map[k]) {
            int bad = (int)vk->flag_map[4 + k];
            memset(vk->flag_map, 0, 64);
            return lt_dev_error(dev, LT_ERR_ARG,
                                "%s: %s was out of range (e.g. %d); the op wrote zeros for it",
                                dev->name, what[k], bad);
        }
    }
    return LT_OK;
}

/* ---- index limits ------------------------------------------------------------------------ */

int64_t lt_vk_max_index(void)
{
    const char *v = getenv("LATHE_VK_MAX_INDEX");
    if (v && v[0]) {
        char *end = NULL;
        long long n = strtoll(v, &end, 10);
        if (!*end && n >= 256 && n < INT32_MAX)
            return n;
    }
    return INT32_MAX;
}

lt_status lt_vk_check_index(lt_vk *vk, const char *op, const lt_tensor *t)
{
    int64_t max = lt_vk_max_index();
    if (!t || t->numel <= max)
        return LT_OK;
    char d[96];
    return lt_dev_error(vk->dev, LT_ERR_UNSUPPORTED,
                        "%s: lt_%s: tensor '%s' %s has %lld elements; the Vulkan shaders index "
                        "at most %lld elements of one tensor (32-bit indices): split it, e.g. "
                        "fewer tokens per micro-batch or the loss computed in chunks",
                        vk->dev->name, op, t->name[0] ? t->name : "(unnamed)",
                        lt_tensor_describe(t, d, sizeof d), (long long)t->numel,
                        (long long)max);
}

/* ---- recording --------------------------------------------------------------------------- */

static bool overlaps(const lt_vk_range *list, int n, lt_vk_range r)
{
    for (int i = 0; i < n; i++)
        if (r.lo < list[i].hi && list[i].lo < r.hi)
            return true;
    return false;
}

static bool push_range(lt_vk_range **list, int *n, int *cap, lt_vk_range r)
{
    if (*n == *cap) {
        int c = *cap ? *cap * 2 : 64;
        lt_vk_range *p = realloc(*list, (size_t)c * sizeof *p);
        if (!p)
            return false;
        *list = p;
        *cap = c;
    }
    (*list)[(*n)++] = r;
    return true;
}

lt_status lt_vk_op_begin(lt_vk *vk, const char *name)
{
    vk->op_name = name;
    vk->op_dispatches = 0;
    if (!vk->dev->profiling || !vk->timestamps)
        return LT_OK;
    if (vk->batch[vk->cur].recording && vk->batch[vk->cur].n_stamps >= LT_VK_OPS_PER_BATCH) {
        lt_status st = submit(vk, false);
        if (st != LT_OK)
            return st;
    }
    VkCommandBuffer cb;
    lt_status st = lt_vk_command_buffer(vk, &cb);
    if (st != LT_OK)
        return st;
    lt_vk_batch *b = &vk->batch[vk->cur];
    vk->f.vkCmdWriteTimestamp(cb, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, b->queries,
                              (uint32_t)(2 * b->n_stamps));
    return LT_OK;
}

lt_status lt_vk_op_end(lt_vk *vk)
{
    lt_vk_batch *b = &vk->batch[vk->cur];
    if (vk->dev->profiling && vk->timestamps && b->recording && vk->op_name) {
        vk->f.vkCmdWriteTimestamp(b->cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, b->queries,
                                  (uint32_t)(2 * b->n_stamps + 1));
        b->stamp_op[b->n_stamps++] = vk->op_name;
    }
    vk->op_name = NULL;
    if (b->recording && b->n_dispatch >= LT_VK_OPS_PER_BATCH)
        return submit(vk, false);
    return LT_OK;
}

/* Create the views of d's texel inputs and bind them as set 0; they live until the batch
 * completes. */
static lt_status bind_texels(lt_vk *vk, VkCommandBuffer cb, const lt_vk_dispatch *d)
{
    const lt_vk_fns *f = &vk->f;
    lt_vk_batch *b = &vk->batch[vk->cur];
    VkBufferView views[LT_VK_TEX_PER_DISPATCH];
    int n = 0;
    for (int i = 0; i < LT_VK_TEX_PER_DISPATCH; i++) {
        const lt_vk_texel *t = &d->tex[i < d->n_tex ? i : 0]; /* unused slots repeat slot 0 */
        VkBufferViewCreateInfo vi = {.sType = VK_STRUCTURE_TYPE_BUFFER_VIEW_CREATE_INFO,
                                     .buffer = vk->blocks[t->block].buf,
                                     .format = VK_FORMAT_R32G32B32A32_UINT,
                                     .offset = t->offset,
                                     .range = t->range};
        VkResult r = f->vkCreateBufferView(vk->device, &vi, NULL, &views[i]);
        if (r != VK_SUCCESS) {
            for (int j = 0; j < i; j++)
                f->vkDestroyBufferView(vk->device, views[j], NULL);
            return lt_vk_fail(vk, "vkCreateBufferView", r);
        }
        n++;
    }
    VkDescriptorSetAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
                                      .descriptorPool = b->tex_pool,
                                      .descriptorSetCount = 1,
                                      .pSetLayouts = &vk->tex_set_layout};
    VkDescriptorSet set;
    VkResult r = f->vkAllocateDescriptorSets(vk->device, &ai, &set);
    if (r != VK_SUCCESS) {
        for (int j = 0; j < n; j++)
            f->vkDestroyBufferView(vk->device, views[j], NULL);
        return lt_vk_fail(vk, "vkAllocateDescriptorSets", r);
    }
    b->n_sets++;
    VkWriteDescriptorSet w[LT_VK_TEX_PER_DISPATCH];
    for (int i = 0; i < n; i++) {
        b->views[b->n_views++] = views[i];
        w[i] = (VkWriteDescriptorSet){.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
                                      .dstSet = set,
                                      .dstBinding = (uint32_t)i,
                                      .descriptorCount = 1,
                                      .descriptorType = VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER,
                                      .pTexelBufferView = &views[i]};
    }
    f->vkUpdateDescriptorSets(vk->device, (uint32_t)n, w, 0, NULL);
    f->vkCmdBindDescriptorSets(cb, VK_PIPELINE_BIND_POINT_COMPUTE, vk->tex_layout, 0, 1, &set, 0,
                               NULL);
    return LT_OK;
}

lt_status lt_vk_record(lt_vk *vk, const lt_vk_dispatch *d)
{
    VkPipeline pipe = VK_NULL_HANDLE;
    if (d->n_tex > 0 && !vk->texel)
        return lt_dev_error(vk->dev, LT_ERR_UNSUPPORTED, "%s: shader %s needs texel buffers",
                            vk->dev->name, d->shader);
    VkPipelineLayout layout = d->n_tex > 0 ? vk->tex_layout : vk->layout;
    lt_status st = get_pipeline(vk, d->shader, d->spec, d->n_spec, layout, &pipe);
    if (st != LT_OK)
        return st;
    if (d->pc_bytes > vk->push_bytes)
        return lt_dev_error(vk->dev, LT_ERR_UNSUPPORTED,
                            "%s: shader %s needs %u bytes of push constants, device has %u",
                            vk->dev->name, d->shader, d->pc_bytes, vk->push_bytes);
    if (d->groups[0] == 0 || d->groups[1] == 0 || d->groups[2] == 0)
        return LT_OK;
    for (int i = 0; i < 3; i++)
        if (d->groups[i] > vk->props.limits.maxComputeWorkGroupCount[i])
            return lt_dev_error(vk->dev, LT_ERR_UNSUPPORTED,
                                "%s: lt_%s: shader %s needs %u workgroups in dimension %d, "
                                "device allows %u (maxComputeWorkGroupCount)",
                                vk->dev->name, vk->op_name ? vk->op_name : "op", d->shader,
                                d->groups[i], i, vk->props.limits.maxComputeWorkGroupCount[i]);
    VkCommandBuffer cb;
    st = lt_vk_command_buffer(vk, &cb);
    if (st != LT_OK)
        return st;
    bool hazard = false;
    for (int i = 0; i < d->n_reads && !hazard; i++)
        hazard = overlaps(vk->written, vk->n_written, d->reads[i]);
    for (int i = 0; i < d->n_writes && !hazard; i++)
        hazard = overlaps(vk->written, vk->n_written, d->writes[i]) ||
                 overlaps(vk->read, vk->n_read, d->writes[i]);
    const lt_vk_fns *f = &vk->f;
    if (hazard) {
        VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                              .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT,
                              .dstAccessMask = VK_ACCESS_SHADER_READ_BIT |
                                               VK_ACCESS_SHADER_WRITE_BIT};
        f->vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                                VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1, &mb, 0, NULL, 0,
                                NULL);
        vk->n_written = vk->n_read = 0;
    }
    bool ok = true;
    for (int i = 0; i < d->n_reads; i++)
        ok = ok && push_range(&vk->read, &vk->n_read, &vk->cap_read, d->reads[i]);
    for (int i = 0; i < d->n_writes; i++)
        ok = ok && push_range(&vk->written, &vk->n_written, &vk->cap_written, d->writes[i]);
    if (!ok) { /* out of host memory for the tracker: be conservative */
        full_barrier(vk, cb);
        vk->n_written = vk->n_read = 0;
    }
    if (d->n_tex > 0) {
        st = bind_texels(vk, cb, d);
        if (st != LT_OK)
            return st;
    }
    f->vkCmdBindPipeline(cb, VK_PIPELINE_BIND_POINT_COMPUTE, pipe);
    uint8_t pc[128] = {0};
    memcpy(pc, d->pc, d->pc_bytes);
    f->vkCmdPushConstants(cb, layout, VK_SHADER_STAGE_COMPUTE_BIT, 0,
                          (d->pc_bytes + 3u) & ~3u, pc);
    f->vkCmdDispatch(cb, d->groups[0], d->groups[1], d->groups[2]);
    vk->batch[vk->cur].n_dispatch++;
    vk->op_dispatches++;
    return LT_OK;
}
