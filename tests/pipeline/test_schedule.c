/*
 * test_schedule.c - learning-rate schedules against the transformers formulas, worked by hand.
 */
#include "test.h"
#include "train/schedule.h"

#include <math.h>

static int close_to(double a, double b) { return fabs(a - b) <= 1e-12 * (1.0 + fabs(b)); }

int main(void)
{
    lt_schedule s = {LT_SCHED_COSINE, 1e-3, 10, 110, 0.0};
    /* warmup: step/warmup * lr */
    CHECK(close_to(lt_schedule_lr(&s, 0), 0.0), "cosine warmup step 0");
    CHECK(close_to(lt_schedule_lr(&s, 5), 5e-4), "cosine warmup step 5: %g", lt_schedule_lr(&s, 5));
    CHECK(close_to(lt_schedule_lr(&s, 10), 1e-3), "cosine peak at end of warmup");
    /* halfway through decay: 0.5 * (1 + cos(pi/2)) = 0.5 */
    CHECK(close_to(lt_schedule_lr(&s, 60), 5e-4), "cosine halfway: %g", lt_schedule_lr(&s, 60));
    /* a quarter: 0.5 * (1 + cos(pi/4)) */
    CHECK(close_to(lt_schedule_lr(&s, 35), 1e-3 * 0.5 * (1 + cos(M_PI / 4))), "cosine quarter");
    CHECK(close_to(lt_schedule_lr(&s, 110), 0.0), "cosine end");
    CHECK(close_to(lt_schedule_lr(&s, 500), 0.0), "cosine past end stays at floor");

    s.min_lr_ratio = 0.1;
    CHECK(close_to(lt_schedule_lr(&s, 110), 1e-4), "cosine floor 10%%");
    CHECK(close_to(lt_schedule_lr(&s, 60), 1e-3 * (0.1 + 0.9 * 0.5)), "cosine floor halfway");

    lt_schedule l = {LT_SCHED_LINEAR, 2.0, 0, 100, 0.0};
    CHECK(close_to(lt_schedule_lr(&l, 0), 2.0), "linear start without warmup");
    CHECK(close_to(lt_schedule_lr(&l, 25), 1.5), "linear quarter");
    CHECK(close_to(lt_schedule_lr(&l, 100), 0.0), "linear end");

    lt_schedule c = {LT_SCHED_CONSTANT, 3e-4, 4, 0, 0.0};
    CHECK(close_to(lt_schedule_lr(&c, 2), 1.5e-4), "constant warmup");
    CHECK(close_to(lt_schedule_lr(&c, 1000), 3e-4), "constant after warmup");

    CHECK(lt_sched_kind_parse("cosine") == LT_SCHED_COSINE, "parse cosine");
    CHECK(lt_sched_kind_parse("Cosine") == -1, "parse is exact");
    CHECK(lt_sched_kind_parse(NULL) == -1, "parse NULL");
    return test_summary();
}
