package mapcache_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	mapcache "github.com/mapcache/mapcache-go"
)

func Example() {
	c, err := mapcache.New(mapcache.Config{})
	if err != nil {
		panic(err)
	}
	defer c.Close()

	c.Set([]byte("user:1"), []byte("alice"))
	c.SetString("user:2", "bob")

	v, ok := c.Get([]byte("user:1"))
	fmt.Println(string(v), ok)
	s, ok := c.GetString("user:3")
	fmt.Printf("%q %v\n", s, ok)
	fmt.Println(c.Len())
	// Output:
	// alice true
	// "" false
	// 2
}

func ExampleCache_GetMany() {
	c, _ := mapcache.New(mapcache.Config{})
	defer c.Close()
	c.SetMany(
		[][]byte{[]byte("a"), []byte("b")},
		[][]byte{[]byte("1"), []byte("2")},
	)
	vals, err := c.GetMany([][]byte{[]byte("a"), []byte("missing"), []byte("b")})
	fmt.Println(err)
	for _, v := range vals {
		if v == nil {
			fmt.Println("absent")
		} else {
			fmt.Println(string(v))
		}
	}
	// Output:
	// <nil>
	// 1
	// absent
	// 2
}

func ExampleCache_Swap() {
	c, _ := mapcache.New(mapcache.Config{})
	defer c.Close()
	prev, loaded, _ := c.Swap([]byte("k"), []byte("1"))
	fmt.Printf("%q %v\n", prev, loaded)
	prev, loaded, _ = c.Swap([]byte("k"), []byte("2"))
	fmt.Printf("%q %v\n", prev, loaded)
	// Output:
	// "" false
	// "1" true
}

func ExampleCache_All() {
	c, _ := mapcache.New(mapcache.Config{})
	defer c.Close()
	for _, k := range []string{"x", "y", "z"} {
		c.SetString(k, k+k)
	}
	var lines []string
	for k, v := range c.All() {
		lines = append(lines, string(k)+"="+string(v))
	}
	slices.Sort(lines)
	fmt.Println(lines)
	// Output: [x=xx y=yy z=zz]
}

func ExampleCache_Close() {
	c, _ := mapcache.New(mapcache.Config{})
	fmt.Println(c.Close())
	fmt.Println(c.Close()) // a second Close does nothing and returns nil
	err := c.Set([]byte("k"), []byte("v"))
	fmt.Println(errors.Is(err, mapcache.ErrClosed))
	// Output:
	// <nil>
	// <nil>
	// true
}

func ExampleCache_WithLabel() {
	c, _ := mapcache.New(mapcache.Config{Mode: mapcache.Exclusive})
	defer c.Close()
	w := c.WithLabel("writer-1")
	if err := w.Set([]byte("k"), []byte("v")); err != nil {
		// With two writers at once: errors.Is(err, mapcache.ErrConcurrentWrite),
		// and err.(*mapcache.Error) names the Holder and the Collider.
		var e *mapcache.Error
		if errors.As(err, &e) {
			fmt.Println(e.Holder, e.Collider)
		}
	}
	fmt.Println(w.Label())
	// Output: writer-1
}

func ExampleCache_SetWithTTL() {
	// A manual clock, so that the example need not sleep; a real cache uses
	// the system clock (ManualClock: false).
	c, _ := mapcache.New(mapcache.Config{ManualClock: true, DefaultTTL: time.Hour})
	defer c.Close()
	c.SetWithTTL([]byte("session"), []byte("token"), 30*time.Second)
	c.Set([]byte("profile"), []byte("alice"))       // DefaultTTL: an hour
	c.SetWithTTL([]byte("config"), []byte("v1"), 0) // never expires

	c.AdvanceClock(30 * time.Second)
	_, ok := c.Get([]byte("session"))
	fmt.Println("session:", ok)
	_, ok = c.Get([]byte("profile"))
	fmt.Println("profile:", ok)

	c.AdvanceClock(time.Hour)
	_, ok = c.Get([]byte("profile"))
	fmt.Println("profile after an hour:", ok)
	_, ok = c.Get([]byte("config"))
	fmt.Println("config:", ok)
	// Output:
	// session: false
	// profile: true
	// profile after an hour: false
	// config: true
}

func ExampleCache_GetOrLoad() {
	c, _ := mapcache.New(mapcache.Config{MaxEntries: 10000, DefaultTTL: time.Minute})
	defer c.Close()
	errNotFound := errors.New("no such user")
	queryDatabase := func(id string) ([]byte, error) {
		if id == "1" {
			return []byte(`{"name":"alice"}`), nil
		}
		return nil, errNotFound
	}

	// On a miss the loader runs (once, however many goroutines miss on the
	// key at the same time) and its value is stored; later calls hit.
	for i := 0; i < 2; i++ {
		v, err := c.GetOrLoad([]byte("user:1"), func() ([]byte, error) {
			fmt.Println("loading user 1")
			return queryDatabase("1")
		})
		fmt.Println(string(v), err)
	}

	// A loader's error reaches the caller (and every caller that waited for
	// that load), wrapped in a *LoadError; nothing is stored.
	_, err := c.GetOrLoad([]byte("user:2"), func() ([]byte, error) { return queryDatabase("2") })
	fmt.Println(errors.Is(err, errNotFound), errors.Is(err, mapcache.ErrLoader))
	// Output:
	// loading user 1
	// {"name":"alice"} <nil>
	// {"name":"alice"} <nil>
	// true true
}

func ExampleCache_Stats() {
	c, _ := mapcache.New(mapcache.Config{})
	defer c.Close()
	c.Set([]byte("a"), []byte("1"))
	c.Get([]byte("a"))
	c.Get([]byte("a"))
	c.Get([]byte("b"))
	s := c.Stats()
	fmt.Printf("hits %d, misses %d, hit ratio %.2f\n", s.Hits, s.Misses, s.HitRatio())
	fmt.Printf("inserts %d, entries %d\n", s.Inserts, s.Entries)
	// Output:
	// hits 2, misses 1, hit ratio 0.67
	// inserts 1, entries 1
}

func ExampleCache_Save() {
	dir, _ := os.MkdirTemp("", "mapcache-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "users.snap")

	c, _ := mapcache.New(mapcache.Config{})
	c.SetString("user:1", "alice")
	c.SetString("user:2", "bob")
	// Before a restart (other goroutines may keep using the cache meanwhile):
	if err := c.Save(path); err != nil {
		panic(err)
	}
	c.Close()

	// After it: a warm cache, or an error to start cold on.
	warm, err := mapcache.Load(path, mapcache.Config{})
	if err != nil {
		panic(err)
	}
	defer warm.Close()
	v, ok := warm.GetString("user:2")
	fmt.Println(v, ok, warm.Len())

	// A missing file is fs.ErrNotExist; a damaged one, mapcache.ErrCorrupt.
	_, err = mapcache.Load(filepath.Join(dir, "missing.snap"), mapcache.Config{})
	fmt.Println(errors.Is(err, fs.ErrNotExist), errors.Is(err, mapcache.ErrIO))
	os.WriteFile(path, []byte("not a snapshot"), 0o644)
	_, err = warm.LoadInto(path)
	var ce *mapcache.CorruptError
	fmt.Println(errors.Is(err, mapcache.ErrCorrupt), errors.As(err, &ce), warm.Len())
	// Output:
	// bob true 2
	// true true
	// true true 2
}
