//go:build cgo

package mapcache

import (
	"errors"
	"fmt"
	"hash/maphash"
	"runtime"
	"runtime/cgo"
	"sync"
	"sync/atomic"
	"time"
)

// GetOrLoad runs through the library's mapcache_get_or_load, which runs the
// loader of one caller per key while the others wait inside the library
// (singleflight). So that Go callers do not wait there, each holding an OS
// thread, the binding lets one GetOrLoad call per key and cache into the
// library at a time (the key's flight, loadFlight) and parks the others on
// it as goroutines (awaitLoad); they take its outcome when it leaves. The
// loader is a Go closure: it reaches the exported Go callback (mcgGoLoad,
// load_callback.go) as a runtime/cgo.Handle, the context pointer of the C
// loader, which runs it (see runLoad) and hands its value to the library.
//
// The C loader reports a failure as a non-zero int32 status, which the
// library hands to every waiter of that load. So that a caller the library
// made wait (for a load of another host's; Go callers of the key wait in Go)
// gets the loader's Go error (and not a number), the leader's callback keeps
// the error in a table, under a status token it makes up, and returns the
// token; each waiter looks its token up. An entry is dropped once every
// GetOrLoad call that could have received its token has finished (see
// loadFailures).

// LoadError is the error GetOrLoad returns when the loader failed: it returned
// an error (Err) or panicked (Panicked, with the value in Panic). The caller
// that ran the loader and every caller that waited for that load get the same
// *LoadError (do not modify it). errors.Is(err, ErrLoader) is true for it, and
// it unwraps to Err, so errors.Is and errors.As reach what the loader
// returned.
type LoadError struct {
	// Err is the error the loader returned; nil when it panicked. When the
	// loader returned a value longer than MaxValueLen, Err is an *Error
	// matching ErrValueTooLong. (A value too large for a bounded cache is not
	// a loader failure: GetOrLoad returns an *Error matching ErrTooLarge.)
	Err error
	// Panicked reports that the loader panicked, with the value Panic (what
	// recover returned). The caller that ran the loader does not get this
	// error: its GetOrLoad panics again with Panic; the callers that waited
	// for it get this error.
	Panicked bool
	Panic    any
	// Stack is the stack of the goroutine the loader ran on, as
	// runtime/debug.Stack formatted it when the panic was recovered: it shows
	// where in the loader the panic happened. Nil unless Panicked.
	Stack []byte
}

func (e *LoadError) Error() string {
	if e.Panicked {
		return fmt.Sprintf("mapcache: GetOrLoad: the loader panicked: %v", e.Panic)
	}
	return fmt.Sprintf("mapcache: GetOrLoad: the loader failed: %v", e.Err)
}

// Unwrap returns the loader's error (nil when it panicked).
func (e *LoadError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrLoader) true.
func (e *LoadError) Is(target error) bool { return target == ErrLoader }

