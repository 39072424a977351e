/*
 * The C ABI test suite: every function of include/mapcache.h, every documented
 * status, bad input from C, threads in both modes.
 *
 * Built by `make test-c` with cc -std=c11 -Wall -Wextra -Werror -pedantic, linked
 * once against libmapcache.so and once against libmapcache.a, and run under
 * valgrind (zero errors, zero leaks). Prints one line per test and a closing
 * "N passed, N failed" line; exits non-zero if any check failed.
 */
/* The suite also tests the debug hooks, which the header declares only on request. */
#define MAPCACHE_TESTING
#include "mapcache.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

/* `len` readable zero bytes that cost nothing until touched (an anonymous
   mapping), for calls whose contract needs a long readable buffer the library
   will not read. */
static uint8_t *readable_region(size_t len) {
    /* /dev/zero rather than MAP_ANONYMOUS, which strict POSIX 2008 lacks. */
    int fd = open("/dev/zero", O_RDONLY);
    if (fd < 0) return NULL;
    void *p = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    return p == MAP_FAILED ? NULL : p;
}

static void release_region(uint8_t *p, size_t len) {
    munmap(p, len);
}

static int contains_str(const char *hay, const char *needle) {
    return strstr(hay, needle) != NULL;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------------ basics */

static void test_versions(void) {
    CHECK(mapcache_abi_version() == MAPCACHE_ABI_VERSION);
    const char *v = mapcache_version();
    CHECK(v != NULL);
    CHECK(strlen(v) >= 5);
    CHECK(contains_str(v, "."));
    CHECK(MAPCACHE_MAX_KEY_LEN == 65535);
    CHECK(MAPCACHE_MAX_VALUE_LEN == 1073741824);
}

static void test_status_str(void) {
    static const struct {
        mapcache_status s;
        const char *name;
    } all[] = {
        {MAPCACHE_OK, "MAPCACHE_OK"},
        {MAPCACHE_NOT_FOUND, "MAPCACHE_NOT_FOUND"},
        {MAPCACHE_E_INVALID_ARG, "MAPCACHE_E_INVALID_ARG"},
        {MAPCACHE_E_BUFFER_TOO_SMALL, "MAPCACHE_E_BUFFER_TOO_SMALL"},
        {MAPCACHE_E_KEY_TOO_LONG, "MAPCACHE_E_KEY_TOO_LONG"},
        {MAPCACHE_E_VALUE_TOO_LONG, "MAPCACHE_E_VALUE_TOO_LONG"},
        {MAPCACHE_E_CONCURRENT_WRITE, "MAPCACHE_E_CONCURRENT_WRITE"},
        {MAPCACHE_E_CONCURRENT_READ_WRITE, "MAPCACHE_E_CONCURRENT_READ_WRITE"},
        {MAPCACHE_E_NO_MEMORY, "MAPCACHE_E_NO_MEMORY"},
        {MAPCACHE_E_INVALID_HANDLE, "MAPCACHE_E_INVALID_HANDLE"},
        {MAPCACHE_E_INVALID_CONFIG, "MAPCACHE_E_INVALID_CONFIG"},
        {MAPCACHE_E_INTERNAL, "MAPCACHE_E_INTERNAL"},
        {MAPCACHE_E_TOO_LARGE, "MAPCACHE_E_TOO_LARGE"},
        {MAPCACHE_E_LOADER, "MAPCACHE_E_LOADER"},
        {MAPCACHE_E_CORRUPT, "MAPCACHE_E_CORRUPT"},
        {MAPCACHE_E_IO, "MAPCACHE_E_IO"},
        {MAPCACHE_E_GPU, "MAPCACHE_E_GPU"},
    };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        const char *s = mapcache_status_str(all[i].s);
        CHECK(s != NULL);
        CHECK(strncmp(s, all[i].name, strlen(all[i].name)) == 0);
        CHECK(s[strlen(all[i].name)] == ':');
        CHECK(all[i].s == (mapcache_status)i); /* the values are the contract */
    }
    CHECK(strcmp(mapcache_status_str(17), "unknown mapcache_status") == 0);
    CHECK(strcmp(mapcache_status_str(-1), "unknown mapcache_status") == 0);
}

static void *last_error_thread(void *arg) {
    (void)arg;
    /* A fresh thread has no message, whatever other threads did. */
    int empty = strcmp(mapcache_last_error(), "") == 0;
    return empty ? (void *)1 : NULL;
}

static void test_last_error(void) {
    CHECK_ERR(mapcache_len(NULL, NULL), MAPCACHE_E_INVALID_ARG, "mapcache_len: cache is NULL");
    const char *first = mapcache_last_error();
    CHECK(first != NULL);
    /* OK and NOT_FOUND leave the message alone. */
    mapcache_t *c = new_cache(MAPCACHE_MODE_CONCURRENT);
    size_t len = 0;
    CHECK_ST(mapcache_get(c, S("absent"), NULL, 0, &len), MAPCACHE_NOT_FOUND);
    CHECK_ST(mapcache_len(c, &len), MAPCACHE_OK);
    CHECK(strcmp(mapcache_last_error(), "mapcache_len: cache is NULL") == 0);
    /* Another thread's messages are its own. */
    pthread_t t;
    void *result = NULL;
    CHECK(pthread_create(&t, NULL, last_error_thread, NULL) == 0);
    CHECK(pthread_join(t, &result) == 0);
    CHECK(result == (void *)1);
    CHECK(strcmp(mapcache_last_error(), "mapcache_len: cache is NULL") == 0);
    mapcache_free(c);
}

/* ------------------------------------------------------------------ config */

/* A config as a host built against a newer header would pass it. */
struct newer_config {
    mapcache_config v1;
    uint64_t future_field;
};

static void test_config(void) {
    mapcache_config cfg;
    memset(&cfg, 0xAB, sizeof cfg);
    CHECK_ST(MAPCACHE_CONFIG_INIT(&cfg), MAPCACHE_OK);
    CHECK(cfg.struct_size == sizeof(mapcache_config));
    CHECK(cfg.initial_capacity == 0);
    CHECK(cfg.shards == 0);
    CHECK(cfg.mode == MAPCACHE_MODE_CONCURRENT);
    CHECK(cfg.misuse_policy == MAPCACHE_MISUSE_ERROR);
    CHECK(cfg.rehash_engine == MAPCACHE_ENGINE_AUTO);
    CHECK(cfg.seed == 0);
    CHECK_ERR(mapcache_config_init(NULL, sizeof cfg), MAPCACHE_E_INVALID_ARG,
              "mapcache_config_init: cfg is NULL");

    mapcache_t *c = NULL;
    CHECK_ST(mapcache_new(NULL, &c), MAPCACHE_OK); /* NULL config = defaults */
    CHECK(c != NULL);
    mapcache_free(c);

    CHECK_ERR(mapcache_new(&cfg, NULL), MAPCACHE_E_INVALID_ARG, "mapcache_new: out is NULL");

    /* Every field in range: accepted. */
    cfg.initial_capacity = 1000;
    cfg.shards = 4;
    cfg.mode = MAPCACHE_MODE_EXCLUSIVE;
    cfg.misuse_policy = MAPCACHE_MISUSE_ERROR;
    cfg.rehash_engine = MAPCACHE_ENGINE_SINGLE;
    cfg.seed = 42;
    c = NULL;
    CHECK_ST(mapcache_new(&cfg, &c), MAPCACHE_OK);
    CHECK_ST(mapcache_put(c, S("k"), S("v"), NULL), MAPCACHE_OK);
    mapcache_free(c);
    cfg.rehash_engine = MAPCACHE_ENGINE_PARALLEL;
    cfg.shards = 65536;
    CHECK_ST(mapcache_new(&cfg, &c), MAPCACHE_OK);
    mapcache_free(c);

    /* Each bad field: INVALID_CONFIG naming it, and *out = NULL. */
    mapcache_config bad;
#define BAD_FIELD(assign, name)                                                       \
    do {                                                                              \
        CHECK_ST(MAPCACHE_CONFIG_INIT(&bad), MAPCACHE_OK);                            \
        assign;                                                                       \
        c = (mapcache_t *)&bad; /* garbage that must be overwritten */               \
        CHECK_ERR(mapcache_new(&bad, &c), MAPCACHE_E_INVALID_CONFIG, name);           \
        CHECK(c == NULL);                                                             \
    } while (0)
    BAD_FIELD(bad.mode = 2, "cfg->mode = 2");
    BAD_FIELD(bad.misuse_policy = 7, "cfg->misuse_policy = 7");
    BAD_FIELD(bad.rehash_engine = 3, "cfg->rehash_engine = 3");
    BAD_FIELD(bad.shards = 3, "cfg->shards = 3");
    BAD_FIELD(bad.shards = 131072, "cfg->shards = 131072");
    BAD_FIELD(bad.struct_size = 8, "cfg->struct_size = 8");
    BAD_FIELD(bad.struct_size = sizeof(mapcache_config) - 1, "struct_size");
    BAD_FIELD(bad.struct_size = 1u << 20, "struct_size");
#undef BAD_FIELD

    /* A newer host's larger config: accepted while the unknown tail is zero. */
    struct newer_config newer;
    memset(&newer, 0, sizeof newer);
    memset(&newer, 0xAB, sizeof newer);
    CHECK_ST(mapcache_config_init(&newer.v1, sizeof newer), MAPCACHE_OK);
    CHECK(newer.v1.struct_size == sizeof newer);
    CHECK(newer.future_field == 0); /* zeroed: "not used" */
    newer.v1.mode = MAPCACHE_MODE_EXCLUSIVE;
    c = NULL;
    CHECK_ST(mapcache_new(&newer.v1, &c), MAPCACHE_OK);
    mapcache_free(c);
    newer.future_field = 1;
    CHECK_ERR(mapcache_new(&newer.v1, &c), MAPCACHE_E_INVALID_CONFIG, "newer mapcache");
    CHECK(c == NULL);
}

/* The size of the first mapcache_config (ABI 1 and 2): what a host built against
   the oldest header has. Every later header's struct starts with these fields. */
#define V1_CONFIG_SIZE (offsetof(mapcache_config, seed) + sizeof(uint64_t))
#define GUARD 64

/* A host states its struct's size: init writes exactly that many bytes and new
   reads no more, whatever lies after it (issue 10, point 7). */
static void test_config_struct_size(void) {
    /* An old-size host: its struct, then guard bytes that are not part of it. */
    unsigned char host[V1_CONFIG_SIZE + GUARD];
    memset(host, 0xAB, sizeof host);
    mapcache_config *cfg = (mapcache_config *)(void *)host;
    CHECK_ST(mapcache_config_init(cfg, V1_CONFIG_SIZE), MAPCACHE_OK);
    int guard_intact = 1;
    for (size_t i = V1_CONFIG_SIZE; i < sizeof host; i++) guard_intact &= host[i] == 0xAB;
    CHECK(guard_intact);
    CHECK(cfg->struct_size == V1_CONFIG_SIZE);
    CHECK(cfg->initial_capacity == 0 && cfg->shards == 0 && cfg->seed == 0);
    CHECK(cfg->mode == MAPCACHE_MODE_CONCURRENT && cfg->rehash_engine == MAPCACHE_ENGINE_AUTO);
    /* new ignores the non-zero guard bytes: they are past struct_size. */
    cfg->mode = MAPCACHE_MODE_EXCLUSIVE;
    mapcache_t *c = NULL;
    CHECK_ST(mapcache_new(cfg, &c), MAPCACHE_OK);
    CHECK(c != NULL);
    CHECK_ST(mapcache_put(c, S("k"), S("v"), NULL), MAPCACHE_OK);
    mapcache_free(c);
    guard_intact = 1;
    for (size_t i = V1_CONFIG_SIZE; i < sizeof host; i++) guard_intact &= host[i] == 0xAB;
    CHECK(guard_intact);

    /* A size below the first config, or absurdly large: refused, nothing written. */
    const size_t bad_sizes[] = {0, sizeof(size_t), V1_CONFIG_SIZE - 1, 4097, SIZE_MAX};
    for (size_t b = 0; b < sizeof bad_sizes / sizeof bad_sizes[0]; b++) {
        memset(host, 0xAB, sizeof host);
        CHECK_ERR(mapcache_config_init(cfg, bad_sizes[b]), MAPCACHE_E_INVALID_ARG,
                  "mapcache_config_init: size = ");
        int untouched = 1;
        for (size_t i = 0; i < sizeof host; i++) untouched &= host[i] == 0xAB;
        CHECK(untouched);
    }
}

/* ---------------------------------------------------------- single-key ops */

/* mapcache_get_value: snprintf-style, the length or a negated status. */
static void test_get_value(void) {
    mapcache_t *c = new_cache(MAPCACHE_MODE_CONCURRENT);
    uint8_t buf[8];
    CHECK_ST(mapcache_put(c, S("alpha"), S("uno"), NULL), MAPCACHE_OK);
    CHECK_ST(mapcache_put(c, S("long"), S("a value of 21 bytes!!"), NULL), MAPCACHE_OK);
    CHECK_ST(mapcache_put(c, S("empty"), NULL, 0, NULL), MAPCACHE_OK);

    memset(buf, 'x', sizeof buf);
    CHECK(mapcache_get_value(c, S("alpha"), buf, sizeof buf) == 3);
    CHECK(memcmp(buf, "uno", 3) == 0 && buf[3] == 'x');
    CHECK(mapcache_get_value(c, S("empty"), buf, sizeof buf) == 0);
    /* Longer than the buffer: its length, nothing copied, and no error (the
       last error, from another call, stays as it was). */
    CHECK_ST(mapcache_len(NULL, NULL), MAPCACHE_E_INVALID_ARG);
    memset(buf, 'x', sizeof buf);
    CHECK(mapcache_get_value(c, S("long"), buf, sizeof buf) == 21);
    CHECK(buf[0] == 'x' && contains_str(mapcache_last_error(), "mapcache_len"));
    CHECK(mapcache_get_value(c, S("long"), NULL, 0) == 21);
    /* Absent: -MAPCACHE_NOT_FOUND, not an error either. */
    CHECK(mapcache_get_value(c, S("nope"), buf, sizeof buf) == -(int64_t)MAPCACHE_NOT_FOUND);
    CHECK(contains_str(mapcache_last_error(), "mapcache_len"));
    /* Errors: the negated status, with a message. */
    CHECK(mapcache_get_value(NULL, S("alpha"), buf, sizeof buf) == -(int64_t)MAPCACHE_E_INVALID_ARG);
    CHECK(contains_str(mapcache_last_error(), "mapcache_get_value"));
    CHECK(mapcache_get_value(c, NULL, 3, buf, sizeof buf) == -(int64_t)MAPCACHE_E_INVALID_ARG);
    CHECK(mapcache_get_value(c, S("alpha"), NULL, 4) == -(int64_t)MAPCACHE_E_INVALID_ARG);
    static uint8_t huge_key[MAPCACHE_MAX_KEY_LEN + 1];
    CHECK(mapcache_get_value(c, huge_key, sizeof huge_key, buf, sizeof buf) ==
          -(int64_t)MAPCACHE_E_KEY_TOO_LONG);
    mapcache_free(c);
    /* A freed handle. */
    CHECK(mapcache_get_value(c, S("alpha"), buf, sizeof buf) == -(int64_t)MAPCACHE_E_INVALID_HANDLE);
}

/* mapcache_get_object: the host's constructors make the result. The host's
   "object" here is a malloc'd record of the outcome. */
typedef struct {
    int64_t code; /* 0 for a value, else what miss received */
    size_t len;
    uint8_t data[];
} host_obj;

static mapcache_t *make_reenters; /* when set, make reads this cache first */

static void *host_make(const uint8_t *value, size_t len) {
    if (make_reenters != NULL) {
        /* The lookup is over and nothing is pinned: any call is allowed. */
        size_t n = 0;
        CHECK_ST(mapcache_len(make_reenters, &n), MAPCACHE_OK);
        CHECK_ST(mapcache_put(make_reenters, S("written-by-make"), S("yes"), NULL), MAPCACHE_OK);
    }
    host_obj *o = malloc(sizeof *o + len + 1);
    if (o == NULL) return NULL;
    o->code = 0;
    o->len = len;
    if (len > 0) memcpy(o->data, value, len);
    return o;
}

static void *host_miss(int64_t code) {
    host_obj *o = malloc(sizeof *o);
    if (o == NULL) return NULL;
    o->code = code;
    o->len = 0;
    return o;
}

/* The outcome's code (0: a value of `want`), then frees the object. */
static int64_t take(host_obj *o, const char *want, size_t want_len) {
    CHECK(o != NULL);
    if (o == NULL) return 99;
    int64_t code = o->code;
    if (code == 0) CHECK(o->len == want_len && (want_len == 0 || memcmp(o->data, want, want_len) == 0));
    free(o);
    return code;
}

