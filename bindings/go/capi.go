package mapcache

// This file is the only one that calls into C. Every operation is ONE cgo call
// into a small static shim below, which (when the caller is labelled) sets the
// thread label, runs the mapcache_* function, copies the thread-local error
// message out if the call failed, and clears the label again. All of that
// happens on one OS thread, inside one call, so a goroutine that moves between
// threads still carries its label into the library and gets the right message.
//
// Pointer rules: every Go pointer handed to C points at memory without Go
// pointers (byte slices, size_t and status arrays, the config struct) and is
// used by C only for the duration of the call. C memory handed to Go (error
// strings, iterator wrappers, the map handle) is C-allocated and freed via C.

/*
#cgo CFLAGS: -I${SRCDIR}/../../include -O2
#cgo noescape mcg_get
#cgo nocallback mcg_get
#cgo noescape mcg_put
#cgo nocallback mcg_put
#cgo noescape mcg_delete
#cgo nocallback mcg_delete
#cgo noescape mcg_contains
#cgo nocallback mcg_contains
#cgo noescape mcg_len
#cgo nocallback mcg_len
#cgo noescape mcg_clear
#cgo nocallback mcg_clear
#cgo noescape mcg_get_or_insert
#cgo nocallback mcg_get_or_insert
#cgo noescape mcg_cas
#cgo nocallback mcg_cas
#cgo noescape mcg_get_many
#cgo nocallback mcg_get_many
#cgo noescape mcg_put_many
#cgo nocallback mcg_put_many
#cgo noescape mcg_delete_many
#cgo nocallback mcg_delete_many
#cgo noescape mcg_iter_fill
#cgo nocallback mcg_iter_fill
#cgo noescape mcg_new
#cgo nocallback mcg_new
#cgo noescape mcg_put_ttl
#cgo nocallback mcg_put_ttl
#cgo noescape mcg_stats
#cgo nocallback mcg_stats
#cgo nocallback mcg_clock_advance
#cgo noescape mcg_load_result_set
#cgo nocallback mcg_load_result_set

#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
// The binding's tests use the library's debug hooks (mcg_debug_*), which the
// header declares only on request.
#define MAPCACHE_TESTING
#include "mapcache.h"

// The result of one shim call. st is the mapcache_status; flag, n and p carry
// the operation's outputs; err is a malloc'ed copy of mapcache_last_error()
// when st is an error (>= 2), to be freed by the caller.
typedef struct {
	int32_t st;
	int32_t flag;
	size_t n;
	char *err;
	void *p;
} mcg_res;

static inline char *mcg_err(void) {
	const char *m = mapcache_last_error();
	return strdup(m ? m : "");
}

// The label this OS thread last gave the library, cached so that a run of
// calls with the same label sets it once (setting it takes a process-wide lock
// in the library). The label is left in place after a call rather than
// cleared: the library resolves the name of a write-flag holder when another
// thread collides with it, which may be just after the holder's call returned.
// A call without a label clears a label left by an earlier one.
#define MCG_LABEL_CAP 1024
static __thread char mcg_cur_label[MCG_LABEL_CAP];
static __thread int mcg_has_label;

// Makes lbl (or no label) the thread's label; returns nonzero (and fills r)
// if that failed.
static inline int mcg_begin(const char *lbl, mcg_res *r) {
	if (lbl == NULL) {
		if (mcg_has_label) {
			mapcache_set_thread_label(NULL);
			mcg_has_label = 0;
		}
		return 0;
	}
	if (mcg_has_label && strcmp(lbl, mcg_cur_label) == 0) return 0;
	int32_t st = mapcache_set_thread_label(lbl);
	if (st != 0) {
		r->st = st;
		r->err = mcg_err();
		return 1;
	}
	size_t n = strlen(lbl);
	if (n < MCG_LABEL_CAP) {
		memcpy(mcg_cur_label, lbl, n + 1);
		mcg_has_label = 1;
	} else {
		mcg_has_label = 0; // not cached: set again next time
	}
	return 0;
}

// Copies the message of an error status out. Not for BUFFER_TOO_SMALL (3),
// which the binding always handles itself (it retries with a larger buffer)
// and whose message it never reports: a Get of a long value would otherwise
// pay a strdup here and a Go string for nothing.
static inline void mcg_end(const char *lbl, mcg_res *r) {
	(void)lbl;
	if (r->st >= 2 && r->st != 3 && r->err == NULL) r->err = mcg_err();
}

// For batch calls that ran: the library keeps the first per-key error's
// message in last_error; copy it out if any key failed.
static inline void mcg_batch_end(mcg_res *r, size_t n, const int32_t *sts) {
	if (r->st == 0) {
		for (size_t i = 0; i < n; i++) {
			if (sts[i] >= 2) {
				// The message is the first failing key's; BUFFER_TOO_SMALL
				// is retried by the binding, so its message is not wanted.
				if (sts[i] != 3) r->err = mcg_err();
				break;
			}
		}
	}
	mcg_end(NULL, r);
}

static mcg_res mcg_new(const mapcache_config *cfg) {
	mcg_res r = {0};
	mapcache_t *h = NULL;
	r.st = mapcache_new(cfg, &h);
	r.p = h;
	mcg_end(NULL, &r);
	return r;
}

static void mcg_free(void *h) { mapcache_free((mapcache_t *)h); }

static mcg_res mcg_get(void *h, const char *lbl, const uint8_t *k, size_t kl,
		uint8_t *buf, size_t cap) {
	mcg_res r = {0};
	if (mcg_begin(lbl, &r)) return r;
	size_t n = 0;
	r.st = mapcache_get((mapcache_t *)h, k, kl, buf, cap, &n);
	r.n = n;
	mcg_end(lbl, &r);
	return r;
}

static mcg_res mcg_put(void *h, const char *lbl, const uint8_t *k, size_t kl,
		const uint8_t *v, size_t vl) {
	mcg_res r = {0};
	if (mcg_begin(lbl, &r)) return r;
	bool replaced = false;
	r.st = mapcache_put((mapcache_t *)h, k, kl, v, vl, &replaced);
	r.flag = replaced;
	mcg_end(lbl, &r);
	return r;
}

static mcg_res mcg_delete(void *h, const char *lbl, const uint8_t *k, size_t kl) {
	mcg_res r = {0};
	if (mcg_begin(lbl, &r)) return r;
	r.st = mapcache_delete((mapcache_t *)h, k, kl);
	mcg_end(lbl, &r);
	return r;
}

static mcg_res mcg_contains(void *h, const char *lbl, const uint8_t *k, size_t kl) {
	mcg_res r = {0};
	if (mcg_begin(lbl, &r)) return r;
	bool found = false;
	r.st = mapcache_contains((mapcache_t *)h, k, kl, &found);
	r.flag = found;
	mcg_end(lbl, &r);
	return r;
}

static mcg_res mcg_len(void *h, const char *lbl) {
	mcg_res r = {0};
	if (mcg_begin(lbl, &r)) return r;
	size_t n = 0;
	r.st = mapcache_len((mapcache_t *)h, &n);
	r.n = n;
	mcg_end(lbl, &r);
	return r;
}

static mcg_res mcg_clear(void *h, const char *lbl) {
	mcg_res r = {0};
	if (mcg_begin(lbl, &r)) return r;
	r.st = mapcache_clear((mapcache_t *)h);
	mcg_end(lbl, &r);
	return r;
}

static mcg_res mcg_get_or_insert(void *h, const char *lbl, const uint8_t *k, size_t kl,
		const uint8_t *v, size_t vl, uint8_t *buf, size_t cap) {
	mcg_res r = {0};
	if (mcg_begin(lbl, &r)) return r;
	size_t n = 0;
	bool inserted = false;
	r.st = mapcache_get_or_insert((mapcache_t *)h, k, kl, v, vl, buf, cap, &n, &inserted);
	r.n = n;
	r.flag = inserted;
	mcg_end(lbl, &r);
	return r;
}

static mcg_res mcg_cas(void *h, const char *lbl, const uint8_t *k, size_t kl,
		const uint8_t *e, size_t el, const uint8_t *nv, size_t nl) {
	mcg_res r = {0};
	if (mcg_begin(lbl, &r)) return r;
	bool swapped = false;
	r.st = mapcache_compare_and_swap((mapcache_t *)h, k, kl, e, el, nv, nl, &swapped);
	r.flag = swapped;
	mcg_end(lbl, &r);
	return r;
}

static mcg_res mcg_get_many(void *h, const char *lbl, size_t n,
		const uint8_t *keys, const size_t *klens, uint8_t *vals, size_t vcap,
		size_t *vlens, int32_t *sts) {
	mcg_res r = {0};
	if (mcg_begin(lbl, &r)) return r;
	r.st = mapcache_get_many((mapcache_t *)h, n, keys, klens, vals, vcap, vlens, sts);
	mcg_batch_end(&r, n, sts);
	return r;
}

static mcg_res mcg_put_many(void *h, const char *lbl, size_t n,
		const uint8_t *keys, const size_t *klens, const uint8_t *vals,
		const size_t *vlens, int32_t *sts) {
	mcg_res r = {0};
	if (mcg_begin(lbl, &r)) return r;
	r.st = mapcache_put_many((mapcache_t *)h, n, keys, klens, vals, vlens, sts);
	mcg_batch_end(&r, n, sts);
	return r;
}

static mcg_res mcg_delete_many(void *h, const char *lbl, size_t n,
		const uint8_t *keys, const size_t *klens, int32_t *sts) {
	mcg_res r = {0};
	if (mcg_begin(lbl, &r)) return r;
	r.st = mapcache_delete_many((mapcache_t *)h, n, keys, klens, sts);
	mcg_batch_end(&r, n, sts);
	return r;
}

// An iterator plus the entry that did not fit in the last batch: its pointers
// stay valid until the next mapcache_iter_next on it, which is only made once
// the entry has been copied out.
typedef struct {
	mapcache_iter_t *it;
	int pending;
	const uint8_t *k;
	size_t kl;
	const uint8_t *v;
	size_t vl;
} mcg_iter;

static mcg_res mcg_iter_open(void *h, const char *lbl) {
	mcg_res r = {0};
	if (mcg_begin(lbl, &r)) return r;
	mapcache_iter_t *it = NULL;
	r.st = mapcache_iter_new((mapcache_t *)h, &it);
	if (r.st == 0) {
		mcg_iter *w = calloc(1, sizeof(mcg_iter));
		if (w == NULL) {
			mapcache_iter_free(it);
			r.st = 8; // MAPCACHE_E_NO_MEMORY
			r.err = strdup("mapcache-go: out of memory for an iterator");
		} else {
			w->it = it;
			r.p = w;
		}
	}
	mcg_end(lbl, &r);
	return r;
}

static void mcg_iter_close(void *p) {
	mcg_iter *w = (mcg_iter *)p;
	if (w == NULL) return;
	mapcache_iter_free(w->it);
	free(w);
}

// Copies up to max entries back to back (key, then value) into buf and their
// lengths into lens[2i], lens[2i+1]. r.n = entries copied; r.flag = 1 at the
// end. If the next entry alone does not fit in cap, r.st = 3
// (BUFFER_TOO_SMALL) and r.n = the bytes it needs.
static mcg_res mcg_iter_fill(void *p, const char *lbl, uint8_t *buf, size_t cap,
		size_t *lens, size_t max) {
	mcg_res r = {0};
	mcg_iter *w = (mcg_iter *)p;
	if (mcg_begin(lbl, &r)) return r;
	size_t used = 0, n = 0;
	while (n < max) {
		if (!w->pending) {
			int32_t st = mapcache_iter_next(w->it, &w->k, &w->kl, &w->v, &w->vl);
			if (st == 1) { r.flag = 1; break; }
			if (st != 0) { r.st = st; break; }
			w->pending = 1;
		}
		size_t need = w->kl + w->vl;
		if (need > cap - used) {
			if (n == 0) { r.st = 3; r.n = need; mcg_end(lbl, &r); return r; }
			break;
		}
		if (w->kl) memcpy(buf + used, w->k, w->kl);
		if (w->vl) memcpy(buf + used + w->kl, w->v, w->vl);
		used += need;
		lens[2 * n] = w->kl;
		lens[2 * n + 1] = w->vl;
		n++;
		w->pending = 0;
	}
	r.n = n;
	mcg_end(lbl, &r);
	return r;
}

static mcg_res mcg_put_ttl(void *h, const char *lbl, const uint8_t *k, size_t kl,
		const uint8_t *v, size_t vl, uint64_t ttl_ms) {
	mcg_res r = {0};
	if (mcg_begin(lbl, &r)) return r;
	r.st = mapcache_put_ttl((mapcache_t *)h, k, kl, v, vl, ttl_ms);
	mcg_end(lbl, &r);
	return r;
}

static mcg_res mcg_clock_advance(void *h, uint64_t ms) {
	mcg_res r = {0};
	r.st = mapcache_clock_advance((mapcache_t *)h, ms);
	mcg_end(NULL, &r);
	return r;
}

static mcg_res mcg_stats(void *h, mapcache_stats *out) {
	mcg_res r = {0};
	out->struct_size = sizeof *out;
	r.st = mapcache_stats_get((mapcache_t *)h, out);
	mcg_end(NULL, &r);
	return r;
}

// GetOrLoad. The Go loader is reached through mcg_loader, the C loader handed
// to the library, whose context is the cgo.Handle of the Go closure. (The Go
// callback runs the closure on another goroutine, so no call the closure makes
// runs on this thread and changes its label.)
extern int32_t mcgGoLoad(uintptr_t h, mapcache_load_result *result);

static int32_t mcg_loader(void *ctx, const uint8_t *key, size_t key_len,
		mapcache_load_result *result) {
	(void)key; // the Go closure knows its key
	(void)key_len;
	return mcgGoLoad((uintptr_t)ctx, result);
}

static mcg_res mcg_get_or_load(void *h, const char *lbl, const uint8_t *k, size_t kl,
		uintptr_t handle, uint8_t *buf, size_t cap) {
	mcg_res r = {0};
	if (mcg_begin(lbl, &r)) return r;
	size_t n = 0;
	int32_t loader_status = 0;
	r.st = mapcache_get_or_load((mapcache_t *)h, k, kl, mcg_loader, (void *)handle,
		buf, cap, &n, &loader_status);
	r.n = n;
	r.flag = loader_status;
	mcg_end(lbl, &r);
	return r;
}

// Called by the loader callback, within the library's loader call.
static mcg_res mcg_load_result_set(mapcache_load_result *res, const uint8_t *v, size_t vl) {
	mcg_res r = {0};
	r.st = mapcache_load_result_set(res, v, vl);
	mcg_end(NULL, &r);
	return r;
}

// Test support: hold the write flag of an exclusive-mode cache (the library's
// mapcache_debug_hold_write) until told to let go, so that tests can collide
// with it deterministically.
typedef struct {
	atomic_int holding;
	atomic_int release;
} mcg_hold;

static void mcg_hold_cb(void *p) {
	mcg_hold *h = (mcg_hold *)p;
	atomic_store(&h->holding, 1);
	while (!atomic_load(&h->release)) sched_yield();
}

static void *mcg_hold_new(void) { return calloc(1, sizeof(mcg_hold)); }
static int mcg_hold_state(void *h) { return atomic_load(&((mcg_hold *)h)->holding); }
static void mcg_hold_release(void *h) { atomic_store(&((mcg_hold *)h)->release, 1); }

static mcg_res mcg_debug_hold(void *c, const char *lbl, const uint8_t *k, size_t kl, void *hold) {
	mcg_res r = {0};
	if (mcg_begin(lbl, &r)) return r;
	r.st = mapcache_debug_hold_write((mapcache_t *)c, k, kl, mcg_hold_cb, hold);
	mcg_end(lbl, &r);
	return r;
}

// Test support: how many callers wait on the load of a key now.
static mcg_res mcg_debug_load_waiters(void *c, const uint8_t *k, size_t kl) {
	mcg_res r = {0};
	size_t n = 0;
	r.st = mapcache_debug_load_waiters((mapcache_t *)c, k, kl, &n);
	r.n = n;
	mcg_end(NULL, &r);
	return r;
}

// Test support: the library's deliberate panic, caught at its boundary.
static mcg_res mcg_debug_panic(const char *msg) {
	mcg_res r = {0};
	r.st = mapcache_debug_panic(msg);
	mcg_end(NULL, &r);
	return r;
}

// Snapshots. The progress callback reaches Go through mcgGoProgress
// (snapshot_callback.go), the C progress function handed to the library when
// the save has one, whose context is the cgo.Handle of the save's progress
// state (0: no callback). The report is always passed, for the failing offset
// or errno; its struct_size is set here. (The Go callback runs the host's
// function on another goroutine, so no call it makes runs on this thread and
// changes its label.)
extern void mcgGoProgress(uintptr_t h, uint64_t bytes_written);

static void mcg_progress(void *ctx, uint64_t bytes_written) {
	mcgGoProgress((uintptr_t)ctx, bytes_written);
}

static mcg_res mcg_save(void *h, const char *lbl, const char *path, uintptr_t progress,
		mapcache_save_report *rep) {
	mcg_res r = {0};
	rep->struct_size = sizeof *rep;
	if (mcg_begin(lbl, &r)) return r;
	r.st = mapcache_save((mapcache_t *)h, path, progress ? mcg_progress : NULL,
		(void *)progress, rep);
	mcg_end(lbl, &r);
	return r;
}

static mcg_res mcg_load(const char *path, const mapcache_config *cfg, mapcache_load_report *rep) {
	mcg_res r = {0};
	rep->struct_size = sizeof *rep;
	mapcache_t *out = NULL;
	r.st = mapcache_load(path, cfg, &out, rep);
	r.p = out;
	mcg_end(NULL, &r);
	return r;
}

static mcg_res mcg_load_into(void *h, const char *lbl, const char *path, mapcache_load_report *rep) {
	mcg_res r = {0};
	rep->struct_size = sizeof *rep;
	if (mcg_begin(lbl, &r)) return r;
	r.st = mapcache_load_into((mapcache_t *)h, path, rep);
	mcg_end(lbl, &r);
	return r;
}

static uint32_t mcg_abi_version(void) { return mapcache_abi_version(); }
static const char *mcg_version(void) { return mapcache_version(); }
static const char *mcg_status_str(int32_t s) { return mapcache_status_str(s); }
*/
import "C"

