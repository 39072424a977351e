package mapcache

import (
	"errors"
	"strings"
	"sync"
	"syscall"
	"testing"
)

func TestErrClosedEverywhere(t *testing.T) {
	c, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	c.SetString("k", "v")
	view := c.WithLabel("v1")
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil { // twice is fine
		t.Fatalf("second Close: %v", err)
	}
	if err := view.Close(); err != nil {
		t.Fatalf("Close on a view of a closed cache: %v", err)
	}
	k, v := []byte("k"), []byte("v")
	check := func(name string, err error) {
		t.Helper()
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: err = %v, want ErrClosed", name, err)
		}
	}
	for _, cc := range []*Cache{c, view} {
		if v, ok := cc.Get(k); ok || v != nil {
			t.Errorf("Get after Close = %q, %v", v, ok)
		}
		if s, ok := cc.GetString("k"); ok || s != "" {
			t.Errorf("GetString after Close = %q, %v", s, ok)
		}
		_, _, err := cc.Lookup(k)
		check("Lookup", err)
		_, _, err = cc.AppendGet(nil, k)
		check("AppendGet", err)
		check("Set", cc.Set(k, v))
		check("SetString", cc.SetString("k", "v"))
		_, _, err = cc.Swap(k, v)
		check("Swap", err)
		_, err = cc.Delete(k)
		check("Delete", err)
		_, err = cc.Contains(k)
		check("Contains", err)
		if n := cc.Len(); n != 0 {
			t.Errorf("Len after Close = %d", n)
		}
		_, err = cc.LenErr()
		check("LenErr", err)
		check("Clear", cc.Clear())
		_, _, err = cc.GetOrSet(k, v)
		check("GetOrSet", err)
		_, err = cc.CompareAndSwap(k, v, v)
		check("CompareAndSwap", err)
		_, err = cc.GetMany([][]byte{k})
		check("GetMany", err)
		check("SetMany", cc.SetMany([][]byte{k}, [][]byte{v}))
		_, err = cc.DeleteMany([][]byte{k})
		check("DeleteMany", err)
		// Empty batches too: the closed cache is the error, not the batch.
		_, err = cc.GetMany(nil)
		check("GetMany(nil)", err)
		check("SetMany(nil, nil)", cc.SetMany(nil, nil))
		check("SetMany of unequal lengths", cc.SetMany([][]byte{k}, nil))
		_, err = cc.DeleteMany(nil)
		check("DeleteMany(nil)", err)
		check("Range", cc.Range(func(_, _ []byte) bool { return true }))
		for range cc.All() {
			t.Error("All yielded after Close")
		}
	}
	var e *Error
	if err := c.Set(k, v); !errors.As(err, &e) || e.Op != "Set" || !strings.Contains(err.Error(), "closed") {
		t.Errorf("closed error = %#v", err)
	}
}

// Close while other goroutines are mid-call: no crash, and every failure is
// ErrClosed.
func TestCloseWhileInUse(t *testing.T) {
	for round := 0; round < 5; round++ {
		c, err := New(Config{})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 200; i++ {
			c.SetString(string(rune('a'+i%26))+string(rune(i)), "value")
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				<-start
				k := []byte{byte(g)}
				for i := 0; i < 2000; i++ {
					var err error
					switch i % 4 {
					case 0:
						err = c.Set(k, k)
					case 1:
						_, _, err = c.Lookup(k)
					case 2:
						_, err = c.GetMany([][]byte{k, k})
					case 3:
						err = c.Range(func(_, _ []byte) bool { return true })
					}
					if err != nil && !errors.Is(err, ErrClosed) {
						t.Errorf("unexpected error: %v", err)
						return
					}
				}
			}(g)
		}
		close(start)
		c.Close()
		wg.Wait()
		if err := c.Set([]byte("x"), nil); !errors.Is(err, ErrClosed) {
			t.Fatalf("Set after Close = %v", err)
		}
	}
}

func TestCloseInsideRange(t *testing.T) {
	c, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2000; i++ {
		c.SetString(strings.Repeat("k", 1+i%50)+string(rune(i)), strings.Repeat("v", 40))
	}
	n := 0
	err = c.Range(func(k, v []byte) bool {
		n++
		if n == 1 {
			c.Close()
		}
		return true
	})
	if !errors.Is(err, ErrClosed) {
		t.Fatalf("Range after Close inside it = %v (saw %d)", err, n)
	}
	if n >= 2000 {
		t.Fatalf("Range went on to the end (%d) after Close", n)
	}
}

