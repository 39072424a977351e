// Command demo uses one mapcache Cache from many goroutines and prints what it
// did: concurrent writers and readers, batch calls, an atomic counter with
// CompareAndSwap, iteration, and Exclusive mode reporting a concurrent write
// (with both goroutines' labels) where a Go map would crash the process.
package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log"
	"runtime"
	"sync"
	"time"

	mapcache "github.com/mapcache/mapcache-go"
)

func main() {
	fmt.Printf("mapcache %s, Go %s, GOMAXPROCS %d\n", mapcache.Version(), runtime.Version(), runtime.GOMAXPROCS(0))

	c, err := mapcache.New(mapcache.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	// 1. 32 goroutines write 1000 keys each, 32 others read them back.
	const writers, perWriter = 32, 1000
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < perWriter; i++ {
				k := fmt.Sprintf("user:%02d:%04d", w, i)
				if err := c.SetString(k, fmt.Sprintf("{\"writer\":%d,\"n\":%d}", w, i)); err != nil {
					log.Fatal(err)
				}
			}
		}(w)
	}
	wg.Wait()
	var hits, misses sync.Map
	for r := 0; r < writers; r++ {
		wg.Add(1)
		go func(r int) {
			defer wg.Done()
			h, m := 0, 0
			for i := 0; i < perWriter; i++ {
				if _, ok := c.GetString(fmt.Sprintf("user:%02d:%04d", (r+1)%writers, i)); ok {
					h++
				} else {
					m++
				}
			}
			hits.Store(r, h)
			misses.Store(r, m)
		}(r)
	}
	wg.Wait()
	total := 0
	hits.Range(func(_, v any) bool { total += v.(int); return true })
	fmt.Printf("1. %d goroutines wrote %d keys, %d goroutines read them: %d hits, Len=%d (%v)\n",
		writers, writers*perWriter, writers, total, c.Len(), time.Since(start).Round(time.Millisecond))

	// 2. Batches: one cgo call for 1000 keys.
	keys := make([][]byte, 1000)
	for i := range keys {
		keys[i] = []byte(fmt.Sprintf("user:07:%04d", i))
	}
	vals, err := c.GetMany(keys)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("2. GetMany(1000 keys) in one call: first=%s last=%s\n", vals[0], vals[999])
	n, err := c.DeleteMany(keys[:500])
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("   DeleteMany(500 keys) removed %d, Len=%d\n", n, c.Len())

	// 3. A counter incremented by 64 goroutines with CompareAndSwap.
	ctr := []byte("counter")
	c.Set(ctr, make([]byte, 8))
	for g := 0; g < 64; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				for {
					old, _ := c.Get(ctr)
					nv := binary.BigEndian.AppendUint64(nil, binary.BigEndian.Uint64(old)+1)
					if ok, err := c.CompareAndSwap(ctr, old, nv); err != nil {
						log.Fatal(err)
					} else if ok {
						break
					}
				}
			}
		}()
	}
	wg.Wait()
	v, _ := c.Get(ctr)
	fmt.Printf("3. 64 goroutines x 100 CompareAndSwap increments: counter=%d\n", binary.BigEndian.Uint64(v))

	// 4. Iteration.
	count, size := 0, 0
	for k, v := range c.All() {
		count++
		size += len(k) + len(v)
	}
	fmt.Printf("4. range over c.All(): %d entries, %d bytes of keys and values\n", count, size)

	// 5. Exclusive mode: Go's map contract, but a violation is an error.
	ex, err := mapcache.New(mapcache.Config{Mode: mapcache.Exclusive})
	if err != nil {
		log.Fatal(err)
	}
	defer ex.Close()
	var once sync.Once
	var found error
	done := make(chan struct{})
	big := bytes.Repeat([]byte("x"), 64<<10)
	for w := 1; w <= 2; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			view := ex.WithLabel(fmt.Sprintf("writer-%d", w))
			deadline := time.Now().Add(10 * time.Second)
			for i := 0; time.Now().Before(deadline); i++ {
				select {
				case <-done:
					return
				default:
				}
				if err := view.Set([]byte(fmt.Sprint(w, i%32)), big); err != nil {
					once.Do(func() { found = err; close(done) })
					return
				}
			}
		}(w)
	}
	wg.Wait()
	var e *mapcache.Error
	switch {
	case errors.Is(found, mapcache.ErrConcurrentWrite) && errors.As(found, &e):
		fmt.Printf("5. exclusive mode, two writers at once: %v\n   (holder %q, collider %q; a Go map would have died with 'fatal error: concurrent map writes')\n", found, e.Holder, e.Collider)
	case found != nil:
		fmt.Printf("5. exclusive mode: unexpected error %v\n", found)
	default:
		fmt.Println("5. exclusive mode: no overlap happened to be detected within 10 s")
	}

	c.Close()
	c.Close()
	if err := c.Set([]byte("k"), nil); errors.Is(err, mapcache.ErrClosed) {
		fmt.Printf("6. after Close (twice): %v\n", err)
	}
}
