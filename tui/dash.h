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
    /* A mouse event in the body (NULL: the view takes none): a click at (y, x), or the wheel
     * (kind LT_MOUSE_WHEEL_UP/DOWN) over (y, x). Returns LT_KEY_* bits. */
    int (*mouse)(void *state, lt_dash *d, int kind, int y, int x);
} lt_view_ops;

/* Mouse event kinds handed to views. */
enum { LT_MOUSE_CLICK = 1, LT_MOUSE_WHEEL_UP, LT_MOUSE_WHEEL_DOWN };

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
    bool mouse;                /* the terminal reports the mouse and it is on */
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

/* A click or wheel turn (LT_MOUSE_*) at screen row y on a list drawn with its first item at
 * row first_y: a click selects the item under it, the wheel moves the selection by 3. Returns
 * LT_KEY_HANDLED when the selection moved, LT_KEY_IGNORED when (y) is off the items. */
int lt_list_mouse(lt_list *l, int kind, int y, int first_y);
/* The same for a view's list inside box (items from first_y): the move is replayed as Up/Down
 * keys through the view's key function, so whatever a key move loads, a click loads too. */
int lt_list_mouse_keys(const lt_list *l, int kind, int y, int x, lt_rect box, int first_y,
                       int (*key)(void *state, lt_dash *d, int ch), void *state, lt_dash *d);

/* ---- background jobs (dash_job.c) ---- */

#define LT_JOB_RESULT_LINES 6

typedef enum lt_job_state { LT_JOB_NONE = 0, LT_JOB_RUNNING, LT_JOB_DONE, LT_JOB_FAILED } lt_job_state;

typedef struct lt_dash_job {
    lt_job_state state;
    int pid;
    char what[128];            /* "import chat.jsonl as chat" */
    char out_path[4200], err_path[4200], prog_path[4200];
    double started, ended;     /* lt_dash_now() */
    double frac;               /* 0..1; < 0 unknown */
    char note[160];            /* the progress line */
    char result[LT_JOB_RESULT_LINES][240]; /* last lines of stdout, of stderr when it failed */
    int n_result;
    char *out;                 /* the whole stdout once finished (malloc'd; lt_dash_job_clear) */
} lt_dash_job;

/* Starts argv (argv[0] "lathe", then the subcommand) as this program in its own session,
 * stdin /dev/null, stdout and stderr to out_path and err_path. Returns the pid, or -1 with err
 * set. */
int lt_dash_spawn(char *const argv[], const char *out_path, const char *err_path, char *err,
                  size_t errlen);
/* Starts a job (refused while one runs in j); files under WORKSPACE/jobs/. progress_file adds
 * "--progress-file PATH" to argv. False when it could not start (j->result says why). */
bool lt_dash_job_start(lt_dash_job *j, const char *workspace, const char *what,
                       char *const argv[], bool progress_file);
/* Non-blocking: reaps the job when it ended, else reads its progress. True when anything
 * shown changed. */
bool lt_dash_job_poll(lt_dash_job *j);
void lt_dash_job_clear(lt_dash_job *j);
/* The job's state, elapsed time, progress bar (or a sweeping block when no fraction is known)
 * and progress line; once finished, its last lines. Inside the rect. */
void lt_dash_job_draw(const lt_dash *d, const lt_dash_job *j, lt_rect in);
/* A progress file's line, "FRACTION TEXT" (FRACTION < 0: unknown). */
bool lt_dash_job_parse_progress(const char *text, double *frac, char *note, size_t notesz);
/* The last "N/M rows" in a command's output (lathe eval's progress off a terminal). */
bool lt_dash_job_parse_rows(const char *text, double *frac, char *note, size_t notesz);
/* A small file's first max bytes, NUL-terminated and malloc'd; NULL when unreadable. */
char *lt_dash_slurp(const char *path, size_t max);
/* Tab completion of a path in place: the longest common prefix of the matching entries, '/'
 * after a sole folder. False when nothing matched. */
bool lt_dash_complete_path(char *path, size_t size);
/* Tab completion of the last comma-separated name in buf from cands: a unique match or the
 * common prefix; a whole name (or nothing) steps to the next candidate. */
bool lt_dash_complete(char *buf, size_t size, const char *const *cands, int n);

/* ---- forms (dash_form.c) ---- */

#define LT_FORM_MAX 24

typedef enum lt_field_kind { LT_FIELD_TEXT = 0, LT_FIELD_PATH, LT_FIELD_NAME } lt_field_kind;

typedef struct lt_form_field {
    char key[48];              /* the option or config key the field fills */
    char label[48];
    char value[1024];
    lt_field_kind kind;
    const char *const *cands;  /* LT_FIELD_NAME: names Tab steps through (caller-owned) */
    int n_cands;
} lt_form_field;

typedef struct lt_form {
    bool open;
    char title[64];
    char hint[200];
    lt_form_field f[LT_FORM_MAX];
    int n, cur;
    char error[300];           /* set by the view when a value is refused */
} lt_form;

/* What a key did to a form. */
enum { LT_FORM_TYPING = 0, LT_FORM_SUBMIT, LT_FORM_CANCEL };

void lt_form_init(lt_form *f, const char *title, const char *hint);
lt_form_field *lt_form_add(lt_form *f, const char *key, const char *label, lt_field_kind kind,
                           const char *value);
const char *lt_form_get(const lt_form *f, const char *key);
/* The field as a number in [lo, hi]: 1 and *out, 0 when empty, -1 when not a number in range
 * (f->error then names the field and the field gets the cursor). */
int lt_form_number(lt_form *f, const char *key, double lo, double hi, double *out);
int lt_form_key(lt_form *f, int ch);
/* The form in a dialog box centred over the body. */
void lt_form_draw(const lt_form *f, const lt_dash *d);

/* ---- runs shared by the Train and Runs views (view_runs.c) ---- */

/* True when the run says running or paused but its process is gone (died without a word). */
bool lt_dash_run_dead(const char *status, int64_t pid);
/* lt_dash_run_dead, or a run the store already marked failed for it ("process gone", see
 * lt_store_runs_reap): either way the view shows it died and its last log lines. */
bool lt_dash_run_gone(const char *status, int64_t pid, const char *message);
/* The last n lines of the newest *.log file under WORKSPACE/runs/<id>/ into out (lines
 * separated by '\n'); false when there is none. */
bool lt_dash_run_log_tail(const char *workspace, int64_t run_id, int n, char *out,
                          size_t outsz);

/* ---- entry points (dash.c) ---- */

/* A mouse event (LT_MOUSE_*) at screen cell (y, x): a click on a tab shows its view, the rest
 * goes to the view. Returns LT_KEY_* bits. */
int lt_dash_mouse(lt_dash *d, int kind, int y, int x);

/* Runs the dashboard on an open store, first showing view (and run_id for the Train view).
 * Returns an exit code. */
int lt_dash_run(lt_store *st, const char *workspace, const char *device, lt_view_id view,
                int64_t run_id);

#endif
