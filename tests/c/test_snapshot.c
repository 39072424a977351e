/*
 * The C suite of snapshots (ABI 3): mapcache_save, mapcache_load and
 * mapcache_load_into as a host written from the header uses them. Round trips
 * (empty, one entry, thousands, a value larger than a block, the longest key),
 * TTLs across a save and a load, the reports (struct_size, counts, the failing
 * offset and errno), the progress callback (which may call into the cache),
 * damaged files (CORRUPT, and a cache loaded into left unchanged), I/O failures
 * (IO with errno, the previous file intact), paths that are no regular file
 * (a FIFO, a device: IO at once) and bad arguments.
 *
 * Built and run by `make test-c` like the other suites (strict C11, both
 * libraries, under valgrind). With MAPCACHE_STRESS=1 in the environment (`make
 * stress`, natively), it also round-trips 10 million entries and a value of
 * MAPCACHE_MAX_VALUE_LEN bytes.
 */
#include "mapcache.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

/* A fresh directory for one test's files, and a path inside it. */
static char g_dir[256];

static void make_dir(const char *name) {
    snprintf(g_dir, sizeof g_dir, "/tmp/mapcache-c-snapshot-%ld-%s", (long)getpid(), name);
    CHECK(mkdir(g_dir, 0755) == 0);
}

static const char *path_in(const char *file) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", g_dir, file);
    return path;
}

static void remove_dir(const char *files[], size_t n) {
    for (size_t i = 0; i < n; i++) unlink(path_in(files[i]));
    CHECK(rmdir(g_dir) == 0);
}

static mapcache_save_report save_report(void) {
    mapcache_save_report r;
    memset(&r, 0xAB, sizeof r);
    r.struct_size = sizeof r;
    return r;
}

static mapcache_load_report load_report(void) {
    mapcache_load_report r;
    memset(&r, 0xAB, sizeof r);
    r.struct_size = sizeof r;
    return r;
}

/* Key and value number i, of the given lengths. */
static void key_of(size_t i, char *out, size_t len) {
    snprintf(out, len, "key-%012zu", i);
}

static void value_of(size_t i, char *out, size_t len) {
    snprintf(out, len, "value-%024zu", i * 7919);
}

/* Puts n numbered entries into c. */
static void fill(mapcache_t *c, size_t n) {
    char k[32], v[40];
    for (size_t i = 0; i < n; i++) {
        key_of(i, k, sizeof k);
        value_of(i, v, sizeof v);
        CHECK_ST(mapcache_put(c, S(k), S(v), NULL), MAPCACHE_OK);
    }
}

/* Whether c holds exactly the n numbered entries of fill(). */
static int holds(mapcache_t *c, size_t n) {
    size_t len = 0;
    CHECK_ST(mapcache_len(c, &len), MAPCACHE_OK);
    if (len != n) {
        fprintf(stderr, "  holds %zu entries, wanted %zu\n", len, n);
        return 0;
    }
    char k[32], v[40];
    uint8_t got[64];
    for (size_t i = 0; i < n; i++) {
        key_of(i, k, sizeof k);
        value_of(i, v, sizeof v);
        size_t got_len = 0;
        if (mapcache_get(c, S(k), got, sizeof got, &got_len) != MAPCACHE_OK ||
            got_len != strlen(v) || memcmp(got, v, got_len) != 0) {
            fprintf(stderr, "  %s: wrong or missing value\n", k);
            return 0;
        }
    }
    return 1;
}