import (
	"runtime"
	"runtime/cgo"
	"time"
	"unsafe"
)

// cres is the Go view of one shim call's result.
type cres struct {
	st   int32
	flag bool
	code int32 // flag as a number (GetOrLoad's loader status)
	n    int
	msg  string
	p    unsafe.Pointer
}

func conv(r C.mcg_res) cres {
	out := cres{st: int32(r.st), flag: r.flag != 0, code: int32(r.flag), n: int(r.n), p: r.p}
	if r.err != nil {
		out.msg = C.GoString(r.err)
		C.free(unsafe.Pointer(r.err))
	}
	return out
}

// bp returns a pointer to b's bytes, or nil for an empty slice (the ABI allows
// a NULL data pointer with length 0).
func bp(b []byte) *C.uint8_t {
	if len(b) == 0 {
		return nil
	}
	return (*C.uint8_t)(unsafe.Pointer(unsafe.SliceData(b)))
}

// sp does the same for a string's bytes (C only reads them).
func sp(s string) *C.uint8_t {
	if len(s) == 0 {
		return nil
	}
	return (*C.uint8_t)(unsafe.Pointer(unsafe.StringData(s)))
}

func szp(s []C.size_t) *C.size_t {
	if len(s) == 0 {
		return nil
	}
	return &s[0]
}

