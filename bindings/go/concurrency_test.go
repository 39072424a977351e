package mapcache

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// 64 goroutines hammer one cache with every kind of call; the outcome is
// checked exactly.
func TestHammer64Goroutines(t *testing.T) {
	const G = 64
	var (
		own        = 200 // keys per goroutine
		increments = 50  // CAS increments of the shared counter per goroutine
		shared     = 100 // GetOrSet keys contended by every goroutine
	)
	if os.Getenv("MAPCACHE_GO_STRESS") != "" { // make stress-go
		own, increments, shared = 5000, 500, 2000
	}
	c := newCache(t, Config{})
	counter := []byte("counter")
	if err := c.Set(counter, make([]byte, 8)); err != nil {
		t.Fatal(err)
	}
	var inserted atomic.Int64
	winners := make([][]string, G) // winners[g][j]: value GetOrSet returned to g for shared key j
	var wg sync.WaitGroup
	start := make(chan struct{})
	fail := func(format string, args ...any) { t.Errorf(format, args...) }
	for g := 0; g < G; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			cc := c.WithLabel(fmt.Sprintf("g%d", g))
			<-start
			// Own keys: single sets and gets.
			for i := 0; i < own; i++ {
				k := []byte(fmt.Sprintf("own-%02d-%04d", g, i))
				v := []byte(fmt.Sprintf("v1-%d-%d", g, i))
				if err := cc.Set(k, v); err != nil {
					fail("Set: %v", err)
					return
				}
				if got, ok := cc.Get(k); !ok || !bytes.Equal(got, v) {
					fail("g%d: Get(%s) = %q, %v", g, k, got, ok)
					return
				}
			}
			// Shared counter: CAS loop.
			for i := 0; i < increments; i++ {
				for {
					old, ok := cc.Get(counter)
					if !ok || len(old) != 8 {
						fail("counter: %q %v", old, ok)
						return
					}
					nv := binary.BigEndian.AppendUint64(nil, binary.BigEndian.Uint64(old)+1)
					sw, err := cc.CompareAndSwap(counter, old, nv)
					if err != nil {
						fail("CAS: %v", err)
						return
					}
					if sw {
						break
					}
				}
			}
			// Contended GetOrSet: exactly one insert per key.
			winners[g] = make([]string, shared)
			for j := 0; j < shared; j++ {
				actual, loaded, err := cc.GetOrSet([]byte(fmt.Sprint("shared-", j)), []byte(fmt.Sprint("by-", g)))
				if err != nil {
					fail("GetOrSet: %v", err)
					return
				}
				if !loaded {
					inserted.Add(1)
				}
				winners[g][j] = string(actual)
			}
			// Batches: rewrite own keys, read back, delete the odd ones.
			keys := make([][]byte, own)
			vals := make([][]byte, own)
			for i := range keys {
				keys[i] = []byte(fmt.Sprintf("own-%02d-%04d", g, i))
				vals[i] = []byte(fmt.Sprintf("v2-%d-%d", g, i))
			}
			if err := cc.SetMany(keys, vals); err != nil {
				fail("SetMany: %v", err)
				return
			}
			got, err := cc.GetMany(keys)
			if err != nil {
				fail("GetMany: %v", err)
				return
			}
			for i := range keys {
				if !bytes.Equal(got[i], vals[i]) {
					fail("GetMany[%d] = %q want %q", i, got[i], vals[i])
					return
				}
			}
			var odd [][]byte
			for i := 1; i < own; i += 2 {
				odd = append(odd, keys[i])
			}
			if n, err := cc.DeleteMany(odd); err != nil || n != len(odd) {
				fail("DeleteMany = %d, %v", n, err)
				return
			}
			// A concurrent iteration never yields a key twice.
			if g%8 == 0 {
				seen := map[string]bool{}
				err := cc.Range(func(k, _ []byte) bool {
					if seen[string(k)] {
						fail("Range yielded %q twice", k)
						return false
					}
					seen[string(k)] = true
					return true
				})
				if err != nil {
					fail("Range: %v", err)
				}
			}
		}(g)
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}
	v, _ := c.Get(counter)
	if n := binary.BigEndian.Uint64(v); n != uint64(G*increments) {
		t.Fatalf("counter = %d, want %d (lost CAS updates)", n, G*increments)
	}
	if n := inserted.Load(); n != int64(shared) {
		t.Fatalf("GetOrSet inserted %d times, want %d", n, shared)
	}
	for j := 0; j < shared; j++ {
		stored, _ := c.GetString(fmt.Sprint("shared-", j))
		for g := 0; g < G; g++ {
			if winners[g][j] != stored {
				t.Fatalf("shared-%d: g%d saw %q, stored %q", j, g, winners[g][j], stored)
			}
		}
	}
	if n, want := c.Len(), G*own/2+shared+1; n != want {
		t.Fatalf("Len = %d, want %d", n, want)
	}
	for g := 0; g < G; g++ {
		for i := 0; i < own; i++ {
			v, ok := c.GetString(fmt.Sprintf("own-%02d-%04d", g, i))
			if i%2 == 1 && ok {
				t.Fatalf("own-%02d-%04d survived DeleteMany", g, i)
			}
			if i%2 == 0 && v != fmt.Sprintf("v2-%d-%d", g, i) {
				t.Fatalf("own-%02d-%04d = %q", g, i, v)
			}
		}
	}
}

// hammerBound bounds the hammers below, which write until a collision is
// caught: an overlap always comes (two calls in the library at once, or one
// preempted there while it holds the flag), so only a build that misses
// overlaps reaches it.
const hammerBound = 2 * time.Minute

