/*
 * dash.c - the dashboard frame: `lathe` (no arguments) and `lathe watch RUN`. Owns the
 * terminal (curses setup and its restoration on every exit path), the signal flags, the poll
 * timer, the header, tab bar, footer and help, and hands the body to the current view.
 *
 * Never blocks on a job and never writes SQL: views read the store through store functions,
 * jobs run as their own processes. Signal handlers only set flags. One doupdate per frame.
 */
#include "cli.h"
#include "dash.h"

#include <errno.h>
#include <langinfo.h>
#include <locale.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define POLL_MS 250        /* getch timeout: the loop sleeps this long when idle */
#define STORE_POLL_S 0.5   /* data_version checked this often */
#define FORCED_POLL_S 2.0  /* views refresh this often even when nothing committed (dead pids) */

static volatile sig_atomic_t g_winch, g_quit;
static bool g_curses_on;

static void on_winch(int sig)
{
    (void)sig;
    g_winch = 1;
}

static void on_quit(int sig)
{
    (void)sig;
    g_quit = 1;
}

/* Puts the terminal back; safe to call twice, registered with atexit. */
static void term_restore(void)
{
    if (g_curses_on && !isendwin())
        endwin();
    g_curses_on = false;
}

double lt_dash_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void lt_dash_say(lt_dash *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->message, sizeof d->message, fmt, ap);
    va_end(ap);
    d->message_until = lt_dash_now() + 4.0;
}

static const lt_view_ops *const VIEWS[LT_VIEW_COUNT] = {
    &lt_view_data_ops, &lt_view_wizard_ops, &lt_view_train_ops,
    &lt_view_runs_ops, &lt_view_eval_ops,   &lt_view_devices_ops,
};

static bool term_init(lt_dash *d)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_winch; /* no SA_RESTART: getch wakes up on a resize */
    sigaction(SIGWINCH, &sa, NULL);
    sa.sa_handler = on_quit;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    atexit(term_restore);
    if (!initscr())
        return false;
    g_curses_on = true;
    cbreak();
    noecho();
    nonl();
    keypad(stdscr, TRUE);
    set_escdelay(25);
    curs_set(0);
    timeout(POLL_MS);
    const char *nc = getenv("NO_COLOR");
    d->color = has_colors() && !(nc && *nc);
    if (d->color) {
        start_color();
        use_default_colors();
        init_pair(1, COLOR_BLACK, COLOR_CYAN);
        init_pair(2, COLOR_CYAN, -1);
        init_pair(3, COLOR_GREEN, -1);
        init_pair(4, COLOR_YELLOW, -1);
        init_pair(5, COLOR_RED, -1);
        init_pair(6, COLOR_MAGENTA, -1);
    }
    /* the mouse, only where the terminal describes its mouse reports (kmous) and ncurses
     * takes them; LATHE_NO_MOUSE=1 leaves the mouse to the terminal (text selection) */
    const char *nm = getenv("LATHE_NO_MOUSE");
    char *kmous = tigetstr("kmous");
    if (!(nm && *nm && strcmp(nm, "0") != 0) && kmous && kmous != (char *)-1 && *kmous) {
        mouseinterval(0);
        if (mousemask(BUTTON1_PRESSED | BUTTON4_PRESSED | BUTTON5_PRESSED, NULL) != 0)
            d->mouse = has_mouse();
    }
    const char *cs = nl_langinfo(CODESET);
    d->utf8 = cs && (strcmp(cs, "UTF-8") == 0 || strcmp(cs, "utf8") == 0);
    return true;
}

/* SIGWINCH arrived: ask the kernel for the size and tell curses. */
static void term_resize(void)
{
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0)
        resizeterm(ws.ws_row, ws.ws_col);
}

static void relayout(lt_dash *d)
{
    lt_layout_compute(COLS, LINES, d->view, &d->lay);
    if (d->vstate[d->view] && d->ops[d->view]->resize)
        d->ops[d->view]->resize(d->vstate[d->view], &d->lay);
}