func stp(s []int32) *C.int32_t {
	if len(s) == 0 {
		return nil
	}
	return (*C.int32_t)(unsafe.Pointer(&s[0]))
}

type handle = unsafe.Pointer

func cNew(cfg Config) (handle, cres) {
	var cc C.mapcache_config
	r := cConfig(cfg, &cc)
	defer freeConfig(&cc)
	if r.st != stOK {
		return nil, r
	}
	r = conv(C.mcg_new(&cc))
	return r.p, r
}

// cConfig fills cc, the C config of cfg (for New and Load). The caller
// releases it with freeConfig once the library has read it (its plugin path is
// C memory).
func cConfig(cfg Config, cc *C.mapcache_config) cres {
	// The library writes exactly the size of the struct this binding was built
	// with (and reads no more), whatever version of it the library knows.
	if st := C.mapcache_config_init(cc, C.size_t(unsafe.Sizeof(*cc))); st != 0 {
		return cres{st: int32(st), msg: "mapcache_config_init refused this binding's mapcache_config"}
	}
	cc.initial_capacity = C.uint64_t(cfg.InitialCapacity)
	cc.shards = C.uint32_t(cfg.Shards)
	cc.mode = C.uint32_t(cfg.Mode)
	cc.misuse_policy = C.uint32_t(cfg.MisusePolicy)
	cc.rehash_engine = C.uint32_t(cfg.RehashEngine)
	cc.seed = C.uint64_t(cfg.Seed)
	cc.max_entries = C.uint64_t(cfg.MaxEntries)
	cc.max_bytes = C.uint64_t(cfg.MaxBytes)
	cc.default_ttl_ms = C.uint64_t(ttlMillis(cfg.DefaultTTL))
	if cfg.ManualClock {
		cc.clock = C.MAPCACHE_CLOCK_MANUAL
	} else {
		cc.clock = C.MAPCACHE_CLOCK_SYSTEM
	}
	cc.gpu_mode = C.uint32_t(cfg.GPU)
	cc.gpu_threshold = C.uint64_t(cfg.GPUThreshold)
	if cfg.GPUPlugin != "" {
		// Read by mapcache_new or mapcache_load only, freed by freeConfig.
		cc.gpu_plugin_path = C.CString(cfg.GPUPlugin)
	}
	return cres{}
}

