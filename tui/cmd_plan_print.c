/*
 * cmd_plan_print.c - the human form of a plan for `lathe plan`: the facts, the path through
 * the tree (with each step's reason under --explain), the method and its rationale, the
 * estimates, the fit, the time and the warnings. Strings that came from the model, the
 * dataset or a driver are sanitized before they reach the terminal.
 */
#include "cli.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <string.h>

static double num(const cJSON *o, const char *k)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(j) ? j->valuedouble : 0;
}

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(j) ? j->valuestring : "";
}

/* Prints text wrapped at about 88 columns: the first line after lead, the others after
 * as many spaces. */
static void wrapped(const char *lead, const char *text)
{
    const char *p = text, *indent = lead;
    char pad[32];
    snprintf(pad, sizeof(pad), "%*s", (int)(strlen(lead) < 31 ? strlen(lead) : 31), "");
    while (*p) {
        size_t n = strlen(p);
        if (n > 84) {
            n = 84;
            while (n > 40 && p[n] != ' ')
                n--;
        }
        printf("%s%.*s\n", indent, (int)n, p);
        indent = pad;
        p += n;
        while (*p == ' ')
            p++;
    }
}

/* GB with a unit that keeps small models readable. */
static void size(double gb)
{
    if (gb >= 1)
        printf("%.2f GB", gb);
    else
        printf("%.1f MB", gb * 1e3);
}

static void duration(double s)
{
    if (s < 120)
        printf("%.0f s", s);
    else if (s < 7200)
        printf("%.0f min", s / 60);
    else
        printf("%.1f h", s / 3600);
}

/* The --explain table: per method (with and without gradient checkpointing) the peak and its
 * parts in GB, two decimals: weights as stored on the device, trainable state (master copies,
 * adapters, gradients, AdamW moments), activations (kept and the backward's scratch), the
 * loss's logits, other (matmul scratch, driver and allocator), host-resident parts and the
 * process's peak RSS; and whether batch 1 fits the budget. */
static void explain_table(const cJSON *est)
{
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(est, "budget_gb");
    if (cJSON_IsNumber(b))
        printf("  budget %.2f GB (device memory less the safety margin); GB by part:\n",
               b->valuedouble);
    printf("  %-15s %8s %8s %8s %8s %8s %8s %8s %8s  %s\n", "method", "peak", "weights", "state",
           "activ", "loss", "other", "host", "ram", "fits");
    const cJSON *s;
    cJSON_ArrayForEach(s, est)
    {
        if (!cJSON_IsObject(s))
            continue;
        const cJSON *fits = cJSON_GetObjectItemCaseSensitive(s, "fits");
        printf("  %-15s %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f  %s\n", s->string,
               num(s, "peak_gb"), num(s, "weights_gb"), num(s, "state_gb"), num(s, "activ_gb"),
               num(s, "logits_gb"), num(s, "other_gb"), num(s, "host_gb"), num(s, "host_ram_gb"),
               !cJSON_IsBool(fits) ? "?" : cJSON_IsTrue(fits) ? "yes" : "no");
    }
}

void lt_cmd_plan_print_facts(const cJSON *f);
int lt_cmd_plan_print(const cJSON *r, bool explain, int64_t plan_id, const char *out);

/* The facts block: model, device and dataset as gathered (or overridden). */
void lt_cmd_plan_print_facts(const cJSON *f)
{
    const cJSON *len = cJSON_GetObjectItemCaseSensitive(f, "lengths");
    printf("facts\n  model    ");
    lt_cli_print_sanitized(stdout, str(f, "model_dir"), false);
    printf(" (%s, %.3g M params, %s, context %.0f)\n", str(f, "model_arch"),
           num(f, "params") / 1e6, str(f, "model_dtype"), num(f, "context"));
    printf("  device   %s ", str(f, "device"));
    lt_cli_print_sanitized(stdout, str(f, "device_name"), false);
    if (cJSON_GetObjectItemCaseSensitive(f, "memory_gb"))
        printf(", %.1f GB", num(f, "memory_gb"));
    printf("\n  dataset  ");
    lt_cli_print_sanitized(stdout, str(f, "dataset"), false);
    printf(" (%s, %.0f examples, %.0f validation; %s p50 %.0f, p95 %.0f, max %.0f)\n",
           str(f, "dataset_format"), num(f, "n_examples"), num(f, "val_rows"), str(len, "unit"),
           num(len, "p50"), num(len, "p95"), num(len, "max"));
}

