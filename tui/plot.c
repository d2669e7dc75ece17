/*
 * plot.c - series, per-column min/max downsampling and braille/ASCII rendering with axes.
 * See plot.h. Never touches the terminal; never drops a column's extremes when downsampling.
 */
#include "plot.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool lt_series_push(lt_series *s, int64_t step, double value)
{
    if (s->n > 0 && step <= s->step[s->n - 1]) {
        if (step == s->step[s->n - 1])
            s->value[s->n - 1] = value;
        return true;
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        int64_t *st = realloc(s->step, cap * sizeof(*st));
        if (!st)
            return false;
        s->step = st;
        double *v = realloc(s->value, cap * sizeof(*v));
        if (!v)
            return false;
        s->value = v;
        s->cap = cap;
    }
    s->step[s->n] = step;
    s->value[s->n] = value;
    s->n++;
    return true;
}

void lt_series_clear(lt_series *s)
{
    s->n = 0;
}

void lt_series_free(lt_series *s)
{
    free(s->step);
    free(s->value);
    memset(s, 0, sizeof(*s));
}

int lt_plot_downsample(const lt_series *s, int64_t x0, int64_t x1, int ncols,
                       const lt_plot_opts *o, lt_plot_col *cols)
{
    int filled = 0;
    for (int c = 0; c < ncols; c++)
        cols[c].has = false;
    if (ncols <= 0 || x1 < x0 || !s)
        return 0;
    double alpha = (o && o->ema_alpha > 0 && o->ema_alpha < 1) ? o->ema_alpha : 0.9;
    double ema = 0, weight = 0;
    double span = (double)(x1 - x0) + 1.0;
    for (size_t i = 0; i < s->n; i++) {
        double v = s->value[i];
        if (o && o->ema) {
            if (!isfinite(v))
                continue; /* a NaN step must not poison the smoothed curve */
            ema = alpha * ema + (1 - alpha) * v;
            weight = alpha * weight + (1 - alpha);
            v = ema / weight;
        }
        int64_t x = s->step[i];
        if (x < x0 || x > x1)
            continue;
        if (o && o->log_y)
            v = v > 0 ? log10(v) : NAN;
        if (!isfinite(v))
            continue;
        int c = (int)((double)(x - x0) * ncols / span);
        if (c >= ncols)
            c = ncols - 1;
        lt_plot_col *col = &cols[c];
        if (!col->has) {
            col->has = true;
            col->min = col->max = col->first = v;
            filled++;
        } else {
            if (v < col->min)
                col->min = v;
            if (v > col->max)
                col->max = v;
        }
        col->last = v;
    }
    return filled;
}

void lt_plot_format_value(double v, bool log_y, char *out, size_t outsz)
{
    if (log_y)
        v = pow(10.0, v);
    double a = fabs(v);
    if (v == 0)
        snprintf(out, outsz, "0");
    else if (a >= 1e5 || a < 1e-3)
        snprintf(out, outsz, "%.1e", v);
    else if (a >= 100)
        snprintf(out, outsz, "%.0f", v);
    else
        snprintf(out, outsz, "%.4g", v);
}

void lt_plot_free(lt_plot *p)
{
    free(p->cell);
    free(p->owner);
    memset(p, 0, sizeof(*p));
}

static void put_text(lt_plot *p, int y, int x, const char *s)
{
    for (; *s && x < p->w; s++, x++)
        if (x >= 0 && y >= 0 && y < p->h) {
            p->cell[y * p->w + x] = (unsigned char)*s;
            p->owner[y * p->w + x] = 0;
        }
}

/* The x range shown: every series' steps, or the last N of them. */
static bool x_range(const lt_series *const *series, int n, const lt_plot_opts *o, int64_t *x0,
                    int64_t *x1)
{
    bool any = false;
    for (int i = 0; i < n; i++) {
        const lt_series *s = series[i];
        if (!s || s->n == 0)
            continue;
        if (!any || s->step[0] < *x0)
            *x0 = s->step[0];
        if (!any || s->step[s->n - 1] > *x1)
            *x1 = s->step[s->n - 1];
        any = true;
    }
    if (any && o && o->last_n > 0 && *x1 - *x0 + 1 > o->last_n)
        *x0 = *x1 - o->last_n + 1;
    return any;
}

