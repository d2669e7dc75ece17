/*
 * view_pending.c - the Wizard tab until its view lands: says what the stage will show and
 * which commands do the work headless today. Draws fixed text only.
 */
#include "dash.h"

#include <stdlib.h>

typedef struct pending_view {
    lt_view_id id;
} pending_view;

static void *wizard_init(lt_dash *d)
{
    (void)d;
    pending_view *v = calloc(1, sizeof(*v));
    if (v)
        v->id = LT_VIEW_WIZARD;
    return v;
}

static void pending_free(void *state)
{
    free(state);
}

static void pending_resize(void *state, const lt_layout *lay)
{
    (void)state;
    (void)lay;
}

static bool pending_update(void *state, lt_dash *d, bool changed)
{
    (void)state;
    (void)d;
    return changed;
}

static void pending_draw(const void *state, const lt_dash *d, const lt_layout *lay)
{
    const pending_view *v = state;
    const lt_rect *r = lt_layout_pane(lay, LT_PANE_MAIN);
    if (!r)
        return;
    lt_rect in = lt_rect_inner(*r);
    (void)v;
    lt_dash_box(d, *r, "wizard", true);
    lt_dash_put(d, in.y + 1, in.x + 2, in.w - 4, LT_STYLE_TITLE,
                "The training wizard is not in this dashboard yet.");
    lt_dash_put(d, in.y + 3, in.x + 2, in.w - 4, LT_STYLE_NORMAL,
                "Plan and start a run headless: lathe plan ..., then lathe train CONFIG --detach");
    lt_dash_put(d, in.y + 4, in.x + 2, in.w - 4, LT_STYLE_DIM,
                "Running jobs show up in the Train and Runs views as they write to the store.");
}

static int pending_key(void *state, lt_dash *d, int ch)
{
    (void)state;
    (void)d;
    (void)ch;
    return LT_KEY_IGNORED;
}

static const char *pending_footer(const void *state)
{
    (void)state;
    return "";
}

const lt_view_ops lt_view_wizard_ops = {
    LT_VIEW_WIZARD, wizard_init, pending_free, pending_resize, pending_update, pending_draw,
    pending_key, pending_footer,
};