/* n entries saved, then loaded into a new cache and into an empty one. */
static void round_trip(size_t n) {
    make_dir("round-trip");
    mapcache_t *c = new_cache(MAPCACHE_MODE_CONCURRENT);
    fill(c, n);
    mapcache_save_report saved = save_report();
    CHECK_ST(mapcache_save(c, path_in("c.snap"), NULL, NULL, &saved), MAPCACHE_OK);
    CHECK(saved.struct_size == sizeof saved);
    CHECK(saved.records == n && saved.expired == 0 && saved.os_errno == 0 && saved.reserved == 0);
    CHECK(n == 0 ? saved.blocks == 0 : saved.blocks >= 1);
    struct stat st;
    CHECK(stat(path_in("c.snap"), &st) == 0 && (uint64_t)st.st_size == saved.bytes);

    mapcache_t *warm = NULL;
    mapcache_load_report loaded = load_report();
    CHECK_ST(mapcache_load(path_in("c.snap"), NULL, &warm, &loaded), MAPCACHE_OK);
    CHECK(warm != NULL);
    CHECK(loaded.records == n && loaded.loaded == n && loaded.replaced == 0);
    CHECK(loaded.expired == 0 && loaded.too_large == 0 && loaded.bytes == saved.bytes);
    CHECK(loaded.corrupt_offset == 0 && loaded.os_errno == 0 && loaded.reserved == 0);
    CHECK(holds(warm, n));

    mapcache_t *into = new_cache(MAPCACHE_MODE_CONCURRENT);
    loaded = load_report();
    CHECK_ST(mapcache_load_into(into, path_in("c.snap"), &loaded), MAPCACHE_OK);
    CHECK(loaded.records == n && loaded.loaded == n && loaded.replaced == 0);
    CHECK(holds(into, n));
    mapcache_free(into);
    mapcache_free(warm);
    mapcache_free(c);
    const char *files[] = {"c.snap"};
    remove_dir(files, 1);
}

static void test_round_trip_empty(void) { round_trip(0); }
static void test_round_trip_one(void) { round_trip(1); }
static void test_round_trip_thousands(void) { round_trip(5000); }

/* Large values (one larger than a block) and the longest key survive; the
 * reports' NULL is allowed. */
static void test_round_trip_large_value_and_longest_key(void) {
    make_dir("large");
    mapcache_t *c = new_cache(MAPCACHE_MODE_CONCURRENT);
    size_t big_len = 3u << 20; /* 3 MiB: more than a 1 MiB block */
    uint8_t *big = malloc(big_len);
    CHECK(big != NULL);
    for (size_t i = 0; i < big_len; i++) big[i] = (uint8_t)(i * 31 + 7);
    uint8_t long_key[MAPCACHE_MAX_KEY_LEN];
    memset(long_key, 'k', sizeof long_key);
    CHECK_ST(mapcache_put(c, S("big"), big, big_len, NULL), MAPCACHE_OK);
    CHECK_ST(mapcache_put(c, long_key, sizeof long_key, S("long"), NULL), MAPCACHE_OK);
    CHECK_ST(mapcache_put(c, S(""), S(""), NULL), MAPCACHE_OK);
    CHECK_ST(mapcache_save(c, path_in("l.snap"), NULL, NULL, NULL), MAPCACHE_OK);
    mapcache_t *warm = NULL;
    CHECK_ST(mapcache_load(path_in("l.snap"), NULL, &warm, NULL), MAPCACHE_OK);
    uint8_t *got = malloc(big_len);
    size_t got_len = 0;
    CHECK_ST(mapcache_get(warm, S("big"), got, big_len, &got_len), MAPCACHE_OK);
    CHECK(got_len == big_len && memcmp(got, big, big_len) == 0);
    CHECK_ST(mapcache_get(warm, long_key, sizeof long_key, got, big_len, &got_len), MAPCACHE_OK);
    CHECK(got_len == 4 && memcmp(got, "long", 4) == 0);
    CHECK_ST(mapcache_get(warm, S(""), got, big_len, &got_len), MAPCACHE_OK);
    CHECK(got_len == 0);
    free(got);
    free(big);
    mapcache_free(warm);
    mapcache_free(c);
    const char *files[] = {"l.snap"};
    remove_dir(files, 1);
}

/* ------------------------------------------------------------------- TTLs */

static void sleep_ms(long ms) {
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&t, &t) != 0 && errno == EINTR) {
    }
}

/* Expiry is wall-clock time in the file: on the system clock, an entry whose
 * TTL ends between the save and the load is left out, and counted. */
