/*
 * peft.h - LoRA adapters as Hugging Face PEFT folders: adapter_config.json +
 * adapter_model.safetensors. Writing takes a LoRA trainer's adapter; loading makes an adapter
 * that a model applies in every forward pass once attached (generation, evaluation).
 *
 * Names are PEFT's: base_model.model.<module path>.lora_{A,B}.weight, A [r, in], B [out, r].
 * GPT-2's fused c_attn is one module (B [3 * dim, r]); its Conv1D targets are written with
 * fan_in_fan_out true (the adapter tensors keep PEFT's shapes either way).
 */
#ifndef LATHE_PEFT_H
#define LATHE_PEFT_H

#include "model/model.h"
#include "train/trainer.h"

typedef struct lt_lora_adapter lt_lora_adapter;

/*
 * Write the adapter of t (made with LT_METHOD_LORA) into dir (created if missing). Each file
 * is written atomically (temporary file, fsync, rename), the tensors before the config.
 * base_model names the base for adapter_config.json (may be NULL).
 */
lt_model_status lt_peft_write(const lt_trainer *t, const char *dir, const char *base_model,
                              char *err, size_t errlen);

/*
 * Load the PEFT LoRA adapter in dir for model m: checks the config (peft_type LORA, no DoRA,
 * no rank or alpha patterns) and every tensor (a module m has, A [r, in] and B [out, r] in a
 * float dtype, both present). The caller owns *out and frees it with lt_peft_free (after
 * detaching it, before freeing the model). On failure err names the file, tensor and
 * expectation.
 */
lt_model_status lt_peft_load(lt_model *m, const char *dir, lt_lora_adapter **out, char *err,
                             size_t errlen);
void lt_peft_free(lt_lora_adapter *a);

/* Apply a in every later forward pass of m (NULL detaches); a must outlive the attachment. */
lt_model_status lt_peft_attach(lt_model *m, const lt_lora_adapter *a, char *err, size_t errlen);

#endif
