/* test.h: a tiny unit-test harness. Each test is a function; CHECK records a failure with file
 * and line and continues; REQUIRE stops the test. main() runs a table of tests and prints one
 * "N passed, N failed" line; the exit status is non-zero when anything failed. */
#ifndef HC_TEST_H
#define HC_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name;
    void (*fn)(void);
} hc_test_t;

extern int hc_test_failures_; /* failures in the current test */

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "  %s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);             \
            hc_test_failures_++;                                                                   \
        }                                                                                          \
    } while (0)

#define REQUIRE(cond)                                                                              \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "  %s:%d: REQUIRE failed: %s\n", __FILE__, __LINE__, #cond);           \
            hc_test_failures_++;                                                                   \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                         \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ != b_) {                                                                            \
            fprintf(stderr, "  %s:%d: CHECK failed: %s == %s (%lld != %lld)\n", __FILE__,          \
                    __LINE__, #a, #b, a_, b_);                                                     \
            hc_test_failures_++;                                                                   \
        }                                                                                          \
    } while (0)

#define CHECK_EQ_STR(a, b)                                                                         \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0) {                                     \
            fprintf(stderr, "  %s:%d: CHECK failed: %s == %s (\"%s\" != \"%s\")\n", __FILE__,      \
                    __LINE__, #a, #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)");                     \
            hc_test_failures_++;                                                                   \
        }                                                                                          \
    } while (0)

/* Defines main(): runs every test of `tests` (or only the one named by argv[1]). */
#define HC_TEST_MAIN(tests)                                                                        \
    int hc_test_failures_;                                                                         \
    int main(int argc, char **argv)                                                                \
    {                                                                                              \
        int passed = 0, failed = 0;                                                                \
        for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {                            \
            if (argc > 1 && strcmp(argv[1], tests[i].name) != 0)                                   \
                continue;                                                                          \
            hc_test_failures_ = 0;                                                                 \
            tests[i].fn();                                                                         \
            if (hc_test_failures_) {                                                               \
                failed++;                                                                          \
                fprintf(stderr, "FAIL %s\n", tests[i].name);                                       \
            } else {                                                                               \
                passed++;                                                                          \
                fprintf(stderr, "ok   %s\n", tests[i].name);                                       \
            }                                                                                      \
        }                                                                                          \
        printf("%d passed, %d failed\n", passed, failed);                                          \
        return failed ? 1 : (passed ? 0 : 1);                                                      \
    }

#endif