static void test_get_object(void) {
    mapcache_t *c = new_cache(MAPCACHE_MODE_CONCURRENT);
    mapcache_getter g = {c, host_make, host_miss};
    static char big[1000];
    for (size_t i = 0; i < sizeof big; i++) big[i] = (char)('a' + i % 26);
    CHECK_ST(mapcache_put(c, S("alpha"), S("uno"), NULL), MAPCACHE_OK);
    CHECK_ST(mapcache_put(c, S("empty"), NULL, 0, NULL), MAPCACHE_OK);
    CHECK_ST(mapcache_put(c, S("big"), (const uint8_t *)big, sizeof big, NULL), MAPCACHE_OK);

    CHECK(take(mapcache_get_object(&g, (const uint8_t *)"alpha", 5), "uno", 3) == 0);
    CHECK(take(mapcache_get_object(&g, (const uint8_t *)"empty", 5), "", 0) == 0);
    /* Longer than the library's stack stage (256 bytes). */
    CHECK(take(mapcache_get_object(&g, (const uint8_t *)"big", 3), big, sizeof big) == 0);
    /* Absent: miss(-MAPCACHE_NOT_FOUND), not an error. */
    CHECK_ST(mapcache_len(NULL, NULL), MAPCACHE_E_INVALID_ARG);
    CHECK(take(mapcache_get_object(&g, (const uint8_t *)"nope", 4), NULL, 0) == -(int64_t)MAPCACHE_NOT_FOUND);
    CHECK(contains_str(mapcache_last_error(), "mapcache_len"));
    /* Errors: miss(-status), with a message. */
    CHECK(take(mapcache_get_object(&g, NULL, 3), NULL, 0) == -(int64_t)MAPCACHE_E_INVALID_ARG);
    CHECK(contains_str(mapcache_last_error(), "mapcache_get_object"));
    static uint8_t huge_key[MAPCACHE_MAX_KEY_LEN + 1];
    CHECK(take(mapcache_get_object(&g, huge_key, sizeof huge_key), NULL, 0) ==
          -(int64_t)MAPCACHE_E_KEY_TOO_LONG);
    mapcache_getter closed = {NULL, host_make, host_miss};
    CHECK(take(mapcache_get_object(&closed, (const uint8_t *)"alpha", 5), NULL, 0) ==
          -(int64_t)MAPCACHE_E_INVALID_ARG);
    /* No constructor to call: NULL, and the message says why. */
    CHECK(mapcache_get_object(NULL, (const uint8_t *)"alpha", 5) == NULL);
    CHECK(contains_str(mapcache_last_error(), "getter is NULL"));
    mapcache_getter no_make = {c, NULL, host_miss};
    CHECK(mapcache_get_object(&no_make, (const uint8_t *)"alpha", 5) == NULL);
    CHECK(contains_str(mapcache_last_error(), "getter->make is NULL"));
    mapcache_getter no_miss = {c, host_make, NULL};
    CHECK(mapcache_get_object(&no_miss, (const uint8_t *)"nope", 4) == NULL);
    CHECK(contains_str(mapcache_last_error(), "getter->miss is NULL"));
    /* make may call back into the library, even write the cache it read. */
    make_reenters = c;
    CHECK(take(mapcache_get_object(&g, (const uint8_t *)"alpha", 5), "uno", 3) == 0);
    make_reenters = NULL;
    CHECK(take(mapcache_get_object(&g, (const uint8_t *)"written-by-make", 15), "yes", 3) == 0);
    mapcache_free(c);
    /* A freed handle. */
    CHECK(take(mapcache_get_object(&g, (const uint8_t *)"alpha", 5), NULL, 0) ==
          -(int64_t)MAPCACHE_E_INVALID_HANDLE);
}

static void test_put_get_delete(void) {
    mapcache_t *c = new_cache(MAPCACHE_MODE_CONCURRENT);
    bool replaced = true;
    uint8_t buf[64];
    size_t len = 99;

    CHECK_ST(mapcache_put(c, S("alpha"), S("one"), &replaced), MAPCACHE_OK);
    CHECK(!replaced);
    CHECK_ST(mapcache_put(c, S("alpha"), S("uno"), &replaced), MAPCACHE_OK);
    CHECK(replaced);
    CHECK_ST(mapcache_put(c, S("beta"), S("two"), NULL), MAPCACHE_OK); /* nullable */

    CHECK_ST(mapcache_get(c, S("alpha"), buf, sizeof buf, &len), MAPCACHE_OK);
    CHECK(len == 3 && memcmp(buf, "uno", 3) == 0);

    len = 99;
    CHECK_ST(mapcache_get(c, S("gamma"), buf, sizeof buf, &len), MAPCACHE_NOT_FOUND);
    CHECK(len == 0);

    /* Too small: nothing copied, the needed length reported; then it fits. */
    memset(buf, 'x', sizeof buf);
    CHECK_ERR(mapcache_get(c, S("alpha"), buf, 2, &len), MAPCACHE_E_BUFFER_TOO_SMALL,
              "the value is 3 bytes but buf_cap is 2");
    CHECK(len == 3);
    CHECK(buf[0] == 'x' && buf[1] == 'x');
    /* Asking for the length only: NULL buffer of capacity 0. */
    len = 0;
    CHECK_ST(mapcache_get(c, S("alpha"), NULL, 0, &len), MAPCACHE_E_BUFFER_TOO_SMALL);
    CHECK(len == 3);
    CHECK_ST(mapcache_get(c, S("alpha"), buf, len, &len), MAPCACHE_OK);
    CHECK(len == 3 && memcmp(buf, "uno", 3) == 0);

    /* Empty key, empty value, and binary bytes with NULs are all fine. */
    CHECK_ST(mapcache_put(c, NULL, 0, NULL, 0, NULL), MAPCACHE_OK);
    CHECK_ST(mapcache_get(c, NULL, 0, NULL, 0, &len), MAPCACHE_OK);
    CHECK(len == 0);
    const uint8_t bin_key[4] = {0, 1, 0, 2};
    const uint8_t bin_val[5] = {0, 0, 255, 0, 7};
    CHECK_ST(mapcache_put(c, bin_key, 4, bin_val, 5, NULL), MAPCACHE_OK);
    CHECK_ST(mapcache_get(c, bin_key, 4, buf, sizeof buf, &len), MAPCACHE_OK);
    CHECK(len == 5 && memcmp(buf, bin_val, 5) == 0);
    CHECK_ST(mapcache_get(c, bin_key, 3, buf, sizeof buf, &len), MAPCACHE_NOT_FOUND);

    /* Largest key: accepted. */
    uint8_t *big_key = calloc(1, MAPCACHE_MAX_KEY_LEN);
    CHECK(big_key != NULL);
    if (big_key) {
        big_key[0] = 'B';
        CHECK_ST(mapcache_put(c, big_key, MAPCACHE_MAX_KEY_LEN, S("big"), NULL), MAPCACHE_OK);
        CHECK_ST(mapcache_get(c, big_key, MAPCACHE_MAX_KEY_LEN, buf, sizeof buf, &len),
                 MAPCACHE_OK);
        CHECK(len == 3 && memcmp(buf, "big", 3) == 0);
        CHECK_ST(mapcache_delete(c, big_key, MAPCACHE_MAX_KEY_LEN), MAPCACHE_OK);
        free(big_key);
    }

    bool present = false;
    CHECK_ST(mapcache_contains(c, S("beta"), &present), MAPCACHE_OK);
    CHECK(present);
    CHECK_ST(mapcache_contains(c, S("gamma"), &present), MAPCACHE_OK);
    CHECK(!present);

    size_t n = 0;
    CHECK_ST(mapcache_len(c, &n), MAPCACHE_OK);
    CHECK(n == 4); /* alpha, beta, "", bin_key */

    CHECK_ST(mapcache_delete(c, S("beta")), MAPCACHE_OK);
    CHECK_ST(mapcache_delete(c, S("beta")), MAPCACHE_NOT_FOUND);
    CHECK_ST(mapcache_contains(c, S("beta"), &present), MAPCACHE_OK);
    CHECK(!present);
    CHECK_ST(mapcache_len(c, &n), MAPCACHE_OK);
    CHECK(n == 3);

    CHECK_ST(mapcache_clear(c), MAPCACHE_OK);
    CHECK_ST(mapcache_len(c, &n), MAPCACHE_OK);
    CHECK(n == 0);
    CHECK_ST(mapcache_get(c, S("alpha"), buf, sizeof buf, &len), MAPCACHE_NOT_FOUND);
    CHECK_ST(mapcache_clear(c), MAPCACHE_OK); /* clearing an empty map */
    mapcache_free(c);
}

static void test_large_value(void) {
    mapcache_t *c = new_cache(MAPCACHE_MODE_CONCURRENT);
    size_t big = 1u << 20;
    uint8_t *v = malloc(big), *out = malloc(big);
    CHECK(v && out);
    if (v && out) {
        for (size_t i = 0; i < big; i++) v[i] = (uint8_t)(i * 31u);
        CHECK_ST(mapcache_put(c, S("big"), v, big, NULL), MAPCACHE_OK);
        size_t len = 0;
        CHECK_ST(mapcache_get(c, S("big"), out, big, &len), MAPCACHE_OK);
        CHECK(len == big && memcmp(v, out, big) == 0);
    }
    free(v);
    free(out);
    mapcache_free(c);
}

struct capture {
    int calls;
    size_t len;
    uint8_t bytes[64];
    mapcache_t *cache;
    mapcache_status nested;
    uint8_t *key_to_scribble;
};

static void capture_value(void *ctx, const uint8_t *value, size_t value_len) {
    struct capture *cap = ctx;
    cap->calls++;
    cap->len = value_len;
    if (value_len <= sizeof cap->bytes) memcpy(cap->bytes, value, value_len);
    if (cap->cache) {
        /* Re-entering the library from the callback is allowed. */
        size_t n;
        cap->nested = mapcache_len(cap->cache, &n);
        cap->nested |= mapcache_put(cap->cache, S("written-in-callback"), S("x"), NULL);
    }
    if (cap->key_to_scribble) cap->key_to_scribble[0] = '#'; /* the library reads a copy */
}

static void test_get_with(void) {
    mapcache_t *c = new_cache(MAPCACHE_MODE_CONCURRENT);
    CHECK_ST(mapcache_put(c, S("k"), S("zero-copy"), NULL), MAPCACHE_OK);
    struct capture cap;
    memset(&cap, 0, sizeof cap);
    CHECK_ST(mapcache_get_with(c, S("k"), capture_value, &cap), MAPCACHE_OK);
    CHECK(cap.calls == 1 && cap.len == 9 && memcmp(cap.bytes, "zero-copy", 9) == 0);

    memset(&cap, 0, sizeof cap);
    CHECK_ST(mapcache_get_with(c, S("nope"), capture_value, &cap), MAPCACHE_NOT_FOUND);
    CHECK(cap.calls == 0);

    CHECK_ERR(mapcache_get_with(c, S("k"), NULL, &cap), MAPCACHE_E_INVALID_ARG,
              "callback is NULL");

    /* Nested calls from the callback, and a callback that writes the key buffer. */
    uint8_t key[1] = {'k'};
    memset(&cap, 0, sizeof cap);
    cap.cache = c;
    cap.key_to_scribble = key;
    CHECK_ST(mapcache_get_with(c, key, 1, capture_value, &cap), MAPCACHE_OK);
    CHECK(cap.calls == 1 && cap.nested == MAPCACHE_OK);
    CHECK(memcmp(cap.bytes, "zero-copy", 9) == 0);
    bool present = false;
    CHECK_ST(mapcache_contains(c, S("written-in-callback"), &present), MAPCACHE_OK);
    CHECK(present);
    mapcache_free(c);
}

static void test_get_or_insert(void) {
    mapcache_t *c = new_cache(MAPCACHE_MODE_CONCURRENT);
    uint8_t buf[16];
    size_t len = 0;
    bool inserted = false;

    memset(buf, 'x', sizeof buf);
    CHECK_ST(mapcache_get_or_insert(c, S("k"), S("first"), buf, sizeof buf, &len, &inserted),
             MAPCACHE_OK);
    CHECK(inserted && len == 5);
    CHECK(buf[0] == 'x'); /* absent: buf untouched */

    CHECK_ST(mapcache_get_or_insert(c, S("k"), S("second"), buf, sizeof buf, &len, &inserted),
             MAPCACHE_OK);
    CHECK(!inserted && len == 5 && memcmp(buf, "first", 5) == 0);

    /* Present but too long for the buffer: the needed length, nothing inserted. */
    CHECK_ERR(mapcache_get_or_insert(c, S("k"), S("third"), buf, 2, &len, &inserted),
              MAPCACHE_E_BUFFER_TOO_SMALL, "buf_cap is 2");
    CHECK(!inserted && len == 5);
    CHECK_ST(mapcache_get_or_insert(c, S("k"), S("third"), NULL, 0, &len, &inserted),
             MAPCACHE_E_BUFFER_TOO_SMALL);
    CHECK(len == 5);

    CHECK_ERR(mapcache_get_or_insert(c, S("k"), S("v"), buf, sizeof buf, &len, NULL),
              MAPCACHE_E_INVALID_ARG, "out_inserted is NULL");
    CHECK_ERR(mapcache_get_or_insert(c, S("k"), S("v"), buf, sizeof buf, NULL, &inserted),
              MAPCACHE_E_INVALID_ARG, "out_len is NULL");
    CHECK_ERR(mapcache_get_or_insert(c, S("k"), NULL, 3, buf, sizeof buf, &len, &inserted),
              MAPCACHE_E_INVALID_ARG, "value is NULL but value_len is 3");
    /* The output buffer may not overlap an input. */
    memcpy(buf, "value", 5);
    CHECK_ERR(mapcache_get_or_insert(c, S("k2"), buf, 5, buf + 2, 8, &len, &inserted),
              MAPCACHE_E_INVALID_ARG, "buf overlaps value");
    CHECK_ERR(mapcache_get_or_insert(c, buf, 5, S("v"), buf + 4, 8, &len, &inserted),
              MAPCACHE_E_INVALID_ARG, "buf overlaps key");
    mapcache_free(c);
}

static void test_compare_and_swap(void) {
    mapcache_t *c = new_cache(MAPCACHE_MODE_CONCURRENT);
    bool swapped = true;
    uint8_t buf[16];
    size_t len;

    CHECK_ST(mapcache_compare_and_swap(c, S("k"), S("a"), S("b"), &swapped), MAPCACHE_NOT_FOUND);
    CHECK(!swapped);
    CHECK_ST(mapcache_put(c, S("k"), S("a"), NULL), MAPCACHE_OK);
    CHECK_ST(mapcache_compare_and_swap(c, S("k"), S("zzz"), S("b"), &swapped), MAPCACHE_OK);
    CHECK(!swapped);
    CHECK_ST(mapcache_get(c, S("k"), buf, sizeof buf, &len), MAPCACHE_OK);
    CHECK(len == 1 && buf[0] == 'a');
    CHECK_ST(mapcache_compare_and_swap(c, S("k"), S("a"), S("b"), &swapped), MAPCACHE_OK);
    CHECK(swapped);
    CHECK_ST(mapcache_get(c, S("k"), buf, sizeof buf, &len), MAPCACHE_OK);
    CHECK(len == 1 && buf[0] == 'b');
    /* Empty expected value matches only an empty value. */
    CHECK_ST(mapcache_compare_and_swap(c, S("k"), NULL, 0, S("c"), &swapped), MAPCACHE_OK);
    CHECK(!swapped);

    CHECK_ERR(mapcache_compare_and_swap(c, S("k"), S("b"), S("c"), NULL), MAPCACHE_E_INVALID_ARG,
              "out_swapped is NULL");
    CHECK_ERR(mapcache_compare_and_swap(c, S("k"), NULL, 1, S("c"), &swapped),
              MAPCACHE_E_INVALID_ARG, "expected is NULL but expected_len is 1");
    CHECK_ERR(mapcache_compare_and_swap(c, S("k"), S("b"), NULL, 1, &swapped),
              MAPCACHE_E_INVALID_ARG, "new_value is NULL but new_len is 1");
    CHECK_ERR(mapcache_compare_and_swap(c, S("k"), S("b"), buf, (size_t)MAPCACHE_MAX_VALUE_LEN + 1,
                                        &swapped),
              MAPCACHE_E_VALUE_TOO_LONG, "new_len");
    CHECK_ERR(mapcache_compare_and_swap(c, S("k"), buf, (size_t)MAPCACHE_MAX_VALUE_LEN + 1, S("c"),
                                        &swapped),
              MAPCACHE_E_VALUE_TOO_LONG, "expected_len");
    mapcache_free(c);
}

/* ----------------------------------------------------------------- batches */

#define BATCH 200