static void test_ttl_expiring_between_save_and_load(void) {
    make_dir("ttl");
    mapcache_t *c = new_cache(MAPCACHE_MODE_CONCURRENT);
    CHECK_ST(mapcache_put(c, S("forever"), S("1"), NULL), MAPCACHE_OK);
    CHECK_ST(mapcache_put_ttl(c, S("brief"), S("2"), 1), MAPCACHE_OK);
    CHECK_ST(mapcache_put_ttl(c, S("hour"), S("3"), 3600000), MAPCACHE_OK);
    mapcache_save_report saved = save_report();
    CHECK_ST(mapcache_save(c, path_in("t.snap"), NULL, NULL, &saved), MAPCACHE_OK);
    /* "brief" may have expired before the save (a later put's sweep may even
     * have removed it) or during it. */
    CHECK(saved.records >= 2 && saved.records <= 3);
    /* A sleep only ever lasts at least this long: "brief" has expired. */
    sleep_ms(20);
    mapcache_t *warm = NULL;
    mapcache_load_report loaded = load_report();
    CHECK_ST(mapcache_load(path_in("t.snap"), NULL, &warm, &loaded), MAPCACHE_OK);
    CHECK(loaded.records == saved.records && loaded.loaded == 2);
    CHECK(loaded.expired == saved.records - 2);
    uint8_t buf[8];
    size_t len = 0;
    CHECK_ST(mapcache_get(warm, S("brief"), buf, sizeof buf, &len), MAPCACHE_NOT_FOUND);
    CHECK_ST(mapcache_get(warm, S("hour"), buf, sizeof buf, &len), MAPCACHE_OK);
    CHECK_ST(mapcache_get(warm, S("forever"), buf, sizeof buf, &len), MAPCACHE_OK);
    mapcache_free(warm);
    mapcache_free(c);
    const char *files[] = {"t.snap"};
    remove_dir(files, 1);
}

/* Manual clocks, no sleep: the loader's clock has moved 10 s past the saver's
 * (a restart of 8 s after a save at 2 s), so the 5 s TTL ended in between and
 * the 60 s one keeps its remaining 50 s. */
static void test_ttl_on_manual_clocks(void) {
    make_dir("ttl-manual");
    mapcache_config cfg;
    CHECK_ST(MAPCACHE_CONFIG_INIT(&cfg), MAPCACHE_OK);
    cfg.clock = MAPCACHE_CLOCK_MANUAL;
    mapcache_t *c = NULL;
    CHECK_ST(mapcache_new(&cfg, &c), MAPCACHE_OK);
    CHECK_ST(mapcache_put_ttl(c, S("five"), S("1"), 5000), MAPCACHE_OK);
    CHECK_ST(mapcache_put_ttl(c, S("sixty"), S("2"), 60000), MAPCACHE_OK);
    CHECK_ST(mapcache_clock_advance(c, 2000), MAPCACHE_OK);
    CHECK_ST(mapcache_save(c, path_in("m.snap"), NULL, NULL, NULL), MAPCACHE_OK);
    mapcache_t *into = NULL;
    CHECK_ST(mapcache_new(&cfg, &into), MAPCACHE_OK);
    CHECK_ST(mapcache_clock_advance(into, 10000), MAPCACHE_OK);
    mapcache_load_report loaded = load_report();
    CHECK_ST(mapcache_load_into(into, path_in("m.snap"), &loaded), MAPCACHE_OK);
    CHECK(loaded.records == 2 && loaded.loaded == 1 && loaded.expired == 1);
    uint8_t buf[8];
    size_t len = 0;
    CHECK_ST(mapcache_get(into, S("five"), buf, sizeof buf, &len), MAPCACHE_NOT_FOUND);
    CHECK_ST(mapcache_clock_advance(into, 49999), MAPCACHE_OK);
    CHECK_ST(mapcache_get(into, S("sixty"), buf, sizeof buf, &len), MAPCACHE_OK);
    CHECK_ST(mapcache_clock_advance(into, 1), MAPCACHE_OK);
    CHECK_ST(mapcache_get(into, S("sixty"), buf, sizeof buf, &len), MAPCACHE_NOT_FOUND);
    mapcache_free(into);
    mapcache_free(c);
    const char *files[] = {"m.snap"};
    remove_dir(files, 1);
}

/* --------------------------------------------------------------- progress */