// GetOrLoad returns the value stored under key; if there is none (or it
// expired), it calls load, stores the value load returns (with
// Config.DefaultTTL) and returns it. Concurrent GetOrLoad calls that miss on
// the same key run one load between them: one caller runs its load, the
// others wait for it and return the same value, or the same error (their own
// load functions are not called). Each GetOrLoad call runs its load at most
// once.
//
// Waiting. Of the GetOrLoad calls of one key on one cache (all its views
// together), one at a time goes into the library; a call made while another
// is there makes its own lookup and, on a miss, waits for that call as a
// parked goroutine (no OS thread is held while it waits, so a stampede of any
// number of goroutines on a cold key costs goroutines, not threads), then
// returns that call's outcome if it loaded: the same value (a copy of its
// own) or the same error (the same *LoadError, ErrClosed, ErrTooLarge,
// ...). If that call did not load (it found the key), the waiter starts over.
// The library's own singleflight covers loads of the key by other hosts of
// the map. There is no way to stop waiting: no context, no timeout, and
// Close does not wake a waiter (it returns when the load ends).
//
// If load returns an error, nothing is stored and every caller of that load
// gets a *LoadError that unwraps to that error (errors.Is(err, ErrLoader) and
// errors.Is(err, yourErr) are both true); the next GetOrLoad loads again. If
// load panics, the panic is recovered before it reaches the library, the
// callers that waited get a *LoadError with Panicked set (its Stack shows
// where load panicked), the cache is left as it was, and the caller whose
// load it was panics again with the same value once the library has
// returned. A recover of that caller's gets the value itself; a panic no one
// recovers prints load's stack (its goroutine, down to the panic) before the
// caller's: the report starts "panic: mapcache: the loader of GetOrLoad
// panicked: ..." with that stack, then "[recovered]" and "panic: <the
// value>". If another write stores key while load runs, that value is kept
// and returned instead of load's.
//
// load runs on a goroutine of its own, while GetOrLoad waits for it, with no
// lock of the cache held: it may use the cache, including GetOrLoad of other
// keys, but must not call GetOrLoad for the same key on the same cache (or a
// view of it), directly or through a goroutine it waits for. That call would
// wait for the load it is part of: it never returns, nor does the GetOrLoad
// running load, nor does any later GetOrLoad of the key on the cache (each
// parks, waiting for it); Close releases none of them, and Go's deadlock
// detection does not report it (the call running load is inside the
// library), so the program just stops making progress on that key. If load
// calls runtime.Goexit (t.FailNow or t.Fatal in a test), the callers that
// waited get a *LoadError saying so and the caller whose load it was calls
// runtime.Goexit too, once the library has returned. The value load returns
// is copied; load may reuse its slice afterwards. A nil load is
// ErrInvalidArgument.
//
// The caller running a load holds an OS thread for as long as load runs (it
// is inside the library, whose load calls back into Go). In Exclusive mode a
// load's store is a write (it may fail with ErrConcurrentWrite) and its first
// lookup, a waiter's lookup too, a read.
//
// Cost: a hit costs two to three Gets (one library call, plus a cgo.Handle for
// load and the key's bookkeeping); a load costs the loader plus the library's
// store and two goroutine switches: about 5 µs, several times that on a
// machine with more runnable threads than cores. A waiter costs a lookup and
// a goroutine switch, and its copy of the value.
//
// The statistics count the first lookup of each call (a waiter's included) as
// a hit or a miss, and each load as one LoadSuccesses or LoadFailures,
// however many callers waited for it; a waiter whose leader did not load (it
// found the key) starts over, and its second lookup counts too. GetOrLoad reads the value into a buffer
// sized for the longest value it has returned on this cache so far (at least
// 256 bytes, at most 64 KiB); a longer value takes a second lookup to read,
// counted as a hit too, after which the cache's later GetOrLoad calls use a
// buffer that fits it (values up to 64 KiB).
func (c *Cache) GetOrLoad(key []byte, load func() ([]byte, error)) ([]byte, error) {
	const op = "GetOrLoad"
	if load == nil {
		return nil, argError(op, "load is nil")
	}
	co := c.core()
	if !co.acquire() {
		return nil, closedErr(op)
	}
	defer co.release()
	lc := &loadCall{load: load, reg: &co.loads, loadTime: &co.loadTime}
	for {
		lc.call = co.loads.enterWith(key, &lc.flight)
		if lc.call.leads {
			return c.leadLoad(op, key, lc)
		}
		v, err, done := c.awaitLoad(op, key, lc.call.flight)
		co.loads.exitCall(&lc.call, nil, 0)
		if done {
			return v, err
		}
		// The call it waited for did not load (it found the key, or failed
		// before a load): start over.
	}
}

// leadLoad is the GetOrLoad call of key that goes into the library while
// the other GetOrLoad calls of key on this cache wait for it (awaitLoad).
func (c *Cache) leadLoad(op string, key []byte, lc *loadCall) ([]byte, error) {
	co := c.co
	fl := lc.call.flight
	left := false
	defer func() {
		if !left {
			// Unwinding from a panic of the binding's own: the waiters
			// start over rather than wait forever.
			co.loads.exit(lc)
		}
	}()
	h := cgo.NewHandle(lc)
	defer h.Delete()
	v, err := c.getOrLoad(op, key, lc, h)
	if _, failed := err.(*LoadError); lc.ran || failed {
		// A load ended (this call's, or one the library made it wait for):
		// its outcome is the waiters' too. (A panic or Goexit of the loader
		// is err, lc.failure, for them.)
		fl.shared, fl.v, fl.err = true, v, err
	}
	left = true
	co.loads.exit(lc)
	switch {
	case lc.panicked:
		repanic("the loader of "+op, lc.panicValue, lc.panicStack)
	case lc.exited:
		runtime.Goexit()
	}
	return v, err
}

