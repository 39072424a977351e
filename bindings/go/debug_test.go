package mapcache

import (
	"errors"
	"strings"
	"testing"
)

// Deterministic misuse tests: one view holds the write flag (through the
// library's debug hook) while others collide with it.
func TestExclusiveMisuseDeterministic(t *testing.T) {
	c := newCache(t, Config{Mode: Exclusive})
	if err := c.SetString("present", "v"); err != nil {
		t.Fatal(err)
	}
	release, err := c.WithLabel("holder").debugHoldWrite([]byte("a"))
	if err != nil {
		t.Fatal(err)
	}
	released := false
	defer func() {
		if !released {
			release()
		}
	}()
	col := c.WithLabel("collider")

	// sentinel nil: a read-then-write call (GetOrSet, CompareAndSwap) may be
	// caught on its read or on its write.
	misuse := func(name string, err error, sentinel error) {
		t.Helper()
		if sentinel == nil {
			if !errors.Is(err, ErrConcurrentWrite) && !errors.Is(err, ErrConcurrentReadWrite) {
				t.Fatalf("%s during a write = %v, want a misuse error", name, err)
			}
		} else if !errors.Is(err, sentinel) {
			t.Fatalf("%s during a write = %v, want %v", name, err, sentinel)
		}
		var e *Error
		if !errors.As(err, &e) || e.Holder != "holder" || e.Collider != "collider" {
			t.Fatalf("%s: holder %q collider %q: %v", name, e.Holder, e.Collider, err)
		}
	}
	misuse("Set", col.Set([]byte("b"), []byte("x")), ErrConcurrentWrite)
	_, err = col.Delete([]byte("present"))
	misuse("Delete", err, ErrConcurrentWrite)
	_, _, err = col.GetOrSet([]byte("b"), []byte("x"))
	misuse("GetOrSet", err, nil)
	_, err = col.CompareAndSwap([]byte("present"), []byte("v"), []byte("w"))
	misuse("CompareAndSwap", err, nil)
	misuse("Clear", col.Clear(), ErrConcurrentWrite)

	// Batch writes: every key (or the whole call) reports the collision.
	err = col.SetMany([][]byte{[]byte("b"), []byte("c")}, [][]byte{[]byte("1"), []byte("2")})
	if !errors.Is(err, ErrConcurrentWrite) {
		t.Fatalf("SetMany during a write = %v", err)
	}
	var be *BatchError
	if errors.As(err, &be) {
		var e *Error
		if !errors.As(be.Errs[0], &e) || e.Holder != "holder" || e.Collider != "collider" {
			t.Fatalf("SetMany key 0: %v", be.Errs[0])
		}
	}

	// Reads overlapping the write.
	_, _, err = col.Lookup([]byte("present"))
	misuse("Lookup", err, ErrConcurrentReadWrite)
	if v, ok := col.Get([]byte("present")); ok || v != nil {
		t.Fatalf("Get during a write = %q, %v; want a miss (Get reports errors as misses)", v, ok)
	}
	vals, err := col.GetMany([][]byte{[]byte("present")})
	if !errors.Is(err, ErrConcurrentReadWrite) || vals[0] != nil {
		t.Fatalf("GetMany during a write = %q, %v", vals, err)
	}

	// An unlabelled caller is named by its OS thread.
	err = c.Set([]byte("b"), []byte("x"))
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, ErrConcurrentWrite) || e.Holder != "holder" || !strings.HasPrefix(e.Collider, "thread ") {
		t.Fatalf("unlabelled Set during a write = %#v", err)
	}

	// A second holder cannot take the flag.
	if _, err := c.WithLabel("second").debugHoldWrite([]byte("z")); !errors.Is(err, ErrConcurrentWrite) {
		t.Fatalf("second hold = %v", err)
	}

	released = true
	if err := release(); err != nil {
		t.Fatalf("hold: %v", err)
	}
	// Nothing was changed by the failed calls; writes work again.
	if v, ok := c.GetString("present"); !ok || v != "v" {
		t.Fatalf("present = %q, %v after the collisions", v, ok)
	}
	if n := c.Len(); n != 1 {
		t.Fatalf("Len = %d after failed writes", n)
	}
	if err := col.Set([]byte("b"), []byte("x")); err != nil {
		t.Fatalf("Set after the write ended: %v", err)
	}
}

// The hook refuses a concurrent-mode cache with MAPCACHE_E_INVALID_ARG: the
// library's own invalid-argument path, surfaced as ErrInvalidArgument.
func TestErrInvalidArgumentFromLibrary(t *testing.T) {
	c := newCache(t, Config{})
	_, err := c.debugHoldWrite([]byte("k"))
	if !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("debug hold on a concurrent cache = %v, want ErrInvalidArgument", err)
	}
	var e *Error
	if !errors.As(err, &e) || e.Status != stInvalidArg || e.Message == "" {
		t.Fatalf("no library message: %#v", err)
	}
}

// A panic inside the library is caught at its boundary and surfaces as
// ErrInternal with the library's message; the process goes on.
func TestErrInternalFromLibrary(t *testing.T) {
	err := debugPanic("boom from the Go tests")
	if !errors.Is(err, ErrInternal) {
		t.Fatalf("debug panic = %v, want ErrInternal", err)
	}
	var e *Error
	if !errors.As(err, &e) || e.Status != stInternal || !strings.Contains(e.Message, "boom from the Go tests") {
		t.Fatalf("internal error detail = %#v", err)
	}
	// The library still works.
	c := newCache(t, Config{})
	if err := c.SetString("k", "v"); err != nil {
		t.Fatal(err)
	}
}
