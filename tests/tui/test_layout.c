/*
 * test_layout.c - the dashboard layout as a pure function of the terminal size: for every
 * view at 80x24, 120x40 and 250x70 (and odd sizes between), no two boxes overlap, every box is
 * inside the screen, each view has the panes it draws into, and a terminal below 80x24 is
 * reported too small. No terminal involved.
 */
#include "layout.h"
#include "test.h"

#include <stdio.h>

static const int SIZES[][2] = {{80, 24}, {120, 40}, {250, 70}, {81, 25}, {99, 33}, {200, 24}, {80, 90}};

/* The panes each view must get at every size >= 80x24. */
static bool has_required(const lt_layout *l, lt_view_id v)
{
    switch (v) {
    case LT_VIEW_TRAIN:
        return lt_layout_pane(l, LT_PANE_PLOT) && lt_layout_pane(l, LT_PANE_STATS) &&
               lt_layout_pane(l, LT_PANE_EVENTS);
    case LT_VIEW_RUNS:
        return lt_layout_pane(l, LT_PANE_LIST) && lt_layout_pane(l, LT_PANE_STATS) &&
               lt_layout_pane(l, LT_PANE_PLOT);
    case LT_VIEW_DATA:
        return lt_layout_pane(l, LT_PANE_LIST) && lt_layout_pane(l, LT_PANE_STATS) &&
               lt_layout_pane(l, LT_PANE_EVENTS);
    case LT_VIEW_DEVICES:
        return lt_layout_pane(l, LT_PANE_LIST) && lt_layout_pane(l, LT_PANE_STATS);
    case LT_VIEW_EVAL:
        return lt_layout_pane(l, LT_PANE_LIST) && lt_layout_pane(l, LT_PANE_EVENTS);
    default:
        return lt_layout_pane(l, LT_PANE_MAIN) != NULL;
    }
}

static void check_size(int cols, int rows, lt_view_id v)
{
    lt_layout l;
    lt_layout_compute(cols, rows, v, &l);
    const char *name = lt_view_title(v);
    CHECK(!l.too_small, "%s %dx%d: not too small", name, cols, rows);
    lt_rect frame[4] = {l.header, l.tabs, l.body, l.footer};
    for (int i = 0; i < 4; i++) {
        CHECK(lt_rect_inside(frame[i], cols, rows) && frame[i].h > 0,
              "%s %dx%d: frame box %d inside", name, cols, rows, i);
        for (int j = i + 1; j < 4; j++)
            CHECK(!lt_rect_overlap(frame[i], frame[j]), "%s %dx%d: frame boxes %d and %d overlap",
                  name, cols, rows, i, j);
    }
    CHECK(has_required(&l, v), "%s %dx%d: the panes the view draws into", name, cols, rows);
    for (int i = 0; i < l.n_panes; i++) {
        lt_rect p = l.pane[i];
        CHECK(lt_rect_inside(p, cols, rows), "%s %dx%d: pane %d (%d,%d %dx%d) inside the screen",
              name, cols, rows, i, p.y, p.x, p.w, p.h);
        CHECK(p.y >= l.body.y && p.y + p.h <= l.body.y + l.body.h && p.x >= l.body.x &&
                  p.x + p.w <= l.body.x + l.body.w,
              "%s %dx%d: pane %d inside the body", name, cols, rows, i);
        CHECK(p.w >= 20 && p.h >= 4, "%s %dx%d: pane %d big enough to use (%dx%d)", name, cols,
              rows, i, p.w, p.h);
        for (int j = i + 1; j < l.n_panes; j++)
            CHECK(!lt_rect_overlap(p, l.pane[j]), "%s %dx%d: panes %d and %d overlap", name, cols,
                  rows, i, j);
    }
    /* the body is covered: the panes' areas add up to the body's (nothing left blank) */
    long area = 0;
    for (int i = 0; i < l.n_panes; i++)
        area += (long)l.pane[i].w * l.pane[i].h;
    CHECK(area == (long)l.body.w * l.body.h, "%s %dx%d: panes tile the body (%ld of %ld)", name,
          cols, rows, area, (long)l.body.w * l.body.h);
}

int main(void)
{
    for (size_t s = 0; s < sizeof SIZES / sizeof *SIZES; s++)
        for (int v = 0; v < LT_VIEW_COUNT; v++)
            check_size(SIZES[s][0], SIZES[s][1], (lt_view_id)v);

    /* the train view gets its lr/grad-norm curves only when there is room */
    lt_layout l;
    lt_layout_compute(80, 24, LT_VIEW_TRAIN, &l);
    CHECK(lt_layout_pane(&l, LT_PANE_AUX) == NULL, "80x24 train: no aux curves");
    lt_layout_compute(250, 70, LT_VIEW_TRAIN, &l);
    CHECK(lt_layout_pane(&l, LT_PANE_AUX) != NULL, "250x70 train: aux curves");

    /* too small: polite message, no boxes */
    const int small[][2] = {{79, 24}, {80, 23}, {1, 1}, {0, 0}, {-5, 40}};
    for (size_t s = 0; s < sizeof small / sizeof *small; s++) {
        lt_layout_compute(small[s][0], small[s][1], LT_VIEW_RUNS, &l);
        CHECK(l.too_small && l.n_panes == 0, "%dx%d is too small", small[s][0], small[s][1]);
    }

    /* rectangle helpers */
    lt_rect a = {0, 0, 5, 5}, b = {0, 5, 5, 5}, c = {4, 4, 2, 2};
    CHECK(!lt_rect_overlap(a, b), "touching boxes do not overlap");
    CHECK(lt_rect_overlap(a, c), "boxes sharing a cell overlap");
    lt_rect in = lt_rect_inner(a);
    CHECK(in.y == 1 && in.x == 1 && in.h == 3 && in.w == 3, "inner box");
    lt_rect tiny = {0, 0, 1, 1};
    in = lt_rect_inner(tiny);
    CHECK(in.h == 0 && in.w == 0, "inner of a 1x1 box is empty");
    CHECK(!lt_rect_inside((lt_rect){20, 70, 5, 11}, 80, 24), "a box past the right edge");
    return test_summary();
}