// awaitLoad is a GetOrLoad call of key made while another one, fl's leader,
// is in the library: it makes its own first lookup, and on a miss waits for
// fl's outcome. done is false if that call did not load: this one must
// start over.
func (c *Cache) awaitLoad(op string, key []byte, fl *loadFlight) (v []byte, err error, done bool) {
	// A Get's lookup, counted as the library's get_or_load counts its own.
	v, ok, err := c.get(op, bp(key), len(key), nil)
	if ok || err != nil {
		return v, err, true
	}
	fl.parked.Add(1)
	<-fl.done
	switch {
	case !fl.shared:
		return nil, nil, false
	case fl.err != nil:
		return nil, fl.err, true
	}
	return append(make([]byte, 0, len(fl.v)), fl.v...), nil, true
}

func (c *Cache) getOrLoad(op string, key []byte, lc *loadCall, h cgo.Handle) ([]byte, error) {
	co := c.co
	lbl := labelPtr(c.label)
	class := int(co.loadBufClass.Load())
	buf := loadBufPools[class].Get().(*[]byte)
	defer loadBufPools[class].Put(buf)
	for {
		r := cGetOrLoad(co.h, lbl, key, h, *buf)
		switch r.st {
		case stOK:
			out := make([]byte, r.n)
			copy(out, (*buf)[:r.n])
			return out, nil
		case stBufferTooSmall:
			// The value is stored but longer than buf: size later calls'
			// buffers for it, and read it with a buffer that fits (a second
			// lookup: there is no other way to read it).
			co.fitLoadBuf(r.n)
			v, ok, err := c.get(op, bp(key), len(key), make([]byte, 0, r.n))
			if ok || err != nil {
				return v, err
			}
			if lc.ran {
				// Gone again (evicted, expired or deleted) before it could
				// be read, and this call's load produced a value (it would
				// have failed otherwise), which must not run twice: return
				// what it loaded.
				return append(make([]byte, 0, len(lc.loaded)), lc.loaded...), nil
			}
			// Gone again, and not loaded by this call: start over (this
			// call may run its load now).
		case stLoader:
			if lc.failure != nil && r.code == lc.token {
				return nil, lc.failure
			}
			if e := co.loads.lookup(&lc.call, r.code); e != nil {
				return nil, e
			}
			return nil, &Error{Op: op, Status: stInternal, sentinel: ErrInternal,
				Message: fmt.Sprintf("the library reported loader status %d, which no loader of this key returned", r.code)}
		default:
			return nil, newError(op, r.st, r.msg)
		}
	}
}

// The buffers GetOrLoad copies values into, pooled by size (they are handed to
// C across a call that runs Go code, so they cannot live on the stack). A
// value longer than the buffer costs a second lookup, which the statistics
// count, so each cache uses the smallest size that fitted the longest value
// its GetOrLoad returned so far (core.loadBufClass), up to the largest size.
var (
	loadBufSizes = [...]int{stackBuf, 1 << 10, 4 << 10, 16 << 10, maxLoadBuf}
	loadBufPools [len(loadBufSizes)]sync.Pool
)

// maxLoadBuf is GetOrLoad's largest buffer; longer values always take a
// second lookup.
const maxLoadBuf = 64 << 10

func init() {
	for i, size := range loadBufSizes {
		loadBufPools[i].New = func() any { b := make([]byte, size); return &b }
	}
}

// fitLoadBuf makes later GetOrLoad calls use buffers of at least n bytes,
// where a size that large is pooled.
func (co *core) fitLoadBuf(n int) {
	for class, size := range loadBufSizes {
		if size >= n {
			for {
				cur := co.loadBufClass.Load()
				if int(cur) >= class || co.loadBufClass.CompareAndSwap(cur, int32(class)) {
					return
				}
			}
		}
	}
}

// loadCall is one GetOrLoad call, as its loader callback sees it.
type loadCall struct {
	load func() ([]byte, error)
	reg  *loadFailures
	// loadTime sums, in nanoseconds, the time the cache's loaders ran
	// (Stats.LoadTime): the callback adds this call's load to it.
	loadTime *atomic.Int64
	call     keyCall
	// flight is this call's, if it leads (call.flight is then &flight).
	flight loadFlight
	// Set by the callback if this call ran its load.
	ran        bool
	loaded     []byte     // the value load returned, if it succeeded
	failure    *LoadError // the error, if it failed
	token      int32      // the status the callback returned for failure
	panicked   bool       // load panicked with panicValue
	panicValue any
	panicStack []byte // the loader goroutine's stack when it panicked
	exited     bool   // load called runtime.Goexit
}

