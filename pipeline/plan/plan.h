/*
 * plan.h - the method wizard: the decision tree (data in assets/wizard/tree.json, embedded in
 * the binary), the facts gathered from the device, the model and the dataset, the memory and
 * time estimator, and the plan it produces (a training config plus the decision record).
 *
 * Nothing here prints or prompts: the command line asks questions through the walk's
 * "missing" result and calls again. Errors are values with a message naming the JSON path,
 * the fact or the question.
 */
#ifndef LATHE_PLAN_H
#define LATHE_PLAN_H

#include "model/config.h"
#include "model/model.h"
#include "store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- the decision tree ------------------------------------------------------------------ */

typedef struct lt_plan_tree lt_plan_tree;

/* The tree compiled into the program (assets/wizard/tree.json). NULL only when out of memory
 * or when the embedded copy is invalid (err says where). Caller frees with lt_plan_tree_free. */
lt_plan_tree *lt_plan_tree_builtin(char *err, size_t errlen);
/* Parses and validates a tree: every "next" names a node, every fact node ends with an "else"
 * branch, every choice value is unique, every node is reachable from "start", no cycles, and
 * every leaf has a method and a rationale. err names the JSON path ("tree.json: $.nodes.x.
 * choices[2].next: ..."). Caller owns the result. */
lt_plan_tree *lt_plan_tree_parse(const char *json, size_t n, const char *label, char *err,
                                 size_t errlen);
void lt_plan_tree_free(lt_plan_tree *t);

/* Leaves (node ids) in the file's order; n_leaves OUT. Strings owned by the tree. */
int lt_plan_tree_leaves(const lt_plan_tree *t, const char **ids, int max);
/* Questions the walk may ask (answer keys, e.g. "need"), distinct, in file order. */
int lt_plan_tree_questions(const lt_plan_tree *t, const char **keys, int max);
/* For an answer key: its question text and its choice values/labels (NULL when no such key). */
const char *lt_plan_tree_question(const lt_plan_tree *t, const char *key, const char **values,
                                  const char **labels, int max, int *n);

/* A question's default choice (offered at the prompt, never taken silently), or NULL. */
const char *lt_plan_tree_default(const lt_plan_tree *t, const char *key);

/* Named values: answers (strings) and facts (numbers, booleans or strings), as a cJSON object
 * passed around as void * (cJSON stays out of this header's contract). */
typedef enum lt_plan_walk_status {
    LT_PLAN_WALK_LEAF = 0,     /* reached a leaf */
    LT_PLAN_WALK_NEED_ANSWER,  /* a question has no answer: *missing names the answer key */
    LT_PLAN_WALK_NEED_FACT,    /* a fact is unknown: *missing names the fact */
    LT_PLAN_WALK_BAD,          /* an answer is not one of the choices (err says which) */
} lt_plan_walk_status;

/*
 * Walks the tree from its start with answers and facts (cJSON objects; values looked up by
 * key). OUT *path: a cJSON array of steps {node, question, key, value, next, why} (caller
 * frees with cJSON_Delete, also on NEED_*: the path so far). OUT *leaf: the leaf's node id
 * (owned by the tree). OUT *missing: the key that stopped the walk (owned by the tree).
 */
lt_plan_walk_status lt_plan_tree_walk(const lt_plan_tree *t, const void *answers,
                                      const void *facts, void **path, const char **leaf,
                                      const char **missing, char *err, size_t errlen);
/* A leaf's method ("rag", "lora", ...), training method ("full", "lora", "qlora", "freeze"
 * or NULL when no run) and rationale; NULL for a node that is not a leaf. */
const char *lt_plan_leaf_method(const lt_plan_tree *t, const char *leaf, const char **train,
                                const char **rationale);
/* Whether a leaf's run recomputes activations ("gradient_checkpointing": true in the leaf). */
bool lt_plan_leaf_checkpointing(const lt_plan_tree *t, const char *leaf);

/* ---- the memory and time estimator ------------------------------------------------------- */

typedef enum lt_est_method {
    LT_EST_FULL_F32 = 0, /* f32 weights, f32 grads, two f32 moments: 16 B/param */
    LT_EST_FULL_BF16,    /* half weights as lathe trains them: f32 master copy, f32 grads and
                            moments beside the half weights: 18 B/param */
    LT_EST_FULL_PURE_BF16, /* weights, grads and moments all bf16 (8 B/param): a reference
                              point (LLaMA-Factory's "full bf16"); lathe's AdamW does not run it */
    LT_EST_FREEZE,       /* only the last freeze_layers layers train (f32 state as full) */
    LT_EST_LORA,         /* frozen base in its storage dtype, f32 adapters */
    LT_EST_QLORA,        /* frozen base in NF4 (0.5 B/param + absmax), f32 adapters */
    LT_EST_METHOD_COUNT
} lt_est_method;