// freeConfig releases the C memory cConfig gave cc.
func freeConfig(cc *C.mapcache_config) {
	if cc.gpu_plugin_path != nil {
		C.free(unsafe.Pointer(cc.gpu_plugin_path))
		cc.gpu_plugin_path = nil
	}
}

func cFree(h handle) { C.mcg_free(h) }

func cGet(h handle, lbl *C.char, key *C.uint8_t, kl int, buf []byte) cres {
	return conv(C.mcg_get(h, lbl, key, C.size_t(kl), bp(buf), C.size_t(len(buf))))
}

func cPut(h handle, lbl *C.char, key *C.uint8_t, kl int, val *C.uint8_t, vl int) cres {
	return conv(C.mcg_put(h, lbl, key, C.size_t(kl), val, C.size_t(vl)))
}

func cDelete(h handle, lbl *C.char, key []byte) cres {
	return conv(C.mcg_delete(h, lbl, bp(key), C.size_t(len(key))))
}

func cContains(h handle, lbl *C.char, key []byte) cres {
	return conv(C.mcg_contains(h, lbl, bp(key), C.size_t(len(key))))
}

func cLen(h handle, lbl *C.char) cres { return conv(C.mcg_len(h, lbl)) }

func cClear(h handle, lbl *C.char) cres { return conv(C.mcg_clear(h, lbl)) }

