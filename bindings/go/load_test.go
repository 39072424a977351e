package mapcache

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// waitForWaiters blocks until n callers are waiting for the load of key in
// progress: parked in GetOrLoad, having missed, for the call of the key that
// is in the library, or inside the library (its debug hook; a call there
// waits for a load of another host's): a loader that waits for the other
// callers this way knows that every one of them will get its outcome, so the
// stampede tests are exact, not timing-dependent.
func waitForWaiters(t *testing.T, c *Cache, key []byte, n int) {
	for {
		waiting, err := c.debugLoadWaiters(key)
		if err != nil {
			t.Errorf("debugLoadWaiters: %v", err)
			return
		}
		if waiting+c.co.loads.parkedWaiters(key) >= n {
			return
		}
		runtime.Gosched()
	}
}

// parkedWaiters counts the GetOrLoad calls of key parked for the key's call
// in the library.
func (lf *loadFailures) parkedWaiters(key []byte) int {
	s := lf.shardOf(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if kl := s.keys[string(key)]; kl != nil && kl.flight != nil {
		return int(kl.flight.parked.Load())
	}
	return 0
}

// 16 goroutines miss on one key at once: the loader runs once, and all of
// them get its value. Deterministic: the loader returns only once the other 15
// callers are waiting for it.
func TestGetOrLoadRunsOnceFor16Goroutines(t *testing.T) {
	const G = 16
	c := newCache(t, Config{})
	key := []byte("user:1")
	var runs atomic.Int32
	values := make([][]byte, G)
	errs := make([]error, G)
	var wg sync.WaitGroup
	for g := 0; g < G; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			values[g], errs[g] = c.GetOrLoad(key, func() ([]byte, error) {
				runs.Add(1)
				waitForWaiters(t, c, key, G-1)
				return []byte(fmt.Sprintf("loaded by %d", g)), nil
			})
		}(g)
	}
	wg.Wait()
	if n := runs.Load(); n != 1 {
		t.Fatalf("the loader ran %d times, want 1", n)
	}
	for g := 0; g < G; g++ {
		if errs[g] != nil {
			t.Fatalf("goroutine %d: %v", g, errs[g])
		}
		if !bytes.Equal(values[g], values[0]) || !strings.HasPrefix(string(values[0]), "loaded by ") {
			t.Fatalf("goroutine %d got %q, goroutine 0 %q", g, values[g], values[0])
		}
	}
	mustGet(t, c, string(key), string(values[0]))
	s := c.Stats()
	if s.Misses != G || s.LoadSuccesses != 1 || s.LoadFailures != 0 || s.Inserts != 1 {
		t.Fatalf("stats %+v: want %d misses, 1 load, 1 insert", s, G)
	}
	assertNoFailuresKept(t, c)
}

type testLoadErr struct{ run int32 }

func (e *testLoadErr) Error() string { return fmt.Sprintf("database down (run %d)", e.run) }

// A loader's error reaches every caller that waited for that load (the same
// *LoadError, unwrapping to the loader's own error), nothing is cached, and
// the next call loads again.
func TestGetOrLoadErrorReachesEveryWaiter(t *testing.T) {
	const G = 16
	c := newCache(t, Config{})
	key := []byte("k")
	var runs atomic.Int32
	errs := make([]error, G)
	var wg sync.WaitGroup
	for g := 0; g < G; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			v, err := c.GetOrLoad(key, func() ([]byte, error) {
				run := runs.Add(1)
				waitForWaiters(t, c, key, G-1)
				return nil, &testLoadErr{run: run}
			})
			if v != nil {
				t.Errorf("goroutine %d: value %q with the error", g, v)
			}
			errs[g] = err
		}(g)
	}
	wg.Wait()

	byRun := map[int32][]*LoadError{}
	for g, err := range errs {
		var le *LoadError
		var mine *testLoadErr
		if !errors.Is(err, ErrLoader) || !errors.As(err, &le) || !errors.As(err, &mine) {
			t.Fatalf("goroutine %d: %v (%T), want a *LoadError of *testLoadErr", g, err, err)
		}
		if le.Panicked || le.Err != mine || !strings.Contains(err.Error(), "database down") {
			t.Fatalf("goroutine %d: %#v", g, le)
		}
		byRun[mine.run] = append(byRun[mine.run], le)
	}
	for run, les := range byRun {
		for _, le := range les {
			if le != les[0] {
				t.Errorf("the callers of load %d got different *LoadErrors", run)
			}
		}
	}
	if runs.Load() != 1 || len(byRun[1]) != G {
		t.Fatalf("%d loads ran and %d callers got the first one's error, want 1 and %d", runs.Load(), len(byRun[1]), G)
	}
	if ok, _ := c.Contains(key); ok || c.Len() != 0 {
		t.Fatal("a failed load cached something")
	}
	if s := c.Stats(); s.LoadFailures != uint64(runs.Load()) || s.LoadSuccesses != 0 {
		t.Fatalf("stats %+v after %d failed loads", s, runs.Load())
	}
	assertNoFailuresKept(t, c)

	// The next call loads again.
	v, err := c.GetOrLoad(key, func() ([]byte, error) { return []byte("back"), nil })
	if err != nil || string(v) != "back" {
		t.Fatalf("retry: %q, %v", v, err)
	}
	mustGet(t, c, "k", "back")
}