struct progress {
    mapcache_t *cache;
    int calls;
    int regressed;
    uint64_t last;
};

static void on_progress(void *ctx, uint64_t bytes_written) {
    struct progress *p = ctx;
    if (bytes_written < p->last) p->regressed = 1;
    p->last = bytes_written;
    /* No lock is held: the callback may write to the cache it saves. */
    if (mapcache_put(p->cache, S("written-during-save"), S("x"), NULL) != MAPCACHE_OK) p->regressed = 1;
    p->calls++;
}

static void test_progress_callback(void) {
    make_dir("progress");
    mapcache_t *c = new_cache(MAPCACHE_MODE_CONCURRENT);
    uint8_t value[4096];
    memset(value, 'v', sizeof value);
    char k[32];
    for (size_t i = 0; i < 1000; i++) { /* about 4 MiB: several blocks */
        key_of(i, k, sizeof k);
        CHECK_ST(mapcache_put(c, S(k), value, sizeof value, NULL), MAPCACHE_OK);
    }
    struct progress p = {c, 0, 0, 0};
    mapcache_save_report saved = save_report();
    CHECK_ST(mapcache_save(c, path_in("p.snap"), on_progress, &p, &saved), MAPCACHE_OK);
    CHECK(p.calls >= 3 && !p.regressed);
    CHECK(p.last == saved.bytes);
    CHECK(saved.blocks >= 3);
    uint8_t buf[4];
    size_t len = 0;
    CHECK_ST(mapcache_get(c, S("written-during-save"), buf, sizeof buf, &len), MAPCACHE_OK);
    mapcache_free(c);
    const char *files[] = {"p.snap"};
    remove_dir(files, 1);
}

/* ---------------------------------------------------------------- reports */

/* A newer host's larger report gets zeros past this library's fields; sizes
 * out of range are refused before anything is done. */
struct newer_load_report {
    mapcache_load_report v1;
    uint64_t future_field;
};

static void test_report_struct_size(void) {
    CHECK(sizeof(mapcache_save_report) == 48);
    CHECK(sizeof(mapcache_load_report) == 72);
    make_dir("report");
    mapcache_t *c = new_cache(MAPCACHE_MODE_CONCURRENT);
    fill(c, 10);
    CHECK_ST(mapcache_save(c, path_in("r.snap"), NULL, NULL, NULL), MAPCACHE_OK);
    unsigned char host[sizeof(struct newer_load_report) + 32];
    memset(host, 0xAB, sizeof host);
    struct newer_load_report *newer = (struct newer_load_report *)(void *)host;
    newer->v1.struct_size = sizeof *newer;
    mapcache_t *warm = NULL;
    CHECK_ST(mapcache_load(path_in("r.snap"), NULL, &warm, &newer->v1), MAPCACHE_OK);
    CHECK(newer->v1.struct_size == sizeof *newer && newer->v1.records == 10);
    CHECK(newer->future_field == 0);
    int intact = 1;
    for (size_t i = sizeof *newer; i < sizeof host; i++) intact &= host[i] == 0xAB;
    CHECK(intact);
    mapcache_free(warm);

    const size_t bad[] = {0, sizeof(size_t), sizeof(mapcache_load_report) - 1, 4097};
    const size_t bad_save[] = {0, sizeof(size_t), sizeof(mapcache_save_report) - 1, 4097};
    for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
        mapcache_load_report r = load_report();
        r.struct_size = bad[b];
        warm = (mapcache_t *)&r; /* must be reset to NULL */
        CHECK_ERR(mapcache_load(path_in("r.snap"), NULL, &warm, &r), MAPCACHE_E_INVALID_ARG,
                  "report->struct_size");
        CHECK(warm == NULL);
        CHECK_ERR(mapcache_load_into(c, path_in("r.snap"), &r), MAPCACHE_E_INVALID_ARG,
                  "report->struct_size");
        mapcache_save_report s = save_report();
        s.struct_size = bad_save[b];
        CHECK_ERR(mapcache_save(c, path_in("never.snap"), NULL, NULL, &s), MAPCACHE_E_INVALID_ARG,
                  "report->struct_size");
        CHECK(access(path_in("never.snap"), F_OK) != 0);
    }
    mapcache_free(c);
    const char *files[] = {"r.snap"};
    remove_dir(files, 1);
}

