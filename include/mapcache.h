/*
 * mapcache.h: the C ABI of mapcache, an embedded in-process key/value cache.
 * Link with -lmapcache (libmapcache.so), or with libmapcache.a plus the system
 * libraries it needs: -lpthread -ldl -lm (glibc; the full list is cargo's
 * native-static-libs: -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc). ABI version:
 * MAPCACHE_ABI_VERSION (check it against mapcache_abi_version() at start-up).
 * docs/C_API.md is the overview; this file is the contract.
 *
 * CONTENTS. After these conventions come the constants (config values, limits,
 * versions), the types (mapcache_t, mapcache_config, the callback types), the
 * statuses (mapcache_status values), and then the functions in sections, each
 * opened by a banner on its first function:
 *   1. LIFECYCLE          mapcache_config_init (MAPCACHE_CONFIG_INIT), mapcache_new,
 *                         mapcache_free
 *   2. SINGLE-KEY CALLS   get (and its variants), put, delete, contains, len, clear,
 *                         get_or_insert, compare_and_swap; the cache calls put_ttl,
 *                         clock_advance, get_or_load (and its loader's
 *                         mapcache_load_result_set, _set_error), stats_get
 *   3. SNAPSHOTS          mapcache_save, mapcache_load, mapcache_load_into
 *   4. BATCH CALLS        mapcache_get_many, mapcache_put_many, mapcache_delete_many
 *   5. ITERATION          mapcache_iter_new, mapcache_iter_next, mapcache_iter_free
 *   6. LABELS AND ERRORS  mapcache_set_thread_label, mapcache_last_error,
 *                         mapcache_status_str
 *   7. VERSIONING         mapcache_abi_version, mapcache_version
 *   8. GPU ENGINE         mapcache_gpu_status
 *   9. DEBUG HOOKS        declared only when the host defines MAPCACHE_TESTING before
 *                         including this header (the library always has them, unless
 *                         built without its default cargo feature debug-hooks)
 *
 * CONVENTIONS (they hold for every function unless its own comment says otherwise)
 *
 * Statuses. Every fallible function returns a mapcache_status. MAPCACHE_OK (0) and
 * MAPCACHE_NOT_FOUND (1) are outcomes and leave mapcache_last_error() unchanged;
 * every other status is an error and sets a thread-local message, naming the
 * function and the argument or problem, that mapcache_last_error() returns (its
 * comment gives the one rule for the message's form).
 * Each function lists every status it returns, with one exception: a cache made
 * with gpu_mode MAPCACHE_GPU_FORCE may also return MAPCACHE_E_GPU from any call
 * that inserts (its rebuild failed on the GPU, and the call changed nothing).
 *
 * Arguments. Results come back through out-pointers; an out-pointer documented as
 * nullable may be NULL, any other NULL is MAPCACHE_E_INVALID_ARG. A data pointer may
 * be NULL only when its length is 0. Keys are 0 to MAPCACHE_MAX_KEY_LEN bytes
 * (longer: MAPCACHE_E_KEY_TOO_LONG); values 0 to MAPCACHE_MAX_VALUE_LEN bytes
 * (longer: MAPCACHE_E_VALUE_TOO_LONG). Keys and values are arbitrary bytes (not
 * NUL-terminated strings); file paths are NUL-terminated strings. No output of a call
 * (an output buffer or array, an out-pointer, a report struct) may overlap an input or
 * another output of the same call (MAPCACHE_E_INVALID_ARG, naming both).
 * Out-pointers need no particular alignment.
 *
 * Out-pointers after an error. When a call returns an error status, every
 * out-pointer it was given that is not NULL holds NULL, 0 or false: never a stale
 * or partial result. The exceptions: MAPCACHE_E_BUFFER_TOO_SMALL, whose
 * length out-pointer holds the length needed, MAPCACHE_E_LOADER, whose
 * loader_status out-pointer holds the loader's status, and the snapshot calls'
 * reports, which hold the failure's file offset or errno. Batch calls write their output
 * arrays only when they return MAPCACHE_OK; on an error status the arrays are left
 * as they were. mapcache_config_init writes nothing when it fails.
 *
 * fork(). A child process may use a cache it inherited only if no other thread of
 * the parent was inside a call on it at the fork (the child has only the forking
 * thread; a lock or write flag another thread held stays held in the child, whose
 * next write or load on that shard waits for ever, and in exclusive mode is
 * reported as a collision). Fork before other threads use the cache, or make new
 * caches in the child.
 *
 * Ownership. The library never keeps a pointer the host passed after the call
 * returns, and never frees host memory. The host owns every mapcache_t and
 * mapcache_iter_t it creates and releases them with mapcache_free and
 * mapcache_iter_free only. Strings the library returns (mapcache_last_error,
 * mapcache_status_str, mapcache_version) belong to the library and are never freed
 * by the host. Bytes handed to a callback or returned by mapcache_iter_next are
 * valid only for the time stated there; so is the mapcache_load_result a loader
 * receives, which the library lends for the loader call only.
 *
 * Threads. Every function may be called from any thread, on the same mapcache_t
 * concurrently with any other, except mapcache_free, which must not race with
 * other calls on that handle (a call that loses that race gets
 * MAPCACHE_E_INVALID_HANDLE or completes on the old map, never undefined
 * behaviour). An iterator is used by one thread at a time. In
 * MAPCACHE_MODE_EXCLUSIVE the host additionally promises one writer at a time (Go's
 * map contract); a detected overlap fails with MAPCACHE_E_CONCURRENT_WRITE or
 * MAPCACHE_E_CONCURRENT_READ_WRITE (or aborts, with MAPCACHE_MISUSE_ABORT), and the
 * message names both threads by their mapcache_set_thread_label labels. No
 * function is async-signal-safe (they may allocate): do not call them from a
 * signal handler.
 *
 * Robustness. No panic crosses this boundary (MAPCACHE_E_INTERNAL). A handle is a
 * value the library decodes, never dereferences: a NULL or foreign one is rejected
 * with a status, and so is a freed one (MAPCACHE_E_INVALID_HANDLE) however many
 * handles were made and freed since: each mapcache_new and mapcache_iter_new
 * (and each load, for its mapcache_load_result) returns a value never returned
 * before (a slot's generation changes on reuse,
 * and a slot is retired after 2^32 reuses), so a stale handle never reaches a
 * newer cache.
 *
 * Exclusive-mode detection, precisely: two writes that overlap always collide on
 * the flag; a read (a get, each key of a batch, each step of an iteration,
 * mapcache_len) is caught when it overlaps a write's flag; a write that starts and
 * ends between two checks of a long read (between two iteration steps) is not
 * seen, so the absence of a report proves nothing.
 */


#ifndef MAPCACHE_H
#define MAPCACHE_H

/* Generated by cbindgen from src/ffi/ (see cbindgen.toml). Do not edit: run `make header`. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
/**
 * Initialises a mapcache_config the host declared, passing its size as the host
 * sees it: `mapcache_config cfg; MAPCACHE_CONFIG_INIT(&cfg);` is
 * `mapcache_config_init(&cfg, sizeof cfg)`. Evaluates to the mapcache_status.
 */
#define MAPCACHE_CONFIG_INIT(cfg) mapcache_config_init((cfg), sizeof *(cfg))


/**
 * `mapcache_config.mode`: any number of threads may read and write (the default).
 */
#define MAPCACHE_MODE_CONCURRENT 0

/**
 * `mapcache_config.mode`: Go's contract; the host promises one writer at a time and
 * a detected overlap is reported as `MAPCACHE_E_CONCURRENT_WRITE` (or
 * `MAPCACHE_E_CONCURRENT_READ_WRITE`) instead of being waited out. Overlap is
 * judged by the write flag, which a write holds from finding its key to
 * publishing the change (a table grow included); the key and value of an
 * entry over 256 bytes are copied into it before the flag is taken (smaller
 * ones under it). Two writes whose flag windows
 * overlap always collide; a write made while another is still copying a large
 * value in is not seen, so two threads racing on large values usually go
 * unreported: the absence of a report proves nothing.
 */
#define MAPCACHE_MODE_EXCLUSIVE 1

/**
 * `mapcache_config.misuse_policy`: a detected misuse returns an error status (the
 * default).
 */
#define MAPCACHE_MISUSE_ERROR 0

/**
 * `mapcache_config.misuse_policy`: a detected misuse prints the report to stderr
 * and aborts the process, as Go does.
 */
#define MAPCACHE_MISUSE_ABORT 1

/**
 * `mapcache_config.rehash_engine`: pick by table size and hardware (the default).
 */
#define MAPCACHE_ENGINE_AUTO 0

/**
 * `mapcache_config.rehash_engine`: rehash on the calling thread only.
 */
#define MAPCACHE_ENGINE_SINGLE 1

/**
 * `mapcache_config.rehash_engine`: rehash with several CPU threads.
 */
#define MAPCACHE_ENGINE_PARALLEL 2

/**
 * `mapcache_config.gpu_mode`: rebuild tables of at least `gpu_threshold` entries
 * on the GPU when the CUDA driver, a device and the plugin are there, else (and
 * after any GPU failure) on the CPU; the default.
 */
#define MAPCACHE_GPU_AUTO 0

/**
 * `mapcache_config.gpu_mode`: never use the GPU (nothing is loaded).
 */
#define MAPCACHE_GPU_OFF 1

/**
 * `mapcache_config.gpu_mode`: use the GPU or fail: `mapcache_new` returns
 * `MAPCACHE_E_GPU` when the engine cannot be loaded, and a write whose rebuild
 * fails on the GPU returns it (changing nothing).
 */
#define MAPCACHE_GPU_FORCE 2

/**
 * The longest `mapcache_config.gpu_plugin_path` accepted, in bytes.
 */
#define MAPCACHE_MAX_PLUGIN_PATH 4096

/**
 * `mapcache_config.clock`: TTLs are measured against the system's monotonic clock
 * (the default).
 */
#define MAPCACHE_CLOCK_SYSTEM 0

/**
 * `mapcache_config.clock`: a manual clock for tests, which starts at 0 and moves
 * only by `mapcache_clock_advance`, so that a test never sleeps to see an entry
 * expire. For snapshots (whose expiries are wall-clock times) its wall time is
 * 2020-01-01T00:00:00Z plus its reading: between a save from one manual-clock
 * cache and a load into another, the time that passes is how far the loader's
 * clock has moved past the saver's; records saved on the system clock lie years
 * in its future.
 */
#define MAPCACHE_CLOCK_MANUAL 1

/**
 * The largest `mapcache_config.initial_capacity` (2^30 entries); a larger one is
 * `MAPCACHE_E_INVALID_CONFIG`. It is a sizing limit, not a bound: a cache still
 * grows past it by inserting.
 */
#define MAPCACHE_MAX_INITIAL_CAPACITY 1073741824

/**
 * The longest label accepted, in bytes (without the terminating NUL).
 */
#define MAPCACHE_MAX_LABEL_LEN 1023

/**
 * The ABI version this header describes. It changes only if an existing function,
 * type or status changes meaning (functions and config fields are only ever
 * added); a host should check `mapcache_abi_version() == MAPCACHE_ABI_VERSION` at
 * start-up.
 *
 * History: 1, the first ABI. 2: `mapcache_config_init` takes the size of the
 * host's `mapcache_config` (and returns a status), so that a host built against
 * an older header never has more bytes written than its struct holds. 3: the
 * cache (additions only; an ABI 2 host keeps working unchanged): config fields
 * `max_entries`, `max_bytes`, `default_ttl_ms`, `clock` (and `reserved`)
 * appended after `seed`; `mapcache_put_ttl`, `mapcache_clock_advance`,
 * `mapcache_get_or_load` with its loader and result, `mapcache_stats_get`;
 * statuses `MAPCACHE_E_TOO_LARGE` and `MAPCACHE_E_LOADER`; and snapshots:
 * `mapcache_save` (with `mapcache_progress_fn` and `mapcache_save_report`),
 * `mapcache_load` and `mapcache_load_into` (with `mapcache_load_report`),
 * statuses `MAPCACHE_E_CORRUPT` and `MAPCACHE_E_IO`. Added since, within
 * 3 (a host built against the older header keeps working; a newer host's
 * non-zero GPU fields are refused by an older library): the GPU engine's config
 * fields `gpu_threshold`, `gpu_plugin_path`, `gpu_mode` (and `reserved2`)
 * appended after `reserved`, `mapcache_gpu_status`, status `MAPCACHE_E_GPU`.
 */
#define MAPCACHE_ABI_VERSION 3

/**
 * The longest key, in bytes.
 */
#define MAPCACHE_MAX_KEY_LEN 65535

/**
 * The longest value, in bytes (1 GiB).
 */
#define MAPCACHE_MAX_VALUE_LEN 1073741824

/**
 * Bytes of `mapcache_gpu_info.reason`, its NUL included.
 */
