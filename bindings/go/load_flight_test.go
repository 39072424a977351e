package mapcache

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const loadChildEnv = "MAPCACHE_LOAD_CHILD"

// runLoadChild runs test name of this binary in a child process with
// loadChildEnv=how (and env), and returns its output and error.
func runLoadChild(t *testing.T, name, how string, env ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^"+name+"$", "-test.count=1", "-test.v")
	cmd.Env = append(append(os.Environ(), loadChildEnv+"="+how), env...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("the child (%s) did not end in 120 s:\n%.4000s", how, out)
	}
	return string(out), err
}

// A stampede on one cold key: 1,000 goroutines miss on it while its slow load
// runs, with the process allowed 100 OS threads. The callers that wait for
// the load wait as parked goroutines, not each on an OS thread inside the
// library (which would end the process with "fatal error: thread
// exhaustion"); all get the value, and the loader runs once. In a child
// process: a thread limit below the threads a process already has ends it at
// once, and a test process that ran other tests has many.
func TestGetOrLoadStampedeUnderThreadLimit(t *testing.T) {
	if os.Getenv(loadChildEnv) == "stampede" {
		stampedeUnderThreadLimit(t)
		return
	}
	out, err := runLoadChild(t, "TestGetOrLoadStampedeUnderThreadLimit", "stampede", "GOMAXPROCS=4")
	if err != nil || !strings.Contains(out, "--- PASS: TestGetOrLoadStampedeUnderThreadLimit") {
		t.Fatalf("the child with 1,000 waiters and 100 threads: %v\n%.4000s", err, out)
	}
}

func stampedeUnderThreadLimit(t *testing.T) {
	const G = 1000
	old := debug.SetMaxThreads(100)
	defer debug.SetMaxThreads(old)
	c := newCache(t, Config{})
	key := []byte("cold")
	var runs atomic.Int32
	values := make([][]byte, G)
	errs := make([]error, G)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for g := 0; g < G; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			values[g], errs[g] = c.GetOrLoad(key, func() ([]byte, error) {
				runs.Add(1)
				waitForWaiters(t, c, key, G-1)    // every other caller waits for this load
				time.Sleep(50 * time.Millisecond) // a slow backend
				return []byte("loaded once"), nil
			})
		}()
	}
	close(start)
	wg.Wait()
	if n := runs.Load(); n != 1 {
		t.Fatalf("the loader ran %d times, want 1", n)
	}
	for g := 0; g < G; g++ {
		if errs[g] != nil || string(values[g]) != "loaded once" {
			t.Fatalf("goroutine %d: %q, %v", g, values[g], errs[g])
		}
	}
	if s := c.Stats(); s.Misses != G || s.LoadSuccesses != 1 || s.Inserts != 1 {
		t.Fatalf("stats %+v: want %d misses, 1 load, 1 insert", s, G)
	}
	assertNoFailuresKept(t, c)
}

// The leader's GetOrLoad returns ErrClosed (its loader closed the cache, and
// the value, longer than GetOrLoad's first buffer, could not be read back):
// the callers that waited for it get the same error, and none hangs.
func TestGetOrLoadWaitersGetTheLeadersErrClosed(t *testing.T) {
	const G = 8
	c := newCache(t, Config{})
	key := []byte("k")
	var runs atomic.Int32
	errs := make([]error, G)
	onGoroutines(G, func(g int) {
		_, errs[g] = c.GetOrLoad(key, func() ([]byte, error) {
			runs.Add(1)
			waitForWaiters(t, c, key, G-1)
			c.Close()
			return make([]byte, 4096), nil
		})
	})
	if runs.Load() != 1 {
		t.Fatalf("the loader ran %d times", runs.Load())
	}
	for g, err := range errs {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("goroutine %d: %v, want ErrClosed", g, err)
		}
	}
}

// A loader that calls runtime.Goexit with callers waiting: they get the
// *LoadError saying so, and the leader's goroutine exits.
func TestGetOrLoadGoexitWithWaiters(t *testing.T) {
	const G = 8
	c := newCache(t, Config{})
	key := []byte("k")
	var returned atomic.Int32
	errs := make([]error, G)
	onGoroutines(G, func(g int) {
		_, errs[g] = c.GetOrLoad(key, func() ([]byte, error) {
			waitForWaiters(t, c, key, G-1)
			runtime.Goexit()
			return nil, nil
		})
		returned.Add(1)
	})
	if n := returned.Load(); n != G-1 {
		t.Fatalf("%d calls returned, want %d (all but the leader)", n, G-1)
	}
	exited := 0
	for _, err := range errs {
		var le *LoadError
		if errors.As(err, &le) && le.Err == errLoadExited && le.Stack == nil {
			exited++
		}
	}
	if exited != G-1 {
		t.Fatalf("%d callers got the Goexit *LoadError, want %d: %v", exited, G-1, errs)
	}
	assertNoFailuresKept(t, c)
}

