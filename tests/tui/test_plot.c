/*
 * test_plot.c - loss curves in terminal cells: per-column min/max downsampling keeps a single
 * spike among 100,000 steps, axis labels show the value range and the step range, log scale
 * and EMA transform values, zoom keeps the last N steps, ASCII mode draws no braille, and odd
 * input (NaN, one point, empty series, tiny areas) draws without trouble.
 */
#include "plot.h"
#include "test.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static bool row_has(const lt_plot *p, int y, const char *needle)
{
    char buf[4096];
    return strstr(lt_plot_row(p, y, buf, sizeof buf), needle) != NULL;
}

static bool any_row_has(const lt_plot *p, const char *needle)
{
    for (int y = 0; y < p->h; y++)
        if (row_has(p, y, needle))
            return true;
    return false;
}

int main(void)
{
    /* 100,000 steps of a flat loss with one spike at step 53,211 and one dip at 7 */
    lt_series s = {0};
    bool ok = true;
    for (int64_t i = 1; i <= 100000; i++) {
        double v = 1.0 + 0.001 * (double)(i % 7);
        if (i == 53211)
            v = 50.0;
        if (i == 7)
            v = 0.25;
        ok &= lt_series_push(&s, i, v);
    }
    CHECK(ok && s.n == 100000, "100k points pushed");
    CHECK(lt_series_push(&s, 100, 3.0) && s.n == 100000, "an older step is ignored");
    CHECK(lt_series_push(&s, 100000, s.value[s.n - 1]) && s.n == 100000, "same step replaces");

    lt_plot_col cols[100];
    lt_plot_opts o = {0};
    int filled = lt_plot_downsample(&s, 1, 100000, 100, &o, cols);
    CHECK(filled == 100, "every column has points (%d)", filled);
    int spike_col = (int)((53211 - 1) * 100 / 100000);
    CHECK(cols[spike_col].max == 50.0, "the spike's column keeps its max (%g)", cols[spike_col].max);
    CHECK(cols[0].min == 0.25, "the dip's column keeps its min (%g)", cols[0].min);
    bool others_flat = true;
    for (int c = 0; c < 100; c++)
        if (c != spike_col && cols[c].max > 1.01)
            others_flat = false;
    CHECK(others_flat, "no other column reaches the spike");

    /* rendered: the spike reaches the top row, axis labels show the range and steps */
    const lt_series *one[1] = {&s};
    lt_plot p;
    CHECK(lt_plot_render(&p, 80, 20, one, 1, &o), "render 100k points");
    CHECK(!p.empty && p.y_max == 50.0 && p.y_min == 0.25, "y range %g..%g", p.y_min, p.y_max);
    CHECK(row_has(&p, 0, "50"), "top label says 50");
    CHECK(row_has(&p, p.plot_h - 1, "0.25"), "bottom label says 0.25");
    CHECK(row_has(&p, p.h - 1, "100000") && row_has(&p, p.h - 1, "1"), "x labels: first and last step");
    CHECK(row_has(&p, p.h - 1, "step"), "x axis is labelled step");
    int top_dots = 0;
    for (int x = p.plot_x; x < p.w; x++)
        top_dots += p.cell[x] >= 0x2800 && p.cell[x] <= 0x28ff && p.cell[x] != 0x2800;
    CHECK(top_dots >= 1 && top_dots <= 2, "the spike shows on the top row (%d cells)", top_dots);
    CHECK(p.cell[p.plot_h * p.w + p.plot_x - 1] == 0x2514, "axis corner");
    lt_plot_free(&p);

    /* zoom to the last 1000 steps: the spike is gone from the range */
    o.last_n = 1000;
    CHECK(lt_plot_render(&p, 80, 20, one, 1, &o), "render zoomed");
    CHECK(p.x_min == 99001 && p.x_max == 100000, "zoom range %lld..%lld", (long long)p.x_min,
          (long long)p.x_max);
    CHECK(p.y_max < 1.01, "zoomed y max %g", p.y_max);
    CHECK(row_has(&p, p.h - 1, "99001"), "zoomed x label");
    lt_plot_free(&p);
    o.last_n = 0;

    /* log scale: labels in the original units, values <= 0 left out */
    lt_series g = {0};
    for (int i = 1; i <= 100; i++)
        lt_series_push(&g, i, i == 50 ? 0.0 : pow(10.0, -(double)i / 25.0));
    o.log_y = true;
    filled = lt_plot_downsample(&g, 1, 100, 100, &o, cols);
    CHECK(filled == 99, "log scale drops the zero (%d columns)", filled);
    CHECK(fabs(cols[24].max - (-1.0)) < 1e-9, "log10 of 0.1 is -1 (%g)", cols[24].max);
    const lt_series *gs[1] = {&g};
    CHECK(lt_plot_render(&p, 60, 12, gs, 1, &o), "render log");
    CHECK(any_row_has(&p, "0.9"), "log labels in original units");
    lt_plot_free(&p);
    o.log_y = false;

    /* EMA: a step from 0 to 1 is smoothed; the debiased first value equals the first point */
    lt_series e = {0};
    for (int i = 1; i <= 10; i++)
        lt_series_push(&e, i, i <= 5 ? 0.0 : 1.0);
    o.ema = true;
    o.ema_alpha = 0.5;
    lt_plot_downsample(&e, 1, 10, 10, &o, cols);
    CHECK(cols[0].max == 0.0, "EMA starts at the first value");
    CHECK(cols[5].max > 0.4 && cols[5].max < 0.6, "EMA half way after one step (%g)", cols[5].max);
    CHECK(cols[9].max > 0.9 && cols[9].max < 1.0, "EMA approaches 1 (%g)", cols[9].max);
    o.ema = false;

    /* NaN points are skipped and do not break the range */
    lt_series n = {0};
    lt_series_push(&n, 1, 1.0);
    lt_series_push(&n, 2, NAN);
    lt_series_push(&n, 3, INFINITY);
    lt_series_push(&n, 4, 2.0);
    const lt_series *ns[1] = {&n};
    CHECK(lt_plot_render(&p, 40, 10, ns, 1, &o), "render with NaN");
    CHECK(!p.empty && p.y_min == 1.0 && p.y_max == 2.0, "NaN and Inf left out of the range");
    lt_plot_free(&p);

    /* two series: val is drawn over train; ownership marks which */
    lt_series v = {0};
    for (int i = 100; i <= 100000; i += 100)
        lt_series_push(&v, i, 1.5);
    const lt_series *two[2] = {&s, &v};
    CHECK(lt_plot_render(&p, 100, 30, two, 2, &o), "render two series");
    int owned2 = 0;
    for (int i = 0; i < p.w * p.h; i++)
        owned2 += p.owner[i] == 2;
    CHECK(owned2 > 20, "the second series is drawn across (%d cells)", owned2);
    lt_plot_free(&p);

    /* ASCII mode has no braille */
    o.ascii = true;
    CHECK(lt_plot_render(&p, 60, 12, one, 1, &o), "render ascii");
    bool no_braille = true;
    for (int i = 0; i < p.w * p.h; i++)
        no_braille &= p.cell[i] < 0x80;
    CHECK(no_braille && any_row_has(&p, "*"), "ASCII plot uses '*' only");
    lt_plot_free(&p);
    o.ascii = false;

    /* degenerate input */
    lt_series empty = {0}, single = {0};
    lt_series_push(&single, 5, 3.0);
    const lt_series *es[1] = {&empty}, *ss[1] = {&single};
    CHECK(lt_plot_render(&p, 40, 10, es, 1, &o) && p.empty, "empty series: empty plot");
    lt_plot_free(&p);
    CHECK(lt_plot_render(&p, 40, 10, ss, 1, &o) && !p.empty && p.y_max > p.y_min,
          "one point: a range around it");
    lt_plot_free(&p);
    CHECK(lt_plot_render(&p, 3, 2, ss, 1, &o) && p.cell == NULL, "too small: nothing drawn");
    lt_plot_free(&p);
    CHECK(lt_plot_downsample(&s, 10, 5, 10, &o, cols) == 0, "inverted range: nothing");

    char buf[32];
    lt_plot_format_value(12345678.0, false, buf, sizeof buf);
    CHECK(strcmp(buf, "1.2e+07") == 0, "big value label '%s'", buf);
    lt_plot_format_value(0.5, false, buf, sizeof buf);
    CHECK(strcmp(buf, "0.5") == 0, "plain value label '%s'", buf);
    lt_plot_format_value(-2.0, true, buf, sizeof buf);
    CHECK(strcmp(buf, "0.01") == 0, "log label '%s'", buf);

    lt_series_free(&s);
    lt_series_free(&g);
    lt_series_free(&e);
    lt_series_free(&n);
    lt_series_free(&v);
    lt_series_free(&single);
    return test_summary();
}