/* -------------------------------------------------------- damaged files */

/* A byte changed anywhere in a file: CORRUPT, with the offset in the report
 * and the message; a cache loaded into is unchanged. */
static void test_corrupt_file(void) {
    make_dir("corrupt");
    mapcache_t *c = new_cache(MAPCACHE_MODE_CONCURRENT);
    fill(c, 100);
    mapcache_save_report saved = save_report();
    CHECK_ST(mapcache_save(c, path_in("good.snap"), NULL, NULL, &saved), MAPCACHE_OK);
    FILE *f = fopen(path_in("good.snap"), "rb");
    CHECK(f != NULL);
    size_t size = (size_t)saved.bytes;
    unsigned char *bytes = malloc(size);
    CHECK(fread(bytes, 1, size, f) == size);
    fclose(f);

    mapcache_t *existing = new_cache(MAPCACHE_MODE_CONCURRENT);
    CHECK_ST(mapcache_put(existing, S("mine"), S("kept"), NULL), MAPCACHE_OK);
    /* The header, a block header, a payload byte, and the last byte. */
    const size_t at[] = {0, 20, 130, size / 2, size - 1};
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        bytes[at[i]] ^= 0x40;
        f = fopen(path_in("bad.snap"), "wb");
        CHECK(fwrite(bytes, 1, size, f) == size);
        fclose(f);
        bytes[at[i]] ^= 0x40;
        mapcache_t *warm = (mapcache_t *)bytes;
        mapcache_load_report r = load_report();
        CHECK_ERR(mapcache_load(path_in("bad.snap"), NULL, &warm, &r), MAPCACHE_E_CORRUPT,
                  "corrupt snapshot at byte offset");
        CHECK(warm == NULL);
        CHECK(r.records == 0 && r.loaded == 0 && r.os_errno == 0);
        CHECK(r.corrupt_offset < size);
        char needle[64];
        snprintf(needle, sizeof needle, "offset %llu:", (unsigned long long)r.corrupt_offset);
        CHECK(strstr(mapcache_last_error(), needle) != NULL);
        r = load_report();
        CHECK_ERR(mapcache_load_into(existing, path_in("bad.snap"), &r), MAPCACHE_E_CORRUPT,
                  "corrupt snapshot at byte offset");
        CHECK(r.corrupt_offset < size && r.loaded == 0);
        size_t len = 0;
        CHECK_ST(mapcache_len(existing, &len), MAPCACHE_OK);
        CHECK(len == 1);
    }
    /* Truncated: every length up to 200 bytes, half of it, one byte short. */
    size_t cuts[203];
    size_t n_cuts = 0;
    for (size_t cut = 0; cut <= 200; cut++) cuts[n_cuts++] = cut;
    cuts[n_cuts++] = size / 2;
    cuts[n_cuts++] = size - 1;
    for (size_t i = 0; i < n_cuts; i++) {
        size_t cut = cuts[i];
        f = fopen(path_in("bad.snap"), "wb");
        CHECK(fwrite(bytes, 1, cut, f) == cut);
        fclose(f);
        mapcache_t *warm = NULL;
        mapcache_status st = mapcache_load(path_in("bad.snap"), NULL, &warm, NULL);
        CHECK(st == MAPCACHE_E_CORRUPT);
        CHECK(warm == NULL);
    }
    /* Not a snapshot at all. */
    f = fopen(path_in("bad.snap"), "wb");
    fputs("this is a text file, not a snapshot\n", f);
    fclose(f);
    mapcache_t *warm = NULL;
    CHECK_ERR(mapcache_load(path_in("bad.snap"), NULL, &warm, NULL), MAPCACHE_E_CORRUPT, "offset 0");
    free(bytes);
    mapcache_free(existing);
    mapcache_free(c);
    const char *files[] = {"good.snap", "bad.snap"};
    remove_dir(files, 2);
}

/* ------------------------------------------------------------ I/O errors */