// The waiting itself, with the leader simulated by the bookkeeping: a call of
// a key that another call of it is in the library for makes its own lookup,
// parks on a miss, and then takes that call's outcome if a load ended (a
// copy of the value of its own; the same error) or starts over if not.
func TestGetOrLoadWaiterTakesTheLeadersOutcomeOrStartsOver(t *testing.T) {
	c := newCache(t, Config{})
	key := []byte("k")
	type result struct {
		v   []byte
		err error
	}
	wait := func(load func() ([]byte, error)) (*loadCall, chan result) {
		t.Helper()
		leader := &loadCall{reg: &c.co.loads, call: c.co.loads.enter(key)}
		if !leader.call.leads {
			t.Fatal("the first call of the key does not lead")
		}
		got := make(chan result, 1)
		go func() {
			v, err := c.GetOrLoad(key, load)
			got <- result{v, err}
		}()
		waitForWaiters(t, c, key, 1)
		return leader, got
	}
	noLoad := func() ([]byte, error) {
		t.Error("a waiter's loader ran")
		return nil, nil
	}

	// A load ended with a value: the waiter gets a copy of its own.
	leader, got := wait(noLoad)
	fl := leader.call.flight
	leaderValue := []byte("loaded by the leader")
	fl.shared, fl.v = true, leaderValue
	c.co.loads.exit(leader)
	r := <-got
	if r.err != nil || string(r.v) != "loaded by the leader" || &r.v[0] == &leaderValue[0] {
		t.Fatalf("waiter: %q, %v (shares the leader's array: %v)", r.v, r.err, r.err == nil && &r.v[0] == &leaderValue[0])
	}

	// A load failed: the waiter gets the same *LoadError.
	leader, got = wait(noLoad)
	le := &LoadError{Err: errors.New("backend down")}
	leader.call.flight.shared, leader.call.flight.err = true, le
	c.co.loads.exit(leader)
	if r := <-got; r.err != le || r.v != nil {
		t.Fatalf("waiter: %q, %v; want the leader's *LoadError", r.v, r.err)
	}

	// The leader did not load (it found the key, since deleted): the waiter
	// starts over and loads itself.
	leader, got = wait(func() ([]byte, error) { return []byte("own load"), nil })
	c.co.loads.exit(leader)
	if r := <-got; r.err != nil || string(r.v) != "own load" {
		t.Fatalf("waiter after a leader that did not load: %q, %v", r.v, r.err)
	}

	// A call that finds the key does not wait.
	leader = &loadCall{reg: &c.co.loads, call: c.co.loads.enter(key)}
	if v, err := c.GetOrLoad(key, noLoad); err != nil || string(v) != "own load" {
		t.Fatalf("hit with a call of the key in the library: %q, %v", v, err)
	}
	c.co.loads.exit(leader)
	assertNoFailuresKept(t, c)
}

// The value the leader returns is its caller's: changing it does not change
// the waiters' values.
func TestGetOrLoadWaitersOwnTheirValues(t *testing.T) {
	const G = 4
	c := newCache(t, Config{})
	key := []byte("k")
	values := make([][]byte, G)
	var wg sync.WaitGroup
	for g := 0; g < G; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := c.GetOrLoad(key, func() ([]byte, error) {
				waitForWaiters(t, c, key, G-1)
				return []byte("value"), nil
			})
			if err != nil {
				t.Error(err)
				return
			}
			values[g] = v
			v[0] = byte('0' + g) // each caller scribbles on its own
		}()
	}
	wg.Wait()
	for g, v := range values {
		if want := string(rune('0'+g)) + "alue"; string(v) != want {
			t.Errorf("goroutine %d: %q, want %q", g, v, want)
		}
	}
	mustGet(t, c, "k", "value")
}

func panickingLoaderForStackTest() ([]byte, error) {
	var m map[string]int
	m["x"] = 1 // a nil-map write: the line the stack must lead to
	return nil, nil
}

