//go:build cgo

// Package mapcache is a Go binding for libmapcache, an in-process key/value
// cache written in Rust whose entries live off the Go heap.
//
// A *Cache is safe for concurrent use by any number of goroutines (in the
// default Concurrent mode), does not add millions of pointers for the garbage
// collector to scan, and batches many keys into one cgo call (GetMany, SetMany,
// DeleteMany).
//
// In Exclusive mode the cache keeps Go's own map contract (one writer at a
// time, no reads during a write) but reports a violation it detects as an
// error, ErrConcurrentWrite or ErrConcurrentReadWrite, naming both colliding
// callers, instead of killing the process with "fatal error: concurrent map
// writes". Give callers names with WithLabel.
//
// # What Exclusive mode detects
//
// Detection works as Go's runtime does, with a flag rather than a lock, and
// promises exactly this:
//
//   - Every write (Set, SetString, Swap, Delete, Clear, the writing step of
//     GetOrSet and CompareAndSwap, each key of SetMany and DeleteMany) takes
//     the cache's write flag, without waiting, and holds it while it changes
//     the map. That window is short: the write finds the key, links its
//     entry in or out and updates the eviction policy. It is long only when
//     the write makes the table grow, because the flag is then held for the
//     whole rebuild. A write that finds the flag held by another goroutine's
//     write returns ErrConcurrentWrite and changes nothing. So two writes
//     whose flag windows overlap are always caught (the later one fails).
//   - The flag is not held while a write copies its key and value. An entry
//     larger than 256 bytes (its key and value plus a small header) is
//     allocated and filled before the flag is taken, and SetMany packs its
//     batch in Go before it calls the library. So a write of a large value
//     spends most of its call outside the flag: a Set of 512 MiB may take
//     half a second and hold the flag only for its short map update. Other
//     goroutines' writes and reads during its copy are not reported, and two
//     goroutines racing to write large values will usually not be caught.
//     Calls that overlap in time are caught only where their flag windows
//     (and a read's checks, below) overlap.
//   - A read checks the flag at points of its own: a single-key read (Get,
//     GetString, Lookup, AppendGet, Contains, the reading step of GetOrSet)
//     and Len when they start and when they end, GetMany before each key's
//     lookup, and Range, All and Keys before and after each iteration step
//     (a step reads one bucket chain, a few entries; one cgo call runs the
//     steps for up to 512 entries). A read returns
//     ErrConcurrentReadWrite if another goroutine's write holds the flag at
//     one of its checks: a read is caught when its window overlaps a write's
//     flag at a check.
//   - What can be missed: a write that starts and ends between two checks of
//     a read, that is, inside a single lookup, or between two iteration
//     steps, in particular while a Range callback or the body of a loop over
//     All or Keys runs. A write never fails because of a read (reads leave no mark), so
//     of a write and a read that overlap only the read can be caught.
//
// So a report is always a real violation, while the absence of one proves
// nothing: a race is caught only when a check happens to land inside a
// write. Writes the iterating goroutine makes itself, from inside its loop,
// are not violations and are never reported.
//
// # A cache
//
// A Cache is also a cache in the usual sense: bounded by Config.MaxEntries
// and Config.MaxBytes (the library's eviction policy chooses what leaves),
// with entries that expire (Config.DefaultTTL, SetWithTTL; tests use
// Config.ManualClock and AdvanceClock instead of sleeping), a loader that runs
// once per key however many goroutines miss on it (GetOrLoad), and statistics
// that are always on (Stats). An expired entry is never returned by any call.
//
// # Snapshots
//
// Save writes a cache to a file while other goroutines keep using it, and
// Load (or LoadInto, into a live cache) reads it back, so that a restarted
// program starts warm instead of sending a storm of misses to what the cache
// fronts. A save replaces its file atomically (a crash leaves the previous
// file or the new one, complete), and a load checks every byte of the file
// before it trusts it (ErrCorrupt, with the offset of the fault). The format
// is the library's, docs/FORMAT.md in the repository: a file saved by any
// host of the library (C, Python, Go) loads in any other.
//
// A record keeps its entry's expiry as an absolute wall-clock time, so that a
// cache loaded later honours the TTL: an entry saved with 30 seconds to live
// and loaded a minute later is left out (LoadReport.Expired). A cache with
// Config.ManualClock counts wall time as 2020-01-01T00:00:00Z plus its
// clock's reading: between a save from one manual-clock cache and a load into
// another, the time that passes is how far the loading cache's clock has
// moved past the saving one's, which lets a test see TTLs expire across a
// restart without sleeping. (A snapshot saved on the system clock and loaded
// into a manual-clock cache has its TTLs years in that cache's future.)
//
// Keys and values are byte strings: a key of 0 to MaxKeyLen (65,535) bytes, a
// value of 0 to MaxValueLen (1 GiB). A nil key and an empty key are the same
// key (the empty string, also "" for the string methods); a nil value stores
// an empty value, which reads back as a non-nil empty slice (nil means
// absent). Values returned to Go are fresh copies owned by the caller. The
// library never keeps a Go pointer after a call.
//
// # Building
//
// The package uses cgo: it needs CGO_ENABLED=1 and a C compiler. Without cgo
// (CGO_ENABLED=0, which is also Go's default when cross-compiling and when no
// C compiler is found) it does not compile, and the build's one error says
// so: "undefined:
// mapcache_requires_cgo__build_with_CGO_ENABLED_1_and_a_C_compiler".
//
// It links the Rust library in one of three ways, chosen by build tag:
//
//   - No tag (the default): statically, the file
//     ../../target/release/libmapcache.a relative to the package's directory.
//     That is a checkout of the library's repository (the package is its
//     bindings/go) in which `make lib` has built the library. The program
//     then needs no libmapcache.so at run time. The default build works only
//     from such a checkout, directly or through a replace directive that
//     points at it; from the module cache it fails to link.
//   - mapcache_pkgconfig: an installed library (`make install`), found
//     through pkg-config's mapcache.pc, in <prefix>/lib/pkgconfig (set
//     PKG_CONFIG_PATH for a prefix that pkg-config does not search). This is
//     how a module outside the repository builds: `go build -tags
//     mapcache_pkgconfig`. The program links libmapcache.so.3 (.3 is the ABI
//     version) dynamically and carries no rpath, so the dynamic loader must
//     find the library at run time: through its own search path (ldconfig
//     after installing to /usr/local), LD_LIBRARY_PATH=<prefix>/lib, or an
//     rpath added at build time (CGO_LDFLAGS="-Wl,-rpath,<prefix>/lib").
//     Otherwise the program fails to start with "error while loading shared
//     libraries: libmapcache.so.3".
//   - mapcache_shared: dynamically, the checkout's
//     ../../target/release/libmapcache.so, with an rpath to that directory
//     (for the repository's own tests).
//
// Config.GPUPlugin's default, the plugin's file "beside libmapcache.so", is
// beside the installed or built libmapcache.so with mapcache_pkgconfig or
// mapcache_shared. In the default static build it is beside the program's
// executable; for go run and go test that executable is in a temporary
// directory, so set GPUPlugin there.
package mapcache

