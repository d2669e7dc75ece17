/*
 * model.h - a language model's weights on a compute device, and what a folder holds.
 *
 * lt_model_load reads a Hugging Face folder (config.json + model.safetensors or a sharded
 * index), checks every tensor the config implies (present, right shape, a float dtype) and
 * uploads the weights to a device in their stored dtype (F32, F16 or BF16) unless asked
 * otherwise. Norm weights and biases are always F32 on the device (they are small and the
 * ops take them in any dtype anyway). GPT-2's Conv1D weights stay [in, out] as stored (the
 * forward pass multiplies without transposing); its fused c_attn weight [in, 3*out] is
 * regrouped on upload into one [3, in, out] tensor (q, k, v blocks) so each projection is a
 * contiguous view. Mask buffers (h.N.attn.bias, masked_bias) are ignored.
 *
 * The forward pass is in forward.h, generation in generate.h, random init in model_init.h.
 */
#ifndef LATHE_MODEL_H
#define LATHE_MODEL_H

#include "compute.h"
#include "config.h"

typedef struct lt_model lt_model;

/* weight_dtype for lt_model_load: keep what the file stores. */
#define LT_MODEL_DTYPE_STORED (-1)

/* weight_dtype for lt_model_load: NF4 with double-quantized scales (see LT_NF4). */
#define LT_MODEL_DTYPE_NF4_DQ (-2)

/*
 * Load the model in dir onto dev. weight_dtype: LT_MODEL_DTYPE_STORED, or an lt_dtype (F32,
 * F16, BF16) to convert the matrices to, or LT_NF4 / LT_MODEL_DTYPE_NF4_DQ (QLoRA): the
 * layers' Linear weights (attention and MLP projections) are quantized to NF4 at load, the
 * rest (embeddings, head, norms) keeps its stored dtype; GPT-2's Conv1D layout is refused. On success *out is owned by the caller (free with
 * lt_model_free, before closing dev). On failure err names the file, tensor and expectation.
 */
lt_model_status lt_model_load(const char *dir, lt_device *dev, int weight_dtype, lt_model **out,
                              char *err, size_t errlen);
void lt_model_free(lt_model *m);

const lt_model_config *lt_model_get_config(const lt_model *m);
lt_device *lt_model_get_device(const lt_model *m);

/* ---- parameters ---------------------------------------------------------------------- */

typedef enum lt_param_kind {
    LT_PARAM_EMBEDDING = 0, /* token and position embeddings */
    LT_PARAM_ATTENTION,     /* q, k, v, o weights and biases */
    LT_PARAM_MLP,           /* gate, up, down / c_fc, c_proj */
    LT_PARAM_NORM,          /* norm weights and biases */
    LT_PARAM_LM_HEAD,       /* an untied output projection */
    LT_PARAM_KIND_COUNT
} lt_param_kind;

const char *lt_param_kind_name(lt_param_kind k); /* "embeddings", "attention", ... */

typedef enum lt_param_layout {
    LT_LAYOUT_PLAIN = 0,  /* as in the file: Linear weights [out, in], vectors [n] */
    LT_LAYOUT_CONV1D,     /* GPT-2 Conv1D weight, [in, out] as in the file */
    LT_LAYOUT_QKV_BLOCKS, /* GPT-2 c_attn weight: file [in, 3*out], device [3, in, out] */
} lt_param_layout;

typedef struct lt_model_param {
    const char *name;   /* the tensor's name in the file */
    lt_tensor *tensor;  /* owned by the model */
    lt_param_kind kind;
    lt_param_layout layout;
    int layer;          /* -1 for tensors outside the layers */
} lt_model_param;

int lt_model_param_count(const lt_model *m);
const lt_model_param *lt_model_param_at(const lt_model *m, int i);
/* Bytes of device memory the weights take. */
size_t lt_model_weight_bytes(const lt_model *m);

/*
 * Keep the input embedding table in host memory instead of on the device: only the rows of a
 * batch go to the device (gathered on the host and uploaded as [N, D] by every forward pass).
 * For a table that does not train and is not tied to the output layer (a tied lm_head needs
 * it on the device). The table's bytes leave the device's accounting and are registered as
 * host-resident (lt_device_host_mem_add) until the model is freed. Its parameter entry then
 * has no device tensor (tensor NULL): full fine-tuning or an export of the merged model need
 * a model without it. A no-op when the table is already on the host.
 */
lt_model_status lt_model_host_embeddings(lt_model *m, char *err, size_t errlen);
/* Whether the input embedding table is in host memory; its bytes (0 when not). */
size_t lt_model_host_embedding_bytes(const lt_model *m);

/* ---- a folder, without loading it -------------------------------------------------------- */

typedef struct lt_model_summary {
    lt_model_config cfg;
    int64_t params[LT_PARAM_KIND_COUNT]; /* parameters by kind, as the config implies */
    int64_t total_params;
    uint64_t weight_bytes;   /* bytes of the tensors used, in their stored dtypes */
    char dtypes[48];         /* stored dtypes of the used tensors, e.g. "F32" or "BF16+F32" */
    int n_files, n_tensors;  /* safetensors files and tensors in them */
    int n_ignored;           /* tensors in the files that the model does not use */
} lt_model_summary;

/* Read config.json and the safetensors headers of dir and check every tensor as
 * lt_model_load would, without touching tensor data or a device. */
lt_model_status lt_model_inspect(const char *dir, lt_model_summary *out, char *err,
                                 size_t errlen);

#endif
