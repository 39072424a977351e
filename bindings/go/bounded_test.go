package mapcache

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
)

// A cache bounded by MaxEntries never holds more, checked after every write
// of a long run of new keys through every kind of write; what left was
// evicted (the counters say so exactly), and the most recent write is there.
func TestBoundedCacheNeverExceedsMaxEntries(t *testing.T) {
	const max, writes = 100, 5000
	c := newCache(t, Config{MaxEntries: max})
	check := func(i int) {
		t.Helper()
		s := c.Stats()
		if n := c.Len(); n > max || s.Entries > max {
			t.Fatalf("after write %d: Len %d, Entries %d > MaxEntries %d", i, n, s.Entries, max)
		}
	}
	for i := 0; i < writes; i++ {
		k := []byte(fmt.Sprintf("key-%05d", i))
		v := []byte(fmt.Sprintf("value-%d", i))
		var err error
		switch i % 5 {
		case 0, 1:
			err = c.Set(k, v)
		case 2:
			_, err = c.GetOrLoad(k, func() ([]byte, error) { return v, nil })
		case 3:
			_, _, err = c.GetOrSet(k, v)
		case 4:
			err = c.SetMany([][]byte{k}, [][]byte{v})
		}
		if err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		check(i)
		c.Get(k) // a read of what was just written: the policy sees use
	}
	s := c.Stats()
	if s.Inserts != writes || s.Entries == 0 {
		t.Fatalf("stats %+v after %d writes of new keys", s, writes)
	}
	if s.Inserts-s.Evictions-s.Expirations-s.Deletes != uint64(s.Entries) || s.Evictions < writes-max {
		t.Fatalf("stats %+v do not account for the entries that left", s)
	}
	if s.Rejections > s.Evictions {
		t.Fatalf("Rejections %d > Evictions %d", s.Rejections, s.Evictions)
	}
}

// A cache bounded by MaxBytes (one shard) never holds more than MaxBytes plus
// one entry, checked after every write; an entry that can never fit is
// ErrTooLarge and changes nothing.
func TestBoundedCacheNeverExceedsMaxBytes(t *testing.T) {
	const maxBytes = 64 << 10
	// A 100-byte value with a 10-byte key is charged well under 1 KiB,
	// whatever the library's overhead.
	const oneEntry = 1024
	c := newCache(t, Config{Shards: 1, MaxBytes: maxBytes})
	v := make([]byte, 100)
	for i := 0; i < 3000; i++ {
		if err := c.Set([]byte(fmt.Sprintf("key-%05d", i)), v); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		if s := c.Stats(); s.Bytes > maxBytes+oneEntry {
			t.Fatalf("after write %d: Bytes %d > MaxBytes %d + one entry", i, s.Bytes, maxBytes)
		}
	}
	before := c.Stats()
	if before.Evictions == 0 {
		t.Fatalf("3000 entries of 100 bytes fit in %d bytes? %+v", maxBytes, before)
	}
	err := c.Set([]byte("huge"), make([]byte, 2*maxBytes))
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("a value twice MaxBytes: %v, want ErrTooLarge", err)
	}
	var e *Error
	if !errors.As(err, &e) || e.Status != stTooLarge || e.Message == "" {
		t.Fatalf("ErrTooLarge as *Error: %#v", e)
	}
	if ok, _ := c.Contains([]byte("huge")); ok {
		t.Fatal("the too-large entry was stored")
	}
	if after := c.Stats(); after.Entries != before.Entries || after.Evictions != before.Evictions {
		t.Fatalf("ErrTooLarge changed the cache: %+v -> %+v", before, after)
	}
}

// 8 goroutines read, write and load over a key space eight times a bounded
// cache's capacity, so that most writes evict: every value anyone reads is
// one written for that key, and the bound holds throughout.
func TestBoundedCacheUnderConcurrentEviction(t *testing.T) {
	const G, keys, max, ops = 8, 512, 64, 2000
	c := newCache(t, Config{MaxEntries: max})
	valueOf := func(k int) []byte { return []byte(fmt.Sprintf("value-of-%d", k)) }
	var wg sync.WaitGroup
	for g := 0; g < G; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < ops; i++ {
				k := (i*7 + g*131) % keys
				key := []byte(fmt.Sprintf("key-%d", k))
				var v []byte
				var err error
				switch i % 4 {
				case 0:
					err = c.Set(key, valueOf(k))
				case 1:
					v, err = c.GetOrLoad(key, func() ([]byte, error) { return valueOf(k), nil })
				case 2:
					v, _ = c.Get(key)
				case 3:
					var vals [][]byte
					vals, err = c.GetMany([][]byte{key})
					if err == nil {
						v = vals[0]
					}
				}
				if err != nil {
					t.Errorf("g%d op %d: %v", g, i, err)
					return
				}
				if v != nil && !bytes.Equal(v, valueOf(k)) {
					t.Errorf("g%d: key %d read %q", g, k, v)
					return
				}
				if n := c.Len(); n > max+G {
					// Len may be read mid-write by others; each goroutine
					// has at most one write in flight.
					t.Errorf("Len %d > MaxEntries %d + writes in flight", n, max)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	s := c.Stats()
	if s.Entries > max || s.Evictions == 0 {
		t.Fatalf("after the run: %+v", s)
	}
	if s.Inserts-s.Evictions-s.Expirations-s.Deletes != uint64(s.Entries) {
		t.Fatalf("stats do not add up at rest: %+v", s)
	}
	assertNoFailuresKept(t, c)
}

// What Set's doc says of admission: a new key waits in the policy's
// admission window, so a lookup right after its Set finds it, and the
// Rejections a Set counts are of earlier new keys; only an entry heavier than
// the whole window (MaxBytes, a value large next to the shard's budget) meets
// the policy at once and may be gone right after its Set.
func TestSetKeepsANewKeyInTheWindow(t *testing.T) {
	warm := func(c *Cache) {
		for r := 0; r < 20; r++ {
			for i := 0; i < 300; i++ {
				k := []byte(fmt.Sprint("hot", i))
				c.Get(k)
				if err := c.Set(k, []byte("v")); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	c := newCache(t, Config{MaxEntries: 100, Shards: 1, Seed: 1})
	warm(c)
	before := c.Stats().Rejections
	for i := 0; i < 1000; i++ {
		k := []byte(fmt.Sprint("cold", i))
		if err := c.Set(k, []byte("v")); err != nil {
			t.Fatal(err)
		}
		if ok, err := c.Contains(k); !ok || err != nil {
			t.Fatalf("new key %q absent right after its Set (%v); Stats %+v", k, err, c.Stats())
		}
	}
	if got := c.Stats().Rejections - before; got == 0 {
		t.Fatalf("no rejections among 1000 cold keys in a warm cache of 100: the test shows nothing")
	}

	big := newCache(t, Config{MaxBytes: 64 << 10, Shards: 1, Seed: 1})
	warm(big)
	absent := 0
	for i := 0; i < 100; i++ {
		k := []byte(fmt.Sprint("big", i))
		if err := big.Set(k, bytes.Repeat([]byte("x"), 20000)); err != nil {
			t.Fatal(err)
		}
		if ok, _ := big.Contains(k); !ok {
			absent++
		}
	}
	if absent == 0 {
		t.Fatalf("no 20000-byte entry was refused at once in a warm 64 KiB shard; Stats %+v", big.Stats())
	}
	t.Logf("20000-byte entries absent right after their Set: %d of 100", absent)
}
