/*
 * trainer.c - one model being trained (trainer.h): which tensors train under each method,
 * their F32 gradients and AdamW moments, a forward+backward on a batch with the output
 * layer and the loss run a chunk of rows at a time (each chunk's loss gradient written into
 * its logits in place, then through the head into dL/dhf), and the update (global norm,
 * clipping, NaN/Inf skip, AdamW, zeroing).
 *
 * Full fine-tuning of a model stored in F16/BF16 keeps an fp32 master copy of every trainable
 * tensor: AdamW updates the master, which is then rounded into the model's own tensor (the
 * forward pass reads the model's tensors). F32 models train their tensors in place. Under
 * LoRA and freeze the frozen base keeps its stored dtype and has no gradient buffer.
 * Weight decay follows the Hugging Face Trainer: every parameter except biases and norm
 * weights (LoRA A and B included). The run loop (files, store, schedules) is elsewhere.
 */
#include "train_impl.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct tparam {
    lt_trainer_state st;
    char *name;
    lt_tensor *grad;   /* F32, shape of param */
    bool own_grad;     /* false for LoRA (the gradient adapter owns it) */
    lt_tensor *target; /* the model's tensor a master copy rounds into, or NULL */
    float decay;       /* weight decay for this tensor */
} tparam;

struct lt_trainer {
    lt_model *m;
    lt_trainer_opts o;
    lt_forward *fwd;
    lt_backward *bw;
    lt_lora_adapter *lora, *lora_grad; /* adapter and its gradients (same layout) */
    lt_model_grads g;
    tparam *p;
    int n, cap;
    lt_tensor **grads; /* [n], for the norm */
    lt_tensor **extra; /* views into gradients, freed first */
    int n_extra, cap_extra;
    lt_tensor *labels, *loss, *norm;
    lt_tensor *row_loss; /* [max N] F32 each row's NLL (0 unlabelled), filled chunk by chunk */
    float *h_row_loss;   /* [max N] host copy, read once per forward */
    int64_t chunk;       /* rows of logits per chunk of the output layer */
    int64_t step, n_trainable;
    uint64_t micro; /* forward passes since the last applied or skipped update */
};