static void test_batches(void) {
    mapcache_t *c = new_cache(MAPCACHE_MODE_CONCURRENT);
    char keys[BATCH * 16], values[BATCH * 32];
    size_t key_lens[BATCH], value_lens[BATCH], out_lens[BATCH];
    mapcache_status st[BATCH];
    size_t kpos = 0, vpos = 0;
    for (int i = 0; i < BATCH; i++) {
        key_lens[i] = (size_t)sprintf(keys + kpos, "key-%d", i);
        value_lens[i] = (size_t)sprintf(values + vpos, "value-%d-%s", i, i % 2 ? "odd" : "even");
        kpos += key_lens[i];
        vpos += value_lens[i];
    }
    CHECK_ST(mapcache_put_many(c, BATCH, (const uint8_t *)keys, key_lens, (const uint8_t *)values,
                               value_lens, st),
             MAPCACHE_OK);
    for (int i = 0; i < BATCH; i++) CHECK(st[i] == MAPCACHE_OK);
    size_t n = 0;
    CHECK_ST(mapcache_len(c, &n), MAPCACHE_OK);
    CHECK(n == BATCH);

    /* Everything fits: values come back packed in key order. */
    uint8_t out[BATCH * 32];
    CHECK_ST(mapcache_get_many(c, BATCH, (const uint8_t *)keys, key_lens, out, sizeof out,
                               out_lens, st),
             MAPCACHE_OK);
    size_t pos = 0;
    for (int i = 0; i < BATCH; i++) {
        CHECK(st[i] == MAPCACHE_OK);
        CHECK(out_lens[i] == value_lens[i]);
        pos += out_lens[i];
    }
    CHECK(pos == vpos && memcmp(out, values, vpos) == 0);

    /* A mixed batch: hit, miss, too long, hit that does not fit, small hit. */
    const char *mk[5] = {"key-1", "missing", NULL, "key-2", "key-3"};
    size_t mlens[5], mout[5];
    mapcache_status mst[5];
    /* Key 2 is "too long": give it a huge length over a real buffer region. */
    char packed[3 * 16 + MAPCACHE_MAX_KEY_LEN + 1 + 16];
    memset(packed, 'z', sizeof packed);
    size_t ppos = 0;
    for (int i = 0; i < 5; i++) {
        if (i == 2) {
            mlens[i] = MAPCACHE_MAX_KEY_LEN + 1;
        } else {
            mlens[i] = strlen(mk[i]);
            memcpy(packed + ppos, mk[i], mlens[i]);
        }
        ppos += mlens[i];
    }
    /* "value-1-odd" (11) fits in 12; "value-2-even" (12) then does not; "value-3-odd" no. */
    uint8_t small[12];
    CHECK_ST(mapcache_get_many(c, 5, (const uint8_t *)packed, mlens, small, sizeof small, mout, mst),
             MAPCACHE_OK);
    CHECK(mst[0] == MAPCACHE_OK && mout[0] == 11 && memcmp(small, "value-1-odd", 11) == 0);
    CHECK(mst[1] == MAPCACHE_NOT_FOUND && mout[1] == 0);
    CHECK(mst[2] == MAPCACHE_E_KEY_TOO_LONG);
    CHECK(mst[3] == MAPCACHE_E_BUFFER_TOO_SMALL && mout[3] == 12);
    CHECK(mst[4] == MAPCACHE_E_BUFFER_TOO_SMALL && mout[4] == 11);
    /* The first per-key error is described. */
    CHECK(contains_str(mapcache_last_error(), "mapcache_get_many: key 2"));
    CHECK(contains_str(mapcache_last_error(), "MAPCACHE_MAX_KEY_LEN"));

    /* Only key 4 fits once key 3 does not: later keys are still served. */
    uint8_t eleven[11];
    CHECK_ST(mapcache_get_many(c, 2, (const uint8_t *)"key-2key-3", (size_t[]){5, 5}, eleven,
                               sizeof eleven, mout, mst),
             MAPCACHE_OK);
    CHECK(mst[0] == MAPCACHE_E_BUFFER_TOO_SMALL && mout[0] == 12);
    CHECK(mst[1] == MAPCACHE_OK && mout[1] == 11 && memcmp(eleven, "value-3-odd", 11) == 0);

    /* delete_many: present, absent. */
    CHECK_ST(mapcache_delete_many(c, 2, (const uint8_t *)"key-7nope!", (size_t[]){5, 5}, mst),
             MAPCACHE_OK);
    CHECK(mst[0] == MAPCACHE_OK && mst[1] == MAPCACHE_NOT_FOUND);
    CHECK_ST(mapcache_len(c, &n), MAPCACHE_OK);
    CHECK(n == BATCH - 1);

    /* n = 0: every pointer may be NULL. */
    CHECK_ST(mapcache_get_many(c, 0, NULL, NULL, NULL, 0, NULL, NULL), MAPCACHE_OK);
    CHECK_ST(mapcache_put_many(c, 0, NULL, NULL, NULL, NULL, NULL), MAPCACHE_OK);
    CHECK_ST(mapcache_delete_many(c, 0, NULL, NULL, NULL), MAPCACHE_OK);

    /* Whole-call errors. */
    CHECK_ERR(mapcache_get_many(NULL, 1, (const uint8_t *)"a", (size_t[]){1}, out, 8, out_lens, st),
              MAPCACHE_E_INVALID_ARG, "cache is NULL");
    CHECK_ERR(mapcache_get_many(c, 1, (const uint8_t *)"a", NULL, out, 8, out_lens, st),
              MAPCACHE_E_INVALID_ARG, "key_lens is NULL but n is 1");
    CHECK_ERR(mapcache_get_many(c, 1, NULL, (size_t[]){1}, out, 8, out_lens, st),
              MAPCACHE_E_INVALID_ARG, "keys is NULL");
    CHECK_ERR(mapcache_get_many(c, 1, (const uint8_t *)"a", (size_t[]){1}, out, 8, NULL, st),
              MAPCACHE_E_INVALID_ARG, "out_value_lens is NULL");
    CHECK_ERR(mapcache_get_many(c, 1, (const uint8_t *)"a", (size_t[]){1}, out, 8, out_lens, NULL),
              MAPCACHE_E_INVALID_ARG, "out_statuses is NULL");
    CHECK_ERR(mapcache_get_many(c, 1, (const uint8_t *)"a", (size_t[]){1}, NULL, 8, out_lens, st),
              MAPCACHE_E_INVALID_ARG, "values is NULL but values_cap is 8");
    memcpy(out, "key-1", 5);
    CHECK_ERR(mapcache_get_many(c, 1, out, (size_t[]){5}, out + 3, 8, out_lens, st),
              MAPCACHE_E_INVALID_ARG, "values overlaps keys");
    CHECK_ERR(mapcache_put_many(c, 1, (const uint8_t *)"a", (size_t[]){1}, NULL, (size_t[]){1}, st),
              MAPCACHE_E_INVALID_ARG, "values is NULL");
    CHECK_ERR(mapcache_put_many(c, 1, (const uint8_t *)"a", (size_t[]){1}, (const uint8_t *)"b",
                                NULL, st),
              MAPCACHE_E_INVALID_ARG, "value_lens is NULL but n is 1");
    CHECK_ERR(mapcache_put_many(c, 2, (const uint8_t *)"ab", (size_t[]){SIZE_MAX, 2},
                                (const uint8_t *)"b", (size_t[]){1, 1}, st),
              MAPCACHE_E_INVALID_ARG, "overflows");
    CHECK_ERR(mapcache_delete_many(c, 1, (const uint8_t *)"a", (size_t[]){1}, NULL),
              MAPCACHE_E_INVALID_ARG, "out_statuses is NULL");
    mapcache_free(c);
}

/* put_many with a per-key error: a too-long value among good ones. */
static void test_put_many_per_key_errors(void) {
    mapcache_t *c = new_cache(MAPCACHE_MODE_CONCURRENT);
    /* Keys: "a", <too long>, "c"; values: "1", "2", "3". The too-long key's bytes
       must be readable, so it sits in a real buffer. */
    size_t long_len = MAPCACHE_MAX_KEY_LEN + 1;
    uint8_t *keys = calloc(1, 2 + long_len);
    CHECK(keys != NULL);
    if (!keys) return;
    keys[0] = 'a';
    keys[1 + long_len] = 'c';
    size_t key_lens[3] = {1, long_len, 1};
    size_t value_lens[3] = {1, 1, 1};
    mapcache_status st[3];
    CHECK_ST(mapcache_put_many(c, 3, keys, key_lens, (const uint8_t *)"123", value_lens, st),
             MAPCACHE_OK);
    CHECK(st[0] == MAPCACHE_OK && st[1] == MAPCACHE_E_KEY_TOO_LONG && st[2] == MAPCACHE_OK);
    CHECK(contains_str(mapcache_last_error(), "mapcache_put_many: key 1"));
    size_t n;
    CHECK_ST(mapcache_len(c, &n), MAPCACHE_OK);
    CHECK(n == 2);
    /* A value over the limit, per key (its bytes are never read). The packed
       values must be readable for the sum of the lengths, as the contract says:
       a lazily mapped region of that size (never touched, so it costs nothing). */
    size_t huge_lens[2] = {1, (size_t)MAPCACHE_MAX_VALUE_LEN + 1};
    uint8_t *huge_values = readable_region(huge_lens[0] + huge_lens[1]);
    CHECK(huge_values != NULL);
    if (!huge_values) return;
    CHECK_ST(mapcache_put_many(c, 2, (const uint8_t *)"de", (size_t[]){1, 1}, huge_values,
                               huge_lens, st),
             MAPCACHE_OK);
    CHECK(st[0] == MAPCACHE_OK && st[1] == MAPCACHE_E_VALUE_TOO_LONG);
    CHECK(contains_str(mapcache_last_error(), "key 1"));
    CHECK(contains_str(mapcache_last_error(), "MAPCACHE_MAX_VALUE_LEN"));
    release_region(huge_values, huge_lens[0] + huge_lens[1]);
    free(keys);
    mapcache_free(c);
}

/* --------------------------------------------------------------- iteration */

#define ITER_N 1000

static void test_iter(void) {
    mapcache_t *c = new_cache(MAPCACHE_MODE_CONCURRENT);
    mapcache_iter_t *it = NULL;
    const uint8_t *k, *v;
    size_t kl, vl;

    /* Empty map: the end right away, and it stays the end. */
    CHECK_ST(mapcache_iter_new(c, &it), MAPCACHE_OK);
    CHECK_ST(mapcache_iter_next(it, &k, &kl, &v, &vl), MAPCACHE_NOT_FOUND);
    CHECK(k == NULL && kl == 0 && v == NULL && vl == 0);
    CHECK_ST(mapcache_iter_next(it, &k, &kl, &v, &vl), MAPCACHE_NOT_FOUND);
    mapcache_iter_free(it);

    char key[32], val[32];
    for (int i = 0; i < ITER_N; i++) {
        int kn = sprintf(key, "it-%d", i), vn = sprintf(val, "v%d", i * 7);
        CHECK_ST(mapcache_put(c, (const uint8_t *)key, (size_t)kn, (const uint8_t *)val,
                              (size_t)vn, NULL),
                 MAPCACHE_OK);
    }
    static unsigned char seen[ITER_N];
    memset(seen, 0, sizeof seen);
    CHECK_ST(mapcache_iter_new(c, &it), MAPCACHE_OK);
    int count = 0, bad = 0;
    mapcache_status s;
    while ((s = mapcache_iter_next(it, &k, &kl, &v, &vl)) == MAPCACHE_OK) {
        count++;
        int i = -1;
        if (kl > 3 && kl < sizeof key && memcmp(k, "it-", 3) == 0) {
            memcpy(key, k, kl);
            key[kl] = 0;
            i = atoi(key + 3);
        }
        if (i < 0 || i >= ITER_N || seen[i]) {
            bad++;
            continue;
        }
        seen[i] = 1;
        int vn = sprintf(val, "v%d", i * 7);
        if (vl != (size_t)vn || memcmp(v, val, vl) != 0) bad++;
    }
    CHECK(s == MAPCACHE_NOT_FOUND);
    CHECK(count == ITER_N);
    CHECK(bad == 0);
    CHECK_ST(mapcache_iter_next(it, &k, &kl, &v, &vl), MAPCACHE_NOT_FOUND);

    CHECK_ERR(mapcache_iter_next(it, NULL, &kl, &v, &vl), MAPCACHE_E_INVALID_ARG, "key is NULL");
    CHECK_ERR(mapcache_iter_next(it, &k, NULL, &v, &vl), MAPCACHE_E_INVALID_ARG, "key_len is NULL");
    CHECK_ERR(mapcache_iter_next(it, &k, &kl, NULL, &vl), MAPCACHE_E_INVALID_ARG, "value is NULL");
    CHECK_ERR(mapcache_iter_next(it, &k, &kl, &v, NULL), MAPCACHE_E_INVALID_ARG,
              "value_len is NULL");
    CHECK_ERR(mapcache_iter_next(NULL, &k, &kl, &v, &vl), MAPCACHE_E_INVALID_ARG, "it is NULL");
    CHECK_ERR(mapcache_iter_new(c, NULL), MAPCACHE_E_INVALID_ARG, "out is NULL");
    CHECK_ERR(mapcache_iter_new(NULL, &it), MAPCACHE_E_INVALID_ARG, "cache is NULL");
    mapcache_iter_free(it);
    mapcache_iter_free(NULL); /* a no-op */

    /* Entries handed out stay valid until the next call even if the map changes. */
    CHECK_ST(mapcache_iter_new(c, &it), MAPCACHE_OK);
    CHECK_ST(mapcache_iter_next(it, &k, &kl, &v, &vl), MAPCACHE_OK);
    char saved_key[32];
    memcpy(saved_key, k, kl < sizeof saved_key ? kl : sizeof saved_key);
    size_t saved_kl = kl;
    CHECK_ST(mapcache_clear(c), MAPCACHE_OK);
    CHECK(kl == saved_kl && memcmp(k, saved_key, kl) == 0);
    mapcache_iter_free(it);
    mapcache_free(c);
}

/* Weak consistency under writers and growth: every key present for the whole
   iteration is yielded exactly once, and no key twice. */
#define STABLE 2000

struct churner {
    mapcache_t *cache;
    volatile int *stop;
    int errors;
};

static void *churn(void *arg) {
    struct churner *ch = arg;
    char key[32];
    for (int i = 0; i < 200000 && !__atomic_load_n(ch->stop, __ATOMIC_RELAXED); i++) {
        int n = sprintf(key, "volatile-%d", i % 5000);
        mapcache_status s = (i / 5000) % 2 == 0
                                ? mapcache_put(ch->cache, (const uint8_t *)key, (size_t)n, S("x"), NULL)
                                : mapcache_delete(ch->cache, (const uint8_t *)key, (size_t)n);
        if (s != MAPCACHE_OK && s != MAPCACHE_NOT_FOUND) ch->errors++;
        /* Replace stable values too: replaced keys must still come out once. */
        n = sprintf(key, "stable-%d", i % STABLE);
        if (mapcache_put(ch->cache, (const uint8_t *)key, (size_t)n, S("replaced"), NULL) != MAPCACHE_OK)
            ch->errors++;
    }
    return NULL;
}

static void test_iter_concurrent_writers(void) {
    mapcache_t *c = new_cache(MAPCACHE_MODE_CONCURRENT);
    char key[32];
    for (int i = 0; i < STABLE; i++) {
        int n = sprintf(key, "stable-%d", i);
        CHECK_ST(mapcache_put(c, (const uint8_t *)key, (size_t)n, S("v"), NULL), MAPCACHE_OK);
    }
    volatile int stop = 0;
    struct churner ch = {c, &stop, 0};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, churn, &ch) == 0);
    static unsigned char stable_seen[STABLE], volatile_seen[5000];
    for (int pass = 0; pass < 3; pass++) {
        memset(stable_seen, 0, sizeof stable_seen);
        memset(volatile_seen, 0, sizeof volatile_seen);
        mapcache_iter_t *it = NULL;
        CHECK_ST(mapcache_iter_new(c, &it), MAPCACHE_OK);
        const uint8_t *k, *v;
        size_t kl, vl;
        int twice = 0, stray = 0;
        mapcache_status s;
        while ((s = mapcache_iter_next(it, &k, &kl, &v, &vl)) == MAPCACHE_OK) {
            if (kl >= sizeof key) {
                stray++;
                continue;
            }
            memcpy(key, k, kl);
            key[kl] = 0;
            int i;
            if (sscanf(key, "stable-%d", &i) == 1 && i >= 0 && i < STABLE) {
                twice += stable_seen[i]++ != 0;
            } else if (sscanf(key, "volatile-%d", &i) == 1 && i >= 0 && i < 5000) {
                twice += volatile_seen[i]++ != 0;
            } else {
                stray++;
            }
        }
        CHECK(s == MAPCACHE_NOT_FOUND);
        mapcache_iter_free(it);
        CHECK(twice == 0);
        CHECK(stray == 0);
        int missing = 0;
        for (int i = 0; i < STABLE; i++) missing += stable_seen[i] != 1;
        CHECK(missing == 0);
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
    pthread_join(t, NULL);
    CHECK(ch.errors == 0);
    mapcache_free(c);
}

