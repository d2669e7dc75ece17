/*
 * dash.h - the dashboard's insides shared by its frame (dash.c), drawing helpers
 * and lists (dash_draw.c) and views (view_*.c). Not a public API: only tui/ uses it.
 *
 * A view is a table of functions, tmux-window-mode style: init and free its state; resize when
 * the layout changes; update reads the store and changes state only (no drawing); draw puts
 * the state on the screen and changes nothing; key takes a key and says what it changed. The
 * frame owns the terminal, the store handle, the poll timer and the single doupdate per frame.
 */
#ifndef LATHE_TUI_DASH_H
#define LATHE_TUI_DASH_H

#include "layout.h"
#include "plot.h"
#include "store.h"

#include <curses.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct lt_dash lt_dash;

/* What a key did, as bits. */
enum {
    LT_KEY_IGNORED = 0, /* not this view's key: the frame may use it */
    LT_KEY_HANDLED = 1, /* taken; state changed, redraw */
    LT_KEY_MODAL = 2,   /* the view is typing (search, prompt): the frame keeps out */
};

typedef struct lt_view_ops {
    lt_view_id id;
    /* OUT: view state (NULL only when memory runs out). */
    void *(*init)(lt_dash *d);
    void (*free)(void *state);
    /* The layout changed (or the view became visible). */
    void (*resize)(void *state, const lt_layout *lay);
    /* Reads the store. changed: the database changed since the last poll. Returns true when
     * the state changed (the frame redraws). */
    bool (*update)(void *state, lt_dash *d, bool changed);
    void (*draw)(const void *state, const lt_dash *d, const lt_layout *lay);
    int (*key)(void *state, lt_dash *d, int ch);
    /* The keys that work here, for the footer ("Enter open  / search ..."). */
    const char *(*footer)(const void *state);
} lt_view_ops;

extern const lt_view_ops lt_view_data_ops, lt_view_wizard_ops, lt_view_train_ops,
    lt_view_runs_ops, lt_view_eval_ops, lt_view_devices_ops;

/* Styles; each maps to a colour pair when colours are on and to bold/reverse/underline
 * otherwise, so monochrome stays readable. */
typedef enum lt_style {
    LT_STYLE_NORMAL = 0,
    LT_STYLE_HEADER,
    LT_STYLE_TAB,
    LT_STYLE_TAB_ACTIVE,
    LT_STYLE_TITLE,
    LT_STYLE_DIM,
    LT_STYLE_SELECT,
    LT_STYLE_OK,
    LT_STYLE_WARN,
    LT_STYLE_ERR,
    LT_STYLE_SERIES1,
    LT_STYLE_SERIES2,
    LT_STYLE_SERIES3,
    LT_STYLE_SERIES4,
    LT_STYLE_COUNT
} lt_style;

struct lt_dash {
    lt_store *st;
    const char *workspace;
    char device[96];           /* header: the device runs would use */
    int64_t n_active;          /* runs running or paused */
    lt_view_id view;
    const lt_view_ops *ops[LT_VIEW_COUNT];
    void *vstate[LT_VIEW_COUNT];
    lt_layout lay;
    bool color, utf8;
    bool help;
    int64_t run_id;            /* the run the Train view shows (0: the newest) */
    lt_view_id switch_to;      /* a view asks the frame to show another (-1: none) */
    char message[160];         /* transient line in the footer */
    double message_until;      /* monotonic seconds */
};

/* Monotonic seconds. */
double lt_dash_now(void);
/* Sets the footer message for a few seconds (trusted text, still sanitized). */
void lt_dash_say(lt_dash *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- drawing (dash_draw.c); every string goes through the sanitizer ---- */

attr_t lt_dash_attr(const lt_dash *d, lt_style s);
/* A bordered box with a title; focused boxes get a bold title. */
void lt_dash_box(const lt_dash *d, lt_rect r, const char *title, bool focused);
/* Prints s (any bytes) at (y, x) in at most w columns; returns columns used. */
int lt_dash_put(const lt_dash *d, int y, int x, int w, lt_style style, const char *s);
int lt_dash_putf(const lt_dash *d, int y, int x, int w, lt_style style, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* Fills w cells of row y from x with spaces in a style (selection bars). */
void lt_dash_fill(const lt_dash *d, int y, int x, int w, lt_style style);
/* Puts a rendered plot with its top-left at (y, x). */
void lt_dash_plot(const lt_dash *d, const lt_plot *p, int y, int x);
/* n full-block cells ('#' on ASCII terminals) from (y, x). */
void lt_dash_blocks(const lt_dash *d, int y, int x, int n, lt_style style);
/* A horizontal bar of frac (0..1) in w cells. */
void lt_dash_bar(const lt_dash *d, int y, int x, int w, double frac, lt_style style);
/* "1h02m", "3m05s", "12s". */
void lt_dash_duration(double seconds, char *out, size_t outsz);
/* "1.5 GiB", "300 MiB". */
void lt_dash_bytes(double bytes, char *out, size_t outsz);

/* ---- a scrolling list with selection and / search (dash_draw.c) ---- */

typedef struct lt_list {
    int n;          /* items */
    int sel;        /* selected index (0 when empty) */
    int top;        /* first visible */
    int height;     /* visible rows (set by the view's draw/resize) */
    bool searching; /* typing a query after / */
    char query[64];
} lt_list;

/* Text of item i used by search; ctx is the view's state. */
typedef const char *(*lt_list_text_fn)(const void *ctx, int i);

/* Handles arrows, j/k, PgUp/PgDn, g/G, Home/End, / (search, Enter keeps, Esc cancels) and n
 * (next match). Returns LT_KEY_* bits. */
int lt_list_key(lt_list *l, int ch, lt_list_text_fn text, const void *ctx);
/* Keeps sel within [0, n) and visible within height rows. */
void lt_list_fix(lt_list *l);
/* Draws the search prompt (when searching) on row y. */
void lt_list_draw_search(const lt_list *l, const lt_dash *d, int y, int x, int w);

/* ---- runs shared by the Train and Runs views (view_runs.c) ---- */

/* True when the run says running or paused but its process is gone (died without a word). */
bool lt_dash_run_dead(const char *status, int64_t pid);
/* The last n lines of the newest *.log file under WORKSPACE/runs/<id>/ into out (lines
 * separated by '\n'); false when there is none. */
bool lt_dash_run_log_tail(const char *workspace, int64_t run_id, int n, char *out,
                          size_t outsz);

/* ---- entry points (dash.c) ---- */

/* Runs the dashboard on an open store, first showing view (and run_id for the Train view).
 * Returns an exit code. */
int lt_dash_run(lt_store *st, const char *workspace, const char *device, lt_view_id view,
                int64_t run_id);

#endif
