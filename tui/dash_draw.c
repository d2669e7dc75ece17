/*
 * dash_draw.c - the dashboard's drawing helpers: styles (colour or monochrome), boxes,
 * sanitized text, plots, bars, and the lists every view scrolls. Draws to stdscr only; never
 * refreshes (the frame does one doupdate per frame) and never writes an unsanitized string.
 */
#include "dash.h"
#include "sanitize.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

attr_t lt_dash_attr(const lt_dash *d, lt_style s)
{
    if (d->color) {
        switch (s) {
        case LT_STYLE_HEADER:
            return COLOR_PAIR(1) | A_BOLD;
        case LT_STYLE_TAB:
            return A_NORMAL;
        case LT_STYLE_TAB_ACTIVE:
            return COLOR_PAIR(1) | A_BOLD;
        case LT_STYLE_TITLE:
            return COLOR_PAIR(2) | A_BOLD;
        case LT_STYLE_DIM:
            return A_DIM;
        case LT_STYLE_SELECT:
            return A_REVERSE;
        case LT_STYLE_OK:
            return COLOR_PAIR(3);
        case LT_STYLE_WARN:
            return COLOR_PAIR(4) | A_BOLD;
        case LT_STYLE_ERR:
            return COLOR_PAIR(5) | A_BOLD;
        case LT_STYLE_SERIES1:
            return COLOR_PAIR(2);
        case LT_STYLE_SERIES2:
            return COLOR_PAIR(4);
        case LT_STYLE_SERIES3:
            return COLOR_PAIR(3);
        case LT_STYLE_SERIES4:
            return COLOR_PAIR(6);
        default:
            return A_NORMAL;
        }
    }
    switch (s) {
    case LT_STYLE_HEADER:
    case LT_STYLE_TAB_ACTIVE:
    case LT_STYLE_SELECT:
        return A_REVERSE;
    case LT_STYLE_TITLE:
    case LT_STYLE_SERIES2:
        return A_BOLD;
    case LT_STYLE_WARN:
    case LT_STYLE_ERR:
        return A_BOLD | A_UNDERLINE;
    case LT_STYLE_DIM:
        return A_DIM;
    default:
        return A_NORMAL;
    }
}

int lt_dash_put(const lt_dash *d, int y, int x, int w, lt_style style, const char *s)
{
    char buf[1024];
    if (w <= 0 || y < 0 || x < 0 || y >= LINES || x >= COLS)
        return 0;
    if (x + w > COLS)
        w = COLS - x;
    if (!d->utf8) {
        /* ASCII terminal: every byte >= 0x80 becomes an escape too */
        size_t o = 0;
        for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p && o + 5 < sizeof buf;
             p++) {
            if (*p >= 0x20 && *p < 0x7f)
                buf[o++] = (char)*p;
            else
                o += (size_t)snprintf(buf + o, sizeof buf - o, "\\x%02x", *p);
        }
        buf[o] = '\0';
        if ((int)o > w)
            buf[w] = '\0';
        attrset(lt_dash_attr(d, style));
        mvaddstr(y, x, buf);
        attrset(A_NORMAL);
        return (int)strlen(buf);
    }
    int cols = lt_sanitize(s, -1, buf, sizeof buf, w, true, NULL);
    attrset(lt_dash_attr(d, style));
    mvaddstr(y, x, buf);
    attrset(A_NORMAL);
    return cols;
}

int lt_dash_putf(const lt_dash *d, int y, int x, int w, lt_style style, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return lt_dash_put(d, y, x, w, style, buf);
}

void lt_dash_fill(const lt_dash *d, int y, int x, int w, lt_style style)
{
    if (y < 0 || y >= LINES || x < 0)
        return;
    attrset(lt_dash_attr(d, style));
    for (int i = 0; i < w && x + i < COLS; i++)
        mvaddch(y, x + i, ' ');
    attrset(A_NORMAL);
}

