package mapcache

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
)

// Swap returns what it replaced, as sync.Map.Swap does: (nil, false) for an
// absent key, (the old value, true) for a present one, including a stored
// empty value (non-nil) and one too large for Swap's first buffer.
func TestSwapReturnsPrevious(t *testing.T) {
	c := newCache(t, Config{})
	prev, loaded, err := c.Swap([]byte("k"), []byte("1"))
	if err != nil || loaded || prev != nil {
		t.Fatalf("Swap(absent) = %q, %v, %v; want nil, false, nil", prev, loaded, err)
	}
	mustGet(t, c, "k", "1")
	prev, loaded, err = c.Swap([]byte("k"), []byte("2"))
	if err != nil || !loaded || string(prev) != "1" {
		t.Fatalf("Swap(present) = %q, %v, %v; want \"1\", true, nil", prev, loaded, err)
	}
	mustGet(t, c, "k", "2")

	if err := c.Set([]byte("empty"), nil); err != nil {
		t.Fatal(err)
	}
	prev, loaded, err = c.Swap([]byte("empty"), []byte("x"))
	if err != nil || !loaded || prev == nil || len(prev) != 0 {
		t.Fatalf("Swap(stored empty value) = %q (nil %v), %v, %v; want a non-nil empty slice, true", prev, prev == nil, loaded, err)
	}

	big := bytes.Repeat([]byte("b"), 4*stackBuf+3)
	if err := c.Set([]byte("big"), big); err != nil {
		t.Fatal(err)
	}
	prev, loaded, err = c.Swap([]byte("big"), []byte("small"))
	if err != nil || !loaded || !bytes.Equal(prev, big) {
		t.Fatalf("Swap(large value) = %d bytes, %v, %v; want the %d-byte value", len(prev), loaded, err, len(big))
	}
	mustGet(t, c, "big", "small")

	// The previous value is the caller's: a later write does not change it.
	prev, _, _ = c.Swap([]byte("k"), []byte("3"))
	if _, _, err := c.Swap([]byte("k"), []byte("4")); err != nil {
		t.Fatal(err)
	}
	if string(prev) != "2" {
		t.Fatalf("previous value changed to %q", prev)
	}

	long := make([]byte, MaxKeyLen+1)
	if _, _, err := c.Swap(long, []byte("v")); !errors.Is(err, ErrKeyTooLong) {
		t.Fatalf("Swap(long key) = %v", err)
	}
}

// Swaps are atomic with respect to each other: with every goroutine swapping
// its own distinct values into one key, each value written is handed back as
// a previous value exactly once, except the one left in the cache. A swap
// made of a separate read and write would hand some value back twice (two
// swaps read it) and lose another.
func TestSwapIsAtomic(t *testing.T) {
	c := newCache(t, Config{})
	key := []byte("hot")
	const goroutines, swaps = 8, 2000
	prevs := make([][][]byte, goroutines)
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < swaps; i++ {
				v := []byte(fmt.Sprintf("g%d-%d", g, i))
				prev, loaded, err := c.Swap(key, v)
				if err != nil {
					t.Errorf("Swap: %v", err)
					return
				}
				if loaded {
					prevs[g] = append(prevs[g], prev)
				} else {
					prevs[g] = append(prevs[g], []byte("<absent>"))
				}
			}
		}()
	}
	wg.Wait()
	final, ok := c.Get(key)
	if !ok {
		t.Fatal("key absent after the swaps")
	}
	seen := map[string]int{string(final): 1}
	for _, ps := range prevs {
		for _, p := range ps {
			seen[string(p)]++
		}
	}
	if seen["<absent>"] != 1 {
		t.Errorf("%d swaps saw the key absent, want exactly 1", seen["<absent>"])
	}
	for g := 0; g < goroutines; g++ {
		for i := 0; i < swaps; i++ {
			v := fmt.Sprintf("g%d-%d", g, i)
			if n := seen[v]; n != 1 {
				t.Fatalf("value %q was handed back (or left) %d times, want exactly once", v, n)
			}
		}
	}
}

// In Exclusive mode a Swap that overlaps another caller's write is reported
// like any other misuse, and changes nothing.
func TestSwapExclusiveMisuse(t *testing.T) {
	c := newCache(t, Config{Mode: Exclusive})
	if err := c.SetString("k", "v"); err != nil {
		t.Fatal(err)
	}
	release, err := c.WithLabel("holder").debugHoldWrite([]byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	prev, loaded, err := c.WithLabel("swapper").Swap([]byte("k"), []byte("w"))
	if herr := release(); herr != nil {
		t.Fatalf("hold: %v", herr)
	}
	if !errors.Is(err, ErrConcurrentWrite) && !errors.Is(err, ErrConcurrentReadWrite) {
		t.Fatalf("Swap during a write = %q, %v, %v; want a misuse error", prev, loaded, err)
	}
	var e *Error
	if !errors.As(err, &e) || e.Holder != "holder" || e.Collider != "swapper" {
		t.Fatalf("Swap misuse report = %#v", err)
	}
	mustGet(t, c, "k", "v")
}