type testPanic struct{ run int32 }

// A loader that panics: the callers that waited get a *LoadError saying so,
// the caller whose loader it was panics again with the same value, nothing is
// cached and the cache works on (nothing is poisoned).
func TestGetOrLoadPanicReachesWaitersAndRepanicsInLeader(t *testing.T) {
	const G = 16
	c := newCache(t, Config{})
	key := []byte("k")
	var runs atomic.Int32
	type outcome struct {
		err       error
		recovered any
		panicked  bool
	}
	out := make([]outcome, G)
	var wg sync.WaitGroup
	for g := 0; g < G; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			defer func() {
				if r := recover(); r != nil {
					out[g].panicked, out[g].recovered = true, r
				}
			}()
			_, out[g].err = c.GetOrLoad(key, func() ([]byte, error) {
				run := runs.Add(1)
				waitForWaiters(t, c, key, G-1)
				panic(&testPanic{run: run})
			})
		}(g)
	}
	wg.Wait()

	leaders := map[*testPanic]bool{}
	for g, o := range out {
		if o.panicked {
			p, ok := o.recovered.(*testPanic)
			if !ok || o.err != nil {
				t.Fatalf("goroutine %d panicked with %v", g, o.recovered)
			}
			leaders[p] = true
		}
	}
	waiters := 0
	for g, o := range out {
		if o.panicked {
			continue
		}
		var le *LoadError
		if !errors.As(o.err, &le) || !errors.Is(o.err, ErrLoader) || !le.Panicked || le.Err != nil {
			t.Fatalf("goroutine %d: %v, want a *LoadError with Panicked", g, o.err)
		}
		p, ok := le.Panic.(*testPanic)
		if !ok || !leaders[p] || !strings.Contains(le.Error(), "panicked") {
			t.Fatalf("goroutine %d: Panic = %#v, not the value a caller re-panicked with", g, le.Panic)
		}
		waiters++
	}
	if runs.Load() != 1 || len(leaders) != 1 || waiters != G-1 {
		t.Fatalf("%d loads panicked, %d callers re-panicked, %d got the error; want 1, 1, %d", runs.Load(), len(leaders), waiters, G-1)
	}
	if ok, _ := c.Contains(key); ok {
		t.Fatal("a panicked load cached something")
	}
	if s := c.Stats(); s.LoadFailures != uint64(runs.Load()) {
		t.Fatalf("LoadFailures %d after %d panics", s.LoadFailures, runs.Load())
	}
	assertNoFailuresKept(t, c)
	v, err := c.GetOrLoad(key, func() ([]byte, error) { return []byte("fine"), nil })
	if err != nil || string(v) != "fine" {
		t.Fatalf("after the panic: %q, %v", v, err)
	}
}

// On one goroutine: the panic value comes back exactly, also an error value
// (re-panicked as is, not wrapped), and the key stays absent.
func TestGetOrLoadPanicSingleCaller(t *testing.T) {
	c := newCache(t, Config{})
	boom := errors.New("boom")
	func() {
		defer func() {
			if r := recover(); r != boom {
				t.Fatalf("recovered %v, want the loader's own panic value", r)
			}
		}()
		c.GetOrLoad([]byte("k"), func() ([]byte, error) { panic(boom) })
		t.Fatal("GetOrLoad returned after its loader panicked")
	}()
	if ok, _ := c.Contains([]byte("k")); ok {
		t.Fatal("cached after a panic")
	}
	if s := c.Stats(); s.LoadFailures != 1 {
		t.Fatalf("LoadFailures = %d", s.LoadFailures)
	}
	assertNoFailuresKept(t, c)
}

