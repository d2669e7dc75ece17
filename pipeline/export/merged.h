/*
 * merged.h - a trained model as a Hugging Face folder: config.json, model.safetensors with
 * every tensor in the dtype the source folder stored it in, and the tokenizer files copied.
 * With an adapter, its deltas are merged into the base weights first (W += scale * B A, in
 * the layout of each weight: transposed for GPT-2's Conv1D, per q/k/v block for c_attn).
 */
#ifndef LATHE_MERGED_H
#define LATHE_MERGED_H

#include "model/model.h"

typedef struct lt_lora_adapter lt_lora_adapter;

/*
 * Write m's weights (as they are on its device now: fully trained, frozen or base) plus
 * adapter (may be NULL) into out_dir (created if missing). src_dir is the folder m was loaded
 * from: its config.json and tokenizer files are copied and its safetensors dtypes kept, or,
 * with all_f32, every tensor written as F32 (a staging folder for a further conversion such as
 * GGUF, so that the merged weights are rounded once, to the final dtype, not twice).
 * Each file is written atomically; model.safetensors last but one, config.json last.
 */
lt_model_status lt_export_merged(const lt_model *m, const lt_lora_adapter *adapter,
                                 const char *src_dir, const char *out_dir, bool all_f32,
                                 char *err, size_t errlen);

#endif