import (
	"runtime"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"
	"unsafe"
)

// Limits of the library.
const (
	MaxKeyLen   = 65535   // bytes (not 64 KiB: one less)
	MaxValueLen = 1 << 30 // bytes (1 GiB)
	MaxLabelLen = 1023    // bytes, for WithLabel
)

// Mode selects the concurrency contract of a cache.
type Mode uint32

const (
	// Concurrent (the default): any number of goroutines may read and write.
	Concurrent Mode = 0
	// Exclusive: Go's map contract. At most one writer at a time and no reads
	// during a write; a violation is detected and reported (or aborts the
	// process, per MisusePolicy). Writers never wait.
	Exclusive Mode = 1
)

// MisusePolicy says what Exclusive mode does on a detected violation.
type MisusePolicy uint32

const (
	// MisuseError returns ErrConcurrentWrite / ErrConcurrentReadWrite.
	MisuseError MisusePolicy = 0
	// MisuseAbort ends the process at the first detected violation, as Go's
	// runtime does for its own maps. The library prints its report (naming
	// both callers, e.g. "fatal error: concurrent map writes: 'w2' collided
	// with a write in progress by 'w1'") to stderr and calls abort(). In a Go
	// program the runtime catches that SIGABRT, prints "SIGABRT: abort",
	// "signal arrived during cgo execution" and the goroutine stacks, and
	// exits with status 2 (the status of Go's own "fatal error: concurrent map
	// writes"); the process is not killed by the signal, except with
	// GOTRACEBACK=crash or after signal.Notify for SIGABRT, where it is.
	// Deferred functions do not run and nothing can recover it.
	//
	// Exclusive mode only: New rejects it in Concurrent mode with
	// ErrInvalidConfig (a concurrent cache has no misuse to detect, so the
	// policy could only be a forgotten Mode).
	MisuseAbort MisusePolicy = 1
)