static void test_io_errors(void) {
    /* A missing file: IO with ENOENT. */
    mapcache_t *warm = NULL;
    mapcache_load_report r = load_report();
    CHECK_ERR(mapcache_load("/nonexistent-mapcache-dir/c.snap", NULL, &warm, &r), MAPCACHE_E_IO,
              "/nonexistent-mapcache-dir/c.snap");
    CHECK(warm == NULL && r.os_errno == ENOENT && r.corrupt_offset == 0 && r.records == 0);
    mapcache_t *c = new_cache(MAPCACHE_MODE_CONCURRENT);
    r = load_report();
    CHECK_ERR(mapcache_load_into(c, "/nonexistent-mapcache-dir/c.snap", &r), MAPCACHE_E_IO, "open");
    CHECK(r.os_errno == ENOENT);

    /* A save that cannot create its file: IO with the errno, the previous
     * file intact. Root writes into a read-only directory anyway, so the
     * failure is arranged in /proc there. */
    make_dir("io");
    CHECK_ST(mapcache_put(c, S("old"), S("1"), NULL), MAPCACHE_OK);
    CHECK_ST(mapcache_save(c, path_in("c.snap"), NULL, NULL, NULL), MAPCACHE_OK);
    struct stat before;
    CHECK(stat(path_in("c.snap"), &before) == 0);
    CHECK_ST(mapcache_put(c, S("new"), S("2"), NULL), MAPCACHE_OK);
    mapcache_save_report s = save_report();
    if (geteuid() == 0) {
        CHECK_ERR(mapcache_save(c, "/proc/mapcache-c-test.snap", NULL, NULL, &s), MAPCACHE_E_IO,
                  "snapshot create of /proc/");
        CHECK(s.os_errno != 0 && s.records == 0);
    } else {
        CHECK(chmod(g_dir, 0555) == 0);
        CHECK_ERR(mapcache_save(c, path_in("c.snap"), NULL, NULL, &s), MAPCACHE_E_IO, "snapshot create of");
        CHECK(s.os_errno == EACCES && s.records == 0);
        CHECK(chmod(g_dir, 0755) == 0);
    }
    struct stat after;
    CHECK(stat(path_in("c.snap"), &after) == 0 && after.st_size == before.st_size);
    mapcache_t *old = NULL;
    CHECK_ST(mapcache_load(path_in("c.snap"), NULL, &old, NULL), MAPCACHE_OK);
    size_t len = 0;
    CHECK_ST(mapcache_len(old, &len), MAPCACHE_OK);
    CHECK(len == 1);
    mapcache_free(old);
    mapcache_free(c);
    const char *files[] = {"c.snap"};
    remove_dir(files, 1);
}

/* A path that names no regular file is refused at once, as IO with errno 0
 * and a message that says so: a FIFO (which open(2) without O_NONBLOCK waits
 * on for a writer) and a character device (of length 0: it used to read as
 * an empty file, CORRUPT). The test keeps the FIFO open for reading and
 * writing itself, so that a load that opened it without O_NONBLOCK would not
 * hang the suite but end with CORRUPT. */
static void test_not_a_regular_file(void) {
    make_dir("fifo");
    char fifo[512];
    snprintf(fifo, sizeof fifo, "%s", path_in("fifo"));
    CHECK(mkfifo(fifo, 0600) == 0);
    int held = open(fifo, O_RDWR | O_NONBLOCK);
    CHECK(held >= 0);
    char want[600];
    snprintf(want, sizeof want, "snapshot open of %s: not a regular file (a FIFO)", fifo);
    mapcache_t *warm = NULL;
    mapcache_load_report r = load_report();
    CHECK_ERR(mapcache_load(fifo, NULL, &warm, &r), MAPCACHE_E_IO, want);
    CHECK(warm == NULL && r.os_errno == 0 && r.corrupt_offset == 0 && r.records == 0);
    mapcache_t *c = new_cache(MAPCACHE_MODE_CONCURRENT);
    CHECK_ST(mapcache_put(c, S("k"), S("v"), NULL), MAPCACHE_OK);
    r = load_report();
    CHECK_ERR(mapcache_load_into(c, fifo, &r), MAPCACHE_E_IO, want);
    CHECK(r.os_errno == 0 && r.records == 0);
    r = load_report();
    CHECK_ERR(mapcache_load("/dev/null", NULL, &warm, &r), MAPCACHE_E_IO,
              "snapshot open of /dev/null: not a regular file (a character device)");
    CHECK(warm == NULL && r.os_errno == 0);
    size_t len = 0;
    CHECK_ST(mapcache_len(c, &len), MAPCACHE_OK);
    CHECK(len == 1);
    mapcache_free(c);
    close(held);
    const char *files[] = {"fifo"};
    remove_dir(files, 1);
}

