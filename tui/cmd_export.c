/*
 * cmd_export.c - `lathe export`: a run's trained model (or a plain model folder) written as a
 * PEFT adapter folder, a merged Hugging Face folder, a GGUF model (+ an Ollama Modelfile) or
 * a GGUF LoRA adapter; GGUF models are loaded back and checked against the source; every
 * export is recorded in the store with its files, sizes and checksums.
 *
 * Parsing and printing only; the work is in pipeline/export and pipeline/train/run_load.
 */
#include "cli.h"

#include "export/gguf_check.h"
#include "export/merged.h"
#include "export/modelfile.h"
#include "export/peft.h"
#include "store.h"
#include "train/run_load.h"
#include "train/train_config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char USAGE[] =
    "usage: lathe export RUN --format peft|merged|gguf|gguf-lora [options] OUT\n"
    "       lathe export --model DIR [--adapter PEFT_DIR] --format gguf|gguf-lora [options] OUT\n"
    "  --format F           peft (folder), merged (folder), gguf (file), gguf-lora (file)\n"
    "  --dtype D            gguf weights: f32 (default), f16, bf16, q8_0\n"
    "  --checkpoint C       last (default), best, or a step number\n"
    "  --force              replace OUT when it exists\n"
    "  --no-check           skip loading the GGUF back and comparing it with the source\n"
    "  --device auto|cpu|vulkan:N  --threads N  --workspace DIR  --json\n";

typedef struct files {
    lt_store_export_file f[64];
    char path[64][4400];
    char sha[64][65];
    int n;
} files;