const char *lt_est_method_name(lt_est_method m);

/* LoRA targets as bit sets (q, k, v, o, gate, up, down), matching trainer.h's LT_LORA_*. */
typedef struct lt_est_opts {
    lt_est_method method;
    int64_t batch, seq;      /* micro-batch and sequence length */
    int weight_bytes;        /* storage bytes per weight of the model's matrices: 4 or 2 */
    int lora_r;              /* 8 */
    uint32_t lora_targets;   /* LT_LORA_* bits; 0 = every linear layer */
    bool lora_dropout;       /* dropout > 0: one scratch for the dropped input of the module
                                running (masks are redrawn, never kept) */
    int freeze_layers;       /* LT_EST_FREEZE: layers that train (last N) */
    bool double_quant;       /* QLoRA: absmax quantized to 8 bits (0.127 bit/param) */
    bool checkpointing;      /* activation recomputation: only each layer's input is kept */
    bool offload_activations; /* with checkpointing: those inputs in host memory */
    bool embed_on_host;      /* a frozen, untied input embedding table in host memory */
    /* estimate_overhead.c's inputs; 0 = its default */
    uint64_t heap_bytes;     /* the device's heap: the Vulkan allocator's block size grows
                                with it (lt_plan_vk_block_bytes) */
    int64_t dataset_tokens;  /* tokens of the tokenized training set (held in host RAM) */
    int threads;             /* CPU threads (OpenBLAS keeps a buffer per thread) */
} lt_est_opts;

typedef struct lt_estimate {
    int64_t params;          /* the model's parameters */
    int64_t trainable;       /* parameters that get gradients */
    uint64_t weights;        /* bytes: the model's weights as stored on the device */
    uint64_t master;         /* bytes: f32 master copies of half weights that train */
    uint64_t adapters;       /* bytes: LoRA A and B */
    uint64_t grads;          /* bytes: gradients of trainable parameters */
    uint64_t moments;        /* bytes: AdamW m and v */
    uint64_t activations;    /* bytes: the forward's buffers (every layer's activations, or
                                with checkpointing each layer's input and one layer's) */
    uint64_t logits;         /* bytes: one chunk of logits [rows, V] f32 (dlogits written in
                                place; rows = lt_logits_chunk_rows) and the [B*T] row losses */
    uint64_t backward;       /* bytes: the backward pass's scratch gradients */
    uint64_t tracked;        /* device-class bytes the engine allocates as tensors
                                (lt_device_mem_peak) */
    uint64_t host;           /* bytes in host memory instead: a host-resident embedding table
                                and offloaded layer inputs (lt_device_host_mem_peak) */
    uint64_t workspace;      /* bytes: host scratch of the CPU matmul for half weights */
    uint64_t overhead;       /* bytes: backend overheads (driver, allocator blocks) */
    uint64_t peak;           /* tracked + workspace + overhead */
    uint64_t host_ram;       /* bytes: the process's peak RSS (estimate_overhead.c) */
} lt_estimate;

/* Fills e for a model shape. Never fails for a valid config (sizes > 0). */
void lt_plan_estimate(const lt_model_config *c, const lt_est_opts *o, bool gpu, lt_estimate *e);

/*
 * estimate_overhead.c: the terms outside the engine's tensors, applied by lt_plan_estimate
 * last. Sets e->overhead (on a GPU: the driver's fixed cost and the allocator's block
 * granularity), e->host_ram (the process's peak RSS) and e->peak = tracked + workspace +
 * overhead. Reads every other field of e.
 */
void lt_plan_estimate_overhead(const lt_model_config *c, const lt_est_opts *o, bool gpu,
                               lt_estimate *e);
/* The Vulkan allocator's block size for a device heap of heap_bytes (0 = unknown: 256 MiB). */
uint64_t lt_plan_vk_block_bytes(uint64_t heap_bytes);

/* Parameters of each kind the config implies (same as lt_model_inspect's counts). */
int64_t lt_plan_param_count(const lt_model_config *c, int64_t *norms, int64_t *embeddings);

typedef struct lt_fit {
    bool fits;               /* batch 1 fits the budget */
    int64_t micro_batch;     /* the largest micro-batch <= want_batch that fits */
    int64_t grad_accum;      /* ceil(want_batch / micro_batch) */
    uint64_t budget;         /* bytes usable after the safety margin */
    lt_estimate at;          /* the estimate at micro_batch (at batch 1 when nothing fits) */
} lt_fit;

