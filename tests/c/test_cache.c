/*
 * The C suite of the cache features (ABI 3): the config's cache fields and an
 * ABI 2 host, TTL with the manual clock on every read path, the singleflight
 * loader (once under 16 threads, its status to every waiter, nothing cached on
 * failure, misuse of its result), the statistics, and the bounds of a bounded
 * cache.
 *
 * Built and run by `make test-c` like test_mapcache.c (strict C11, linked
 * against libmapcache.so and libmapcache.a, under valgrind: zero errors, zero
 * leaks). No test sleeps: expiry is driven by the manual clock, and threads
 * meet on condition variables.
 */
/* The exclusive-mode test holds a write flag with a debug hook. */
#define MAPCACHE_TESTING
#include "mapcache.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* A cache made from `cfg` (already initialised). */
static mapcache_t *make(const mapcache_config *cfg) {
    mapcache_t *c = NULL;
    CHECK_ST(mapcache_new(cfg, &c), MAPCACHE_OK);
    CHECK(c != NULL);
    return c;
}

/* A cache with the manual clock and the given default TTL. */
static mapcache_t *manual_cache(uint64_t default_ttl_ms) {
    mapcache_config cfg;
    CHECK_ST(MAPCACHE_CONFIG_INIT(&cfg), MAPCACHE_OK);
    cfg.clock = MAPCACHE_CLOCK_MANUAL;
    cfg.default_ttl_ms = default_ttl_ms;
    return make(&cfg);
}

static mapcache_stats stats_of(mapcache_t *c) {
    mapcache_stats s;
    memset(&s, 0xAB, sizeof s);
    s.struct_size = sizeof s;
    CHECK_ST(mapcache_stats_get(c, &s), MAPCACHE_OK);
    return s;
}

/* Whether `key` is present, by mapcache_get. */
static int present(mapcache_t *c, const char *key) {
    uint8_t buf[64];
    size_t len = 0;
    mapcache_status st = mapcache_get(c, (const uint8_t *)key, strlen(key), buf, sizeof buf, &len);
    CHECK(st == MAPCACHE_OK || st == MAPCACHE_NOT_FOUND);
    return st == MAPCACHE_OK;
}

/* ------------------------------------------------------------------ config */

/* The size of ABI 2's mapcache_config: what a host built against it passes. */
#define ABI2_CONFIG_SIZE (offsetof(mapcache_config, seed) + sizeof(uint64_t))
#define GUARD 64

static void test_config_cache_fields(void) {
    CHECK(mapcache_abi_version() == 3 && MAPCACHE_ABI_VERSION == 3);
    CHECK(ABI2_CONFIG_SIZE == 40);
    CHECK(offsetof(mapcache_config, max_entries) == ABI2_CONFIG_SIZE);
    CHECK(offsetof(mapcache_config, gpu_threshold) == 72); /* ABI 3's struct, then the GPU fields */
    CHECK(sizeof(mapcache_config) == 96); /* no implicit padding */
    mapcache_config cfg;
    memset(&cfg, 0xAB, sizeof cfg);
    CHECK_ST(MAPCACHE_CONFIG_INIT(&cfg), MAPCACHE_OK);
    CHECK(cfg.max_entries == 0 && cfg.max_bytes == 0 && cfg.default_ttl_ms == 0);
    CHECK(cfg.clock == MAPCACHE_CLOCK_SYSTEM && cfg.reserved == 0);

    mapcache_t *c = NULL;
#define BAD(assign, needle)                                                           \
    do {                                                                              \
        CHECK_ST(MAPCACHE_CONFIG_INIT(&cfg), MAPCACHE_OK);                            \
        assign;                                                                       \
        c = (mapcache_t *)&cfg;                                                       \
        CHECK_ERR(mapcache_new(&cfg, &c), MAPCACHE_E_INVALID_CONFIG, needle);         \
        CHECK(c == NULL);                                                             \
    } while (0)
    BAD(cfg.clock = 2, "cfg->clock = 2");
    BAD(cfg.reserved = 1, "cfg->reserved = 1");
    /* The bounds are checked together with the shard count they are shared by;
       the message names the host's field, after the function, as every
       config error's does. */
    BAD((cfg.shards = 8, cfg.max_entries = 4), "mapcache_new: cfg->max_entries = 4");
    /* A byte bound whose share per shard cannot hold the smallest entry. */
    BAD(cfg.max_bytes = 1, "mapcache_new: cfg->max_bytes = 1");
    BAD((cfg.shards = 64, cfg.max_bytes = 64 * 16), "mapcache_new: cfg->max_bytes = 1024");
    /* No header ever had a struct that ends inside a field. */
    BAD(cfg.struct_size = ABI2_CONFIG_SIZE + 8, "is not the size of any mapcache_config");
#undef BAD
    CHECK_ERR(mapcache_config_init(&cfg, sizeof cfg - 1), MAPCACHE_E_INVALID_ARG,
              "is not the size of any mapcache_config");
}

/* A host built against the ABI 2 header: its 40-byte struct and whatever its
   stack holds after it. The library writes and reads those 40 bytes only, and
   the cache gets the defaults of the cache fields: unbounded, no TTL, the
   system clock. */
static void test_abi2_host(void) {
    unsigned char host[ABI2_CONFIG_SIZE + GUARD];
    memset(host, 0xAB, sizeof host);
    mapcache_config *cfg = (mapcache_config *)(void *)host;
    CHECK_ST(mapcache_config_init(cfg, ABI2_CONFIG_SIZE), MAPCACHE_OK);
    int guard_intact = 1;
    for (size_t i = ABI2_CONFIG_SIZE; i < sizeof host; i++) guard_intact &= host[i] == 0xAB;
    CHECK(guard_intact);
    CHECK(cfg->struct_size == ABI2_CONFIG_SIZE);
    /* As cache fields, the guard's bytes would be refused (clock, reserved) or
       would bound and expire everything: they are not read. */
    mapcache_t *c = make(cfg);
    char key[16];
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "k%d", i);
        CHECK_ST(mapcache_put(c, (const uint8_t *)key, strlen(key), S("v"), NULL), MAPCACHE_OK);
    }
    size_t len = 0;
    CHECK_ST(mapcache_len(c, &len), MAPCACHE_OK);
    CHECK(len == 5000); /* unbounded */
    mapcache_stats s = stats_of(c);
    CHECK(s.evictions == 0 && s.expirations == 0 && s.inserts == 5000);
    /* The system clock: it cannot be moved. */
    CHECK_ERR(mapcache_clock_advance(c, 1), MAPCACHE_E_INVALID_ARG, "MAPCACHE_CLOCK_SYSTEM");
    CHECK(present(c, "k0") && present(c, "k4999"));
    mapcache_free(c);
}