static void add_file(files *fl, const char *path)
{
    struct stat sb;
    if (fl->n >= 64 || stat(path, &sb) != 0)
        return;
    if (S_ISDIR(sb.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        char p[4400];
        while (d && (e = readdir(d)))
            if (e->d_name[0] != '.') {
                snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
                add_file(fl, p);
            }
        if (d)
            closedir(d);
        return;
    }
    int i = fl->n;
    snprintf(fl->path[i], sizeof(fl->path[i]), "%s", path);
    if (!lt_export_hash_file(path, fl->sha[i], &fl->f[i].bytes))
        return;
    fl->f[i].path = fl->path[i];
    fl->f[i].sha256 = fl->sha[i];
    fl->n++;
}

static void rm_tree(const char *path)
{
    struct stat sb;
    if (lstat(path, &sb) != 0)
        return;
    if (S_ISDIR(sb.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        char p[4400];
        while (d && (e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
                rm_tree(p);
            }
        if (d)
            closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static bool parse_dtype(const char *s, lt_ggml_type *out)
{
    static const struct { const char *n; lt_ggml_type t; } T[] = {
        {"f32", LT_GGML_F32}, {"f16", LT_GGML_F16}, {"bf16", LT_GGML_BF16}, {"q8_0", LT_GGML_Q8_0}};
    for (size_t i = 0; i < 4; i++)
        if (!strcmp(s, T[i].n))
            return *out = T[i].t, true;
    return false;
}

/* The Modelfile path for a GGUF: OUT without ".gguf" plus ".Modelfile". */
static void modelfile_path(const char *out, char *p, size_t n)
{
    size_t l = strlen(out);
    snprintf(p, n, "%.*s.Modelfile", (int)(l > 5 ? l - 5 : l), out);
}

typedef struct args {
    const char *run, *model, *adapter, *format, *checkpoint, *out;
    lt_ggml_type dtype;
    bool force, check;
} args;

static int write_modelfile(const args *a, const char *src_dir, const lt_gguf_export_info *info,
                           int64_t ctx, files *fl, char *err, size_t errlen)
{
    lt_tokenizer *tok = NULL;
    lt_modelfile_opts o = {0};
    char *sys = NULL, mf[4400], from[4400], adapter[4400];
    const char *base = strrchr(a->out, '/');
    base = base ? base + 1 : a->out;
    if (lt_tokenizer_load_dir(src_dir, &tok, err, errlen) == LT_TOK_OK)
        lt_modelfile_from_tokenizer(tok, &o, &sys);
    if (!strcmp(a->format, "gguf")) {
        snprintf(from, sizeof(from), "./%s", base);
        o.from = from;
    } else {
        o.from = src_dir; /* Ollama imports a safetensors folder as the base */
        snprintf(adapter, sizeof(adapter), "./%s", base);
        o.adapter = adapter;
    }
    o.num_ctx = ctx;
    (void)info;
    modelfile_path(a->out, mf, sizeof(mf));
    lt_model_status st = lt_modelfile_write(&o, mf, err, errlen);
    if (!st)
        add_file(fl, mf);
    free(sys);
    lt_tokenizer_free(tok);
    return st == LT_MODEL_OK ? 0 : -1;
}

static void print_check(const lt_gguf_check *c, bool json)
{
    if (json)
        return;
    printf("check: %d prompts, max logit error %.3g (tolerance %.3g, logits up to %.3g): %s\n",
           c->n_prompts, c->max_logit_err, c->tol, c->logit_scale, c->logits_ok ? "ok" : "FAILED");
    printf("check: end-of-turn id %d in the GGUF, %d from the tokenizer: %s\n", c->gguf_eot_id,
           c->eot_id, c->eot_ok ? "ok" : "FAILED");
    printf("check: greedy reply %d tokens (%s), source %d tokens (%s): %s\n", c->n_gguf,
           c->gguf_stopped ? "stopped at end-of-turn" : "no end-of-turn within 32",
           c->n_src, c->src_stopped ? "stopped at end-of-turn" : "no end-of-turn within 32",
           c->reply_same ? "identical" : "different");
}

int lt_cmd_export(int argc, char **argv)
{
    const char *cmd = "export";
    lt_cli_common cc;
    lt_cli_common_defaults(&cc);
    args a = {0};
    a.dtype = LT_GGML_F32;
    a.check = true;
    const char *dtype_s = "f32";
    for (int i = 1; i < argc; i++) {
        int r = lt_cli_common_parse(&cc, argc, argv, &i);
        if (r < 0)
            return LT_EXIT_USAGE;
        if (r > 0)
            continue;
        const char *s = argv[i];
        const char **dst = !strcmp(s, "--format")       ? &a.format
                           : !strcmp(s, "--dtype")      ? &dtype_s
                           : !strcmp(s, "--checkpoint") ? &a.checkpoint
                           : !strcmp(s, "--model")      ? &a.model
                           : !strcmp(s, "--adapter")    ? &a.adapter
                                                        : NULL;
        if (dst) {
            if (i + 1 >= argc)
                return lt_cli_fail(cmd, LT_EXIT_USAGE, "%s needs a value", s);
            *dst = argv[++i];
        } else if (!strcmp(s, "--force")) {
            a.force = true;
        } else if (!strcmp(s, "--no-check")) {
            a.check = false;
        } else if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            fputs(USAGE, stdout);
            return LT_EXIT_OK;
        } else if (s[0] == '-') {
            return lt_cli_fail(cmd, LT_EXIT_USAGE, "unknown option %s\n%s", s, USAGE);
        } else if (!a.run && !a.model) {
            a.run = s;
        } else if (!a.out) {
            a.out = s;
        } else {
            return lt_cli_fail(cmd, LT_EXIT_USAGE, "unexpected argument %s\n%s", s, USAGE);
        }
    }
    if (a.model && a.run && !a.out) { /* --model DIR OUT: OUT was taken as RUN */
        a.out = a.run;
        a.run = NULL;
    }
    if ((!a.run && !a.model) || !a.out || !a.format)
        return lt_cli_fail(cmd, LT_EXIT_USAGE, "RUN (or --model DIR), --format and OUT are "
                           "needed\n%s", USAGE);
    if (!parse_dtype(dtype_s, &a.dtype))
        return lt_cli_fail(cmd, LT_EXIT_USAGE, "--dtype %s: f32, f16, bf16 or q8_0", dtype_s);
    bool f_gguf = !strcmp(a.format, "gguf"), f_lora = !strcmp(a.format, "gguf-lora"),
         f_peft = !strcmp(a.format, "peft"), f_merged = !strcmp(a.format, "merged");
    if (!f_gguf && !f_lora && !f_peft && !f_merged)
        return lt_cli_fail(cmd, LT_EXIT_USAGE, "--format %s: peft, merged, gguf or gguf-lora",
                           a.format);
    if (a.model && (f_peft || f_merged))
        return lt_cli_fail(cmd, LT_EXIT_USAGE, "--model exports gguf or gguf-lora (a plain "
                           "folder is already a Hugging Face model)");
    if (a.model && f_lora && !a.adapter)
        return lt_cli_fail(cmd, LT_EXIT_USAGE, "--format gguf-lora with --model needs "
                           "--adapter PEFT_DIR");
    if ((f_gguf || f_lora) && strlen(a.out) > 5 && strcmp(a.out + strlen(a.out) - 5, ".gguf"))
        return lt_cli_fail(cmd, LT_EXIT_USAGE, "OUT %s: a GGUF file name ends in .gguf", a.out);
    struct stat sb;
    char mf[4400];
    modelfile_path(a.out, mf, sizeof(mf));
    if (!a.force && (stat(a.out, &sb) == 0 || ((f_gguf || f_lora) && stat(mf, &sb) == 0)))
        return lt_cli_fail(cmd, LT_EXIT_FAIL, "%s already exists (use --force to replace it)",
                           stat(a.out, &sb) == 0 ? a.out : mf);

    int rc = LT_EXIT_FAIL;
    char err[2048], stage[4400] = "";
    bool drop_files = false; /* the GGUF and Modelfile written, removed on failure */
    lt_store *st = NULL;
    lt_device *dev = NULL;
    lt_run_loaded rl;
    lt_model *plain = NULL;
    lt_lora_adapter *plain_ad = NULL;
    int64_t run_id = 0;
    files *fl = calloc(1, sizeof(files));
    memset(&rl, 0, sizeof(rl));
    if (!fl)
        return lt_cli_fail(cmd, LT_EXIT_FAIL, "out of memory");
    if (lt_store_open(cc.workspace, &st, err, sizeof(err)) != LT_STORE_OK) {
        lt_cli_fail(cmd, LT_EXIT_FAIL, "%s", err);
        goto out;
    }
    if (a.run && lt_store_run_find(st, a.run, &run_id) != LT_STORE_OK) {
        lt_cli_fail(cmd, LT_EXIT_FAIL, "no run %s in %s", a.run, cc.workspace);
        goto out;
    }
    if (!(dev = lt_device_open(cc.device, cc.threads, err, sizeof(err)))) {
        lt_cli_fail(cmd, LT_EXIT_FAIL, "device %s: %s", cc.device, err);
        goto out;
    }
    lt_model *src = NULL;
    const char *src_dir = a.model;
    const lt_lora_adapter *adapter = NULL;
    if (a.run) {
        if (lt_run_load(st, dev, run_id, a.checkpoint, &rl, err, sizeof(err)) != LT_MODEL_OK) {
            lt_cli_fail(cmd, LT_EXIT_FAIL, "%s", err);
            goto out;
        }
        src = rl.model;
        src_dir = rl.model_dir;
        adapter = rl.adapter;
        if ((f_peft || f_lora) && rl.method != LT_METHOD_LORA) {
            lt_cli_fail(cmd, LT_EXIT_FAIL, "run %s trained with method %s: only LoRA runs have "
                        "an adapter to export (use --format merged or gguf)", a.run,
                        lt_method_name(rl.method));
            goto out;
        }
    } else {
        if (lt_model_load(a.model, dev, LT_MODEL_DTYPE_STORED, &plain, err, sizeof(err))) {
            lt_cli_fail(cmd, LT_EXIT_FAIL, "%s", err);
            goto out;
        }
        src = plain;
        if (a.adapter && (lt_peft_load(plain, a.adapter, &plain_ad, err, sizeof(err)) ||
                          lt_peft_attach(plain, plain_ad, err, sizeof(err)))) {
            lt_cli_fail(cmd, LT_EXIT_FAIL, "%s", err);
            goto out;
        }
        adapter = plain_ad;
    }
    if (a.force && (f_peft || f_merged))
        rm_tree(a.out);
    /* folders written through a stage beside OUT, renamed into place when complete */
    snprintf(stage, sizeof(stage), "%s.stage-%ld", a.out, (long)getpid());
    rm_tree(stage);
    lt_model_status ms = LT_MODEL_OK;
    lt_gguf_export_info info;
    memset(&info, 0, sizeof(info));
    if (f_peft) {
        ms = lt_peft_write(rl.trainer, stage, rl.model_dir, err, sizeof(err));
    } else if (f_merged || (f_gguf && adapter) || (f_gguf && rl.trainer)) {
        /* a GGUF is converted from an F32 stage: the merged weights are rounded once, to
         * the GGUF's dtype (a half-precision stage would round them twice) */
        ms = lt_export_merged(src, adapter, src_dir, stage, f_gguf, err, sizeof(err));
    } else if (f_lora && a.run) {
        ms = lt_peft_write(rl.trainer, stage, rl.model_dir, err, sizeof(err));
    }
    if (ms) {
        lt_cli_fail(cmd, LT_EXIT_FAIL, "%s", err);
        goto out;
    }
    if (f_peft || f_merged) {
        if (rename(stage, a.out) != 0) {
            lt_cli_fail(cmd, LT_EXIT_FAIL, "%s: cannot rename into place: %s", a.out,
                        strerror(errno));
            goto out;
        }
        stage[0] = 0;
        add_file(fl, a.out);
    } else if (f_gguf) {
        lt_gguf_export_opts go = {a.dtype, NULL};
        const char *from = (adapter || rl.trainer) ? stage : src_dir;
        if (lt_gguf_export_model(from, a.out, &go, &info, err, sizeof(err))) {
            lt_cli_fail(cmd, LT_EXIT_FAIL, "%s", err);
            goto out;
        }
        add_file(fl, a.out);
    } else {
        const char *peft_dir = a.run ? stage : a.adapter;
        if (lt_gguf_export_lora(peft_dir, src_dir, a.out, &info, err, sizeof(err))) {
            lt_cli_fail(cmd, LT_EXIT_FAIL, "%s", err);
            goto out;
        }
        add_file(fl, a.out);
    }
    /* from here a failure removes the GGUF and its Modelfile: a file that failed its check
     * must not stay to be used, nor block the next attempt with "exists" */
    drop_files = f_gguf || f_lora;
    if ((f_gguf || f_lora) &&
        write_modelfile(&a, src_dir, &info, lt_model_get_config(src)->max_pos, fl, err,
                        sizeof(err))) {
        lt_cli_fail(cmd, LT_EXIT_FAIL, "%s", err);
        goto out;
    }
    if (info.note[0] && !cc.json)
        printf("note: %s\n", info.note);
    lt_gguf_check chk;
    bool checked = false;
    memset(&chk, 0, sizeof(chk));
    if (f_gguf && a.check) {
        lt_tokenizer *tok = NULL;
        if (lt_tokenizer_load_dir(src_dir, &tok, err, sizeof(err)) != LT_TOK_OK ||
            lt_gguf_check_model(src, tok, a.out, a.dtype, &chk, err, sizeof(err))) {
            lt_tokenizer_free(tok);
            lt_cli_fail(cmd, LT_EXIT_FAIL, "check of %s: %s", a.out, err);
            goto out;
        }
        lt_tokenizer_free(tok);
        checked = true;
        print_check(&chk, cc.json);
        if (!chk.ok) {
            lt_cli_fail(cmd, LT_EXIT_FAIL,
                        "%s does not behave like its source (see the check lines); it was "
                        "removed (--no-check keeps an export without checking it)",
                        a.out);
            goto out;
        }
    }
    char detail[1024];
    snprintf(detail, sizeof(detail),
             "{\"format\": \"%s\", \"dtype\": \"%s\", \"checkpoint_step\": %lld, \"arch\": \"%s\","
             " \"tokenizer\": \"%s\", \"pre\": \"%s\", \"eot_id\": %d, \"checked\": %s,"
             " \"max_logit_err\": %.6g, \"tolerance\": %.6g, \"check_ok\": %s}",
             a.format, (f_gguf ? dtype_s : "-"), (long long)(a.run ? rl.ckpt_step : -1),
             info.arch, info.tok_model, info.tok_pre, info.eot_id, checked ? "true" : "false",
             chk.max_logit_err, chk.tol, chk.ok ? "true" : "false");
    lt_store_export ex = {0, run_id, a.run ? rl.ckpt_id : 0, a.format, a.out, detail, 0};
    int64_t eid = 0;
    if (lt_store_export_add(st, &ex, fl->f, fl->n, &eid) != LT_STORE_OK) {
        lt_cli_fail(cmd, LT_EXIT_FAIL, "the export was written but not recorded in the store");
        goto out;
    }
    if (cc.json) {
        printf("{\"export_id\": %lld, \"detail\": %s, \"files\": [", (long long)eid, detail);
        for (int i = 0; i < fl->n; i++)
            printf("%s{\"path\": \"%s\", \"bytes\": %lld, \"sha256\": \"%s\"}", i ? ", " : "",
                   fl->f[i].path, (long long)fl->f[i].bytes, fl->f[i].sha256);
        printf("]}\n");
    } else {
        printf("export %lld: ", (long long)eid);
        lt_cli_print_sanitized(stdout, a.out, false);
        printf(" (%s%s%s)\n", a.format, f_gguf ? ", " : "", f_gguf ? dtype_s : "");
        for (int i = 0; i < fl->n; i++) {
            printf("  ");
            lt_cli_print_sanitized(stdout, fl->f[i].path, false);
            printf("  %lld bytes  sha256 %s\n", (long long)fl->f[i].bytes, fl->f[i].sha256);
        }
    }
    rc = LT_EXIT_OK;
    drop_files = false;
out:
    if (drop_files) {
        for (int i = 0; i < fl->n; i++)
            unlink(fl->f[i].path);
        if (fl->n)
            fprintf(stderr, "lathe export: removed the %d file%s it had written\n", fl->n,
                    fl->n == 1 ? "" : "s");
    }
    if (stage[0])
        rm_tree(stage);
    if (plain_ad) {
        lt_peft_attach(plain, NULL, err, sizeof(err));
        lt_peft_free(plain_ad);
    }
    lt_model_free(plain);
    lt_run_unload(&rl);
    if (dev)
        lt_device_close(dev);
    lt_store_close(st);
    free(fl);
    return rc;
}
