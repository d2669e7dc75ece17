/*
 * vk_ops.c - the Vulkan backend's op table: each op fills its shader's push constants
 * (tensor addresses and sizes), names the address ranges it reads and writes for the hazard
 * tracker, and records one or more dispatches. Arguments were validated by the front end;
 * this file only reports device limits it cannot meet (head dim, grid size).
 * Push-constant structs mirror the shaders' blocks (std430: addresses first, 8-byte aligned).
 */
#include "vk_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t addr_t; /* a uvec2 in the shader: low word first */

static addr_t A(const lt_tensor *t) { return t ? (addr_t)lt_vk_addr(t) : 0; }

/* The bytes a tensor covers, widened to whole 32-bit words (16-bit tensors are accessed by
 * word). */
static lt_vk_range R(const lt_tensor *t)
{
    VkDeviceAddress a = lt_vk_addr(t);
    VkDeviceAddress e = a + (VkDeviceAddress)t->numel * lt_dtype_size(t->dtype);
    return (lt_vk_range){a & ~(VkDeviceAddress)3, (e + 3) & ~(VkDeviceAddress)3};
}

static lt_vk_range RA(VkDeviceAddress a, size_t bytes) { return (lt_vk_range){a, a + bytes}; }

static uint32_t u32(int64_t x) { return (uint32_t)x; }

/* Grids beyond the x limit spill into y; shaders rebuild the flat group index. */
static void grid(const lt_vk *vk, uint64_t n_groups, uint32_t g[3])
{
    uint64_t xmax = vk->props.limits.maxComputeWorkGroupCount[0];
    if (n_groups <= xmax) {
        g[0] = (uint32_t)n_groups;
        g[1] = 1;
    } else {
        uint64_t y = (n_groups + xmax - 1) / xmax;
        g[0] = (uint32_t)xmax;
        g[1] = y > UINT32_MAX ? UINT32_MAX : (uint32_t)y; /* past the limit: lt_vk_record refuses */
    }
    g[2] = 1;
}

/*
 * 32-bit indices (see vk_impl.h). FITS refuses, naming the op and tensor, any tensor past
 * lt_vk_max_index() elements: ops with rows, reductions or gathers. Elementwise ops instead
 * run in pieces (piece_len), each piece's addresses advanced to its first element.
 */
static lt_status fits(lt_vk *vk, const char *op, const lt_tensor *const *ts, int n)
{
    for (int i = 0; i < n; i++) {
        lt_status st = lt_vk_check_index(vk, op, ts[i]);
        if (st != LT_OK)
            return st;
    }
    return LT_OK;
}
#define FITS(vk, op, ...)                                                                      \
    fits(vk, op, (const lt_tensor *const[]){__VA_ARGS__},                                    \
         (int)(sizeof((const lt_tensor *const[]){__VA_ARGS__}) / sizeof(const lt_tensor *)))

/* Elements per piece of an elementwise op: a multiple of 2 * unit (whole 32-bit words of
 * 16-bit tensors, whole rows of a bias of unit elements) within the index limit; 0 when
 * one unit is already past it. */
static int64_t piece_len(int64_t unit)
{
    int64_t u = 2 * (unit > 0 ? unit : 1);
    return lt_vk_max_index() / u * u;
}

/* Record one dispatch over a flat grid of n_groups workgroups. */
static lt_status run(lt_vk *vk, const char *shader, const void *pc, uint32_t pc_bytes,
                     uint64_t n_groups, const lt_vk_range *reads, int n_reads,
                     const lt_vk_range *writes, int n_writes)
{
    lt_vk_dispatch d = {.shader = shader, .pc = pc, .pc_bytes = pc_bytes};
    grid(vk, n_groups, d.groups);
    memcpy(d.reads, reads, (size_t)n_reads * sizeof *reads);
    d.n_reads = n_reads;
    memcpy(d.writes, writes, (size_t)n_writes * sizeof *writes);
    d.n_writes = n_writes;
    return lt_vk_record(vk, &d);
}

#define RUN(vk, shader, pc, groups, reads, writes)                                            \
    run(vk, shader, &(pc), sizeof(pc), groups, reads, (int)(sizeof(reads) / sizeof(reads[0])), \
        writes, (int)(sizeof(writes) / sizeof(writes[0])))

