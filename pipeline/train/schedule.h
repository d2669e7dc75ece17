/*
 * schedule.h - learning-rate schedules: constant, linear and cosine, each with linear warmup.
 *
 * The formulas are those of Hugging Face transformers' get_{constant,linear,cosine}_schedule_
 * with_warmup (the multiplier applied to the base learning rate at optimizer step `step`,
 * counted from 0 for the first update), so that a run configured the same way follows the same
 * curve as a transformers Trainer run. Pure functions: no state, no allocation.
 */
#ifndef LATHE_SCHEDULE_H
#define LATHE_SCHEDULE_H

#include <stdint.h>

typedef enum lt_sched_kind {
    LT_SCHED_CONSTANT = 0,
    LT_SCHED_LINEAR,
    LT_SCHED_COSINE,
} lt_sched_kind;

typedef struct lt_schedule {
    lt_sched_kind kind;
    double base_lr;
    int64_t warmup_steps;  /* linear ramp from 0 over these many steps */
    int64_t total_steps;   /* optimizer steps in the whole run (linear, cosine) */
    double min_lr_ratio;   /* floor as a fraction of base_lr after warmup (cosine, linear) */
} lt_schedule;

/* Parse "constant", "linear" or "cosine"; returns -1 for anything else. */
int lt_sched_kind_parse(const char *name);
const char *lt_sched_kind_name(lt_sched_kind kind);

/* The learning rate for optimizer step `step` (0-based). Steps past total_steps keep the last
 * value (the floor). */
double lt_schedule_lr(const lt_schedule *s, int64_t step);

#endif