// A loader's panic keeps its stack: the waiters' *LoadError has it in Stack,
// and the leader still panics with the loader's own value.
func TestGetOrLoadPanicKeepsTheLoadersStack(t *testing.T) {
	c := newCache(t, Config{})
	key := []byte("k")
	var recovered any
	var waiterErr error
	var wg sync.WaitGroup
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if r := recover(); r != nil {
					recovered = r
				}
			}()
			_, err := c.GetOrLoad(key, func() ([]byte, error) {
				waitForWaiters(t, c, key, 1)
				return panickingLoaderForStackTest()
			})
			waiterErr = err
		}()
	}
	wg.Wait()
	re, ok := recovered.(runtime.Error)
	if !ok || !strings.Contains(re.Error(), "nil map") {
		t.Fatalf("the leader recovered %#v, want the loader's runtime error", recovered)
	}
	var le *LoadError
	if !errors.As(waiterErr, &le) || !le.Panicked || le.Panic != recovered {
		t.Fatalf("the waiter got %v, want a *LoadError of the same panic", waiterErr)
	}
	if !bytes.Contains(le.Stack, []byte("panickingLoaderForStackTest")) || !bytes.Contains(le.Stack, []byte("load_flight_test.go")) {
		t.Fatalf("LoadError.Stack does not show the loader:\n%s", le.Stack)
	}
	if le := (&LoadError{Err: errors.New("x")}); le.Stack != nil {
		t.Fatal("Stack set without a panic")
	}
}

func panickingProgressForStackTest(uint64) {
	var m map[string]int
	m["x"] = 1
}

// A panic no one recovers, in a loader or a progress function, prints where
// in that function it happened (its goroutine's stack), not only the
// caller's stack. In a child process.
func TestCallbackPanicCrashShowsTheCallback(t *testing.T) {
	switch os.Getenv(loadChildEnv) {
	case "panic-load":
		c := newCache(t, Config{})
		c.GetOrLoad([]byte("k"), panickingLoaderForStackTest)
		return
	case "panic-save":
		c := newCache(t, Config{})
		c.SetString("k", "v")
		c.SaveWithProgress(os.Getenv(loadChildEnv+"_PATH"), panickingProgressForStackTest)
		return
	}
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	path := filepath.Join(t.TempDir(), "snap")
	for how, fn := range map[string]string{"panic-load": "panickingLoaderForStackTest", "panic-save": "panickingProgressForStackTest"} {
		out, err := runLoadChild(t, "TestCallbackPanicCrashShowsTheCallback", how, loadChildEnv+"_PATH="+path)
		if err == nil || !strings.Contains(out, "assignment to entry in nil map") {
			t.Fatalf("%s: the child did not panic (%v):\n%.4000s", how, err, out)
		}
		if !strings.Contains(out, fn) {
			t.Errorf("%s: the crash does not show %s:\n%.4000s", how, fn, out)
		}
	}
}

// Get of a value longer than its stack buffer allocates only the value's
// exact-size slice (the retry does not fetch the library's message of
// BUFFER_TOO_SMALL).
func TestGetLongValueAllocatesOnce(t *testing.T) {
	if testing.CoverMode() != "" {
		t.Skip("coverage counters allocate")
	}
	c := newCache(t, Config{})
	long := bytes.Repeat([]byte("x"), 1000)
	c.Set([]byte("long"), long)
	c.Set([]byte("short"), []byte("y"))
	k, ks := []byte("long"), []byte("short")
	for _, tc := range []struct {
		name string
		want float64
		fn   func()
	}{
		{"Get of 1000 bytes", 1, func() { c.Get(k) }},
		{"Lookup of 1000 bytes", 1, func() { c.Lookup(k) }},
		{"GetString of 1000 bytes", 1, func() { c.GetString("long") }},
		{"Get of 1 byte", 1, func() { c.Get(ks) }},
		{"AppendGet of 1000 bytes into nil", 1, func() { c.AppendGet(nil, k) }},
	} {
		if n := testing.AllocsPerRun(200, tc.fn); n != tc.want {
			t.Errorf("%s: %v allocations, want %v", tc.name, n, tc.want)
		}
	}
	if v, ok := c.Get(k); !ok || !bytes.Equal(v, long) || cap(v) != len(long) {
		t.Fatalf("Get of the long value: %d bytes (cap %d), %v", len(v), cap(v), ok)
	}
}

// onGoroutines runs f(0) .. f(n-1), each on a goroutine of its own, and
// returns once every one has returned (or called runtime.Goexit).
func onGoroutines(n int, f func(g int)) {
	var wg sync.WaitGroup
	for g := 0; g < n; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(g)
		}()
	}
	wg.Wait()
}