// A hit does not call the loader; a value longer than the buffer GetOrLoad
// starts with comes back whole, on the loading call and on a hit.
func TestGetOrLoadHitAndLongValue(t *testing.T) {
	c := newCache(t, Config{})
	c.Set([]byte("present"), []byte("stored"))
	v, err := c.GetOrLoad([]byte("present"), func() ([]byte, error) {
		t.Error("loader called on a hit")
		return nil, nil
	})
	if err != nil || string(v) != "stored" {
		t.Fatalf("hit: %q, %v", v, err)
	}
	// The first long value takes a second lookup (a hit) to read; then the
	// cache's GetOrLoad buffers fit it, and a hit is one lookup.
	long := bytes.Repeat([]byte("0123456789"), 1000)
	for i := 0; i < 2; i++ {
		v, err := c.GetOrLoad([]byte("long"), func() ([]byte, error) { return long, nil })
		if err != nil || !bytes.Equal(v, long) {
			t.Fatalf("long value, call %d: %d bytes, %v", i, len(v), err)
		}
	}
	if got := c.co.loadBufClass.Load(); loadBufSizes[got] < len(long) || loadBufSizes[got-1] >= len(long) {
		t.Fatalf("buffer class %d (%d bytes) for a %d-byte value", got, loadBufSizes[got], len(long))
	}
	// Longer than the largest buffer: read with a second lookup every time.
	huge := make([]byte, maxLoadBuf+1)
	for i := 0; i < 2; i++ {
		v, err := c.GetOrLoad([]byte("huge"), func() ([]byte, error) { return huge, nil })
		if err != nil || !bytes.Equal(v, huge) {
			t.Fatalf("huge value, call %d: %d bytes, %v", i, len(v), err)
		}
	}
	// An empty value is a value (non-nil), not a miss.
	v, err = c.GetOrLoad([]byte("empty"), func() ([]byte, error) { return nil, nil })
	if err != nil || v == nil || len(v) != 0 {
		t.Fatalf("empty value: %q (nil %v), %v", v, v == nil, err)
	}
	// Hits: present; long's re-read and its second call; huge's re-read, and
	// its second call with its re-read. Misses: long, huge, empty.
	if s := c.Stats(); s.LoadSuccesses != 3 || s.Hits != 6 || s.Misses != 3 {
		t.Fatalf("stats %+v", s)
	}
}

// The loader runs with no lock held: it may read and write the cache, other
// keys and its own. A value another write stored meanwhile wins over the
// loader's.
func TestGetOrLoadLoaderUsesTheCache(t *testing.T) {
	for _, mode := range []Mode{Concurrent, Exclusive} {
		c := newCache(t, Config{Mode: mode})
		c.Set([]byte("dep"), []byte("D"))
		v, err := c.GetOrLoad([]byte("a"), func() ([]byte, error) {
			dep, ok := c.Get([]byte("dep"))
			if !ok {
				return nil, errors.New("dep missing")
			}
			if err := c.Set([]byte("side"), []byte("S")); err != nil {
				return nil, err
			}
			inner, err := c.GetOrLoad([]byte("b"), func() ([]byte, error) { return []byte("B"), nil })
			if err != nil {
				return nil, err
			}
			return append(dep, inner...), nil
		})
		if err != nil || string(v) != "DB" {
			t.Fatalf("mode %d: %q, %v", mode, v, err)
		}
		mustGet(t, c, "a", "DB")
		mustGet(t, c, "b", "B")
		mustGet(t, c, "side", "S")

		v, err = c.GetOrLoad([]byte("raced"), func() ([]byte, error) {
			if err := c.Set([]byte("raced"), []byte("written meanwhile")); err != nil {
				return nil, err
			}
			return []byte("loaded"), nil
		})
		if err != nil || string(v) != "written meanwhile" {
			t.Fatalf("mode %d: raced load returned %q, %v", mode, v, err)
		}
		mustGet(t, c, "raced", "written meanwhile")
	}
}

// A loaded value the cache cannot hold is an error, and nothing is stored.
func TestGetOrLoadValueTooLarge(t *testing.T) {
	c := newCache(t, Config{Shards: 1, MaxBytes: 4096})
	_, err := c.GetOrLoad([]byte("k"), func() ([]byte, error) { return make([]byte, 8192), nil })
	var le *LoadError
	var e *Error
	if !errors.Is(err, ErrTooLarge) || errors.As(err, &le) || !errors.As(err, &e) || e.Op != "GetOrLoad" {
		t.Fatalf("an 8 KiB value in a 4 KiB cache: %v (%T), want an *Error matching ErrTooLarge", err, err)
	}
	if ok, _ := c.Contains([]byte("k")); ok {
		t.Fatal("stored anyway")
	}
	assertNoFailuresKept(t, c)
}