static uint64_t cdiv(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

/* ---- memory-like ops --------------------------------------------------------------------- */

/* Invocations covering n elements from address a: a word per invocation for 16-bit dtypes. */
static uint64_t cover_at(addr_t a, lt_dtype dt, int64_t n)
{
    if (dt == LT_F16 || dt == LT_BF16)
        return ((uint64_t)n + ((a >> 1) & 1) + 1) / 2;
    return (uint64_t)n;
}

static lt_status vk_fill(lt_device *dev, lt_tensor *t, float value)
{
    lt_vk *vk = lt_vk_of(dev);
    struct {
        addr_t t;
        uint32_t n, dt;
        float value;
        int32_t ivalue;
    } pc = {A(t), 0, (uint32_t)t->dtype, value, 0};
    if (t->dtype == LT_I32)
        pc.ivalue = isfinite(value) && fabsf(value) < 2147483520.0f ? (int32_t)value : 0;
    lt_vk_range w[] = {R(t)}, r[] = {R(t)};
    const int64_t piece = piece_len(1);
    const size_t es = lt_dtype_size(t->dtype);
    lt_status st = lt_vk_op_begin(vk, "fill");
    for (int64_t i0 = 0; i0 < t->numel && st == LT_OK; i0 += piece) {
        int64_t n = t->numel - i0 < piece ? t->numel - i0 : piece;
        pc.t = A(t) + (addr_t)i0 * es;
        pc.n = u32(n);
        st = RUN(vk, "fill", pc, cdiv(cover_at(pc.t, t->dtype, n), 256), r, w);
    }
    lt_vk_op_end(vk);
    return st;
}

static lt_status vk_copy(lt_device *dev, lt_tensor *dst, const lt_tensor *src)
{
    lt_vk *vk = lt_vk_of(dev);
    struct {
        addr_t dst, src;
        uint32_t n, ddt, sdt;
    } pc = {A(dst), A(src), 0, (uint32_t)dst->dtype, (uint32_t)src->dtype};
    lt_vk_range r[] = {R(src)}, w[] = {R(dst)};
    const int64_t piece = piece_len(1);
    const size_t des = lt_dtype_size(dst->dtype), ses = lt_dtype_size(src->dtype);
    lt_status st = lt_vk_op_begin(vk, "copy");
    for (int64_t i0 = 0; i0 < dst->numel && st == LT_OK; i0 += piece) {
        int64_t n = dst->numel - i0 < piece ? dst->numel - i0 : piece;
        pc.dst = A(dst) + (addr_t)i0 * des;
        pc.src = A(src) + (addr_t)i0 * ses;
        pc.n = u32(n);
        st = RUN(vk, "copy", pc, cdiv(cover_at(pc.dst, dst->dtype, n), 256), r, w);
    }
    lt_vk_op_end(vk);
    return st;
}

/* ---- matmul ------------------------------------------------------------------------------ */

/*
 * A read-only tensor seen through a texel buffer: the view starts at the aligned-down byte
 * offset of element 0 in its block, *elem_off is element 0's index inside the view. False
 * when the view would exceed the device's texel limit or its block (use addresses then).
 */
static bool texel_of(const lt_vk *vk, const lt_tensor *t, lt_vk_texel *tx, uint32_t *elem_off)
{
    const lt_vk_alloc *a = t->buf;
    const lt_vk_block *b = &vk->blocks[a->block];
    size_t es = lt_dtype_size(t->dtype);
    VkDeviceSize start = a->offset + t->offset;
    VkDeviceSize view = start & ~(vk->texel_align - 1);
    VkDeviceSize end = start + (VkDeviceSize)t->numel * es;
    VkDeviceSize range = (end - view + 15) & ~(VkDeviceSize)15;
    if (view + range > b->size || range / 16 > vk->max_texels || range / 16 > INT32_MAX)
        return false;
    *tx = (lt_vk_texel){a->block, view, range};
    *elem_off = (uint32_t)((start - view) / es);
    return true;
}

/*
 * Tile of C per workgroup (square, BM = BN): 128 on GPUs for large products when the device
 * has the shared memory (2 slices of 16 x 132 floats) and 256 invocations; else 64, which
 * every Vulkan device can run (64 invocations, 9 KiB). CPU-type devices (lavapipe) keep 64:
 * their workgroups run on one core each, and more of them balance better.
 */
static uint32_t matmul_tile(const lt_vk *vk, const lt_matmul_geom *g)
{
    bool gpu = vk->props.deviceType != VK_PHYSICAL_DEVICE_TYPE_CPU;
    if (gpu && g->M >= 1024 && g->N >= 1024 &&
        vk->info.max_shared_memory_bytes >= 2 * 16 * (128 + 4) * 4 &&
        vk->info.max_workgroup_invocations >= 256 &&
        vk->props.limits.maxComputeWorkGroupSize[0] >= 256)
        return 128;
    return 64;
}

/*
 * The most K one matmul dispatch may sum on this device, 0 = no limit. Mesa's llvmpipe
 * (lavapipe) before the NIR back end dropped it, seen in Mesa 22.3 / LLVM 15 (Debian 12), counts
 * every loop iteration of a shader invocation against one shared budget of 65535
 * (LP_MAX_TGSI_LOOP_ITERATIONS) and silently stops looping when it runs out: a matmul with
 * K near 42000 or more (the lm_head backward dx = dlogits W at a vocabulary of 50,259) came
 * back summed over a prefix of K only, wrong gradients and no error. Mesa 26.1 has no such
 * limit, but the version that lifted it is not known, so every llvmpipe splits K into slices
 * of 4096 (at most 256 slices of 16 with a few dozen loop iterations each, well inside the
 * budget), run as dispatches that accumulate into C. The slice is a multiple of 16, so the
 * tiled and the 4-wide loads stay aligned.
 */
static bool loops_capped(const lt_vk *vk)
{
    return vk->props.vendorID == 0x10005u /* VK_VENDOR_ID_MESA */ &&
           vk->props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU;
}

static uint32_t matmul_k_slice(const lt_vk *vk)
{
    if (getenv("LATHE_VK_MATMUL_K_SLICE")) /* tests: force a slice on any driver */
        return (uint32_t)strtoul(getenv("LATHE_VK_MATMUL_K_SLICE"), NULL, 10) & ~15u;
    return loops_capped(vk) ? 4096u : 0u;
}

/* The cooperative-matrix variant for these inputs, or NULL: both f16 or both bf16, the
 * variant self-tested, and the product large enough to fill its 64 x 64 tiles. */
static const char *coopmat_shader(const lt_vk *vk, const lt_tensor *Am, const lt_tensor *Bm,
                                  const lt_matmul_geom *g)
{
    if (Am->dtype != Bm->dtype || g->M < 64 || g->N < 64 || g->K < 32)
        return NULL;
    if (Am->dtype == LT_F16 && vk->cm_f16)
        return vk->cm_size == 8 ? "matmul_coopmat8" : "matmul_coopmat";
    if (Am->dtype == LT_BF16 && vk->cm_bf16)
        return "matmul_coopmat_bf16";
    return NULL;
}

static lt_status vk_matmul(lt_device *dev, lt_tensor *C, const lt_tensor *Am,
                           const lt_tensor *Bm, bool trans_a, bool trans_b, float alpha,
                           float beta, const lt_matmul_geom *g)
{
    return lt_vk_matmul(dev, C, Am, Bm, trans_a, trans_b, alpha, beta, g, true);
}

lt_status lt_vk_matmul(lt_device *dev, lt_tensor *C, const lt_tensor *Am, const lt_tensor *Bm,
                       bool trans_a, bool trans_b, float alpha, float beta,
                       const lt_matmul_geom *g, bool allow_coopmat)
{
    lt_vk *vk = lt_vk_of(dev);
    lt_status st = FITS(vk, "matmul", C, Am, Bm);
    if (st != LT_OK)
        return st;
    const char *cm = allow_coopmat ? coopmat_shader(vk, Am, Bm, g) : NULL;
    uint32_t tile = cm ? 64 : matmul_tile(vk, g);
    uint32_t a_bstride = g->a_batched ? u32(g->M * g->K) : 0;
    uint32_t b_bstride = g->b_batched ? u32(g->K * g->N) : 0;
    lt_vk_dispatch d = {.groups = {(uint32_t)cdiv((uint64_t)g->N, tile),
                                   (uint32_t)cdiv((uint64_t)g->M, tile), (uint32_t)g->batch},
                        .reads = {R(Am), R(Bm), R(C)},
                        .n_reads = beta != 0.0f ? 3 : 2,
                        .writes = {R(C)},
                        .n_writes = 1};
    uint32_t a_off = 0, b_off = 0;
    bool tex = !cm && vk->texel && texel_of(vk, Am, &d.tex[0], &a_off) &&
               texel_of(vk, Bm, &d.tex[1], &b_off);
    struct {
        addr_t c;
        uint32_t M, N, K, a_bstride, b_bstride, a_off, b_off, vec;
        float alpha, beta;
        uint32_t k_lo, k_hi;
    } tpc = {A(C), u32(g->M), u32(g->N), u32(g->K), a_bstride, b_bstride, a_off, b_off, 0,
             alpha, beta, 0, u32(g->K)};
    struct {
        addr_t c, a, b;
        uint32_t M, N, K, a_bstride, b_bstride;
        float alpha, beta;
        uint32_t k_lo, k_hi;
    } pc = {A(C), A(Am), A(Bm), u32(g->M), u32(g->N), u32(g->K), a_bstride, b_bstride,
            alpha, beta, 0, u32(g->K)};
    uint32_t spec[7] = {trans_a, trans_b, (uint32_t)Am->dtype, (uint32_t)Bm->dtype, tile, tile,
                        (tile / 8) * (tile / 8)};
    if (cm) {
        spec[4] = vk->cm_wg;
        d.shader = cm;
        d.spec = spec;
        d.n_spec = 5;
        d.pc = &pc;
        d.pc_bytes = sizeof pc;
    } else if (tex) {
        /* loads by 4: the contiguous dimension and element 0 both 4-aligned */
        int64_t a_row = trans_a ? g->M : g->K, b_row = trans_b ? g->K : g->N;
        tpc.vec = (a_row % 4 == 0 && a_off % 4 == 0 ? 1u : 0u) |
                  (b_row % 4 == 0 && b_off % 4 == 0 ? 2u : 0u);
        /* CPU-type devices: the variant without shared memory (loads by 4 where it can) */
        bool direct = vk->props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU;
        d.shader = direct ? "matmul_txd" : "matmul_tx";
        if (direct)
            spec[4] = tpc.vec;
        d.spec = spec;
        d.n_spec = direct ? 5 : 7;
        d.pc = &tpc;
        d.pc_bytes = sizeof tpc;
        d.n_tex = 2;
    } else {
        d.shader = tile == 128 ? "matmul_big" : "matmul";
        d.spec = spec;
        d.n_spec = 4;
        d.pc = &pc;
        d.pc_bytes = sizeof pc;
    }
    /* K in slices where the driver needs it (see matmul_k_slice): the first slice applies
     * beta, the others add to C. The cooperative-matrix kernels take K whole. */
    uint32_t slice = cm ? 0u : matmul_k_slice(vk), K = u32(g->K);
    if (slice == 0u || slice >= K)
        slice = K;
    st = lt_vk_op_begin(vk, "matmul");
    for (uint32_t k_lo = 0; st == LT_OK; k_lo += slice) {
        uint32_t k_hi = K - k_lo > slice ? k_lo + slice : K;
        float b = k_lo == 0 ? beta : 1.0f;
        pc.k_lo = tpc.k_lo = k_lo;
        pc.k_hi = tpc.k_hi = k_hi;
        pc.beta = tpc.beta = b;
        d.n_reads = b != 0.0f ? 3 : 2;
        st = lt_vk_record(vk, &d);
        if (k_hi >= K)
            break;
    }
    lt_vk_op_end(vk);
    return st;
}

/* ---- embedding --------------------------------------------------------------------------- */

static lt_status vk_embedding(lt_device *dev, lt_tensor *out, const lt_tensor *table,
                              const lt_tensor *ids)
{
    lt_vk *vk = lt_vk_of(dev);
    int64_t D = table->shape[table->ndim - 1], V = table->numel / D, N = ids->numel;
    struct {
        addr_t out, table, ids, flag;
        uint32_t N, D, V, dt;
    } pc = {A(out), A(table), A(ids), vk->flag_addr, u32(N), u32(D), u32(V),
            (uint32_t)table->dtype};
    lt_vk_range r[] = {R(table), R(ids)}, w[] = {R(out), RA(vk->flag_addr, 64)};
    lt_status st = FITS(vk, "embedding", out, table, ids);
    if (st == LT_OK)
        st = lt_vk_op_begin(vk, "embedding");
    if (st == LT_OK)
        st = RUN(vk, "embedding", pc, cdiv((uint64_t)(N * D), 256), r, w);
    lt_vk_op_end(vk);
    return st;
}

/*
 * Deterministic and O(N * 256 + V): a counting sort of the tokens by id (count, scan, stable
 * scatter), then one workgroup per id adds its rows in token order. Scratch (freed at the
 * next sync): counts and cursors (V ints each), offsets (V + 1), sorted token indices (N).
 */
static lt_status vk_embedding_backward(lt_device *dev, lt_tensor *dtable, const lt_tensor *dout,
                                       const lt_tensor *ids)
{
    lt_vk *vk = lt_vk_of(dev);
    int64_t D = dtable->shape[dtable->ndim - 1], V = dtable->numel / D, N = ids->numel;
    size_t vb = (size_t)V * 4, nb = (size_t)N * 4;
    VkDeviceAddress s = 0;
    lt_status st = FITS(vk, "embedding_backward", dtable, dout, ids);
    if (st != LT_OK)
        return st;
    st = lt_vk_op_begin(vk, "embedding_backward");
    if (st == LT_OK)
        st = lt_vk_scratch(vk, 3 * vb + 4 + nb, &s);
    VkDeviceAddress counts = s, cursor = s + vb, offsets = s + 2 * vb, sorted = s + 3 * vb + 4;
    if (st == LT_OK) {
        struct {
            addr_t t;
            uint32_t n, dt;
            float value;
            int32_t ivalue;
        } pc = {counts, u32(V), (uint32_t)LT_I32, 0.0f, 0};
        lt_vk_range r[] = {RA(counts, vb)}, w[] = {RA(counts, vb)};
        st = RUN(vk, "fill", pc, cdiv((uint64_t)V, 256), r, w);
    }
    if (st == LT_OK) {
        struct {
            addr_t ids, counts;
            uint32_t N, V;
        } pc = {A(ids), counts, u32(N), u32(V)};
        lt_vk_range r[] = {R(ids), RA(counts, vb)}, w[] = {RA(counts, vb)};
        st = RUN(vk, "embedding_count", pc, cdiv((uint64_t)N, 64), r, w);
    }
    if (st == LT_OK) {
        struct {
            addr_t counts, offsets, cursor;
            uint32_t V;
        } pc = {counts, offsets, cursor, u32(V)};
        lt_vk_range r[] = {RA(counts, vb)}, w[] = {RA(offsets, vb + 4), RA(cursor, vb)};
        st = RUN(vk, "embedding_scan", pc, 1, r, w);
    }
    /* one workgroup walks every token; where loops are capped (see matmul_k_slice) it walks
     * 16384 tokens per dispatch (64 blocks of 256, about 16,600 loop iterations) */
    uint32_t slice = loops_capped(vk) ? 16384u : u32(N);
    for (uint32_t lo = 0; st == LT_OK; lo += slice) {
        uint32_t hi = u32(N) - lo > slice ? lo + slice : u32(N);
        struct {
            addr_t ids, cursor, sorted;
            uint32_t N, V, b_lo, b_hi;
        } pc = {A(ids), cursor, sorted, u32(N), u32(V), lo, hi};
        lt_vk_range r[] = {R(ids), RA(cursor, vb)}, w[] = {RA(cursor, vb), RA(sorted, nb)};
        st = RUN(vk, "embedding_sort", pc, 1, r, w);
        if (hi >= u32(N))
            break;
    }
    if (st == LT_OK) {
        struct {
            addr_t dtable, dout, ids, offsets, sorted;
            uint32_t N, D, V;
        } pc = {A(dtable), A(dout), A(ids), offsets, sorted, u32(N), u32(D), u32(V)};
        lt_vk_range r[] = {R(dout), R(ids), RA(offsets, vb + 4), RA(sorted, nb), R(dtable)},
                    w[] = {R(dtable)};
        st = RUN(vk, "embedding_bwd", pc, (uint64_t)N, r, w);
    }
    lt_vk_op_end(vk);
    return st;
}

/* ---- normalisation ----------------------------------------------------------------------- */

static lt_status vk_rmsnorm(lt_device *dev, lt_tensor *out, lt_tensor *rstd, const lt_tensor *x,
                            const lt_tensor *w, float eps)
{
    lt_vk *vk = lt_vk_of(dev);
    int64_t D = x->shape[x->ndim - 1], N = x->numel / D;
    struct {
        addr_t out, rstd, x, w;
        uint32_t N, D, wdt, has_rstd;
        float eps;
    } pc = {A(out), A(rstd), A(x), A(w), u32(N), u32(D), (uint32_t)w->dtype, rstd != NULL, eps};
    lt_vk_range r[] = {R(x), R(w)}, wr[] = {R(out), rstd ? R(rstd) : R(out)};
    lt_status st = FITS(vk, "rmsnorm", out, rstd, x, w);
    if (st == LT_OK)
        st = lt_vk_op_begin(vk, "rmsnorm");
    if (st == LT_OK)
        st = RUN(vk, "rmsnorm", pc, (uint64_t)N, r, wr);
    lt_vk_op_end(vk);
    return st;
}

/* dw/db column sums (mode 0 rms, 1 layernorm, 2 bias): rows split into up to 64 partitions
 * of at least 128 rows (fixed by N, so the same bits every run), summed in order within each,
 * then the partials in order (colsum.comp). */
static lt_status colsum(lt_vk *vk, lt_tensor *dw, lt_tensor *db, const lt_tensor *g,
                        const lt_tensor *x, const lt_tensor *mean, const lt_tensor *rstd,
                        int64_t N, int64_t D, uint32_t mode)
{
    uint64_t parts = cdiv((uint64_t)N, 128);
    parts = parts < 1 ? 1 : parts > 64 ? 64 : parts;
    uint64_t rows = cdiv((uint64_t)N, parts);
    parts = cdiv((uint64_t)N, rows ? rows : 1);
    if (parts < 1)
        parts = 1;
    size_t part_bytes = (size_t)(2 * parts * (uint64_t)D) * 4;
    VkDeviceAddress part = 0;
    if (parts > 1) {
        lt_status st = lt_vk_scratch(vk, part_bytes, &part);
        if (st != LT_OK)
            return st;
    }
    struct {
        addr_t dw, db, g, x, mean, rstd, part;
        uint32_t N, D, mode, has_dw, has_db, stage, n_parts, rows;
    } pc = {A(dw), A(db), A(g), A(x), A(mean), A(rstd), part, u32(N), u32(D), mode,
            dw != NULL, db != NULL, 0, (uint32_t)parts, (uint32_t)rows};
    lt_vk_dispatch d = {.shader = "colsum", .pc = &pc, .pc_bytes = sizeof pc};
    d.groups[0] = (uint32_t)cdiv((uint64_t)D, 64);
    d.groups[1] = (uint32_t)parts;
    d.groups[2] = 1;
    const lt_tensor *ins[] = {g, x, mean, rstd, dw, db};
    for (int i = 0; i < 6; i++)
        if (ins[i])
            d.reads[d.n_reads++] = R(ins[i]);
    if (parts > 1) {
        d.writes[d.n_writes++] = RA(part, part_bytes);
    } else {
        if (dw)
            d.writes[d.n_writes++] = R(dw);
        if (db)
            d.writes[d.n_writes++] = R(db);
    }
    lt_status st = lt_vk_record(vk, &d);
    if (st != LT_OK || parts == 1)
        return st;
    pc.stage = 1;
    d.groups[1] = 1;
    d.n_reads = d.n_writes = 0;
    d.reads[d.n_reads++] = RA(part, part_bytes);
    if (dw) {
        d.reads[d.n_reads++] = R(dw);
        d.writes[d.n_writes++] = R(dw);
    }
    if (db) {
        d.reads[d.n_reads++] = R(db);
        d.writes[d.n_writes++] = R(db);
    }
    return lt_vk_record(vk, &d);
}

static lt_status vk_rmsnorm_backward(lt_device *dev, lt_tensor *dx, lt_tensor *dw,
                                     const lt_tensor *dout, const lt_tensor *x,
                                     const lt_tensor *w, const lt_tensor *rstd)
{
    lt_vk *vk = lt_vk_of(dev);
    int64_t D = x->shape[x->ndim - 1], N = x->numel / D;
    lt_status st = FITS(vk, "rmsnorm_backward", dx, dw, dout, x, w, rstd);
    if (st != LT_OK)
        return st;
    st = lt_vk_op_begin(vk, "rmsnorm_backward");
    if (st == LT_OK && dx) {
        struct {
            addr_t dx, dout, x, w, rstd;
            uint32_t N, D, wdt;
        } pc = {A(dx), A(dout), A(x), A(w), A(rstd), u32(N), u32(D), (uint32_t)w->dtype};
        lt_vk_range r[] = {R(dout), R(x), R(w), R(rstd)}, wr[] = {R(dx)};
        st = RUN(vk, "rmsnorm_bwd", pc, (uint64_t)N, r, wr);
    }
    if (st == LT_OK && dw)
        st = colsum(vk, dw, NULL, dout, x, NULL, rstd, N, D, 0);
    lt_vk_op_end(vk);
    return st;
}

static lt_status vk_layernorm(lt_device *dev, lt_tensor *out, lt_tensor *mean, lt_tensor *rstd,
                              const lt_tensor *x, const lt_tensor *w, const lt_tensor *b,
                              float eps)
{
    lt_vk *vk = lt_vk_of(dev);
    int64_t D = x->shape[x->ndim - 1], N = x->numel / D;
    struct {
        addr_t out, mean, rstd, x, w, b;
        uint32_t N, D, wdt, bdt, has_stats;
        float eps;
    } pc = {A(out), A(mean), A(rstd), A(x), A(w), A(b), u32(N), u32(D), (uint32_t)w->dtype,
            (uint32_t)b->dtype, (mean ? 1u : 0u) | (rstd ? 2u : 0u), eps};
    lt_vk_range r[] = {R(x), R(w), R(b)},
                wr[] = {R(out), mean ? R(mean) : R(out), rstd ? R(rstd) : R(out)};
    lt_status st = FITS(vk, "layernorm", out, mean, rstd, x, w, b);
    if (st == LT_OK)
        st = lt_vk_op_begin(vk, "layernorm");
    if (st == LT_OK)
        st = RUN(vk, "layernorm", pc, (uint64_t)N, r, wr);
    lt_vk_op_end(vk);
    return st;
}

static lt_status vk_layernorm_backward(lt_device *dev, lt_tensor *dx, lt_tensor *dw,
                                       lt_tensor *db, const lt_tensor *dout, const lt_tensor *x,
                                       const lt_tensor *w, const lt_tensor *mean,
                                       const lt_tensor *rstd)
{
    lt_vk *vk = lt_vk_of(dev);
    int64_t D = x->shape[x->ndim - 1], N = x->numel / D;
    lt_status st = FITS(vk, "layernorm_backward", dx, dw, db, dout, x, w, mean, rstd);
    if (st != LT_OK)
        return st;
    st = lt_vk_op_begin(vk, "layernorm_backward");
    if (st == LT_OK && dx) {
        struct {
            addr_t dx, dout, x, w, mean, rstd;
            uint32_t N, D, wdt;
        } pc = {A(dx), A(dout), A(x), A(w), A(mean), A(rstd), u32(N), u32(D),
                (uint32_t)w->dtype};
        lt_vk_range r[] = {R(dout), R(x), R(w), R(mean), R(rstd)}, wr[] = {R(dx)};
        st = RUN(vk, "layernorm_bwd", pc, (uint64_t)N, r, wr);
    }
    if (st == LT_OK && (dw || db))
        st = colsum(vk, dw, db, dout, x, mean, rstd, N, D, 1);
    lt_vk_op_end(vk);
    return st;
}

/* ---- rope, attention --------------------------------------------------------------------- */

static lt_status vk_rope(lt_device *dev, lt_tensor *x, const lt_tensor *pos,
                         const lt_tensor *inv_freq, float mscale, bool inverse)
{
    lt_vk *vk = lt_vk_of(dev);
    int64_t hd = x->shape[x->ndim - 1], H = x->shape[x->ndim - 2], N = x->numel / (hd * H);
    struct {
        addr_t x, pos, inv;
        uint32_t N, H, hd, inverse;
        float mscale;
    } pc = {A(x), A(pos), A(inv_freq), u32(N), u32(H), u32(hd), inverse, mscale};
    lt_vk_range r[] = {R(x), R(pos), R(inv_freq)}, w[] = {R(x)};
    lt_status st = FITS(vk, inverse ? "rope_backward" : "rope", x, pos, inv_freq);
    if (st == LT_OK)
        st = lt_vk_op_begin(vk, inverse ? "rope_backward" : "rope");
    if (st == LT_OK)
        st = RUN(vk, "rope", pc, cdiv((uint64_t)(N * H * (hd / 2)), 64), r, w);
    lt_vk_op_end(vk);
    return st;
}

typedef struct attn_geom {
    uint32_t B, Tq, Tk, H, Hkv, hd, kvdt, q_offset, n_kv;
    uint32_t window; /* 0 = none (also when it is wider than every query's reach) */
} attn_geom;

static lt_status attn_geometry(lt_vk *vk, const lt_tensor *q, const lt_tensor *k,
                               const lt_attn_params *p, attn_geom *g)
{
    g->B = u32(q->shape[0]);
    g->Tq = u32(q->shape[1]);
    g->H = u32(q->shape[2]);
    g->hd = u32(q->shape[3]);
    g->Tk = u32(k->shape[1]);
    g->Hkv = u32(k->shape[2]);
    g->kvdt = (uint32_t)k->dtype;
    g->q_offset = u32(p->q_offset);
    g->n_kv = p->n_kv > 0 ? u32(p->n_kv) : g->Tk;
    g->window = p->window > 0 && p->window < p->q_offset + q->shape[1] ? u32(p->window) : 0;
    if (g->hd > 256)
        return lt_dev_error(vk->dev, LT_ERR_UNSUPPORTED,
                            "%s: attention supports head dims up to 256, got %u",
                            vk->dev->name, g->hd);
    return LT_OK;
}

static lt_status vk_attention(lt_device *dev, lt_tensor *out, lt_tensor *lse, const lt_tensor *q,
                              const lt_tensor *k, const lt_tensor *v, const lt_tensor *seg,
                              const lt_attn_params *p)
{
    lt_vk *vk = lt_vk_of(dev);
    attn_geom g;
    lt_status st = FITS(vk, "attention", out, lse, q, k, v, seg);
    if (st == LT_OK)
        st = attn_geometry(vk, q, k, p, &g);
    if (st != LT_OK)
        return st;
    struct {
        addr_t out, lse, q, k, v, seg;
        uint32_t B, Tq, Tk, H, Hkv, hd, kvdt, q_offset, n_kv, has_lse, has_seg;
        float scale;
        uint32_t window;
    } pc = {A(out), A(lse),      A(q),        A(k),     A(v),    A(seg), g.B,
            g.Tq,   g.Tk,        g.H,         g.Hkv,    g.hd,    g.kvdt, g.q_offset,
            g.n_kv, lse != NULL, seg != NULL, p->scale, g.window};
    lt_vk_range r[] = {R(q), R(k), R(v), seg ? R(seg) : R(q)},
                w[] = {R(out), lse ? R(lse) : R(out)};
    /* the tiled kernel (8 queries per workgroup) where its 24 KiB of shared memory fit */
    bool tiled = vk->info.max_shared_memory_bytes >= (3 * 8 * 256 + 64) * 4 &&
                 !getenv("LATHE_VK_NO_TILED_ATTENTION");
    st = lt_vk_op_begin(vk, "attention");
    if (st == LT_OK && tiled)
        st = RUN(vk, "attention_tiled", pc, (uint64_t)g.B * g.H * cdiv(g.Tq, 8), r, w);
    else if (st == LT_OK)
        st = RUN(vk, "attention", pc, (uint64_t)g.B * g.H * g.Tq, r, w);
    lt_vk_op_end(vk);
    return st;
}

static lt_status vk_attention_backward(lt_device *dev, lt_tensor *dq, lt_tensor *dk,
                                       lt_tensor *dv, const lt_tensor *dout, const lt_tensor *q,
                                       const lt_tensor *k, const lt_tensor *v,
                                       const lt_tensor *out, const lt_tensor *lse,
                                       const lt_tensor *seg, const lt_attn_params *p)
{
    lt_vk *vk = lt_vk_of(dev);
    attn_geom g;
    lt_status st = FITS(vk, "attention_backward", dq, dk, dv, dout, q, k, v, out, lse, seg);
    if (st == LT_OK)
        st = attn_geometry(vk, q, k, p, &g);
    if (st != LT_OK)
        return st;
    VkDeviceAddress delta;
    size_t delta_bytes = (size_t)g.B * g.H * g.Tq * 4;
    st = lt_vk_op_begin(vk, "attention_backward");
    if (st == LT_OK)
        st = lt_vk_scratch(vk, delta_bytes, &delta);
    if (st == LT_OK) {
        struct {
            addr_t dq, delta, dout, out, q, k, v, lse, seg;
            uint32_t B, Tq, Tk, H, Hkv, hd, kvdt, q_offset, n_kv, has_seg;
            float scale;
            uint32_t window;
        } pc = {A(dq),  delta,  A(dout),    A(out), A(q),        A(k),     A(v),
                A(lse), A(seg), g.B,        g.Tq,   g.Tk,        g.H,      g.Hkv,
                g.hd,   g.kvdt, g.q_offset, g.n_kv, seg != NULL, p->scale, g.window};
        lt_vk_range r[] = {R(dout), R(out), R(q), R(k), R(v), R(lse), seg ? R(seg) : R(q)},
                    w[] = {R(dq), RA(delta, delta_bytes)};
        st = RUN(vk, "attention_bwd_dq", pc, (uint64_t)g.B * g.H * g.Tq, r, w);
    }
    if (st == LT_OK) {
        struct {
            addr_t dk, dv, dout, q, k, v, lse, delta, seg;
            uint32_t B, Tq, Tk, H, Hkv, hd, kvdt, q_offset, n_kv, has_seg;
            float scale;
            uint32_t window;
        } pc = {A(dk), A(dv),  A(dout),    A(q),   A(k),        A(v),     A(lse),
                delta, A(seg), g.B,        g.Tq,   g.Tk,        g.H,      g.Hkv,
                g.hd,  g.kvdt, g.q_offset, g.n_kv, seg != NULL, p->scale, g.window};
        lt_vk_range r[] = {R(dout), R(q), R(k), R(v), R(lse), RA(delta, delta_bytes),
                           seg ? R(seg) : R(q)},
                    w[] = {R(dk), R(dv)};
        st = RUN(vk, "attention_bwd_dkdv", pc, (uint64_t)g.B * g.Hkv * g.Tk, r, w);
    }
    lt_vk_op_end(vk);
    return st;
}

/* ---- elementwise ------------------------------------------------------------------------- */

enum { EW_ADD, EW_SCALE, EW_AXPY, EW_SILU, EW_SILU_B, EW_GELU, EW_GELU_B, EW_SWIGLU,
       EW_SWIGLU_B, EW_BIAS, EW_CLIP };

static lt_status eltwise(lt_vk *vk, const char *name, uint32_t mode, lt_tensor *o, lt_tensor *o1,
                         const lt_tensor *a, const lt_tensor *b, const lt_tensor *c, float alpha,
                         int64_t D)
{
    struct {
        addr_t o, o1, a, b, c;
        uint32_t n, mode, D, adt;
        float alpha;
    } pc = {0, 0, A(a), 0, 0, 0, mode, u32(D), a ? (uint32_t)a->dtype : 0, alpha};
    lt_vk_dispatch d = {.shader = "eltwise", .pc = &pc, .pc_bytes = sizeof pc};
    const lt_tensor *ins[] = {o, a, b, c};
    for (int i = 0; i < 4; i++)
        if (ins[i])
            d.reads[d.n_reads++] = R(ins[i]);
    d.writes[d.n_writes++] = R(o);
    if (o1)
        d.writes[d.n_writes++] = R(o1);
    /* in pieces past the index limit: o, o1, b, c are F32 and per element, and so is a
     * except for the bias (a row of D) and clip (the norm) */
    const bool a_elem = mode != EW_BIAS && mode != EW_CLIP;
    const int64_t piece = piece_len(mode == EW_BIAS ? D : 1);
    if (piece == 0)
        return lt_vk_check_index(vk, name ? name : "clip_grad_norm", a);
    lt_status st = name ? lt_vk_op_begin(vk, name) : LT_OK;
    for (int64_t i0 = 0; i0 < o->numel && st == LT_OK; i0 += piece) {
        int64_t n = o->numel - i0 < piece ? o->numel - i0 : piece;
        addr_t off = (addr_t)i0 * 4;
        pc.o = A(o) + off;
        pc.o1 = o1 ? A(o1) + off : 0;
        pc.a = a && a_elem ? A(a) + off : A(a);
        pc.b = b ? A(b) + off : 0;
        pc.c = c ? A(c) + off : 0;
        pc.n = u32(n);
        grid(vk, cdiv((uint64_t)n, 256), d.groups);
        st = lt_vk_record(vk, &d);
    }
    if (name)
        lt_vk_op_end(vk);
    return st;
}

static lt_status vk_silu(lt_device *dev, lt_tensor *out, const lt_tensor *x)
{
    return eltwise(lt_vk_of(dev), "silu", EW_SILU, out, NULL, x, NULL, NULL, 0, 1);
}
static lt_status vk_silu_backward(lt_device *dev, lt_tensor *dx, const lt_tensor *dout,
                                  const lt_tensor *x)
{
    return eltwise(lt_vk_of(dev), "silu_backward", EW_SILU_B, dx, NULL, x, dout, NULL, 0, 1);
}
static lt_status vk_gelu(lt_device *dev, lt_tensor *out, const lt_tensor *x)
{
    return eltwise(lt_vk_of(dev), "gelu", EW_GELU, out, NULL, x, NULL, NULL, 0, 1);
}
static lt_status vk_gelu_backward(lt_device *dev, lt_tensor *dx, const lt_tensor *dout,
                                  const lt_tensor *x)
{
    return eltwise(lt_vk_of(dev), "gelu_backward", EW_GELU_B, dx, NULL, x, dout, NULL, 0, 1);
}
static lt_status vk_swiglu(lt_device *dev, lt_tensor *out, const lt_tensor *gate,
                           const lt_tensor *up)
{
    return eltwise(lt_vk_of(dev), "swiglu", EW_SWIGLU, out, NULL, gate, NULL, up, 0, 1);
}
static lt_status vk_swiglu_backward(lt_device *dev, lt_tensor *dgate, lt_tensor *dup,
                                    const lt_tensor *dout, const lt_tensor *gate,
                                    const lt_tensor *up)
{
    return eltwise(lt_vk_of(dev), "swiglu_backward", EW_SWIGLU_B, dgate, dup, gate, dout, up,
                   0, 1);
}
static lt_status vk_dropout(lt_device *dev, lt_tensor *out, const lt_tensor *x, float p,
                            float scale, uint64_t key, uint64_t first)
{
    lt_vk *vk = lt_vk_of(dev);
    if ((uint64_t)out->numel > UINT32_MAX - 6)
        return lt_dev_error(dev, LT_ERR_UNSUPPORTED,
                            "dropout: %lld elements exceed the shader's 32-bit index",
                            (long long)out->numel);
    /* invocation b draws Philox block first / 4 + b; lead = first % 4 elements of the first
     * block belong to the rows before this tensor */
    const uint64_t j0 = first >> 2;
    const uint32_t lead = (uint32_t)(first & 3u);
    struct {
        addr_t o, x;
        uint32_t key_lo, key_hi, j0_lo, j0_hi, n, lead;
        float p, scale;
    } pc = {A(out),
            A(x),
            (uint32_t)key,
            (uint32_t)(key >> 32),
            (uint32_t)j0,
            (uint32_t)(j0 >> 32),
            u32(out->numel),
            lead,
            p,
            scale};
    lt_vk_range r[] = {R(x)}, w[] = {R(out)};
    lt_status st = lt_vk_op_begin(vk, "dropout");
    if (st == LT_OK)
        st = RUN(vk, "dropout", pc, cdiv(((uint64_t)out->numel + lead + 3) / 4, 256), r, w);
    lt_vk_op_end(vk);
    return st;
}
static lt_status vk_add(lt_device *dev, lt_tensor *out, const lt_tensor *a, const lt_tensor *b)
{
    return eltwise(lt_vk_of(dev), "add", EW_ADD, out, NULL, a, b, NULL, 0, 1);
}
static lt_status vk_scale(lt_device *dev, lt_tensor *x, float alpha)
{
    return eltwise(lt_vk_of(dev), "scale", EW_SCALE, x, NULL, NULL, NULL, NULL, alpha, 1);
}
static lt_status vk_axpy(lt_device *dev, lt_tensor *y, float alpha, const lt_tensor *x)
{
    return eltwise(lt_vk_of(dev), "axpy", EW_AXPY, y, NULL, x, NULL, NULL, alpha, 1);
}
static lt_status vk_bias_add(lt_device *dev, lt_tensor *x, const lt_tensor *b)
{
    return eltwise(lt_vk_of(dev), "bias_add", EW_BIAS, x, NULL, b, NULL, NULL, 0, b->numel);
}
static lt_status vk_bias_backward(lt_device *dev, lt_tensor *db, const lt_tensor *dout)
{
    lt_vk *vk = lt_vk_of(dev);
    int64_t D = db->numel, N = dout->numel / D;
    lt_status st = FITS(vk, "bias_backward", db, dout);
    if (st != LT_OK)
        return st;
    st = lt_vk_op_begin(vk, "bias_backward");
    if (st == LT_OK)
        st = colsum(vk, NULL, db, dout, NULL, NULL, NULL, N, D, 2);
    lt_vk_op_end(vk);
    return st;
}

/* ---- losses ------------------------------------------------------------------------------ */

static lt_status vk_cross_entropy(lt_device *dev, lt_tensor *loss, lt_tensor *row_loss,
                                  lt_tensor *dlogits, const lt_tensor *logits,
                                  const lt_tensor *labels, int ignore_index, float grad_scale,
                                  int64_t n_counted)
{
    lt_vk *vk = lt_vk_of(dev);
    int64_t V = logits->shape[logits->ndim - 1], N = logits->numel / V;
    float denom = n_counted > 0 ? (float)n_counted : 0.0f;
    VkDeviceAddress count, rl;
    lt_status st = FITS(vk, "cross_entropy", loss, row_loss, dlogits, logits, labels);
    if (st != LT_OK)
        return st;
    st = lt_vk_op_begin(vk, "cross_entropy");
    if (st == LT_OK)
        st = lt_vk_scratch(vk, 4, &count);
    if (st == LT_OK && !row_loss)
        st = lt_vk_scratch(vk, (size_t)N * 4, &rl);
    if (st != LT_OK)
        goto done;
    if (row_loss)
        rl = A(row_loss);
    struct {
        addr_t out, in, count;
        uint32_t N, mode;
        int32_t ignore_index;
        float denom;
    } red = {count, A(labels), count, u32(N), 0, ignore_index, denom};
    {
        lt_vk_range r[] = {R(labels)}, w[] = {RA(count, 4)};
        st = RUN(vk, "ce_reduce", red, 1, r, w);
    }
    if (st == LT_OK) {
        struct {
            addr_t dlogits, row_loss, logits, labels, count, flag;
            uint32_t N, V, has_dl;
            int32_t ignore_index;
            float grad_scale, denom;
        } pc = {A(dlogits), rl, A(logits), A(labels), count, vk->flag_addr, u32(N), u32(V),
                dlogits != NULL, ignore_index, grad_scale, denom};
        lt_vk_range r[] = {R(logits), R(labels), RA(count, 4)},
                    w[] = {RA(rl, (size_t)N * 4), dlogits ? R(dlogits) : RA(rl, 4),
                           RA(vk->flag_addr, 64)};
        st = RUN(vk, "cross_entropy", pc, (uint64_t)N, r, w);
    }
    if (st == LT_OK) {
        red.out = A(loss);
        red.in = rl;
        red.mode = 1;
        lt_vk_range r[] = {RA(rl, (size_t)N * 4), RA(count, 4)}, w[] = {R(loss)};
        st = RUN(vk, "ce_reduce", red, 1, r, w);
    }
done:
    lt_vk_op_end(vk);
    return st;
}

static lt_status logprob(lt_vk *vk, const char *name, uint32_t mode, lt_tensor *out,
                         const lt_tensor *logits, const lt_tensor *ids, const lt_tensor *dout)
{
    int64_t V = logits->shape[logits->ndim - 1], N = logits->numel / V;
    struct {
        addr_t out, logits, ids, dout, flag;
        uint32_t N, V, mode;
    } pc = {A(out), A(logits), A(ids), A(dout), vk->flag_addr, u32(N), u32(V), mode};
    lt_vk_range r[] = {R(logits), R(ids), dout ? R(dout) : R(ids), R(out)},
                w[] = {R(out), RA(vk->flag_addr, 64)};
    lt_status st = FITS(vk, name, out, logits, ids, dout);
    if (st == LT_OK)
        st = lt_vk_op_begin(vk, name);
    if (st == LT_OK)
        st = RUN(vk, "logprob", pc, (uint64_t)N, r, w);
    lt_vk_op_end(vk);
    return st;
}

static lt_status vk_logprob_gather(lt_device *dev, lt_tensor *out, const lt_tensor *logits,
                                   const lt_tensor *ids)
{
    return logprob(lt_vk_of(dev), "logprob_gather", 0, out, logits, ids, NULL);
}

static lt_status vk_logprob_gather_backward(lt_device *dev, lt_tensor *dlogits,
                                            const lt_tensor *dout, const lt_tensor *logits,
                                            const lt_tensor *ids)
{
    return logprob(lt_vk_of(dev), "logprob_gather_backward", 1, dlogits, logits, ids, dout);
}

/* ---- optimizer --------------------------------------------------------------------------- */

static lt_status vk_adamw(lt_device *dev, lt_tensor *param, const lt_tensor *grad, lt_tensor *m,
                          lt_tensor *v, const lt_adamw_params *p, float grad_scale)
{
    lt_vk *vk = lt_vk_of(dev);
    struct {
        addr_t param, grad, m, v;
        uint32_t n, pdt;
        float lr, beta1, beta2, eps, wd, bc1, bc2, gscale;
    } pc = {A(param), A(grad), A(m), A(v), 0, (uint32_t)param->dtype, p->lr,
            p->beta1, p->beta2, p->eps, p->weight_decay,
            (float)(1.0 - pow((double)p->beta1, (double)p->step)),
            (float)(1.0 - pow((double)p->beta2, (double)p->step)), grad_scale};
    lt_vk_range r[] = {R(param), R(grad), R(m), R(v)}, w[] = {R(param), R(m), R(v)};
    const int64_t piece = piece_len(1);
    const size_t pes = lt_dtype_size(param->dtype);
    lt_status st = lt_vk_op_begin(vk, "adamw");
    for (int64_t i0 = 0; i0 < param->numel && st == LT_OK; i0 += piece) {
        int64_t n = param->numel - i0 < piece ? param->numel - i0 : piece;
        pc.param = A(param) + (addr_t)i0 * pes;
        pc.grad = A(grad) + (addr_t)i0 * 4;
        pc.m = A(m) + (addr_t)i0 * 4;
        pc.v = A(v) + (addr_t)i0 * 4;
        pc.n = u32(n);
        st = RUN(vk, "adamw", pc, cdiv(cover_at(pc.param, param->dtype, n), 256), r, w);
    }
    lt_vk_op_end(vk);
    return st;
}

#define SUMSQ_PARTS 64

static lt_status vk_grad_norm(lt_device *dev, lt_tensor *out, lt_tensor *const *grads,
                              int n_grads)
{
    lt_vk *vk = lt_vk_of(dev);
    VkDeviceAddress part;
    size_t part_bytes = (size_t)(n_grads > 0 ? n_grads : 1) * SUMSQ_PARTS * 4;
    lt_status st = LT_OK;
    for (int i = 0; i < n_grads && st == LT_OK; i++)
        st = lt_vk_check_index(vk, "grad_norm", grads[i]);
    if (st != LT_OK)
        return st;
    st = lt_vk_op_begin(vk, "grad_norm");
    if (st == LT_OK)
        st = lt_vk_scratch(vk, part_bytes, &part);
    struct sumsq_pc {
        addr_t out, x;
        uint32_t n, mode, slot;
    } pc;
    for (int i = 0; i < n_grads && st == LT_OK; i++) {
        pc = (struct sumsq_pc){part, A(grads[i]), u32(grads[i]->numel), 0, (uint32_t)i};
        lt_vk_range r[] = {R(grads[i])},
                    w[] = {RA(part + (VkDeviceAddress)i * SUMSQ_PARTS * 4, SUMSQ_PARTS * 4)};
        st = RUN(vk, "sumsq", pc, SUMSQ_PARTS, r, w);
    }
    if (st == LT_OK) {
        pc = (struct sumsq_pc){A(out), part, (uint32_t)(n_grads * SUMSQ_PARTS), 1, 0};
        lt_vk_range r[] = {RA(part, part_bytes)}, w[] = {R(out)};
        st = RUN(vk, "sumsq", pc, 1, r, w);
    }
    lt_vk_op_end(vk);
    return st;
}

static lt_status vk_clip_grad_norm(lt_device *dev, lt_tensor *const *grads, int n_grads,
                                   const lt_tensor *norm, float max_norm)
{
    lt_vk *vk = lt_vk_of(dev);
    lt_status st = lt_vk_op_begin(vk, "clip_grad_norm");
    for (int i = 0; i < n_grads && st == LT_OK; i++)
        st = eltwise(vk, NULL, EW_CLIP, grads[i], NULL, norm, NULL, NULL, max_norm, 1);
    lt_vk_op_end(vk);
    return st;
}

const lt_backend lt_vk_backend = {
    .name = "vulkan",
    .profiles_itself = true,
    .close = lt_vk_close,
    .sync = lt_vk_sync,
    .alloc = lt_vk_alloc_bytes,
    .release = lt_vk_release,
    .upload = lt_vk_upload,
    .download = lt_vk_download,
    .mem_budget = lt_vk_mem_budget,
    .fill = vk_fill,
    .copy = vk_copy,
    .matmul = vk_matmul,
    .matmul_nf4 = lt_vk_matmul_nf4,
    .embedding = vk_embedding,
    .embedding_backward = vk_embedding_backward,
    .rmsnorm = vk_rmsnorm,
    .rmsnorm_backward = vk_rmsnorm_backward,
    .layernorm = vk_layernorm,
    .layernorm_backward = vk_layernorm_backward,
    .rope = vk_rope,
    .attention = vk_attention,
    .attention_backward = vk_attention_backward,
    .silu = vk_silu,
    .silu_backward = vk_silu_backward,
    .gelu = vk_gelu,
    .gelu_backward = vk_gelu_backward,
    .swiglu = vk_swiglu,
    .dropout = vk_dropout,
    .swiglu_backward = vk_swiglu_backward,
    .cross_entropy = vk_cross_entropy,
    .logprob_gather = vk_logprob_gather,
    .logprob_gather_backward = vk_logprob_gather_backward,
    .add = vk_add,
    .scale = vk_scale,
    .axpy = vk_axpy,
    .bias_add = vk_bias_add,
    .bias_backward = vk_bias_backward,
    .adamw = vk_adamw,
    .grad_norm = vk_grad_norm,
    .clip_grad_norm = vk_clip_grad_norm,
};