/* One iterator used by two threads at once (a host bug): each call either gets an
   entry, the end, or INVALID_ARG saying the iterator is busy; never the same entry
   twice, never a crash. */
struct shared_iter {
    mapcache_iter_t *it;
    int ok, end, busy, other;
};

static void *iter_user(void *arg) {
    struct shared_iter *si = arg;
    const uint8_t *k, *v;
    size_t kl, vl;
    for (;;) {
        mapcache_status s = mapcache_iter_next(si->it, &k, &kl, &v, &vl);
        if (s == MAPCACHE_OK) {
            si->ok++;
        } else if (s == MAPCACHE_NOT_FOUND) {
            si->end++;
            break;
        } else if (s == MAPCACHE_E_INVALID_ARG &&
                   contains_str(mapcache_last_error(), "used by another thread")) {
            si->busy++;
        } else {
            si->other++;
            break;
        }
    }
    return NULL;
}

static void test_iter_shared_between_threads(void) {
    mapcache_t *c = new_cache(MAPCACHE_MODE_CONCURRENT);
    char key[32];
    for (int i = 0; i < 3000; i++) {
        int n = sprintf(key, "k%d", i);
        CHECK_ST(mapcache_put(c, (const uint8_t *)key, (size_t)n, S("v"), NULL), MAPCACHE_OK);
    }
    mapcache_iter_t *it = NULL;
    CHECK_ST(mapcache_iter_new(c, &it), MAPCACHE_OK);
    struct shared_iter a = {it, 0, 0, 0, 0}, b = {it, 0, 0, 0, 0};
    pthread_t ta, tb;
    CHECK(pthread_create(&ta, NULL, iter_user, &a) == 0);
    CHECK(pthread_create(&tb, NULL, iter_user, &b) == 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    CHECK(a.other == 0 && b.other == 0);
    CHECK(a.ok + b.ok == 3000); /* each entry handed out once, to one of them */
    CHECK(a.end == 1 && b.end == 1);
    mapcache_iter_free(it);
    mapcache_free(c);
}

/* ------------------------------------------------ bad input from C (item 3) */

static void test_null_handle(void) {
    uint8_t buf[4];
    size_t len;
    bool b;
    mapcache_status st[1];
    mapcache_iter_t *it;
    CHECK_ERR(mapcache_get(NULL, S("k"), buf, 4, &len), MAPCACHE_E_INVALID_ARG,
              "mapcache_get: cache is NULL");
    CHECK_ERR(mapcache_get_with(NULL, S("k"), capture_value, NULL), MAPCACHE_E_INVALID_ARG,
              "mapcache_get_with: cache is NULL");
    CHECK_ERR(mapcache_put(NULL, S("k"), S("v"), NULL), MAPCACHE_E_INVALID_ARG,
              "mapcache_put: cache is NULL");
    CHECK_ERR(mapcache_delete(NULL, S("k")), MAPCACHE_E_INVALID_ARG, "mapcache_delete: cache is NULL");
    CHECK_ERR(mapcache_contains(NULL, S("k"), &b), MAPCACHE_E_INVALID_ARG,
              "mapcache_contains: cache is NULL");
    CHECK_ERR(mapcache_len(NULL, &len), MAPCACHE_E_INVALID_ARG, "mapcache_len: cache is NULL");
    CHECK_ERR(mapcache_clear(NULL), MAPCACHE_E_INVALID_ARG, "mapcache_clear: cache is NULL");
    CHECK_ERR(mapcache_get_or_insert(NULL, S("k"), S("v"), buf, 4, &len, &b), MAPCACHE_E_INVALID_ARG,
              "mapcache_get_or_insert: cache is NULL");
    CHECK_ERR(mapcache_compare_and_swap(NULL, S("k"), S("a"), S("b"), &b), MAPCACHE_E_INVALID_ARG,
              "mapcache_compare_and_swap: cache is NULL");
    CHECK_ERR(mapcache_put_many(NULL, 0, NULL, NULL, NULL, NULL, st), MAPCACHE_E_INVALID_ARG,
              "mapcache_put_many: cache is NULL");
    CHECK_ERR(mapcache_delete_many(NULL, 0, NULL, NULL, st), MAPCACHE_E_INVALID_ARG,
              "mapcache_delete_many: cache is NULL");
    CHECK_ERR(mapcache_iter_new(NULL, &it), MAPCACHE_E_INVALID_ARG,
              "mapcache_iter_new: cache is NULL");
    CHECK_ERR(mapcache_debug_hold_write(NULL, S("k"), NULL, NULL), MAPCACHE_E_INVALID_ARG,
              "cache is NULL");
    mapcache_free(NULL); /* a no-op */
}

static void test_null_data_and_outputs(void) {
    mapcache_t *c = new_cache(MAPCACHE_MODE_CONCURRENT);
    uint8_t buf[8];
    size_t len;
    bool b;
    CHECK_ERR(mapcache_get(c, NULL, 3, buf, 8, &len), MAPCACHE_E_INVALID_ARG,
              "mapcache_get: key is NULL but key_len is 3");
    CHECK_ERR(mapcache_get(c, S("k"), NULL, 8, &len), MAPCACHE_E_INVALID_ARG,
              "buf is NULL but buf_cap is 8");
    CHECK_ERR(mapcache_get(c, S("k"), buf, 8, NULL), MAPCACHE_E_INVALID_ARG, "out_len is NULL");
    memcpy(buf, "kkkk", 4);
    CHECK_ERR(mapcache_get(c, buf, 4, buf + 2, 4, &len), MAPCACHE_E_INVALID_ARG, "buf overlaps key");
    CHECK_ERR(mapcache_get_with(c, NULL, 1, capture_value, NULL), MAPCACHE_E_INVALID_ARG,
              "key is NULL but key_len is 1");
    CHECK_ERR(mapcache_put(c, NULL, 2, S("v"), NULL), MAPCACHE_E_INVALID_ARG,
              "mapcache_put: key is NULL but key_len is 2");
    CHECK_ERR(mapcache_put(c, S("k"), NULL, 5, NULL), MAPCACHE_E_INVALID_ARG,
              "mapcache_put: value is NULL but value_len is 5");
    CHECK_ERR(mapcache_delete(c, NULL, 1), MAPCACHE_E_INVALID_ARG, "key is NULL");
    CHECK_ERR(mapcache_contains(c, NULL, 1, &b), MAPCACHE_E_INVALID_ARG, "key is NULL");
    CHECK_ERR(mapcache_contains(c, S("k"), NULL), MAPCACHE_E_INVALID_ARG, "out is NULL");
    CHECK_ERR(mapcache_len(c, NULL), MAPCACHE_E_INVALID_ARG, "mapcache_len: out is NULL");
    CHECK_ERR(mapcache_get_or_insert(c, NULL, 1, S("v"), buf, 8, &len, &b), MAPCACHE_E_INVALID_ARG,
              "key is NULL");
    CHECK_ERR(mapcache_compare_and_swap(c, NULL, 1, S("a"), S("b"), &b), MAPCACHE_E_INVALID_ARG,
              "key is NULL");
    /* A key pointer whose length runs off the end of the address space. */
    CHECK_ERR(mapcache_get(c, (const uint8_t *)(uintptr_t)(UINTPTR_MAX - 2), 16, buf, 8, &len),
              MAPCACHE_E_INVALID_ARG, "past the end of the address space");
    /* Nothing was inserted by any of these. */
    size_t n = 1;
    CHECK_ST(mapcache_len(c, &n), MAPCACHE_OK);
    CHECK(n == 0);
    mapcache_free(c);
}

static void test_oversized(void) {
    mapcache_t *c = new_cache(MAPCACHE_MODE_CONCURRENT);
    /* The library rejects an over-long length before reading the bytes. */
    uint8_t *key = calloc(1, MAPCACHE_MAX_KEY_LEN + 1);
    uint8_t buf[8];
    size_t len;
    bool b;
    CHECK(key != NULL);
    if (!key) return;
    CHECK_ERR(mapcache_put(c, key, MAPCACHE_MAX_KEY_LEN + 1, S("v"), NULL), MAPCACHE_E_KEY_TOO_LONG,
              "key_len = 65536 is longer than MAPCACHE_MAX_KEY_LEN (65535)");
    CHECK_ERR(mapcache_get(c, key, MAPCACHE_MAX_KEY_LEN + 1, buf, 8, &len), MAPCACHE_E_KEY_TOO_LONG,
              "mapcache_get: key_len = 65536");
    CHECK_ERR(mapcache_get_with(c, key, MAPCACHE_MAX_KEY_LEN + 1, capture_value, NULL),
              MAPCACHE_E_KEY_TOO_LONG, "key_len");
    CHECK_ERR(mapcache_delete(c, key, MAPCACHE_MAX_KEY_LEN + 1), MAPCACHE_E_KEY_TOO_LONG, "key_len");
    CHECK_ERR(mapcache_contains(c, key, MAPCACHE_MAX_KEY_LEN + 1, &b), MAPCACHE_E_KEY_TOO_LONG,
              "key_len");
    CHECK_ERR(mapcache_get_or_insert(c, key, MAPCACHE_MAX_KEY_LEN + 1, S("v"), buf, 8, &len, &b),
              MAPCACHE_E_KEY_TOO_LONG, "key_len");
    CHECK_ERR(mapcache_compare_and_swap(c, key, MAPCACHE_MAX_KEY_LEN + 1, S("a"), S("b"), &b),
              MAPCACHE_E_KEY_TOO_LONG, "key_len");
    /* A huge key length with a NULL pointer is a NULL-pointer error. */
    CHECK_ERR(mapcache_get(c, NULL, SIZE_MAX, buf, 8, &len), MAPCACHE_E_INVALID_ARG, "key is NULL");
    /* Values over the limit (1 GiB + 1): rejected before being read. */
    CHECK_ERR(mapcache_put(c, S("k"), buf, (size_t)MAPCACHE_MAX_VALUE_LEN + 1, NULL),
              MAPCACHE_E_VALUE_TOO_LONG, "value_len = 1073741825");
    CHECK_ERR(mapcache_put(c, S("k"), buf, SIZE_MAX, NULL), MAPCACHE_E_VALUE_TOO_LONG, "value_len");
    CHECK_ERR(mapcache_get_or_insert(c, S("k"), buf, (size_t)MAPCACHE_MAX_VALUE_LEN + 1, buf + 4, 0,
                                     &len, &b),
              MAPCACHE_E_VALUE_TOO_LONG, "value_len");
    size_t n = 1;
    CHECK_ST(mapcache_len(c, &n), MAPCACHE_OK);
    CHECK(n == 0);
    free(key);
    mapcache_free(c);
}

static void test_freed_and_foreign_handles(void) {
    uint8_t buf[8];
    size_t len;
    bool b;
    mapcache_t *c = new_cache(MAPCACHE_MODE_CONCURRENT);
    CHECK_ST(mapcache_put(c, S("k"), S("v"), NULL), MAPCACHE_OK);
    mapcache_free(c);
    /* Every call on the freed handle: INVALID_HANDLE with a message. */
    CHECK_ERR(mapcache_get(c, S("k"), buf, 8, &len), MAPCACHE_E_INVALID_HANDLE,
              "cache was freed by mapcache_free");
    CHECK_ERR(mapcache_put(c, S("k"), S("v"), NULL), MAPCACHE_E_INVALID_HANDLE, "freed");
    CHECK_ERR(mapcache_get_with(c, S("k"), capture_value, NULL), MAPCACHE_E_INVALID_HANDLE, "freed");
    CHECK_ERR(mapcache_delete(c, S("k")), MAPCACHE_E_INVALID_HANDLE, "freed");
    CHECK_ERR(mapcache_contains(c, S("k"), &b), MAPCACHE_E_INVALID_HANDLE, "freed");
    CHECK_ERR(mapcache_len(c, &len), MAPCACHE_E_INVALID_HANDLE, "freed");
    CHECK_ERR(mapcache_clear(c), MAPCACHE_E_INVALID_HANDLE, "freed");
    CHECK_ERR(mapcache_get_or_insert(c, S("k"), S("v"), buf, 8, &len, &b), MAPCACHE_E_INVALID_HANDLE,
              "freed");
    CHECK_ERR(mapcache_compare_and_swap(c, S("k"), S("a"), S("b"), &b), MAPCACHE_E_INVALID_HANDLE,
              "freed");
    mapcache_status st[1];
    CHECK_ERR(mapcache_put_many(c, 1, (const uint8_t *)"k", (size_t[]){1}, (const uint8_t *)"v",
                                (size_t[]){1}, st),
              MAPCACHE_E_INVALID_HANDLE, "freed");
    CHECK_ERR(mapcache_get_many(c, 1, (const uint8_t *)"k", (size_t[]){1}, buf, 8, &len, st),
              MAPCACHE_E_INVALID_HANDLE, "freed");
    CHECK_ERR(mapcache_delete_many(c, 1, (const uint8_t *)"k", (size_t[]){1}, st),
              MAPCACHE_E_INVALID_HANDLE, "freed");
    mapcache_iter_t *it = (mapcache_iter_t *)buf;
    CHECK_ERR(mapcache_iter_new(c, &it), MAPCACHE_E_INVALID_HANDLE, "freed");
    CHECK(it == NULL);
    /* A double free is detected and ignored. */
    mapcache_free(c);
    CHECK(contains_str(mapcache_last_error(), "mapcache_free: cache was already freed"));

    /* Still detected after other handles come and go (and reuse its slot). */
    mapcache_t *others[10];
    for (int i = 0; i < 10; i++) others[i] = new_cache(MAPCACHE_MODE_CONCURRENT);
    CHECK_ERR(mapcache_len(c, &len), MAPCACHE_E_INVALID_HANDLE, "freed");
    for (int i = 0; i < 10; i++) mapcache_free(others[i]);
    CHECK_ERR(mapcache_len(c, &len), MAPCACHE_E_INVALID_HANDLE, "freed");

    /* A foreign pointer is rejected without being dereferenced. */
    long not_a_cache[8] = {0};
    mapcache_t *foreign = (mapcache_t *)not_a_cache;
    CHECK_ERR(mapcache_len(foreign, &len), MAPCACHE_E_INVALID_HANDLE,
              "not a mapcache_t * returned by mapcache_new");
    CHECK_ERR(mapcache_put(foreign, S("k"), S("v"), NULL), MAPCACHE_E_INVALID_HANDLE, "foreign");
    CHECK_ERR(mapcache_get(foreign, S("k"), buf, 8, &len), MAPCACHE_E_INVALID_HANDLE, "foreign");
    mapcache_free(foreign);
    CHECK(contains_str(mapcache_last_error(), "mapcache_free: cache is not a mapcache_t *"));
    /* Pointers that could never be valid: misaligned into a real handle, and wild. */
    mapcache_t *live = new_cache(MAPCACHE_MODE_CONCURRENT);
    mapcache_t *inside = (mapcache_t *)((char *)live + 1);
    CHECK_ERR(mapcache_len(inside, &len), MAPCACHE_E_INVALID_HANDLE, "foreign");
    CHECK_ERR(mapcache_len((mapcache_t *)(uintptr_t)0x10, &len), MAPCACHE_E_INVALID_HANDLE,
              "foreign");
    CHECK_ST(mapcache_len(live, &len), MAPCACHE_OK);
    mapcache_free(live);
    CHECK(not_a_cache[0] == 0); /* untouched */
}

static void test_iterator_misuse(void) {
    const uint8_t *k, *v;
    size_t kl, vl;
    mapcache_t *c = new_cache(MAPCACHE_MODE_CONCURRENT);
    CHECK_ST(mapcache_put(c, S("k1"), S("v1"), NULL), MAPCACHE_OK);
    CHECK_ST(mapcache_put(c, S("k2"), S("v2"), NULL), MAPCACHE_OK);
    mapcache_iter_t *it = NULL, *fresh = NULL;
    CHECK_ST(mapcache_iter_new(c, &it), MAPCACHE_OK);
    CHECK_ST(mapcache_iter_new(c, &fresh), MAPCACHE_OK);
    CHECK_ST(mapcache_iter_next(it, &k, &kl, &v, &vl), MAPCACHE_OK);

    /* The cache is freed under both iterators (one mid-way, one not started). */
    mapcache_free(c);
    CHECK_ERR(mapcache_iter_next(it, &k, &kl, &v, &vl), MAPCACHE_E_INVALID_HANDLE,
              "the cache of this iterator was freed");
    CHECK_ERR(mapcache_iter_next(fresh, &k, &kl, &v, &vl), MAPCACHE_E_INVALID_HANDLE,
              "the cache of this iterator was freed");
    /* Even when a new cache reuses memory: the iterator knows its own map. */
    mapcache_t *c2 = new_cache(MAPCACHE_MODE_CONCURRENT);
    CHECK_ERR(mapcache_iter_next(it, &k, &kl, &v, &vl), MAPCACHE_E_INVALID_HANDLE, "freed");
    mapcache_free(c2);
    mapcache_iter_free(it);
    mapcache_iter_free(fresh);

    /* Use after mapcache_iter_free, double free, foreign iterator. */
    CHECK_ERR(mapcache_iter_next(it, &k, &kl, &v, &vl), MAPCACHE_E_INVALID_HANDLE,
              "it was freed by mapcache_iter_free");
    mapcache_iter_free(it);
    CHECK(contains_str(mapcache_last_error(), "mapcache_iter_free: it was already freed"));
    long not_an_iter[8] = {0};
    CHECK_ERR(mapcache_iter_next((mapcache_iter_t *)not_an_iter, &k, &kl, &v, &vl),
              MAPCACHE_E_INVALID_HANDLE, "not a mapcache_iter_t *");
    mapcache_iter_free((mapcache_iter_t *)not_an_iter);
    CHECK(contains_str(mapcache_last_error(), "mapcache_iter_free: it is not a mapcache_iter_t *"));
    /* A cache handle is not an iterator, and the other way round. */
    mapcache_t *c3 = new_cache(MAPCACHE_MODE_CONCURRENT);
    CHECK_ERR(mapcache_iter_next((mapcache_iter_t *)c3, &k, &kl, &v, &vl), MAPCACHE_E_INVALID_HANDLE,
              "not a mapcache_iter_t *");
    mapcache_iter_t *it3 = NULL;
    CHECK_ST(mapcache_iter_new(c3, &it3), MAPCACHE_OK);
    size_t n;
    CHECK_ERR(mapcache_len((mapcache_t *)it3, &n), MAPCACHE_E_INVALID_HANDLE, "foreign");
    mapcache_iter_free(it3);
    mapcache_free(c3);
}

static void test_labels(void) {
    CHECK_ST(mapcache_set_thread_label("main-thread"), MAPCACHE_OK);
    CHECK_ST(mapcache_set_thread_label(""), MAPCACHE_OK);
    CHECK_ST(mapcache_set_thread_label(NULL), MAPCACHE_OK);
    CHECK_ERR(mapcache_set_thread_label("bad \xff utf8"), MAPCACHE_E_INVALID_ARG,
              "label is not valid UTF-8");
    char *long_label = malloc(MAPCACHE_MAX_LABEL_LEN + 2);
    CHECK(long_label != NULL);
    if (long_label) {
        memset(long_label, 'a', MAPCACHE_MAX_LABEL_LEN + 1);
        long_label[MAPCACHE_MAX_LABEL_LEN + 1] = 0;
        CHECK_ERR(mapcache_set_thread_label(long_label), MAPCACHE_E_INVALID_ARG,
                  "label is longer than MAPCACHE_MAX_LABEL_LEN");
        long_label[MAPCACHE_MAX_LABEL_LEN] = 0; /* exactly the maximum */
        CHECK_ST(mapcache_set_thread_label(long_label), MAPCACHE_OK);
        free(long_label);
    }
    CHECK_ST(mapcache_set_thread_label(NULL), MAPCACHE_OK);
}

static void test_internal_error(void) {
    CHECK_ERR(mapcache_debug_panic("deliberate test panic"), MAPCACHE_E_INTERNAL,
              "mapcache_debug_panic: internal error");
    CHECK(contains_str(mapcache_last_error(), "deliberate test panic"));
    /* The library is still fine afterwards. */
    mapcache_t *c = new_cache(MAPCACHE_MODE_CONCURRENT);
    CHECK_ST(mapcache_put(c, S("k"), S("v"), NULL), MAPCACHE_OK);
    mapcache_free(c);
}

/* ------------------------------------- out-pointers after an error (point 8) */

/* What every out-pointer holds after an error status, as the header promises:
   NULL, 0 or false (except the length reported with BUFFER_TOO_SMALL), and batch
   arrays untouched. Each out-pointer starts as a sentinel, then a bad argument or
   handle must reset it. */
#define SENTINEL_LEN ((size_t)0x5A5A5A5A)
#define SENTINEL_PTR ((void *)&g_passed)

struct put_inside {
    mapcache_t *cache;
    mapcache_status st;
    bool replaced;
};

static void put_while_held(void *ctx) {
    struct put_inside *p = ctx;
    p->replaced = true;
    p->st = mapcache_put(p->cache, S("k"), S("v"), &p->replaced);
}

static void test_out_pointers_after_errors(void) {
    mapcache_t *c = new_cache(MAPCACHE_MODE_CONCURRENT);
    mapcache_t *freed = new_cache(MAPCACHE_MODE_CONCURRENT);
    mapcache_free(freed);
    long not_a_cache[8] = {0};
    mapcache_t *foreign = (mapcache_t *)not_a_cache;
    mapcache_t *bad_handles[3] = {NULL, foreign, freed};
    uint8_t buf[8];
    uint8_t *huge_key = calloc(1, MAPCACHE_MAX_KEY_LEN + 1);
    CHECK(huge_key != NULL);
    if (!huge_key) return;
    CHECK_ST(mapcache_put(c, S("present"), S("a long value"), NULL), MAPCACHE_OK);

    for (int h = 0; h < 3; h++) {
        mapcache_t *bad = bad_handles[h];
        size_t len = SENTINEL_LEN;
        CHECK(mapcache_get(bad, S("k"), buf, sizeof buf, &len) >= MAPCACHE_E_INVALID_ARG);
        CHECK(len == 0);
        bool flag = true;
        CHECK(mapcache_put(bad, S("k"), S("v"), &flag) >= MAPCACHE_E_INVALID_ARG);
        CHECK(!flag);
        flag = true;
        CHECK(mapcache_contains(bad, S("k"), &flag) >= MAPCACHE_E_INVALID_ARG);
        CHECK(!flag);
        len = SENTINEL_LEN;
        CHECK(mapcache_len(bad, &len) >= MAPCACHE_E_INVALID_ARG);
        CHECK(len == 0);
        len = SENTINEL_LEN;
        flag = true;
        CHECK(mapcache_get_or_insert(bad, S("k"), S("v"), buf, sizeof buf, &len, &flag) >=
              MAPCACHE_E_INVALID_ARG);
        CHECK(len == 0 && !flag);
        flag = true;
        CHECK(mapcache_compare_and_swap(bad, S("k"), S("a"), S("b"), &flag) >=
              MAPCACHE_E_INVALID_ARG);
        CHECK(!flag);
        mapcache_iter_t *it = SENTINEL_PTR;
        CHECK(mapcache_iter_new(bad, &it) >= MAPCACHE_E_INVALID_ARG);
        CHECK(it == NULL);
        /* Batches: a whole-call error writes nothing into the arrays. */
        mapcache_status st[1] = {99};
        size_t lens[1] = {SENTINEL_LEN};
        CHECK(mapcache_get_many(bad, 1, (const uint8_t *)"k", (size_t[]){1}, buf, sizeof buf,
                                lens, st) >= MAPCACHE_E_INVALID_ARG);
        CHECK(st[0] == 99 && lens[0] == SENTINEL_LEN);
        CHECK(mapcache_put_many(bad, 1, (const uint8_t *)"k", (size_t[]){1},
                                (const uint8_t *)"v", (size_t[]){1}, st) >= MAPCACHE_E_INVALID_ARG);
        CHECK(st[0] == 99);
        CHECK(mapcache_delete_many(bad, 1, (const uint8_t *)"k", (size_t[]){1}, st) >=
              MAPCACHE_E_INVALID_ARG);
        CHECK(st[0] == 99);
    }

    /* Bad arguments on a live cache. */
    size_t len = SENTINEL_LEN;
    CHECK_ST(mapcache_get(c, NULL, 3, buf, sizeof buf, &len), MAPCACHE_E_INVALID_ARG);
    CHECK(len == 0);
    len = SENTINEL_LEN;
    CHECK_ST(mapcache_get(c, huge_key, MAPCACHE_MAX_KEY_LEN + 1, buf, sizeof buf, &len),
             MAPCACHE_E_KEY_TOO_LONG);
    CHECK(len == 0);
    len = SENTINEL_LEN;
    CHECK_ST(mapcache_get(c, S("present"), NULL, 4, &len), MAPCACHE_E_INVALID_ARG);
    CHECK(len == 0);
    /* BUFFER_TOO_SMALL is the documented exception: the needed length. */
    CHECK_ST(mapcache_get(c, S("present"), buf, 2, &len), MAPCACHE_E_BUFFER_TOO_SMALL);
    CHECK(len == 12);
    bool flag = true;
    CHECK_ST(mapcache_put(c, S("k"), buf, (size_t)MAPCACHE_MAX_VALUE_LEN + 1, &flag),
             MAPCACHE_E_VALUE_TOO_LONG);
    CHECK(!flag);
    flag = true;
    CHECK_ST(mapcache_contains(c, huge_key, MAPCACHE_MAX_KEY_LEN + 1, &flag),
             MAPCACHE_E_KEY_TOO_LONG);
    CHECK(!flag);
    len = SENTINEL_LEN;
    flag = true;
    memcpy(buf, "kkkk", 4);
    CHECK_ST(mapcache_get_or_insert(c, buf, 4, S("v"), buf + 2, 4, &len, &flag),
             MAPCACHE_E_INVALID_ARG);
    CHECK(len == 0 && !flag);
    len = SENTINEL_LEN;
    flag = true;
    CHECK_ST(mapcache_get_or_insert(c, S("k"), S("v"), buf, 8, &len, NULL), MAPCACHE_E_INVALID_ARG);
    CHECK(len == 0);
    len = SENTINEL_LEN;
    flag = true;
    CHECK_ST(mapcache_get_or_insert(c, S("present"), S("v"), buf, 2, &len, &flag),
             MAPCACHE_E_BUFFER_TOO_SMALL);
    CHECK(len == 12 && !flag);
    flag = true;
    CHECK_ST(mapcache_compare_and_swap(c, huge_key, MAPCACHE_MAX_KEY_LEN + 1, S("a"), S("b"), &flag),
             MAPCACHE_E_KEY_TOO_LONG);
    CHECK(!flag);
    mapcache_t *made = SENTINEL_PTR;
    mapcache_config cfg;
    CHECK_ST(MAPCACHE_CONFIG_INIT(&cfg), MAPCACHE_OK);
    cfg.mode = 9;
    CHECK_ST(mapcache_new(&cfg, &made), MAPCACHE_E_INVALID_CONFIG);
    CHECK(made == NULL);

    /* An exclusive-mode error: a write that collides with the flag this thread
       holds. */
    mapcache_t *x = new_cache(MAPCACHE_MODE_EXCLUSIVE);
    struct put_inside inside = {x, MAPCACHE_OK, true};
    CHECK_ST(mapcache_debug_hold_write(x, S("k"), put_while_held, &inside), MAPCACHE_OK);
    CHECK(inside.st == MAPCACHE_E_CONCURRENT_WRITE);
    CHECK(!inside.replaced);
    mapcache_free(x);

    /* mapcache_iter_next: all four outputs NULL/0 on every error. */
    const uint8_t *k = SENTINEL_PTR, *v = SENTINEL_PTR;
    size_t kl = SENTINEL_LEN, vl = SENTINEL_LEN;
    CHECK_ST(mapcache_iter_next(NULL, &k, &kl, &v, &vl), MAPCACHE_E_INVALID_ARG);
    CHECK(k == NULL && kl == 0 && v == NULL && vl == 0);
    k = v = SENTINEL_PTR;
    kl = vl = SENTINEL_LEN;
    CHECK_ST(mapcache_iter_next((mapcache_iter_t *)not_a_cache, &k, &kl, &v, &vl),
             MAPCACHE_E_INVALID_HANDLE);
    CHECK(k == NULL && kl == 0 && v == NULL && vl == 0);
    mapcache_iter_t *it = NULL;
    CHECK_ST(mapcache_iter_new(c, &it), MAPCACHE_OK);
    k = v = SENTINEL_PTR;
    kl = vl = SENTINEL_LEN;
    CHECK_ST(mapcache_iter_next(it, &k, &kl, NULL, &vl), MAPCACHE_E_INVALID_ARG);
    CHECK(k == NULL && kl == 0 && vl == 0);
    mapcache_free(c);
    k = v = SENTINEL_PTR;
    kl = vl = SENTINEL_LEN;
    CHECK_ST(mapcache_iter_next(it, &k, &kl, &v, &vl), MAPCACHE_E_INVALID_HANDLE);
    CHECK(k == NULL && kl == 0 && v == NULL && vl == 0);
    mapcache_iter_free(it);
    k = v = SENTINEL_PTR;
    kl = vl = SENTINEL_LEN;
    CHECK_ST(mapcache_iter_next(it, &k, &kl, &v, &vl), MAPCACHE_E_INVALID_HANDLE);
    CHECK(k == NULL && kl == 0 && v == NULL && vl == 0);
    free(huge_key);
}

/* initial_capacity has a documented limit: over it is INVALID_CONFIG naming the
   field and the limit, without any allocation being tried (issue 10, point 9). */
static void test_initial_capacity_limit(void) {
    CHECK(MAPCACHE_MAX_INITIAL_CAPACITY == 1073741824);
    const uint64_t over[] = {(uint64_t)MAPCACHE_MAX_INITIAL_CAPACITY + 1, (uint64_t)1 << 62,
                             UINT64_MAX};
    for (size_t i = 0; i < sizeof over / sizeof over[0]; i++) {
        mapcache_config cfg;
        CHECK_ST(MAPCACHE_CONFIG_INIT(&cfg), MAPCACHE_OK);
        cfg.initial_capacity = over[i];
        cfg.shards = i == 0 ? 1 : 0;
        mapcache_t *c = SENTINEL_PTR;
        CHECK_ERR(mapcache_new(&cfg, &c), MAPCACHE_E_INVALID_CONFIG, "mapcache_new: cfg->initial_capacity = ");
        CHECK(contains_str(mapcache_last_error(),
                           "is larger than MAPCACHE_MAX_INITIAL_CAPACITY (1073741824)"));
        CHECK(c == NULL);
    }
    /* The library is fine afterwards. */
    mapcache_config cfg;
    CHECK_ST(MAPCACHE_CONFIG_INIT(&cfg), MAPCACHE_OK);
    cfg.initial_capacity = 16;
    mapcache_t *c = NULL;
    CHECK_ST(mapcache_new(&cfg, &c), MAPCACHE_OK);
    mapcache_free(c);
}

/* A table the system cannot reserve is MAPCACHE_E_NO_MEMORY, never a crash: in a
   child whose address space is capped, a cache sized at the limit in one shard
   (a bucket array of about 30 GB) cannot be mapped. The child reports through a
   pipe and then kills itself, so that no exit handler (valgrind's leak check of
   the forked copy of this process) decides its status. */
static char no_memory_in_child(void) {
    long pages = 0;
    FILE *statm = fopen("/proc/self/statm", "r");
    if (statm == NULL || fscanf(statm, "%ld", &pages) != 1) return 'a';
    fclose(statm);
    struct rlimit cap;
    cap.rlim_cur = cap.rlim_max = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + (1u << 30);
    if (setrlimit(RLIMIT_AS, &cap) != 0) return 'b';
    mapcache_config cfg;
    if (MAPCACHE_CONFIG_INIT(&cfg) != MAPCACHE_OK) return 'c';
    cfg.initial_capacity = MAPCACHE_MAX_INITIAL_CAPACITY;
    cfg.shards = 1;
    mapcache_t *c = SENTINEL_PTR;
    if (mapcache_new(&cfg, &c) != MAPCACHE_E_NO_MEMORY) return 'd';
    if (c != NULL) return 'e';
    if (!contains_str(mapcache_last_error(), "out of memory allocating")) return 'f';
    return '0';
}

static void test_no_memory(void) {
    int fds[2];
    CHECK(pipe(fds) == 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        char result = no_memory_in_child();
        if (write(fds[1], &result, 1) != 1) result = 'w';
        kill(getpid(), SIGKILL);
    }
    close(fds[1]);
    char result = '?';
    CHECK(read(fds[0], &result, 1) == 1);
    close(fds[0]);
    int wstatus = 0;
    CHECK(waitpid(pid, &wstatus, 0) == pid);
    if (result != '0') fprintf(stderr, "  the child's check '%c' failed\n", result);
    CHECK(result == '0');
}

/* ---------------------------------------- batch message forms (point 10) */

/* One rule for every call, batches included: messages the C layer writes (bad
   arguments, handles, per-key argument errors) start with the function and, in a
   batch, the key's index; the core's own reports (misuse above all) are passed on
   verbatim, so a misuse report always starts with "concurrent map ...". */
struct batch_inside {
    mapcache_t *cache;
    mapcache_status call[3], key[3];
    char message[3][256];
};

/* A read from another thread while the flag is held: get_many's report. */
static void *get_many_reader(void *arg) {
    struct batch_inside *b = arg;
    size_t lens[1] = {1}, out_lens[1];
    uint8_t buf[8];
    mapcache_set_thread_label("reader");
    b->call[2] = mapcache_get_many(b->cache, 1, (const uint8_t *)"k", lens, buf, sizeof buf,
                                   out_lens, &b->key[2]);
    snprintf(b->message[2], sizeof b->message[2], "%s", mapcache_last_error());
    mapcache_set_thread_label(NULL);
    return NULL;
}

static void batches_while_held(void *ctx) {
    struct batch_inside *b = ctx;
    size_t lens[1] = {1};
    b->call[0] = mapcache_put_many(b->cache, 1, (const uint8_t *)"k", lens, (const uint8_t *)"v",
                                   lens, &b->key[0]);
    snprintf(b->message[0], sizeof b->message[0], "%s", mapcache_last_error());
    b->call[1] = mapcache_delete_many(b->cache, 1, (const uint8_t *)"k", lens, &b->key[1]);
    snprintf(b->message[1], sizeof b->message[1], "%s", mapcache_last_error());
    pthread_t t;
    if (pthread_create(&t, NULL, get_many_reader, b) == 0) pthread_join(t, NULL);
}

static void test_batch_message_forms(void) {
    mapcache_t *x = new_cache(MAPCACHE_MODE_EXCLUSIVE);
    CHECK_ST(mapcache_set_thread_label("batcher"), MAPCACHE_OK);
    struct batch_inside b;
    memset(&b, 0, sizeof b);
    b.cache = x;
    CHECK_ST(mapcache_debug_hold_write(x, S("k"), batches_while_held, &b), MAPCACHE_OK);
    const char *write_report =
        "concurrent map writes: 'batcher' collided with a write in progress by 'batcher'";
    CHECK(b.call[0] == MAPCACHE_OK && b.key[0] == MAPCACHE_E_CONCURRENT_WRITE);
    CHECK(strcmp(b.message[0], write_report) == 0);
    CHECK(b.call[1] == MAPCACHE_OK && b.key[1] == MAPCACHE_E_CONCURRENT_WRITE);
    CHECK(strcmp(b.message[1], write_report) == 0);
    CHECK(b.call[2] == MAPCACHE_OK && b.key[2] == MAPCACHE_E_CONCURRENT_READ_WRITE);
    CHECK(strcmp(b.message[2], "concurrent map read and map write: 'reader' collided with a "
                               "write in progress by 'batcher'") == 0);
    if (strncmp(b.message[0], "concurrent map", 14) != 0)
        fprintf(stderr, "  put_many's report: \"%s\"\n", b.message[0]);
    /* The same report as a single call's. */
    struct put_inside single = {x, MAPCACHE_OK, false};
    CHECK_ST(mapcache_debug_hold_write(x, S("k"), put_while_held, &single), MAPCACHE_OK);
    CHECK(single.st == MAPCACHE_E_CONCURRENT_WRITE);
    CHECK(strcmp(mapcache_last_error(), write_report) == 0);
    CHECK_ST(mapcache_set_thread_label(NULL), MAPCACHE_OK);
    mapcache_free(x);

    /* A per-key argument error: the function, the key's index, the problem. */
    mapcache_t *c = new_cache(MAPCACHE_MODE_CONCURRENT);
    size_t huge_lens[2] = {1, (size_t)MAPCACHE_MAX_VALUE_LEN + 1};
    uint8_t *huge_values = readable_region(huge_lens[0] + huge_lens[1]);
    CHECK(huge_values != NULL);
    if (!huge_values) return;
    mapcache_status st[2];
    CHECK_ST(mapcache_put_many(c, 2, (const uint8_t *)"ab", (size_t[]){1, 1}, huge_values,
                               huge_lens, st),
             MAPCACHE_OK);
    CHECK(strcmp(mapcache_last_error(), "mapcache_put_many: key 1: value_len = 1073741825 is "
                                        "longer than MAPCACHE_MAX_VALUE_LEN (1073741824)") == 0);
    release_region(huge_values, huge_lens[0] + huge_lens[1]);
    /* A whole-call error: the function and the argument, no index. */
    CHECK_ST(mapcache_delete_many(c, 1, NULL, (size_t[]){1}, st), MAPCACHE_E_INVALID_ARG);
    CHECK(strcmp(mapcache_last_error(),
                 "mapcache_delete_many: keys is NULL but the lengths in key_lens add up to 1") == 0);
    mapcache_free(c);
}

/* What the header says of labels (point 14): "" is a label like any other, quoted
   as '' in reports; only NULL removes a label. */
static void test_empty_label_is_a_label(void) {
    mapcache_t *x = new_cache(MAPCACHE_MODE_EXCLUSIVE);
    CHECK_ST(mapcache_set_thread_label(""), MAPCACHE_OK);
    struct put_inside inside = {x, MAPCACHE_OK, false};
    CHECK_ST(mapcache_debug_hold_write(x, S("k"), put_while_held, &inside), MAPCACHE_OK);
    CHECK(inside.st == MAPCACHE_E_CONCURRENT_WRITE);
    CHECK(strcmp(mapcache_last_error(),
                 "concurrent map writes: '' collided with a write in progress by ''") == 0);
    CHECK_ST(mapcache_set_thread_label(NULL), MAPCACHE_OK);
    CHECK_ST(mapcache_debug_hold_write(x, S("k"), put_while_held, &inside), MAPCACHE_OK);
    CHECK(contains_str(mapcache_last_error(), "concurrent map writes: 'thread "));
    mapcache_free(x);
}

/* ---------------------------------------- batch argument overlap (point 11) */

/* Every output of a batch (values, out_value_lens, out_statuses) must be disjoint
   from every input (keys, key_lens, values, value_lens) and from the other
   outputs: INVALID_ARG naming both, before any key is processed. One arena holds
   every array, so that any two can be made to overlap. */
#define ARENA_WORDS 64
static size_t g_arena[ARENA_WORDS];

static void fill_arena(void) {
    /* Two keys "k1", "k2" at byte 0 (key_lens {2, 2} at word 8), values "v1v2" at
       byte 16 (value_lens at word 10); outputs from word 16 on. */
    memset(g_arena, 0, sizeof g_arena);
    memcpy((char *)g_arena, "k1k2", 4);
    memcpy((char *)g_arena + 16, "v1v2", 4);
    g_arena[8] = 2;
    g_arena[9] = 2;
    g_arena[10] = 2;
    g_arena[11] = 2;
}

#define A_BYTES(w) ((uint8_t *)&g_arena[w])
#define KEYS A_BYTES(0)
#define KEY_LENS (&g_arena[8])
#define VALUES_IN A_BYTES(2)
#define VALUE_LENS (&g_arena[10])

/* A loader that must not run: the call fails on its arguments first. */
static int32_t loader_never_called(void *ctx, const uint8_t *key, size_t key_len,
                                   struct mapcache_load_result *result) {
    (void)ctx; (void)key; (void)key_len; (void)result;
    fprintf(stderr, "  the loader ran although the call's arguments overlap\n");
    g_current_failed = 1;
    return 1;
}

/* Every output, scalar out-pointers too, against every input and every other
   output of the call (the header's rule on arguments): a scalar written into
   the value buffer, or into another scalar, would lose a result, and
   mapcache_new and mapcache_load write *out before reading the config. */
static void test_scalar_out_overlap(void) {
    mapcache_t *c = new_cache(MAPCACHE_MODE_CONCURRENT);
    CHECK_ST(mapcache_put(c, S("k"), S("value-of-16bytes"), NULL), MAPCACHE_OK);
    _Alignas(8) uint8_t buf[64];
    _Alignas(8) uint8_t in[16];
    size_t len = 99;
    bool flag = true;
    memcpy(in, "kv", 2);
    CHECK_ERR(mapcache_get(c, S("k"), buf, 24, (size_t *)(buf + 8)), MAPCACHE_E_INVALID_ARG,
              "mapcache_get: buf overlaps out_len");
    CHECK_ERR(mapcache_get(c, in, 1, buf, 24, (size_t *)in), MAPCACHE_E_INVALID_ARG,
              "mapcache_get: out_len overlaps key");
    CHECK_ERR(mapcache_contains(c, in, 1, (bool *)in), MAPCACHE_E_INVALID_ARG,
              "mapcache_contains: out overlaps key");
    CHECK_ERR(mapcache_put(c, in, 1, in + 1, 1, (bool *)(in + 1)), MAPCACHE_E_INVALID_ARG,
              "mapcache_put: out_replaced overlaps value");
    CHECK_ERR(mapcache_get_or_insert(c, S("new"), in, 16, buf, 16, (size_t *)(in + 8), &flag),
              MAPCACHE_E_INVALID_ARG, "mapcache_get_or_insert: out_len overlaps value");
    CHECK_ERR(mapcache_get_or_insert(c, S("new"), S("v"), buf, 16, &len, (bool *)(buf + 3)),
              MAPCACHE_E_INVALID_ARG, "mapcache_get_or_insert: buf overlaps out_inserted");
    CHECK_ERR(mapcache_get_or_insert(c, S("new"), S("v"), buf, 16, (size_t *)(buf + 32),
                                     (bool *)(buf + 35)),
              MAPCACHE_E_INVALID_ARG, "mapcache_get_or_insert: out_len overlaps out_inserted");
    bool present = true;
    CHECK_ST(mapcache_contains(c, S("new"), &present), MAPCACHE_OK);
    CHECK(!present); /* none of the three stored anything */
    memcpy(in, "value-of-16bytes", 16);
    CHECK_ERR(mapcache_compare_and_swap(c, S("k"), in, 16, S("w"), (bool *)(in + 4)),
              MAPCACHE_E_INVALID_ARG, "mapcache_compare_and_swap: out_swapped overlaps expected");
    CHECK_ERR(mapcache_get_or_load(c, S("absent"), loader_never_called, NULL, buf, 16,
                                   (size_t *)(buf + 8), NULL),
              MAPCACHE_E_INVALID_ARG, "mapcache_get_or_load: buf overlaps out_len");
    CHECK_ERR(mapcache_get_or_load(c, S("absent"), loader_never_called, NULL, buf, 16, &len,
                                   (int32_t *)(buf + 4)),
              MAPCACHE_E_INVALID_ARG, "mapcache_get_or_load: buf overlaps loader_status");
    /* The value is intact. */
    CHECK_ST(mapcache_get(c, S("k"), buf, sizeof buf, &len), MAPCACHE_OK);
    CHECK(len == 16 && memcmp(buf, "value-of-16bytes", 16) == 0);

    mapcache_iter_t *it = NULL;
    CHECK_ST(mapcache_iter_new(c, &it), MAPCACHE_OK);
    _Alignas(8) uint8_t outs[32];
    const uint8_t *v;
    size_t vl;
    CHECK_ERR(mapcache_iter_next(it, (const uint8_t **)outs, (size_t *)(outs + 4), &v, &vl),
              MAPCACHE_E_INVALID_ARG, "mapcache_iter_next: key overlaps key_len");
    /* The refused call did not advance the iterator: it still yields "k". */
    const uint8_t *k;
    size_t kl;
    CHECK_ST(mapcache_iter_next(it, &k, &kl, &v, &vl), MAPCACHE_OK);
    CHECK(kl == 1 && k[0] == 'k');
    mapcache_iter_free(it);
    mapcache_free(c);

    /* *out inside the config it is made from. */
    mapcache_config cfg;
    MAPCACHE_CONFIG_INIT(&cfg);
    mapcache_t **inside = (mapcache_t **)(void *)((uint8_t *)&cfg + sizeof(size_t));
    CHECK_ERR(mapcache_new(&cfg, inside), MAPCACHE_E_INVALID_ARG, "mapcache_new: out overlaps cfg");
    CHECK_ERR(mapcache_load("some.snap", &cfg, inside, NULL), MAPCACHE_E_INVALID_ARG,
              "mapcache_load: out overlaps cfg");
    struct mapcache_load_report report;
    memset(&report, 0, sizeof report);
    report.struct_size = sizeof report;
    mapcache_t *loaded = NULL;
    CHECK_ERR(mapcache_load("some.snap", NULL, (mapcache_t **)(void *)((uint8_t *)&report + 8),
                            &report),
              MAPCACHE_E_INVALID_ARG, "mapcache_load: out overlaps report");
    (void)loaded;
}

static void test_batch_overlap(void) {
    mapcache_t *c = new_cache(MAPCACHE_MODE_CONCURRENT);
    struct {
        uint8_t *values;
        size_t *out_value_lens;
        mapcache_status *out_statuses;
        const char *message;
    } get_cases[] = {
        /* outputs against inputs */
        {A_BYTES(0) + 1, &g_arena[20], (mapcache_status *)&g_arena[24], "values overlaps keys"},
        {A_BYTES(9), &g_arena[20], (mapcache_status *)&g_arena[24], "values overlaps key_lens"},
        {A_BYTES(16), &g_arena[0], (mapcache_status *)&g_arena[24], "out_value_lens overlaps keys"},
        {A_BYTES(16), &g_arena[9], (mapcache_status *)&g_arena[24],
         "out_value_lens overlaps key_lens"},
        {A_BYTES(16), &g_arena[20], (mapcache_status *)A_BYTES(0), "out_statuses overlaps keys"},
        {A_BYTES(16), &g_arena[20], (mapcache_status *)&g_arena[8],
         "out_statuses overlaps key_lens"},
        /* outputs against each other */
        {A_BYTES(16), &g_arena[17], (mapcache_status *)&g_arena[24],
         "values overlaps out_value_lens"},
        {A_BYTES(16), &g_arena[20], (mapcache_status *)&g_arena[17],
         "values overlaps out_statuses"},
        {A_BYTES(16), &g_arena[20], (mapcache_status *)&g_arena[21],
         "out_value_lens overlaps out_statuses"},
    };
    for (size_t i = 0; i < sizeof get_cases / sizeof get_cases[0]; i++) {
        fill_arena();
        size_t before[ARENA_WORDS];
        memcpy(before, g_arena, sizeof before);
        CHECK_ERR(mapcache_get_many(c, 2, KEYS, KEY_LENS, get_cases[i].values, 16,
                                    get_cases[i].out_value_lens, get_cases[i].out_statuses),
                  MAPCACHE_E_INVALID_ARG, get_cases[i].message);
        CHECK(contains_str(mapcache_last_error(), "mapcache_get_many: "));
        CHECK(memcmp(before, g_arena, sizeof before) == 0); /* nothing written */
    }

    struct {
        mapcache_status *out_statuses;
        const char *message;
    } put_cases[] = {
        {(mapcache_status *)A_BYTES(0), "out_statuses overlaps keys"},
        {(mapcache_status *)&g_arena[9], "out_statuses overlaps key_lens"},
        {(mapcache_status *)A_BYTES(2), "out_statuses overlaps values"},
        {(mapcache_status *)&g_arena[11], "out_statuses overlaps value_lens"},
    };
    for (size_t i = 0; i < sizeof put_cases / sizeof put_cases[0]; i++) {
        fill_arena();
        size_t before[ARENA_WORDS];
        memcpy(before, g_arena, sizeof before);
        CHECK_ERR(mapcache_put_many(c, 2, KEYS, KEY_LENS, VALUES_IN, VALUE_LENS,
                                    put_cases[i].out_statuses),
                  MAPCACHE_E_INVALID_ARG, put_cases[i].message);
        CHECK(contains_str(mapcache_last_error(), "mapcache_put_many: "));
        CHECK(memcmp(before, g_arena, sizeof before) == 0);
    }
    for (size_t i = 0; i < 2; i++) {
        fill_arena();
        size_t before[ARENA_WORDS];
        memcpy(before, g_arena, sizeof before);
        CHECK_ERR(mapcache_delete_many(c, 2, KEYS, KEY_LENS, put_cases[i].out_statuses),
                  MAPCACHE_E_INVALID_ARG, put_cases[i].message);
        CHECK(contains_str(mapcache_last_error(), "mapcache_delete_many: "));
        CHECK(memcmp(before, g_arena, sizeof before) == 0);
    }
    size_t n = 1;
    CHECK_ST(mapcache_len(c, &n), MAPCACHE_OK);
    CHECK(n == 0); /* no key was processed by any of them */

    /* Disjoint arrays in the same arena, back to back: accepted. */
    fill_arena();
    mapcache_status *st = (mapcache_status *)&g_arena[24];
    CHECK_ST(mapcache_put_many(c, 2, KEYS, KEY_LENS, VALUES_IN, VALUE_LENS, st), MAPCACHE_OK);
    CHECK(st[0] == MAPCACHE_OK && st[1] == MAPCACHE_OK);
    CHECK_ST(mapcache_get_many(c, 2, KEYS, KEY_LENS, A_BYTES(16), 32, &g_arena[20], st),
             MAPCACHE_OK);
    CHECK(st[0] == MAPCACHE_OK && st[1] == MAPCACHE_OK && memcmp(A_BYTES(16), "v1v2", 4) == 0);
    CHECK_ST(mapcache_delete_many(c, 2, KEYS, KEY_LENS, st), MAPCACHE_OK);
    CHECK(st[0] == MAPCACHE_OK && st[1] == MAPCACHE_OK);
    mapcache_free(c);
}

/* -------------------------------------------------- exclusive-mode misuse */

struct collide {
    mapcache_t *cache;
    const char *label;
    mapcache_status write_status, read_status;
    char write_message[512], read_message[512];
};

static void *collider_thread(void *arg) {
    struct collide *co = arg;
    mapcache_set_thread_label(co->label);
    co->write_status = mapcache_put(co->cache, S("other-key"), S("v"), NULL);
    snprintf(co->write_message, sizeof co->write_message, "%s", mapcache_last_error());
    size_t len;
    uint8_t buf[8];
    co->read_status = mapcache_get(co->cache, S("held-key"), buf, sizeof buf, &len);
    snprintf(co->read_message, sizeof co->read_message, "%s", mapcache_last_error());
    mapcache_set_thread_label(NULL);
    return NULL;
}

/* Runs while the holder thread holds the write flag: a second thread collides. */
static void run_collider(void *ctx) {
    pthread_t t;
    if (pthread_create(&t, NULL, collider_thread, ctx) == 0) pthread_join(t, NULL);
}

static void test_exclusive_misuse_deterministic(void) {
    mapcache_t *c = new_cache(MAPCACHE_MODE_EXCLUSIVE);
    struct collide co;
    memset(&co, 0, sizeof co);
    co.cache = c;
    co.label = "collider-B";
    CHECK_ST(mapcache_set_thread_label("holder-A"), MAPCACHE_OK);
    CHECK_ST(mapcache_debug_hold_write(c, S("held-key"), run_collider, &co), MAPCACHE_OK);
    CHECK(co.write_status == MAPCACHE_E_CONCURRENT_WRITE);
    CHECK(contains_str(co.write_message, "concurrent map writes"));
    CHECK(contains_str(co.write_message, "'collider-B'"));
    CHECK(contains_str(co.write_message, "'holder-A'"));
    /* A read during the write is detected too (the flag is held throughout). */
    CHECK(co.read_status == MAPCACHE_E_CONCURRENT_READ_WRITE);
    CHECK(contains_str(co.read_message, "concurrent map read and map write"));
    CHECK(contains_str(co.read_message, "'collider-B'") &&
          contains_str(co.read_message, "'holder-A'"));
    /* An unlabelled thread is named by its OS thread id. */
    struct collide anon;
    memset(&anon, 0, sizeof anon);
    anon.cache = c;
    anon.label = NULL; /* mapcache_set_thread_label(NULL): no label */
    CHECK_ST(mapcache_debug_hold_write(c, S("held-key"), run_collider, &anon), MAPCACHE_OK);
    CHECK(anon.write_status == MAPCACHE_E_CONCURRENT_WRITE);
    CHECK(contains_str(anon.write_message, "concurrent map writes: 'thread "));
    CHECK(contains_str(anon.write_message, "in progress by 'holder-A'"));

    /* The colliding write changed nothing; the map works once the flag is free. */
    bool present = true;
    CHECK_ST(mapcache_contains(c, S("other-key"), &present), MAPCACHE_OK);
    CHECK(!present);
    CHECK_ST(mapcache_put(c, S("other-key"), S("v"), NULL), MAPCACHE_OK);

    /* The hook is refused in concurrent mode. */
    mapcache_t *cc = new_cache(MAPCACHE_MODE_CONCURRENT);
    CHECK_ERR(mapcache_debug_hold_write(cc, S("k"), run_collider, &co), MAPCACHE_E_INVALID_ARG,
              "not in MAPCACHE_MODE_EXCLUSIVE");
    CHECK_ERR(mapcache_debug_hold_write(c, S("k"), NULL, NULL), MAPCACHE_E_INVALID_ARG,
              "callback is NULL");
    mapcache_free(cc);
    mapcache_set_thread_label(NULL);
    mapcache_free(c);
}

/* Every call from a second thread while the write flag is held: each reports the
   misuse documented for it, names both threads, and changes nothing. */
struct every_call {
    mapcache_t *cache;
    int failures;
};

#define EXPECT_MISUSE(expr, want)                                                    \
    do {                                                                             \
        mapcache_status st_ = (expr);                                                \
        const char *m_ = mapcache_last_error();                                      \
        if (st_ != (want) || !contains_str(m_, "'every-collider'") ||                \
            !contains_str(m_, "'every-holder'")) {                                   \
            fprintf(stderr, "  %s:%d: %s -> %s, wanted %s; message: %s\n", __FILE__, \
                    __LINE__, #expr, mapcache_status_str(st_), #want, m_);           \
            ec->failures++;                                                          \
        }                                                                            \
    } while (0)

static void nested_hold(void *ctx) {
    (void)ctx;
}

static void *every_call_thread(void *arg) {
    struct every_call *ec = arg;
    mapcache_t *c = ec->cache;
    uint8_t buf[16];
    size_t len, lens[2] = {1, 1};
    bool b;
    mapcache_status st[2];
    mapcache_set_thread_label("every-collider");
    EXPECT_MISUSE(mapcache_put(c, S("n"), S("v"), NULL), MAPCACHE_E_CONCURRENT_WRITE);
    EXPECT_MISUSE(mapcache_delete(c, S("a")), MAPCACHE_E_CONCURRENT_WRITE);
    EXPECT_MISUSE(mapcache_clear(c), MAPCACHE_E_CONCURRENT_WRITE);
    EXPECT_MISUSE(mapcache_compare_and_swap(c, S("a"), S("1"), S("2"), &b),
                  MAPCACHE_E_CONCURRENT_WRITE);
    EXPECT_MISUSE(mapcache_debug_hold_write(c, S("a"), nested_hold, NULL),
                  MAPCACHE_E_CONCURRENT_WRITE);
    EXPECT_MISUSE(mapcache_get(c, S("a"), buf, sizeof buf, &len), MAPCACHE_E_CONCURRENT_READ_WRITE);
    EXPECT_MISUSE(mapcache_get_with(c, S("a"), capture_value, NULL), MAPCACHE_E_CONCURRENT_READ_WRITE);
    EXPECT_MISUSE(mapcache_contains(c, S("a"), &b), MAPCACHE_E_CONCURRENT_READ_WRITE);
    /* get_or_insert reads first: the read sees the writer. */
    EXPECT_MISUSE(mapcache_get_or_insert(c, S("n"), S("v"), buf, sizeof buf, &len, &b),
                  MAPCACHE_E_CONCURRENT_READ_WRITE);
    /* Batches: the call runs, each key reports the misuse. */
    CHECK_ST(mapcache_put_many(c, 2, (const uint8_t *)"xy", lens, (const uint8_t *)"12", lens, st),
             MAPCACHE_OK);
    if (st[0] != MAPCACHE_E_CONCURRENT_WRITE || st[1] != MAPCACHE_E_CONCURRENT_WRITE) ec->failures++;
    /* The misuse report keeps its form in a batch too (no prefix, no index). */
    if (strncmp(mapcache_last_error(), "concurrent map writes: ", 23) != 0) ec->failures++;
    CHECK_ST(mapcache_delete_many(c, 2, (const uint8_t *)"ab", lens, st), MAPCACHE_OK);
    if (st[0] != MAPCACHE_E_CONCURRENT_WRITE || st[1] != MAPCACHE_E_CONCURRENT_WRITE) ec->failures++;
    size_t vlens[2];
    CHECK_ST(mapcache_get_many(c, 2, (const uint8_t *)"ab", lens, buf, sizeof buf, vlens, st),
             MAPCACHE_OK);
    if (st[0] != MAPCACHE_E_CONCURRENT_READ_WRITE || st[1] != MAPCACHE_E_CONCURRENT_READ_WRITE)
        ec->failures++;
    /* The count is a read too, and so is each step of an iteration (the
       iterator drops the failing step's entries; the next call goes on). */
    EXPECT_MISUSE(mapcache_len(c, &len), MAPCACHE_E_CONCURRENT_READ_WRITE);
    mapcache_iter_t *it = NULL;
    CHECK_ST(mapcache_iter_new(c, &it), MAPCACHE_OK);
    const uint8_t *kp, *vp;
    size_t kl, vl;
    EXPECT_MISUSE(mapcache_iter_next(it, &kp, &kl, &vp, &vl), MAPCACHE_E_CONCURRENT_READ_WRITE);
    if (kp != NULL || kl != 0 || vp != NULL || vl != 0) ec->failures++;
    mapcache_iter_free(it);
    mapcache_set_thread_label(NULL);
    return NULL;
}

static void run_every_call(void *ctx) {
    pthread_t t;
    if (pthread_create(&t, NULL, every_call_thread, ctx) == 0) pthread_join(t, NULL);
}

static void test_exclusive_misuse_every_call(void) {
    mapcache_t *c = new_cache(MAPCACHE_MODE_EXCLUSIVE);
    CHECK_ST(mapcache_put(c, S("a"), S("1"), NULL), MAPCACHE_OK);
    CHECK_ST(mapcache_put(c, S("b"), S("2"), NULL), MAPCACHE_OK);
    struct every_call ec = {c, 0};
    CHECK_ST(mapcache_set_thread_label("every-holder"), MAPCACHE_OK);
    CHECK_ST(mapcache_debug_hold_write(c, S("a"), run_every_call, &ec), MAPCACHE_OK);
    CHECK(ec.failures == 0);
    mapcache_set_thread_label(NULL);
    /* Nothing changed. */
    size_t n = 0, len = 0;
    uint8_t buf[4];
    CHECK_ST(mapcache_len(c, &n), MAPCACHE_OK);
    CHECK(n == 2);
    CHECK_ST(mapcache_get(c, S("a"), buf, sizeof buf, &len), MAPCACHE_OK);
    CHECK(len == 1 && buf[0] == '1');
    CHECK_ST(mapcache_get(c, S("n"), buf, sizeof buf, &len), MAPCACHE_NOT_FOUND);
    mapcache_free(c);
}

/* Two threads write an exclusive-mode cache at once, as a buggy host would,
   until one of them sees the collision. Both keep writing until one is caught,
   however long the scheduler keeps them apart: an overlap always comes (the two
   run on two cores at once, or one is preempted while it holds the flag, which
   is how it comes under valgrind, one thread at a time), so the bound is only
   reached by a build that misses overlaps. */
#define HAMMER_BOUND_S 120.0
struct hammer_ex {
    mapcache_t *cache;
    const char *label;
    volatile int *stop;
    pthread_barrier_t *barrier;
    int collisions;
    char message[512];
};

static void *exclusive_writer(void *arg) {
    struct hammer_ex *h = arg;
    mapcache_set_thread_label(h->label);
    pthread_barrier_wait(h->barrier);
    char key[32];
    double deadline = now_s() + HAMMER_BOUND_S;
    for (unsigned i = 0; !__atomic_load_n(h->stop, __ATOMIC_RELAXED); i++) {
        int n = sprintf(key, "%s-%u", h->label, i % 512u);
        mapcache_status s = mapcache_put(h->cache, (const uint8_t *)key, (size_t)n, S("value"), NULL);
        if (s == MAPCACHE_E_CONCURRENT_WRITE) {
            h->collisions++;
            snprintf(h->message, sizeof h->message, "%s", mapcache_last_error());
            __atomic_store_n(h->stop, 1, __ATOMIC_RELAXED);
        } else if (s != MAPCACHE_OK) {
            snprintf(h->message, sizeof h->message, "unexpected %d: %s", s, mapcache_last_error());
            __atomic_store_n(h->stop, 1, __ATOMIC_RELAXED);
        }
        if ((i & 1023u) == 0 && now_s() > deadline) break;
    }
    mapcache_set_thread_label(NULL);
    return NULL;
}

static void test_exclusive_misuse_hammer(void) {
    mapcache_t *c = new_cache(MAPCACHE_MODE_EXCLUSIVE);
    volatile int stop = 0;
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, 2);
    struct hammer_ex a = {c, "writer-one", &stop, &barrier, 0, ""};
    struct hammer_ex b = {c, "writer-two", &stop, &barrier, 0, ""};
    pthread_t ta, tb;
    CHECK(pthread_create(&ta, NULL, exclusive_writer, &a) == 0);
    CHECK(pthread_create(&tb, NULL, exclusive_writer, &b) == 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    pthread_barrier_destroy(&barrier);
    CHECK(a.collisions + b.collisions > 0);
    const char *msg = a.collisions ? a.message : b.message;
    if (!a.collisions && !b.collisions)
        fprintf(stderr, "  no collision in %.0f s: %s | %s\n", HAMMER_BOUND_S, a.message, b.message);
    CHECK(contains_str(msg, "concurrent map writes"));
    CHECK(contains_str(msg, "'writer-one'") && contains_str(msg, "'writer-two'"));
    mapcache_free(c);
}

/* MAPCACHE_MISUSE_ABORT: the process aborts, as Go's runtime does. In a child. */
static void abort_child_hold(void *ctx) {
    run_collider(ctx);
}

static void test_misuse_abort_policy(void) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        mapcache_config cfg;
        if (MAPCACHE_CONFIG_INIT(&cfg) != MAPCACHE_OK) _exit(3);
        cfg.mode = MAPCACHE_MODE_EXCLUSIVE;
        cfg.misuse_policy = MAPCACHE_MISUSE_ABORT;
        mapcache_t *c = NULL;
        if (mapcache_new(&cfg, &c) != MAPCACHE_OK) _exit(3);
        struct collide co;
        memset(&co, 0, sizeof co);
        co.cache = c;
        co.label = "abort-collider";
        mapcache_set_thread_label("abort-holder");
        mapcache_debug_hold_write(c, S("held-key"), abort_child_hold, &co);
        _exit(4); /* not reached: the collision aborts the process */
    }
    int wstatus = 0;
    CHECK(waitpid(pid, &wstatus, 0) == pid);
    CHECK(WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGABRT);
}

