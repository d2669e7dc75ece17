/*
 * test_layout.c - the dashboard layout as a pure function of the terminal size: for every
 * view at 80x24, 120x40 and 250x70 (and odd sizes between), no two boxes overlap, every box is
 * inside the screen, each view has the panes it draws into (Data and Eval: the job box too), a
 * form's dialog box fits inside the body, a click on the tab bar finds the tab drawn there, and
 * a terminal below 80x24 is reported too small. No terminal involved.
 */
#include "layout.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
               lt_layout_pane(l, LT_PANE_EVENTS) && lt_layout_pane(l, LT_PANE_JOBS);
    case LT_VIEW_DEVICES:
        return lt_layout_pane(l, LT_PANE_LIST) && lt_layout_pane(l, LT_PANE_STATS);
    case LT_VIEW_EVAL:
        return lt_layout_pane(l, LT_PANE_LIST) && lt_layout_pane(l, LT_PANE_EVENTS) &&
               lt_layout_pane(l, LT_PANE_JOBS);
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
    /* the job box holds its state line and a progress bar or result line */
    const lt_rect *jobs = lt_layout_pane(&l, LT_PANE_JOBS);
    if (jobs)
        CHECK(jobs->h >= 4 && jobs->w >= 24, "%s %dx%d: job box %dx%d holds a bar", name, cols,
              rows, jobs->w, jobs->h);
    /* forms: the dialog stays inside the body whatever it asks for, centred */
    const int asks[][2] = {{9, 76}, {30, 76}, {6, 300}, {0, 0}};
    for (size_t a = 0; a < sizeof asks / sizeof *asks; a++) {
        lt_rect dl = lt_layout_dialog(&l, asks[a][0], asks[a][1]);
        CHECK(dl.h <= asks[a][0] && dl.w <= asks[a][1] && dl.y >= l.body.y &&
                  dl.y + dl.h <= l.body.y + l.body.h && dl.x >= l.body.x &&
                  dl.x + dl.w <= l.body.x + l.body.w,
              "%s %dx%d: dialog %dx%d inside the body", name, cols, rows, asks[a][1],
              asks[a][0]);
        if (asks[a][0] <= l.body.h && asks[a][1] <= l.body.w - 2)
            CHECK(dl.h == asks[a][0] && dl.w == asks[a][1] &&
                      abs((dl.x - l.body.x) - (l.body.x + l.body.w - dl.x - dl.w)) <= 1,
                  "%s %dx%d: dialog %dx%d gets its size, centred", name, cols, rows,
                  asks[a][1], asks[a][0]);
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

    /* mouse: the tab bar reads " 1 Data   2 Wizard   3 Train   4 Runs   5 Eval   6 Devices" */
    const char *bar = " 1 Data   2 Wizard   3 Train   4 Runs   5 Eval   6 Devices ";
    lt_layout_compute(100, 30, LT_VIEW_RUNS, &l);
    for (int v = 0; v < LT_VIEW_COUNT; v++) {
        char label[16];
        snprintf(label, sizeof label, "%d %s", v + 1, lt_view_title((lt_view_id)v));
        int at = (int)(strstr(bar, label) - bar);
        for (int x = at; x < at + (int)strlen(label); x++)
            CHECK(lt_layout_tab_at(&l, l.tabs.y, x) == v, "click at x=%d hits tab %d", x, v);
    }
    CHECK(lt_layout_tab_at(&l, l.tabs.y, (int)strlen(bar) + 2) == -1, "right of the tabs: none");
    CHECK(lt_layout_tab_at(&l, l.tabs.y, 8) == -1, "the gap between tabs: none");
    CHECK(lt_layout_tab_at(&l, l.tabs.y + 1, 3) == -1, "below the tab bar: none");
    CHECK(lt_layout_tab_at(&l, l.header.y, 3) == -1, "the header: none");

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