// atLeast2Procs makes sure two goroutines can really run at once.
func atLeast2Procs(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		old := runtime.GOMAXPROCS(2)
		t.Cleanup(func() { runtime.GOMAXPROCS(old) })
	}
}

// Exclusive mode keeps Go's map contract (one writer at a time) but a
// violation is an error naming both labelled callers, not a fatal error.
// Compare TestGoMapConcurrentWritesDie.
func TestExclusiveConcurrentWrite(t *testing.T) {
	atLeast2Procs(t)
	c := newCache(t, Config{Mode: Exclusive})
	labels := [2]string{"writer-1", "writer-2"}
	errs := make(chan error, 2)
	ctx, cancel := context.WithTimeout(context.Background(), hammerBound)
	defer cancel()
	var done atomic.Bool
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			cc := c.WithLabel(labels[w])
			// Large values keep a write in progress for a while.
			val := bytes.Repeat([]byte{byte('a' + w)}, 64<<10)
			for i := 0; !done.Load() && ctx.Err() == nil; i++ {
				key := []byte(fmt.Sprintf("w%d-%d", w, i%64))
				if err := cc.Set(key, val); err != nil {
					errs <- err
					done.Store(true)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	var got []error
	for err := range errs {
		got = append(got, err)
	}
	if len(got) == 0 {
		t.Fatalf("no collision detected in %v of two goroutines writing at once", hammerBound)
	}
	for _, err := range got {
		if !errors.Is(err, ErrConcurrentWrite) {
			t.Fatalf("collision error = %v, want ErrConcurrentWrite", err)
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("not an *Error: %#v", err)
		}
		pair := map[string]bool{e.Holder: true, e.Collider: true}
		if e.Holder == e.Collider || !pair[labels[0]] || !pair[labels[1]] {
			t.Fatalf("error does not name both labels: holder %q collider %q (%v)", e.Holder, e.Collider, err)
		}
		if !strings.Contains(err.Error(), labels[0]) || !strings.Contains(err.Error(), labels[1]) {
			t.Fatalf("message does not name both labels: %v", err)
		}
		t.Logf("detected: %v", err)
	}
	// The map is intact: every stored value is one of the two written whole.
	err := c.Range(func(k, v []byte) bool {
		if len(v) != 64<<10 || (v[0] != 'a' && v[0] != 'b') || bytes.Count(v, v[:1]) != len(v) {
			t.Errorf("torn value under %q", k)
			return false
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	// One writer at a time is fine in exclusive mode.
	for i := 0; i < 100; i++ {
		if err := c.WithLabel("solo").Set([]byte("solo"), []byte{byte(i)}); err != nil {
			t.Fatalf("sequential write after the collision: %v", err)
		}
	}
}

// A read overlapping a write in exclusive mode is reported, with both labels.
func TestExclusiveConcurrentReadWrite(t *testing.T) {
	atLeast2Procs(t)
	c := newCache(t, Config{Mode: Exclusive})
	val := bytes.Repeat([]byte("w"), 256<<10)
	if err := c.Set([]byte("k"), val); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), hammerBound)
	defer cancel()
	var done atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		w := c.WithLabel("the-writer")
		for i := 0; !done.Load() && ctx.Err() == nil; i++ {
			// Writer errors (a read seen as overlapping) are not the subject.
			_ = w.Set([]byte(fmt.Sprint("k", i%16)), val)
		}
	}()
	r := c.WithLabel("the-reader")
	var got error
	for ctx.Err() == nil && got == nil {
		for i := 0; i < 16; i++ {
			if _, _, err := r.Lookup([]byte(fmt.Sprint("k", i))); err != nil {
				got = err
				break
			}
		}
	}
	done.Store(true)
	wg.Wait()
	if got == nil {
		t.Fatalf("no read/write overlap detected in %v", hammerBound)
	}
	if !errors.Is(got, ErrConcurrentReadWrite) {
		t.Fatalf("read error = %v, want ErrConcurrentReadWrite", got)
	}
	var e *Error
	if !errors.As(got, &e) || e.Collider != "the-reader" || e.Holder != "the-writer" {
		t.Fatalf("read error does not name reader and writer: %#v", got)
	}
	// Get has no error result: the overlap reads as a miss. Documented.
	t.Logf("detected: %v", got)
}

// The plain Go map this package replaces: two goroutines writing at once kill
// the process with "fatal error: concurrent map writes". Run in a child
// process.
func TestGoMapConcurrentWritesDie(t *testing.T) {
	if os.Getenv("MAPCACHE_GOMAP_CHILD") == "1" {
		runtime.GOMAXPROCS(2)
		m := map[int]int{}
		for w := 0; w < 2; w++ {
			go func() {
				for i := 0; ; i++ {
					m[i%1024] = i
				}
			}()
		}
		time.Sleep(60 * time.Second)
		fmt.Println("the Go map survived concurrent writes")
		os.Exit(0)
	}
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestGoMapConcurrentWritesDie$", "-test.count=1")
	cmd.Env = append(os.Environ(), "MAPCACHE_GOMAP_CHILD=1", "GORACE=halt_on_error=0 log_path=/dev/null")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the child with a plain Go map exited cleanly:\n%s", out)
	}
	if !strings.Contains(string(out), "fatal error: concurrent map writes") {
		t.Fatalf("child died without the Go map's fatal error (%v):\n%.2000s", err, out)
	}
	t.Logf("plain Go map: %v, output starts %q", err, firstLine(string(out), "fatal error"))
}

func firstLine(s, prefix string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}