/* ------------------------------------------------- concurrent-mode hammer */

#define THREADS 4
#define OPS 4000
#define SHARED_KEYS 64

/* An iterating reader runs beside the workers. Handshakes, not timing, make them
   overlap: all start at one barrier, and each worker, after its OPS operations,
   keeps racing the reader on the shared keys until the reader has finished two
   passes (the second begun and ended while every worker was still running) or
   has stopped on an error. */
struct iter_reader {
    mapcache_t *cache;
    pthread_barrier_t *start;
    volatile int *stop;
    int passes, finished, errors; /* passes and finished: atomic accesses */
};

struct worker {
    mapcache_t *cache;
    int id;
    int errors;
    pthread_barrier_t *start;
    struct iter_reader *reader;
};

/* One operation on a shared key, chosen by `seed`: every one races with the
   other threads. */
static mapcache_status shared_op(struct worker *w, unsigned seed, const char *val, int vn) {
    char key[64];
    uint8_t buf[64];
    size_t len;
    bool b;
    int op = (int)((seed >> 16) % 8);
    int sn = sprintf(key, "shared-%d", (int)((seed >> 8) % SHARED_KEYS));
    mapcache_status s = MAPCACHE_OK;
    switch (op) {
    case 0:
        s = mapcache_put(w->cache, (const uint8_t *)key, (size_t)sn, (const uint8_t *)val,
                         (size_t)vn, &b);
        break;
    case 1:
        s = mapcache_delete(w->cache, (const uint8_t *)key, (size_t)sn);
        if (s == MAPCACHE_NOT_FOUND) s = MAPCACHE_OK;
        break;
    case 2:
        s = mapcache_get(w->cache, (const uint8_t *)key, (size_t)sn, buf, sizeof buf, &len);
        if (s == MAPCACHE_NOT_FOUND) s = MAPCACHE_OK;
        break;
    case 3:
        s = mapcache_get_or_insert(w->cache, (const uint8_t *)key, (size_t)sn,
                                   (const uint8_t *)val, (size_t)vn, buf, sizeof buf, &len, &b);
        break;
    case 4:
        s = mapcache_compare_and_swap(w->cache, (const uint8_t *)key, (size_t)sn, buf, 3,
                                      (const uint8_t *)val, (size_t)vn, &b);
        if (s == MAPCACHE_NOT_FOUND) s = MAPCACHE_OK;
        break;
    case 5:
        s = mapcache_contains(w->cache, (const uint8_t *)key, (size_t)sn, &b);
        break;
    case 6: {
        struct capture cap;
        memset(&cap, 0, sizeof cap);
        s = mapcache_get_with(w->cache, (const uint8_t *)key, (size_t)sn, capture_value, &cap);
        if (s == MAPCACHE_NOT_FOUND) s = MAPCACHE_OK;
        break;
    }
    default:
        s = mapcache_len(w->cache, &len);
        break;
    }
    if (s != MAPCACHE_OK) {
        fprintf(stderr, "  worker %d op %d: %s (%s)\n", w->id, op, mapcache_status_str(s),
                mapcache_last_error());
        w->errors++;
    }
    return s;
}

