/*
 * A small C host of mapcache: several threads fill one cache concurrently, then
 * the main thread reads it back (copy-out, zero-copy and batch reads), walks it
 * with an iterator, and prints what it saw.
 *
 *   make demo-c     (builds against include/mapcache.h and libmapcache.so)
 */
#include "mapcache.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define THREADS 4
#define PER_THREAD 25000

/* Fails loudly with the library's own explanation. */
static void must(mapcache_status s, const char *what) {
    if (s != MAPCACHE_OK) {
        fprintf(stderr, "%s: %s (%s)\n", what, mapcache_status_str(s), mapcache_last_error());
        exit(1);
    }
}

struct filler {
    mapcache_t *cache;
    int id;
    size_t replaced;
};

static void *fill(void *arg) {
    struct filler *f = arg;
    char label[32], key[32], value[48];
    snprintf(label, sizeof label, "filler-%d", f->id);
    must(mapcache_set_thread_label(label), "mapcache_set_thread_label");
    for (int i = 0; i < PER_THREAD; i++) {
        /* Threads write disjoint keys, plus one key they all fight over. */
        int kn = snprintf(key, sizeof key, "t%d:k%06d", f->id, i);
        int vn = snprintf(value, sizeof value, "value %d of thread %d", i, f->id);
        must(mapcache_put(f->cache, (const uint8_t *)key, (size_t)kn, (const uint8_t *)value,
                          (size_t)vn, NULL),
             "mapcache_put");
        if (i % 1000 == 0) {
            bool replaced = false;
            must(mapcache_put(f->cache, (const uint8_t *)"contended", 9, (const uint8_t *)label,
                              strlen(label), &replaced),
                 "mapcache_put");
            f->replaced += replaced;
        }
    }
    mapcache_set_thread_label(NULL);
    return NULL;
}

/* mapcache_get_with callback: counts the bytes it was lent, copies nothing. */
static void measure(void *ctx, const uint8_t *value, size_t value_len) {
    (void)value;
    *(size_t *)ctx += value_len;
}

int main(void) {
    if (mapcache_abi_version() != MAPCACHE_ABI_VERSION) {
        fprintf(stderr, "libmapcache ABI %u, header ABI %u\n", mapcache_abi_version(),
                MAPCACHE_ABI_VERSION);
        return 1;
    }
    printf("mapcache %s (ABI %u)\n", mapcache_version(), mapcache_abi_version());

    mapcache_config cfg;
    must(MAPCACHE_CONFIG_INIT(&cfg), "mapcache_config_init");
    cfg.initial_capacity = THREADS * PER_THREAD;
    mapcache_t *cache = NULL;
    must(mapcache_new(&cfg, &cache), "mapcache_new");

    pthread_t threads[THREADS];
    struct filler fillers[THREADS];
    for (int t = 0; t < THREADS; t++) {
        fillers[t] = (struct filler){cache, t, 0};
        if (pthread_create(&threads[t], NULL, fill, &fillers[t]) != 0) return 1;
    }
    size_t replaced = 0;
    for (int t = 0; t < THREADS; t++) {
        pthread_join(threads[t], NULL);
        replaced += fillers[t].replaced;
    }
    size_t len = 0;
    must(mapcache_len(cache, &len), "mapcache_len");
    printf("%d threads wrote %d keys each: the cache holds %zu entries\n", THREADS, PER_THREAD, len);
    printf("the contended key was replaced %zu times\n", replaced);

    /* Copy-out read, growing the buffer on MAPCACHE_E_BUFFER_TOO_SMALL. */
    uint8_t small[4];
    size_t n = 0;
    mapcache_status s = mapcache_get(cache, (const uint8_t *)"contended", 9, small, sizeof small, &n);
    if (s == MAPCACHE_E_BUFFER_TOO_SMALL) {
        uint8_t *buf = malloc(n);
        must(mapcache_get(cache, (const uint8_t *)"contended", 9, buf, n, &n), "mapcache_get");
        printf("last writer of the contended key: %.*s (needed a %zu-byte buffer)\n", (int)n,
               (const char *)buf, n);
        free(buf);
    } else {
        must(s, "mapcache_get");
    }

    /* Read back every key each thread wrote, and check it. */
    size_t checked = 0, wrong = 0, lent = 0;
    char key[32], want[48];
    uint8_t got[64];
    for (int t = 0; t < THREADS; t++) {
        for (int i = 0; i < PER_THREAD; i++) {
            int kn = snprintf(key, sizeof key, "t%d:k%06d", t, i);
            int wn = snprintf(want, sizeof want, "value %d of thread %d", i, t);
            must(mapcache_get(cache, (const uint8_t *)key, (size_t)kn, got, sizeof got, &n),
                 "mapcache_get");
            wrong += n != (size_t)wn || memcmp(got, want, n) != 0;
            must(mapcache_get_with(cache, (const uint8_t *)key, (size_t)kn, measure, &lent),
                 "mapcache_get_with");
            checked++;
        }
    }
    printf("read back %zu keys: %zu wrong; %zu value bytes lent zero-copy\n", checked, wrong, lent);

    /* One batch call for several keys, one of them absent. */
    const char keys[] = "t0:k000000t3:k024999nope";
    size_t key_lens[3] = {10, 10, 4}, value_lens[3];
    mapcache_status statuses[3];
    uint8_t values[128];
    must(mapcache_get_many(cache, 3, (const uint8_t *)keys, key_lens, values, sizeof values,
                           value_lens, statuses),
         "mapcache_get_many");
    size_t off = 0;
    for (int i = 0; i < 3; i++) {
        if (statuses[i] == MAPCACHE_OK) {
            printf("batch[%d] %.*s = \"%.*s\"\n", i, (int)key_lens[i], keys + 10 * i,
                   (int)value_lens[i], (const char *)values + off);
            off += value_lens[i];
        } else {
            printf("batch[%d] %.*s: %s\n", i, (int)key_lens[i], keys + 10 * i,
                   mapcache_status_str(statuses[i]));
        }
    }

    /* Walk the whole cache with an iterator. */
    mapcache_iter_t *it = NULL;
    must(mapcache_iter_new(cache, &it), "mapcache_iter_new");
    const uint8_t *k, *v;
    size_t kl, vl, seen = 0, per_thread[THREADS] = {0};
    while ((s = mapcache_iter_next(it, &k, &kl, &v, &vl)) == MAPCACHE_OK) {
        seen++;
        if (kl > 1 && k[0] == 't' && k[1] >= '0' && k[1] < '0' + THREADS) per_thread[k[1] - '0']++;
    }
    if (s != MAPCACHE_NOT_FOUND) must(s, "mapcache_iter_next");
    mapcache_iter_free(it);
    printf("the iterator saw %zu entries:", seen);
    for (int t = 0; t < THREADS; t++) printf(" thread %d: %zu", t, per_thread[t]);
    printf("\n");

    /* A mistake, reported rather than crashing. */
    s = mapcache_get(cache, NULL, 5, got, sizeof got, &n);
    printf("a NULL key with length 5 gives %s\n  \"%s\"\n", mapcache_status_str(s),
           mapcache_last_error());

    mapcache_free(cache);
    return wrong == 0 && seen == len ? 0 : 1;
}