// RehashEngine selects how a growing table is rebuilt.
type RehashEngine uint32

const (
	EngineAuto     RehashEngine = 0
	EngineSingle   RehashEngine = 1
	EngineParallel RehashEngine = 2
)

// Config configures New. The zero value is a good default: a concurrent,
// unbounded map that grows from small, with a random hash seed, whose
// entries never expire.
//
// A cache is bounded by MaxEntries, MaxBytes or both: once a write would take
// it over a bound, the library's eviction policy removes entries it chooses
// (counted in Stats.Evictions). The bounds are kept per shard, so with
// Shards: 0 a bounded cache is given few shards (one per 4096 entries of
// MaxEntries; a small cache has one), and a MaxEntries below an explicit
// Shards is ErrInvalidConfig.
type Config struct {
	InitialCapacity uint64       // entries to size for up front; 0 = grow from small; at most 1<<30 (more is ErrInvalidConfig)
	Shards          uint32       // 0 = automatic; else a power of two, at most 65536
	Mode            Mode         // Concurrent or Exclusive
	MisusePolicy    MisusePolicy // Exclusive mode only (MisuseAbort in Concurrent mode is ErrInvalidConfig)
	RehashEngine    RehashEngine
	Seed            uint64 // hash seed; 0 = random

	// MaxEntries bounds the number of entries; 0 = no bound. Negative is
	// ErrInvalidConfig.
	MaxEntries int
	// MaxBytes bounds the memory the entries are charged; 0 = no bound.
	// Each entry is charged its whole footprint in the library (the block it
	// occupies, key and value included, its share of the table and the
	// policy's metadata), not only len(key)+len(value). The cache holds at
	// most MaxBytes plus one entry per shard. A write of an entry larger than
	// its shard's share fails with ErrTooLarge. Negative is ErrInvalidConfig.
	MaxBytes int
	// DefaultTTL is the time to live of entries written without one (Set,
	// SetString, SetMany, GetOrSet, CompareAndSwap, Swap, GetOrLoad); 0 =
	// they never expire. Stored in whole milliseconds, rounded up. Negative
	// is ErrInvalidConfig. SetWithTTL gives an entry its own. Load and
	// LoadInto give each entry the expiry its record was saved with instead:
	// a record saved without one never expires after the load.
	DefaultTTL time.Duration
	// ManualClock makes the cache measure time to live against a clock of its
	// own that starts at zero and moves only by AdvanceClock, instead of the
	// system's monotonic clock: for tests of expiry that must not sleep.
	ManualClock bool

	// GPU says whether large rebuilds run on the GPU: GPUAuto (the zero
	// value: when the CUDA driver, a device and the plugin are there, else on
	// the CPU), GPUOff or GPUForce (the GPU or ErrGPU: from New when the
	// engine cannot load, and from a write whose rebuild fails on it).
	// GPUStatus says which and why.
	GPU GPUMode
	// GPUThreshold is the smallest table, in entries it is sized for, rebuilt
	// on the GPU; 0 = the library's default.
	GPUThreshold uint64
	// GPUPlugin is the path of the plugin libmapcache_cuda.so; "" = the
	// plugin's file beside libmapcache.so (with the build tags
	// mapcache_pkgconfig and mapcache_shared), or beside the program's
	// executable when the library is linked statically (the default build;
	// see Building in the package documentation). A relative path is taken
	// from the working directory when New or Load runs. A NUL byte in it is
	// ErrInvalidConfig.
	GPUPlugin string
}

// closedBit marks a closed core in core.state; the low bits count calls in
// flight.
const closedBit = int64(1) << 62