static void *concurrent_worker(void *arg) {
    struct worker *w = arg;
    char key[64], val[64];
    uint8_t buf[64];
    size_t len;
    char label[32];
    snprintf(label, sizeof label, "worker-%d", w->id);
    mapcache_set_thread_label(label);
    unsigned seed = (unsigned)w->id * 2654435761u;
    pthread_barrier_wait(w->start);
    int vn = 0;
    for (int i = 0; i < OPS; i++) {
        seed = seed * 1103515245u + 12345u;
        /* Own keys: deterministic final state. */
        int kn = sprintf(key, "own-%d-%d", w->id, i % 200);
        vn = sprintf(val, "v-%d-%d", w->id, i);
        if (mapcache_put(w->cache, (const uint8_t *)key, (size_t)kn, (const uint8_t *)val, (size_t)vn,
                         NULL) != MAPCACHE_OK)
            w->errors++;
        if (mapcache_get(w->cache, (const uint8_t *)key, (size_t)kn, buf, sizeof buf, &len) !=
                MAPCACHE_OK ||
            len != (size_t)vn || memcmp(buf, val, len) != 0)
            w->errors++;
        shared_op(w, seed, val, vn);
    }
    /* Shared keys only from here on, so the own keys keep their last write. */
    while (__atomic_load_n(&w->reader->passes, __ATOMIC_ACQUIRE) < 2 &&
           !__atomic_load_n(&w->reader->finished, __ATOMIC_ACQUIRE)) {
        seed = seed * 1103515245u + 12345u;
        shared_op(w, seed, val, vn);
    }
    mapcache_set_thread_label(NULL);
    return NULL;
}

