/*
 * layout.c - the dashboard's boxes as a pure function of (cols, rows, view). See layout.h.
 * Must never depend on anything but its arguments: no terminal, no globals.
 */
#include "layout.h"

#include <stddef.h>
#include <string.h>

static const char *const TITLES[LT_VIEW_COUNT] = {"Data", "Wizard", "Train",
                                                  "Runs", "Eval",   "Devices"};

const char *lt_view_title(lt_view_id v)
{
    return (v >= 0 && v < LT_VIEW_COUNT) ? TITLES[v] : "?";
}

static lt_rect rect(int y, int x, int h, int w)
{
    lt_rect r = {y, x, h, w};
    return r;
}

static void add(lt_layout *l, lt_pane_id role, lt_rect r)
{
    if (l->n_panes >= LT_LAYOUT_MAX_PANES || r.h < 3 || r.w < 3)
        return;
    l->pane[l->n_panes] = r;
    l->role[l->n_panes] = role;
    l->n_panes++;
}

static int clampi(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* Train: loss curve top-left, numbers top-right, lr/grad-norm curves below the loss curve when
 * the terminal is tall, events across the bottom. */
static void layout_train(lt_layout *l, lt_rect b)
{
    int side = clampi(b.w / 3, 30, 44);
    int events = clampi(b.h / 5, 5, 10);
    int top = b.h - events;
    int aux = b.h >= 34 ? clampi(top / 3, 8, 16) : 0;
    add(l, LT_PANE_PLOT, rect(b.y, b.x, top - aux, b.w - side));
    if (aux)
        add(l, LT_PANE_AUX, rect(b.y + top - aux, b.x, aux, b.w - side));
    add(l, LT_PANE_STATS, rect(b.y, b.x + b.w - side, top, side));
    add(l, LT_PANE_EVENTS, rect(b.y + top, b.x, events, b.w));
}

/* Runs: the list on top, the selected run's detail (or config diff) bottom-left, the overlaid
 * curves bottom-right. */
static void layout_runs(lt_layout *l, lt_rect b)
{
    int list = clampi(b.h * 2 / 5, 7, 24);
    int detail = clampi(b.w * 2 / 5, 34, 70);
    add(l, LT_PANE_LIST, rect(b.y, b.x, list, b.w));
    add(l, LT_PANE_STATS, rect(b.y + list, b.x, b.h - list, detail));
    add(l, LT_PANE_PLOT, rect(b.y + list, b.x + detail, b.h - list, b.w - detail));
}

/* Data: datasets on the left; stats and histogram top-right; bad rows or duplicate clusters
 * bottom-right. */
static void layout_data(lt_layout *l, lt_rect b)
{
    int list = clampi(b.w / 4, 24, 40);
    int stats = clampi(b.h / 2, 10, 24);
    int jobs = 5; /* under the list: the background job and its progress */
    add(l, LT_PANE_LIST, rect(b.y, b.x, b.h - jobs, list));
    add(l, LT_PANE_JOBS, rect(b.y + b.h - jobs, b.x, jobs, list));
    add(l, LT_PANE_STATS, rect(b.y, b.x + list, stats, b.w - list));
    add(l, LT_PANE_EVENTS, rect(b.y + stats, b.x + list, b.h - stats, b.w - list));
}

/* Eval: the table of evaluations on top, the evaluation started from the view under it, the
 * selected one's samples below. */
static void layout_eval(lt_layout *l, lt_rect b)
{
    int list = clampi(b.h * 2 / 5, 8, 24);
    int jobs = 4;
    add(l, LT_PANE_LIST, rect(b.y, b.x, list, b.w));
    add(l, LT_PANE_JOBS, rect(b.y + list, b.x, jobs, b.w));
    add(l, LT_PANE_EVENTS, rect(b.y + list + jobs, b.x, b.h - list - jobs, b.w));
}

static void layout_devices(lt_layout *l, lt_rect b)
{
    int list = clampi(b.w / 3, 26, 50);
    add(l, LT_PANE_LIST, rect(b.y, b.x, b.h, list));
    add(l, LT_PANE_STATS, rect(b.y, b.x + list, b.h, b.w - list));
}

void lt_layout_compute(int cols, int rows, lt_view_id view, lt_layout *out)
{
    memset(out, 0, sizeof(*out));
    out->cols = cols;
    out->rows = rows;
    if (cols < LT_LAYOUT_MIN_COLS || rows < LT_LAYOUT_MIN_ROWS) {
        out->too_small = true;
        return;
    }
    out->header = rect(0, 0, 1, cols);
    out->tabs = rect(1, 0, 1, cols);
    out->footer = rect(rows - 1, 0, 1, cols);
    out->body = rect(2, 0, rows - 3, cols);
    switch (view) {
    case LT_VIEW_TRAIN:
        layout_train(out, out->body);
        break;
    case LT_VIEW_RUNS:
        layout_runs(out, out->body);
        break;
    case LT_VIEW_DATA:
        layout_data(out, out->body);
        break;
    case LT_VIEW_DEVICES:
        layout_devices(out, out->body);
        break;
    case LT_VIEW_EVAL:
        layout_eval(out, out->body);
        break;
    default:
        add(out, LT_PANE_MAIN, out->body);
        break;
    }
}

const lt_rect *lt_layout_pane(const lt_layout *l, lt_pane_id role)
{
    for (int i = 0; i < l->n_panes; i++)
        if (l->role[i] == role)
            return &l->pane[i];
    return NULL;
}

lt_rect lt_rect_inner(lt_rect r)
{
    lt_rect in = {r.y + 1, r.x + 1, r.h - 2, r.w - 2};
    if (in.h < 0)
        in.h = 0;
    if (in.w < 0)
        in.w = 0;
    return in;
}

bool lt_rect_overlap(lt_rect a, lt_rect b)
{
    if (a.h <= 0 || a.w <= 0 || b.h <= 0 || b.w <= 0)
        return false;
    return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
}

bool lt_rect_inside(lt_rect r, int cols, int rows)
{
    return r.y >= 0 && r.x >= 0 && r.h >= 0 && r.w >= 0 && r.y + r.h <= rows &&
           r.x + r.w <= cols;
}

lt_rect lt_layout_dialog(const lt_layout *l, int h, int w)
{
    lt_rect b = l->body;
    if (l->too_small)
        return rect(0, 0, 0, 0);
    h = clampi(h, 0, b.h);
    w = clampi(w, 0, b.w - 2 > 0 ? b.w - 2 : b.w);
    return rect(b.y + (b.h - h) / 2, b.x + (b.w - w) / 2, h, w);
}

int lt_layout_tab_at(const lt_layout *l, int y, int x)
{
    if (l->too_small || y != l->tabs.y || x < 0)
        return -1;
    int at = 0;
    for (int v = 0; v < LT_VIEW_COUNT; v++) {
        /* " N Title " then one space */
        int w = 4 + (int)strlen(TITLES[v]);
        if (x >= at && x < at + w)
            return v;
        at += w + 1;
    }
    return -1;
}
