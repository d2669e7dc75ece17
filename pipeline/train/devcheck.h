/*
 * devcheck.h - is this Vulkan device's arithmetic right? A check that runs the ops of a
 * training step, one at a time, on small random inputs on the device and on the CPU backend
 * (the reference: it matches PyTorch) and compares them, then one forward, backward and AdamW
 * step of a tiny Llama on both. A failure names the op, so a driver bug (Mesa 22.3's lavapipe
 * cut every shader loop after 65535 iterations in all; real GPU drivers have bugs of the same
 * class) refuses the device instead of training wrong in silence.
 *
 * The ops: matmul in its four transpose cases plus one with a K of 300,001 (a long reduction
 * loop), embedding and its backward, rmsnorm and its backward, rope and its backward,
 * attention with grouped KV heads and its backward, swiglu and its backward, cross-entropy
 * (loss and dlogits), add, AdamW and the gradient norm. Each is judged on its tensor's scale:
 * max|device - cpu| <= 1e-4 max|cpu| (fp32 rounding in a different summation order is ~1e-6;
 * the bugs this catches are off by tens of percent). The tiny model (2 layers, dim 32, 4 heads,
 * 2 KV heads, FFN 64, vocabulary 300, 2 x 24 tokens): loss within 1e-5 relative, every
 * gradient within 1e-3 of its scale, the loss after one AdamW step within 1e-4 relative.
 *
 * Never writes anything but the cache file it is given; no store, no terminal.
 */
#ifndef LATHE_DEVCHECK_H
#define LATHE_DEVCHECK_H

#include "model/model.h"

#include <stdbool.h>

#define LT_DEVCHECK_MAX_OPS 40
/* Bumped whenever the check changes, so a cached verdict from an older check is redone. */
#define LT_DEVCHECK_VERSION 1

typedef struct lt_devcheck_op {
    char name[64]; /* "matmul A^T B^T", "attention_backward dk", "tiny model: loss" */
    double err;    /* max|device - cpu| / max|cpu| (relative error for losses) */
    double tol;
    bool ok;
} lt_devcheck_op;

typedef struct lt_devcheck {
    char device[256]; /* the Vulkan device's name ("llvmpipe (LLVM 15.0.6, 256 bits)") */
    char driver[256]; /* driver name and version ("llvmpipe Mesa 22.3.6 (LLVM 15.0.6)") */
    char type[32];    /* "discrete", "integrated", "cpu", ... */
    bool ok;          /* every op within tolerance */
    char failed[64];  /* the first op beyond tolerance ("" when ok) */
    double failed_err, failed_tol;
    int n_ops;
    lt_devcheck_op ops[LT_DEVCHECK_MAX_OPS]; /* empty when the verdict came from the cache */
    double seconds;                          /* wall time of the check (0 when cached) */
    bool cached;                             /* the verdict was read from the cache file */
} lt_devcheck;

/*
 * Run the check on an open Vulkan device dev (its name must be "vulkan:N ..." as
 * lt_device_open makes it) against a CPU backend of its own. *out (OUT) holds the verdict
 * per op. Returns LT_MODEL_OK when the check ran, whatever its verdict; an error (with err)
 * when it could not run (dev is not Vulkan, out of memory, a device failure that is not a
 * wrong number).
 */
lt_model_status lt_devcheck_run(lt_device *dev, lt_devcheck *out, char *err, size_t errlen);

/*
 * The verdict for dev, from cache_path when it holds one for this device name, driver and
 * check version, else from lt_devcheck_run, then stored there (the file is JSON, one entry
 * per device and driver, rewritten to a temporary name and renamed). cache_path NULL: no
 * cache. A cache that cannot be read is ignored and rewritten; one that cannot be written
 * leaves the verdict valid (the check just runs again next time).
 */
lt_model_status lt_devcheck_cached(lt_device *dev, const char *cache_path, lt_devcheck *out,
                                   char *err, size_t errlen);

/*
 * The check a training run makes at start: nothing (LT_MODEL_OK) on the CPU backend, on
 * CPU-type Vulkan devices (lavapipe: the check takes seconds there, and the test suite covers
 * them; LATHE_DEVCHECK=on checks them too) and when LATHE_DEVCHECK=off; else
 * lt_devcheck_cached with workspace/devcheck.json (workspace NULL: no cache) and an error
 * naming the device, driver and op when it disagrees (LT_MODEL_ERR_DEVICE).
 *
 * Tests: LATHE_DEVCHECK_INJECT=OP adds an error to the device's result of that op.
 */
lt_model_status lt_devcheck_for_training(lt_device *dev, const char *workspace, char *err,
                                         size_t errlen);

#endif