func cPutTTL(h handle, lbl *C.char, key, val []byte, ttlMs uint64) cres {
	return conv(C.mcg_put_ttl(h, lbl, bp(key), C.size_t(len(key)), bp(val), C.size_t(len(val)), C.uint64_t(ttlMs)))
}

func cClockAdvance(h handle, ms uint64) cres { return conv(C.mcg_clock_advance(h, C.uint64_t(ms))) }

func cStats(h handle) (Stats, cres) {
	var s C.mapcache_stats
	r := conv(C.mcg_stats(h, &s))
	return Stats{
		Hits:          uint64(s.hits),
		Misses:        uint64(s.misses),
		Inserts:       uint64(s.inserts),
		Updates:       uint64(s.updates),
		Deletes:       uint64(s.deletes),
		Evictions:     uint64(s.evictions),
		Rejections:    uint64(s.rejections),
		Expirations:   uint64(s.expirations),
		LoadSuccesses: uint64(s.load_successes),
		LoadFailures:  uint64(s.load_failures),
		LoadTime:      time.Duration(s.load_time_ns),
		Grows:         uint64(s.grows),
		Entries:       int(s.entries),
		Bytes:         int(s.bytes),
		Misuses:       uint64(s.misuses),
	}, r
}

// cGetOrLoad calls mapcache_get_or_load with the loader whose cgo.Handle is
// lh. It is not noescape: the loader runs Go code on this goroutine, whose
// stack may move meanwhile, so key and buf must not be on it.
func cGetOrLoad(h handle, lbl *C.char, key []byte, lh cgo.Handle, buf []byte) cres {
	return conv(C.mcg_get_or_load(h, lbl, bp(key), C.size_t(len(key)), C.uintptr_t(lh),
		bp(buf), C.size_t(len(buf))))
}