void lt_dash_box(const lt_dash *d, lt_rect r, const char *title, bool focused)
{
    if (r.h < 2 || r.w < 2)
        return;
    attrset(focused ? lt_dash_attr(d, LT_STYLE_TITLE) : A_NORMAL);
    mvhline(r.y, r.x + 1, ACS_HLINE, r.w - 2);
    mvhline(r.y + r.h - 1, r.x + 1, ACS_HLINE, r.w - 2);
    mvvline(r.y + 1, r.x, ACS_VLINE, r.h - 2);
    mvvline(r.y + 1, r.x + r.w - 1, ACS_VLINE, r.h - 2);
    mvaddch(r.y, r.x, ACS_ULCORNER);
    mvaddch(r.y, r.x + r.w - 1, ACS_URCORNER);
    mvaddch(r.y + r.h - 1, r.x, ACS_LLCORNER);
    mvaddch(r.y + r.h - 1, r.x + r.w - 1, ACS_LRCORNER);
    attrset(A_NORMAL);
    if (title && *title && r.w > 6) {
        char t[256];
        snprintf(t, sizeof t, " %s ", title);
        lt_dash_put(d, r.y, r.x + 2, r.w - 4, focused ? LT_STYLE_TITLE : LT_STYLE_NORMAL, t);
    }
}

void lt_dash_plot(const lt_dash *d, const lt_plot *p, int y, int x)
{
    static const lt_style SERIES[] = {LT_STYLE_DIM, LT_STYLE_SERIES1, LT_STYLE_SERIES2,
                                      LT_STYLE_SERIES3, LT_STYLE_SERIES4};
    for (int r = 0; r < p->h && y + r < LINES; r++) {
        for (int c = 0; c < p->w && x + c < COLS; c++) {
            uint32_t cp = p->cell[r * p->w + c];
            uint8_t own = p->owner[r * p->w + c];
            attr_t a = own ? lt_dash_attr(d, SERIES[own > 4 ? 4 : own]) : A_NORMAL;
            if (cp < 0x80) {
                mvaddch(y + r, x + c, (chtype)cp | a);
            } else if (!d->utf8) {
                mvaddch(y + r, x + c, (own ? '*' : cp == 0x2500 ? '-' : cp == 0x2502 ? '|' : '+') | a);
            } else {
                wchar_t wc[2] = {(wchar_t)cp, 0};
                cchar_t cc;
                setcchar(&cc, wc, a, 0, NULL);
                mvadd_wch(y + r, x + c, &cc);
            }
        }
    }
}

void lt_dash_blocks(const lt_dash *d, int y, int x, int n, lt_style style)
{
    attr_t a = lt_dash_attr(d, style);
    for (int i = 0; i < n && x + i < COLS; i++) {
        if (d->utf8) {
            wchar_t wc[2] = {0x2588, 0};
            cchar_t cc;
            setcchar(&cc, wc, a, 0, NULL);
            mvadd_wch(y, x + i, &cc);
        } else {
            mvaddch(y, x + i, '#' | a);
        }
    }
}

void lt_dash_bar(const lt_dash *d, int y, int x, int w, double frac, lt_style style)
{
    if (w <= 2)
        return;
    if (!(frac >= 0))
        frac = 0;
    if (frac > 1)
        frac = 1;
    int fill = (int)(frac * (w - 2) + 0.5);
    mvaddch(y, x, '[');
    lt_dash_blocks(d, y, x + 1, fill, style);
    for (int i = fill; i < w - 2; i++)
        mvaddch(y, x + 1 + i, '.');
    mvaddch(y, x + w - 1, ']');
}

void lt_dash_duration(double s, char *out, size_t outsz)
{
    if (!(s >= 0))
        s = 0;
    long t = (long)(s + 0.5);
    if (t >= 86400)
        snprintf(out, outsz, "%ldd%02ldh", t / 86400, (t % 86400) / 3600);
    else if (t >= 3600)
        snprintf(out, outsz, "%ldh%02ldm", t / 3600, (t % 3600) / 60);
    else if (t >= 60)
        snprintf(out, outsz, "%ldm%02lds", t / 60, t % 60);
    else
        snprintf(out, outsz, "%lds", t);
}

void lt_dash_bytes(double b, char *out, size_t outsz)
{
    if (b >= 1024.0 * 1024 * 1024)
        snprintf(out, outsz, "%.1f GiB", b / (1024.0 * 1024 * 1024));
    else if (b >= 1024.0 * 1024)
        snprintf(out, outsz, "%.0f MiB", b / (1024.0 * 1024));
    else
        snprintf(out, outsz, "%.0f KiB", b / 1024.0);
}

/* ---- lists ---- */

void lt_list_fix(lt_list *l)
{
    if (l->n <= 0) {
        l->sel = l->top = 0;
        return;
    }
    if (l->sel >= l->n)
        l->sel = l->n - 1;
    if (l->sel < 0)
        l->sel = 0;
    int h = l->height > 0 ? l->height : 1;
    if (l->sel < l->top)
        l->top = l->sel;
    if (l->sel >= l->top + h)
        l->top = l->sel - h + 1;
    if (l->top > l->n - h)
        l->top = l->n - h;
    if (l->top < 0)
        l->top = 0;
}

