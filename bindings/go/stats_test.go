package mapcache

import (
	"errors"
	"fmt"
	"math"
	"testing"
	"time"
)

// On a single goroutine every counter is exact and they add up:
// Hits + Misses = lookups, Inserts - Evictions - Expirations - Deletes =
// Entries.
func TestStatsAddUpOnOneGoroutine(t *testing.T) {
	c := newCache(t, Config{ManualClock: true})
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	if s := c.Stats(); s != (Stats{}) {
		t.Fatalf("a new cache's stats: %+v", s)
	}
	b := func(s string) []byte { return []byte(s) }

	must(c.Set(b("a"), b("1")))  // insert 1
	must(c.Set(b("b"), b("2")))  // insert 2
	must(c.Set(b("a"), b("11"))) // update 1

	c.Get(b("a")) // hit 1
	c.Get(b("x")) // miss 1
	_, err := c.GetMany([][]byte{b("a"), b("b"), b("x"), b("y")})
	must(err)                            // hits 3, misses 3
	c.GetString("a")                     // hit 4
	_, _, err = c.Lookup(b("zz"))        // miss 4
	must(err)                            //
	_, _, err = c.AppendGet(nil, b("b")) // hit 5
	must(err)

	// Not lookups: Contains, iteration, CompareAndSwap.
	_, err = c.Contains(b("a"))
	must(err)
	must(c.Range(func(k, v []byte) bool { return true }))
	swapped, err := c.CompareAndSwap(b("a"), b("11"), b("12")) // update 2
	must(err)
	if !swapped {
		t.Fatal("CompareAndSwap did not swap")
	}
	_, err = c.CompareAndSwap(b("a"), b("wrong"), b("13"))
	must(err)
	_, err = c.CompareAndSwap(b("missing"), b("x"), b("y"))
	must(err)
	_, _, err = c.GetOrSet(b("c"), b("3")) // miss 5, insert 3
	must(err)
	_, _, err = c.GetOrSet(b("c"), b("4")) // hit 6
	must(err)

	_, err = c.Delete(b("b")) // delete 1
	must(err)
	_, err = c.Delete(b("b"))
	must(err)

	_, err = c.GetOrLoad(b("d"), func() ([]byte, error) { return b("4"), nil }) // miss 6, load success, insert 4
	must(err)
	_, err = c.GetOrLoad(b("d"), func() ([]byte, error) { return b("never"), nil }) // hit 7
	must(err)
	_, err = c.GetOrLoad(b("e"), func() ([]byte, error) { return nil, errors.New("no") }) // miss 7, load failure
	if !errors.Is(err, ErrLoader) {
		t.Fatal(err)
	}

	must(c.SetWithTTL(b("f"), b("5"), time.Millisecond)) // insert 5
	must(c.AdvanceClock(time.Millisecond))
	c.Get(b("f")) // miss 8: expired
	// A write over an expired entry is an insert, and the expired entry an
	// expiration (if the Get did not already remove it).
	must(c.SetWithTTL(b("f"), b("6"), time.Hour)) // insert 6, expiration 1

	s := c.Stats()
	want := Stats{
		Hits: 7, Misses: 8, Inserts: 6, Updates: 2, Deletes: 1,
		Expirations: 1, LoadSuccesses: 1, LoadFailures: 1, Entries: 4,
		// Not predicted: load time, grows, bytes.
		LoadTime: s.LoadTime, Grows: s.Grows, Bytes: s.Bytes,
	}
	if s != want {
		t.Fatalf("stats\n got %+v\nwant %+v", s, want)
	}
	if s.LoadTime <= 0 || s.Bytes <= 0 {
		t.Fatalf("LoadTime %v, Bytes %d: want both positive", s.LoadTime, s.Bytes)
	}
	if s.Lookups() != 15 || math.Abs(s.HitRatio()-7.0/15) > 1e-12 {
		t.Fatalf("Lookups %d HitRatio %v", s.Lookups(), s.HitRatio())
	}
	if n := c.Len(); n != s.Entries {
		t.Fatalf("Len %d, Entries %d", n, s.Entries)
	}
	if got := s.Inserts - s.Evictions - s.Expirations - s.Deletes; got != uint64(s.Entries) {
		t.Fatalf("inserts - evictions - expirations - deletes = %d, entries %d", got, s.Entries)
	}

	// Clear deletes every entry; the counters are not reset.
	must(c.Clear())
	s = c.Stats()
	if s.Entries != 0 || s.Bytes != 0 || s.Deletes != 5 || s.Inserts != 6 || s.Hits != 7 {
		t.Fatalf("after Clear: %+v", s)
	}
	if got := s.Inserts - s.Evictions - s.Expirations - s.Deletes; got != 0 {
		t.Fatalf("after Clear the identity gives %d", got)
	}
}