// A Close inside the callback of a Range whose entries all came in one batch
// (the library's iterator already done): Range returned nil, as if it had
// completed, and went on calling fn for the rest of the batch.
func TestCloseInsideRangeOfOneBatch(t *testing.T) {
	c, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "b", "c"} {
		c.SetString(k, "v")
	}
	n := 0
	err = c.Range(func(k, v []byte) bool {
		n++
		c.Close()
		return true
	})
	if !errors.Is(err, ErrClosed) || n != 1 {
		t.Fatalf("Range with Close in its first call = %v after %d calls; want ErrClosed after 1", err, n)
	}
}

func TestErrKeyTooLong(t *testing.T) {
	c := newCache(t, Config{})
	long := make([]byte, MaxKeyLen+1)
	err := c.Set(long, []byte("v"))
	if !errors.Is(err, ErrKeyTooLong) {
		t.Fatalf("Set(long key) = %v", err)
	}
	var e *Error
	if !errors.As(err, &e) || e.Status != stKeyTooLong || e.Message == "" || e.Op != "Set" {
		t.Fatalf("error detail = %#v", err)
	}
	if _, _, err := c.Lookup(long); !errors.Is(err, ErrKeyTooLong) {
		t.Fatalf("Lookup(long key) = %v", err)
	}
	if err := c.Set(long[:MaxKeyLen], []byte("v")); err != nil {
		t.Fatalf("Set(max key) = %v", err)
	}
	// One bad key in a read batch: the others are still looked up.
	if err := c.Set([]byte("ok1"), []byte("a")); err != nil {
		t.Fatal(err)
	}
	vals, err := c.GetMany([][]byte{[]byte("ok1"), long})
	if !errors.Is(err, ErrKeyTooLong) || string(vals[0]) != "a" || vals[1] != nil {
		t.Fatalf("GetMany with a long key = %q, %v", vals, err)
	}
	if _, err := c.DeleteMany([][]byte{long}); !errors.Is(err, ErrKeyTooLong) {
		t.Fatalf("DeleteMany with a long key = %v", err)
	}
}

// A value one byte over the limit, backed by reserved address space that is
// never touched (the library must check the length first).
func TestErrValueTooLong(t *testing.T) {
	c := newCache(t, Config{})
	mem, err := syscall.Mmap(-1, 0, MaxValueLen+1, syscall.PROT_READ, syscall.MAP_PRIVATE|syscall.MAP_ANON|syscall.MAP_NORESERVE)
	if err != nil {
		t.Skipf("cannot reserve 1 GiB of address space: %v", err)
	}
	defer syscall.Munmap(mem)
	if err := c.Set([]byte("k"), mem); !errors.Is(err, ErrValueTooLong) {
		t.Fatalf("Set(1 GiB + 1) = %v", err)
	}
	if c.Len() != 0 {
		t.Fatal("the too-long value was stored")
	}
}

// SetMany checks every length before it copies anything: one key or value
// over its limit fails the whole batch with the error Set gives for it, and
// nothing is stored (a value over 1 GiB used to be packed first, then
// rejected by the library while the rest of the batch was stored).
func TestSetManyChecksLengthsFirst(t *testing.T) {
	c := newCache(t, Config{})
	keys := [][]byte{[]byte("ok1"), make([]byte, MaxKeyLen+1), []byte("ok2")}
	vals := [][]byte{[]byte("a"), []byte("b"), []byte("c")}
	setErr := c.Set(keys[1], vals[1])
	checkRejected := func(what string, err error, sentinel error, status int32) {
		t.Helper()
		var e *Error
		if !errors.Is(err, sentinel) || !errors.As(err, &e) || e.Op != "SetMany" || e.Status != status || e.Message == "" {
			t.Fatalf("SetMany with %s = %#v, want a *Error for %v", what, err, sentinel)
		}
		var be *BatchError
		if errors.As(err, &be) {
			t.Fatalf("SetMany with %s = %v: a *BatchError, as if some keys were stored", what, err)
		}
		if n := c.Len(); n != 0 {
			t.Fatalf("SetMany with %s stored %d entries, want none", what, n)
		}
	}
	if !errors.Is(setErr, ErrKeyTooLong) {
		t.Fatalf("Set(long key) = %v", setErr)
	}
	checkRejected("a long key", c.SetMany(keys, vals), ErrKeyTooLong, stKeyTooLong)

	mem, err := syscall.Mmap(-1, 0, MaxValueLen+1, syscall.PROT_READ, syscall.MAP_PRIVATE|syscall.MAP_ANON|syscall.MAP_NORESERVE)
	if err != nil {
		t.Skipf("cannot reserve 1 GiB of address space: %v", err)
	}
	defer syscall.Munmap(mem)
	keys[1] = []byte("k")
	vals[1] = mem
	if err := c.Set(keys[1], vals[1]); !errors.Is(err, ErrValueTooLong) {
		t.Fatalf("Set(1 GiB + 1) = %v", err)
	}
	checkRejected("a long value", c.SetMany(keys, vals), ErrValueTooLong, stValueTooLong)

	// Limits themselves are fine.
	keys[1], vals[1] = make([]byte, MaxKeyLen), []byte("b")
	if err := c.SetMany(keys, vals); err != nil {
		t.Fatalf("SetMany at the key limit = %v", err)
	}
	if n := c.Len(); n != 3 {
		t.Fatalf("Len = %d after SetMany of 3", n)
	}
}

