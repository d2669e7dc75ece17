/*
 * schedule.c - learning-rate schedules with warmup (see schedule.h for the contract).
 */
#include "schedule.h"

#include <math.h>
#include <string.h>

int lt_sched_kind_parse(const char *name)
{
    if (!name)
        return -1;
    if (strcmp(name, "constant") == 0)
        return LT_SCHED_CONSTANT;
    if (strcmp(name, "linear") == 0)
        return LT_SCHED_LINEAR;
    if (strcmp(name, "cosine") == 0)
        return LT_SCHED_COSINE;
    return -1;
}

const char *lt_sched_kind_name(lt_sched_kind kind)
{
    switch (kind) {
    case LT_SCHED_CONSTANT:
        return "constant";
    case LT_SCHED_LINEAR:
        return "linear";
    case LT_SCHED_COSINE:
        return "cosine";
    }
    return "?";
}

double lt_schedule_lr(const lt_schedule *s, int64_t step)
{
    if (step < 0)
        step = 0;
    if (s->warmup_steps > 0 && step < s->warmup_steps)
        return s->base_lr * (double)step / (double)s->warmup_steps;
    if (s->kind == LT_SCHED_CONSTANT)
        return s->base_lr;

    int64_t decay_steps = s->total_steps - s->warmup_steps;
    double progress = decay_steps > 0 ? (double)(step - s->warmup_steps) / (double)decay_steps : 1.0;
    if (progress > 1.0)
        progress = 1.0;
    double mult;
    if (s->kind == LT_SCHED_LINEAR)
        mult = 1.0 - progress;
    else
        mult = 0.5 * (1.0 + cos(M_PI * progress));
    /* the floor: mult in [0, 1] is mapped to [min_lr_ratio, 1] */
    mult = s->min_lr_ratio + (1.0 - s->min_lr_ratio) * mult;
    return s->base_lr * mult;
}