/* Runs running or paused whose process is alive (the header's job count). */
static int64_t count_active(lt_dash *d)
{
    int64_t n = 0, seen = 0;
    lt_store_iter *it = NULL;
    lt_store_run r;
    if (lt_store_runs_count_active(d->st, &n) != LT_STORE_OK || n == 0)
        return 0;
    n = 0;
    if (lt_store_runs_iter(d->st, &it) != LT_STORE_OK)
        return 0;
    while (seen++ < 10000 && lt_store_runs_next(it, &r) == LT_STORE_OK)
        if (r.status && (strcmp(r.status, "running") == 0 || strcmp(r.status, "paused") == 0) &&
            !lt_dash_run_dead(r.status, r.pid))
            n++;
    lt_store_iter_free(it);
    return n;
}

static void handle_winch(lt_dash *d)
{
    g_winch = 0;
    term_resize();
    relayout(d);
}

static void draw_header(const lt_dash *d)
{
    const lt_layout *l = &d->lay;
    lt_dash_fill(d, l->header.y, 0, l->header.w, LT_STYLE_HEADER);
    char jobs[48];
    if (d->n_active)
        snprintf(jobs, sizeof jobs, "%lld running", (long long)d->n_active);
    else
        snprintf(jobs, sizeof jobs, "no jobs running");
    char rest[160];
    snprintf(rest, sizeof rest, "  device: %s  %s", d->device, jobs);
    int x = lt_dash_putf(d, 0, 0, l->cols, LT_STYLE_HEADER, " lathe %s  workspace: ",
                         LATHE_VERSION);
    x += lt_dash_put(d, 0, x, l->cols - x - (int)strlen(rest), LT_STYLE_HEADER, d->workspace);
    lt_dash_put(d, 0, x, l->cols - x, LT_STYLE_HEADER, rest);

    x = 0;
    for (int v = 0; v < LT_VIEW_COUNT; v++) {
        char t[32];
        snprintf(t, sizeof t, " %d %s ", v + 1, lt_view_title((lt_view_id)v));
        x += lt_dash_put(d, l->tabs.y, x, l->cols - x,
                         v == (int)d->view ? LT_STYLE_TAB_ACTIVE : LT_STYLE_TAB, t);
        x += lt_dash_put(d, l->tabs.y, x, l->cols - x, LT_STYLE_DIM, " ");
    }
}

static void draw_footer(const lt_dash *d, double now)
{
    const lt_layout *l = &d->lay;
    int y = l->footer.y;
    if (d->message[0] && now < d->message_until) {
        lt_dash_put(d, y, 1, l->cols - 2, LT_STYLE_WARN, d->message);
        return;
    }
    const void *vs = d->vstate[d->view];
    const char *keys = vs && d->ops[d->view]->footer ? d->ops[d->view]->footer(vs) : "";
    int x = lt_dash_putf(d, y, 1, l->cols - 2, LT_STYLE_DIM, "%s", keys);
    const char *global = "  Tab/1-6 views  ? help  q quit";
    int gw = (int)strlen(global);
    if (x + 1 + gw <= l->cols - 1)
        lt_dash_put(d, y, l->cols - 1 - gw, gw, LT_STYLE_DIM, global);
}

static const char *const HELP[] = {
    "lathe dashboard",
    "",
    "Tab / Shift-Tab   next / previous view",
    "1 .. 6            Data Wizard Train Runs Eval Devices",
    "Left/Right, h/l   previous / next view (where the view does not use them)",
    "Up/Down, j/k      move in lists; PgUp/PgDn, g/G first/last",
    "Enter / Esc       open / go back",
    "/  n              search in a list, next match",
    "Train:  e EMA smoothing   L log scale   z zoom (all, last 100/1k/10k)",
    "        p pause  r resume  s stop  c checkpoint now (asks the trainer)",
    "Runs:   Enter watch   Space mark for comparison   d config diff",
    "Data:   Enter open    Left/Right bad rows / duplicates",
    "        i import a file  d dedup  f filter  s split (background jobs)",
    "Wizard: Enter pick, Tab completes paths, 1-9 answers, s save plan,",
    "        e edit the config, t start training",
    "Eval:   e new evaluation  s sort by a metric  r reverse  Enter samples",
    "Forms:  Up/Down field, Tab completes, Enter runs, Esc cancels",
    "Mouse (where the terminal reports it): click a tab or a row, wheel scrolls",
    "",
    "q leaves the dashboard; training and jobs keep running. Press any key.",
};