#define MAPCACHE_GPU_REASON_LEN 512

/**
 * An open cache. Opaque: a host only ever holds a pointer to it, obtained from
 * `mapcache_new` and given back with `mapcache_free`. The pointer is a handle
 * value, not the address of memory: never dereference it (it lies outside the
 * address space of the process, so doing so faults).
 */
typedef struct mapcache mapcache;

/**
 * An iteration over a cache. Opaque: obtained from `mapcache_iter_new`, released
 * with `mapcache_iter_free`. Like `mapcache_t *`, the pointer is a handle value,
 * never to be dereferenced.
 */
typedef struct mapcache_iter mapcache_iter;

/**
 * What a loader fills: the value to cache, and an optional error message.
 * Opaque: the loader receives a pointer to one, valid only until the loader
 * returns. Like `mapcache_t *`, the pointer is a handle value, never to be
 * dereferenced.
 */
typedef struct mapcache_load_result mapcache_load_result;

/**
 * The result of every fallible mapcache call: `MAPCACHE_OK` (0), `MAPCACHE_NOT_FOUND`
 * (1), or one of the `MAPCACHE_E_*` errors (2 and up). Values are stable across
 * releases; new codes are only appended. A host must treat an unknown value as an
 * error (`mapcache_status_str` names it "unknown mapcache_status").
 */
typedef int32_t mapcache_status;

/**
 * How to create a cache. Initialise with `MAPCACHE_CONFIG_INIT(&cfg)` (that is,
 * `mapcache_config_init(&cfg, sizeof cfg)`), then change the fields you need;
 * pass to `mapcache_new`, which reads it during the call only. Fields are only
 * ever appended in later versions, each with 0 as its default (see
 * `struct_size`).
 */
typedef struct mapcache_config {
    /**
     * `sizeof(mapcache_config)` as the host knows it; set by
     * `mapcache_config_init` to its `size` argument. Tells the library which
     * fields are present: it reads only the first `struct_size` bytes.
     */
    size_t struct_size;
    /**
     * Entries to size the table for up front; 0 = start small and grow; at most
     * `MAPCACHE_MAX_INITIAL_CAPACITY`. A shard's table of 2 MiB or more (more
     * than about 106,000 entries of capacity per shard) is committed as its
     * pages are first touched, not at creation; keys land in random buckets,
     * so a big presized table is mostly resident after a small fraction of its
     * capacity (where the kernel backs the table with 2 MiB transparent huge
     * pages, each first touch commits 2 MiB: with `initial_capacity` 2^30
     * over 16 shards, 100,000 puts, 0.01% of the capacity, made about 23 GB
     * resident): size it to the memory you have. Smaller shard tables come from
     * the system allocator, which may commit them at creation: spread over many
     * shards, a presized capacity costs 17 to 35 bytes per entry up front.
     * A bounded cache sizes for no more than its bounds hold: `max_entries`,
     * and `max_bytes` over the smallest entry's charge (90 bytes, 98 with a
     * `default_ttl_ms`).
     */
    uint64_t initial_capacity;
    /**
     * Number of shards: 0 = automatic, else a power of two, at most 65536.
     * Each costs about 2 KB empty, about 9 KB in a bounded cache (its policy
     * and hit buffer): 65,536 shards take 128 MB, or 560 MB bounded, before
     * anything is stored.
     */
    uint32_t shards;
    /**
     * `MAPCACHE_MODE_CONCURRENT` (0) or `MAPCACHE_MODE_EXCLUSIVE` (1).
     */
    uint32_t mode;
    /**
     * `MAPCACHE_MISUSE_ERROR` (0) or `MAPCACHE_MISUSE_ABORT` (1); applies to
     * exclusive mode.
     */
    uint32_t misuse_policy;
    /**
     * `MAPCACHE_ENGINE_AUTO` (0), `MAPCACHE_ENGINE_SINGLE` (1) or
     * `MAPCACHE_ENGINE_PARALLEL` (2).
     */
    uint32_t rehash_engine;
    /**
     * Hash seed; 0 = a random seed per map (recommended: resists hash flooding).
     */
    uint64_t seed;
    /**
     * ABI 3. The most entries the cache holds; 0 = no bound on the count. Past
     * it, the eviction policy chooses what to drop. With `shards` 0, a bounded
     * cache gets at most one shard per 4096 entries of capacity; an explicit
     * `shards` larger than `max_entries` is `MAPCACHE_E_INVALID_CONFIG`.
     */
    uint64_t max_entries;
    /**
     * ABI 3. The most bytes the entries may occupy, each charged its full
     * footprint (its memory block, its share of the bucket slots and its policy
     * metadata); 0 = no bound. The cache never holds more than this plus one
     * entry per shard; an entry larger than a shard's share is refused with
     * `MAPCACHE_E_TOO_LARGE`. A share smaller than the smallest entry's charge
     * (an empty key and value as `mapcache_put` writes it: with a non-zero
     * `default_ttl_ms`, its deadline included) is `MAPCACHE_E_INVALID_CONFIG`.
     */
    uint64_t max_bytes;
    /**
     * ABI 3. Time-to-live, in milliseconds, of entries written without one of
     * their own (every write but `mapcache_put_ttl` and the loads); 0 = they
     * never expire. An expired entry is never returned by any call. A load
     * (`mapcache_load`, `mapcache_load_into`) gives each entry the expiry its
     * record was saved with, whatever this value: a record saved without one
     * (an entry that was to live for ever) never expires after the load.
     */
    uint64_t default_ttl_ms;
    /**
     * ABI 3. `MAPCACHE_CLOCK_SYSTEM` (0, the default) or `MAPCACHE_CLOCK_MANUAL`
     * (1, for tests: see `mapcache_clock_advance`).
     */
    uint32_t clock;
    /**
     * Reserved; must be 0. (Keeps the struct free of implicit padding; a later
     * ABI may give it a meaning, with 0 as its default.)
     */
    uint32_t reserved;
    /**
     * GPU engine. The smallest table, in entries it is sized for (6.5 per
     * bucket), rebuilt on the GPU; 0 = the default (4194304, not yet measured).
     */
    uint64_t gpu_threshold;
    /**
     * GPU engine. The path of the plugin `libmapcache_cuda.so`, a
     * NUL-terminated string read during `mapcache_new` only (a relative path
     * is taken from the working directory then, never searched for on the
     * library path); NULL = the plugin's file in the directory of
     * `libmapcache.so` (of the program, for a program linked with
     * `libmapcache.a`).
     */
    const char *gpu_plugin_path;
    /**
     * GPU engine. `MAPCACHE_GPU_AUTO` (0, the default), `MAPCACHE_GPU_OFF` (1)
     * or `MAPCACHE_GPU_FORCE` (2). See `mapcache_gpu_status`.
     */
    uint32_t gpu_mode;
    /**
     * Reserved; must be 0 (as `reserved`).
     */
    uint32_t reserved2;
} mapcache_config;

/**
 * `mapcache_t` is the name hosts use for `struct mapcache`.
 */
typedef struct mapcache mapcache_t;

/**
 * The host's constructor of a value's copy, for `mapcache_get_object`: receives
 * the value (`value_len` bytes at `value`; `value` is not NULL but must not be
 * read when `value_len` is 0, and is valid only during the call) and returns the
 * host's own object holding a copy of it, or NULL if it could not make one.
 * Its signature is that of CPython's `PyBytes_FromStringAndSize`.
 */
typedef void *(*mapcache_make_fn)(const uint8_t *value,
                                  size_t value_len);

/**
 * The host's constructor of the outcome of a lookup that has no value, for
 * `mapcache_get_object`: receives the code `mapcache_get_value` would return
 * (`-MAPCACHE_NOT_FOUND` or another negated status) and returns the host's
 * object for it, or NULL. Its signature is that of CPython's
 * `PyLong_FromLongLong`.
 */
typedef void *(*mapcache_miss_fn)(int64_t code);

/**
 * What `mapcache_get_object` needs besides the key: the cache and the host's two
 * constructors. A host makes one per cache (it may share it between threads)
 * and passes its address with each call; the library reads it during the call
 * only.
 */
typedef struct mapcache_getter {
    /**
     * The cache to read (NULL is `MAPCACHE_E_INVALID_ARG`, passed to `miss`).
     */
    mapcache_t *cache;
    /**
     * Makes the host's object for a present key's value (not NULL).
     */
    mapcache_make_fn make;
    /**
     * Makes the host's object for any other outcome (not NULL).
     */
    mapcache_miss_fn miss;
} mapcache_getter;

/**
 * The callback of `mapcache_get_with`: receives `ctx` unchanged and the value
 * (`value_len` bytes at `value`; `value` is not NULL but must not be read when
 * `value_len` is 0). The value is valid only until the callback returns; it must
 * not be written. The callback must return normally (no `longjmp`, no C++
 * exception) and must not call `mapcache_free` on the cache being read; it may
 * call other mapcache functions.
 */
typedef void (*mapcache_value_fn)(void *ctx,
                                  const uint8_t *value,
                                  size_t value_len);

/**
 * The loader of `mapcache_get_or_load`: computes the value of `key` (`key_len`
 * bytes at `key`, a copy the library owns, valid during the call; `key` is not
 * NULL) and hands it over with `mapcache_load_result_set(result, ...)`.
 * Receives `ctx` unchanged.
 *
 * Returns 0 on success (the value set, or the empty value if it set none), or
 * any other value on failure: nothing is cached, and that value reaches every
 * caller that waited for this load as its `*loader_status`, with
 * `MAPCACHE_E_LOADER` (attach a message with
 * `mapcache_load_result_set_error`).
 *
 * It runs on the thread of the `mapcache_get_or_load` call that missed first,
 * with no lock of the cache held: it may call any mapcache function, on this
 * cache too, but `mapcache_free` on it. A `mapcache_get_or_load` of the same
 * key on the same cache from the loader's own thread returns
 * `MAPCACHE_E_INVALID_ARG` (it would wait for itself); from another thread it
 * waits for this load, so the loader must not wait for that thread. It must
 * return normally (no `longjmp`, no C++ exception).
 */
typedef int32_t (*mapcache_loader_fn)(void *ctx,
                                      const uint8_t *key,
                                      size_t key_len,
                                      struct mapcache_load_result *result);

/**
 * A cache's counters, filled by `mapcache_stats_get`. Set `struct_size` to
 * `sizeof(mapcache_stats)` before the call; counters are only ever appended in
 * later versions.
 *
 * Every counter counts from the cache's creation. On a cache no other thread
 * is using they add up: `hits + misses` is the number of lookups (each
 * `mapcache_get`, `mapcache_get_value`, `mapcache_get_object`,
 * `mapcache_get_with`, each key of `mapcache_get_many`, the lookup inside
 * `mapcache_get_or_insert`, and the first lookup of each `mapcache_get_or_load`;
 * `mapcache_contains`, iteration and `mapcache_compare_and_swap` are not
 * lookups), and `inserts - evictions - expirations - deletes` is `entries`.
 * While other threads run, the counters are read one after another, not at
 * one instant.
 */
typedef struct mapcache_stats {
    /**
     * `sizeof(mapcache_stats)` as the host knows it, set by the host before
     * the call (the library reads it, writes only that many bytes, and leaves
     * it as it was).
     */
    size_t struct_size;
    /**
     * Lookups that found a live entry.
     */
    uint64_t hits;
    /**
     * Lookups that found no entry, or an expired one.
     */
    uint64_t misses;
    /**
     * New keys stored, by any write (loads included).
     */
    uint64_t inserts;
    /**
     * Values of present keys replaced (successful compare-and-swaps included).
     */
    uint64_t updates;
    /**
     * Entries removed by `mapcache_delete`, `mapcache_delete_many` or
     * `mapcache_clear`.
     */
    uint64_t deletes;
    /**
     * Entries removed by the eviction policy to keep a bounded cache within
     * its bounds (`rejections` included).
     */
    uint64_t evictions;
    /**
     * Of the evictions, new entries the policy refused to keep in favour of the
     * entry they would have displaced (admission rejections), decided as they
     * leave the admission window, as a rule at a later put than their own
     * (see `mapcache_put`).
     */
    uint64_t rejections;
    /**
     * Expired entries removed (on access, by the sweep, or replaced by a write).
     */
    uint64_t expirations;
    /**
     * Loads of `mapcache_get_or_load` whose loader returned 0.
     */
    uint64_t load_successes;
    /**
     * Loads whose loader returned a non-zero status.
     */
    uint64_t load_failures;
    /**
     * Time spent in loaders, over all loads, in nanoseconds.
     */
    uint64_t load_time_ns;
    /**
     * Tables doubled so far.
     */
    uint64_t grows;
    /**
     * Entries held (expired ones not yet removed included).
     */
    uint64_t entries;
    /**
     * Bytes the entries held are charged (see `mapcache_config.max_bytes`).
     */
    uint64_t bytes;
    /**
     * Exclusive-mode misuses detected (`MAPCACHE_E_CONCURRENT_WRITE` and
     * `MAPCACHE_E_CONCURRENT_READ_WRITE` reports).
     */
    uint64_t misuses;
} mapcache_stats;