func TestGetOrLoadArgumentsAndClose(t *testing.T) {
	c := newCache(t, Config{})
	if _, err := c.GetOrLoad([]byte("k"), nil); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("nil load: %v", err)
	}
	_, err := c.GetOrLoad(make([]byte, MaxKeyLen+1), func() ([]byte, error) {
		t.Error("loader called for an over-long key")
		return nil, nil
	})
	if !errors.Is(err, ErrKeyTooLong) {
		t.Fatalf("long key: %v", err)
	}
	assertNoFailuresKept(t, c)
	c.Close()
	if _, err := c.GetOrLoad([]byte("k"), func() ([]byte, error) { return nil, nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

// Many goroutines over a few keys whose loads fail or succeed at random: every
// call gets a value or a *LoadError, and the failure table empties.
func TestGetOrLoadMixedOutcomesLeaveNothingBehind(t *testing.T) {
	c := newCache(t, Config{})
	const G, N = 8, 300
	var wg sync.WaitGroup
	for g := 0; g < G; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < N; i++ {
				key := []byte{byte(i % 3)}
				fail := (i+g)%2 == 0
				v, err := c.GetOrLoad(key, func() ([]byte, error) {
					if fail {
						return nil, &testLoadErr{}
					}
					return []byte("ok"), nil
				})
				var mine *testLoadErr
				switch {
				case err == nil && string(v) == "ok":
				case errors.As(err, &mine):
				default:
					t.Errorf("g%d i%d: %q, %v", g, i, v, err)
					return
				}
				if i%5 == 0 {
					c.Delete(key)
				}
			}
		}(g)
	}
	wg.Wait()
	assertNoFailuresKept(t, c)
}

// The bookkeeping of failures for waiters, step by step: a failure is kept
// while a call that was active when it was published may still look it up,
// and not a moment longer; a call that entered later does not hold it.
func TestLoadFailuresLifetime(t *testing.T) {
	var lf loadFailures
	key := []byte("k")
	leader := &loadCall{reg: &lf, call: lf.enter(key)}
	waiterA := &loadCall{reg: &lf, call: lf.enter(key)}
	waiterB := &loadCall{reg: &lf, call: lf.enter(key)}
	leader.failure = &LoadError{Err: errors.New("x")}
	leader.token = lf.add(&leader.call, leader.failure)
	if leader.token == 0 {
		t.Fatal("token 0 means success")
	}
	if lf.lookup(&waiterA.call, leader.token) != leader.failure {
		t.Fatal("waiter A cannot find the failure")
	}
	lf.exit(waiterA) // before the leader leaves: holds nothing
	lf.exit(leader)  // publishes, with one active call (B) that may need it
	late := &loadCall{reg: &lf, call: lf.enter(key)}
	if lf.lookup(&waiterB.call, leader.token) != leader.failure {
		t.Fatal("waiter B cannot find the failure after the leader left")
	}
	lf.exit(waiterB)
	if lf.lookup(&late.call, leader.token) != nil {
		t.Fatal("the failure outlived the last call that could need it")
	}
	// A second failure, by the late call, with no other call active: dropped
	// when it leaves, and the key with it.
	late.failure = &LoadError{Err: errors.New("y")}
	late.token = lf.add(&late.call, late.failure)
	lf.exit(late)
	if n := lf.keptKeys(); n != 0 {
		t.Fatalf("%d keys kept after every call left", n)
	}
}

// keptKeys counts the keys with bookkeeping (test support).
func (lf *loadFailures) keptKeys() int {
	n := 0
	for i := range lf.shards {
		s := &lf.shards[i]
		s.mu.Lock()
		n += len(s.keys)
		s.mu.Unlock()
	}
	return n
}

func assertNoFailuresKept(t *testing.T, c *Cache) {
	t.Helper()
	if n := c.co.loads.keptKeys(); n != 0 {
		t.Fatalf("%d keys still have load bookkeeping with no GetOrLoad in flight", n)
	}
}

// A loader that calls runtime.Goexit (as t.Fatal does) ends the caller's
// goroutine too, after the library's load has ended: the key is not left
// with a load in progress forever, and the next call loads.
func TestGetOrLoadGoexit(t *testing.T) {
	c := newCache(t, Config{})
	done := make(chan struct{})
	returned := false
	go func() {
		defer close(done)
		c.GetOrLoad([]byte("k"), func() ([]byte, error) {
			runtime.Goexit()
			return []byte("unreachable"), nil
		})
		returned = true
	}()
	<-done
	if returned {
		t.Fatal("GetOrLoad returned after its loader called Goexit")
	}
	if s := c.Stats(); s.LoadFailures != 1 {
		t.Fatalf("LoadFailures = %d", s.LoadFailures)
	}
	v, err := c.GetOrLoad([]byte("k"), func() ([]byte, error) { return []byte("v"), nil })
	if err != nil || string(v) != "v" {
		t.Fatalf("after the Goexit: %q, %v", v, err)
	}
	assertNoFailuresKept(t, c)
	le := &LoadError{Err: errLoadExited}
	if !errors.Is(le, ErrLoader) || !strings.Contains(le.Error(), "Goexit") {
		t.Fatalf("the waiters' error: %v", le)
	}
}