// core is the shared state of a cache and all its labelled views.
type core struct {
	state atomic.Int64
	freed atomic.Bool
	h     handle
	mode  Mode
	// loads holds the errors of failed GetOrLoad loads until every caller
	// that waited for them has taken its copy (load.go).
	loads loadFailures
	// loadBufClass is the size class of GetOrLoad's value buffer (load.go).
	loadBufClass atomic.Int32
	// loadTime is Stats.LoadTime in nanoseconds: the time GetOrLoad's
	// loaders ran, as the binding times them (load.go, runLoad).
	loadTime atomic.Int64
}

// acquire registers a call in flight; false means the cache is closed (or
// co is nil: a nil or zero Cache).
func (co *core) acquire() bool {
	if co == nil {
		return false
	}
	if co.state.Add(1)&closedBit != 0 {
		co.release()
		return false
	}
	return true
}

// release ends a call; the last call out of a closed cache frees it.
func (co *core) release() {
	if co.state.Add(-1) == closedBit {
		co.destroy()
	}
}

func (co *core) close() {
	for {
		s := co.state.Load()
		if s&closedBit != 0 {
			return
		}
		if co.state.CompareAndSwap(s, s|closedBit) {
			if s == 0 {
				co.destroy()
			}
			return
		}
	}
}

func (co *core) destroy() {
	if co.freed.CompareAndSwap(false, true) {
		cFree(co.h)
	}
}

// Cache is a handle on a mapcache map, made by New or Load. Methods may be
// called from any number of goroutines. A Cache returned by WithLabel is a
// view of the same map whose calls carry a label.
//
// A nil or zero Cache behaves as a closed one: Close does nothing and returns
// nil, and every other method returns ErrClosed (or what a closed cache's
// does without an error result: Get reports a miss, Len 0, Stats the zero
// Stats; Mode is Concurrent and Label ""). So `c, err := New(cfg); defer
// c.Close()` is safe before err is checked.
type Cache struct {
	co    *core
	label []byte // NUL-terminated, or nil
}

// core returns the cache's core; nil for a nil or zero Cache, which acquire
// refuses like a closed one.
func (c *Cache) core() *core {
	if c == nil {
		return nil
	}
	return c.co
}

// New creates a cache. Close it to release its memory (a finalizer also does,
// once the cache and all its views are unreachable).
func New(cfg Config) (*Cache, error) {
	if err := checkConfig("New", cfg); err != nil {
		return nil, err
	}
	h, r := cNew(cfg)
	if r.st != stOK {
		return nil, newError("New", r.st, r.msg)
	}
	return newCacheOf(h, cfg), nil
}

// checkConfig makes the checks of a new cache (New, Load) that come before
// the library's: the library's ABI, and the fields the library cannot see
// wrong.
func checkConfig(op string, cfg Config) error {
	if v := cABIVersion(); v != abiVersionExpected {
		return &Error{Op: op, Message: "library ABI version mismatch", sentinel: ErrABIMismatch}
	}
	if cfg.MisusePolicy == MisuseAbort && cfg.Mode != Exclusive {
		return &Error{Op: op, Status: stInvalidConfig, sentinel: ErrInvalidConfig,
			Message: "MisusePolicy MisuseAbort applies to Exclusive mode only; set Mode: Exclusive (a Concurrent cache has no misuse to detect)"}
	}
	return checkCacheConfig(op, cfg)
}

// newCacheOf wraps h, a map the library made with cfg, in a Cache freed by
// Close or a finalizer.
func newCacheOf(h handle, cfg Config) *Cache {
	co := &core{h: h, mode: cfg.Mode}
	runtime.SetFinalizer(co, (*core).close)
	return &Cache{co: co}
}

// Version returns the library's version string, e.g. "0.1.0".
func Version() string { return cVersion() }

// StatusText returns the library's name for a mapcache_status code.
func StatusText(status int32) string { return cStatusStr(status) }

// WithLabel returns a view of the same cache whose calls carry label: in
// Exclusive mode, a misuse error names the labels of both colliding callers.
// The label travels with each call (it is set and cleared inside the same cgo
// call), so it follows the goroutine, not the OS thread. A NUL byte or invalid
// UTF-8 in label is replaced by U+FFFD, and a label longer than MaxLabelLen
// bytes is cut to fit. Views share the map: Close on any view
// closes it for all.
func (c *Cache) WithLabel(label string) *Cache {
	label = strings.ToValidUTF8(label, "\uFFFD")
	label = strings.ReplaceAll(label, "\x00", "\uFFFD")
	if len(label) > MaxLabelLen {
		cut := MaxLabelLen
		for cut > 0 && !utf8.RuneStart(label[cut]) {
			cut--
		}
		label = label[:cut]
	}
	b := make([]byte, len(label)+1)
	copy(b, label)
	return &Cache{co: c.core(), label: b}
}