static void draw_help(const lt_dash *d)
{
    int n = (int)(sizeof HELP / sizeof *HELP);
    int w = 78 < d->lay.cols ? 78 : d->lay.cols;
    int h = n + 2 < d->lay.rows ? n + 2 : d->lay.rows;
    lt_rect r = {(d->lay.rows - h) / 2, (d->lay.cols - w) / 2, h, w};
    for (int y = 0; y < r.h; y++)
        lt_dash_fill(d, r.y + y, r.x, r.w, LT_STYLE_NORMAL);
    lt_dash_box(d, r, "help", true);
    for (int i = 0; i < n && i < h - 2; i++)
        lt_dash_put(d, r.y + 1 + i, r.x + 2, r.w - 4, i == 0 ? LT_STYLE_TITLE : LT_STYLE_NORMAL,
                    HELP[i]);
}

static void draw_too_small(const lt_dash *d)
{
    const char *m1 = "Terminal too small";
    char m2[96];
    snprintf(m2, sizeof m2, "%dx%d; lathe needs %dx%d. Resize it, or press q.", COLS, LINES,
             LT_LAYOUT_MIN_COLS, LT_LAYOUT_MIN_ROWS);
    int y = LINES / 2 - 1;
    lt_dash_put(d, y < 0 ? 0 : y, 0, COLS, LT_STYLE_TITLE, m1);
    lt_dash_put(d, y + 1 < LINES ? y + 1 : 0, 0, COLS, LT_STYLE_NORMAL, m2);
}

static void draw_frame(const lt_dash *d, double now)
{
    erase();
    if (d->lay.too_small) {
        draw_too_small(d);
    } else {
        draw_header(d);
        const void *vs = d->vstate[d->view];
        if (vs)
            d->ops[d->view]->draw(vs, d, &d->lay);
        draw_footer(d, now);
        if (d->help)
            draw_help(d);
    }
    wnoutrefresh(stdscr);
    doupdate();
}

static void show_view(lt_dash *d, lt_view_id v)
{
    d->view = v;
    relayout(d);
    if (d->vstate[v] && d->ops[v]->update)
        d->ops[v]->update(d->vstate[v], d, true);
}

int lt_dash_mouse(lt_dash *d, int kind, int y, int x)
{
    if (d->help) {
        d->help = false;
        return LT_KEY_HANDLED;
    }
    if (d->lay.too_small)
        return LT_KEY_IGNORED;
    int tab = kind == LT_MOUSE_CLICK ? lt_layout_tab_at(&d->lay, y, x) : -1;
    if (tab >= 0) {
        if (tab != (int)d->view)
            show_view(d, (lt_view_id)tab);
        return LT_KEY_HANDLED;
    }
    void *vs = d->vstate[d->view];
    if (!vs || !d->ops[d->view]->mouse)
        return LT_KEY_IGNORED;
    int r = d->ops[d->view]->mouse(vs, d, kind, y, x);
    if ((int)d->switch_to >= 0) {
        lt_view_id to = d->switch_to;
        d->switch_to = (lt_view_id)-1;
        show_view(d, to);
    }
    return r;
}

/* A KEY_MOUSE from curses as a click or wheel turn. */
static void frame_mouse(lt_dash *d)
{
    MEVENT ev;
    if (getmouse(&ev) != OK)
        return;
    int kind = (ev.bstate & BUTTON4_PRESSED)   ? LT_MOUSE_WHEEL_UP
               : (ev.bstate & BUTTON5_PRESSED) ? LT_MOUSE_WHEEL_DOWN
               : (ev.bstate & BUTTON1_PRESSED) ? LT_MOUSE_CLICK
                                               : 0;
    if (kind)
        lt_dash_mouse(d, kind, ev.y, ev.x);
}

