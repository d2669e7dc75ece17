/*
 * dash_form.c - a small form in a box over the view: labelled fields typed one at a time (Up,
 * Down move; Tab completes a path or a name from a list, or moves on; Enter submits; Esc
 * cancels). The view checks the values on submit and puts what is wrong in the form's error
 * line, naming the field. Values are typed by the user but drawn through the sanitizer like
 * everything else.
 */
#include "dash.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void lt_form_init(lt_form *f, const char *title, const char *hint)
{
    memset(f, 0, sizeof(*f));
    snprintf(f->title, sizeof f->title, "%s", title);
    snprintf(f->hint, sizeof f->hint, "%s", hint ? hint : "");
    f->open = true;
}

lt_form_field *lt_form_add(lt_form *f, const char *key, const char *label, lt_field_kind kind,
                           const char *value)
{
    if (f->n >= LT_FORM_MAX)
        return NULL;
    lt_form_field *x = &f->f[f->n++];
    memset(x, 0, sizeof(*x));
    snprintf(x->key, sizeof x->key, "%s", key);
    snprintf(x->label, sizeof x->label, "%s", label);
    snprintf(x->value, sizeof x->value, "%s", value ? value : "");
    x->kind = kind;
    return x;
}

const char *lt_form_get(const lt_form *f, const char *key)
{
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->f[i].key, key) == 0)
            return f->f[i].value;
    return NULL;
}

static const lt_form_field *field_of(const lt_form *f, const char *key)
{
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->f[i].key, key) == 0)
            return &f->f[i];
    return NULL;
}

int lt_form_number(lt_form *f, const char *key, double lo, double hi, double *out)
{
    const lt_form_field *x = field_of(f, key);
    const char *v = x ? x->value : "";
    while (*v == ' ')
        v++;
    if (!*v)
        return 0;
    char *end = NULL;
    double d = strtod(v, &end);
    while (end && *end == ' ')
        end++;
    if (end == v || (end && *end) || !isfinite(d) || d < lo || d > hi) {
        snprintf(f->error, sizeof f->error, "%s: expected a number from %g to %g, got '%.40s'",
                 x ? x->label : key, lo, hi, v);
        f->cur = x ? (int)(x - f->f) : f->cur;
        return -1;
    }
    *out = d;
    return 1;
}

int lt_form_key(lt_form *f, int ch)
{
    if (f->n == 0)
        return ch == 27 ? LT_FORM_CANCEL : LT_FORM_TYPING;
    lt_form_field *x = &f->f[f->cur];
    size_t len = strlen(x->value);
    switch (ch) {
    case 27:
        f->open = false;
        return LT_FORM_CANCEL;
    case '\n':
    case '\r':
    case KEY_ENTER:
        f->error[0] = '\0';
        return LT_FORM_SUBMIT;
    case KEY_UP:
    case KEY_BTAB:
        f->cur = (f->cur + f->n - 1) % f->n;
        return LT_FORM_TYPING;
    case KEY_DOWN:
        f->cur = (f->cur + 1) % f->n;
        return LT_FORM_TYPING;
    case '\t':
        if (x->kind == LT_FIELD_PATH)
            lt_dash_complete_path(x->value, sizeof x->value);
        else if (x->kind == LT_FIELD_NAME && x->n_cands > 0)
            lt_dash_complete(x->value, sizeof x->value, x->cands, x->n_cands);
        else
            f->cur = (f->cur + 1) % f->n;
        return LT_FORM_TYPING;
    case KEY_BACKSPACE:
    case 127:
    case 8:
        if (len)
            x->value[len - 1] = '\0';
        return LT_FORM_TYPING;
    case 21: /* Ctrl-U */
        x->value[0] = '\0';
        return LT_FORM_TYPING;
    }
    if (ch >= 0x20 && ch < 0x7f && len + 1 < sizeof x->value) {
        x->value[len] = (char)ch;
        x->value[len + 1] = '\0';
    }
    return LT_FORM_TYPING;
}

void lt_form_draw(const lt_form *f, const lt_dash *d)
{
    int label_w = 0;
    for (int i = 0; i < f->n; i++)
        if ((int)strlen(f->f[i].label) > label_w)
            label_w = (int)strlen(f->f[i].label);
    lt_rect r = lt_layout_dialog(&d->lay, f->n + 6, 76);
    if (r.h < 6)
        return;
    for (int y = 0; y < r.h; y++)
        lt_dash_fill(d, r.y + y, r.x, r.w, LT_STYLE_NORMAL);
    lt_dash_box(d, r, f->title, true);
    lt_rect in = lt_rect_inner(r);
    int rows = in.h - 4; /* fields shown; hint, error, keys and a blank take the rest */
    int top = f->cur >= rows ? f->cur - rows + 1 : 0;
    int y = in.y;
    for (int i = top; i < f->n && y < in.y + rows; i++, y++) {
        const lt_form_field *x = &f->f[i];
        bool sel = i == f->cur;
        int vx = in.x + label_w + 3;
        lt_dash_putf(d, y, in.x, label_w + 2, sel ? LT_STYLE_TITLE : LT_STYLE_NORMAL, "%s%-*s",
                     sel ? ">" : " ", label_w, x->label);
        int vw = in.x + in.w - vx;
        if (vw < 2)
            continue;
        if (sel)
            lt_dash_fill(d, y, vx, vw, LT_STYLE_SELECT);
        /* the end of a long value stays visible while typing */
        size_t len = strlen(x->value);
        const char *shown = x->value;
        if (vw > 2 && (int)len > vw - 2)
            shown = x->value + len - (size_t)(vw - 2);
        int used = lt_dash_put(d, y, vx, vw, sel ? LT_STYLE_SELECT : LT_STYLE_NORMAL, shown);
        if (sel && used < vw)
            lt_dash_put(d, y, vx + used, 1, LT_STYLE_SELECT, "_");
    }
    y = in.y + in.h - 3;
    lt_dash_put(d, y++, in.x, in.w, LT_STYLE_DIM, f->hint);
    if (f->error[0])
        lt_dash_put(d, y, in.x, in.w, LT_STYLE_ERR, f->error);
    y++;
    const lt_form_field *x = f->n ? &f->f[f->cur] : NULL;
    lt_dash_put(d, y, in.x, in.w, LT_STYLE_DIM,
                x && x->kind == LT_FIELD_PATH   ? "Enter run  Tab complete path  Up/Down field  Esc cancel"
                : x && x->kind == LT_FIELD_NAME ? "Enter run  Tab next name  Up/Down field  Esc cancel"
                                                : "Enter run  Up/Down/Tab field  Ctrl-U clear  Esc cancel");
}