/* --------------------------------------------------------------------- TTL */

static int g_with_calls;
static void count_with(void *ctx, const uint8_t *value, size_t value_len) {
    (void)ctx;
    (void)value;
    (void)value_len;
    g_with_calls++;
}

static void *miss_code(int64_t code) { return (void *)(intptr_t)(code == -MAPCACHE_NOT_FOUND ? 1 : 2); }
static void *make_hit(const uint8_t *value, size_t value_len) {
    (void)value;
    (void)value_len;
    return (void *)(intptr_t)3;
}

/* The keys of the read paths, one each, so that each path meets an expired
   entry no other call has removed yet. */
static const char *const READ_PATHS[] = {"get", "value", "object", "with", "many", "contains",
                                         "iter", "cas", "insert", "load"};
#define N_PATHS (sizeof READ_PATHS / sizeof READ_PATHS[0])

static int32_t load_fresh(void *ctx, const uint8_t *key, size_t key_len, mapcache_load_result *r) {
    (void)key;
    (void)key_len;
    (*(int *)ctx)++;
    return mapcache_load_result_set(r, S("fresh")) == MAPCACHE_OK ? 0 : 99;
}

/* Every read path of one key: 1 where it saw the entry, 0 where it saw none. */
static void read_paths(mapcache_t *c, int seen[N_PATHS], int *loads) {
    uint8_t buf[64];
    size_t len = 0;
    const char *k;
    k = READ_PATHS[0];
    mapcache_status st = mapcache_get(c, (const uint8_t *)k, strlen(k), buf, sizeof buf, &len);
    seen[0] = st == MAPCACHE_OK;
    k = READ_PATHS[1];
    seen[1] = mapcache_get_value(c, (const uint8_t *)k, strlen(k), buf, sizeof buf) >= 0;
    k = READ_PATHS[2];
    mapcache_getter getter = {c, make_hit, miss_code};
    seen[2] = mapcache_get_object(&getter, (const uint8_t *)k, (uint32_t)strlen(k)) == (void *)3;
    k = READ_PATHS[3];
    g_with_calls = 0;
    st = mapcache_get_with(c, (const uint8_t *)k, strlen(k), count_with, NULL);
    seen[3] = st == MAPCACHE_OK && g_with_calls == 1;
    CHECK(st == MAPCACHE_OK ? g_with_calls == 1 : g_with_calls == 0);
    k = READ_PATHS[4];
    size_t klen = strlen(k), vlen = 0;
    mapcache_status kst = -1;
    CHECK_ST(mapcache_get_many(c, 1, (const uint8_t *)k, &klen, buf, sizeof buf, &vlen, &kst),
             MAPCACHE_OK);
    seen[4] = kst == MAPCACHE_OK;
    k = READ_PATHS[5];
    bool in = false;
    CHECK_ST(mapcache_contains(c, (const uint8_t *)k, strlen(k), &in), MAPCACHE_OK);
    seen[5] = in;
    k = READ_PATHS[6];
    seen[6] = 0;
    mapcache_iter_t *it = NULL;
    CHECK_ST(mapcache_iter_new(c, &it), MAPCACHE_OK);
    const uint8_t *ik, *iv;
    size_t ikl, ivl;
    while (mapcache_iter_next(it, &ik, &ikl, &iv, &ivl) == MAPCACHE_OK)
        if (ikl == strlen(k) && memcmp(ik, k, ikl) == 0) seen[6] = 1;
    mapcache_iter_free(it);
    k = READ_PATHS[7];
    bool swapped = false;
    st = mapcache_compare_and_swap(c, (const uint8_t *)k, strlen(k), S("v"), S("w"), &swapped);
    CHECK(st == MAPCACHE_OK || st == MAPCACHE_NOT_FOUND);
    seen[7] = st == MAPCACHE_OK && swapped;
    k = READ_PATHS[8];
    bool inserted = true;
    CHECK_ST(mapcache_get_or_insert(c, (const uint8_t *)k, strlen(k), S("new"), buf, sizeof buf,
                                    &len, &inserted),
             MAPCACHE_OK);
    seen[8] = !inserted;
    k = READ_PATHS[9];
    int before = *loads;
    CHECK_ST(mapcache_get_or_load(c, (const uint8_t *)k, strlen(k), load_fresh, loads, buf,
                                  sizeof buf, &len, NULL),
             MAPCACHE_OK);
    seen[9] = *loads == before;
}

static void put_paths(mapcache_t *c, uint64_t ttl_ms) {
    for (size_t i = 0; i < N_PATHS; i++)
        CHECK_ST(mapcache_put_ttl(c, (const uint8_t *)READ_PATHS[i], strlen(READ_PATHS[i]),
                                  S("v"), ttl_ms),
                 MAPCACHE_OK);
}

/* An entry with a TTL is returned by every read path until its deadline, and by
   none from the deadline on (the manual clock moves; nothing sleeps). */
static void test_ttl_every_read_path(void) {
    mapcache_t *c = manual_cache(0);
    int loads = 0, seen[N_PATHS];
    put_paths(c, 100);
    CHECK_ST(mapcache_clock_advance(c, 99), MAPCACHE_OK);
    read_paths(c, seen, &loads);
    for (size_t i = 0; i < N_PATHS; i++) {
        if (!seen[i]) fprintf(stderr, "  before the deadline, %s missed\n", READ_PATHS[i]);
        CHECK(seen[i]);
    }
    CHECK(loads == 0);

    put_paths(c, 100); /* again: the CAS replaced one value (and reset its TTL) */
    CHECK_ST(mapcache_clock_advance(c, 100), MAPCACHE_OK);
    read_paths(c, seen, &loads);
    for (size_t i = 0; i < N_PATHS; i++) {
        if (seen[i]) fprintf(stderr, "  after the deadline, %s saw the expired entry\n", READ_PATHS[i]);
        CHECK(!seen[i]);
    }
    CHECK(loads == 1);
    /* get_or_insert and get_or_load stored new values, which never expire. */
    CHECK_ST(mapcache_clock_advance(c, UINT64_MAX), MAPCACHE_OK);
    CHECK(present(c, "insert") && present(c, "load"));
    CHECK(!present(c, "get"));
    mapcache_stats s = stats_of(c);
    CHECK(s.expirations >= 1);
    CHECK(s.inserts - s.evictions - s.expirations - s.deletes == s.entries);
    mapcache_free(c);
}

