/*
 * model_specs.h - the table of tensors a config implies (names, shapes, kinds, layouts),
 * shared by loading, inspecting and random init inside the model module.
 */
#ifndef LATHE_MODEL_SPECS_H
#define LATHE_MODEL_SPECS_H

#include "model.h"
#include "safetensors.h"

typedef struct lt_wspec {
    char name[96];
    int ndim;
    int64_t shape[2]; /* as stored in the file */
    lt_param_kind kind;
    lt_param_layout layout;
    int layer; /* -1 outside the layers */
} lt_wspec;

typedef struct lt_wspec_list {
    lt_wspec *s; /* malloc'd; the caller frees s */
    int n, cap;
} lt_wspec_list;

/* Every tensor cfg needs, in file order. gpt2_prefix: "" or "transformer.". */
lt_model_status lt_wspec_build(const lt_model_config *cfg, const char *gpt2_prefix,
                               lt_wspec_list *out);

/*
 * Where lt_model_load_from reads a model's tensors. get fills *t with the tensor of spec s:
 * the spec's shape and numel, dtype F32, F16, BF16 or F64, data (end - begin bytes) valid
 * until the next call of get or the end of the load. label names the source in messages.
 */
typedef struct lt_model_source {
    void *ctx;
    const char *label;
    lt_model_status (*get)(void *ctx, const lt_wspec *s, lt_st_tensor *t, char *err, size_t errlen);
} lt_model_source;

/*
 * The body of lt_model_load: a model of config cfg with the tensors of l (checked already),
 * each read from src one at a time and uploaded in the dtype weight_dtype asks for (as
 * lt_model_load), so the host holds one tensor's buffers at a time beyond what src keeps.
 * On success *out owns the model (lt_model_free).
 */
lt_model_status lt_model_load_from(const lt_model_config *cfg, const lt_wspec_list *l,
                                   const lt_model_source *src, lt_device *dev, int weight_dtype,
                                   lt_model **out, char *err, size_t errlen);

/* Checks that every spec is in set with the right shape and a float dtype. */
lt_model_status lt_wspec_check(const lt_wspec_list *l, const lt_st_set *set, const char *dir,
                               char *err, size_t errlen);

#endif