/* Keys the frame handles when the view did not take them. Returns true to quit. */
static bool frame_key(lt_dash *d, int ch)
{
    switch (ch) {
    case 'q':
    case 'Q':
        return true;
    case '?':
        d->help = true;
        break;
    case '\t':
    case KEY_RIGHT:
    case 'l':
        show_view(d, (lt_view_id)((d->view + 1) % LT_VIEW_COUNT));
        break;
    case KEY_BTAB:
    case KEY_LEFT:
    case 'h':
        show_view(d, (lt_view_id)((d->view + LT_VIEW_COUNT - 1) % LT_VIEW_COUNT));
        break;
    default:
        if (ch >= '1' && ch < '1' + LT_VIEW_COUNT)
            show_view(d, (lt_view_id)(ch - '1'));
        break;
    }
    return false;
}

int lt_dash_run(lt_store *st, const char *workspace, const char *device, lt_view_id view,
                int64_t run_id)
{
    lt_dash d;
    int code = LT_EXIT_FAIL;
    memset(&d, 0, sizeof d);
    d.st = st;
    d.workspace = workspace;
    snprintf(d.device, sizeof d.device, "%s", device ? device : "auto");
    d.run_id = run_id;
    d.view = view;
    d.switch_to = (lt_view_id)-1;
    if (!term_init(&d)) {
        fprintf(stderr, "lathe: cannot start the terminal interface (is TERM set?)\n");
        return LT_EXIT_FAIL;
    }
    for (int v = 0; v < LT_VIEW_COUNT; v++) {
        d.ops[v] = VIEWS[v];
        d.vstate[v] = VIEWS[v]->init(&d);
        if (!d.vstate[v]) {
            term_restore();
            fprintf(stderr, "lathe: out of memory starting the dashboard\n");
            goto free_views;
        }
    }
    int64_t data_version = -1;
    double next_poll = 0, next_forced = 0;
    bool dirty = true;
    show_view(&d, d.view);
    d.n_active = count_active(&d);
    while (!g_quit) {
        double now = lt_dash_now();
        if (g_winch) {
            handle_winch(&d);
            dirty = true;
        }
        if (now >= next_poll) {
            lt_store_read_end(st); /* a lookup left stepped would pin an old snapshot */
            int64_t dv = data_version;
            lt_store_data_version(st, &dv);
            bool changed = dv != data_version || now >= next_forced;
            data_version = dv;
            next_poll = now + STORE_POLL_S;
            if (changed) {
                next_forced = now + FORCED_POLL_S;
                d.n_active = count_active(&d);
                dirty = true;
            }
            if (d.ops[d.view]->update(d.vstate[d.view], &d, changed))
                dirty = true;
            if ((int)d.switch_to >= 0) { /* a finished job asks for another view */
                lt_view_id to = d.switch_to;
                d.switch_to = (lt_view_id)-1;
                show_view(&d, to);
                dirty = true;
            }
        }
        if (d.message[0] && now >= d.message_until) {
            d.message[0] = '\0';
            dirty = true;
        }
        if (dirty) {
            draw_frame(&d, now);
            dirty = false;
        }
        int ch = getch();
        if (ch == ERR)
            continue;
        dirty = true;
        if (g_winch) /* a key that came with a resize belongs to the new size */
            handle_winch(&d);
        if (ch == KEY_RESIZE) {
            relayout(&d);
            continue;
        }
        if (ch == KEY_MOUSE) {
            frame_mouse(&d);
            continue;
        }
        if (d.help) {
            d.help = false;
            continue;
        }
        if (d.lay.too_small) {
            if (ch == 'q' || ch == 'Q')
                break;
            continue;
        }
        int r = d.ops[d.view]->key(d.vstate[d.view], &d, ch);
        if ((int)d.switch_to >= 0) {
            lt_view_id to = d.switch_to;
            d.switch_to = (lt_view_id)-1;
            show_view(&d, to);
        }
        if (r != LT_KEY_IGNORED)
            continue;
        if (frame_key(&d, ch))
            break;
    }
    code = LT_EXIT_OK;
free_views:
    term_restore();
    for (int v = 0; v < LT_VIEW_COUNT; v++)
        if (d.vstate[v])
            d.ops[v]->free(d.vstate[v]);
    return code;
}