/* put_ttl 0 never expires, whatever the default; put and every other write take
   the default. */
static void test_ttl_zero_and_default(void) {
    mapcache_t *c = manual_cache(50);
    CHECK_ST(mapcache_put_ttl(c, S("forever"), S("v"), 0), MAPCACHE_OK);
    CHECK_ST(mapcache_put(c, S("default"), S("v"), NULL), MAPCACHE_OK);
    CHECK_ST(mapcache_put_ttl(c, S("long"), S("v"), 1000), MAPCACHE_OK);
    size_t klens[1] = {7};
    mapcache_status st[1];
    size_t vlens[1] = {1};
    CHECK_ST(mapcache_put_many(c, 1, (const uint8_t *)"batched", klens, (const uint8_t *)"v", vlens, st),
             MAPCACHE_OK);
    CHECK(st[0] == MAPCACHE_OK);
    CHECK_ST(mapcache_clock_advance(c, 49), MAPCACHE_OK);
    CHECK(present(c, "forever") && present(c, "default") && present(c, "long") && present(c, "batched"));
    CHECK_ST(mapcache_clock_advance(c, 1), MAPCACHE_OK);
    CHECK(present(c, "forever") && !present(c, "default") && present(c, "long") && !present(c, "batched"));
    /* A put over an entry moves its deadline: the new value has the new TTL. */
    CHECK_ST(mapcache_put_ttl(c, S("forever"), S("w"), 10), MAPCACHE_OK);
    CHECK_ST(mapcache_put_ttl(c, S("long"), S("w"), 0), MAPCACHE_OK);
    CHECK_ST(mapcache_clock_advance(c, 10), MAPCACHE_OK);
    CHECK(!present(c, "forever") && present(c, "long"));
    CHECK_ST(mapcache_clock_advance(c, UINT64_MAX), MAPCACHE_OK); /* saturates */
    CHECK(present(c, "long"));
    /* Misuse. */
    CHECK_ERR(mapcache_put_ttl(NULL, S("k"), S("v"), 1), MAPCACHE_E_INVALID_ARG,
              "mapcache_put_ttl: cache is NULL");
    CHECK_ERR(mapcache_put_ttl(c, NULL, 3, S("v"), 1), MAPCACHE_E_INVALID_ARG,
              "mapcache_put_ttl: key is NULL but key_len is 3");
    CHECK_ERR(mapcache_clock_advance(NULL, 1), MAPCACHE_E_INVALID_ARG,
              "mapcache_clock_advance: cache is NULL");
    mapcache_free(c);
    CHECK_ERR(mapcache_clock_advance(c, 1), MAPCACHE_E_INVALID_HANDLE, "freed");
    CHECK_ERR(mapcache_put_ttl(c, S("k"), S("v"), 1), MAPCACHE_E_INVALID_HANDLE, "freed");
}

/* ------------------------------------------------------------------ loader */

#define LOAD_THREADS 16

/* The loader's side of the hot-key tests: it waits, without sleeping, until
   every thread has announced it is about to call, and then until the other
   threads have all joined its load (mapcache_debug_load_waiters), so that all
   of them get its outcome. */
struct hot {
    mapcache_t *cache;
    pthread_mutex_t lock;
    pthread_cond_t all_in;
    int announced;
    int runs;          /* loader calls */
    int32_t fail_with; /* 0: the loader succeeds */
    /* per thread: */
    mapcache_status status[LOAD_THREADS];
    int32_t loader_status[LOAD_THREADS];
    char value[LOAD_THREADS][16];
    size_t len[LOAD_THREADS];
    char message[LOAD_THREADS][128];
};

static int32_t hot_loader(void *ctx, const uint8_t *key, size_t key_len, mapcache_load_result *r) {
    struct hot *h = ctx;
    pthread_mutex_lock(&h->lock);
    int run = ++h->runs;
    while (h->announced < LOAD_THREADS) pthread_cond_wait(&h->all_in, &h->lock);
    pthread_mutex_unlock(&h->lock);
    /* Each other thread misses (nothing is stored while this runs) and joins
       this load. */
    for (;;) {
        size_t waiters = 0;
        CHECK_ST(mapcache_debug_load_waiters(h->cache, S("hot"), &waiters), MAPCACHE_OK);
        /* (A later run, the retry below, runs alone.) */
        if (waiters >= LOAD_THREADS - 1 || run > 1) break;
        sched_yield();
    }
    if (key_len != 3 || memcmp(key, "hot", 3) != 0) return 7;
    if (h->fail_with) {
        CHECK_ST(mapcache_load_result_set(r, S("discarded")), MAPCACHE_OK);
        CHECK_ST(mapcache_load_result_set_error(r, "backend down"), MAPCACHE_OK);
        return h->fail_with;
    }
    CHECK_ST(mapcache_load_result_set(r, S("first")), MAPCACHE_OK);
    CHECK_ST(mapcache_load_result_set(r, S("loaded")), MAPCACHE_OK); /* replaces */
    return 0;
}

struct hot_arg {
    struct hot *h;
    int i;
};

static void *hot_thread(void *p) {
    struct hot_arg *a = p;
    struct hot *h = a->h;
    pthread_mutex_lock(&h->lock);
    h->announced++;
    pthread_cond_broadcast(&h->all_in);
    pthread_mutex_unlock(&h->lock);
    h->loader_status[a->i] = -12345;
    h->status[a->i] = mapcache_get_or_load(h->cache, S("hot"), hot_loader, h,
                                           (uint8_t *)h->value[a->i], sizeof h->value[a->i],
                                           &h->len[a->i], &h->loader_status[a->i]);
    snprintf(h->message[a->i], sizeof h->message[a->i], "%s", mapcache_last_error());
    return NULL;
}

