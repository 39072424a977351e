/*
 * The C suites' test framework (test_mapcache.c, test_cache.c): CHECK macros
 * that report the file, line and the thread's last error, and RUN, which prints
 * one line per test. Each suite is one translation unit that includes this
 * after mapcache.h and ends with
 *   printf("%d passed, %d failed\n", g_passed, g_failed);
 */
#ifndef MAPCACHE_TEST_HARNESS_H
#define MAPCACHE_TEST_HARNESS_H

#include "mapcache.h"

#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------- framework */

static int g_passed, g_failed, g_current_failed;

#define CHECK(cond)                                                                 \
    do {                                                                            \
        if (!(cond)) {                                                              \
            fprintf(stderr, "  %s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            g_current_failed = 1;                                                   \
        }                                                                           \
    } while (0)

/* Checks a status, printing the last error on mismatch. */
#define CHECK_ST(expr, want)                                                        \
    do {                                                                            \
        mapcache_status st_ = (expr);                                               \
        if (st_ != (want)) {                                                        \
            fprintf(stderr, "  %s:%d: %s\n    returned %d (%s), wanted %s\n    last error: %s\n", \
                    __FILE__, __LINE__, #expr, st_, mapcache_status_str(st_), #want, \
                    mapcache_last_error());                                         \
            g_current_failed = 1;                                                   \
        }                                                                           \
    } while (0)

/* Checks an error status and that the thread's last error contains `needle`. */
#define CHECK_ERR(expr, want, needle)                                               \
    do {                                                                            \
        CHECK_ST(expr, want);                                                       \
        if (strstr(mapcache_last_error(), (needle)) == NULL) {                      \
            fprintf(stderr, "  %s:%d: last error \"%s\" does not contain \"%s\"\n", \
                    __FILE__, __LINE__, mapcache_last_error(), (needle));           \
            g_current_failed = 1;                                                   \
        }                                                                           \
    } while (0)

#define RUN(test)                                                                   \
    do {                                                                            \
        g_current_failed = 0;                                                       \
        test();                                                                     \
        if (g_current_failed) {                                                     \
            g_failed++;                                                             \
            printf("FAIL %s\n", #test);                                             \
        } else {                                                                    \
            g_passed++;                                                             \
            printf("ok   %s\n", #test);                                             \
        }                                                                           \
        fflush(stdout);                                                             \
    } while (0)

/* A key or value given as a C string literal: pointer and length. */
#define S(s) (const uint8_t *)(s), strlen(s)

static inline mapcache_t *new_cache(uint32_t mode) {
    mapcache_config cfg;
    CHECK_ST(MAPCACHE_CONFIG_INIT(&cfg), MAPCACHE_OK);
    cfg.mode = mode;
    mapcache_t *c = NULL;
    CHECK_ST(mapcache_new(&cfg, &c), MAPCACHE_OK);
    CHECK(c != NULL);
    return c;
}

#endif /* MAPCACHE_TEST_HARNESS_H */
