/*
 * cmd_devices.c - `lathe devices`: every compute device lathe can use, as text or JSON.
 * Works without a Vulkan loader or driver: it says so and lists the CPU. With --check, runs
 * the device check (pipeline/train/devcheck.h) on each Vulkan device and prints its verdict
 * per op; this file only formats.
 */
#include "cli.h"
#include "compute.h"
#include "train/devcheck.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_VK 16

static void print_help(void)
{
    printf("usage: lathe devices [--json] [--check]\n\n"
           "Lists the CPU (model, cores, SIMD level, RAM) and each Vulkan physical device (name,\n"
           "type, driver, memory heaps, limits, fp16/bf16/int8 and cooperative-matrix support).\n"
           "Device names for --device: cpu, vulkan:N (the index shown), auto.\n\n"
           "--check  run each op of a training step (matmul, embedding, rmsnorm, rope, attention,\n"
           "         swiglu, cross-entropy, AdamW, gradient norm, each with its backward) and a\n"
           "         tiny model's forward, backward and AdamW step on every Vulkan device and on\n"
           "         the CPU backend, and print pass or fail per op and per device. Exit status 1\n"
           "         when a device disagrees. Training on a GPU runs the same check at start.\n");
}

static double gib(uint64_t b) { return (double)b / (1024.0 * 1024.0 * 1024.0); }

static void print_text(const lt_cpu_info *cpu, const lt_vk_device_info *vk, int n_vk,
                       const char *why)
{
    printf("cpu\n  model:   ");
    lt_cli_print_sanitized(stdout, cpu->model, false);
    printf("\n  cores:   %d usable (%d logical)\n", cpu->usable_cores, cpu->logical_cores);
    printf("  simd:    %s\n", cpu->simd[0] ? cpu->simd : "none detected");
    printf("  memory:  %.1f GiB (%.1f GiB available)\n", gib(cpu->ram_bytes),
           gib(cpu->ram_available_bytes));
    if (n_vk < 0) {
        printf("\nvulkan: unavailable (");
        lt_cli_print_sanitized(stdout, why, false);
        printf(")\n");
        return;
    }
    if (n_vk == 0)
        printf("\nvulkan: no physical devices\n");
    for (int i = 0; i < n_vk; i++) {
        const lt_vk_device_info *d = &vk[i];
        printf("\nvulkan:%d\n  name:    ", d->index);
        lt_cli_print_sanitized(stdout, d->name, false);
        printf("\n  type:    %s%s\n", d->type,
               strcmp(d->type, "cpu") == 0 ? " (never chosen by --device auto)" : "");
        printf("  driver:  ");
        lt_cli_print_sanitized(stdout, d->driver, false);
        printf("\n  api:     %s  (vendor 0x%04x, device 0x%04x)\n", d->api_version,
               d->vendor_id, d->device_id);
        for (int h = 0; h < d->n_heaps; h++)
            printf("  heap %d:  %.2f GiB%s\n", h, gib(d->heap_bytes[h]),
                   d->heap_device_local[h] ? " device-local" : "");
        printf("  limits:  max allocation %.2f GiB, storage buffer range %.0f MiB, "
               "shared memory %u KiB, workgroup %u, subgroup %u\n",
               gib(d->max_allocation_bytes), (double)d->max_storage_buffer_range / 1048576.0,
               d->max_shared_memory_bytes / 1024, d->max_workgroup_invocations,
               d->subgroup_size);
        printf("  types:   fp16 %s, bf16 %s, int8 %s, 16-bit storage %s\n",
               d->fp16 ? "yes" : "no", d->bf16 ? "yes" : "no", d->int8 ? "yes" : "no",
               d->int16_storage ? "yes" : "no");
        printf("  cooperative matrix: %s, timestamps: %s\n", d->cooperative_matrix ? "yes" : "no",
               d->timestamps ? "yes" : "no");
    }
}