func TestErrInvalidConfig(t *testing.T) {
	for _, cfg := range []Config{{Shards: 3}, {Mode: 7}, {MisusePolicy: 9}, {RehashEngine: 9}} {
		c, err := New(cfg)
		if !errors.Is(err, ErrInvalidConfig) {
			if c != nil {
				c.Close()
			}
			t.Errorf("New(%+v) = %v, want ErrInvalidConfig", cfg, err)
			continue
		}
		var e *Error
		if !errors.As(err, &e) || e.Message == "" {
			t.Errorf("New(%+v): no message: %#v", cfg, err)
		}
	}
}

func TestErrInvalidArgument(t *testing.T) {
	c := newCache(t, Config{})
	err := c.SetMany([][]byte{[]byte("a"), []byte("b")}, [][]byte{[]byte("1")})
	if !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("SetMany(mismatched) = %v", err)
	}
	if c.Len() != 0 {
		t.Fatal("mismatched SetMany stored something")
	}
}

// The mapping from every status the library can return to its sentinel.
func TestStatusMapping(t *testing.T) {
	cases := map[int32]error{
		stInvalidArg:      ErrInvalidArgument,
		stBufferTooSmall:  ErrBufferTooSmall,
		stKeyTooLong:      ErrKeyTooLong,
		stValueTooLong:    ErrValueTooLong,
		stConcurrentWrite: ErrConcurrentWrite,
		stConcurrentRW:    ErrConcurrentReadWrite,
		stNoMemory:        ErrNoMemory,
		stInvalidHandle:   ErrInvalidHandle,
		stInvalidConfig:   ErrInvalidConfig,
		stInternal:        ErrInternal,
		stTooLarge:        ErrTooLarge,
		stLoader:          ErrLoader,
		stCorrupt:         ErrCorrupt,
		stIO:              ErrIO,
		stGPU:             ErrGPU,
		99:                ErrInternal,
	}
	for st, want := range cases {
		err := newError("Op", st, "msg")
		if !errors.Is(err, want) {
			t.Errorf("status %d -> %v, want %v", st, err, want)
		}
		for st2, other := range cases {
			if other != want && errors.Is(err, other) && st2 != 99 {
				t.Errorf("status %d also matches %v", st, other)
			}
		}
		if err.Error() != "mapcache: Op: msg" {
			t.Errorf("message %q", err.Error())
		}
	}
}

func TestParseMisuse(t *testing.T) {
	for _, tc := range []struct{ msg, holder, collider string }{
		{"concurrent map writes: 'writer-2' collided with a write in progress by 'writer-1'", "writer-1", "writer-2"},
		{"concurrent map read and map write: 'thread 42' collided with a write in progress by 'it's me'", "it's me", "thread 42"},
	} {
		h, c, ok := parseMisuse(tc.msg)
		if !ok || h != tc.holder || c != tc.collider {
			t.Errorf("parseMisuse(%q) = %q, %q, %v", tc.msg, h, c, ok)
		}
	}
	if _, _, ok := parseMisuse("something else"); ok {
		t.Error("parsed a non-misuse message")
	}
	// Holder "x' collided with a write in progress by 'y", collider "b", or
	// holder "y", collider "b' collided with a write in progress by 'x":
	// the message cannot say which.
	ambiguous := "concurrent map writes: 'b' collided with a write in progress by 'x' collided with a write in progress by 'y'"
	if h, c, ok := parseMisuse(ambiguous); ok {
		t.Errorf("parseMisuse(%q) = %q, %q: an ambiguous message gave labels", ambiguous, h, c)
	}
	e := newError("Set", stConcurrentWrite, "concurrent map writes: 'b' collided with a write in progress by 'a'")
	if e.Holder != "a" || e.Collider != "b" {
		t.Errorf("newError: holder %q collider %q", e.Holder, e.Collider)
	}
}