/**
 * A save's progress callback: called on the saving thread with the bytes
 * written to the file so far, after each block of records (about every MiB)
 * and once at the end with the file's length, so that a host can show a
 * progress bar. `ctx` is the pointer given to `mapcache_save`.
 *
 * It runs while no lock of the cache is held: it may call any function on the
 * cache but `mapcache_free`. Keep it short: the calls made between records
 * run while the save holds an epoch pin (it is serializing a shard's
 * entries), so memory that writers of any cache retire meanwhile is freed
 * only after the callback returns. It must return normally (no `longjmp`, no exception or panic
 * unwinding through mapcache's frames).
 */
typedef void (*mapcache_progress_fn)(void *ctx,
                                     uint64_t bytes_written);

/**
 * What `mapcache_save` did, filled when the host passes one. Set
 * `struct_size` to `sizeof(mapcache_save_report)` before the call; fields are
 * only ever appended in later versions. On an error every count is 0 and
 * `os_errno` is set as described; only a `struct_size` out of range and
 * `MAPCACHE_E_INTERNAL` leave the report as it was.
 */
typedef struct mapcache_save_report {
    /**
     * `sizeof(mapcache_save_report)` as the host knows it, set by the host
     * (the library reads it, writes only that many bytes, and leaves it as it
     * was).
     */
    size_t struct_size;
    /**
     * Records written: the cache's live entries.
     */
    uint64_t records;
    /**
     * Blocks of records written.
     */
    uint64_t blocks;
    /**
     * Bytes of the file.
     */
    uint64_t bytes;
    /**
     * Entries found expired during the save and left out.
     */
    uint64_t expired;
    /**
     * `MAPCACHE_E_IO`: the OS's errno for the failed step (e.g. `EACCES`,
     * `ENOSPC`), 0 when the OS gave none. 0 for every other status.
     */
    int32_t os_errno;
    /**
     * Reserved: written as 0.
     */
    uint32_t reserved;
} mapcache_save_report;

/**
 * What `mapcache_load` or `mapcache_load_into` did, filled when the host
 * passes one. Set `struct_size` to `sizeof(mapcache_load_report)` before the
 * call; fields are only ever appended in later versions. On an error every
 * count is 0, and `corrupt_offset` or `os_errno` is set as described; only a
 * `struct_size` out of range and `MAPCACHE_E_INTERNAL` leave the report as it
 * was.
 */
typedef struct mapcache_load_report {
    /**
     * `sizeof(mapcache_load_report)` as the host knows it, set by the host
     * (the library reads it, writes only that many bytes, and leaves it as it
     * was).
     */
    size_t struct_size;
    /**
     * Records in the file.
     */
    uint64_t records;
    /**
     * Records stored in the cache (inserted or replacing a value). A bounded
     * cache may have evicted some of them again as later ones arrived.
     */
    uint64_t loaded;
    /**
     * Of those, records that replaced a value: one the cache held
     * (`mapcache_load_into`) or an earlier record of the same key in the file
     * (which `mapcache_save` never writes).
     */
    uint64_t replaced;
    /**
     * Records left out because their expiry (wall-clock time) had passed.
     */
    uint64_t expired;
    /**
     * Records left out because their entry is larger than a shard's share of
     * `max_bytes` (a bounded cache).
     */
    uint64_t too_large;
    /**
     * Bytes of the file.
     */
    uint64_t bytes;
    /**
     * `MAPCACHE_E_CORRUPT`: the byte offset in the file of the structure that
     * failed its check (also named in `mapcache_last_error()`). 0 for every
     * other status.
     */
    uint64_t corrupt_offset;
    /**
     * `MAPCACHE_E_IO`: the OS's errno for the failed step (e.g. `ENOENT` for a
     * missing file), 0 when the OS gave none (a path that names no regular
     * file). 0 for every other status.
     */
    int32_t os_errno;
    /**
     * Reserved: written as 0.
     */
    uint32_t reserved;
} mapcache_load_report;

/**
 * `mapcache_iter_t` is the name hosts use for `struct mapcache_iter`.
 */
typedef struct mapcache_iter mapcache_iter_t;

/**
 * What `mapcache_gpu_status` reports. Set `struct_size` to
 * `sizeof(mapcache_gpu_info)` before the call; fields are only ever appended.
 */
typedef struct mapcache_gpu_info {
    /**
     * `sizeof(mapcache_gpu_info)` as the host knows it, set by the host (the
     * library writes only that many bytes and leaves it as it was).
     */
    size_t struct_size;
    /**
     * 1: large rebuilds of this cache run on the GPU. 0: they run on the CPU.
     */
    uint32_t active;
    /**
     * Zero.
     */
    uint32_t reserved;
    /**
     * Rebuilds this cache did on the GPU.
     */
    uint64_t gpu_rebuilds;
    /**
     * Rebuilds meant for the GPU that ran on the CPU instead. (Under auto, a
     * rebuild that finds the device busy with another shard's runs on the
     * CPU and is counted in neither.)
     */
    uint64_t fallbacks;
    /**
     * NUL-terminated, cut to fit: when active, the plugin's name and file (and
     * the last GPU failure, if a rebuild has fallen back, even if later ones
     * did not); otherwise why not: "off", "libcuda.so.1 not found ...", "no
     * CUDA device: ...", "plugin not found at <path>", or the CUDA error of
     * the step that failed.
     */
    char reason[MAPCACHE_GPU_REASON_LEN];
} mapcache_gpu_info;

#if defined(MAPCACHE_TESTING)
/**
 * The callback of `mapcache_debug_hold_write`: receives `ctx` unchanged.
 */
typedef void (*mapcache_debug_fn)(void *ctx);
#endif

/**
 * Success.
 */
#define MAPCACHE_OK 0

/**
 * An outcome, not an error: the key is absent (or, for `mapcache_iter_next`, the
 * iteration is over). Does not set `mapcache_last_error()`.
 */
#define MAPCACHE_NOT_FOUND 1

/**
 * A NULL pointer where one is required, a NULL data pointer with a non-zero length,
 * overlapping input and output buffers, or another out-of-range argument. The
 * message names the argument.
 */
#define MAPCACHE_E_INVALID_ARG 2

/**
 * The caller's buffer is too small for the value; nothing was copied and the needed
 * length was reported through the length out-pointer.
 */
#define MAPCACHE_E_BUFFER_TOO_SMALL 3

/**
 * A key longer than `MAPCACHE_MAX_KEY_LEN` bytes.
 */
#define MAPCACHE_E_KEY_TOO_LONG 4

/**
 * A value longer than `MAPCACHE_MAX_VALUE_LEN` bytes.
 */
#define MAPCACHE_E_VALUE_TOO_LONG 5

/**
 * Exclusive mode: another thread was writing the map at the same time. Nothing was
 * changed by this call. The message names both threads (see
 * `mapcache_set_thread_label`).
 */
#define MAPCACHE_E_CONCURRENT_WRITE 6

/**
 * Exclusive mode: this read overlapped a write by another thread. The message
 * names both threads.
 */
#define MAPCACHE_E_CONCURRENT_READ_WRITE 7

/**
 * An allocation failed; the map is unchanged.
 */
#define MAPCACHE_E_NO_MEMORY 8

/**
 * A `mapcache_t *` that was freed or never came from `mapcache_new`, a
 * `mapcache_iter_t *` that was freed or never came from `mapcache_iter_new`, or an
 * iterator whose map was freed.
 */
#define MAPCACHE_E_INVALID_HANDLE 9

/**
 * A field of `mapcache_config` is out of range; the message names it.
 */
#define MAPCACHE_E_INVALID_CONFIG 10

/**
 * A bug in mapcache: a panic was caught at the boundary. The message says where.
 * The map is still memory-safe to use and to free.
 */
#define MAPCACHE_E_INTERNAL 11

/**
 * A bounded cache: the entry's footprint is larger than its shard's share of
 * `max_bytes`, so it could never be held. Nothing was changed.
 */
#define MAPCACHE_E_TOO_LARGE 12

/**
 * The loader of `mapcache_get_or_load` failed: it returned a non-zero status
 * (reported to every caller that waited for that load), and nothing was cached.
 */
#define MAPCACHE_E_LOADER 13

/**
 * A snapshot file is damaged, truncated, not a snapshot, or of a newer format
 * version. The message says what was wrong and at which byte offset. A cache
 * loaded into is unchanged.
 */
#define MAPCACHE_E_CORRUPT 14

/**
 * A file operation of a snapshot save or load failed. The message names the
 * step, the path and the OS error (with its errno). A failed save leaves the
 * previous snapshot file intact.
 */
#define MAPCACHE_E_IO 15

/**
 * `gpu_mode` `MAPCACHE_GPU_FORCE`: the GPU engine could not be loaded (from
 * `mapcache_new`), or a rebuild on it failed (from the write that needed it,
 * which changed nothing). The message says at which step and why.
 */
#define MAPCACHE_E_GPU 16

