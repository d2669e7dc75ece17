/*
 * estimate_overhead.c - the estimator's terms outside the engine's tensors: what a GPU holds
 * beyond lt_device_mem_peak (the driver's fixed cost, lathe's staging buffer, the Vulkan
 * allocator's block granularity) and the process's peak resident memory in host RAM (the
 * weights as loaded, the safetensors mapping while loading and quantizing, the CPU matmul's
 * conversion scratch, OpenBLAS's per-thread buffers, the tokenized dataset, the program).
 *
 * lt_plan_estimate calls lt_plan_estimate_overhead last; it reads the engine-mirroring terms
 * (tracked, workspace, weights, host) and sets overhead, host_ram and peak.
 *
 * Calibration (CPU backend, 2 threads, a shared 2-core machine): /usr/bin/time -v's maximum
 * resident set of `lathe train` (two steps) against host_ram, in MiB; the tracked peak
 * (mem_bytes) equals the estimator's tracked term in every row.
 *   model, run                                         method  tracked   RSS  host_ram
 *   assets/model (256x4, V 1536, bf16) seq 256 x 8,     lora      190.9  265.5  256.3
 *     20k rows of 430 tokens (q, v; r 8, no dropout)   qlora     186.6  260.9  252.0
 *                                                       full      244.7  322.0  310.2
 *   the same, 80k rows                                  lora      190.9  398.6  388.2
 *   the same, 3k rows                                   lora      190.9  211.9  219.0
 *   random 1024x8 GQA 16/4, V 32000, bf16 (293 MiB    lora      338.3  594.1  594.6
 *     file), seq 64 x 1: the load phase dominates      qlora     213.4  481.3  484.4
 *                                                       full     2680.5 2874.3 2727.5
 *   random 512x6, V 8192, f32, seq 256 x 4,             lora      492.2  686.5  671.1
 *     all-linear r 16, dropout 0.05                     qlora     429.1  622.7  624.9
 *                                                       full      678.8  781.9  742.7
 * Full fine-tuning runs 4-5% over the estimate by an amount that grows with vocabulary x
 * width (31 MiB at 4M, 137 MiB at 33M): an f32 copy on the host in the embedding or head path
 * that no term models yet. `lathe bench train` runs about 25 MiB over (its in-process random
 * model), 2-10% on its small presets.
 * Terms:
 *   - the program with its libraries, OpenMP's and OpenBLAS's thread pools, the store and the
 *     tokenizer: BASE_RSS, and BLAS_PER_THREAD per thread;
 *   - the safetensors file is mapped while the model loads and its pages count in the RSS
 *     until the mapping closes: the load peaks at the tensors plus the file;
 *   - the tokenized dataset: ids, labels and offsets per kept token: DATASET_BYTES_PER_TOKEN;
 *   - LoRA dropout's masks, drawn on the host and kept per module for the backward.
 */
#include "plan/plan.h"
#include "train/trainer.h"

#define MIB ((uint64_t)1 << 20)

/* The Vulkan allocator (compute/vulkan/vk_memory.c) carves tensors first-fit out of shared
 * blocks; a tensor of at least half a block gets an allocation of its own. The block grows
 * with the heap: 1/16 of it rounded down to a power of two, within [256 MiB, 2 GiB], and at
 * most a quarter of the heap (maxMemoryAllocationSize, which also caps it, is above 2 GiB on
 * the GPUs lathe meets). When vk_memory.c's default_block changes, change this function: it
 * is the estimator's only model of it. */
uint64_t lt_plan_vk_block_bytes(uint64_t heap_bytes)
{
    uint64_t b = 256 * MIB;
    if (!heap_bytes)
        return b;
    while (b * 2 <= heap_bytes / 16 && b * 2 <= 2048 * MIB)
        b *= 2;
    if (b > heap_bytes / 4)
        b = heap_bytes / 4;
    return b;
}

/* GPU: the driver's context, command pools and compiled pipelines (about 150 shaders), which
 * the device's memory report counts but lathe's tracker does not. */
#define VK_DRIVER_FIXED (256 * MIB)
/* GPU: vk_memory.c's staging buffer (STAGING_BYTES) and its flag buffer. */
#define VK_STAGING (64 * MIB + 1 * MIB)
/* First-fit sub-allocation leaves holes when tensors of different lives interleave: the
 * share of the tracked bytes lost to them at the peak. */
#define VK_FRAGMENTATION_DIV 64

/* Host, while the model loads: the program before its thread pools and the store start
 * (lathe --help alone: 6 MiB). */
#define LOAD_BASE_RSS (8 * MIB)
/* Host, while training: the program with its libraries, OpenMP's and OpenBLAS's thread pools
 * started, the store and the tokenizer open. */
#define BASE_RSS (18 * MIB)
/* Host: OpenBLAS's per-thread GEMM buffer as far as it is touched (1 to 4 threads measured
 * 1 MiB apart each). */
#define BLAS_PER_THREAD (1 * MIB)
/* Host: the tokenized training set, per token kept (at most seq_len of each example): int32
 * ids and labels, and per example its start and the packing's bins (measured 9.1 bytes per
 * kept token at 256-token examples). */
#define DATASET_BYTES_PER_TOKEN 9

/* The largest matrix NF4 quantizes (a layer's, not the embeddings): quantizing converts it to
 * f32 on the host first. */
static uint64_t largest_block_matrix(const lt_model_config *c)
{
    uint64_t D = (uint64_t)c->dim, F = (uint64_t)c->ffn, qd = (uint64_t)(c->n_heads * c->head_dim);
    uint64_t m = D * F > D * qd ? D * F : D * qd;
    return m * 4;
}

void lt_plan_estimate_overhead(const lt_model_config *c, const lt_est_opts *o, bool gpu,
                               lt_estimate *e)
{
    e->overhead = 0;
    if (gpu) {
        /* on average the last block is half used at the peak; an estimator that is to fit
         * a device counts the whole block */
        uint64_t block = lt_plan_vk_block_bytes(o->heap_bytes);
        e->overhead = VK_DRIVER_FIXED + VK_STAGING + block + e->tracked / VK_FRAGMENTATION_DIV;
    }
    e->peak = e->tracked + e->workspace + e->overhead;

    /* loading: the file is mapped and read one tensor at a time, and each tensor's pages
     * leave the resident set once it is uploaded (lt_st_evict), so the mapping adds at most
     * its largest tensor; on the CPU the tensors are host memory too, and QLoRA converts one
     * matrix at a time to f32 before quantizing it */
    const uint64_t wb = o->weight_bytes == 2 ? 2 : 4;
    uint64_t biggest = largest_block_matrix(c) / 4 * wb, table = (uint64_t)c->vocab *
                                                                  (uint64_t)c->dim * wb;
    uint64_t load = LOAD_BASE_RSS + (table > biggest ? table : biggest);
    if (gpu)
        load += VK_STAGING;
    else
        load += e->weights;
    if (o->method == LT_EST_QLORA)
        load += largest_block_matrix(c);
    /* training: the program, the dataset, the host-resident parts of the run, and on the CPU
     * every tensor and the matmul's scratch */
    int threads = o->threads > 0 ? o->threads : 1;
    uint64_t run =
        BASE_RSS + (uint64_t)threads * BLAS_PER_THREAD +
        (uint64_t)(o->dataset_tokens > 0 ? o->dataset_tokens : 0) * DATASET_BYTES_PER_TOKEN +
        e->host;
    if (!gpu)
        run += e->tracked + e->workspace;
    e->host_ram = load > run ? load : run;
}
