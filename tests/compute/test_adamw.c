/*
 * test_adamw.c - AdamW, gradient norm and clipping against PyTorch: replays 10 steps of
 * torch.nn.utils.clip_grad_norm_ + torch.optim.AdamW recorded in tests/data/adamw_ref.bin
 * (made by tests/data/gen_adamw_ref.py) and requires 1e-6 relative agreement of the norm,
 * the clipped gradients and the parameters after every step. Also checks AdamW on a BF16
 * parameter and that grad_scale multiplies the gradient.
 */
#include "ops_ref.h"

#include <stdio.h>
#include <string.h>

#define MAXP 8

typedef struct fixture {
    unsigned char *data;
    size_t size, pos;
} fixture;

static bool rd(fixture *f, void *dst, size_t n)
{
    if (f->pos + n > f->size)
        return false;
    memcpy(dst, f->data + f->pos, n);
    f->pos += n;
    return true;
}

/* normwise relative error of n floats */
static double rel(const float *a, const float *b, int64_t n)
{
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        num = d > num || isnan(d) ? (isnan(d) ? INFINITY : d) : num;
        den = fabs((double)b[i]) > den ? fabs((double)b[i]) : den;
    }
    return num / (den > 0 ? den : 1e-30);
}

static void replay(lt_device *dev, fixture *f)
{
    char magic[4];
    int32_t hdr[3], numel[MAXP];
    float hp[6];
    bool ok = rd(f, magic, 4) && memcmp(magic, "LTAW", 4) == 0 && rd(f, hdr, sizeof hdr) &&
              hdr[0] == 1 && hdr[1] > 0 && hdr[1] <= MAXP && hdr[2] > 0;
    CHECK(ok, "adamw_ref.bin: bad header");
    if (!ok)
        return;
    int np = hdr[1], steps = hdr[2];
    int64_t total = 0;
    ok = rd(f, numel, (size_t)np * 4) && rd(f, hp, sizeof hp);
    for (int i = 0; ok && i < np; i++) {
        ok = numel[i] > 0 && numel[i] < 1000000;
        total += numel[i];
    }
    CHECK(ok, "adamw_ref.bin: bad sizes");
    if (!ok)
        return;
    float *init = malloc((size_t)total * 4), *g = malloc((size_t)total * 4);
    float *gc = malloc((size_t)total * 4), *pw = malloc((size_t)total * 4);
    float *got = malloc((size_t)total * 4);
    lt_tensor *param[MAXP], *grad[MAXP], *m[MAXP], *v[MAXP];
    lt_tensor *norm = lt_tensor_new_1d(dev, LT_F32, 1);
    CHECK(rd(f, init, (size_t)total * 4), "adamw_ref.bin: truncated");
    int64_t off = 0;
    for (int i = 0; i < np; i++) {
        param[i] = lt_tensor_new_1d(dev, LT_F32, numel[i]);
        grad[i] = lt_tensor_new_1d(dev, LT_F32, numel[i]);
        m[i] = lt_tensor_new_1d(dev, LT_F32, numel[i]);
        v[i] = lt_tensor_new_1d(dev, LT_F32, numel[i]);
        lt_tensor_upload_f32(param[i], init + off, numel[i]);
        lt_fill(m[i], 0.0f);
        lt_fill(v[i], 0.0f);
        off += numel[i];
    }
    lt_adamw_params p = {hp[0], hp[1], hp[2], hp[3], hp[4], 0};
    double worst_norm = 0, worst_clip = 0, worst_param = 0;
    for (int s = 0; s < steps; s++) {
        float tnorm;
        if (!rd(f, g, (size_t)total * 4) || !rd(f, &tnorm, 4) || !rd(f, gc, (size_t)total * 4) ||
            !rd(f, pw, (size_t)total * 4)) {
            CHECK(false, "adamw_ref.bin: truncated at step %d", s + 1);
            break;
        }
        off = 0;
        for (int i = 0; i < np; i++) {
            lt_tensor_upload_f32(grad[i], g + off, numel[i]);
            off += numel[i];
        }
        CHECK(lt_grad_norm(norm, grad, np) == LT_OK, "%s", lt_device_last_error(dev));
        CHECK(lt_clip_grad_norm(grad, np, norm, hp[5]) == LT_OK, "%s", lt_device_last_error(dev));
        p.step = s + 1;
        off = 0;
        for (int i = 0; i < np; i++) {
            CHECK(lt_adamw(param[i], grad[i], m[i], v[i], &p, 1.0f) == LT_OK, "%s",
                  lt_device_last_error(dev));
            lt_tensor_download_f32(grad[i], got + off, numel[i]);
            off += numel[i];
        }
        float n;
        lt_tensor_download_f32(norm, &n, 1);
        double en = fabs((double)n - tnorm) / tnorm, ec = rel(got, gc, total);
        off = 0;
        for (int i = 0; i < np; i++) {
            lt_tensor_download_f32(param[i], got + off, numel[i]);
            off += numel[i];
        }
        double ep = 0;
        off = 0;
        for (int i = 0; i < np; i++) { /* per tensor, as each is its own parameter */
            double e = rel(got + off, pw + off, numel[i]);
            ep = e > ep ? e : ep;
            off += numel[i];
        }
        CHECK(en <= 1e-6, "step %d: norm %.9g vs torch %.9g", s + 1, n, tnorm);
        CHECK(ec <= 1e-6, "step %d: clipped grads rel err %.3e", s + 1, ec);
        CHECK(ep <= 1e-6, "step %d: params rel err %.3e", s + 1, ep);
        worst_norm = en > worst_norm ? en : worst_norm;
        worst_clip = ec > worst_clip ? ec : worst_clip;
        worst_param = ep > worst_param ? ep : worst_param;
    }
    printf("  adamw vs torch over %d steps: params %.2e, grad norm %.2e, clipped grads %.2e\n",
           steps, worst_param, worst_norm, worst_clip);
    CHECK(f->pos == f->size, "adamw_ref.bin: %zu trailing bytes", f->size - f->pos);
    for (int i = 0; i < np; i++) {
        lt_tensor_free(param[i]), lt_tensor_free(grad[i]);
        lt_tensor_free(m[i]), lt_tensor_free(v[i]);
    }
    lt_tensor_free(norm);
    free(init), free(g), free(gc), free(pw), free(got);
}