static void run_hot(struct hot *h) {
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->all_in, NULL);
    pthread_t t[LOAD_THREADS];
    struct hot_arg args[LOAD_THREADS];
    for (int i = 0; i < LOAD_THREADS; i++) {
        args[i].h = h;
        args[i].i = i;
        CHECK(pthread_create(&t[i], NULL, hot_thread, &args[i]) == 0);
    }
    for (int i = 0; i < LOAD_THREADS; i++) CHECK(pthread_join(t[i], NULL) == 0);
    pthread_cond_destroy(&h->all_in);
    pthread_mutex_destroy(&h->lock);
}

/* 16 threads miss on one key at once: the loader runs once, and every thread
   gets its value. */
static void test_loader_runs_once(void) {
    static struct hot h;
    memset(&h, 0, sizeof h);
    h.cache = new_cache(MAPCACHE_MODE_CONCURRENT);
    run_hot(&h);
    CHECK(h.runs == 1);
    for (int i = 0; i < LOAD_THREADS; i++) {
        CHECK_ST(h.status[i], MAPCACHE_OK);
        CHECK(h.loader_status[i] == 0);
        CHECK(h.len[i] == 6 && memcmp(h.value[i], "loaded", 6) == 0);
    }
    mapcache_stats s = stats_of(h.cache);
    CHECK(s.load_successes == 1 && s.load_failures == 0);
    CHECK(s.misses == LOAD_THREADS && s.hits == 0 && s.inserts == 1 && s.entries == 1);
    /* Cached: the next call does not load. */
    uint8_t buf[16];
    size_t len = 0;
    CHECK_ST(mapcache_get(h.cache, S("hot"), buf, sizeof buf, &len), MAPCACHE_OK);
    CHECK(len == 6 && memcmp(buf, "loaded", 6) == 0);
    mapcache_free(h.cache);
}

/* The loader fails: every thread gets MAPCACHE_E_LOADER with its status and
   message, nothing is cached, and the next call loads again. */
static void test_loader_failure_reaches_every_waiter(void) {
    static struct hot h;
    memset(&h, 0, sizeof h);
    h.cache = new_cache(MAPCACHE_MODE_CONCURRENT);
    h.fail_with = 42;
    run_hot(&h);
    CHECK(h.runs == 1);
    for (int i = 0; i < LOAD_THREADS; i++) {
        CHECK_ST(h.status[i], MAPCACHE_E_LOADER);
        CHECK(h.loader_status[i] == 42);
        CHECK(h.len[i] == 0);
        if (strcmp(h.message[i], "mapcache_get_or_load: the loader returned 42: backend down") != 0)
            fprintf(stderr, "  thread %d: message \"%s\"\n", i, h.message[i]);
        CHECK(strcmp(h.message[i], "mapcache_get_or_load: the loader returned 42: backend down") == 0);
    }
    mapcache_stats s = stats_of(h.cache);
    CHECK(s.load_failures == 1 && s.load_successes == 0);
    CHECK(s.inserts == 0 && s.entries == 0);
    CHECK(!present(h.cache, "hot"));
    /* The next call retries, and may succeed. */
    h.fail_with = 0;
    h.announced = LOAD_THREADS;
    int runs = h.runs;
    char buf[16];
    size_t len = 0;
    int32_t status = -1;
    CHECK_ST(mapcache_get_or_load(h.cache, S("hot"), hot_loader, &h, (uint8_t *)buf, sizeof buf,
                                  &len, &status),
             MAPCACHE_OK);
    CHECK(h.runs == runs + 1 && status == 0 && len == 6 && memcmp(buf, "loaded", 6) == 0);
    CHECK(present(h.cache, "hot"));
    mapcache_free(h.cache);
}

/* What the loader tests below keep across the call. */
struct stash {
    mapcache_load_result *result;
    int calls;
    int32_t ret;
    const char *value; /* NULL: set none */
    mapcache_t *cache; /* used from inside the loader */
    uint8_t key[8];
    size_t key_len;
};

static int32_t stash_loader(void *ctx, const uint8_t *key, size_t key_len, mapcache_load_result *r) {
    struct stash *s = ctx;
    s->result = r;
    s->calls++;
    s->key_len = key_len < sizeof s->key ? key_len : sizeof s->key;
    memcpy(s->key, key, s->key_len);
    if (s->value) CHECK_ST(mapcache_load_result_set(r, S(s->value)), MAPCACHE_OK);
    if (s->cache) {
        /* The loader may use the cache: no lock is held. The key is still
           absent while it loads. */
        CHECK_ST(mapcache_put(s->cache, S("side"), S("effect"), NULL), MAPCACHE_OK);
        CHECK(!present(s->cache, "k"));
    }
    return s->ret;
}