// Label returns the label of this view ("" for an unlabelled cache).
func (c *Cache) Label() string {
	if c == nil || c.label == nil {
		return ""
	}
	return string(c.label[:len(c.label)-1])
}

// Mode returns the mode the cache was created with.
func (c *Cache) Mode() Mode {
	if co := c.core(); co != nil {
		return co.mode
	}
	return Concurrent
}

// Close releases the cache and returns nil, always: a second Close, on this
// or any other view, does nothing and returns nil too, as does Close on a nil
// or zero Cache. It is safe from any goroutine; calls made after Close return
// ErrClosed (Get reports a miss).
// Calls already in flight finish normally and the memory is released when the
// last of them returns, so Close never waits and never races with them (it may
// even be called from inside a Range callback).
func (c *Cache) Close() error {
	if co := c.core(); co != nil {
		co.close()
	}
	return nil
}

// stackBuf is the size of the on-stack buffer Get copies into; larger values
// take a second call with an exactly sized buffer.
const stackBuf = 256

// Get returns a copy of the value stored under key. It has no error result:
// any error (ErrClosed, or ErrConcurrentReadWrite in Exclusive mode) is
// reported as a miss. Use Lookup to tell errors from misses.
func (c *Cache) Get(key []byte) ([]byte, bool) {
	v, ok, _ := c.get("Get", bp(key), len(key), nil)
	return v, ok
}

// Lookup is Get with the error: (value, true, nil) on a hit, (nil, false,
// nil) on a miss, (nil, false, err) on an error.
func (c *Cache) Lookup(key []byte) ([]byte, bool, error) {
	return c.get("Lookup", bp(key), len(key), nil)
}

// AppendGet appends the value stored under key to dst and returns the
// extended slice. With enough spare capacity in dst it allocates nothing.
func (c *Cache) AppendGet(dst, key []byte) ([]byte, bool, error) {
	return c.get("AppendGet", bp(key), len(key), dst)
}

// GetString looks up a string key and returns the value as a string; errors
// are reported as a miss, as with Get.
func (c *Cache) GetString(key string) (string, bool) {
	v, ok, _ := c.get("GetString", sp(key), len(key), nil)
	if !ok {
		return "", false
	}
	return unsafe.String(unsafe.SliceData(v), len(v)), true
}

func (c *Cache) get(op string, key *cUint8, kl int, dst []byte) ([]byte, bool, error) {
	co := c.core()
	if !co.acquire() {
		return nil, false, closedErr(op)
	}
	defer co.release()
	lbl := labelPtr(c.label)
	// What a miss or an error returns: the caller's dst as it was (AppendGet),
	// or nil when there was none, whatever buffer was made here for a retry
	// (a non-nil empty slice would read as a stored empty value).
	missed := dst
	if dst == nil {
		// Copy into a buffer on the goroutine stack, then into an exactly
		// sized slice: one cgo call, one allocation, none on a miss.
		var sb [stackBuf]byte
		r := cGet(co.h, lbl, key, kl, sb[:])
		switch r.st {
		case stOK:
			out := make([]byte, r.n)
			copy(out, sb[:r.n])
			return out, true, nil
		case stNotFound:
			return nil, false, nil
		case stBufferTooSmall:
			dst = make([]byte, 0, r.n)
			if getRetryHook != nil {
				getRetryHook()
			}
		default:
			return nil, false, newError(op, r.st, r.msg)
		}
	}
	for {
		spare := dst[len(dst):cap(dst)]
		r := cGet(co.h, lbl, key, kl, spare)
		switch r.st {
		case stOK:
			return dst[:len(dst)+r.n], true, nil
		case stNotFound:
			return missed, false, nil
		case stBufferTooSmall:
			// The value grew between calls (or dst was short): grow and retry.
			nd := make([]byte, len(dst), len(dst)+r.n)
			copy(nd, dst)
			dst = nd
			if getRetryHook != nil {
				getRetryHook()
			}
		default:
			return missed, false, newError(op, r.st, r.msg)
		}
	}
}