static void *iterating_reader(void *arg) {
    struct iter_reader *r = arg;
    pthread_barrier_wait(r->start);
    do {
        mapcache_iter_t *it = NULL;
        if (mapcache_iter_new(r->cache, &it) != MAPCACHE_OK) {
            r->errors++;
            break;
        }
        const uint8_t *k, *v;
        size_t kl, vl;
        mapcache_status s;
        while ((s = mapcache_iter_next(it, &k, &kl, &v, &vl)) == MAPCACHE_OK) {
            if (kl == 0 || (k[0] != 'o' && k[0] != 's')) r->errors++;
        }
        if (s != MAPCACHE_NOT_FOUND) r->errors++;
        mapcache_iter_free(it);
        __atomic_add_fetch(&r->passes, 1, __ATOMIC_RELEASE);
    } while (!__atomic_load_n(r->stop, __ATOMIC_RELAXED));
    __atomic_store_n(&r->finished, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void test_concurrent_hammer(void) {
    mapcache_t *c = new_cache(MAPCACHE_MODE_CONCURRENT);
    pthread_t t[THREADS], rt;
    struct worker w[THREADS];
    volatile int stop = 0;
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, THREADS + 1);
    struct iter_reader r = {c, &start, &stop, 0, 0, 0};
    CHECK(pthread_create(&rt, NULL, iterating_reader, &r) == 0);
    for (int i = 0; i < THREADS; i++) {
        w[i].cache = c;
        w[i].id = i;
        w[i].errors = 0;
        w[i].start = &start;
        w[i].reader = &r;
        CHECK(pthread_create(&t[i], NULL, concurrent_worker, &w[i]) == 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        CHECK(w[i].errors == 0);
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
    pthread_join(rt, NULL);
    pthread_barrier_destroy(&start);
    CHECK(r.errors == 0);
    CHECK(r.passes >= 2);
    /* Each worker's own keys hold its last write. */
    char key[64], val[64];
    uint8_t buf[64];
    size_t len;
    for (int id = 0; id < THREADS; id++) {
        for (int k = 0; k < 200; k++) {
            int last = OPS - 200 + k; /* the last i with i % 200 == k */
            int kn = sprintf(key, "own-%d-%d", id, k);
            int vn = sprintf(val, "v-%d-%d", id, last);
            CHECK_ST(mapcache_get(c, (const uint8_t *)key, (size_t)kn, buf, sizeof buf, &len),
                     MAPCACHE_OK);
            CHECK(len == (size_t)vn && memcmp(buf, val, len) == 0);
        }
    }
    size_t n = 0;
    CHECK_ST(mapcache_len(c, &n), MAPCACHE_OK);
    CHECK(n >= THREADS * 200 && n <= THREADS * 200 + SHARED_KEYS);
    mapcache_free(c);
}

/* mapcache_free racing with readers (a contract violation): the losers get
   INVALID_HANDLE, nobody crashes or touches freed memory (valgrind checks).
   The cache is freed once both readers have made a call (a barrier, not a
   sleep), while they keep calling. */
struct racer {
    mapcache_t *cache;
    pthread_barrier_t *running;
    int ok, invalid, other;
};

static void *free_racer(void *arg) {
    struct racer *r = arg;
    uint8_t buf[16];
    size_t len;
    for (int i = 0; i < 1000000; i++) {
        mapcache_status s = mapcache_get(r->cache, S("k"), buf, sizeof buf, &len);
        if (i == 0) pthread_barrier_wait(r->running); /* before the free: OK */
        if (s == MAPCACHE_OK) {
            r->ok++;
        } else if (s == MAPCACHE_E_INVALID_HANDLE) {
            r->invalid++;
            break;
        } else {
            r->other++;
            break;
        }
    }
    return NULL;
}

static void test_free_racing_calls(void) {
    mapcache_t *c = new_cache(MAPCACHE_MODE_CONCURRENT);
    CHECK_ST(mapcache_put(c, S("k"), S("v"), NULL), MAPCACHE_OK);
    pthread_barrier_t running;
    pthread_barrier_init(&running, NULL, 3);
    struct racer r[2] = {{c, &running, 0, 0, 0}, {c, &running, 0, 0, 0}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++) CHECK(pthread_create(&t[i], NULL, free_racer, &r[i]) == 0);
    pthread_barrier_wait(&running);
    mapcache_free(c);
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        CHECK(r[i].other == 0);
        CHECK(r[i].ok >= 1); /* the call made before the free */
        CHECK(r[i].invalid == 1 || r[i].ok == 1000000);
    }
    pthread_barrier_destroy(&running);
}

/* Stale handles after their slot is reused: a freed mapcache_t * and a freed
   mapcache_iter_t * are kept while a million caches (each with an iterator) are
   created and freed, each new one taking the freed handles' memory. Every call
   on the stale handles is INVALID_HANDLE throughout, and neither the cache of the
   cycle nor a cache kept live the whole time is touched by them.
   MAPCACHE_STALE_CYCLES in the environment sets a smaller count: `make test`
   runs the million natively and 20,000 under valgrind, where a million cycles
   take six minutes a run and find nothing 20,000 do not (every cycle reuses
   the same slots). */
#define STALE_CYCLES 1000000
/* How many of the cycles run every call on the stale handles. */
#define STALE_FULL_CHECKS 16

static int stale_cycles(void) {
    const char *env = getenv("MAPCACHE_STALE_CYCLES");
    if (env == NULL || *env == '\0') {
        return STALE_CYCLES;
    }
    char *end = NULL;
    errno = 0;
    long n = strtol(env, &end, 10);
    if (errno != 0 || *end != '\0' || n < 1 || n > STALE_CYCLES) {
        fprintf(stderr, "MAPCACHE_STALE_CYCLES=%s: not a count from 1 to %d\n", env,
                STALE_CYCLES);
        exit(2);
    }
    return (int)n;
}

static void ignore_value(void *ctx, const uint8_t *value, size_t value_len) {
    (void)ctx;
    (void)value;
    (void)value_len;
}

/* Every entry point that takes a cache, on `stale`; 0 if all reported
   INVALID_HANDLE with a "freed" message. */
static int stale_cache_calls_fail(mapcache_t *stale) {
    int bad = 0;
    uint8_t buf[8];
    size_t len;
    bool b;
    mapcache_status st[1];
#define STALE(expr)                                                                 \
    do {                                                                            \
        if ((expr) != MAPCACHE_E_INVALID_HANDLE ||                                  \
            !contains_str(mapcache_last_error(), "freed")) {                        \
            fprintf(stderr, "  %s:%d: stale handle: %s: %s\n", __FILE__, __LINE__, #expr, \
                    mapcache_last_error());                                         \
            bad = 1;                                                                \
        }                                                                           \
    } while (0)
    STALE(mapcache_get(stale, S("k"), buf, sizeof buf, &len));
    STALE(mapcache_get_with(stale, S("k"), ignore_value, NULL));
    STALE(mapcache_put(stale, S("k"), S("stale"), NULL));
    STALE(mapcache_delete(stale, S("k")));
    STALE(mapcache_contains(stale, S("k"), &b));
    STALE(mapcache_len(stale, &len));
    STALE(mapcache_clear(stale));
    STALE(mapcache_get_or_insert(stale, S("k"), S("stale"), buf, sizeof buf, &len, &b));
    STALE(mapcache_compare_and_swap(stale, S("k"), S("v"), S("stale"), &b));
    STALE(mapcache_put_many(stale, 1, (const uint8_t *)"k", (size_t[]){1},
                            (const uint8_t *)"s", (size_t[]){1}, st));
    STALE(mapcache_get_many(stale, 1, (const uint8_t *)"k", (size_t[]){1}, buf, sizeof buf,
                            &len, st));
    STALE(mapcache_delete_many(stale, 1, (const uint8_t *)"k", (size_t[]){1}, st));
    mapcache_iter_t *it = NULL;
    STALE(mapcache_iter_new(stale, &it));
    if (it != NULL) {
        mapcache_iter_free(it);
        bad = 1;
    }
#undef STALE
    /* A stale free is ignored, with a message. */
    mapcache_free(stale);
    if (!contains_str(mapcache_last_error(), "mapcache_free: cache was already freed")) {
        fprintf(stderr, "  stale mapcache_free: %s\n", mapcache_last_error());
        bad = 1;
    }
    return bad;
}

/* The iterator entry points on `stale`; 0 if both reported INVALID_HANDLE. */
static int stale_iter_calls_fail(mapcache_iter_t *stale) {
    int bad = 0;
    const uint8_t *k, *v;
    size_t kl, vl;
    if (mapcache_iter_next(stale, &k, &kl, &v, &vl) != MAPCACHE_E_INVALID_HANDLE ||
        !contains_str(mapcache_last_error(), "freed")) {
        fprintf(stderr, "  stale mapcache_iter_next: %s\n", mapcache_last_error());
        bad = 1;
    }
    mapcache_iter_free(stale);
    if (!contains_str(mapcache_last_error(), "mapcache_iter_free: it was already freed")) {
        fprintf(stderr, "  stale mapcache_iter_free: %s\n", mapcache_last_error());
        bad = 1;
    }
    return bad;
}

/* A cache of the cycle: live, holding exactly its own key, and its iterator
   live and positioned at the start. */
static int cycle_cache_intact(mapcache_t *c, mapcache_iter_t *it) {
    size_t len = 0;
    uint8_t buf[8];
    if (mapcache_len(c, &len) != MAPCACHE_OK || len != 1) return 0;
    if (mapcache_get(c, S("own"), buf, sizeof buf, &len) != MAPCACHE_OK || len != 1 ||
        buf[0] != 'c')
        return 0;
    const uint8_t *k, *v;
    size_t kl, vl;
    return mapcache_iter_next(it, &k, &kl, &v, &vl) == MAPCACHE_OK && kl == 3 &&
           memcmp(k, "own", 3) == 0;
}

static void test_stale_handles_after_reuse(void) {
    mapcache_t *kept = NULL;
    CHECK_ST(mapcache_new(NULL, &kept), MAPCACHE_OK);
    CHECK_ST(mapcache_put(kept, S("kept"), S("1"), NULL), MAPCACHE_OK);

    mapcache_t *stale = NULL;
    mapcache_iter_t *stale_it = NULL;
    CHECK_ST(mapcache_new(NULL, &stale), MAPCACHE_OK);
    CHECK_ST(mapcache_put(stale, S("k"), S("v"), NULL), MAPCACHE_OK);
    CHECK_ST(mapcache_iter_new(stale, &stale_it), MAPCACHE_OK);
    mapcache_iter_free(stale_it);
    mapcache_free(stale);

    /* The cheapest cache to make (one shard, no rehash threads): the cycles
       are most of the suite's time. */
    mapcache_config small;
    CHECK_ST(MAPCACHE_CONFIG_INIT(&small), MAPCACHE_OK);
    small.shards = 1;
    small.rehash_engine = MAPCACHE_ENGINE_SINGLE;
    const int cycles = stale_cycles();
    const int full_check_every = cycles / STALE_FULL_CHECKS > 0 ? cycles / STALE_FULL_CHECKS : 1;
    int failed_cycle = -1;
    for (int i = 0; i < cycles && failed_cycle < 0; i++) {
        mapcache_t *c = NULL;
        mapcache_iter_t *it = NULL;
        if (mapcache_new(&small, &c) != MAPCACHE_OK ||
            mapcache_put(c, S("own"), S("c"), NULL) != MAPCACHE_OK ||
            mapcache_iter_new(c, &it) != MAPCACHE_OK) {
            fprintf(stderr, "  cycle %d: %s\n", i, mapcache_last_error());
            failed_cycle = i;
            break;
        }
        /* The calls that could harm the cycle's cache, every cycle; all of them
           now and then. */
        int bad;
        if (i % full_check_every == 0) {
            bad = stale_cache_calls_fail(stale);
        } else {
            uint8_t buf[8];
            size_t len;
            bad = mapcache_put(stale, S("k"), S("stale"), NULL) != MAPCACHE_E_INVALID_HANDLE ||
                  mapcache_get(stale, S("own"), buf, sizeof buf, &len) !=
                      MAPCACHE_E_INVALID_HANDLE;
            mapcache_free(stale);
            bad |= !contains_str(mapcache_last_error(), "already freed");
        }
        bad |= stale_iter_calls_fail(stale_it);
        if (bad || !cycle_cache_intact(c, it)) {
            fprintf(stderr, "  cycle %d: the stale handles reached a live cache\n", i);
            failed_cycle = i;
        }
        mapcache_iter_free(it);
        mapcache_free(c);
    }
    CHECK(failed_cycle == -1);
    CHECK(stale_cache_calls_fail(stale) == 0);
    CHECK(stale_iter_calls_fail(stale_it) == 0);

    /* The cache kept live throughout holds what it held. */
    size_t len = 0;
    uint8_t buf[8];
    CHECK_ST(mapcache_len(kept, &len), MAPCACHE_OK);
    CHECK(len == 1);
    CHECK_ST(mapcache_get(kept, S("kept"), buf, sizeof buf, &len), MAPCACHE_OK);
    CHECK(len == 1 && buf[0] == '1');
    mapcache_free(kept);
}

/* ------------------------------------------------------------------- main */

int main(void) {
    RUN(test_versions);
    RUN(test_status_str);
    RUN(test_last_error);
    RUN(test_config);
    RUN(test_config_struct_size);
    RUN(test_get_value);
    RUN(test_get_object);
    RUN(test_put_get_delete);
    RUN(test_large_value);
    RUN(test_get_with);
    RUN(test_get_or_insert);
    RUN(test_compare_and_swap);
    RUN(test_batches);
    RUN(test_put_many_per_key_errors);
    RUN(test_iter);
    RUN(test_iter_concurrent_writers);
    RUN(test_iter_shared_between_threads);
    RUN(test_null_handle);
    RUN(test_null_data_and_outputs);
    RUN(test_oversized);
    RUN(test_freed_and_foreign_handles);
    RUN(test_iterator_misuse);
    RUN(test_labels);
    RUN(test_internal_error);
    RUN(test_out_pointers_after_errors);
    RUN(test_initial_capacity_limit);
    RUN(test_batch_message_forms);
    RUN(test_batch_overlap);
    RUN(test_scalar_out_overlap);
    RUN(test_empty_label_is_a_label);
    RUN(test_no_memory);
    RUN(test_exclusive_misuse_deterministic);
    RUN(test_exclusive_misuse_every_call);
    RUN(test_exclusive_misuse_hammer);
    RUN(test_misuse_abort_policy);
    RUN(test_concurrent_hammer);
    RUN(test_free_racing_calls);
    RUN(test_stale_handles_after_reuse);
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}