func TestBatchErrorUnwrap(t *testing.T) {
	be := &BatchError{Op: "SetMany", Errs: []error{nil, newError("SetMany", stKeyTooLong, ""), newError("SetMany", stKeyTooLong, ""), newError("SetMany", stValueTooLong, "")}, Failed: 3}
	if !errors.Is(be, ErrKeyTooLong) || !errors.Is(be, ErrValueTooLong) || errors.Is(be, ErrClosed) {
		t.Fatal("BatchError does not unwrap to its per-key sentinels")
	}
	if len(be.Unwrap()) != 2 {
		t.Fatalf("Unwrap = %v", be.Unwrap())
	}
	if !strings.Contains(be.Error(), "3 of 4") {
		t.Fatalf("Error() = %q", be.Error())
	}
}

// SetMany's length check runs in index order, each key before its value: a
// too-long value at index 0 is reported before a too-long key at index 1 (the
// check used to look at every key first, then at every value, and named
// keys[1]).
func TestSetManyNamesFirstBadIndex(t *testing.T) {
	c := newCache(t, Config{})
	mem, err := syscall.Mmap(-1, 0, MaxValueLen+1, syscall.PROT_READ, syscall.MAP_PRIVATE|syscall.MAP_ANON|syscall.MAP_NORESERVE)
	if err != nil {
		t.Skipf("cannot reserve 1 GiB of address space: %v", err)
	}
	defer syscall.Munmap(mem)
	longKey := make([]byte, MaxKeyLen+1)
	check := func(keys, vals [][]byte, sentinel error, status int32, names string) {
		t.Helper()
		err := c.SetMany(keys, vals)
		var e *Error
		if !errors.As(err, &e) || !errors.Is(err, sentinel) || e.Status != status || !strings.Contains(e.Message, names+" is ") {
			t.Fatalf("SetMany = %v, want %v naming %s", err, sentinel, names)
		}
		if n := c.Len(); n != 0 {
			t.Fatalf("SetMany stored %d entries, want none", n)
		}
	}
	// A bad value before a bad key.
	check([][]byte{[]byte("a"), longKey}, [][]byte{mem, nil}, ErrValueTooLong, stValueTooLong, "values[0]")
	// A bad key before a bad value.
	check([][]byte{[]byte("a"), longKey, []byte("c")}, [][]byte{nil, nil, mem}, ErrKeyTooLong, stKeyTooLong, "keys[1]")
	// Key and value of the same index: the key is named.
	check([][]byte{[]byte("a"), longKey}, [][]byte{nil, mem}, ErrKeyTooLong, stKeyTooLong, "keys[1]")
}

// DeleteMany has no up-front check: an over-long key fails on its own (a
// *BatchError with ErrKeyTooLong at its index) and the other keys are still
// deleted and counted.
func TestDeleteManyLongKeyIsPerKey(t *testing.T) {
	c := newCache(t, Config{})
	for _, k := range []string{"a", "b", "c"} {
		if err := c.SetString(k, "v"); err != nil {
			t.Fatal(err)
		}
	}
	long := make([]byte, MaxKeyLen+1)
	n, err := c.DeleteMany([][]byte{[]byte("a"), long, []byte("absent"), []byte("c")})
	var be *BatchError
	if !errors.As(err, &be) || !errors.Is(err, ErrKeyTooLong) || be.Failed != 1 || len(be.Errs) != 4 {
		t.Fatalf("DeleteMany with a long key = %d, %#v; want a *BatchError for key 1", n, err)
	}
	if be.Errs[0] != nil || !errors.Is(be.Errs[1], ErrKeyTooLong) || be.Errs[2] != nil || be.Errs[3] != nil {
		t.Fatalf("DeleteMany's per-key errors = %v", be.Errs)
	}
	if n != 2 {
		t.Fatalf("DeleteMany deleted %d, want 2 (a and c)", n)
	}
	for k, want := range map[string]bool{"a": false, "b": true, "c": false} {
		if _, ok := c.GetString(k); ok != want {
			t.Fatalf("after DeleteMany, %q present = %v, want %v", k, ok, want)
		}
	}
}
