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

/* Checks that every spec is in set with the right shape and a float dtype. */
lt_model_status lt_wspec_check(const lt_wspec_list *l, const lt_st_set *set, const char *dir,
                               char *err, size_t errlen);

#endif