// getRetryHook, when set (tests only), runs before each of get's retries with
// a larger buffer: where another goroutine's write can come.
var getRetryHook func()

// closedErr is returned by every method once the cache is closed.
func closedErr(op string) error {
	return &Error{Op: op, Message: "cache is closed", sentinel: ErrClosed}
}

// Set stores value under key, replacing any previous value. The library copies
// both; the caller may reuse them at once.
//
// In a bounded cache (MaxEntries, MaxBytes) a new key is not always kept. The
// eviction policy (W-TinyLFU) puts it in its admission window, the shard's
// most recent new entries, and keeps it there at first, so a Get right after
// the Set (with no other writes in between) finds it. When later new keys
// push it out of the window, the policy keeps it or refuses it in favour of
// the entry it would displace, and Stats' Rejections and Evictions count a
// refusal. So when Rejections rises during a Set, the refused key is as a
// rule an earlier new key, not this one. The exception is an entry heavier
// than the whole window, in a cache with MaxBytes: a value that is large next
// to its shard's share of MaxBytes (the window starts at 1% of that share and
// adapts to the workload, down to almost nothing, so ordinary entries can be
// such an exception). Such an entry meets the policy at once and may be
// refused, and a
// Get right after then misses. Either way Set returns nil: the value was
// stored, and perhaps evicted.
func (c *Cache) Set(key, value []byte) error {
	return c.put("Set", bp(key), len(key), bp(value), len(value))
}

// Swap stores value under key and returns the value it replaced: (a copy of
// the previous value, true) if the key was present, (nil, false) if it was
// absent, as sync.Map.Swap does. A stored empty value comes back as a non-nil
// empty slice.
//
// Swap is atomic with respect to every other write: the value it returns is
// exactly the one its write replaced. The library has no put that hands back
// the old value, so Swap reads the value and installs the new one only if it
// is still that value (GetOrSet, then CompareAndSwap), and starts over when
// another writer changed or removed the key in between; it is lock-free (a
// retry means another write succeeded) but not wait-free. A present key costs
// two library calls and a copy of the old value: use Set when you do not need
// it.
//
// In Exclusive mode its first step is a read (GetOrSet of a present key only
// reads it): a Swap that overlaps another goroutine's write, a Swap's
// included, fails with ErrConcurrentReadWrite when that read is what collides,
// and with ErrConcurrentWrite when its write does. Both are the misuse report;
// nothing was written.
func (c *Cache) Swap(key, value []byte) (previous []byte, loaded bool, err error) {
	const op = "Swap"
	co := c.core()
	if !co.acquire() {
		return nil, false, closedErr(op)
	}
	defer co.release()
	lbl := labelPtr(c.label)
	var sb [stackBuf]byte
	for {
		current, inserted, err := getOrInsert(co, lbl, op, key, value, sb[:])
		if err != nil || inserted {
			return nil, false, err
		}
		s := cCAS(co.h, lbl, key, current, value)
		switch s.st {
		case stOK:
			if !s.flag {
				continue // another writer changed the value: start over
			}
		case stNotFound:
			continue // another writer removed the key: start over
		default:
			return nil, false, newError(op, s.st, s.msg)
		}
		if len(current) > 0 && &current[0] != &sb[0] {
			return current, true, nil // already in a heap buffer of our own
		}
		// Copy off the stack (a non-nil slice even when empty).
		return append(make([]byte, 0, len(current)), current...), true, nil
	}
}

// SetString is Set for string keys and values, without converting them.
func (c *Cache) SetString(key, value string) error {
	return c.put("SetString", sp(key), len(key), sp(value), len(value))
}

func (c *Cache) put(op string, key *cUint8, kl int, val *cUint8, vl int) error {
	co := c.core()
	if !co.acquire() {
		return closedErr(op)
	}
	r := cPut(co.h, labelPtr(c.label), key, kl, val, vl)
	co.release()
	if r.st != stOK {
		return newError(op, r.st, r.msg)
	}
	return nil
}