static void test_loader_results_and_misuse(void) {
    mapcache_t *c = new_cache(MAPCACHE_MODE_CONCURRENT);
    struct stash s;
    memset(&s, 0, sizeof s);
    uint8_t buf[8];
    size_t len = 99;
    int32_t status = -1;

    /* A loader that sets nothing and returns 0 caches the empty value; it got
       the key and ctx, and may use the cache. */
    s.cache = c;
    CHECK_ST(mapcache_get_or_load(c, S("k"), stash_loader, &s, buf, sizeof buf, &len, &status),
             MAPCACHE_OK);
    CHECK(s.calls == 1 && len == 0 && status == 0);
    CHECK(s.key_len == 1 && s.key[0] == 'k');
    CHECK(present(c, "k") && present(c, "side"));
    s.cache = NULL;

    /* The result is dead once the loader returned: detected, not undefined. */
    CHECK_ERR(mapcache_load_result_set(s.result, S("late")), MAPCACHE_E_INVALID_HANDLE,
              "result was used after its loader returned");
    CHECK_ERR(mapcache_load_result_set_error(s.result, "late"), MAPCACHE_E_INVALID_HANDLE,
              "after its loader returned");
    /* ... even once a later load reuses its memory. */
    mapcache_load_result *first = s.result;
    s.value = "v2";
    CHECK_ST(mapcache_get_or_load(c, S("k2"), stash_loader, &s, buf, sizeof buf, &len, NULL),
             MAPCACHE_OK);
    CHECK(s.calls == 2 && len == 2 && memcmp(buf, "v2", 2) == 0);
    CHECK(s.result != first); /* a handle value is never given out twice */
    CHECK_ERR(mapcache_load_result_set(first, S("late")), MAPCACHE_E_INVALID_HANDLE, "after");
    CHECK_ERR(mapcache_load_result_set(NULL, S("x")), MAPCACHE_E_INVALID_ARG,
              "mapcache_load_result_set: result is NULL");
    CHECK_ERR(mapcache_load_result_set_error(NULL, "x"), MAPCACHE_E_INVALID_ARG, "result is NULL");
    CHECK_ERR(mapcache_load_result_set((mapcache_load_result *)(void *)c, S("x")),
              MAPCACHE_E_INVALID_HANDLE, "foreign");
    CHECK_ERR(mapcache_load_result_set((mapcache_load_result *)(void *)&s, S("x")),
              MAPCACHE_E_INVALID_HANDLE, "foreign");

    /* A present key: the loader is not called. */
    CHECK_ST(mapcache_get_or_load(c, S("k2"), stash_loader, &s, buf, sizeof buf, &len, &status),
             MAPCACHE_OK);
    CHECK(s.calls == 2 && len == 2 && status == 0);

    /* BUFFER_TOO_SMALL: the value is cached, its length reported. */
    s.value = "a longer value";
    CHECK_ST(mapcache_get_or_load(c, S("big"), stash_loader, &s, buf, 4, &len, &status),
             MAPCACHE_E_BUFFER_TOO_SMALL);
    CHECK(s.calls == 3 && len == 14 && status == 0);
    char big[32];
    CHECK_ST(mapcache_get(c, S("big"), (uint8_t *)big, sizeof big, &len), MAPCACHE_OK);
    CHECK(len == 14 && memcmp(big, "a longer value", 14) == 0);
    CHECK_ST(mapcache_get_or_load(c, S("big"), stash_loader, &s, NULL, 0, &len, NULL),
             MAPCACHE_E_BUFFER_TOO_SMALL);
    CHECK(s.calls == 3 && len == 14);

    /* A failure without a message; loader_status NULL is allowed. */
    s.value = "ignored";
    s.ret = -3;
    CHECK_ERR(mapcache_get_or_load(c, S("f"), stash_loader, &s, buf, sizeof buf, &len, &status),
              MAPCACHE_E_LOADER, "mapcache_get_or_load: the loader returned -3");
    CHECK(status == -3 && len == 0);
    CHECK_ST(mapcache_get_or_load(c, S("f"), stash_loader, &s, buf, sizeof buf, &len, NULL),
             MAPCACHE_E_LOADER);
    CHECK(s.calls == 5 && !present(c, "f"));

    /* Bad arguments: nothing is loaded, out-pointers reset. */
    len = 5;
    status = 5;
    CHECK_ERR(mapcache_get_or_load(c, S("n"), NULL, NULL, buf, sizeof buf, &len, &status),
              MAPCACHE_E_INVALID_ARG, "mapcache_get_or_load: loader is NULL");
    CHECK(len == 0 && status == 0);
    CHECK_ERR(mapcache_get_or_load(c, S("n"), stash_loader, &s, buf, sizeof buf, NULL, NULL),
              MAPCACHE_E_INVALID_ARG, "out_len is NULL");
    CHECK_ERR(mapcache_get_or_load(c, S("n"), stash_loader, &s, NULL, 4, &len, NULL),
              MAPCACHE_E_INVALID_ARG, "buf is NULL but buf_cap is 4");
    CHECK_ERR(mapcache_get_or_load(NULL, S("n"), stash_loader, &s, buf, sizeof buf, &len, NULL),
              MAPCACHE_E_INVALID_ARG, "cache is NULL");
    CHECK(s.calls == 5 && !present(c, "n"));
    mapcache_free(c);
    CHECK_ERR(mapcache_get_or_load(c, S("n"), stash_loader, &s, buf, sizeof buf, &len, &status),
              MAPCACHE_E_INVALID_HANDLE, "freed");
    CHECK(s.calls == 5);
}

/* A loader that asks for its own key on its own thread gets INVALID_ARG
   instead of waiting for itself. */
static int32_t recursive_loader(void *ctx, const uint8_t *key, size_t key_len,
                                mapcache_load_result *r) {
    mapcache_t *c = ctx;
    uint8_t buf[8];
    size_t len = 7;
    int32_t status = 7;
    mapcache_status st =
        mapcache_get_or_load(c, key, key_len, recursive_loader, ctx, buf, sizeof buf, &len, &status);
    /* An argument error: its message starts with the function, as every
       argument error's does. */
    int ok = st == MAPCACHE_E_INVALID_ARG && len == 0 && status == 0 &&
             strncmp(mapcache_last_error(), "mapcache_get_or_load: ", 22) == 0 &&
             strstr(mapcache_last_error(), "its own loader") != NULL;
    CHECK(ok);
    CHECK_ST(mapcache_load_result_set(r, S("outer")), MAPCACHE_OK);
    return ok ? 0 : 1;
}

static void test_loader_asking_for_its_own_key(void) {
    mapcache_t *c = new_cache(MAPCACHE_MODE_CONCURRENT);
    char buf[8];
    size_t len = 0;
    CHECK_ST(mapcache_get_or_load(c, S("self"), recursive_loader, c, (uint8_t *)buf, sizeof buf,
                                  &len, NULL),
             MAPCACHE_OK);
    CHECK(len == 5 && memcmp(buf, "outer", 5) == 0);
    mapcache_free(c);
}

/* A loader that hands the result to another thread, which sets it while the
   loader waits: allowed (any thread, during the call). */
static void *set_from_thread(void *p) {
    return (void *)(intptr_t)mapcache_load_result_set(p, S("from a worker"));
}

static int32_t delegating_loader(void *ctx, const uint8_t *key, size_t key_len,
                                 mapcache_load_result *r) {
    (void)ctx;
    (void)key;
    (void)key_len;
    pthread_t t;
    void *st = (void *)(intptr_t)-1;
    if (pthread_create(&t, NULL, set_from_thread, r) != 0) return 1;
    pthread_join(t, &st);
    return (intptr_t)st == MAPCACHE_OK ? 0 : 2;
}