// run is the loader callback's work: call load, hand its value to the library
// (which copies it) or keep its failure under a fresh token. It returns the C
// loader's status: 0 or the token.
func (lc *loadCall) run(setResult func([]byte) cres) int32 {
	lc.ran = true
	o := runLoad(lc.load)
	lc.loadTime.Add(int64(o.took))
	switch {
	case o.exited:
		lc.exited = true
		lc.failure = &LoadError{Err: errLoadExited}
	case o.panicked:
		lc.panicked, lc.panicValue, lc.panicStack = true, o.value, o.stack
		lc.failure = &LoadError{Panicked: true, Panic: o.value, Stack: o.stack}
	case o.err != nil:
		lc.failure = &LoadError{Err: o.err}
	default:
		r := setResult(o.v)
		if r.st == stOK {
			lc.loaded = o.v
			return 0
		}
		lc.failure = &LoadError{Err: newError("GetOrLoad", r.st, r.msg)}
	}
	lc.token = lc.reg.add(&lc.call, lc.failure)
	return lc.token
}

// errLoadExited is the error of a load whose loader called runtime.Goexit.
var errLoadExited = errors.New("mapcache: the loader called runtime.Goexit")

// loadOutcome is how a load ended.
type loadOutcome struct {
	v        []byte
	err      error
	panicked bool // with value, what recover returned (nil after panic(nil) with GODEBUG=panicnil=1)
	value    any
	stack    []byte // the loader goroutine's stack when it panicked
	exited   bool   // the loader called runtime.Goexit
	// took is how long load ran, from its call to its return, panic or
	// Goexit, timed on its own goroutine: without the hand-off to that
	// goroutine and back, and without the store of its value.
	took time.Duration
}

// runLoad calls load through runCallback (callback.go): neither a panic nor
// runtime.Goexit in it may unwind through the C frames of the library below
// the loader callback. It times load alone (o.took): the library times its
// whole C loader callback, which for a Go loader is mostly the cgo callback
// and the goroutine hand-offs around it.
func runLoad(load func() ([]byte, error)) (o loadOutcome) {
	c := runCallback(func() {
		start := time.Now()
		// Deferred, so that a panic or Goexit of load is timed too.
		defer func() { o.took = time.Since(start) }()
		o.v, o.err = load()
	})
	o.panicked, o.value, o.stack, o.exited = c.panicked, c.value, c.stack, c.exited
	return o
}

// loadFailures keeps the errors of failed loads for the callers that waited
// for them, per key, in shards locked independently.
//
// Which callers may still need an error: the library hands a load's status to
// the callers that waited for it when the load ends, before the leader's call
// returns; each of them entered (enter) before it called the library and
// looks its status up before it leaves (exit). So when the leader leaves, the
// callers that may still need its error are among the calls of that key that
// are still active; the error is dropped once all of them have left. Calls are
// numbered per key as they enter, so a call that leaves can tell whether it
// was active when a given error was published (its number is lower than the
// count at publication). The table holds at most a few errors per key with
// callers in flight, and nothing for a key without.
type loadFailures struct {
	shards [loadShards]loadShard
}

var loadSeed = maphash.MakeSeed()

const loadShards = 32

type loadShard struct {
	mu    sync.Mutex
	keys  map[string]*keyLoads
	token int32 // the last token handed out
	_     [40]byte
}

// keyLoads is the bookkeeping of one key with GetOrLoad calls in flight.
type keyLoads struct {
	key      string
	entered  uint64 // calls entered so far (the next call's number)
	active   int    // calls entered and not yet left
	failures []*pendingFailure
	// flight is the GetOrLoad call of the key that is in the library (the
	// leader), for the key's other calls to wait for; nil when none is.
	flight *loadFlight
}

// loadFlight is a GetOrLoad call in the library, as the calls of the same
// key that wait for it see it: GetOrLoad lets one call per key and cache
// into the library at a time, so that the others wait as goroutines, not each
// on an OS thread inside the library.
type loadFlight struct {
	// done is closed when the leader has left; made by the first call that
	// joins (under the shard's mutex: no channel for a call no one joins).
	done   chan struct{}
	joined int          // calls that joined it as waiters (under the shard's mutex)
	parked atomic.Int32 // of those, the ones that missed and wait on done (tests)
	// Set by the leader before done is closed: shared reports that a load
	// ended (so its outcome, v or err, is the waiters' too); v is a copy of
	// the leader's value, made when some call joined.
	shared bool
	v      []byte
	err    error
}

type pendingFailure struct {
	token int32
	err   *LoadError
	// Set when the leader leaves: calls numbered below before that are still
	// active may need err; remaining counts them.
	published bool
	before    uint64
	remaining int
}