/* The largest micro-batch that fits memory_bytes with a safety margin (10% and 512 MiB on a
 * GPU, 10% on the CPU) and the accumulation reaching want_batch. */
void lt_plan_fit(const lt_model_config *c, const lt_est_opts *o, bool gpu, uint64_t memory_bytes,
                 int64_t want_batch, lt_fit *f);

/* Training FLOPs per token (6 P for full, 4 P for frozen bases, plus attention). */
double lt_plan_train_flops_per_token(const lt_model_config *c, lt_est_method m, int64_t seq);

/*
 * The device's throughput in GFLOP/s for training: a short calibration (a few f32 matmuls of
 * the model's width through the compute API) scaled by an efficiency factor, cached in
 * WORKSPACE/calibration.json by device name (written to a temporary name, fsynced, renamed).
 * dev may be NULL when only the cache is wanted. OUT *cached: whether the cache answered.
 */
bool lt_plan_calibrate(lt_device *dev, const char *workspace, double *gflops, bool *cached,
                       char *err, size_t errlen);

/* ---- facts ------------------------------------------------------------------------------- */

typedef struct lt_plan_facts_opts {
    const char *model_dir;
    const char *dataset;         /* name in the store */
    const char *device;          /* device spec for the kind and memory; NULL = auto */
    int threads;
    double memory_gb;            /* > 0 overrides the device's memory */
    const void *overrides;       /* cJSON object of fact overrides (may be NULL) */
} lt_plan_facts_opts;

/*
 * Gathers facts without asking: device kind and memory (Vulkan heaps, or RAM for the CPU),
 * the model's parameters, dtype and context, the dataset's format, rows, splits and length
 * percentiles (tokens when the model folder has a tokenizer, else characters), preference
 * pairs present, raw text only. Overrides replace gathered values. A fact that cannot be read
 * is left out and named in *missing_note (e.g. "memory_gb: no Vulkan device and /proc/meminfo
 * unreadable"). OUT *facts: cJSON object, caller frees. OUT *summary when non-NULL: the model.
 */
bool lt_plan_facts_gather(lt_store *st, const lt_plan_facts_opts *o, void **facts,
                          lt_model_summary *summary, char *missing_note, size_t notelen,
                          char *err, size_t errlen);

/* ---- the plan ------------------------------------------------------------------------------ */

typedef struct lt_plan_opts {
    int64_t seq_len;        /* 0 = from the dataset's p95 length, capped by the context */
    int64_t batch;          /* effective batch wanted (16) */
    int64_t epochs;         /* 0 = by data size (3, 2 over 10k examples, 1 for pretraining) */
    const char *device;     /* recorded in the config when non-NULL */
} lt_plan_opts;

/*
 * Builds the plan from a walk that reached a leaf: derived facts (the fit facts,
 * reference_fits) are computed by lt_plan_derive before the walk. OUT *record: cJSON object
 * {leaf, method, train_method, rationale, answers, facts, path, estimates, choice, fit, time,
 * warnings, config}; estimates holds seq_len, batch, budget_gb and per method, with and
 * without checkpointing ("lora", "lora+ckpt", ...), its parts in GB and whether it fits;
 * choice says why the leaf won (each fit step's peak against the budget); config is null for
 * leaves with no training run, and carries "gradient_checkpointing": true for a leaf that
 * needs it. Caller frees.
 */
bool lt_plan_build(const lt_plan_tree *t, const char *leaf, const void *answers,
                   const void *facts, void *path, const lt_model_config *cfg,
                   const lt_plan_opts *o, void **record, char *err, size_t errlen);

/* Adds the facts the estimator decides to facts when memory_gb is known and the user did not
 * give them: full_fits, full_ckpt_fits, lora_fits, lora_ckpt_fits, qlora_fits,
 * qlora_ckpt_fits (batch 1 of that method, without or with gradient checkpointing, fits the
 * budget; on the CPU its host_ram must fit too) and reference_fits. */
void lt_plan_derive(void *facts, const lt_model_config *cfg, const lt_plan_opts *o);

/* The estimator's options the plan uses for method m at seq, batch 1, from the facts: the
 * model's weight bytes, LoRA r 16 on every linear layer with dropout, 2 freeze layers, double
 * quantization, and estimate_overhead.c's inputs (the heap from memory_gb on a GPU, the
 * dataset's kept tokens, the weights' bytes on disk, threads). */
lt_est_opts lt_plan_est_opts(lt_est_method m, const void *facts, int64_t seq);

/* Saves the record in the store's plans table. OUT *plan_id. */
bool lt_plan_save(lt_store *st, const void *record, int64_t *plan_id, char *err, size_t errlen);

#endif