/* A bf16 parameter follows the f32 update rounded, and grad_scale scales the gradient. */
static void test_bf16_and_scale(lt_device *dev)
{
    float w0[5] = {1.0f, -0.5f, 0.25f, 2.0f, -3.0f}, gr[5] = {0.1f, -0.2f, 0.3f, 0.0f, 1.0f};
    lt_tensor *pf = lt_tensor_new_1d(dev, LT_F32, 5), *pb = lt_tensor_new_1d(dev, LT_BF16, 5);
    lt_tensor *g = lt_tensor_new_1d(dev, LT_F32, 5), *g2 = lt_tensor_new_1d(dev, LT_F32, 5);
    lt_tensor *m1 = lt_tensor_new_1d(dev, LT_F32, 5), *v1 = lt_tensor_new_1d(dev, LT_F32, 5);
    lt_tensor *m2 = lt_tensor_new_1d(dev, LT_F32, 5), *v2 = lt_tensor_new_1d(dev, LT_F32, 5);
    lt_tensor_upload_f32(pf, w0, 5);
    lt_tensor_upload_f32(pb, w0, 5);
    lt_tensor_upload_f32(g, gr, 5);
    for (int i = 0; i < 5; i++)
        gr[i] *= 0.5f;
    lt_tensor_upload_f32(g2, gr, 5);
    lt_fill(m1, 0), lt_fill(v1, 0), lt_fill(m2, 0), lt_fill(v2, 0);
    lt_adamw_params p = {0.1f, 0.9f, 0.999f, 1e-8f, 0.0f, 1};
    CHECK(lt_adamw(pf, g2, m1, v1, &p, 2.0f) == LT_OK, "%s", lt_device_last_error(dev));
    CHECK(lt_adamw(pb, g, m2, v2, &p, 1.0f) == LT_OK, "%s", lt_device_last_error(dev));
    float a[5], b[5];
    lt_tensor_download_f32(pf, a, 5);
    lt_tensor_download_f32(pb, b, 5);
    bool ok = true;
    for (int i = 0; i < 5; i++)
        ok = ok && b[i] == lt_bf16_to_f32(lt_f32_to_bf16(a[i]));
    CHECK(ok, "bf16 param is the rounded f32 update (%g vs %g)", b[0], a[0]);
    CHECK(fabsf(a[3] - 2.0f) < 1e-7f && fabsf(a[0] - 0.9f) < 1e-5f,
          "first step moves by lr * sign(g): %g %g", a[0], a[3]);
    lt_tensor *all[8] = {pf, pb, g, g2, m1, v1, m2, v2};
    for (int i = 0; i < 8; i++)
        lt_tensor_free(all[i]);
}

int main(void)
{
    char err[256];
    lt_device *dev = lt_device_open("cpu", 0, err, sizeof err);
    CHECK(dev != NULL, "open cpu: %s", err);
    if (!dev)
        return test_summary();
    fixture f = {0};
    FILE *fp = fopen(LATHE_TEST_DATA "/adamw_ref.bin", "rb");
    CHECK(fp != NULL, "cannot open %s/adamw_ref.bin", LATHE_TEST_DATA);
    if (fp) {
        fseek(fp, 0, SEEK_END);
        long sz = ftell(fp);
        fseek(fp, 0, SEEK_SET);
        f.data = malloc(sz > 0 ? (size_t)sz : 1);
        f.size = fread(f.data, 1, sz > 0 ? (size_t)sz : 0, fp);
        fclose(fp);
        replay(dev, &f);
        free(f.data);
    }
    test_bf16_and_scale(dev);
    lt_device_close(dev);
    return test_summary();
}
