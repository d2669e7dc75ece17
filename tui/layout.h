/*
 * layout.h - where every box of the dashboard goes, as a pure function of the terminal size
 * and the view shown. No terminal, no state: tests call it at any size without ncurses.
 *
 * The frame is a header line, a tab bar, the body and a footer line of keys. The body holds
 * the panes of the current view; each pane is a bordered box whose inside starts one cell in.
 * Below LT_LAYOUT_MIN_COLS x LT_LAYOUT_MIN_ROWS the layout says too_small and places nothing.
 */
#ifndef LATHE_TUI_LAYOUT_H
#define LATHE_TUI_LAYOUT_H

#include <stdbool.h>

#define LT_LAYOUT_MIN_COLS 80
#define LT_LAYOUT_MIN_ROWS 24
#define LT_LAYOUT_MAX_PANES 7

typedef struct lt_rect {
    int y, x, h, w; /* top-left cell and size, in cells */
} lt_rect;

/* The views, in tab order (number keys 1..6). */
typedef enum lt_view_id {
    LT_VIEW_DATA = 0,
    LT_VIEW_WIZARD,
    LT_VIEW_TRAIN,
    LT_VIEW_RUNS,
    LT_VIEW_EVAL,
    LT_VIEW_DEVICES,
    LT_VIEW_COUNT
} lt_view_id;

/* Pane roles, so views find their boxes by meaning rather than by index. */
typedef enum lt_pane_id {
    LT_PANE_NONE = -1,
    LT_PANE_LIST = 0,  /* runs list, datasets list, devices list, evaluations */
    LT_PANE_PLOT,      /* train: loss curve; runs: overlaid curves */
    LT_PANE_STATS,     /* train: numbers; data: stats + histogram; devices/runs: detail */
    LT_PANE_AUX,       /* train: lr and grad-norm curves (tall terminals only) */
    LT_PANE_EVENTS,    /* train: warnings and acks; data: bad rows / clusters; eval: samples */
    LT_PANE_MAIN,      /* single-pane views (wizard) */
    LT_PANE_JOBS,      /* data, eval: the background job started from the view, its progress */
    LT_PANE_COUNT
} lt_pane_id;

typedef struct lt_layout {
    int cols, rows;
    bool too_small;
    lt_rect header, tabs, body, footer;
    int n_panes;
    lt_rect pane[LT_LAYOUT_MAX_PANES];
    lt_pane_id role[LT_LAYOUT_MAX_PANES];
} lt_layout;

/* Fills *out for a terminal of cols x rows showing view. */
void lt_layout_compute(int cols, int rows, lt_view_id view, lt_layout *out);

/* The box of a pane role, or NULL when this layout has none. */
const lt_rect *lt_layout_pane(const lt_layout *l, lt_pane_id role);

/* The inside of a bordered box (one cell in on every side; h or w may be 0). */
lt_rect lt_rect_inner(lt_rect r);
bool lt_rect_overlap(lt_rect a, lt_rect b);
bool lt_rect_inside(lt_rect r, int cols, int rows);

/* Tab label of a view ("Data", "Wizard", ...). */
const char *lt_view_title(lt_view_id v);

/* A dialog box (forms) of at most h x w cells, centred in the body and clipped to it. */
lt_rect lt_layout_dialog(const lt_layout *l, int h, int w);

/* The view whose tab is at cell (y, x) of the tab bar (tabs read " 1 Data " and so on, one
 * space apart), or -1. For mouse clicks. */
int lt_layout_tab_at(const lt_layout *l, int y, int x);

#endif