// cLoadResultSet hands a loaded value to the library (which copies it), from
// inside the loader callback.
func cLoadResultSet(res *C.mapcache_load_result, v []byte) cres {
	return conv(C.mcg_load_result_set(res, bp(v), C.size_t(len(v))))
}

func cGetOrInsert(h handle, lbl *C.char, key, val, buf []byte) cres {
	return conv(C.mcg_get_or_insert(h, lbl, bp(key), C.size_t(len(key)),
		bp(val), C.size_t(len(val)), bp(buf), C.size_t(len(buf))))
}

func cCAS(h handle, lbl *C.char, key, expected, newValue []byte) cres {
	return conv(C.mcg_cas(h, lbl, bp(key), C.size_t(len(key)),
		bp(expected), C.size_t(len(expected)), bp(newValue), C.size_t(len(newValue))))
}

func cGetMany(h handle, lbl *C.char, keys []byte, klens []C.size_t, vals []byte, vlens []C.size_t, sts []int32) cres {
	return conv(C.mcg_get_many(h, lbl, C.size_t(len(klens)), bp(keys), szp(klens),
		bp(vals), C.size_t(len(vals)), szp(vlens), stp(sts)))
}

func cPutMany(h handle, lbl *C.char, keys []byte, klens []C.size_t, vals []byte, vlens []C.size_t, sts []int32) cres {
	return conv(C.mcg_put_many(h, lbl, C.size_t(len(klens)), bp(keys), szp(klens),
		bp(vals), szp(vlens), stp(sts)))
}