/* ---- commands ---- */

/* The workspace must exist, or the user says to create it. Returns true to go on. */
static bool workspace_ready(const char *cmd, const char *ws)
{
    struct stat sb;
    if (stat(ws, &sb) == 0) {
        if (S_ISDIR(sb.st_mode))
            return true;
        lt_cli_fail(cmd, LT_EXIT_FAIL, "'%s' is not a folder", ws);
        return false;
    }
    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
        lt_cli_fail(cmd, LT_EXIT_FAIL,
                    "workspace '%s' does not exist (run lathe on a terminal to create it, or "
                    "pass --workspace DIR)",
                    ws);
        return false;
    }
    printf("The workspace '%s' does not exist. Create it? [y/N] ", ws);
    fflush(stdout);
    char line[32];
    if (!fgets(line, sizeof line, stdin) || (line[0] != 'y' && line[0] != 'Y')) {
        printf("Nothing created.\n");
        return false;
    }
    return true;
}

/* Opens the store for the dashboard: refuses a newer database, says why. */
static lt_store *open_store(const char *cmd, const char *ws)
{
    char err[512];
    lt_store *st = NULL;
    lt_store_status s = lt_store_open(ws, &st, err, sizeof err);
    if (s == LT_STORE_TOO_NEW) {
        lt_cli_fail(cmd, LT_EXIT_FAIL, "%s (a newer lathe wrote it; this one will not touch it)",
                    err);
        return NULL;
    }
    if (s != LT_STORE_OK) {
        lt_cli_fail(cmd, LT_EXIT_FAIL, "%s", err);
        return NULL;
    }
    return st;
}

static int dash_command(const char *cmd, int argc, char **argv, bool watch)
{
    lt_cli_common c;
    const char *run = NULL;
    lt_cli_common_defaults(&c);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            if (watch)
                printf("usage: lathe watch RUN [--workspace DIR]\n\n"
                       "Opens the dashboard's Train view on a run (its id or name): live loss\n"
                       "curves, rates, ETA, and pause/resume/stop/checkpoint. q leaves; the run\n"
                       "keeps going.\n");
            else
                printf("usage: lathe [--workspace DIR] [--device D]\n\n"
                       "Opens the dashboard on the workspace: datasets, runs, live training,\n"
                       "devices. q leaves; running jobs keep going.\n");
            return LT_EXIT_OK;
        }
        int r = lt_cli_common_parse(&c, argc, argv, &i);
        if (r < 0)
            return LT_EXIT_USAGE;
        if (r > 0)
            continue;
        if (watch && !run && argv[i][0] != '-') {
            run = argv[i];
            continue;
        }
        return lt_cli_fail(cmd, LT_EXIT_USAGE, "unexpected argument '%s' (see --help)", argv[i]);
    }
    if (watch && !run)
        return lt_cli_fail(cmd, LT_EXIT_USAGE, "which run? usage: lathe watch RUN");
    const char *ws = lt_store_workspace_resolve(c.workspace);
    if (!workspace_ready(cmd, ws))
        return LT_EXIT_FAIL;
    lt_store *st = open_store(cmd, ws);
    if (!st)
        return LT_EXIT_FAIL;
    int64_t run_id = 0;
    if (run && lt_store_run_find(st, run, &run_id) != LT_STORE_OK) {
        lt_store_close(st);
        return lt_cli_fail(cmd, LT_EXIT_FAIL, "no run '%s' in %s (lathe runs lists them)", run,
                           ws);
    }
    if (!isatty(STDOUT_FILENO)) {
        lt_store_close(st);
        return lt_cli_fail(cmd, LT_EXIT_FAIL, "the dashboard needs a terminal");
    }
    setlocale(LC_ALL, "");
    int code = lt_dash_run(st, ws, c.device, watch ? LT_VIEW_TRAIN : LT_VIEW_RUNS, run_id);
    lt_store_close(st);
    return code;
}

int lt_cmd_dashboard(int argc, char **argv)
{
    return dash_command("dashboard", argc, argv, false);
}

int lt_cmd_watch(int argc, char **argv)
{
    return dash_command("watch", argc, argv, true);
}