/* --------------------------------------------------------- bad arguments */

static void test_bad_arguments(void) {
    mapcache_t *c = new_cache(MAPCACHE_MODE_CONCURRENT);
    mapcache_t *out = c;
    CHECK_ERR(mapcache_save(c, NULL, NULL, NULL, NULL), MAPCACHE_E_INVALID_ARG, "mapcache_save: path is NULL");
    CHECK_ERR(mapcache_save(c, "", NULL, NULL, NULL), MAPCACHE_E_INVALID_ARG, "path is empty");
    CHECK_ERR(mapcache_save(NULL, "/tmp/x.snap", NULL, NULL, NULL), MAPCACHE_E_INVALID_ARG, "cache");
    CHECK_ERR(mapcache_save(c, "/", NULL, NULL, NULL), MAPCACHE_E_INVALID_ARG,
              "mapcache_save: snapshot path / names no file");
    /* A path ending in a slash, or in "/.", names a directory, not a file:
       refused before anything is written (it was taken for its directory's
       name, whose temporary file went beside it and whose rename onto "dir/"
       failed with ENOTDIR). */
    make_dir("bad-arguments");
    char dir_path[300];
    const char *ends[] = {"/", "/.", "/sub/", "/sub/.", "/./"};
    for (size_t i = 0; i < sizeof ends / sizeof *ends; i++) {
        snprintf(dir_path, sizeof dir_path, "%s%s", g_dir, ends[i]);
        mapcache_save_report sr = save_report();
        CHECK_ERR(mapcache_save(c, dir_path, NULL, NULL, &sr), MAPCACHE_E_INVALID_ARG, "names no file");
        CHECK(strncmp(mapcache_last_error(), "mapcache_save: ", 15) == 0);
        CHECK(sr.os_errno == 0 && sr.records == 0);
    }
    CHECK_ST(mapcache_save(c, ".", NULL, NULL, NULL), MAPCACHE_E_INVALID_ARG);
    /* Nothing was written in the directory (rmdir fails if it is not empty). */
    remove_dir(NULL, 0);
    CHECK_ERR(mapcache_load(NULL, NULL, &out, NULL), MAPCACHE_E_INVALID_ARG, "mapcache_load: path is NULL");
    CHECK(out == NULL);
    CHECK_ERR(mapcache_load("/tmp/x.snap", NULL, NULL, NULL), MAPCACHE_E_INVALID_ARG, "out is NULL");
    CHECK_ERR(mapcache_load_into(c, "", NULL), MAPCACHE_E_INVALID_ARG, "path is empty");
    CHECK_ERR(mapcache_load_into(NULL, "/tmp/x.snap", NULL), MAPCACHE_E_INVALID_ARG, "cache");
    /* A report given with a bad argument is filled too: zeros, its size kept. */
    mapcache_save_report s = save_report();
    CHECK_ERR(mapcache_save(c, NULL, NULL, NULL, &s), MAPCACHE_E_INVALID_ARG, "path is NULL");
    CHECK(s.struct_size == sizeof s && s.records == 0 && s.bytes == 0 && s.os_errno == 0 && s.reserved == 0);
    mapcache_load_report r = load_report();
    CHECK_ERR(mapcache_load(NULL, NULL, &out, &r), MAPCACHE_E_INVALID_ARG, "path is NULL");
    CHECK(r.struct_size == sizeof r && r.records == 0 && r.corrupt_offset == 0 && r.os_errno == 0);
    r = load_report();
    CHECK_ERR(mapcache_load("/tmp/x.snap", NULL, NULL, &r), MAPCACHE_E_INVALID_ARG, "out is NULL");
    CHECK(r.struct_size == sizeof r && r.records == 0 && r.corrupt_offset == 0 && r.os_errno == 0);
    r = load_report();
    CHECK_ERR(mapcache_load_into(c, NULL, &r), MAPCACHE_E_INVALID_ARG, "path is NULL");
    CHECK(r.struct_size == sizeof r && r.loaded == 0 && r.reserved == 0);
    /* A bad config: refused before the file is opened. */
    mapcache_config cfg;
    CHECK_ST(MAPCACHE_CONFIG_INIT(&cfg), MAPCACHE_OK);
    cfg.shards = 3;
    CHECK_ERR(mapcache_load("/nonexistent-mapcache-dir/c.snap", &cfg, &out, NULL), MAPCACHE_E_INVALID_CONFIG,
              "shards");
    mapcache_free(c);
    /* A freed cache. */
    CHECK_ERR(mapcache_save(c, "/tmp/x.snap", NULL, NULL, NULL), MAPCACHE_E_INVALID_HANDLE, "freed");
    CHECK_ERR(mapcache_load_into(c, "/tmp/x.snap", NULL), MAPCACHE_E_INVALID_HANDLE, "freed");
}