static void test_loader_result_from_another_thread(void) {
    mapcache_t *c = new_cache(MAPCACHE_MODE_CONCURRENT);
    char buf[32];
    size_t len = 0;
    CHECK_ST(mapcache_get_or_load(c, S("k"), delegating_loader, NULL, (uint8_t *)buf, sizeof buf,
                                  &len, NULL),
             MAPCACHE_OK);
    CHECK(len == 13 && memcmp(buf, "from a worker", 13) == 0);
    mapcache_free(c);
}

/* In exclusive mode a load is a write: it follows that mode's contract. */
struct collide_load {
    mapcache_t *cache;
    struct stash stash;
    mapcache_status status;
};

static void *load_while_held(void *p) {
    struct collide_load *cl = p;
    uint8_t buf[8];
    size_t len = 0;
    cl->status = mapcache_get_or_load(cl->cache, S("k"), stash_loader, &cl->stash, buf,
                                      sizeof buf, &len, NULL);
    return NULL;
}

static void collide_with_load(void *ctx) {
    pthread_t t;
    if (pthread_create(&t, NULL, load_while_held, ctx) == 0) pthread_join(t, NULL);
}

static void test_loader_in_exclusive_mode(void) {
    struct collide_load cl;
    memset(&cl, 0, sizeof cl);
    cl.cache = new_cache(MAPCACHE_MODE_EXCLUSIVE);
    cl.stash.value = "v";
    /* Alone, it loads. */
    uint8_t buf[8];
    size_t len = 0;
    CHECK_ST(mapcache_get_or_load(cl.cache, S("alone"), stash_loader, &cl.stash, buf, sizeof buf,
                                  &len, NULL),
             MAPCACHE_OK);
    CHECK(cl.stash.calls == 1 && len == 1 && buf[0] == 'v');
    /* While another thread writes, it is reported (by its lookup or its
       store), and nothing is cached. */
    CHECK_ST(mapcache_debug_hold_write(cl.cache, S("held"), collide_with_load, &cl), MAPCACHE_OK);
    CHECK(cl.status == MAPCACHE_E_CONCURRENT_WRITE || cl.status == MAPCACHE_E_CONCURRENT_READ_WRITE);
    CHECK(!present(cl.cache, "k"));
    CHECK(stats_of(cl.cache).misuses >= 1);
    mapcache_free(cl.cache);
}

/* ------------------------------------------------------------------- stats */

/* On a single thread the counters add up exactly. */
static void test_stats_add_up(void) {
    mapcache_t *c = manual_cache(0);
    mapcache_stats s = stats_of(c);
    CHECK(s.struct_size == sizeof s);
    CHECK(s.hits == 0 && s.misses == 0 && s.inserts == 0 && s.entries == 0 && s.bytes == 0);
    uint8_t buf[32];
    size_t len;
    char key[16];
    for (int i = 0; i < 100; i++) { /* 100 inserts */
        snprintf(key, sizeof key, "k%d", i);
        CHECK_ST(mapcache_put(c, (const uint8_t *)key, strlen(key), S("value"), NULL), MAPCACHE_OK);
    }
    for (int i = 0; i < 10; i++) { /* 10 updates */
        snprintf(key, sizeof key, "k%d", i);
        CHECK_ST(mapcache_put(c, (const uint8_t *)key, strlen(key), S("other"), NULL), MAPCACHE_OK);
    }
    for (int i = 0; i < 150; i++) { /* 100 hits, 50 misses */
        snprintf(key, sizeof key, "k%d", i);
        mapcache_get(c, (const uint8_t *)key, strlen(key), buf, sizeof buf, &len);
    }
    size_t klens[3] = {2, 2, 4};
    mapcache_status st[3];
    size_t vlens[3];
    CHECK_ST(mapcache_get_many(c, 3, (const uint8_t *)"k1k2none", klens, buf, sizeof buf, vlens, st),
             MAPCACHE_OK); /* 2 hits, 1 miss */
    for (int i = 90; i < 100; i++) { /* 10 deletes */
        snprintf(key, sizeof key, "k%d", i);
        CHECK_ST(mapcache_delete(c, (const uint8_t *)key, strlen(key)), MAPCACHE_OK);
    }
    bool b;
    CHECK_ST(mapcache_contains(c, S("k1"), &b), MAPCACHE_OK); /* not a lookup */
    CHECK_ST(mapcache_compare_and_swap(c, S("k1"), S("other"), S("third"), &b), MAPCACHE_OK);
    CHECK(b); /* an update, not a lookup */
    struct stash ok;
    memset(&ok, 0, sizeof ok);
    ok.value = "loaded";
    CHECK_ST(mapcache_get_or_load(c, S("L"), stash_loader, &ok, buf, sizeof buf, &len, NULL),
             MAPCACHE_OK); /* 1 miss, 1 insert, 1 load */
    CHECK_ST(mapcache_get_or_load(c, S("L"), stash_loader, &ok, buf, sizeof buf, &len, NULL),
             MAPCACHE_OK); /* 1 hit */
    ok.ret = 1;
    CHECK_ST(mapcache_get_or_load(c, S("F"), stash_loader, &ok, buf, sizeof buf, &len, NULL),
             MAPCACHE_E_LOADER); /* 1 miss, 1 failed load */
    CHECK_ST(mapcache_put_ttl(c, S("t"), S("v"), 5), MAPCACHE_OK); /* 1 insert */
    CHECK_ST(mapcache_clock_advance(c, 5), MAPCACHE_OK);
    CHECK_ST(mapcache_get(c, S("t"), buf, sizeof buf, &len), MAPCACHE_NOT_FOUND); /* 1 miss */

    s = stats_of(c);
    CHECK(s.hits == 100 + 2 + 1);
    CHECK(s.misses == 50 + 1 + 1 + 1 + 1);
    CHECK(s.inserts == 100 + 1 + 1);
    CHECK(s.updates == 10 + 1);
    CHECK(s.deletes == 10);
    CHECK(s.load_successes == 1 && s.load_failures == 1);
    CHECK(s.evictions == 0 && s.rejections == 0 && s.misuses == 0);
    CHECK(s.expirations <= 1);
    CHECK(s.inserts - s.evictions - s.expirations - s.deletes == s.entries);
    size_t n = 0;
    CHECK_ST(mapcache_len(c, &n), MAPCACHE_OK);
    CHECK(s.entries == n);
    CHECK(s.entries == 91 || s.entries == 92); /* the expired entry, until removed */
    CHECK(s.bytes > 0);
    /* Clearing counts as deletes. */
    CHECK_ST(mapcache_clear(c), MAPCACHE_OK);
    s = stats_of(c);
    CHECK(s.entries == 0 && s.bytes == 0);
    CHECK(s.inserts - s.evictions - s.expirations - s.deletes == 0);
    mapcache_free(c);
}