/* Sets the dot at sub-column c, sub-row r (braille: 2x4 dots a cell; ASCII: one). */
static void plot_dot(lt_plot *p, int c, int r, int cw, int ch, uint8_t owner, bool ascii)
{
    static const uint8_t BRAILLE[2][4] = {{0x01, 0x02, 0x04, 0x40}, {0x08, 0x10, 0x20, 0x80}};
    if (r < 0 || r >= p->plot_h * ch)
        return;
    int cy = r / ch, cx = p->plot_x + c / cw;
    if (cy >= p->plot_h || cx >= p->w)
        return;
    uint32_t *cell = &p->cell[cy * p->w + cx];
    if (ascii) {
        *cell = '*';
    } else {
        uint32_t bits = (*cell >= 0x2800 && *cell <= 0x28ff) ? *cell - 0x2800 : 0;
        *cell = 0x2800 + (bits | BRAILLE[c % 2][r % 4]);
    }
    p->owner[cy * p->w + cx] = owner;
}

/* Draws one series' columns into the dot grid (sub-cell resolution sw x sh). */
static void draw_series(lt_plot *p, const lt_plot_col *cols, int sw, int sh, int cw, int ch,
                        uint8_t owner, bool ascii)
{
    double range = p->y_max - p->y_min;
    double prev = NAN;
    int prev_c = -1;
    for (int c = 0; c < sw; c++) {
        if (!cols[c].has)
            continue;
        double lo = cols[c].min, hi = cols[c].max;
        if (prev_c >= 0 && c - prev_c > 1) {
            /* sparse points (validation every N steps): a straight line across the gap */
            double from = prev, to = cols[c].first;
            for (int k = prev_c + 1; k < c; k++) {
                double y = from + (to - from) * (k - prev_c) / (double)(c - prev_c);
                int r = (int)floor((p->y_max - y) / range * (sh - 1) + 0.5);
                plot_dot(p, k, r, cw, ch, owner, ascii);
            }
            prev = from + (to - from) * (c - 1 - prev_c) / (double)(c - prev_c);
        }
        if (isfinite(prev)) { /* join to the previous column so the line stays connected */
            if (prev < lo)
                lo = prev;
            if (prev > hi)
                hi = prev;
        }
        prev = cols[c].last;
        prev_c = c;
        int r_hi = (int)floor((p->y_max - hi) / range * (sh - 1) + 0.5);
        int r_lo = (int)floor((p->y_max - lo) / range * (sh - 1) + 0.5);
        if (r_hi < 0)
            r_hi = 0;
        if (r_lo > sh - 1)
            r_lo = sh - 1;
        for (int r = r_hi; r <= r_lo; r++)
            plot_dot(p, c, r, cw, ch, owner, ascii);
    }
}