// Delete removes key and reports whether it was present.
func (c *Cache) Delete(key []byte) (deleted bool, err error) {
	co := c.core()
	if !co.acquire() {
		return false, closedErr("Delete")
	}
	r := cDelete(co.h, labelPtr(c.label), key)
	co.release()
	switch r.st {
	case stOK:
		return true, nil
	case stNotFound:
		return false, nil
	}
	return false, newError("Delete", r.st, r.msg)
}

// Contains reports whether key is present, without copying its value.
func (c *Cache) Contains(key []byte) (bool, error) {
	co := c.core()
	if !co.acquire() {
		return false, closedErr("Contains")
	}
	r := cContains(co.h, labelPtr(c.label), key)
	co.release()
	if r.st != stOK {
		return false, newError("Contains", r.st, r.msg)
	}
	return r.flag, nil
}

// Len returns the number of entries; 0 on any error: once the cache is
// closed, and in Exclusive mode when another goroutine's write is in flight
// (a misuse, reported by LenErr as ErrConcurrentReadWrite). Use LenErr to see
// errors.
//
// Entries whose time to live has run out are counted until the library
// removes them (a lookup that finds one removes it), although no call returns
// them: after a TTL expires, Len may exceed the number of entries Range
// yields (Stats.Entries counts the same way).
func (c *Cache) Len() int {
	n, _ := c.LenErr()
	return n
}

// LenErr is Len with the error (whose Op is "LenErr").
func (c *Cache) LenErr() (int, error) {
	co := c.core()
	if !co.acquire() {
		return 0, closedErr("LenErr")
	}
	r := cLen(co.h, labelPtr(c.label))
	co.release()
	if r.st != stOK {
		return 0, newError("LenErr", r.st, r.msg)
	}
	return r.n, nil
}

// Clear removes every entry.
func (c *Cache) Clear() error {
	co := c.core()
	if !co.acquire() {
		return closedErr("Clear")
	}
	r := cClear(co.h, labelPtr(c.label))
	co.release()
	if r.st != stOK {
		return newError("Clear", r.st, r.msg)
	}
	return nil
}

// GetOrSet returns the existing value for key if present (loaded = true);
// otherwise it stores value and returns it (loaded = false). Like
// sync.Map.LoadOrStore, atomically.
func (c *Cache) GetOrSet(key, value []byte) (actual []byte, loaded bool, err error) {
	co := c.core()
	if !co.acquire() {
		return nil, false, closedErr("GetOrSet")
	}
	defer co.release()
	var sb [stackBuf]byte
	current, inserted, err := getOrInsert(co, labelPtr(c.label), "GetOrSet", key, value, sb[:])
	if err != nil {
		return nil, false, err
	}
	if inserted {
		current = value
	}
	out := make([]byte, len(current))
	copy(out, current)
	return out, !inserted, nil
}

// getOrInsert inserts value under key if the key is absent (inserted = true),
// else reads the present value into buf, or into a fresh buffer when it does
// not fit (current is then that value, in buf or on the heap).
func getOrInsert(co *core, lbl *cChar, op string, key, value, buf []byte) (current []byte, inserted bool, err error) {
	for {
		r := cGetOrInsert(co.h, lbl, key, value, buf)
		switch r.st {
		case stOK:
			if r.flag {
				return nil, true, nil
			}
			return buf[:r.n:r.n], false, nil
		case stBufferTooSmall:
			// Nothing was inserted; repeat with a buffer that fits.
			buf = make([]byte, r.n)
		default:
			return nil, false, newError(op, r.st, r.msg)
		}
	}
}

// CompareAndSwap replaces the value of key with newValue if its current value
// equals old. It returns false (and no error) if the value differs or the key
// is absent. An old or newValue longer than MaxValueLen is ErrValueTooLong
// (an old that long could never match) and a key longer than MaxKeyLen
// ErrKeyTooLong, as for Set.
func (c *Cache) CompareAndSwap(key, old, newValue []byte) (swapped bool, err error) {
	co := c.core()
	if !co.acquire() {
		return false, closedErr("CompareAndSwap")
	}
	r := cCAS(co.h, labelPtr(c.label), key, old, newValue)
	co.release()
	switch r.st {
	case stOK:
		return r.flag, nil
	case stNotFound:
		return false, nil
	}
	return false, newError("CompareAndSwap", r.st, r.msg)
}