static int print_json(const lt_cpu_info *cpu, const lt_vk_device_info *vk, int n_vk,
                      const char *why)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *c = cJSON_AddObjectToObject(root, "cpu");
    cJSON_AddStringToObject(c, "model", cpu->model);
    cJSON_AddNumberToObject(c, "logical_cores", cpu->logical_cores);
    cJSON_AddNumberToObject(c, "usable_cores", cpu->usable_cores);
    cJSON_AddStringToObject(c, "simd", cpu->simd);
    cJSON_AddNumberToObject(c, "ram_bytes", (double)cpu->ram_bytes);
    cJSON_AddNumberToObject(c, "ram_available_bytes", (double)cpu->ram_available_bytes);
    cJSON *v = cJSON_AddObjectToObject(root, "vulkan");
    cJSON_AddBoolToObject(v, "available", n_vk >= 0);
    if (n_vk < 0)
        cJSON_AddStringToObject(v, "reason", why);
    cJSON *arr = cJSON_AddArrayToObject(v, "devices");
    for (int i = 0; i < n_vk; i++) {
        const lt_vk_device_info *d = &vk[i];
        cJSON *o = cJSON_CreateObject();
        char id[32];
        snprintf(id, sizeof id, "vulkan:%d", d->index);
        cJSON_AddStringToObject(o, "id", id);
        cJSON_AddStringToObject(o, "name", d->name);
        cJSON_AddStringToObject(o, "type", d->type);
        cJSON_AddStringToObject(o, "driver", d->driver);
        cJSON_AddStringToObject(o, "api_version", d->api_version);
        cJSON_AddNumberToObject(o, "vendor_id", d->vendor_id);
        cJSON_AddNumberToObject(o, "device_id", d->device_id);
        cJSON *heaps = cJSON_AddArrayToObject(o, "heaps");
        for (int h = 0; h < d->n_heaps; h++) {
            cJSON *ho = cJSON_CreateObject();
            cJSON_AddNumberToObject(ho, "bytes", (double)d->heap_bytes[h]);
            cJSON_AddBoolToObject(ho, "device_local", d->heap_device_local[h]);
            cJSON_AddItemToArray(heaps, ho);
        }
        cJSON_AddNumberToObject(o, "max_allocation_bytes", (double)d->max_allocation_bytes);
        cJSON_AddNumberToObject(o, "max_storage_buffer_range",
                                (double)d->max_storage_buffer_range);
        cJSON_AddNumberToObject(o, "max_shared_memory_bytes", d->max_shared_memory_bytes);
        cJSON_AddNumberToObject(o, "max_workgroup_invocations", d->max_workgroup_invocations);
        cJSON_AddNumberToObject(o, "subgroup_size", d->subgroup_size);
        cJSON_AddBoolToObject(o, "fp16", d->fp16);
        cJSON_AddBoolToObject(o, "bf16", d->bf16);
        cJSON_AddBoolToObject(o, "int8", d->int8);
        cJSON_AddBoolToObject(o, "storage_16bit", d->int16_storage);
        cJSON_AddBoolToObject(o, "timestamps", d->timestamps);
        cJSON_AddBoolToObject(o, "cooperative_matrix", d->cooperative_matrix);
        cJSON_AddItemToArray(arr, o);
    }
    char *s = cJSON_Print(root);
    cJSON_Delete(root);
    if (!s)
        return LT_EXIT_FAIL;
    puts(s);
    free(s);
    return LT_EXIT_OK;
}