static lt_model_status fail(lt_model_status st, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static lt_model_status fail(lt_model_status st, char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return st;
}

void lt_trainer_free(lt_trainer *t)
{
    if (!t)
        return;
    if (t->m && t->m->lora == t->lora)
        lt_model_attach_lora(t->m, NULL);
    for (int i = t->n_extra - 1; i >= 0; i--)
        lt_tensor_free(t->extra[i]);
    free(t->extra);
    for (int i = 0; i < t->n; i++) {
        tparam *p = &t->p[i];
        if (p->target) /* a master copy: owned here */
            lt_tensor_free(p->st.param);
        if (p->own_grad)
            lt_tensor_free(p->grad);
        lt_tensor_free(p->st.m);
        lt_tensor_free(p->st.v);
        free(p->name);
    }
    free(t->p);
    free(t->grads);
    if (t->g.layers)
        free(t->g.layers);
    lt_lora_free(t->lora_grad);
    lt_lora_free(t->lora);
    lt_backward_free(t->bw);
    lt_forward_free(t->fwd);
    lt_tensor_free(t->labels);
    lt_tensor_free(t->loss);
    lt_tensor_free(t->norm);
    lt_tensor_free(t->row_loss);
    free(t->h_row_loss);
    free(t);
}

static lt_tensor *new_like(lt_device *dev, const lt_tensor *x)
{
    int64_t shape[LT_MAX_DIMS];
    int nd = lt_tensor_ndim(x);
    for (int i = 0; i < nd; i++)
        shape[i] = lt_tensor_dim(x, i);
    lt_tensor *t = lt_tensor_new(dev, LT_F32, nd, shape);
    if (t && lt_fill(t, 0.0f) != LT_OK) {
        lt_tensor_free(t);
        t = NULL;
    }
    return t;
}

/* Adds a trainable tensor: grad and moments zeroed, a master copy when x is not F32. When
 * grad is given, the gradient is that tensor (owned by the caller's structure). */
static bool add_param(lt_trainer *t, const char *name, lt_tensor *x, lt_param_layout layout,
                      float decay, lt_tensor *grad)
{
    if (t->n == t->cap) {
        int nc = t->cap ? 2 * t->cap : 32;
        tparam *np = realloc(t->p, (size_t)nc * sizeof(*np));
        if (!np)
            return false;
        t->p = np;
        t->cap = nc;
    }
    lt_device *dev = t->m->dev;
    tparam *p = &t->p[t->n];
    memset(p, 0, sizeof(*p));
    p->name = strdup(name);
    p->st.name = p->name;
    p->st.layout = layout;
    p->decay = decay;
    p->grad = grad ? grad : new_like(dev, x);
    p->own_grad = !grad;
    p->st.m = new_like(dev, x);
    p->st.v = new_like(dev, x);
    if (lt_tensor_dtype(x) != LT_F32) {
        p->target = x;
        p->st.param = new_like(dev, x);
        if (p->st.param && lt_copy(p->st.param, x) != LT_OK) {
            lt_tensor_free(p->st.param);
            p->st.param = NULL;
        }
    } else {
        p->st.param = x;
    }
    t->n++; /* counted now so that lt_trainer_free releases what was made */
    if (!p->name || !p->grad || !p->st.m || !p->st.v || !p->st.param)
        return false;
    t->n_trainable += lt_tensor_numel(x);
    return true;
}

static lt_tensor *grad_view(lt_trainer *t, lt_tensor *g, int64_t off, int ndim, int64_t d0,
                            int64_t d1)
{
    if (t->n_extra == t->cap_extra) {
        int nc = t->cap_extra ? 2 * t->cap_extra : 64;
        lt_tensor **ne = realloc(t->extra, (size_t)nc * sizeof(*ne));
        if (!ne)
            return NULL;
        t->extra = ne;
        t->cap_extra = nc;
    }
    int64_t shape[2] = {d0, d1};
    lt_tensor *v = lt_tensor_view(g, off, ndim, shape);
    if (v)
        t->extra[t->n_extra++] = v;
    return v;
}

/* Points the gradient slot of model tensor x at grad. */
static bool map_grad(lt_trainer *t, const lt_tensor *x, lt_tensor *grad)
{
    lt_model *m = t->m;
    lt_model_grads *g = &t->g;
    if (x == m->tok_emb) {
        g->tok_emb = grad;
        if (m->lm_head.w == m->tok_emb)
            g->lm_head = grad;
        return true;
    }
    if (x == m->pos_emb)
        return (g->pos_emb = grad), true;
    if (x == m->lnf_w)
        return (g->lnf_w = grad), true;
    if (x == m->lnf_b)
        return (g->lnf_b = grad), true;
    if (x == m->lm_head.w)
        return (g->lm_head = grad), true;
    const int64_t D = m->cfg.dim;
    for (int64_t l = 0; l < m->cfg.n_layers; l++) {
        const lt_layer_weights *w = &m->layers[l];
        lt_layer_grads *lg = &g->layers[l];
        lt_tensor **slot[] = {&lg->ln1_w, &lg->ln1_b, &lg->ln2_w, &lg->ln2_b};
        const lt_tensor *ws[] = {w->ln1_w, w->ln1_b, w->ln2_w, w->ln2_b};
        for (int i = 0; i < 4; i++)
            if (x == ws[i])
                return (*slot[i] = grad), true;
        if (x == w->qkv_w || x == w->qkv_b) {
            lt_linear_grad *qkv[3] = {&lg->q, &lg->k, &lg->v};
            for (int j = 0; j < 3; j++) {
                lt_tensor *v = x == w->qkv_w ? grad_view(t, grad, j * D * D, 2, D, D)
                                             : grad_view(t, grad, j * D, 1, D, 0);
                if (!v)
                    return false;
                *(x == w->qkv_w ? &qkv[j]->w : &qkv[j]->b) = v;
            }
            return true;
        }
        const lt_linear *lins[] = {&w->q, &w->k, &w->v, &w->o, &w->gate, &w->up, &w->down};
        lt_linear_grad *gl[] = {&lg->q, &lg->k, &lg->v, &lg->o, &lg->gate, &lg->up, &lg->down};
        for (int i = 0; i < 7; i++) {
            if (x == lins[i]->w)
                return (gl[i]->w = grad), true;
            if (x == lins[i]->b)
                return (gl[i]->b = grad), true;
        }
    }
    return false;
}

static bool no_decay(const char *name, lt_param_kind kind)
{
    const char *leaf = strrchr(name, '.');
    return kind == LT_PARAM_NORM || (leaf && strcmp(leaf, ".bias") == 0);
}

static lt_model_status setup_lora(lt_trainer *t, char *err, size_t errlen)
{
    const lt_lora_opts *lo = &t->o.lora;
    lt_model *m = t->m;
    uint32_t slots = lt_lora_slots(m, lo->targets);
    if (lo->r <= 0 || !(lo->alpha > 0))
        return fail(LT_MODEL_ERR_ARG, err, errlen, "lora: rank %d and alpha %g must be positive",
                    lo->r, (double)lo->alpha);
    float scale = lo->rslora ? lo->alpha / sqrtf((float)lo->r) : lo->alpha / (float)lo->r;
    lt_model_status st = lt_lora_alloc(m, slots, lo->r, scale, lo->dropout, &t->lora, err, errlen);
    if (!st)
        st = lt_lora_alloc(m, slots, lo->r, scale, lo->dropout, &t->lora_grad, err, errlen);
    if (!st)
        st = lt_lora_init(t->lora, lo->seed, err, errlen);
    if (st)
        return st;
    for (int64_t l = 0; l < m->cfg.n_layers; l++)
        for (int s = 0; s < LT_LSLOT_COUNT; s++) {
            lt_lora_module *mo = &t->lora->mods[l][s], *go = &t->lora_grad->mods[l][s];
            if (!mo->A)
                continue;
            if (lt_fill(go->A, 0.0f) != LT_OK || lt_fill(go->B, 0.0f) != LT_OK)
                return fail(LT_MODEL_ERR_DEVICE, err, errlen, "lora: %s",
                            lt_device_last_error(m->dev));
            t->g.layers[l].lora[s] = *go;
            char path[160], name[224];
            lt_lora_module_path(m, (int)l, s, path, sizeof(path));
            snprintf(name, sizeof(name), "base_model.model.%s.lora_A.weight", path);
            if (!add_param(t, name, mo->A, LT_LAYOUT_PLAIN, t->o.weight_decay, go->A))
                goto oom;
            snprintf(name, sizeof(name), "base_model.model.%s.lora_B.weight", path);
            if (!add_param(t, name, mo->B, LT_LAYOUT_PLAIN, t->o.weight_decay, go->B))
                goto oom;
        }
    lt_model_attach_lora(m, t->lora);
    return LT_MODEL_OK;
oom:
    return fail(LT_MODEL_ERR_OOM, err, errlen, "lora: out of memory: %s",
                lt_device_last_error(m->dev));
}

void lt_trainer_plan_mem(const lt_model_config *c, const lt_trainer_opts *o, int64_t trainable,
                         int64_t master, lt_trainer_mem *mem)
{
    memset(mem, 0, sizeof(*mem));
    const bool lora = o->method == LT_METHOD_LORA;
    int r = lora ? o->lora.r : 0;
    uint32_t slots = 0;
    if (lora) {
        slots = lt_lora_slots_of(c, o->lora.targets);
        /* A [r, in] and B [out, r] F32, each with a gradient and two moments */
        for (int s = 0; s < LT_LSLOT_COUNT; s++) {
            int64_t in = 0, out = 0;
            lt_lora_slot_dims_of(c, s, &in, &out);
            if (slots & (1u << s))
                mem->adapters += (uint64_t)c->n_layers * (uint64_t)(r * in + out * r) * 4u;
        }
        mem->grads = mem->adapters;
        mem->moments = 2 * mem->adapters;
    } else {
        mem->grads = (uint64_t)trainable * 4u;
        mem->moments = (uint64_t)trainable * 8u;
        mem->master = (uint64_t)master * 4u;
    }
    mem->state = mem->adapters + mem->grads + mem->moments + mem->master;
    /* the output layer's logits: one chunk of rows, as lt_trainer_new makes it */
    const int64_t N = o->max_batch * o->max_seq;
    lt_forward_opts fo = {.max_batch = o->max_batch,
                          .max_seq = o->max_seq,
                          .keep_activations = true,
                          .logits_chunk = o->logits_chunk > 0
                                              ? o->logits_chunk
                                              : lt_logits_chunk_rows(c->vocab, N)};
    lt_forward_mem_opts fm = {o->recompute, o->recompute && o->offload_activations,
                              o->mlp_chunk};
    lt_forward_plan_bytes(c, &fo, &fm, r, slots, lora ? o->lora.dropout : 0.0f,
                          &mem->activations, &mem->logits, &mem->host);
    int64_t chunk = o->mlp_chunk > 0 ? o->mlp_chunk : lt_forward_mlp_chunk(c);
    mem->backward = lt_backward_plan_bytes(c, o->max_batch, o->max_seq, chunk, r,
                                           lora && o->lora.dropout > 0);
    /* labels [N] I32, the per-row losses [N] F32, loss and norm */
    mem->other = (uint64_t)N * 8u + 8u;
    mem->device = mem->state + mem->activations + mem->backward + mem->other;
}

/* Whether lt_trainer_new would train model parameter mp under o (full and freeze). */
static bool param_trains(const lt_model_param *mp, const lt_trainer_opts *o)
{
    if (o->method != LT_METHOD_FREEZE)
        return true;
    return mp->layer < 0 ? o->train_embeddings : (!o->train_layer || o->train_layer[mp->layer]);
}

void lt_trainer_plan_mem_for(const lt_model *m, const lt_trainer_opts *o, lt_trainer_mem *mem)
{
    int64_t trainable = 0, master = 0;
    for (int i = 0; o->method != LT_METHOD_LORA && i < m->n_params; i++) {
        const lt_model_param *mp = &m->params[i];
        if (!param_trains(mp, o) || !mp->tensor)
            continue;
        trainable += lt_tensor_numel(mp->tensor);
        if (lt_tensor_dtype(mp->tensor) != LT_F32)
            master += lt_tensor_numel(mp->tensor);
    }
    lt_trainer_plan_mem(&m->cfg, o, trainable, master, mem);
}

lt_model_status lt_trainer_new(lt_model *m, const lt_trainer_opts *o, lt_trainer **out,
                               char *err, size_t errlen)
{
    if (!m || !o || !out || o->max_batch <= 0 || o->max_seq <= 0)
        return fail(LT_MODEL_ERR_ARG, err, errlen, "trainer: bad arguments (max batch %lld, "
                    "max seq %lld)", o ? (long long)o->max_batch : 0LL,
                    o ? (long long)o->max_seq : 0LL);
    if (o->method != LT_METHOD_FULL && o->method != LT_METHOD_FREEZE &&
        o->method != LT_METHOD_LORA)
        return fail(LT_MODEL_ERR_ARG, err, errlen, "trainer: unknown method %d", (int)o->method);
    if (m->lora)
        return fail(LT_MODEL_ERR_ARG, err, errlen,
                    "trainer: the model already has an adapter attached");
    *out = NULL;
    lt_trainer *t = calloc(1, sizeof(*t));
    if (!t)
        return fail(LT_MODEL_ERR_OOM, err, errlen, "out of memory");
    t->m = m;
    t->o = *o;
    lt_model_status st = LT_MODEL_OK;
    t->g.layers = calloc((size_t)m->cfg.n_layers, sizeof(lt_layer_grads));
    if (!t->g.layers)
        goto oom;
    if (o->method == LT_METHOD_LORA) {
        if ((st = setup_lora(t, err, errlen)))
            goto fail;
    } else {
        for (int i = 0; i < m->n_params; i++) {
            const lt_model_param *mp = &m->params[i];
            if (!param_trains(mp, o))
                continue;
            if (!mp->tensor) {
                st = fail(LT_MODEL_ERR_ARG, err, errlen,
                          "trainer: %s is kept in host memory and cannot train", mp->name);
                goto fail;
            }
            float decay = no_decay(mp->name, mp->kind) ? 0.0f : o->weight_decay;
            if (!add_param(t, mp->name, mp->tensor, mp->layout, decay, NULL) ||
                !map_grad(t, mp->tensor, t->p[t->n - 1].grad))
                goto oom;
        }
    }
    if (t->n == 0) {
        st = fail(LT_MODEL_ERR_ARG, err, errlen, "trainer: nothing to train (no layer chosen)");
        goto fail;
    }
    t->grads = malloc((size_t)t->n * sizeof(lt_tensor *));
    if (!t->grads)
        goto oom;
    for (int i = 0; i < t->n; i++)
        t->grads[i] = t->p[i].grad;
    lt_forward_opts fo = {
        .max_batch = o->max_batch, .max_seq = o->max_seq, .keep_activations = true};
    if (o->logits_chunk < 0) {
        st = fail(LT_MODEL_ERR_ARG, err, errlen, "trainer: logits_chunk %lld must be >= 0",
                  (long long)o->logits_chunk);
        goto fail;
    }
    t->chunk = o->logits_chunk > 0 ? o->logits_chunk
                                   : lt_logits_chunk_rows(m->cfg.vocab, o->max_batch * o->max_seq);
    fo.logits_chunk = t->chunk;
    lt_forward_mem_opts fm = {o->recompute, o->recompute && o->offload_activations,
                              o->mlp_chunk};
    if ((st = lt_forward_new_mem(m, &fo, &fm, &t->fwd, err, errlen)))
        goto fail;
    if ((st = lt_backward_new_for(m, t->fwd, o->max_batch, o->max_seq,
                                  t->lora ? t->lora->r : 0, t->lora && t->lora->dropout > 0,
                                  &t->bw, err, errlen)))
        goto fail;
    t->labels = lt_tensor_new_1d(m->dev, LT_I32, o->max_batch * o->max_seq);
    t->loss = lt_tensor_new_1d(m->dev, LT_F32, 1);
    t->norm = lt_tensor_new_1d(m->dev, LT_F32, 1);
    t->row_loss = lt_tensor_new_1d(m->dev, LT_F32, o->max_batch * o->max_seq);
    t->h_row_loss = malloc((size_t)(o->max_batch * o->max_seq) * sizeof(float));
    if (!t->labels || !t->loss || !t->norm || !t->row_loss || !t->h_row_loss)
        goto oom;
    *out = t;
    return LT_MODEL_OK;
oom:
    st = fail(LT_MODEL_ERR_OOM, err, errlen, "trainer: out of memory: %s",
              lt_device_last_error(m->dev));
fail:
    lt_trainer_free(t);
    return st;
}

/* Rounds master copies into the model's tensors. */
static lt_status sync_masters(lt_trainer *t)
{
    lt_status s = LT_OK;
    for (int i = 0; i < t->n && s == LT_OK; i++)
        if (t->p[i].target)
            s = lt_copy(t->p[i].target, t->p[i].st.param);
    return s;
}

uint32_t lt_lora_all_linear(lt_arch arch)
{
    if (lt_arch_is_llama_like(arch))
        return LT_LORA_Q | LT_LORA_K | LT_LORA_V | LT_LORA_O | LT_LORA_GATE | LT_LORA_UP |
               LT_LORA_DOWN;
    return LT_LORA_ATTN | LT_LORA_O | LT_LORA_UP | LT_LORA_DOWN;
}

lt_model_status lt_trainer_sync_model(lt_trainer *t, char *err, size_t errlen)
{
    if (sync_masters(t) != LT_OK)
        return fail(LT_MODEL_ERR_DEVICE, err, errlen, "trainer: %s",
                    lt_device_last_error(t->m->dev));
    return LT_MODEL_OK;
}

/* Checks b and runs the forward pass; *n_lab receives the labelled tokens. */
static lt_model_status run_forward(lt_trainer *t, const lt_batch *b, bool train, int64_t *n_lab,
                                   char *err, size_t errlen)
{
    if (!b || !b->ids || !b->labels || b->B <= 0 || b->T <= 0 || b->B > t->o.max_batch ||
        b->T > t->o.max_seq)
        return fail(LT_MODEL_ERR_ARG, err, errlen,
                    "trainer: batch [%lld, %lld] is empty or larger than the trainer's "
                    "[%lld, %lld] (or ids/labels are NULL)",
                    b ? (long long)b->B : 0LL, b ? (long long)b->T : 0LL,
                    (long long)t->o.max_batch, (long long)t->o.max_seq);
    const int64_t N = b->B * b->T, V = t->m->cfg.vocab;
    int64_t n = 0;
    for (int64_t i = 0; i < N; i++) {
        int32_t y = b->labels[i];
        if (y != -100 && (y < 0 || y >= V))
            return fail(LT_MODEL_ERR_ARG, err, errlen,
                        "trainer: label %d at token %lld is outside [0, %lld) and not -100", y,
                        (long long)i, (long long)V);
        n += y != -100;
    }
    *n_lab = n;
    lt_status s = sync_masters(t);
    if (s != LT_OK)
        return fail(LT_MODEL_ERR_DEVICE, err, errlen, "trainer: %s",
                    lt_device_last_error(t->m->dev));
    /* dropout masks depend on (seed, optimizer step, micro-batch), so that a run resumed at a
     * step boundary draws the masks an uninterrupted run would */
    uint64_t mix = t->o.lora.seed ^ ((uint64_t)t->step << 20) ^ t->micro++;
    lt_forward_set_train(t->fwd, train, lt_splitmix64(&mix));
    lt_tensor *none = NULL; /* the workspace's logits come a chunk at a time */
    lt_model_status st = lt_forward_run_packed(t->fwd, b->ids, b->positions, b->segments, b->B,
                                               b->T, &none, err, errlen);
    if (st)
        return st;
    int64_t shape[1] = {N};
    lt_tensor *lab = lt_tensor_view(t->labels, 0, 1, shape);
    s = lab ? lt_tensor_upload(lab, b->labels, (size_t)N * sizeof(int32_t)) : LT_ERR_OOM;
    lt_tensor_free(lab);
    if (s != LT_OK)
        return fail(LT_MODEL_ERR_DEVICE, err, errlen, "trainer: labels: %s",
                    lt_device_last_error(t->m->dev));
    return LT_MODEL_OK;
}

/*
 * The output layer and the loss over the last forward's N rows, t->chunk rows at a time: per
 * chunk the logits [n, V], lt_cross_entropy (each row's NLL into t->row_loss; with grad, the
 * chunk's dloss/dlogits = grad_scale * (softmax - onehot) / denom written over its logits)
 * and, with grad, the head's backward (dL/dhf rows, lm_head's gradient). *total (OUT, may be
 * NULL): the summed NLL, from one read of the [N] row losses, summed in row order in double.
 */
static lt_model_status loss_chunks(lt_trainer *t, int64_t N, bool grad, float grad_scale,
                                   int64_t denom, double *total, char *err, size_t errlen)
{
    lt_model_status st = LT_MODEL_OK;
    for (int64_t r0 = 0; r0 < N && !st; r0 += t->chunk) {
        int64_t n = N - r0 < t->chunk ? N - r0 : t->chunk, shape[1] = {n};
        lt_tensor *lg = NULL;
        if ((st = lt_forward_logits(t->fwd, r0, n, &lg, err, errlen)))
            break;
        lt_tensor *lab = lt_tensor_view(t->labels, r0, 1, shape);
        lt_tensor *rl = lt_tensor_view(t->row_loss, r0, 1, shape);
        lt_status s = lab && rl ? lt_cross_entropy(t->loss, rl, grad ? lg : NULL, lg, lab, -100,
                                                   grad_scale, denom)
                                : LT_ERR_OOM;
        lt_tensor_free(lab);
        lt_tensor_free(rl);
        if (s != LT_OK)
            return fail(LT_MODEL_ERR_DEVICE, err, errlen,
                        "trainer: cross entropy of rows [%lld, %lld): %s", (long long)r0,
                        (long long)(r0 + n), lt_device_last_error(t->m->dev));
        if (grad)
            st = lt_backward_head(t->bw, t->fwd, &t->g, r0, lg, err, errlen);
    }
    if (st || !total)
        return st;
    int64_t shape[1] = {N};
    lt_tensor *rl = lt_tensor_view(t->row_loss, 0, 1, shape);
    lt_status s = rl ? lt_tensor_download_f32(rl, t->h_row_loss, N) : LT_ERR_OOM;
    lt_tensor_free(rl);
    if (s != LT_OK)
        return fail(LT_MODEL_ERR_DEVICE, err, errlen, "trainer: loss: %s",
                    lt_device_last_error(t->m->dev));
    double sum = 0.0;
    for (int64_t i = 0; i < N; i++)
        sum += t->h_row_loss[i];
    *total = sum;
    return LT_MODEL_OK;
}

lt_model_status lt_trainer_forward_backward(lt_trainer *t, const lt_batch *b, int64_t denom_tokens,
                                            float grad_scale, double *loss, int64_t *n_tokens,
                                            char *err, size_t errlen)
{
    if (!t)
        return fail(LT_MODEL_ERR_ARG, err, errlen, "trainer: NULL");
    if (!isfinite(grad_scale) || denom_tokens < 0)
        return fail(LT_MODEL_ERR_ARG, err, errlen,
                    "trainer: grad_scale %g must be finite and denom_tokens %lld >= 0",
                    (double)grad_scale, (long long)denom_tokens);
    int64_t n = 0;
    lt_model_status st = run_forward(t, b, true, &n, err, errlen);
    if (st)
        return st;
    int64_t denom = denom_tokens > 0 ? denom_tokens : n;
    double total = 0;
    if ((st = loss_chunks(t, b->B * b->T, true, grad_scale, denom, loss ? &total : NULL, err,
                          errlen)))
        return st;
    if ((st = lt_backward_run(t->bw, t->fwd, &t->g, err, errlen)))
        return st;
    if (loss)
        *loss = n > 0 ? total / (double)n : 0.0;
    if (n_tokens)
        *n_tokens = n;
    return LT_MODEL_OK;
}

lt_model_status lt_trainer_eval(lt_trainer *t, const lt_batch *b, double *loss_sum,
                                int64_t *n_tokens, char *err, size_t errlen)
{
    if (!t)
        return fail(LT_MODEL_ERR_ARG, err, errlen, "trainer: NULL");
    int64_t n = 0;
    lt_model_status st = run_forward(t, b, false, &n, err, errlen);
    if (st)
        return st;
    double total = 0;
    if ((st = loss_chunks(t, b->B * b->T, false, 1.0f, 0, &total, err, errlen)))
        return st;
    if (loss_sum)
        *loss_sum = total;
    if (n_tokens)
        *n_tokens = n;
    return LT_MODEL_OK;
}

lt_model_status lt_trainer_zero_grad(lt_trainer *t, char *err, size_t errlen)
{
    for (int i = 0; i < t->n; i++)
        if (lt_fill(t->p[i].grad, 0.0f) != LT_OK)
            return fail(LT_MODEL_ERR_DEVICE, err, errlen, "trainer: zeroing %s: %s", t->p[i].name,
                        lt_device_last_error(t->m->dev));
    return LT_MODEL_OK;
}

lt_model_status lt_trainer_step(lt_trainer *t, float lr, float max_norm, double *grad_norm,
                                bool *skipped, char *err, size_t errlen)
{
    if (!t)
        return fail(LT_MODEL_ERR_ARG, err, errlen, "trainer: NULL");
    if (skipped)
        *skipped = false;
    float gn = 0;
    lt_status s = lt_grad_norm(t->norm, t->grads, t->n);
    if (s == LT_OK)
        s = lt_tensor_download_f32(t->norm, &gn, 1);
    if (s != LT_OK)
        return fail(LT_MODEL_ERR_DEVICE, err, errlen, "trainer: gradient norm: %s",
                    lt_device_last_error(t->m->dev));
    if (grad_norm)
        *grad_norm = gn;
    t->micro = 0;
    if (!isfinite(gn)) {
        if (skipped)
            *skipped = true;
        return lt_trainer_zero_grad(t, err, errlen);
    }
    if (max_norm > 0 && (s = lt_clip_grad_norm(t->grads, t->n, t->norm, max_norm)) != LT_OK)
        return fail(LT_MODEL_ERR_DEVICE, err, errlen, "trainer: clipping: %s",
                    lt_device_last_error(t->m->dev));
    t->step++;
    for (int i = 0; i < t->n; i++) {
        tparam *p = &t->p[i];
        lt_adamw_params ap = {lr, t->o.beta1, t->o.beta2, t->o.eps, p->decay, t->step};
        s = lt_adamw(p->st.param, p->grad, p->st.m, p->st.v, &ap, 1.0f);
        if (s == LT_OK && p->target)
            s = lt_copy(p->target, p->st.param);
        if (s != LT_OK)
            return fail(LT_MODEL_ERR_DEVICE, err, errlen, "trainer: AdamW on %s: %s", p->name,
                        lt_device_last_error(t->m->dev));
    }
    return lt_trainer_zero_grad(t, err, errlen);
}

lt_model_status lt_trainer_run_forward(lt_trainer *t, const lt_batch *b, bool train, char *err,
                                       size_t errlen)
{
    int64_t n = 0;
    if (!t)
        return fail(LT_MODEL_ERR_ARG, err, errlen, "trainer: NULL");
    return run_forward(t, b, train, &n, err, errlen);
}

int64_t lt_trainer_logits_chunk(const lt_trainer *t)
{
    return t ? t->chunk : 0;
}

lt_model_status lt_trainer_logits(lt_trainer *t, int64_t r0, int64_t n, lt_tensor **logits,
                                  char *err, size_t errlen)
{
    if (!t)
        return fail(LT_MODEL_ERR_ARG, err, errlen, "trainer: NULL");
    return lt_forward_logits(t->fwd, r0, n, logits, err, errlen);
}

lt_model_status lt_trainer_head_backward(lt_trainer *t, int64_t r0, const lt_tensor *dlogits,
                                         char *err, size_t errlen)
{
    if (!t)
        return fail(LT_MODEL_ERR_ARG, err, errlen, "trainer: NULL");
    return lt_backward_head(t->bw, t->fwd, &t->g, r0, dlogits, err, errlen);
}

lt_model_status lt_trainer_run_backward(lt_trainer *t, char *err, size_t errlen)
{
    return lt_backward_run(t->bw, t->fwd, &t->g, err, errlen);
}

int lt_trainer_n_state(const lt_trainer *t) { return t ? t->n : 0; }

const lt_trainer_state *lt_trainer_state_at(const lt_trainer *t, int i)
{
    return t && i >= 0 && i < t->n ? &t->p[i].st : NULL;
}

int64_t lt_trainer_adam_step(const lt_trainer *t) { return t ? t->step : 0; }
void lt_trainer_set_adam_step(lt_trainer *t, int64_t step)
{
    if (t && step >= 0)
        t->step = step;
}
int64_t lt_trainer_n_trainable(const lt_trainer *t) { return t ? t->n_trainable : 0; }

const lt_lora_adapter *lt_trainer_lora(const lt_trainer *t) { return t ? t->lora : NULL; }
lt_model *lt_trainer_model(const lt_trainer *t) { return t ? t->m : NULL; }
const lt_lora_opts *lt_trainer_lora_opts(const lt_trainer *t) { return t ? &t->o.lora : NULL; }
lt_tensor *lt_trainer_grad(const lt_trainer *t, int i)
{
    return t && i >= 0 && i < t->n ? t->p[i].grad : NULL;
}