int lt_list_mouse(lt_list *l, int kind, int y, int first_y)
{
    int sel = l->sel;
    if (kind == LT_MOUSE_WHEEL_UP || kind == LT_MOUSE_WHEEL_DOWN) {
        l->sel += kind == LT_MOUSE_WHEEL_UP ? -3 : 3;
    } else {
        int h = l->height > 0 ? l->height : 1;
        int row = y - first_y;
        if (row < 0 || row >= h || l->top + row >= l->n)
            return LT_KEY_IGNORED;
        l->sel = l->top + row;
    }
    lt_list_fix(l);
    return l->sel != sel ? LT_KEY_HANDLED : LT_KEY_IGNORED;
}

int lt_list_mouse_keys(const lt_list *l, int kind, int y, int x, lt_rect box, int first_y,
                       int (*key)(void *state, lt_dash *d, int ch), void *state, lt_dash *d)
{
    if (y < box.y || y >= box.y + box.h || x < box.x || x >= box.x + box.w)
        return LT_KEY_IGNORED;
    lt_list to = *l;
    if (lt_list_mouse(&to, kind, y, first_y) == LT_KEY_IGNORED)
        return LT_KEY_IGNORED;
    int steps = to.sel - l->sel;
    for (int i = 0; i < (steps < 0 ? -steps : steps); i++)
        key(state, d, steps < 0 ? KEY_UP : KEY_DOWN);
    return LT_KEY_HANDLED;
}

static bool contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    if (!hay)
        return false;
    for (; *hay; hay++)
        if (strncasecmp(hay, needle, n) == 0)
            return true;
    return false;
}

/* Moves sel to the next item (from sel + skip, wrapping) whose text contains the query. */
static void list_find(lt_list *l, int skip, lt_list_text_fn text, const void *ctx)
{
    if (!l->query[0] || !text || l->n <= 0)
        return;
    for (int k = 0; k < l->n; k++) {
        int i = (l->sel + skip + k) % l->n;
        if (contains_ci(text(ctx, i), l->query)) {
            l->sel = i;
            return;
        }
    }
}

int lt_list_key(lt_list *l, int ch, lt_list_text_fn text, const void *ctx)
{
    if (l->searching) {
        size_t len = strlen(l->query);
        if (ch == 27) {
            l->searching = false;
            l->query[0] = '\0';
        } else if (ch == '\n' || ch == '\r' || ch == KEY_ENTER) {
            l->searching = false;
        } else if (ch == KEY_BACKSPACE || ch == 127 || ch == 8) {
            if (len)
                l->query[len - 1] = '\0';
        } else if (ch >= 0x20 && ch < 0x7f && len + 1 < sizeof l->query) {
            l->query[len] = (char)ch;
            l->query[len + 1] = '\0';
            list_find(l, 0, text, ctx);
        }
        lt_list_fix(l);
        return LT_KEY_HANDLED | LT_KEY_MODAL;
    }
    int page = l->height > 1 ? l->height - 1 : 1;
    switch (ch) {
    case KEY_UP:
    case 'k':
        l->sel--;
        break;
    case KEY_DOWN:
    case 'j':
        l->sel++;
        break;
    case KEY_PPAGE:
        l->sel -= page;
        break;
    case KEY_NPAGE:
    case ' ':
        l->sel += page;
        break;
    case KEY_HOME:
    case 'g':
        l->sel = 0;
        break;
    case KEY_END:
    case 'G':
        l->sel = l->n - 1;
        break;
    case '/':
        l->searching = true;
        l->query[0] = '\0';
        return LT_KEY_HANDLED | LT_KEY_MODAL;
    case 'n':
        list_find(l, 1, text, ctx);
        break;
    default:
        return LT_KEY_IGNORED;
    }
    lt_list_fix(l);
    return LT_KEY_HANDLED;
}

void lt_list_draw_search(const lt_list *l, const lt_dash *d, int y, int x, int w)
{
    if (!l->searching && !l->query[0])
        return;
    lt_dash_fill(d, y, x, w, LT_STYLE_NORMAL);
    lt_dash_putf(d, y, x, w, l->searching ? LT_STYLE_TITLE : LT_STYLE_DIM, "/%s%s", l->query,
                 l->searching ? "_" : "  (n: next)");
}
