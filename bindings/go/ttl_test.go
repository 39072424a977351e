package mapcache

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// readPath is one way of reading a key; seen reports whether it saw key with
// value want. Paths that write (GetOrSet, Swap, CompareAndSwap, GetOrLoad)
// are reads too: an expired entry must be absent to them.
type readPath struct {
	name string
	seen func(t *testing.T, c *Cache, key, want []byte) bool
}

func rangeSees(c *Cache, key, want []byte, each func(fn func(k, v []byte) bool)) bool {
	found := false
	each(func(k, v []byte) bool {
		if bytes.Equal(k, key) {
			found = bytes.Equal(v, want)
			return false
		}
		return true
	})
	return found
}

var readPaths = []readPath{
	{"Get", func(t *testing.T, c *Cache, k, want []byte) bool {
		v, ok := c.Get(k)
		return ok && bytes.Equal(v, want)
	}},
	{"Lookup", func(t *testing.T, c *Cache, k, want []byte) bool {
		v, ok, err := c.Lookup(k)
		if err != nil {
			t.Fatal(err)
		}
		return ok && bytes.Equal(v, want)
	}},
	{"AppendGet", func(t *testing.T, c *Cache, k, want []byte) bool {
		v, ok, err := c.AppendGet(make([]byte, 0, 64), k)
		if err != nil {
			t.Fatal(err)
		}
		return ok && bytes.Equal(v, want)
	}},
	{"GetString", func(t *testing.T, c *Cache, k, want []byte) bool {
		v, ok := c.GetString(string(k))
		return ok && v == string(want)
	}},
	{"GetMany", func(t *testing.T, c *Cache, k, want []byte) bool {
		vals, err := c.GetMany([][]byte{[]byte("other"), k})
		if err != nil {
			t.Fatal(err)
		}
		return vals[1] != nil && bytes.Equal(vals[1], want)
	}},
	{"Contains", func(t *testing.T, c *Cache, k, want []byte) bool {
		ok, err := c.Contains(k)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}},
	{"Range", func(t *testing.T, c *Cache, k, want []byte) bool {
		return rangeSees(c, k, want, func(fn func(k, v []byte) bool) {
			if err := c.Range(fn); err != nil {
				t.Fatal(err)
			}
		})
	}},
	{"All", func(t *testing.T, c *Cache, k, want []byte) bool {
		return rangeSees(c, k, want, func(fn func(k, v []byte) bool) {
			for k, v := range c.All() {
				if !fn(k, v) {
					return
				}
			}
		})
	}},
	{"Keys", func(t *testing.T, c *Cache, k, want []byte) bool {
		for key := range c.Keys() {
			if bytes.Equal(key, k) {
				return true
			}
		}
		return false
	}},
	{"GetOrSet", func(t *testing.T, c *Cache, k, want []byte) bool {
		actual, loaded, err := c.GetOrSet(k, []byte("fresh"))
		if err != nil {
			t.Fatal(err)
		}
		if !loaded && string(actual) != "fresh" {
			t.Fatalf("GetOrSet stored but returned %q", actual)
		}
		return loaded && bytes.Equal(actual, want)
	}},
	{"Swap", func(t *testing.T, c *Cache, k, want []byte) bool {
		prev, loaded, err := c.Swap(k, []byte("fresh"))
		if err != nil {
			t.Fatal(err)
		}
		return loaded && bytes.Equal(prev, want)
	}},
	{"CompareAndSwap", func(t *testing.T, c *Cache, k, want []byte) bool {
		swapped, err := c.CompareAndSwap(k, want, []byte("fresh"))
		if err != nil {
			t.Fatal(err)
		}
		return swapped
	}},
	{"GetOrLoad", func(t *testing.T, c *Cache, k, want []byte) bool {
		loaded := false
		v, err := c.GetOrLoad(k, func() ([]byte, error) {
			loaded = true
			return []byte("fresh"), nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if loaded != (string(v) == "fresh") {
			t.Fatalf("GetOrLoad: loaded %v but returned %q", loaded, v)
		}
		return !loaded && bytes.Equal(v, want)
	}},
}

// An entry with a TTL is returned by every read path until its TTL has run
// out on the cache's manual clock, and by none from then on (it expires when
// the clock reaches its deadline, not after). An entry without a TTL is
// untouched.
func TestTTLExpiresOnEveryReadPath(t *testing.T) {
	for _, p := range readPaths {
		t.Run(p.name, func(t *testing.T) {
			c := newCache(t, Config{ManualClock: true})
			key, val := []byte("k"), []byte("v")
			if err := c.SetWithTTL(key, val, 10*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			if err := c.Set([]byte("keep"), []byte("forever")); err != nil {
				t.Fatal(err)
			}
			if !p.seen(t, c, key, val) {
				t.Fatalf("%s does not see a fresh entry", p.name)
			}
			// The path may have replaced the value (CompareAndSwap, Swap):
			// write it again, with the same 10 ms from now.
			if err := c.SetWithTTL(key, val, 10*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			if err := c.AdvanceClock(9 * time.Millisecond); err != nil {
				t.Fatal(err)
			}
			if !p.seen(t, c, key, val) {
				t.Fatalf("%s does not see the entry 1 ms before its deadline", p.name)
			}
			if err := c.SetWithTTL(key, val, time.Millisecond); err != nil {
				t.Fatal(err)
			}
			if err := c.AdvanceClock(time.Millisecond); err != nil {
				t.Fatal(err)
			}
			if p.seen(t, c, key, val) {
				t.Fatalf("%s returned an expired entry", p.name)
			}
			mustGet(t, c, "keep", "forever")
		})
	}
}

// Config.DefaultTTL applies to every write without a TTL of its own;
// SetWithTTL's own TTL replaces it, and SetWithTTL(0) never expires.
func TestDefaultTTL(t *testing.T) {
	c := newCache(t, Config{ManualClock: true, DefaultTTL: 10 * time.Millisecond})
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.Set([]byte("set"), []byte("v")))
	must(c.SetString("setstring", "v"))
	must(c.SetMany([][]byte{[]byte("setmany")}, [][]byte{[]byte("v")}))
	_, _, err := c.GetOrSet([]byte("getorset"), []byte("v"))
	must(err)
	_, err = c.GetOrLoad([]byte("getorload"), func() ([]byte, error) { return []byte("v"), nil })
	must(err)
	must(c.SetWithTTL([]byte("never"), []byte("v"), 0))
	must(c.SetWithTTL([]byte("longer"), []byte("v"), 20*time.Millisecond))
	defaulted := []string{"set", "setstring", "setmany", "getorset", "getorload"}

	must(c.AdvanceClock(9 * time.Millisecond))
	for _, k := range append(defaulted, "never", "longer") {
		mustGet(t, c, k, "v")
	}
	must(c.AdvanceClock(time.Millisecond))
	for _, k := range defaulted {
		if v, ok := c.GetString(k); ok {
			t.Errorf("%s: %q still there after DefaultTTL", k, v)
		}
	}
	mustGet(t, c, "never", "v")
	mustGet(t, c, "longer", "v")
	must(c.AdvanceClock(10 * time.Millisecond))
	if _, ok := c.GetString("longer"); ok {
		t.Error("longer outlived its own TTL")
	}
	must(c.AdvanceClock(1000 * time.Hour))
	mustGet(t, c, "never", "v")
}

// TTLs are whole milliseconds, rounded up: a TTL under a millisecond is one
// millisecond (not 0, which would mean "never").
func TestTTLRoundsUpToMilliseconds(t *testing.T) {
	c := newCache(t, Config{ManualClock: true})
	if err := c.SetWithTTL([]byte("ns"), []byte("v"), time.Nanosecond); err != nil {
		t.Fatal(err)
	}
	if err := c.SetWithTTL([]byte("1.5ms"), []byte("v"), 1500*time.Microsecond); err != nil {
		t.Fatal(err)
	}
	mustGet(t, c, "ns", "v")
	if err := c.AdvanceClock(time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.GetString("ns"); ok {
		t.Error("a 1 ns TTL outlived 1 ms")
	}
	mustGet(t, c, "1.5ms", "v")
	if err := c.AdvanceClock(time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.GetString("1.5ms"); ok {
		t.Error("a 1.5 ms TTL outlived 2 ms")
	}
	if got := ttlMillis(time.Duration(1<<63 - 1)); got != uint64((1<<63-1)/int64(time.Millisecond))+1 {
		t.Errorf("ttlMillis(max) = %d", got)
	}
}

// Out-of-range TTLs and clock moves are refused and change nothing.
func TestTTLArgumentErrors(t *testing.T) {
	c := newCache(t, Config{ManualClock: true})
	if err := c.SetWithTTL([]byte("k"), []byte("v"), -time.Millisecond); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("negative TTL: %v", err)
	}
	if c.Len() != 0 {
		t.Fatal("a negative TTL stored the entry")
	}
	for _, d := range []time.Duration{-time.Millisecond, time.Microsecond, 1500 * time.Microsecond} {
		if err := c.AdvanceClock(d); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("AdvanceClock(%v): %v, want ErrInvalidArgument", d, err)
		}
	}
	if err := c.AdvanceClock(0); err != nil {
		t.Errorf("AdvanceClock(0): %v", err)
	}

	system := newCache(t, Config{})
	if err := system.AdvanceClock(time.Millisecond); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("AdvanceClock on the system clock: %v, want ErrInvalidArgument", err)
	}

	for _, cfg := range []Config{{MaxEntries: -1}, {MaxBytes: -1}, {DefaultTTL: -time.Second}} {
		if c, err := New(cfg); !errors.Is(err, ErrInvalidConfig) {
			if c != nil {
				c.Close()
			}
			t.Errorf("New(%+v): %v, want ErrInvalidConfig", cfg, err)
		}
	}

	c.Close()
	if err := c.SetWithTTL([]byte("k"), []byte("v"), time.Second); !errors.Is(err, ErrClosed) {
		t.Errorf("SetWithTTL after Close: %v", err)
	}
	if err := c.AdvanceClock(time.Millisecond); !errors.Is(err, ErrClosed) {
		t.Errorf("AdvanceClock after Close: %v", err)
	}
}

// The clock is the cache's, shared by its views.
func TestManualClockIsSharedByViews(t *testing.T) {
	c := newCache(t, Config{ManualClock: true})
	v := c.WithLabel("view")
	if err := c.SetWithTTL([]byte("k"), []byte("v"), 5*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := v.AdvanceClock(5 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Get([]byte("k")); ok {
		t.Fatal("advancing a view's clock did not expire the entry")
	}
}