#ifdef __cplusplus
extern "C" {
#endif // __cplusplus

/**
 * ============ 1. LIFECYCLE ============
 * Configure, create and free a cache: mapcache_config_init, mapcache_new,
 * mapcache_free.
 *
 * Fills the host's `mapcache_config` with the defaults. `size` is the size of the
 * struct as the host knows it, `sizeof(mapcache_config)` from the header the host
 * was compiled with: the library writes exactly `size` bytes and never more, so a
 * host built against an older (smaller) header is safe with a newer library. Use
 * `MAPCACHE_CONFIG_INIT(&cfg)`, which passes `sizeof` for you.
 *
 * Afterwards `cfg->struct_size` is `size`, every field this library knows that
 * fits in `size` holds its default, and any bytes past this library's own
 * `mapcache_config` (a host built against a newer header) are zero, which every
 * field added later reads as "not used". Defaults: `initial_capacity` 0,
 * `shards` 0 (automatic), `mode` `MAPCACHE_MODE_CONCURRENT`, `misuse_policy`
 * `MAPCACHE_MISUSE_ERROR`, `rehash_engine` `MAPCACHE_ENGINE_AUTO`, `seed` 0
 * (random per map), and (ABI 3) `max_entries` and `max_bytes` 0 (unbounded),
 * `default_ttl_ms` 0 (no expiry), `clock` `MAPCACHE_CLOCK_SYSTEM`, `reserved` 0,
 * and (the GPU fields) `gpu_threshold` 0 (the default threshold),
 * `gpu_plugin_path` NULL (beside the library), `gpu_mode` `MAPCACHE_GPU_AUTO`,
 * `reserved2` 0. A host built against an older header (a 40- or 72-byte
 * struct) gets exactly these
 * defaults for the fields it does not know.
 *
 * Ownership: `*cfg` is the caller's. Thread-safety: any thread.
 *
 * Returns:
 * - `MAPCACHE_OK`.
 * - `MAPCACHE_E_INVALID_ARG`: `cfg` NULL, or `size` smaller than the first
 *   `mapcache_config` (40 bytes on 64-bit targets), between the sizes of two
 *   versions of it (40 for ABI 1 and 2, 72 for ABI 3, 96 with the GPU fields)
 *   or larger than 4096;
 *   nothing was written.
 * - `MAPCACHE_E_INTERNAL`.
 *
 * # Safety
 * `cfg` must be NULL or valid for writing `size` bytes (any alignment).
 */
mapcache_status mapcache_config_init(struct mapcache_config *cfg,
                                     size_t size);

/**
 * Creates a cache.
 *
 * `cfg` may be NULL for the defaults; otherwise it must have been filled by
 * `mapcache_config_init` and then adjusted (its `struct_size` tells the library
 * which fields the host knows). The library reads `*cfg` during the call only.
 * On success `*out` receives the new handle; on any error `*out` is set to NULL
 * (when `out` itself is not NULL).
 *
 * Ownership: the caller owns the returned handle and must release it with
 * `mapcache_free` exactly once.
 * Thread-safety: any thread; the new handle may be used from any thread.
 *
 * Returns:
 * - `MAPCACHE_OK`: `*out` is the new cache.
 * - `MAPCACHE_E_INVALID_ARG`: `out` is NULL.
 * - `MAPCACHE_E_INVALID_CONFIG`: `cfg->struct_size` is smaller than this ABI's
 *   first `mapcache_config`, between the sizes of two of its versions (see
 *   `mapcache_config_init`) or larger than 4096, a field this library does not
 *   know is non-zero, or a field is out of range (`mode`, `misuse_policy`,
 *   `rehash_engine`, `clock`, `gpu_mode` not one of their constants,
 *   `reserved` or `reserved2` not 0, `shards` not 0 or a power of two at most
 *   65536, `initial_capacity` too large, an explicit `shards` larger than a
 *   non-zero `max_entries`, a non-zero `max_bytes` whose share per shard is
 *   less than the charge of the smallest entry (an empty key and value as
 *   `mapcache_put` writes it; the message gives both numbers),
 *   `gpu_plugin_path` empty or longer than `MAPCACHE_MAX_PLUGIN_PATH`); the
 *   message names the field.
 * - `MAPCACHE_E_GPU`: `gpu_mode` is `MAPCACHE_GPU_FORCE` and the GPU engine
 *   cannot be loaded (the message says why: no driver, no device, no plugin).
 * - `MAPCACHE_E_NO_MEMORY`: the initial table could not be allocated, or
 *   2097152 caches are live (the most there can be at once).
 * - `MAPCACHE_E_INTERNAL`: a bug (caught panic).
 *
 * # Safety
 * `cfg` must be NULL or point to `cfg->struct_size` readable bytes, whose
 * `gpu_plugin_path` (if within them) is NULL or a NUL-terminated string; `out`
 * must be NULL or valid for writing one pointer.
 */
mapcache_status mapcache_new(const struct mapcache_config *cfg,
                             mapcache_t **out);

/**
 * Frees a cache and every entry in it. NULL is a no-op.
 *
 * After this call `cache` must not be used again. A use of it returns
 * `MAPCACHE_E_INVALID_HANDLE` ("cache was freed by mapcache_free"), however
 * many caches were created and freed since, and never reaches another cache
 * (each `mapcache_new` returns a pointer value never returned before, even when
 * it reuses the freed cache's memory); freeing it twice is detected the same
 * way and ignored (the message is set). Iterators created on
 * the cache stay valid objects: their `mapcache_iter_next` returns
 * `MAPCACHE_E_INVALID_HANDLE` and they must still be freed with
 * `mapcache_iter_free`.
 *
 * Memory: the map is destroyed as soon as no call on it is still running in
 * another thread (epoch-based reclamation), normally before this returns.
 *
 * Thread-safety: must not race with other calls on the same `cache` (a call that
 * loses that race returns `MAPCACHE_E_INVALID_HANDLE` or completes on the old map;
 * either way without undefined behaviour). Must not be called from inside a
 * callback of a call on the same cache: a `mapcache_get_with` callback, a
 * `mapcache_get_or_load` loader, or a `mapcache_save` progress callback.
 *
 * Errors (no return value; they set `mapcache_last_error()`): `cache` is foreign,
 * or was already freed.
 *
 * # Safety
 * `cache` must be NULL or a pointer obtained from `mapcache_new`.
 */
void mapcache_free(mapcache_t *cache);

/**
 * ============ 2. SINGLE-KEY CALLS ============
 * mapcache_get, mapcache_get_value, mapcache_get_object, mapcache_get_with,
 * mapcache_put, mapcache_delete, mapcache_contains, mapcache_len, mapcache_clear,
 * mapcache_get_or_insert, mapcache_compare_and_swap; and the cache calls (ABI 3):
 * mapcache_put_ttl, mapcache_clock_advance, mapcache_get_or_load (with
 * mapcache_load_result_set and mapcache_load_result_set_error), mapcache_stats_get.
 *
 * Copies the value of `key` into the caller's buffer.
 *
 * `buf[0..buf_cap]` receives the value; `buf` may be NULL when `buf_cap` is 0 (a
 * way to ask for the length). `*out_len` receives the value's length on
 * `MAPCACHE_OK` and on `MAPCACHE_E_BUFFER_TOO_SMALL` (then nothing was copied: grow
 * the buffer to `*out_len` and call again), and 0 on `MAPCACHE_NOT_FOUND` and on
 * every other error. `buf` must not overlap `key`.
 *
 * Ownership: all buffers are the caller's; the library keeps no pointer.
 * Thread-safety: any thread, concurrently with other calls on `cache` except
 * `mapcache_free` (a read never blocks on writers).
 *
 * Returns:
 * - `MAPCACHE_OK`: the value was copied, `*out_len` is its length.
 * - `MAPCACHE_NOT_FOUND`: no such key.
 * - `MAPCACHE_E_BUFFER_TOO_SMALL`: the value is longer than `buf_cap`.
 * - `MAPCACHE_E_INVALID_ARG`: `cache` or `out_len` NULL, `key` NULL with
 *   `key_len` > 0, `buf` NULL with `buf_cap` > 0, `buf` overlaps `key`.
 * - `MAPCACHE_E_KEY_TOO_LONG`, `MAPCACHE_E_INVALID_HANDLE`,
 *   `MAPCACHE_E_CONCURRENT_READ_WRITE` (exclusive mode), `MAPCACHE_E_INTERNAL`.
 *
 * # Safety
 * `key` must be readable for `key_len` bytes, `buf` writable for `buf_cap` bytes,
 * `out_len` writable (when not NULL); none may be modified by another thread
 * during the call.
 */
mapcache_status mapcache_get(mapcache_t *cache,
                             const uint8_t *key,
                             size_t key_len,
                             uint8_t *buf,
                             size_t buf_cap,
                             size_t *out_len);

/**
 * Copies the value of `key` into the caller's buffer, `snprintf`-style: the
 * result is the value's length, or a negated status. The same lookup as
 * `mapcache_get`, with one argument and one out-pointer fewer (for hosts that
 * pay per argument; docs/C_API.md says why).
 *
 * - `>= 0`: the key is present and its value is that many bytes long. When the
 *   length is at most `buf_cap` the value was copied into `buf`; otherwise
 *   nothing was copied: call again with a buffer of at least that length.
 *   (Not an error: `mapcache_last_error()` is not set.)
 * - `-MAPCACHE_NOT_FOUND` (-1): no such key.
 * - `-status` for any other status (all below -1): the error `mapcache_get`
 *   would return (`MAPCACHE_E_INVALID_ARG` for a NULL `cache`, `key` NULL with
 *   `key_len` > 0, `buf` NULL with `buf_cap` > 0, or `buf` overlapping `key`;
 *   `MAPCACHE_E_KEY_TOO_LONG`, `MAPCACHE_E_INVALID_HANDLE`,
 *   `MAPCACHE_E_CONCURRENT_READ_WRITE`, `MAPCACHE_E_INTERNAL`), with its message
 *   in `mapcache_last_error()`.
 *
 * Ownership: all buffers are the caller's; the library keeps no pointer.
 * Thread-safety: as `mapcache_get`.
 *
 * # Safety
 * `key` must be readable for `key_len` bytes and `buf` writable for `buf_cap`
 * bytes; neither may be modified by another thread during the call.
 */
int64_t mapcache_get_value(mapcache_t *cache,
                           const uint8_t *key,
                           size_t key_len,
                           uint8_t *buf,
                           size_t buf_cap);

/**
 * Looks up `key` in `getter->cache` and returns the host's object for the
 * outcome, made by one of the host's two constructors: `getter->make(value,
 * value_len)` when the key is present, `getter->miss(code)` otherwise, where
 * `code` is what `mapcache_get_value` would return (`-MAPCACHE_NOT_FOUND`, -1,
 * for no such key; `-status` for an error, with its message in
 * `mapcache_last_error()`). For hosts that keep values as objects of their own
 * (a Python `bytes`; docs/C_API.md says why it exists). `key_len` is 32 bits wide
 * (keys are at most `MAPCACHE_MAX_KEY_LEN` bytes), so that a host may pass a C
 * `int`.
 *
 * The library copies the value out of the map first and calls `make` once the
 * lookup is over, on the calling thread, before returning; no map memory is
 * protected meanwhile and `make` may call any mapcache function. `make` and
 * `miss` must return normally (no `longjmp`, no C++ exception). The result is
 * returned as is (NULL if the constructor returned NULL), and the library keeps
 * no pointer to it. Returns NULL without calling either when `getter`,
 * `getter->make` or `getter->miss` is NULL (`MAPCACHE_E_INVALID_ARG` in
 * `mapcache_last_error()`).
 *
 * Errors passed to `miss`: `MAPCACHE_E_INVALID_ARG` (`getter->cache` NULL, `key`
 * NULL with `key_len` > 0), `MAPCACHE_E_KEY_TOO_LONG`, `MAPCACHE_E_NO_MEMORY`
 * (a value longer than 256 bytes is staged in memory the library allocates),
 * `MAPCACHE_E_INVALID_HANDLE`, `MAPCACHE_E_CONCURRENT_READ_WRITE` (exclusive
 * mode), `MAPCACHE_E_INTERNAL`.
 *
 * Ownership: the returned object is the host's; `*getter` stays the host's.
 * Thread-safety: as `mapcache_get`.
 *
 * # Safety
 * `getter` must be NULL or readable for a `mapcache_getter` (any alignment) whose
 * `make` and `miss` are NULL or functions with the signatures above that follow
 * the rules above; `key` must be readable for `key_len` bytes and not modified
 * during the call.
 */
void *mapcache_get_object(const struct mapcache_getter *getter,
                          const uint8_t *key,
                          uint32_t key_len);

/**
 * Zero-copy read: calls `callback(ctx, value, value_len)` once with the value of `key`,
 * while the entry is protected from reclamation.
 *
 * The value pointer is valid only during the callback (copy what you need to
 * keep); it must not be written. The callback runs on the calling thread before
 * this returns; it must return normally and must not call `mapcache_free` on
 * `cache`. It may call other mapcache functions (a write from inside the callback
 * does not change the value it is reading). A long callback delays the
 * reclamation of memory freed by writers meanwhile. The key may be modified by the
 * callback (the library works on a copy).
 *
 * Ownership: `ctx` is passed through untouched; the library keeps no pointer.
 * Thread-safety: as `mapcache_get`.
 *
 * Returns:
 * - `MAPCACHE_OK`: the callback ran once.
 * - `MAPCACHE_NOT_FOUND`: no such key; the callback was not called.
 * - `MAPCACHE_E_INVALID_ARG`: `cache` or `callback` NULL, `key` NULL with `key_len` > 0.
 * - `MAPCACHE_E_KEY_TOO_LONG`, `MAPCACHE_E_INVALID_HANDLE`,
 *   `MAPCACHE_E_CONCURRENT_READ_WRITE` (exclusive mode), `MAPCACHE_E_INTERNAL`.
 *
 * # Safety
 * `key` must be readable for `key_len` bytes; `callback` must be a function with the
 * `mapcache_value_fn` signature that follows the rules above.
 */
mapcache_status mapcache_get_with(mapcache_t *cache,
                                  const uint8_t *key,
                                  size_t key_len,
                                  mapcache_value_fn callback,
                                  void *ctx);

/**
 * Inserts or replaces the value of `key` with a copy of `value[0..value_len]`.
 *
 * `*out_replaced` (when `out_replaced` is not NULL) receives true if an existing
 * value was replaced, false if the key was new or on an error. Readers see the
 * old or the new value, never a mix.
 *
 * In a bounded cache (`max_entries`, `max_bytes`) a new key is not always
 * kept. It enters the eviction policy's admission window (the shard's most
 * recent new entries) and stays there at first, so a lookup right after the
 * put finds it; when later puts push it out of the window, the policy keeps
 * it or refuses it in favour of the entry it would displace, and that
 * refusal is what `mapcache_stats`' `rejections` (and `evictions`) count. So
 * a rejection counted during a put is, as a rule, of an earlier new key, not
 * of the one just put. The exception is an entry heavier than the whole
 * window: it meets the policy at once, may be refused, and a lookup right
 * after the put then misses. The window starts at 1% of the shard's share of
 * the bounds and adapts to the workload, down to almost nothing, so in a
 * `max_bytes` cache ordinary entries can be such an exception. Either way the put returns `MAPCACHE_OK` (with
 * `*out_replaced` false): the value was stored, and perhaps evicted.
 *
 * Ownership: the library copies key and value; the caller keeps its buffers.
 * Thread-safety: any thread. Concurrent mode: writers to the same shard wait for
 * each other. Exclusive mode: see `MAPCACHE_E_CONCURRENT_WRITE`.
 *
 * Returns:
 * - `MAPCACHE_OK`.
 * - `MAPCACHE_E_INVALID_ARG`: `cache` NULL, `key` NULL with `key_len` > 0, `value`
 *   NULL with `value_len` > 0.
 * - `MAPCACHE_E_KEY_TOO_LONG`, `MAPCACHE_E_VALUE_TOO_LONG`.
 * - `MAPCACHE_E_TOO_LARGE` (a bounded cache: the entry is larger than its
 *   shard's share of `max_bytes`; nothing was written).
 * - `MAPCACHE_E_CONCURRENT_WRITE` (exclusive mode; nothing was written),
 *   `MAPCACHE_E_NO_MEMORY` (nothing was written), `MAPCACHE_E_INVALID_HANDLE`,
 *   `MAPCACHE_E_INTERNAL`.
 *
 * # Safety
 * `key` and `value` must be readable for their lengths and not modified during the
 * call; `out_replaced` must be NULL or writable.
 */
mapcache_status mapcache_put(mapcache_t *cache,
                             const uint8_t *key,
                             size_t key_len,
                             const uint8_t *value,
                             size_t value_len,
                             bool *out_replaced);

/**
 * Removes `key`.
 *
 * Thread-safety: as `mapcache_put`.
 *
 * Returns:
 * - `MAPCACHE_OK`: the key was present and is removed.
 * - `MAPCACHE_NOT_FOUND`: the key was absent.
 * - `MAPCACHE_E_INVALID_ARG`: `cache` NULL, `key` NULL with `key_len` > 0.
 * - `MAPCACHE_E_KEY_TOO_LONG`, `MAPCACHE_E_CONCURRENT_WRITE` (exclusive mode),
 *   `MAPCACHE_E_INVALID_HANDLE`, `MAPCACHE_E_INTERNAL`.
 *
 * # Safety
 * `key` must be readable for `key_len` bytes and not modified during the call.
 */
mapcache_status mapcache_delete(mapcache_t *cache,
                                const uint8_t *key,
                                size_t key_len);

/**
 * Tells whether `key` is present: `*out` receives true or false (false on an
 * error).
 *
 * Thread-safety: as `mapcache_get`.
 *
 * Returns:
 * - `MAPCACHE_OK` (whether or not the key is present; see `*out`).
 * - `MAPCACHE_E_INVALID_ARG`: `cache` or `out` NULL, `key` NULL with `key_len` > 0.
 * - `MAPCACHE_E_KEY_TOO_LONG`, `MAPCACHE_E_CONCURRENT_READ_WRITE` (exclusive mode),
 *   `MAPCACHE_E_INVALID_HANDLE`, `MAPCACHE_E_INTERNAL`.
 *
 * # Safety
 * `key` must be readable for `key_len` bytes; `out` writable.
 */
mapcache_status mapcache_contains(mapcache_t *cache,
                                  const uint8_t *key,
                                  size_t key_len,
                                  bool *out);

/**
 * The number of entries: `*out` receives it (0 on an error). Under concurrent
 * writes it is a moment's count (it may be stale by the time the caller reads it).
 * Entries whose TTL has run out are counted until they are reclaimed (a lookup
 * that comes across one, or the eviction sweep), although no call returns them.
 *
 * Thread-safety: any thread; never blocks. In exclusive mode it is a read like
 * `mapcache_get`.
 *
 * Returns:
 * - `MAPCACHE_OK`.
 * - `MAPCACHE_E_INVALID_ARG`: `cache` or `out` NULL.
 * - `MAPCACHE_E_CONCURRENT_READ_WRITE` (exclusive mode): another thread's write
 *   was in flight.
 * - `MAPCACHE_E_INVALID_HANDLE`, `MAPCACHE_E_INTERNAL`.
 *
 * # Safety
 * `out` must be writable.
 */
mapcache_status mapcache_len(mapcache_t *cache,
                             size_t *out);

/**
 * Removes every entry.
 *
 * Thread-safety: as `mapcache_put` (it is a write of every shard). Entries inserted
 * by other threads while it runs may survive it.
 *
 * Returns:
 * - `MAPCACHE_OK`.
 * - `MAPCACHE_E_INVALID_ARG`: `cache` NULL.
 * - `MAPCACHE_E_CONCURRENT_WRITE` (exclusive mode), `MAPCACHE_E_INVALID_HANDLE`,
 *   `MAPCACHE_E_INTERNAL`.
 *
 * # Safety
 * `cache` must be NULL or a pointer obtained from `mapcache_new`.
 */
mapcache_status mapcache_clear(mapcache_t *cache);

/**
 * Returns the value of `key`, inserting `value` first if the key is absent, as
 * one atomic step (two threads racing on an absent key: exactly one inserts, the
 * other sees its value).
 *
 * - Absent: a copy of `value[0..value_len]` is inserted, `*out_inserted` = true,
 *   `*out_len` = `value_len`, `buf` is not touched.
 * - Present: nothing is inserted, `*out_inserted` = false, and the existing value
 *   is copied into `buf[0..buf_cap]` as by `mapcache_get`: `*out_len` is its
 *   length; if it does not fit, `MAPCACHE_E_BUFFER_TOO_SMALL` with `*out_len` =
 *   the needed length (call again with a larger buffer; nothing was inserted).
 *
 * `buf` may be NULL when `buf_cap` is 0; it must not overlap `key` or `value`.
 * On any other error `*out_len` is 0 and `*out_inserted` false (each when not
 * NULL).
 *
 * Ownership: the library copies key and value; all buffers stay the caller's.
 * Thread-safety: as `mapcache_put`.
 *
 * Returns:
 * - `MAPCACHE_OK`: see above.
 * - `MAPCACHE_E_BUFFER_TOO_SMALL`: present, and longer than `buf_cap`.
 * - `MAPCACHE_E_INVALID_ARG`: `cache`, `out_len` or `out_inserted` NULL; `key`,
 *   `value` or `buf` NULL with a non-zero length; `buf` overlaps `key` or `value`.
 * - `MAPCACHE_E_KEY_TOO_LONG`, `MAPCACHE_E_VALUE_TOO_LONG`,
 *   `MAPCACHE_E_TOO_LARGE` (a bounded cache; nothing was inserted),
 *   `MAPCACHE_E_CONCURRENT_WRITE` and `MAPCACHE_E_CONCURRENT_READ_WRITE` (exclusive
 *   mode), `MAPCACHE_E_NO_MEMORY`, `MAPCACHE_E_INVALID_HANDLE`,
 *   `MAPCACHE_E_INTERNAL`.
 *
 * # Safety
 * `key`, `value` readable for their lengths, `buf` writable for `buf_cap` bytes,
 * `out_len` and `out_inserted` writable.
 */
mapcache_status mapcache_get_or_insert(mapcache_t *cache,
                                       const uint8_t *key,
                                       size_t key_len,
                                       const uint8_t *value,
                                       size_t value_len,
                                       uint8_t *buf,
                                       size_t buf_cap,
                                       size_t *out_len,
                                       bool *out_inserted);

/**
 * Atomically replaces the value of `key` with `new_value[0..new_len]` if it is
 * currently equal to `expected[0..expected_len]` (byte for byte).
 *
 * `*out_swapped` receives true if the value was replaced, false otherwise (also on
 * `MAPCACHE_NOT_FOUND` and on every error).
 *
 * Ownership: the library copies `new_value`; all buffers stay the caller's.
 * Thread-safety: as `mapcache_put`.
 *
 * Returns:
 * - `MAPCACHE_OK`: the key is present; `*out_swapped` says whether it was swapped.
 * - `MAPCACHE_NOT_FOUND`: the key is absent (`*out_swapped` = false).
 * - `MAPCACHE_E_INVALID_ARG`: `cache` or `out_swapped` NULL; `key`, `expected` or
 *   `new_value` NULL with a non-zero length.
 * - `MAPCACHE_E_KEY_TOO_LONG`, `MAPCACHE_E_VALUE_TOO_LONG` (`expected_len` or
 *   `new_len`), `MAPCACHE_E_TOO_LARGE` (a bounded cache: the new entry is larger
 *   than its shard's share of `max_bytes`; nothing was swapped),
 *   `MAPCACHE_E_CONCURRENT_WRITE` (exclusive mode),
 *   `MAPCACHE_E_NO_MEMORY`, `MAPCACHE_E_INVALID_HANDLE`, `MAPCACHE_E_INTERNAL`.
 *
 * # Safety
 * `key`, `expected` and `new_value` readable for their lengths and not modified
 * during the call; `out_swapped` writable.
 */
mapcache_status mapcache_compare_and_swap(mapcache_t *cache,
                                          const uint8_t *key,
                                          size_t key_len,
                                          const uint8_t *expected,
                                          size_t expected_len,
                                          const uint8_t *new_value,
                                          size_t new_len,
                                          bool *out_swapped);

/**
 * Inserts or replaces the value of `key` with a copy of `value[0..value_len]`
 * that expires `ttl_ms` milliseconds from now on the cache's clock. `ttl_ms` 0
 * means it never expires, whatever the cache's `default_ttl_ms`. (`mapcache_put`
 * and every other write but a load give the entry the cache's `default_ttl_ms`;
 * a load gives it the expiry its record was saved with.)
 *
 * From the moment it expires (the cache's clock has moved `ttl_ms` or more past
 * the put) the entry is absent for every call: `mapcache_get` and its variants,
 * the batch gets, `mapcache_contains`, iteration, `mapcache_compare_and_swap`
 * (`MAPCACHE_NOT_FOUND`) and `mapcache_get_or_insert` and
 * `mapcache_get_or_load` (which store a new value). Its memory is reclaimed
 * lazily: when a call comes across it, or by the eviction sweep; it counts as
 * an expiration in `mapcache_stats_get`.
 *
 * Ownership, thread-safety and replacement: as `mapcache_put`.
 *
 * Returns:
 * - `MAPCACHE_OK`.
 * - `MAPCACHE_E_INVALID_ARG`: `cache` NULL, `key` NULL with `key_len` > 0, `value`
 *   NULL with `value_len` > 0.
 * - `MAPCACHE_E_KEY_TOO_LONG`, `MAPCACHE_E_VALUE_TOO_LONG`.
 * - `MAPCACHE_E_TOO_LARGE` (a bounded cache: the entry is larger than its
 *   shard's share of `max_bytes`; nothing was written).
 * - `MAPCACHE_E_CONCURRENT_WRITE` (exclusive mode; nothing was written),
 *   `MAPCACHE_E_NO_MEMORY` (nothing was written), `MAPCACHE_E_INVALID_HANDLE`,
 *   `MAPCACHE_E_INTERNAL`.
 *
 * # Safety
 * `key` and `value` must be readable for their lengths and not modified during
 * the call.
 */
mapcache_status mapcache_put_ttl(mapcache_t *cache,
                                 const uint8_t *key,
                                 size_t key_len,
                                 const uint8_t *value,
                                 size_t value_len,
                                 uint64_t ttl_ms);

/**
 * Moves the manual clock of `cache` forward by `ms` milliseconds, for tests of
 * expiry that must not sleep: entries whose deadline it reaches are expired for
 * every call from then on (`mapcache_len` and the stats count them until they
 * are reclaimed, see `mapcache_put_ttl`). Only for a cache made with
 * `cfg.clock = MAPCACHE_CLOCK_MANUAL`; each such cache has a clock of its own,
 * which starts at 0. The clock never moves backwards, and saturates at its end,
 * 2^63 - 1 ns (9,223,372,036,854.775807 ms, about 292 years): a move past the
 * end (`UINT64_MAX`, say) moves it to the end. A TTL entry written at any reading,
 * the end included, lives its TTL or until the end.
 *
 * Thread-safety: any thread, concurrently with any call on `cache` but
 * `mapcache_free`; a call that runs while the clock moves sees it before or
 * after the move.
 *
 * Returns:
 * - `MAPCACHE_OK`.
 * - `MAPCACHE_E_INVALID_ARG`: `cache` NULL, or the cache's clock is
 *   `MAPCACHE_CLOCK_SYSTEM` (which cannot be moved).
 * - `MAPCACHE_E_INVALID_HANDLE`, `MAPCACHE_E_INTERNAL`.
 *
 * # Safety
 * `cache` must be NULL or a pointer obtained from `mapcache_new` (any value is
 * memory-safe: see the conventions on handles).
 */
mapcache_status mapcache_clock_advance(mapcache_t *cache,
                                       uint64_t ms);

/**
 * Returns the value of `key`, computing and caching it with `loader` on a miss.
 *
 * - Present (and not expired): the value is copied into `buf` as by
 *   `mapcache_get`; the loader is not called.
 * - Absent: `loader(ctx, key, key_len, result)` runs once, on this thread,
 *   with no lock held; if it returns 0, the value it set (empty if none) is
 *   stored with the cache's `default_ttl_ms` and copied into `buf`. If another
 *   write stored the key while the loader ran, that value is kept and returned
 *   instead.
 * - Concurrent misses on one key run one load (singleflight): the first caller
 *   runs the loader, the others wait for it (blocked, without spinning) and get
 *   the same value, or the same failure. A cache stampede never reaches the
 *   loader's backend more than once per key at a time.
 * - A loader that returns a non-zero status caches nothing: this call and
 *   every caller that waited for that load return `MAPCACHE_E_LOADER` with
 *   `*loader_status` = that status and its message (see
 *   `mapcache_load_result_set_error`); the next call loads again.
 *
 * `buf[0..buf_cap]` receives the value; `buf` may be NULL when `buf_cap` is 0.
 * `*out_len` receives its length on `MAPCACHE_OK` and on
 * `MAPCACHE_E_BUFFER_TOO_SMALL` (the value was stored all the same, as on
 * `MAPCACHE_OK`: read it with `mapcache_get` into a buffer of `*out_len`
 * bytes, or call this again with one, which serves it without loading unless
 * it was evicted, refused by a bounded cache's admission policy, or expired
 * meanwhile), and 0 on every other status. `*loader_status` (when `loader_status` is not NULL) receives the
 * loader's status on `MAPCACHE_E_LOADER` and 0 otherwise. `buf` must not
 * overlap `key`.
 *
 * The loader must follow the rules of `mapcache_loader_fn`. In
 * `MAPCACHE_MODE_EXCLUSIVE` the call is a write, and follows that mode's
 * contract (`MAPCACHE_E_CONCURRENT_WRITE`; the first lookup may report
 * `MAPCACHE_E_CONCURRENT_READ_WRITE`).
 *
 * Ownership: `ctx` is passed through untouched; all buffers are the caller's.
 * Thread-safety: any thread, concurrently with other calls on `cache` except
 * `mapcache_free`.
 *
 * Returns:
 * - `MAPCACHE_OK`: the value was copied, `*out_len` is its length.
 * - `MAPCACHE_E_BUFFER_TOO_SMALL`: the value is longer than `buf_cap` (stored;
 *   see above).
 * - `MAPCACHE_E_LOADER`: the loader (this call's, or the one this call waited
 *   for) returned a non-zero status, in `*loader_status`.
 * - `MAPCACHE_E_INVALID_ARG`: `cache`, `loader` or `out_len` NULL, `key` NULL
 *   with `key_len` > 0, `buf` NULL with `buf_cap` > 0, `buf` overlaps `key`;
 *   or called from the loader of a load of the same key in progress on this
 *   thread (it would wait for itself).
 * - `MAPCACHE_E_KEY_TOO_LONG`, `MAPCACHE_E_VALUE_TOO_LONG` (the loader's
 *   value), `MAPCACHE_E_TOO_LARGE` (a bounded cache: the loaded entry is larger
 *   than its shard's share of `max_bytes`; not cached),
 *   `MAPCACHE_E_CONCURRENT_WRITE` and `MAPCACHE_E_CONCURRENT_READ_WRITE`
 *   (exclusive mode), `MAPCACHE_E_NO_MEMORY`, `MAPCACHE_E_INVALID_HANDLE`,
 *   `MAPCACHE_E_INTERNAL`. A waiter receives the error its load's leader got
 *   storing the value.
 *
 * # Safety
 * `key` must be readable for `key_len` bytes and not modified during the call
 * by another thread (the loader may modify it: the library works on a copy);
 * `buf` writable for `buf_cap` bytes; `out_len` writable; `loader_status` NULL
 * or writable; `loader` a function with the `mapcache_loader_fn` signature that
 * follows its rules.
 */
mapcache_status mapcache_get_or_load(mapcache_t *cache,
                                     const uint8_t *key,
                                     size_t key_len,
                                     mapcache_loader_fn loader,
                                     void *ctx,
                                     uint8_t *buf,
                                     size_t buf_cap,
                                     size_t *out_len,
                                     int32_t *loader_status);

/**
 * Hands the loaded value to the library: copies `value[0..value_len]` now
 * (the caller keeps its buffer). Callable only while the loader call that
 * received `result` runs, from any thread; a second call replaces the value
 * of the first. The value is cached only if the loader then returns 0.
 *
 * Thread-safety: any thread, during the loader call.
 *
 * Returns:
 * - `MAPCACHE_OK`.
 * - `MAPCACHE_E_INVALID_ARG`: `result` NULL, `value` NULL with `value_len` > 0.
 * - `MAPCACHE_E_VALUE_TOO_LONG`.
 * - `MAPCACHE_E_INVALID_HANDLE`: `result` was used after its loader call
 *   returned (detected however long after), or is not a result at all.
 * - `MAPCACHE_E_NO_MEMORY` (the earlier value, if any, is kept),
 *   `MAPCACHE_E_INTERNAL`.
 *
 * # Safety
 * `value` must be readable for `value_len` bytes and not modified during the
 * call; `result` may be any value (it is decoded, never dereferenced).
 */
mapcache_status mapcache_load_result_set(struct mapcache_load_result *result,
                                         const uint8_t *value,
                                         size_t value_len);

/**
 * Attaches an error message to a loader's failure: copies the NUL-terminated
 * UTF-8 string `message` now (invalid UTF-8 is replaced, a message longer than
 * 4096 bytes is cut). If the loader then returns a non-zero status, every
 * caller that waited for the load finds `"mapcache_get_or_load: the loader
 * returned <status>: <message>"` in its `mapcache_last_error()`; if it returns
 * 0 the message is ignored. NULL removes a message set before; a second call
 * replaces the first. Callable only during the loader call, as
 * `mapcache_load_result_set`.
 *
 * Thread-safety: any thread, during the loader call.
 *
 * Returns:
 * - `MAPCACHE_OK`.
 * - `MAPCACHE_E_INVALID_ARG`: `result` NULL.
 * - `MAPCACHE_E_INVALID_HANDLE`: as for `mapcache_load_result_set`.
 * - `MAPCACHE_E_INTERNAL`.
 *
 * # Safety
 * `message` must be NULL or a NUL-terminated string, unmodified during the
 * call; `result` may be any value.
 */
mapcache_status mapcache_load_result_set_error(struct mapcache_load_result *result,
                                               const char *message);

/**
 * Fills `*out` with the counters of `cache` (see `mapcache_stats`).
 *
 * Set `out->struct_size = sizeof(mapcache_stats)` first: the library writes
 * exactly that many bytes (the counters this library keeps, then zeros for
 * any counter of a newer header it does not know) and leaves `struct_size` as
 * it was, so a host built against an older header is never written past its
 * struct. Cheap: a sum over the cache's shards and counter stripes, with no
 * lock; it never counts as a lookup and never fails for exclusive mode's
 * contract.
 *
 * Ownership: `*out` is the caller's. Thread-safety: any thread, concurrently
 * with any call on `cache` but `mapcache_free`.
 *
 * Returns:
 * - `MAPCACHE_OK`.
 * - `MAPCACHE_E_INVALID_ARG`: `out` NULL, or `out->struct_size` smaller than the
 *   first `mapcache_stats` (128 bytes) or larger than 4096 (nothing was
 *   written); `cache` NULL (the counters are set to 0).
 * - `MAPCACHE_E_INVALID_HANDLE` (the counters are set to 0),
 *   `MAPCACHE_E_INTERNAL`.
 *
 * # Safety
 * `out` must be NULL or valid for reading a `size_t` and writing
 * `out->struct_size` bytes (any alignment).
 */
mapcache_status mapcache_stats_get(mapcache_t *cache,
                                   struct mapcache_stats *out);

/**
 * ============ 3. SNAPSHOTS ============
 *
 * Saves `cache` to a snapshot file at `path`, replacing any file there
 * atomically: the records go to a temporary file in the same directory
 * (`.<name>.<pid>-<id>.tmp`, `<name>` cut short to fit 255 bytes), which is
 * fsynced and renamed over `path`, and the directory is fsynced. A crash at
 * any moment leaves either the previous file or the complete new one; a save
 * that fails leaves the previous file as it was and removes its temporary
 * file (a process killed during a save cannot: its temporary file stays, and
 * no later save removes it, since another process's save may be writing it).
 * Only a regular file is replaced: a `path` that names a directory, a
 * device, a FIFO or a socket is refused before anything is written (the
 * rename would replace it), and a symbolic link is followed (the file it
 * leads to is replaced, in that file's directory; a link that leads to no
 * file, dangling or a loop, is refused). The new file gets the permission
 * bits of the file it replaces (a snapshot kept `0600` stays `0600`; a new
 * one gets the umask's), and its owner and group where the process may set
 * them (root; a group the process is in), else the saver's, as any rename
 * makes them.
 *
 * Other threads keep reading and writing during a save: each shard's lock is
 * held only while its slot pointers are copied, never for file I/O. Each
 * key's record holds the value the key had at the moment its shard was
 * copied, a moment during the save (shards are copied one after another, so
 * the file is not one point-in-time image of the whole cache). Entries expired
 * at that moment are left out; the others keep their expiry as absolute
 * wall-clock time, so a cache loaded later honours it.
 *
 * `progress` may be NULL; otherwise it is called as `mapcache_progress_fn`
 * says, with `progress_ctx`. `report` may be NULL; otherwise its
 * `struct_size` must be set and it receives what the save did (see
 * `mapcache_save_report`).
 *
 * Thread-safety: any thread, concurrently with any call on `cache` but
 * `mapcache_free`; two saves to the same path may run at once (the last
 * rename wins, and each file is complete). In exclusive mode a save is a
 * read, and fails with `MAPCACHE_E_CONCURRENT_READ_WRITE` when another thread
 * writes while a shard is copied.
 *
 * Returns:
 * - `MAPCACHE_OK`.
 * - `MAPCACHE_E_INVALID_ARG`: `cache` or `path` NULL, `path` empty or naming
 *   no file (`/`, or ending in `/`, `/.` or `/..`), or `report->struct_size`
 *   out of range: smaller than the first `mapcache_save_report` (48 bytes) or
 *   larger than 4096 (nothing was saved).
 * - `MAPCACHE_E_IO`: a file operation failed (examining the target, "stat";
 *   creating the temporary file, writing, fsync, rename, fsync of the
 *   directory; e.g. a read-only or full directory), or `path` names something
 *   a save must not replace (step "stat": a directory, with `EISDIR`; a
 *   device, a FIFO, a socket or a link that leads to no file (dangling or a
 *   loop), with no errno: the refusal is the library's, though the message
 *   quotes what following the link gave, e.g. ENOENT or ELOOP, and a load of
 *   the same path reports that errno from its open). The message names the step, the path it worked on and the OS
 *   error (for the steps on the temporary file, create, write and fsync,
 *   that is the temporary file's path, `.NAME.<pid>-<id>.tmp` beside NAME);
 *   `report->os_errno` holds its errno. The previous file at `path` is
 *   intact.
 * - `MAPCACHE_E_CONCURRENT_READ_WRITE` (exclusive mode), `MAPCACHE_E_NO_MEMORY`,
 *   `MAPCACHE_E_INVALID_HANDLE`, `MAPCACHE_E_INTERNAL`. The previous file is
 *   intact.
 *
 * # Safety
 * `path` must be NULL or a NUL-terminated string; `report` must be NULL or
 * valid for reading a `size_t` and writing `report->struct_size` bytes (any
 * alignment).
 */
mapcache_status mapcache_save(mapcache_t *cache,
                              const char *path,
                              mapcache_progress_fn progress,
                              void *progress_ctx,
                              struct mapcache_save_report *report);

/**
 * Creates a cache configured by `cfg` holding the snapshot at `path` (a file
 * written by `mapcache_save`, of this or an older format version).
 *
 * The file is mapped read-only under a shared advisory lock (`flock`), taken
 * without waiting: while another process holds an exclusive `flock` on it the
 * load fails at once (`MAPCACHE_E_IO`, step "lock", `os_errno` `EWOULDBLOCK`);
 * retry if you coordinate writers with `flock`. The whole file is validated (every length, count and offset against the
 * file's size, every checksum) before the cache is returned; each block is
 * copied out of the mapping before it is checked and used, so a file changed
 * under the load cannot make it use unchecked bytes. Records whose wall-clock
 * expiry has passed are left out. The cache is sized for the snapshot up
 * front (`cfg->initial_capacity` is raised to the file's record count, or to
 * what the file's bytes on the device, or its first 64 MiB if more, can hold
 * where that is less: the holes of a sparse file hold nothing; past that the
 * tables grow as the records come). A
 * bounded cache smaller than the snapshot keeps what its eviction policy
 * keeps as the records arrive in file order. What remains: a process that
 * ignores the advisory lock and truncates the file during the load makes the
 * loading process receive SIGBUS (mapcache's own saves never modify an
 * existing file, they rename a new one over it).
 *
 * `cfg`, `out` and ownership: as `mapcache_new` (on any error `*out` is NULL).
 * `report` may be NULL; otherwise its `struct_size` must be set and it
 * receives what the load did (see `mapcache_load_report`).
 * Thread-safety: any thread.
 *
 * Returns:
 * - `MAPCACHE_OK`: `*out` is the new cache.
 * - `MAPCACHE_E_INVALID_ARG`: `out` or `path` NULL, `path` empty,
 *   `report->struct_size` out of range: smaller than the first
 *   `mapcache_load_report` (72 bytes) or larger than 4096.
 * - `MAPCACHE_E_CORRUPT`: the file is damaged, truncated, appended to, not a
 *   snapshot, or of a newer format version. The message says what was wrong
 *   and at which byte offset; `report->corrupt_offset` holds the offset.
 * - `MAPCACHE_E_IO`: the file could not be opened, examined, locked or
 *   mapped, the steps the message names "open", "stat" (fstat), "lock" and
 *   "mmap" (e.g. it does not exist: "open", errno `ENOENT`), or `path` names
 *   no regular file; the message names the step and the path,
 *   `report->os_errno` holds the errno.
 *   A directory fails at "open" with `EISDIR`; anything else that is no
 *   regular file (a FIFO, a device, a socket) fails at "open" with
 *   `os_errno` 0 and the message "snapshot open of <path>: not a regular
 *   file (a FIFO)" (or "a character device", "a block device", "a socket").
 * - `MAPCACHE_E_INVALID_CONFIG`, `MAPCACHE_E_GPU`, `MAPCACHE_E_NO_MEMORY`,
 *   `MAPCACHE_E_INTERNAL`: as `mapcache_new`.
 *
 * `path` is opened with `O_NONBLOCK` and checked with fstat(2) before
 * anything is read from it, so a path naming a FIFO or a device fails at once
 * (`MAPCACHE_E_IO`, above) rather than waiting in open(2) for a writer.
 *
 * # Safety
 * `path` must be NULL or a NUL-terminated string; `cfg` as for `mapcache_new`;
 * `out` must be NULL or valid for writing one pointer; `report` as for
 * `mapcache_save`.
 */
mapcache_status mapcache_load(const char *path,
                              const struct mapcache_config *cfg,
                              mapcache_t **out,
                              struct mapcache_load_report *report);

/**
 * Loads the snapshot at `path` into the live `cache`: each record overwrites
 * the value of the key it names, as a put would; keys the snapshot does not
 * name are left alone. The file is validated whole first (see
 * `mapcache_load`): a bad file fails with `MAPCACHE_E_CORRUPT` and the cache
 * is unchanged. Only an allocation failure while the records are stored
 * (`MAPCACHE_E_NO_MEMORY`) leaves the records stored until then.
 *
 * `report` may be NULL; otherwise its `struct_size` must be set and it
 * receives what the load did (see `mapcache_load_report`).
 *
 * Thread-safety: any thread, concurrently with any call on `cache` but
 * `mapcache_free`: each shard takes its records in chunks of a few thousand
 * under its lock, and lets a writer that waits for the shard go first
 * between chunks, so that writer waits about one chunk, not the whole load
 * (several waiting writers each get in at one chunk's end). In exclusive mode
 * the load is one write: it fails with `MAPCACHE_E_CONCURRENT_WRITE` if
 * another thread is writing, before changing anything.
 *
 * Returns:
 * - `MAPCACHE_OK`.
 * - `MAPCACHE_E_INVALID_ARG`: `cache` or `path` NULL, `path` empty,
 *   `report->struct_size` out of range: smaller than the first
 *   `mapcache_load_report` (72 bytes) or larger than 4096.
 * - `MAPCACHE_E_CORRUPT`, `MAPCACHE_E_IO`: as `mapcache_load`; the cache is
 *   unchanged.
 * - `MAPCACHE_E_CONCURRENT_WRITE` (exclusive mode; unchanged),
 *   `MAPCACHE_E_NO_MEMORY`, `MAPCACHE_E_INVALID_HANDLE`, `MAPCACHE_E_INTERNAL`.
 *
 * # Safety
 * As for `mapcache_load`.
 */
mapcache_status mapcache_load_into(mapcache_t *cache,
                                   const char *path,
                                   struct mapcache_load_report *report);

/**
 * ============ 4. BATCH CALLS ============
 * Many keys in one call, a status per key: mapcache_get_many,
 * mapcache_put_many, mapcache_delete_many.
 *
 * Looks up `n` keys and copies their values back to back into `values`.
 *
 * Keys: key `i` is the next `key_lens[i]` bytes of `keys` (packed back to back).
 * For each key, `out_statuses[i]` and `out_value_lens[i]` receive:
 * - `MAPCACHE_OK`, the value's length: the value was written into `values`, right
 *   after the previous key's value that was written (value `i` starts at the sum
 *   of `out_value_lens[j]` for the keys `j < i` whose status is `MAPCACHE_OK`);
 * - `MAPCACHE_NOT_FOUND`, 0;
 * - `MAPCACHE_E_BUFFER_TOO_SMALL`, the needed length: it did not fit in what was
 *   left of `values_cap`; nothing was written for it, and later (smaller) values
 *   may still be written;
 * - `MAPCACHE_E_KEY_TOO_LONG`, `MAPCACHE_E_CONCURRENT_READ_WRITE` (exclusive
 *   mode), 0.
 *
 * `n` may be 0 (then every pointer may be NULL). `values` may be NULL when
 * `values_cap` is 0. No output (`values[0..values_cap]`, `out_value_lens`,
 * `out_statuses`) may overlap an input (`keys`, `key_lens`) or another output.
 *
 * Ownership: all arrays are the caller's. Thread-safety: as `mapcache_get`; the
 * batch is not atomic (each key is read on its own).
 *
 * Returns:
 * - `MAPCACHE_OK`: the batch ran; see `out_statuses` (the first per-key error, if
 *   any, is in `mapcache_last_error()`).
 * - `MAPCACHE_E_INVALID_ARG`: `cache` NULL; with `n` > 0, `key_lens`,
 *   `out_value_lens` or `out_statuses` NULL; `keys` NULL while the key lengths add
 *   up to more than 0; `values` NULL with `values_cap` > 0; an output overlaps an
 *   input or another output (the message names both); the key lengths overflow.
 * - `MAPCACHE_E_INVALID_HANDLE`, `MAPCACHE_E_INTERNAL`.
 *
 * On `MAPCACHE_E_INVALID_ARG` or `MAPCACHE_E_INVALID_HANDLE` no key was processed
 * and the output arrays were not written (unless the host changed the length
 * arrays during the call, which the contract forbids).
 *
 * # Safety
 * `key_lens`, `out_value_lens`, `out_statuses` must be valid for `n` elements,
 * `keys` readable for the sum of `key_lens`, `values` writable for `values_cap`
 * bytes.
 */
mapcache_status mapcache_get_many(mapcache_t *cache,
                                  size_t n,
                                  const uint8_t *keys,
                                  const size_t *key_lens,
                                  uint8_t *values,
                                  size_t values_cap,
                                  size_t *out_value_lens,
                                  mapcache_status *out_statuses);

/**
 * Inserts or replaces `n` entries: key `i` is the next `key_lens[i]` bytes of
 * `keys`, its value the next `value_lens[i]` bytes of `values` (both packed back
 * to back).
 *
 * `out_statuses[i]` receives `MAPCACHE_OK` (inserted or replaced),
 * `MAPCACHE_E_KEY_TOO_LONG`, `MAPCACHE_E_VALUE_TOO_LONG`, `MAPCACHE_E_TOO_LARGE`
 * (a bounded cache), `MAPCACHE_E_CONCURRENT_WRITE` (exclusive mode) or
 * `MAPCACHE_E_NO_MEMORY`; a failed
 * key changes nothing and later keys are still processed. Keys are written in
 * order, so a key repeated in the batch ends with its last value. `out_statuses`
 * must not overlap an input (`keys`, `key_lens`, `values`, `value_lens`).
 *
 * Ownership: the library copies keys and values. Thread-safety: as `mapcache_put`;
 * the batch is not atomic (other threads may see part of it).
 *
 * Returns:
 * - `MAPCACHE_OK`: the batch ran; see `out_statuses`.
 * - `MAPCACHE_E_INVALID_ARG`: `cache` NULL; with `n` > 0, `key_lens`, `value_lens`
 *   or `out_statuses` NULL; `keys` (`values`) NULL while the key (value) lengths
 *   add up to more than 0; `out_statuses` overlaps an input (the message names
 *   it); the lengths overflow.
 * - `MAPCACHE_E_INVALID_HANDLE`, `MAPCACHE_E_INTERNAL`.
 *
 * On `MAPCACHE_E_INVALID_ARG` or `MAPCACHE_E_INVALID_HANDLE` no key was processed
 * and the output arrays were not written (unless the host changed the length
 * arrays during the call, which the contract forbids).
 *
 * # Safety
 * `key_lens`, `value_lens`, `out_statuses` must be valid for `n` elements, `keys`
 * and `values` readable for the sums of their lengths, and not modified during
 * the call.
 */
mapcache_status mapcache_put_many(mapcache_t *cache,
                                  size_t n,
                                  const uint8_t *keys,
                                  const size_t *key_lens,
                                  const uint8_t *values,
                                  const size_t *value_lens,
                                  mapcache_status *out_statuses);

/**
 * Removes `n` keys: key `i` is the next `key_lens[i]` bytes of `keys` (packed back
 * to back).
 *
 * `out_statuses[i]` receives `MAPCACHE_OK` (was present, removed),
 * `MAPCACHE_NOT_FOUND` (was absent), `MAPCACHE_E_KEY_TOO_LONG` or
 * `MAPCACHE_E_CONCURRENT_WRITE` (exclusive mode). `out_statuses` must not overlap
 * `keys` or `key_lens`.
 *
 * Ownership: all arrays are the caller's. Thread-safety: as `mapcache_delete`; the
 * batch is not atomic.
 *
 * Returns:
 * - `MAPCACHE_OK`: the batch ran; see `out_statuses`.
 * - `MAPCACHE_E_INVALID_ARG`: `cache` NULL; with `n` > 0, `key_lens` or
 *   `out_statuses` NULL; `keys` NULL while the key lengths add up to more than 0;
 *   `out_statuses` overlaps `keys` or `key_lens`; the lengths overflow.
 * - `MAPCACHE_E_INVALID_HANDLE`, `MAPCACHE_E_INTERNAL`.
 *
 * On `MAPCACHE_E_INVALID_ARG` or `MAPCACHE_E_INVALID_HANDLE` no key was processed
 * and the output arrays were not written (unless the host changed the length
 * arrays during the call, which the contract forbids).
 *
 * # Safety
 * `key_lens` and `out_statuses` must be valid for `n` elements, `keys` readable for
 * the sum of `key_lens`, and not modified during the call.
 */
mapcache_status mapcache_delete_many(mapcache_t *cache,
                                     size_t n,
                                     const uint8_t *keys,
                                     const size_t *key_lens,
                                     mapcache_status *out_statuses);

/**
 * ============ 5. ITERATION ============
 * mapcache_iter_new, mapcache_iter_next, mapcache_iter_free.
 *
 * Starts an iteration over `cache`: `*out` receives a new iterator positioned
 * before the first entry (NULL on every error, when `out` is not NULL).
 *
 * The iteration is weakly consistent: it runs concurrently with writers; a key
 * present for the whole iteration is yielded exactly once, no
 * key is yielded twice, and keys inserted or removed meanwhile may or may not be.
 * The iterator does not keep the cache alive: after `mapcache_free(cache)`, its
 * `mapcache_iter_next` returns `MAPCACHE_E_INVALID_HANDLE`.
 *
 * Ownership: the caller owns the iterator and must free it with
 * `mapcache_iter_free` (also after the cache is freed). Thread-safety: any thread;
 * the iterator may move between threads but must be used by one at a time.
 *
 * Returns:
 * - `MAPCACHE_OK`.
 * - `MAPCACHE_E_INVALID_ARG`: `cache` or `out` NULL.
 * - `MAPCACHE_E_INVALID_HANDLE`: `cache` was freed or is foreign.
 * - `MAPCACHE_E_NO_MEMORY`: 2097152 iterators are live (the most there can be at
 *   once).
 * - `MAPCACHE_E_INTERNAL`.
 *
 * # Safety
 * `out` must be NULL or valid for writing a pointer.
 */
mapcache_status mapcache_iter_new(mapcache_t *cache,
                                  mapcache_iter_t **out);

/**
 * Advances the iterator: on `MAPCACHE_OK`, `*key`/`*key_len` and
 * `*value`/`*value_len` receive the next entry.
 *
 * Ownership: the key and value bytes belong to the iterator; they stay valid and
 * unchanged until the next call on `it` or `mapcache_iter_free(it)`, whichever
 * comes first, even if the entry is changed or removed from the cache meanwhile.
 * Do not free or write them. (A pointer may be non-NULL with length 0.)
 *
 * Thread-safety: one thread at a time per iterator (a concurrent call on the same
 * iterator is refused with `MAPCACHE_E_INVALID_ARG`); any number of iterators and
 * other calls may run on the same cache concurrently.
 *
 * Returns:
 * - `MAPCACHE_OK`: an entry.
 * - `MAPCACHE_NOT_FOUND`: the iteration is over (and stays over); the outputs are
 *   set to NULL and 0, as they are on every error below (each that is not NULL).
 * - `MAPCACHE_E_INVALID_ARG`: `it`, `key`, `key_len`, `value` or `value_len` NULL;
 *   `it` in use by another thread.
 * - `MAPCACHE_E_INVALID_HANDLE`: `it` was freed or is foreign, or its cache was
 *   freed.
 * - `MAPCACHE_E_CONCURRENT_READ_WRITE` (exclusive mode): the iterator fetches
 *   entries in steps (one bucket chain each), and each step is a read: this
 *   step saw another thread's write in flight, before or after it. Its entries
 *   are dropped, not returned; a further call retries the step if the write was
 *   seen before it, and goes on with the next step if it was seen after it.
 * - `MAPCACHE_E_INTERNAL`.
 *
 * # Safety
 * The four out-pointers must be writable.
 */
mapcache_status mapcache_iter_next(mapcache_iter_t *it,
                                   const uint8_t **key,
                                   size_t *key_len,
                                   const uint8_t **value,
                                   size_t *value_len);

/**
 * Frees an iterator and the entry bytes it holds. NULL is a no-op.
 *
 * May be called before or after the iterator's cache is freed. A second free of
 * the same iterator is detected (however many iterators were created since)
 * and ignored, with a message in `mapcache_last_error()`; so is a foreign
 * pointer. After the free, `mapcache_iter_next(it)` returns
 * `MAPCACHE_E_INVALID_HANDLE`, and never reaches another iterator.
 *
 * Thread-safety: any thread, but not concurrently with another call on `it` (if
 * one is in progress, this waits for it to finish).
 *
 * # Safety
 * `it` must be NULL or a pointer obtained from `mapcache_iter_new`.
 */
void mapcache_iter_free(mapcache_iter_t *it);

/**
 * ============ 6. LABELS AND ERRORS ============
 * mapcache_set_thread_label, mapcache_last_error, mapcache_status_str.
 *
 * Names the calling OS thread in misuse reports (`MAPCACHE_E_CONCURRENT_WRITE`,
 * `MAPCACHE_E_CONCURRENT_READ_WRITE`): the message of a collision quotes the label
 * of each thread involved, or `thread <os tid>` for a thread without one.
 * Labels are quoted as given, not escaped (a `'` in a label stays as it is), so
 * a host that reads the two names back splits the message at its one
 * occurrence of `' collided with a write in progress by '`: the collider's
 * label lies between the first `'` and it, the holder's between it and the
 * final `'`. A label that itself holds that phrase makes the split ambiguous
 * (the Go and Python bindings then give no labels rather than wrong ones).
 *
 * `label` is a NUL-terminated UTF-8 string of at most `MAPCACHE_MAX_LABEL_LEN`
 * bytes; NULL removes the label (reports then name the thread `thread <os tid>`
 * again). An empty string does not remove it: it is a label like any other, and
 * reports quote it as `''`. The label applies to every cache and stays until
 * replaced, removed, or the thread exits.
 *
 * Ownership: the library copies the string during the call.
 * Thread-safety: any thread; it labels the calling thread only. (A Go host should
 * lock the goroutine to its thread to label it meaningfully.)
 *
 * Returns:
 * - `MAPCACHE_OK`.
 * - `MAPCACHE_E_INVALID_ARG`: not valid UTF-8, or longer than
 *   `MAPCACHE_MAX_LABEL_LEN` bytes (no NUL within the first
 *   `MAPCACHE_MAX_LABEL_LEN + 1` bytes); the label is left unchanged.
 * - `MAPCACHE_E_INTERNAL`.
 *
 * # Safety
 * `label` must be NULL or point to a NUL-terminated string (the library reads at
 * most `MAPCACHE_MAX_LABEL_LEN + 1` bytes of it).
 */
mapcache_status mapcache_set_thread_label(const char *label);

/**
 * The message of the last call on this thread that returned an error status (any
 * status other than `MAPCACHE_OK` and `MAPCACHE_NOT_FOUND`), or `""` when no call
 * on this thread has failed yet.
 *
 * One rule for every call, batches included. A message about the call's
 * arguments or handles starts with the function's name and, for one key of a
 * batch, the key's index: `"mapcache_get: key is NULL but key_len is 5"`,
 * `"mapcache_put_many: key 3: key_len = 70000 is longer than MAPCACHE_MAX_KEY_LEN
 * (65535)"`. A report of the library core is passed on verbatim, with no prefix
 * and no index, whichever call it comes from: the misuse reports
 * (`MAPCACHE_E_CONCURRENT_WRITE`: `concurrent map writes: 'B' collided with a
 * write in progress by 'A'`; `MAPCACHE_E_CONCURRENT_READ_WRITE`: `concurrent map
 * read and map write: 'B' collided with a write in progress by 'A'`) and
 * allocation failures (`out of memory allocating N bytes`), and so are the
 * snapshot and GPU failures, which start with the step that failed
 * (`snapshot open of <path>: ...`, `corrupt snapshot at byte offset N: ...`,
 * `GPU engine (gpu = force): ...`). A batch that returns
 * `MAPCACHE_OK` with per-key errors leaves the message of its first failing key
 * (which key failed how is in its `out_statuses`).
 *
 * Returns: a NUL-terminated UTF-8 string, never NULL. Ownership: it belongs to the
 * library; it stays valid on this thread until the next failing mapcache call on
 * this thread, or until the thread exits; copy it to keep it. Do not free it.
 * Thread-safety: any thread; each thread has its own message, so another thread's
 * failures never change it.
 */
const char *mapcache_last_error(void);

/**
 * Names a status: its constant's name and a short meaning, e.g.
 * `"MAPCACHE_E_BUFFER_TOO_SMALL: buffer too small"`; `"unknown mapcache_status"`
 * for a value this library does not define.
 *
 * Returns: a static NUL-terminated string, never NULL. Ownership: the string belongs
 * to the library and lives as long as the library is loaded; do not free it.
 * Thread-safety: any thread, any time. Does not touch `mapcache_last_error()`.
 */
const char *mapcache_status_str(mapcache_status status);

/**
 * ============ 7. VERSIONING ============
 * mapcache_abi_version, mapcache_version (and MAPCACHE_ABI_VERSION above).
 *
 * The ABI version of the loaded library (`MAPCACHE_ABI_VERSION` of the header it
 * was built with).
 *
 * Thread-safety: any thread, any time. Never fails.
 */
uint32_t mapcache_abi_version(void);

/**
 * The library's version, e.g. `"0.1.0"`.
 *
 * Returns: a static NUL-terminated string, never NULL; it belongs to the library
 * (do not free it). Thread-safety: any thread, any time. Never fails.
 */
const char *mapcache_version(void);

/**
 * ============ 8. GPU ENGINE ============
 * mapcache_gpu_status (and the config's `gpu_mode`, `gpu_threshold`,
 * `gpu_plugin_path`).
 *
 * Fills `*out` with whether `cache` rebuilds its large tables on the GPU and,
 * if not, why (see `mapcache_gpu_info`). Unless the cache was made with
 * `MAPCACHE_GPU_OFF`, this loads the GPU engine if no rebuild has yet: the
 * CUDA driver `libcuda.so.1`, the plugin, a context on the first device (once
 * per process and plugin path; a failure is kept, not retried).
 *
 * Loading reads the process's environment: the engine's settings
 * (`MAPCACHE_GPU_SOURCE`, `MAPCACHE_CUDA_*`, `docs/ARCHITECTURE.md`), which
 * neither the library nor its plugin reads again, and the CUDA driver's own
 * variables (such as `CUDA_VISIBLE_DEVICES`), read by the driver as it starts.
 * Without this call the load happens in `mapcache_new` under
 * `MAPCACHE_GPU_FORCE`, else at the first rebuild of a table at or over the
 * threshold, on the thread of the write (or of the snapshot load's workers)
 * that grew it. C's `getenv` is not safe
 * against a concurrent `setenv`, so a host that changes its environment while
 * other threads run (`setenv`, Go's `os.Setenv`, Python's `os.environ[...] =`)
 * should call this once at start-up, before it does.
 *
 * Set `out->struct_size = sizeof(mapcache_gpu_info)` first: the library writes
 * exactly that many bytes and leaves `struct_size` as it was.
 *
 * Ownership: `*out` is the caller's. Thread-safety: any thread, concurrently
 * with any call on `cache` but `mapcache_free`.
 *
 * Returns:
 * - `MAPCACHE_OK` (whatever the engine's state: an inactive engine is not an
 *   error).
 * - `MAPCACHE_E_INVALID_ARG`: `out` NULL, or `out->struct_size` smaller than
 *   the first `mapcache_gpu_info` (544 bytes) or larger than 4096 (nothing
 *   was written);
 *   `cache` NULL.
 * - `MAPCACHE_E_INVALID_HANDLE`, `MAPCACHE_E_INTERNAL`.
 *
 * # Safety
 * `out` must be NULL or valid for reading a `size_t` and writing
 * `out->struct_size` bytes (any alignment).
 */
mapcache_status mapcache_gpu_status(mapcache_t *cache,
                                    struct mapcache_gpu_info *out);

#if defined(MAPCACHE_TESTING)
/**
 * ============ 9. DEBUG HOOKS ============
 * Declared only when MAPCACHE_TESTING is defined before including this header:
 * mapcache_debug_hold_write, mapcache_debug_panic, mapcache_debug_load_waiters.
 *
 * DEBUGGING AID, not for production use: takes the write flag that a write of
 * `key` would take, calls `callback(ctx)` while holding it, then releases it.
 *
 * Meant for tests of misuse detection. Only for caches in
 * `MAPCACHE_MODE_EXCLUSIVE` (in concurrent mode other writers would wait for the
 * callback, which would deadlock a callback that waits for them). An exclusive
 * cache has one write flag for all its keys, so the flag's scope is the whole
 * cache and `key` does not change what is held: while the callback runs, a write
 * of any key by another thread fails with `MAPCACHE_E_CONCURRENT_WRITE`, naming
 * this thread as the holder, and a read of any key by another thread that checks
 * for overlapping writes fails with `MAPCACHE_E_CONCURRENT_READ_WRITE`.
 *
 * The callback runs on the calling thread; it must return normally and must not
 * call `mapcache_free` on `cache`. It may start and join other threads. Writes to
 * `cache` from the calling thread inside the callback collide with the flag it
 * holds.
 *
 * Thread-safety: as `mapcache_put`.
 *
 * Returns:
 * - `MAPCACHE_OK`: the callback ran while the flag was held.
 * - `MAPCACHE_E_CONCURRENT_WRITE`: the flag was taken by another thread; the
 *   callback was not called.
 * - `MAPCACHE_E_INVALID_ARG`: `cache` or `callback` NULL, `key` NULL with
 *   `key_len` > 0, or the cache is not in exclusive mode.
 * - `MAPCACHE_E_KEY_TOO_LONG`, `MAPCACHE_E_INVALID_HANDLE`, `MAPCACHE_E_INTERNAL`.
 *
 * # Safety
 * `key` must be readable for `key_len` bytes; `callback` must be a function with
 * the `mapcache_debug_fn` signature.
 */
mapcache_status mapcache_debug_hold_write(mapcache_t *cache,
                                          const uint8_t *key,
                                          size_t key_len,
                                          mapcache_debug_fn callback,
                                          void *ctx);
#endif

#if defined(MAPCACHE_TESTING)
/**
 * DEBUGGING AID, not for production use: panics inside the library with
 * `message` (NULL: a fixed text), to let a host check that panics are caught at
 * the boundary. Always returns `MAPCACHE_E_INTERNAL`, with a message that contains
 * `message`; the panic is also printed to stderr by the Rust panic hook.
 *
 * Thread-safety: any thread.
 *
 * # Safety
 * `message` must be NULL or a NUL-terminated string.
 */
mapcache_status mapcache_debug_panic(const char *message);
#endif

#if defined(MAPCACHE_TESTING)
/**
 * DEBUGGING AID, not for production use: `*out` receives the number of
 * `mapcache_get_or_load` calls waiting for the load of `key` in progress on
 * `cache` (0 when none runs). For tests that must know every caller has
 * joined a load before letting its loader return: a waiter counted here gets
 * that load's outcome.
 *
 * Thread-safety: any thread (from inside the loader, typically).
 *
 * Returns:
 * - `MAPCACHE_OK`.
 * - `MAPCACHE_E_INVALID_ARG`: `cache` or `out` NULL, `key` NULL with
 *   `key_len` > 0.
 * - `MAPCACHE_E_KEY_TOO_LONG`, `MAPCACHE_E_INVALID_HANDLE`, `MAPCACHE_E_INTERNAL`.
 *
 * # Safety
 * `key` must be readable for `key_len` bytes and not modified during the
 * call; `out` writable.
 */
mapcache_status mapcache_debug_load_waiters(mapcache_t *cache,
                                            const uint8_t *key,
                                            size_t key_len,
                                            size_t *out);
#endif

#ifdef __cplusplus
}  // extern "C"
#endif  // __cplusplus

#endif  /* MAPCACHE_H */
