/*
 * view_devices.c - the Devices view: what `lathe devices` knows (CPU, Vulkan devices with
 * heaps and features) and the memory each running run reports on its device.
 *
 * Probing Vulkan can take a while (driver start-up), so it runs once on a thread started the
 * first time the view is shown; the view shows "probing" until the thread says it is done.
 * Driver strings are drawn through the sanitizer.
 */
#include "compute.h"
#include "dash.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_VK 8
#define MAX_ACTIVE 8

typedef struct active_run {
    int64_t id;
    char device[32];
    double mem_bytes;
} active_run;

typedef struct devices_view {
    pthread_t thread;
    bool started;
    atomic_bool done;
    bool shown_done;
    lt_cpu_info cpu;
    lt_vk_device_info vk[MAX_VK];
    int n_vk;
    char why[256];
    lt_list list; /* 0 = cpu, 1.. = vulkan */
    active_run active[MAX_ACTIVE];
    int n_active;
} devices_view;

static void *probe(void *arg)
{
    devices_view *v = arg;
    lt_cpu_info_get(&v->cpu);
    v->n_vk = lt_vk_enumerate(v->vk, MAX_VK, v->why, sizeof v->why);
    atomic_store(&v->done, true);
    return NULL;
}

static void *devices_init(lt_dash *d)
{
    (void)d;
    devices_view *v = calloc(1, sizeof(devices_view));
    if (v)
        atomic_init(&v->done, false);
    return v;
}

static void devices_free(void *state)
{
    devices_view *v = state;
    if (v->started)
        pthread_join(v->thread, NULL);
    free(v);
}

static void devices_resize(void *state, const lt_layout *lay)
{
    devices_view *v = state;
    const lt_rect *r = lt_layout_pane(lay, LT_PANE_LIST);
    v->list.height = r ? r->h - 2 : 1;
    lt_list_fix(&v->list);
}

static void load_active(devices_view *v, lt_dash *d)
{
    lt_store_iter *it = NULL;
    lt_store_run r;
    v->n_active = 0;
    if (lt_store_runs_iter(d->st, &it) != LT_STORE_OK)
        return;
    while (v->n_active < MAX_ACTIVE && lt_store_runs_next(it, &r) == LT_STORE_OK) {
        if (!r.status || strcmp(r.status, "running") != 0 || lt_dash_run_dead(r.status, r.pid))
            continue;
        active_run *a = &v->active[v->n_active++];
        a->id = r.id;
        snprintf(a->device, sizeof a->device, "%s", r.device ? r.device : "?");
        a->mem_bytes = -1;
    }
    lt_store_iter_free(it);
    for (int i = 0; i < v->n_active; i++) {
        int64_t n, ls, ms;
        double last, mn;
        if (lt_store_metric_summary(d->st, v->active[i].id, "mem_bytes", &n, &last, &ls, &mn,
                                    &ms) == LT_STORE_OK && n > 0)
            v->active[i].mem_bytes = last;
    }
}

static bool devices_update(void *state, lt_dash *d, bool changed)
{
    devices_view *v = state;
    bool redraw = false;
    if (!v->started) {
        v->started = pthread_create(&v->thread, NULL, probe, v) == 0;
        if (!v->started) {
            snprintf(v->why, sizeof v->why, "could not start the probe thread");
            v->n_vk = -1;
            atomic_store(&v->done, true);
        }
        redraw = true;
    }
    if (atomic_load(&v->done) && !v->shown_done) {
        v->shown_done = true;
        v->list.n = 1 + (v->n_vk > 0 ? v->n_vk : 0);
        lt_list_fix(&v->list);
        redraw = true;
    }
    if (changed) {
        load_active(v, d);
        redraw = true;
    }
    return redraw;
}

static void draw_active(const devices_view *v, const lt_dash *d, int *y, int x, int w, int end,
                        const char *dev)
{
    for (int i = 0; i < v->n_active && *y < end; i++) {
        if (strcmp(v->active[i].device, dev) != 0 && strcmp(dev, "*") != 0)
            continue;
        char b[32] = "-";
        if (v->active[i].mem_bytes >= 0)
            lt_dash_bytes(v->active[i].mem_bytes, b, sizeof b);
        lt_dash_putf(d, (*y)++, x, w, LT_STYLE_OK, "run %lld on %s: %s in use",
                     (long long)v->active[i].id, v->active[i].device, b);
    }
}