/* ------------------------------------------------------------------ stress */

/* 10 million entries of 16-byte keys and 32-byte values, and a value of the
 * largest length: only with MAPCACHE_STRESS=1 (natively; valgrind would take
 * hours). */
static void test_stress_round_trips(void) {
    make_dir("stress");
    mapcache_t *c = new_cache(MAPCACHE_MODE_CONCURRENT);
    fill(c, 10000000);
    CHECK_ST(mapcache_save(c, path_in("big.snap"), NULL, NULL, NULL), MAPCACHE_OK);
    mapcache_t *warm = NULL;
    mapcache_load_report r = load_report();
    CHECK_ST(mapcache_load(path_in("big.snap"), NULL, &warm, &r), MAPCACHE_OK);
    CHECK(r.loaded == 10000000);
    CHECK(holds(warm, 10000000));
    mapcache_free(warm);
    mapcache_free(c);

    c = new_cache(MAPCACHE_MODE_CONCURRENT);
    size_t max = MAPCACHE_MAX_VALUE_LEN;
    uint8_t *value = malloc(max);
    CHECK(value != NULL);
    for (size_t i = 0; i < max; i += 4096) value[i] = (uint8_t)(i >> 12);
    value[max - 1] = 0x5A;
    CHECK_ST(mapcache_put(c, S("max"), value, max, NULL), MAPCACHE_OK);
    CHECK_ST(mapcache_save(c, path_in("max.snap"), NULL, NULL, NULL), MAPCACHE_OK);
    mapcache_free(c);
    CHECK_ST(mapcache_load(path_in("max.snap"), NULL, &warm, NULL), MAPCACHE_OK);
    uint8_t *got = malloc(max);
    size_t got_len = 0;
    CHECK_ST(mapcache_get(warm, S("max"), got, max, &got_len), MAPCACHE_OK);
    CHECK(got_len == max && memcmp(got, value, max) == 0);
    free(got);
    free(value);
    mapcache_free(warm);
    const char *files[] = {"big.snap", "max.snap"};
    remove_dir(files, 2);
}

int main(void) {
    RUN(test_round_trip_empty);
    RUN(test_round_trip_one);
    RUN(test_round_trip_thousands);
    RUN(test_round_trip_large_value_and_longest_key);
    RUN(test_ttl_expiring_between_save_and_load);
    RUN(test_ttl_on_manual_clocks);
    RUN(test_progress_callback);
    RUN(test_report_struct_size);
    RUN(test_corrupt_file);
    RUN(test_io_errors);
    RUN(test_not_a_regular_file);
    RUN(test_bad_arguments);
    const char *stress = getenv("MAPCACHE_STRESS");
    if (stress != NULL && strcmp(stress, "1") == 0) RUN(test_stress_round_trips);
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}