func cDeleteMany(h handle, lbl *C.char, keys []byte, klens []C.size_t, sts []int32) cres {
	return conv(C.mcg_delete_many(h, lbl, C.size_t(len(klens)), bp(keys), szp(klens), stp(sts)))
}

func cIterOpen(h handle, lbl *C.char) cres { return conv(C.mcg_iter_open(h, lbl)) }

func cIterClose(it unsafe.Pointer) { C.mcg_iter_close(it) }

// cIterFill fills buf with up to len(lens)/2 entries.
func cIterFill(it unsafe.Pointer, lbl *C.char, buf []byte, lens []C.size_t) cres {
	return conv(C.mcg_iter_fill(it, lbl, bp(buf), C.size_t(len(buf)), szp(lens), C.size_t(len(lens)/2)))
}

// snapResult is the result of a snapshot call: the shim's, and the report's
// account of a failure (the offset of MAPCACHE_E_CORRUPT, the errno of
// MAPCACHE_E_IO).
type snapResult struct {
	cres
	offset uint64
	errno  int32
}

// cSave saves the cache to path, with the progress state whose cgo.Handle is
// progress (0: none). Not noescape: the progress callback runs Go code on
// this goroutine, whose stack may move meanwhile, so nothing handed to C may
// be on it (the path is C memory, the report escapes to the heap).
func cSave(h handle, lbl *C.char, path string, progress cgo.Handle) (SaveReport, snapResult) {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var rep C.mapcache_save_report
	r := conv(C.mcg_save(h, lbl, cpath, C.uintptr_t(progress), &rep))
	return SaveReport{
		Records: uint64(rep.records),
		Blocks:  uint64(rep.blocks),
		Bytes:   uint64(rep.bytes),
		Expired: uint64(rep.expired),
	}, snapResult{cres: r, errno: int32(rep.os_errno)}
}