/* --check on each Vulkan device: a line per op (text) or an array (JSON). */
static int run_checks(const lt_vk_device_info *vk, int n_vk, const char *why, bool json)
{
    int failed = 0;
    cJSON *root = json ? cJSON_CreateObject() : NULL, *arr = NULL;
    if (json) {
        cJSON_AddBoolToObject(root, "vulkan_available", n_vk >= 0);
        if (n_vk < 0)
            cJSON_AddStringToObject(root, "reason", why);
        arr = cJSON_AddArrayToObject(root, "checks");
    } else if (n_vk <= 0) {
        printf("vulkan: %s: nothing to check\n", n_vk < 0 ? why : "no physical devices");
    }
    for (int i = 0; i < n_vk; i++) {
        char spec[32], err[1024] = "";
        snprintf(spec, sizeof spec, "vulkan:%d", vk[i].index);
        lt_devcheck r;
        memset(&r, 0, sizeof r);
        lt_device *dev = lt_device_open(spec, 0, err, sizeof err);
        lt_model_status ms = dev ? lt_devcheck_run(dev, &r, err, sizeof err) : LT_MODEL_ERR_DEVICE;
        lt_device_close(dev);
        bool ok = ms == LT_MODEL_OK && r.ok;
        failed += !ok;
        if (json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "id", spec);
            cJSON_AddStringToObject(o, "name", vk[i].name);
            cJSON_AddStringToObject(o, "driver", vk[i].driver);
            cJSON_AddBoolToObject(o, "pass", ok);
            if (ms != LT_MODEL_OK)
                cJSON_AddStringToObject(o, "error", err);
            else if (!r.ok)
                cJSON_AddStringToObject(o, "failed_op", r.failed);
            cJSON_AddNumberToObject(o, "seconds", r.seconds);
            cJSON *ops = cJSON_AddArrayToObject(o, "ops");
            for (int k = 0; k < r.n_ops; k++) {
                cJSON *op = cJSON_CreateObject();
                cJSON_AddStringToObject(op, "op", r.ops[k].name);
                cJSON_AddBoolToObject(op, "pass", r.ops[k].ok);
                cJSON_AddNumberToObject(op, "error", isfinite(r.ops[k].err) ? r.ops[k].err : -1);
                cJSON_AddNumberToObject(op, "tolerance", r.ops[k].tol);
                cJSON_AddItemToArray(ops, op);
            }
            cJSON_AddItemToArray(arr, o);
            continue;
        }
        printf("%s  ", spec);
        lt_cli_print_sanitized(stdout, vk[i].name, false);
        printf("  (");
        lt_cli_print_sanitized(stdout, vk[i].driver, false);
        printf(")\n");
        for (int k = 0; k < r.n_ops; k++)
            printf("  %-4s %-44s error %-9.3g tolerance %.0e\n", r.ops[k].ok ? "ok" : "FAIL",
                   r.ops[k].name, r.ops[k].err, r.ops[k].tol);
        if (ms != LT_MODEL_OK) {
            printf("  FAIL: the check could not run: ");
            lt_cli_print_sanitized(stdout, err, false);
            printf("\n");
        } else if (!r.ok)
            printf("  FAIL: disagrees with the CPU backend on %s (%d ops, %.2f s)\n", r.failed,
                   r.n_ops, r.seconds);
        else
            printf("  pass: %d ops agree with the CPU backend (%.2f s)\n", r.n_ops, r.seconds);
    }
    if (json) {
        cJSON_AddBoolToObject(root, "pass", failed == 0);
        char *s = cJSON_Print(root);
        cJSON_Delete(root);
        if (!s)
            return LT_EXIT_FAIL;
        puts(s);
        free(s);
    }
    return failed ? LT_EXIT_FAIL : LT_EXIT_OK;
}

int lt_cmd_devices(int argc, char **argv)
{
    lt_cli_common common;
    lt_cli_common_defaults(&common);
    bool check = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            print_help();
            return LT_EXIT_OK;
        }
        if (strcmp(argv[i], "--check") == 0) {
            check = true;
            continue;
        }
        int r = lt_cli_common_parse(&common, argc, argv, &i);
        if (r < 0)
            return LT_EXIT_USAGE;
        if (r == 0)
            return lt_cli_fail("devices", LT_EXIT_USAGE, "unknown option '%s' (see --help)",
                               argv[i]);
    }
    lt_cpu_info cpu;
    lt_cpu_info_get(&cpu);
    static lt_vk_device_info vk[MAX_VK];
    char why[512] = "";
    int n_vk = lt_vk_enumerate(vk, MAX_VK, why, sizeof why);
    if (check)
        return run_checks(vk, n_vk, why, common.json);
    if (common.json)
        return print_json(&cpu, vk, n_vk, why);
    print_text(&cpu, vk, n_vk, why);
    return LT_EXIT_OK;
}
