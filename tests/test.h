/*
 * test.h - the tiny harness every lathe test program uses.
 *
 * CHECK(cond, fmt, ...) counts a pass or a failure (and prints the failure with its location);
 * test_summary() prints "N passed, N failed" and returns the exit code. A program that checks
 * nothing fails: a test that cannot fail is a defect.
 */
#ifndef LATHE_TEST_H
#define LATHE_TEST_H

#include <stdio.h>
#include <stdlib.h>

static int test_passed, test_failed, test_skipped;

#define CHECK(cond, ...)                                                                      \
    do {                                                                                      \
        if (cond) {                                                                           \
            test_passed++;                                                                    \
        } else {                                                                              \
            test_failed++;                                                                    \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                              \
            fprintf(stderr, __VA_ARGS__);                                                     \
            fputc('\n', stderr);                                                              \
        }                                                                                     \
    } while (0)

#define SKIP(...)                                                                             \
    do {                                                                                      \
        test_skipped++;                                                                       \
        printf("SKIP: ");                                                                     \
        printf(__VA_ARGS__);                                                                  \
        putchar('\n');                                                                        \
    } while (0)

static inline int test_summary(void)
{
    if (test_skipped)
        printf("%d passed, %d failed, %d skipped\n", test_passed, test_failed, test_skipped);
    else
        printf("%d passed, %d failed\n", test_passed, test_failed);
    fflush(stdout);
    if (test_failed)
        return 1;
    if (test_passed == 0 && test_skipped == 0) {
        printf("no checks ran\n");
        return 1;
    }
    return 0;
}

#endif