// cLoad creates a cache configured by cfg holding the snapshot at path.
func cLoad(path string, cfg Config) (handle, LoadReport, snapResult) {
	var cc C.mapcache_config
	r := cConfig(cfg, &cc)
	defer freeConfig(&cc)
	if r.st != stOK {
		return nil, LoadReport{}, snapResult{cres: r}
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var rep C.mapcache_load_report
	r = conv(C.mcg_load(cpath, &cc, &rep))
	rep2, sr := loadReport(&rep, r)
	return r.p, rep2, sr
}

// cLoadInto loads the snapshot at path into the cache.
func cLoadInto(h handle, lbl *C.char, path string) (LoadReport, snapResult) {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var rep C.mapcache_load_report
	r := conv(C.mcg_load_into(h, lbl, cpath, &rep))
	return loadReport(&rep, r)
}

func loadReport(rep *C.mapcache_load_report, r cres) (LoadReport, snapResult) {
	return LoadReport{
		Records:  uint64(rep.records),
		Loaded:   uint64(rep.loaded),
		Replaced: uint64(rep.replaced),
		Expired:  uint64(rep.expired),
		TooLarge: uint64(rep.too_large),
		Bytes:    uint64(rep.bytes),
	}, snapResult{cres: r, offset: uint64(rep.corrupt_offset), errno: int32(rep.os_errno)}
}

// debugLoadWaiters reports how many GetOrLoad callers are waiting, inside the
// library, for the load of key in progress now (0 when none runs): test
// support, so that a loader can wait until every other caller has joined it.
func (c *Cache) debugLoadWaiters(key []byte) (int, error) {
	co := c.core()
	if !co.acquire() {
		return 0, closedErr("debugLoadWaiters")
	}
	defer co.release()
	r := conv(C.mcg_debug_load_waiters(co.h, bp(key), C.size_t(len(key))))
	if r.st != stOK {
		return 0, newError("debugLoadWaiters", r.st, r.msg)
	}
	return r.n, nil
}

// debugHoldWrite makes this view hold the write flag that a write of key
// would take (exclusive mode only), on a goroutine of its own, until the
// returned release function is called; release returns the hold's error.
// Test support for misuse detection; err is set if the flag could not be
// taken.
func (c *Cache) debugHoldWrite(key []byte) (release func() error, err error) {
	co := c.core()
	if !co.acquire() {
		return nil, closedErr("debugHoldWrite")
	}
	hold := C.mcg_hold_new()
	done := make(chan error, 1)
	k := append([]byte(nil), key...)
	go func() {
		r := conv(C.mcg_debug_hold(co.h, labelPtr(c.label), bp(k), C.size_t(len(k)), hold))
		if r.st != stOK {
			done <- newError("debugHoldWrite", r.st, r.msg)
			return
		}
		done <- nil
	}()
	finish := func(err error) error {
		C.free(hold)
		co.release()
		return err
	}
	for C.mcg_hold_state(hold) == 0 {
		select {
		case err := <-done:
			return nil, finish(err)
		default:
			runtime.Gosched()
		}
	}
	return func() error {
		C.mcg_hold_release(hold)
		return finish(<-done)
	}, nil
}

// debugPanic makes the library panic inside a call (test support for
// ErrInternal); the panic is caught at the C boundary.
func debugPanic(msg string) error {
	b := append([]byte(msg), 0)
	r := conv(C.mcg_debug_panic((*C.char)(unsafe.Pointer(&b[0]))))
	if r.st == stOK {
		return nil
	}
	return newError("debugPanic", r.st, r.msg)
}

func cABIVersion() uint32 { return uint32(C.mcg_abi_version()) }

func cVersion() string { return C.GoString(C.mcg_version()) }

func cStatusStr(st int32) string { return C.GoString(C.mcg_status_str(C.int32_t(st))) }

// labelPtr turns a NUL-terminated label (or nil) into the C argument.
func labelPtr(l []byte) *cChar {
	if l == nil {
		return nil
	}
	return (*C.char)(unsafe.Pointer(&l[0]))
}

// sizeT is C's size_t for the batch length arrays.
type sizeT = C.size_t

// cUint8 is C's uint8_t, for data pointers built by bp and sp.
type cUint8 = C.uint8_t

// cChar is C's char, for labels.
type cChar = C.char