// keyCall is one call's ticket.
type keyCall struct {
	shard *loadShard
	kl    *keyLoads
	num   uint64
	// The key's call in the library: this call's own if leads, else the one
	// it waits for.
	flight *loadFlight
	leads  bool
}

func (lf *loadFailures) shardOf(key []byte) *loadShard {
	return &lf.shards[maphash.Bytes(loadSeed, key)%loadShards]
}

// enter registers a GetOrLoad call of key. The call leads (t.leads: it is
// the key's one call into the library) if no other call of the key is in
// the library; else it joins that one's flight.
func (lf *loadFailures) enter(key []byte) keyCall { return lf.enterWith(key, new(loadFlight)) }

// enterWith is enter, with fl (unused so far) as the flight if the call leads.
func (lf *loadFailures) enterWith(key []byte, fl *loadFlight) keyCall {
	s := lf.shardOf(key)
	s.mu.Lock()
	kl := s.keys[string(key)]
	if kl == nil {
		if s.keys == nil {
			s.keys = make(map[string]*keyLoads)
		}
		kl = &keyLoads{key: string(key)}
		s.keys[kl.key] = kl
	}
	t := keyCall{shard: s, kl: kl, num: kl.entered}
	if kl.flight == nil {
		kl.flight = fl
		t.leads = true
	} else {
		if kl.flight.joined == 0 {
			kl.flight.done = make(chan struct{})
		}
		kl.flight.joined++
	}
	t.flight = kl.flight
	kl.entered++
	kl.active++
	s.mu.Unlock()
	return t
}

// add keeps the failure of the load that call t is running and returns its
// token: non-zero, and distinct from the tokens of the key's other kept
// failures.
func (lf *loadFailures) add(t *keyCall, err *LoadError) int32 {
	s := t.shard
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		s.token++
		if s.token <= 0 { // wrapped
			s.token = 1
		}
		if t.kl.find(s.token) == nil {
			break
		}
	}
	t.kl.failures = append(t.kl.failures, &pendingFailure{token: s.token, err: err})
	return s.token
}

// lookup returns the failure kept under token for call t's key, or nil.
func (lf *loadFailures) lookup(t *keyCall, token int32) *LoadError {
	t.shard.mu.Lock()
	defer t.shard.mu.Unlock()
	if f := t.kl.find(token); f != nil {
		return f.err
	}
	return nil
}

func (kl *keyLoads) find(token int32) *pendingFailure {
	for _, f := range kl.failures {
		if f.token == token {
			return f
		}
	}
	return nil
}

// exit ends lc's call: it no longer needs the failures published while it was
// active, and if it ran a load that failed, that failure is published now. If
// it led, its flight ends: the calls that joined it get its outcome.
func (lf *loadFailures) exit(lc *loadCall) { lf.exitCall(&lc.call, lc.failure, lc.token) }

// exitCall is exit for call t, whose load failed with failure under token
// (nil, 0: it ran none, or it succeeded).
func (lf *loadFailures) exitCall(t *keyCall, failure *LoadError, token int32) {
	s, kl := t.shard, t.kl
	s.mu.Lock()
	joined := -1
	if t.leads && kl.flight == t.flight {
		kl.flight = nil
		joined = t.flight.joined
	}
	lf.exitLocked(t, failure, token)
	s.mu.Unlock()
	if joined > 0 {
		fl := t.flight
		if fl.v != nil {
			// The leader's caller owns the value it returns.
			fl.v = append(make([]byte, 0, len(fl.v)), fl.v...)
		}
		close(fl.done)
	} else if joined == 0 {
		t.flight.v, t.flight.err = nil, nil
	}
}

func (lf *loadFailures) exitLocked(t *keyCall, failure *LoadError, token int32) {
	kl := t.kl
	s := t.shard
	kl.active--
	for _, f := range kl.failures {
		if f.published && t.num < f.before {
			f.remaining--
		}
	}
	if failure != nil {
		if f := kl.find(token); f != nil && !f.published {
			f.published, f.before, f.remaining = true, kl.entered, kl.active
		}
	}
	kept := kl.failures[:0]
	for _, f := range kl.failures {
		if !f.published || f.remaining > 0 {
			kept = append(kept, f)
		}
	}
	clear(kl.failures[len(kept):])
	kl.failures = kept
	if kl.active == 0 {
		// No call of the key is active, so no failure can be needed: every
		// published one has remaining 0, and unpublished ones belong to
		// active calls.
		delete(s.keys, kl.key)
	}
}
