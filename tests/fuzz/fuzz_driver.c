/*
 * fuzz_driver.c - runs a libFuzzer target without libFuzzer: main() feeds every file of the
 * folders (or files) named on the command line to LLVMFuzzerTestOneInput, each in an
 * allocation of exactly its size. Built with any compiler as a normal test, it replays the
 * committed seed corpora (tests/fuzz/corpus/<target>/) in every CI build, the sanitizer build
 * included, so an input that once crashed a target keeps being checked.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Runs the target on one file. Returns 0, or 1 when the file cannot be read. */
static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "FAIL: cannot open %s\n", path);
        return 1;
    }
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0) {
        fclose(f);
        return 1;
    }
    size_t n = (size_t)sb.st_size;
    uint8_t *buf = malloc(n ? n : 1);
    size_t got = buf ? fread(buf, 1, n, f) : 0;
    fclose(f);
    if (!buf || got != n) {
        free(buf);
        fprintf(stderr, "FAIL: cannot read %s\n", path);
        return 1;
    }
    LLVMFuzzerTestOneInput(buf, n);
    free(buf);
    return 0;
}

int main(int argc, char **argv)
{
    int n_inputs = 0, n_failed = 0;
    for (int i = 1; i < argc; i++) {
        struct stat sb;
        if (stat(argv[i], &sb) != 0) {
            fprintf(stderr, "FAIL: %s does not exist\n", argv[i]);
            n_failed++;
            continue;
        }
        if (!S_ISDIR(sb.st_mode)) {
            n_failed += run_file(argv[i]);
            n_inputs++;
            continue;
        }
        DIR *d = opendir(argv[i]);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[i], e->d_name);
            n_failed += run_file(path);
            n_inputs++;
        }
        if (d)
            closedir(d);
    }
    /* every input ran to its end without a crash or a sanitizer report */
    printf("%d passed, %d failed\n", n_inputs - n_failed, n_failed + (n_inputs == 0));
    return n_failed || n_inputs == 0;
}