/* The host states the struct's size; the library writes exactly that. */
struct newer_stats {
    mapcache_stats v1;
    uint64_t future_counter;
};

static void test_stats_struct_size(void) {
    CHECK(sizeof(mapcache_stats) == 128);
    mapcache_t *c = new_cache(MAPCACHE_MODE_CONCURRENT);
    CHECK_ST(mapcache_put(c, S("k"), S("v"), NULL), MAPCACHE_OK);
    /* A newer host's larger struct: our counters, then zero. */
    unsigned char host[sizeof(struct newer_stats) + GUARD];
    memset(host, 0xAB, sizeof host);
    struct newer_stats *newer = (struct newer_stats *)(void *)host;
    newer->v1.struct_size = sizeof *newer;
    CHECK_ST(mapcache_stats_get(c, &newer->v1), MAPCACHE_OK);
    CHECK(newer->v1.struct_size == sizeof *newer);
    CHECK(newer->v1.inserts == 1 && newer->v1.entries == 1);
    CHECK(newer->future_counter == 0);
    int intact = 1;
    for (size_t i = sizeof *newer; i < sizeof host; i++) intact &= host[i] == 0xAB;
    CHECK(intact);
    /* Sizes out of range: refused, nothing written. */
    const size_t bad[] = {0, sizeof(size_t), sizeof(mapcache_stats) - 1, 4097};
    for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
        memset(host, 0xAB, sizeof host);
        newer->v1.struct_size = bad[b];
        CHECK_ERR(mapcache_stats_get(c, &newer->v1), MAPCACHE_E_INVALID_ARG, "out->struct_size");
        intact = 1;
        for (size_t i = sizeof(size_t); i < sizeof host; i++) intact &= host[i] == 0xAB;
        CHECK(intact);
    }
    CHECK_ERR(mapcache_stats_get(c, NULL), MAPCACHE_E_INVALID_ARG, "mapcache_stats_get: out is NULL");
    mapcache_free(c);
    /* After an error the counters are 0, never stale. */
    mapcache_stats s;
    memset(&s, 0xAB, sizeof s);
    s.struct_size = sizeof s;
    CHECK_ERR(mapcache_stats_get(c, &s), MAPCACHE_E_INVALID_HANDLE, "freed");
    CHECK(s.struct_size == sizeof s && s.hits == 0 && s.inserts == 0 && s.misuses == 0);
}

/* ----------------------------------------------------------------- bounds */

#define BOUND_ENTRIES 100
#define BOUND_PUTS 5000

/* A cache bounded by entries never holds more, after any put. */
static void test_max_entries_bound(void) {
    mapcache_config cfg;
    CHECK_ST(MAPCACHE_CONFIG_INIT(&cfg), MAPCACHE_OK);
    cfg.max_entries = BOUND_ENTRIES;
    mapcache_t *c = make(&cfg);
    char key[16];
    int over = 0;
    for (int i = 0; i < BOUND_PUTS && !over; i++) {
        snprintf(key, sizeof key, "k%d", i);
        CHECK_ST(mapcache_put(c, (const uint8_t *)key, strlen(key), S("value"), NULL), MAPCACHE_OK);
        size_t n = 0;
        CHECK_ST(mapcache_len(c, &n), MAPCACHE_OK);
        mapcache_stats s = stats_of(c);
        over = n > BOUND_ENTRIES || s.entries > BOUND_ENTRIES;
        if (over) fprintf(stderr, "  after put %d: %zu entries (bound %d)\n", i + 1, n, BOUND_ENTRIES);
    }
    CHECK(!over);
    mapcache_stats s = stats_of(c);
    CHECK(s.inserts == BOUND_PUTS);
    CHECK(s.evictions == BOUND_PUTS - s.entries);
    CHECK(s.entries > 0);
    mapcache_free(c);
}

#define BOUND_BYTES (64 * 1024)
#define MAX_VALUE 2000

/* Loads BOUND_BYTES + 1 bytes from ctx. */
static int32_t huge_loader(void *ctx, const uint8_t *key, size_t key_len, mapcache_load_result *r) {
    (void)key;
    (void)key_len;
    return mapcache_load_result_set(r, ctx, BOUND_BYTES + 1) == MAPCACHE_OK ? 0 : 1;
}

/* A cache bounded by bytes never holds more than its bound plus one entry (it
   has one shard at this size), with values of mixed sizes. */