static void devices_draw(const void *state, const lt_dash *d, const lt_layout *lay)
{
    const devices_view *v = state;
    const lt_rect *lr = lt_layout_pane(lay, LT_PANE_LIST);
    const lt_rect *dr = lt_layout_pane(lay, LT_PANE_STATS);
    if (!lr || !dr)
        return;
    lt_rect li = lt_rect_inner(*lr), di = lt_rect_inner(*dr);
    lt_dash_box(d, *lr, "devices", true);
    lt_dash_box(d, *dr, "detail", false);
    if (!v->shown_done) {
        lt_dash_put(d, li.y, li.x, li.w, LT_STYLE_DIM, "probing devices...");
        return;
    }
    for (int i = 0; i < v->list.n && i < li.h; i++) {
        int y = li.y + i;
        bool sel = i == v->list.sel;
        if (sel)
            lt_dash_fill(d, y, li.x, li.w, LT_STYLE_SELECT);
        if (i == 0)
            lt_dash_put(d, y, li.x, li.w, sel ? LT_STYLE_SELECT : LT_STYLE_NORMAL, "cpu");
        else
            lt_dash_putf(d, y, li.x, li.w, sel ? LT_STYLE_SELECT : LT_STYLE_NORMAL,
                         "vulkan:%d %s", v->vk[i - 1].index, v->vk[i - 1].name);
    }
    if (v->n_vk < 0 && v->list.n < li.h)
        lt_dash_putf(d, li.y + v->list.n + 1, li.x, li.w, LT_STYLE_DIM, "vulkan: %s", v->why);
    int y = di.y, end = di.y + di.h, x = di.x, w = di.w;
    char a[32], b[32];
    if (v->list.sel == 0) {
        lt_dash_bytes((double)v->cpu.ram_bytes, a, sizeof a);
        lt_dash_bytes((double)v->cpu.ram_available_bytes, b, sizeof b);
        lt_dash_put(d, y++, x, w, LT_STYLE_TITLE, v->cpu.model);
        lt_dash_putf(d, y++, x, w, LT_STYLE_NORMAL, "cores   %d usable (%d logical)",
                     v->cpu.usable_cores, v->cpu.logical_cores);
        lt_dash_putf(d, y++, x, w, LT_STYLE_NORMAL, "simd    %s",
                     v->cpu.simd[0] ? v->cpu.simd : "none detected");
        lt_dash_putf(d, y++, x, w, LT_STYLE_NORMAL, "memory  %s (%s available)", a, b);
        draw_active(v, d, &y, x, w, end, "cpu");
        return;
    }
    const lt_vk_device_info *g = &v->vk[v->list.sel - 1];
    lt_dash_put(d, y++, x, w, LT_STYLE_TITLE, g->name);
    lt_dash_putf(d, y++, x, w, LT_STYLE_NORMAL,
                 "type    %s%s", g->type,
                 strcmp(g->type, "cpu") == 0 ? " (never chosen by --device auto)" : "");
    if (y < end)
        lt_dash_putf(d, y++, x, w, LT_STYLE_NORMAL, "driver  %s  api %s", g->driver,
                     g->api_version);
    for (int h = 0; h < g->n_heaps && y < end; h++) {
        lt_dash_bytes((double)g->heap_bytes[h], a, sizeof a);
        lt_dash_putf(d, y++, x, w, LT_STYLE_NORMAL, "heap %d  %s%s", h, a,
                     g->heap_device_local[h] ? " device-local" : "");
    }
    if (y < end)
        lt_dash_putf(d, y++, x, w, LT_STYLE_NORMAL, "fp16 %s  bf16 %s  int8 %s  coopmat %s",
                     g->fp16 ? "yes" : "no", g->bf16 ? "yes" : "no", g->int8 ? "yes" : "no",
                     g->cooperative_matrix ? "yes" : "no");
    char dev[32];
    snprintf(dev, sizeof dev, "vulkan:%d", g->index);
    draw_active(v, d, &y, x, w, end, dev);
}

static int devices_key(void *state, lt_dash *d, int ch)
{
    devices_view *v = state;
    (void)d;
    return lt_list_key(&v->list, ch == '/' ? 0 : ch, NULL, NULL);
}

static const char *devices_footer(const void *state)
{
    (void)state;
    return "Up/Down select";
}

static int devices_mouse(void *state, lt_dash *d, int kind, int y, int x)
{
    devices_view *v = state;
    const lt_rect *r = lt_layout_pane(&d->lay, LT_PANE_LIST);
    if (!r)
        return LT_KEY_IGNORED;
    return lt_list_mouse_keys(&v->list, kind, y, x, *r, r->y + 1, devices_key, v, d);
}

const lt_view_ops lt_view_devices_ops = {
    LT_VIEW_DEVICES, devices_init, devices_free, devices_resize, devices_update, devices_draw,
    devices_key, devices_footer, devices_mouse,
};