int lt_cmd_plan_print(const cJSON *r, bool explain, int64_t plan_id, const char *out)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(r, "facts");
    lt_cmd_plan_print_facts(f);
    printf("path\n");
    int i = 1;
    const cJSON *s;
    cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(r, "path"))
    {
        printf("  %d. %s %s = %s\n", i++, str(s, "kind"), str(s, "key"), str(s, "value"));
        if (explain) {
            wrapped("       ", str(s, "question"));
            wrapped("       because ", str(s, "why"));
        }
    }
    printf("method   %s", str(r, "method"));
    if (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(r, "train_method")))
        printf(" (config: method %s, objective %s)", str(r, "train_method"),
               str(r, "objective"));
    printf("\n");
    wrapped("  ", str(r, "rationale"));
    const cJSON *est = cJSON_GetObjectItemCaseSensitive(r, "estimates");
    printf("memory estimates (seq %.0f, batch 1)\n", num(est, "seq_len"));
    if (explain) /* every method with and without checkpointing, part by part */
        explain_table(est);
    else
        cJSON_ArrayForEach(s, est)
        {
            const cJSON *ck = cJSON_GetObjectItemCaseSensitive(s, "checkpointing");
            if (!cJSON_IsObject(s) || cJSON_IsTrue(ck))
                continue;
            printf("  %-10s ", s->string);
            size(num(s, "peak_gb"));
            printf(" (weights ");
            size(num(s, "weights_gb") + num(s, "adapters_gb"));
            printf(", grads and moments ");
            size(num(s, "grads_gb") + num(s, "moments_gb") + num(s, "master_gb"));
            printf(", activations ");
            size(num(s, "activations_gb") + num(s, "backward_gb"));
            printf(", logits ");
            size(num(s, "logits_gb"));
            printf(")\n");
        }
    if (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(r, "choice")))
        wrapped("chosen   ", str(r, "choice"));
    const cJSON *fit = cJSON_GetObjectItemCaseSensitive(r, "fit");
    if (fit) {
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(fit, "fits")))
            printf("fit      micro-batch %.0f x accumulation %.0f for an effective batch of %.0f; "
                   "peak ",
                   num(fit, "micro_batch"), num(fit, "grad_accum"), num(fit, "effective_batch"));
        else
            printf("fit      does NOT fit: at batch 1 the peak is ");
        size(num(fit, "peak_gb"));
        printf(" against a budget of ");
        size(num(fit, "budget_gb"));
        printf("\n");
    }
    const cJSON *tm = cJSON_GetObjectItemCaseSensitive(r, "time");
    if (tm && cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(tm, "seconds_per_epoch"))) {
        printf("time     about ");
        duration(num(tm, "seconds_per_epoch"));
        printf(" per epoch (%.3g tokens, %.3g GFLOP/s for training)\n",
               num(tm, "tokens_per_epoch"), num(f, "train_gflops"));
    }
    cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(r, "warnings"))
    {
        printf("warning  ");
        wrapped("", cJSON_IsString(s) ? s->valuestring : "");
    }
    if (plan_id > 0)
        printf("plan %lld saved", (long long)plan_id);
    if (out && cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(r, "config")))
        printf("%sconfig written to %s (lathe train %s)", plan_id > 0 ? "; " : "", out, out);
    if (plan_id > 0 || out)
        printf("\n");
    return 0;
}