static void test_max_bytes_bound(void) {
    mapcache_config cfg;
    CHECK_ST(MAPCACHE_CONFIG_INIT(&cfg), MAPCACHE_OK);
    cfg.max_bytes = BOUND_BYTES;
    mapcache_t *c = make(&cfg);
    static uint8_t value[MAX_VALUE];
    memset(value, 'v', sizeof value);
    char key[16];
    unsigned seed = 12345;
    int over = 0;
    for (int i = 0; i < BOUND_PUTS && !over; i++) {
        seed = seed * 1103515245u + 12345u;
        size_t vlen = (seed >> 8) % MAX_VALUE;
        snprintf(key, sizeof key, "k%d", i % 1500);
        CHECK_ST(mapcache_put(c, (const uint8_t *)key, strlen(key), value, vlen, NULL), MAPCACHE_OK);
        mapcache_stats s = stats_of(c);
        /* One entry's footprint is at most its bytes and a few hundred more. */
        over = s.bytes > BOUND_BYTES + MAX_VALUE + 512;
        if (over) fprintf(stderr, "  after put %d: %llu bytes (bound %d)\n", i + 1,
                          (unsigned long long)s.bytes, BOUND_BYTES);
    }
    CHECK(!over);
    mapcache_stats s = stats_of(c);
    CHECK(s.evictions > 0);
    CHECK(s.inserts - s.evictions - s.expirations - s.deletes == s.entries);
    /* An entry larger than the whole budget is refused, and nothing changes. */
    static uint8_t huge[BOUND_BYTES + 1];
#define BUDGET "larger than its shard's byte budget"
    CHECK_ERR(mapcache_put(c, S("huge"), huge, sizeof huge, NULL), MAPCACHE_E_TOO_LARGE, BUDGET);
    /* An argument error (the value is too large for this cache): the message
       starts with the function, and a batch's with the key's index too. */
    CHECK_ERR(mapcache_put(c, S("huge"), huge, sizeof huge, NULL), MAPCACHE_E_TOO_LARGE,
              "mapcache_put: entry of ");
    CHECK_ERR(mapcache_put_ttl(c, S("huge"), huge, sizeof huge, 10), MAPCACHE_E_TOO_LARGE,
              "mapcache_put_ttl: entry of ");
    uint8_t buf[8];
    size_t len = 9;
    bool flag = true;
    CHECK_ERR(mapcache_get_or_insert(c, S("huge"), huge, sizeof huge, buf, sizeof buf, &len, &flag),
              MAPCACHE_E_TOO_LARGE, "mapcache_get_or_insert: entry of ");
    CHECK(len == 0 && !flag);
    /* (The policy may not admit "small" into the full cache: the refusal is
       checked before the key is looked up, so it does not matter.) */
    CHECK_ST(mapcache_put(c, S("small"), S("v"), NULL), MAPCACHE_OK);
    flag = true;
    CHECK_ERR(mapcache_compare_and_swap(c, S("small"), S("v"), huge, sizeof huge, &flag),
              MAPCACHE_E_TOO_LARGE, "mapcache_compare_and_swap: entry of ");
    CHECK(!flag);
    size_t klen = 4, vlen = sizeof huge;
    mapcache_status kst = MAPCACHE_OK;
    CHECK_ST(mapcache_put_many(c, 1, (const uint8_t *)"huge", &klen, huge, &vlen, &kst), MAPCACHE_OK);
    CHECK(kst == MAPCACHE_E_TOO_LARGE);
    CHECK(strncmp(mapcache_last_error(), "mapcache_put_many: key 0: entry of ", 35) == 0);
    /* A loaded value too large to hold: reported to the loader's caller, not cached. */
    CHECK_ERR(mapcache_get_or_load(c, S("huge"), huge_loader, huge, buf, sizeof buf, &len, NULL),
              MAPCACHE_E_TOO_LARGE, "mapcache_get_or_load: entry of ");
    CHECK(len == 0);
#undef BUDGET
    CHECK(!present(c, "huge"));
    /* Of all these writes only "small" was stored (or refused by admission,
       which counts as an insert and an eviction). */
    mapcache_stats after = stats_of(c);
    CHECK(after.inserts == s.inserts + 1 && after.updates == s.updates);
    CHECK(after.inserts - after.evictions - after.expirations - after.deletes == after.entries);
    mapcache_free(c);
}

/* ------------------------------------------------------------------- main */

/* The GPU engine's status: off, unavailable here (no driver or no plugin at the
 * configured path), and refused under force. */
static void test_gpu_status(void) {
    mapcache_config cfg;
    mapcache_gpu_info info;
    mapcache_t *c = NULL;
    CHECK_ST(MAPCACHE_CONFIG_INIT(&cfg), MAPCACHE_OK);
    CHECK(cfg.gpu_mode == MAPCACHE_GPU_AUTO && cfg.gpu_threshold == 0 && cfg.gpu_plugin_path == NULL);
    cfg.gpu_mode = MAPCACHE_GPU_OFF;
    CHECK_ST(mapcache_new(&cfg, &c), MAPCACHE_OK);
    memset(&info, 0xAB, sizeof info);
    info.struct_size = sizeof info;
    CHECK_ST(mapcache_gpu_status(c, &info), MAPCACHE_OK);
    CHECK(info.struct_size == sizeof info && info.active == 0 && strcmp(info.reason, "off") == 0);
    mapcache_free(c);

    cfg.gpu_mode = MAPCACHE_GPU_AUTO;
    cfg.gpu_plugin_path = "/nonexistent/libmapcache_cuda.so";
    CHECK_ST(mapcache_new(&cfg, &c), MAPCACHE_OK);
    CHECK_ST(mapcache_gpu_status(c, &info), MAPCACHE_OK);
    CHECK(info.active == 0);
    CHECK(strncmp(info.reason, "libcuda.so.1 not found", 22) == 0 ||
          strcmp(info.reason, "plugin not found at /nonexistent/libmapcache_cuda.so") == 0);
    /* Below the default threshold every rebuild is the CPU's: nothing fell back. */
    for (int i = 0; i < 1000; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        CHECK_ST(mapcache_put(c, (const uint8_t *)key, strlen(key), S("v"), NULL), MAPCACHE_OK);
    }
    CHECK_ST(mapcache_gpu_status(c, &info), MAPCACHE_OK);
    CHECK(info.gpu_rebuilds == 0 && info.fallbacks == 0);
    mapcache_free(c);

    cfg.gpu_mode = MAPCACHE_GPU_FORCE;
    c = (mapcache_t *)&cfg;
    CHECK_ST(mapcache_new(&cfg, &c), MAPCACHE_E_GPU);
    CHECK(c == NULL);
    CHECK(strstr(mapcache_last_error(), "GPU engine (gpu = force)") != NULL);

    info.struct_size = 8;
    CHECK_ST(mapcache_gpu_status(NULL, &info), MAPCACHE_E_INVALID_ARG);
}

int main(void) {
    RUN(test_config_cache_fields);
    RUN(test_gpu_status);
    RUN(test_abi2_host);
    RUN(test_ttl_every_read_path);
    RUN(test_ttl_zero_and_default);
    RUN(test_loader_runs_once);
    RUN(test_loader_failure_reaches_every_waiter);
    RUN(test_loader_results_and_misuse);
    RUN(test_loader_result_from_another_thread);
    RUN(test_loader_asking_for_its_own_key);
    RUN(test_loader_in_exclusive_mode);
    RUN(test_stats_add_up);
    RUN(test_stats_struct_size);
    RUN(test_max_entries_bound);
    RUN(test_max_bytes_bound);
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}