bool lt_plot_render(lt_plot *p, int w, int h, const lt_series *const *series, int n_series,
                    const lt_plot_opts *o)
{
    lt_plot_col *cols[LT_PLOT_MAX_SERIES] = {0};
    bool ok = false;
    if (n_series > LT_PLOT_MAX_SERIES)
        n_series = LT_PLOT_MAX_SERIES;
    memset(p, 0, sizeof(*p));
    p->empty = true;
    if (w < 16 || h < 4)
        return true;
    p->w = w;
    p->h = h;
    p->cell = malloc((size_t)w * h * sizeof(*p->cell));
    p->owner = calloc((size_t)w * h, 1);
    if (!p->cell || !p->owner)
        goto fail_free_plot;
    for (int i = 0; i < w * h; i++)
        p->cell[i] = ' ';

    const int label_w = 8; /* "1.2e+04" + the axis line */
    p->plot_x = label_w + 1;
    p->plot_w = w - p->plot_x;
    p->plot_h = h - 2;
    bool ascii = o && o->ascii;
    int cw = ascii ? 1 : 2, chh = ascii ? 1 : 4;
    int sw = p->plot_w * cw, sh = p->plot_h * chh;

    int64_t x0 = 0, x1 = 0;
    if (!x_range(series, n_series, o, &x0, &x1))
        goto axes;
    p->x_min = x0;
    p->x_max = x1;
    bool any = false;
    for (int i = 0; i < n_series; i++) {
        cols[i] = malloc((size_t)sw * sizeof(*cols[i]));
        if (!cols[i])
            goto fail_free_cols;
        if (lt_plot_downsample(series[i], x0, x1, sw, o, cols[i]) == 0)
            continue;
        for (int c = 0; c < sw; c++) {
            if (!cols[i][c].has)
                continue;
            if (!any || cols[i][c].min < p->y_min)
                p->y_min = cols[i][c].min;
            if (!any || cols[i][c].max > p->y_max)
                p->y_max = cols[i][c].max;
            any = true;
        }
    }
    if (!any)
        goto axes;
    p->empty = false;
    if (p->y_max - p->y_min < 1e-12 * (fabs(p->y_max) + 1e-300) || p->y_max == p->y_min) {
        double pad = fabs(p->y_max) * 0.1 + 1e-6;
        p->y_min -= pad;
        p->y_max += pad;
    }
    for (int i = 0; i < n_series; i++)
        if (cols[i])
            draw_series(p, cols[i], sw, sh, cw, chh, (uint8_t)(i + 1), ascii);

axes:
    for (int y = 0; y < p->plot_h; y++)
        p->cell[y * w + label_w] = ascii ? '|' : 0x2502;
    for (int x = label_w; x < w; x++)
        p->cell[p->plot_h * w + x] = ascii ? '-' : 0x2500;
    p->cell[p->plot_h * w + label_w] = ascii ? '+' : 0x2514;
    if (!p->empty) {
        char buf[32];
        int rows[3] = {0, (p->plot_h - 1) / 2, p->plot_h - 1};
        for (int k = 0; k < 3; k++) {
            if (k == 1 && (rows[1] == rows[0] || rows[1] == rows[2]))
                continue;
            double v = p->y_max - (p->y_max - p->y_min) * rows[k] / (double)(p->plot_h - 1);
            lt_plot_format_value(v, o && o->log_y, buf, sizeof buf);
            int len = (int)strlen(buf);
            put_text(p, rows[k], label_w - (len > label_w ? label_w : len), buf);
        }
        snprintf(buf, sizeof buf, "%lld", (long long)x0);
        put_text(p, h - 1, p->plot_x, buf);
        snprintf(buf, sizeof buf, "%lld", (long long)x1);
        int len = (int)strlen(buf);
        put_text(p, h - 1, w - len, buf);
        int mid = p->plot_x + p->plot_w / 2;
        if (p->plot_w >= 40) {
            snprintf(buf, sizeof buf, "%lld", (long long)(x0 + (x1 - x0) / 2));
            len = (int)strlen(buf);
            if (mid - len / 2 > p->plot_x + 12 && mid + len < w - 12)
                put_text(p, h - 1, mid - len / 2, buf);
        }
        put_text(p, h - 1, p->plot_x - 5 > 0 ? p->plot_x - 5 : 0, "step");
    }
    ok = true;
fail_free_cols:
    for (int i = 0; i < LT_PLOT_MAX_SERIES; i++)
        free(cols[i]);
    if (ok)
        return true;
fail_free_plot:
    lt_plot_free(p);
    return false;
}

/* Encodes cp as UTF-8 into out (at least 4 bytes); returns its length. */
static int utf8_put(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    out[0] = (char)(0xe0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
}

char *lt_plot_row(const lt_plot *p, int y, char *out, size_t outsz)
{
    size_t o = 0;
    if (outsz == 0)
        return out;
    for (int x = 0; p->cell && y >= 0 && y < p->h && x < p->w; x++) {
        char b[4];
        int n = utf8_put(p->cell[y * p->w + x], b);
        if (o + (size_t)n + 1 > outsz)
            break;
        memcpy(out + o, b, (size_t)n);
        o += (size_t)n;
    }
    out[o] = '\0';
    return out;
}
