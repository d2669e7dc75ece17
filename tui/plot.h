/*
 * plot.h - line plots of metric series in a grid of terminal cells: Unicode braille (2x4 dots
 * per cell) or plain ASCII, with a y axis of value labels and an x axis of step labels.
 *
 * A series is steps and values in ascending step order, grown as new metric rows arrive.
 * Drawing downsamples per plot column, keeping each column's minimum and maximum, so a single
 * spike among 100,000 steps still shows. Options: log scale, EMA smoothing, zoom to the last
 * N steps. Rendering fills an lt_plot (cells plus which series owns each cell); the caller
 * puts it on the terminal. No ncurses here, so tests check the picture directly.
 */
#ifndef LATHE_TUI_PLOT_H
#define LATHE_TUI_PLOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct lt_series {
    int64_t *step; /* (n) ascending */
    double *value; /* (n) */
    size_t n, cap;
} lt_series;

/* Appends a point. A step not above the last one replaces the value at the end when equal
 * and is otherwise ignored (a resumed run rewrites steps it already wrote). Returns false
 * when memory runs out (the series is unchanged). */
bool lt_series_push(lt_series *s, int64_t step, double value);
void lt_series_clear(lt_series *s);
void lt_series_free(lt_series *s);

typedef struct lt_plot_opts {
    bool log_y;          /* log10 of values; values <= 0 are left out */
    bool ema;            /* exponential moving average (debiased), weight ema_alpha */
    double ema_alpha;    /* 0.9 when 0 */
    int64_t last_n;      /* show only the last N steps; 0 = all */
    bool ascii;          /* '*' cells instead of braille (non-UTF-8 terminals) */
} lt_plot_opts;

/* One downsampled column: extremes and last value of the (transformed) points in it. */
typedef struct lt_plot_col {
    double min, max, first, last;
    bool has;
} lt_plot_col;

/*
 * Downsamples the points of s with x0 <= step <= x1 into ncols columns (column of a step:
 * (step - x0) * ncols / (x1 - x0 + 1)). Values go through EMA (over the whole series, so
 * zooming does not change the curve) then log10 when asked; NaN, infinities and, on a log
 * scale, values <= 0 are left out. Returns the number of non-empty columns.
 */
int lt_plot_downsample(const lt_series *s, int64_t x0, int64_t x1, int ncols,
                       const lt_plot_opts *o, lt_plot_col *cols);

#define LT_PLOT_MAX_SERIES 4

/* A rendered plot: w x h cells, each a code point and the series that drew it (0 for axes
 * and labels, 1.. for series). */
typedef struct lt_plot {
    int w, h;
    uint32_t *cell;     /* (h, w) */
    uint8_t *owner;     /* (h, w) */
    int plot_x, plot_w; /* columns of the drawing area (inside the axes) */
    int plot_h;
    double y_min, y_max; /* axis range in display units (log10 when log_y) */
    int64_t x_min, x_max;
    bool empty;          /* no finite point to draw */
} lt_plot;

/*
 * Renders up to LT_PLOT_MAX_SERIES series into a w x h plot (w >= 16, h >= 4 to draw
 * anything). The x range covers every series (or their last N steps); the y range covers the
 * visible columns. Returns false only when memory runs out. Free with lt_plot_free.
 */
bool lt_plot_render(lt_plot *p, int w, int h, const lt_series *const *series, int n_series,
                    const lt_plot_opts *o);
void lt_plot_free(lt_plot *p);

/* Row y of a rendered plot as UTF-8 (for tests and for drawing); out gets at most outsz-1
 * bytes. Returns out. */
char *lt_plot_row(const lt_plot *p, int y, char *out, size_t outsz);

/* Formats an axis value compactly ("0.0123", "1.2e+04", "850"); log scale shows 10^v. */
void lt_plot_format_value(double v, bool log_y, char *out, size_t outsz);

#endif
