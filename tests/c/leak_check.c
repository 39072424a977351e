/*
 * A minimal correct host: what valgrind must report clean with default leak
 * checking and no suppression file (`make test-c` runs it with
 * --leak-check=full --errors-for-leak-kinds=definite,indirect,possible).
 *
 * It touches every piece of global state the library keeps: a cache created,
 * used (single-key calls, a batch, an iterator, a thread label, an error
 * message, a load) and freed, once from the main thread and once from a second thread,
 * with the main thread still alive at exit.
 */
#include "mapcache.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

static int failures;

#define EXPECT(cond)                                                            \
    do {                                                                        \
        if (!(cond)) {                                                          \
            fprintf(stderr, "%s:%d: failed: %s\n", __FILE__, __LINE__, #cond);  \
            failures++;                                                         \
        }                                                                       \
    } while (0)

static int32_t loader(void *ctx, const uint8_t *key, size_t key_len, mapcache_load_result *r) {
    (void)ctx;
    (void)key;
    (void)key_len;
    return mapcache_load_result_set(r, (const uint8_t *)"loaded", 6) == MAPCACHE_OK ? 0 : 1;
}

/* Creates a cache, uses every kind of call on it, and frees it. */
static void use_one_cache(const char *label) {
    mapcache_t *c = NULL;
    EXPECT(mapcache_new(NULL, &c) == MAPCACHE_OK);
    EXPECT(mapcache_set_thread_label(label) == MAPCACHE_OK);
    EXPECT(mapcache_put(c, (const uint8_t *)"k", 1, (const uint8_t *)"v", 1, NULL) == MAPCACHE_OK);
    uint8_t buf[8];
    size_t len = 0;
    EXPECT(mapcache_get(c, (const uint8_t *)"k", 1, buf, sizeof buf, &len) == MAPCACHE_OK);
    EXPECT(len == 1 && buf[0] == 'v');
    /* An error leaves a thread-local message. */
    EXPECT(mapcache_get(c, (const uint8_t *)"k", 1, NULL, 8, &len) == MAPCACHE_E_INVALID_ARG);
    EXPECT(strlen(mapcache_last_error()) > 0);
    size_t klens[2] = {1, 1};
    mapcache_status st[2];
    EXPECT(mapcache_delete_many(c, 2, (const uint8_t *)"kx", klens, st) == MAPCACHE_OK);
    mapcache_iter_t *it = NULL;
    EXPECT(mapcache_put(c, (const uint8_t *)"j", 1, (const uint8_t *)"w", 1, NULL) == MAPCACHE_OK);
    EXPECT(mapcache_iter_new(c, &it) == MAPCACHE_OK);
    const uint8_t *k, *v;
    size_t kl, vl;
    EXPECT(mapcache_iter_next(it, &k, &kl, &v, &vl) == MAPCACHE_OK);
    EXPECT(mapcache_iter_next(it, &k, &kl, &v, &vl) == MAPCACHE_NOT_FOUND);
    mapcache_iter_free(it);
    /* The cache calls: a TTL, a load (its result is a handle of its own arena),
       the counters. */
    EXPECT(mapcache_put_ttl(c, (const uint8_t *)"t", 1, (const uint8_t *)"v", 1, 1000) == MAPCACHE_OK);
    int32_t status = -1;
    EXPECT(mapcache_get_or_load(c, (const uint8_t *)"l", 1, loader, NULL, buf, sizeof buf, &len,
                                &status) == MAPCACHE_OK);
    EXPECT(len == 6 && status == 0);
    mapcache_stats stats;
    stats.struct_size = sizeof stats;
    EXPECT(mapcache_stats_get(c, &stats) == MAPCACHE_OK);
    mapcache_free(c);
}

static void *second_thread(void *arg) {
    (void)arg;
    use_one_cache("second");
    return NULL;
}

int main(void) {
    use_one_cache("main");
    pthread_t t;
    EXPECT(pthread_create(&t, NULL, second_thread, NULL) == 0);
    EXPECT(pthread_join(t, NULL) == 0);
    if (failures) {
        fprintf(stderr, "leak_check: %d check(s) failed\n", failures);
        return 1;
    }
    printf("leak_check: ok\n");
    return 0;
}