func TestStatsHitRatioOfNoLookups(t *testing.T) {
	if r := (Stats{}).HitRatio(); r != 0 {
		t.Fatalf("HitRatio of no lookups = %v", r)
	}
	if r := (Stats{Hits: 3, Misses: 1}).HitRatio(); r != 0.75 {
		t.Fatalf("HitRatio = %v", r)
	}
}

// Exclusive-mode misuses are counted; Stats works during another
// goroutine's write (it is not a read of the map); a closed cache reports
// zero stats.
func TestStatsMisusesAndClosed(t *testing.T) {
	c := newCache(t, Config{Mode: Exclusive})
	c.Set([]byte("k"), []byte("v"))
	release, err := c.WithLabel("holder").debugHoldWrite([]byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	errW := c.Set([]byte("k"), []byte("w"))
	_, _, errR := c.Lookup([]byte("k"))
	if s := c.Stats(); s.Entries != 1 || s.Misuses != 2 {
		t.Errorf("Stats during another's write: %+v, want Entries 1, Misuses 2", s)
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(errW, ErrConcurrentWrite) || !errors.Is(errR, ErrConcurrentReadWrite) {
		t.Fatalf("misuse errors: %v, %v", errW, errR)
	}
	if s := c.Stats(); s.Misuses != 2 {
		t.Fatalf("Misuses = %d, want 2", s.Misuses)
	}
	c.Close()
	if s := c.Stats(); s != (Stats{}) {
		t.Fatalf("a closed cache's stats: %+v", s)
	}
}

// Stats.LoadTime is the time the load functions ran, not the round trip of
// the library's loader callback through the binding (cgo callback, goroutine
// hand-offs, the store of the value): with loaders that return at once it is
// a small part of the time GetOrLoad took. (It used to be the library's
// timing of its C loader callback: about 80% of the wall time here, some 100
// times what the loaders took.)
func TestStatsLoadTimeIsTheLoaders(t *testing.T) {
	c := newCache(t, Config{})
	const n = 2000
	value := []byte("v")
	start := time.Now()
	for i := 0; i < n; i++ {
		if _, err := c.GetOrLoad([]byte(fmt.Sprint("k", i)), func() ([]byte, error) { return value, nil }); err != nil {
			t.Fatal(err)
		}
	}
	wall := time.Since(start)
	s := c.Stats()
	if s.LoadSuccesses != n {
		t.Fatalf("LoadSuccesses = %d, want %d", s.LoadSuccesses, n)
	}
	if s.LoadTime*4 > wall {
		t.Fatalf("%d instant loads took %v; LoadTime = %v, want it well under that (the loaders' time, not the binding's hand-off)", n, wall, s.LoadTime)
	}
	t.Logf("%d instant loads: wall %v (%v a load), LoadTime %v", n, wall, wall/n, s.LoadTime)

	// Slow loaders are timed whole, whether they return a value, an error,
	// or panic.
	const nap = 5 * time.Millisecond
	before := s.LoadTime
	if _, err := c.GetOrLoad([]byte("slow"), func() ([]byte, error) { time.Sleep(nap); return value, nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetOrLoad([]byte("failing"), func() ([]byte, error) { time.Sleep(nap); return nil, errors.New("no") }); !errors.Is(err, ErrLoader) {
		t.Fatal(err)
	}
	func() {
		defer func() { recover() }()
		c.GetOrLoad([]byte("panicking"), func() ([]byte, error) { time.Sleep(nap); panic("boom") })
	}()
	s = c.Stats()
	if got := s.LoadTime - before; got < 3*nap {
		t.Fatalf("three loads of %v each added %v to LoadTime, want at least %v", nap, got, 3*nap)
	}
	if s.LoadSuccesses != n+1 || s.LoadFailures != 2 {
		t.Fatalf("LoadSuccesses %d, LoadFailures %d; want %d, 2", s.LoadSuccesses, s.LoadFailures, n+1)
	}
}
