package mapcache

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
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

// MisuseAbort: a detected collision aborts the process, as Go's runtime
// does, with the report (both labels) on stderr. Run in a child process.
func TestMisuseAbortPolicy(t *testing.T) {
	if os.Getenv("MAPCACHE_ABORT_CHILD") == "1" {
		c, err := New(Config{Mode: Exclusive, MisusePolicy: MisuseAbort})
		if err != nil {
			fmt.Println("New:", err)
			os.Exit(3)
		}
		if c.Mode() != Exclusive {
			os.Exit(4)
		}
		release, err := c.WithLabel("abort-holder").debugHoldWrite([]byte("a"))
		if err != nil {
			fmt.Println("hold:", err)
			os.Exit(5)
		}
		err = c.WithLabel("abort-collider").Set([]byte("b"), []byte("x"))
		fmt.Println("survived the collision:", err)
		release()
		os.Exit(0)
	}
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestMisuseAbortPolicy$", "-test.count=1")
	cmd.Env = append(os.Environ(), "MAPCACHE_ABORT_CHILD=1")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 || ee.ExitCode() == 3 || ee.ExitCode() == 4 || ee.ExitCode() == 5 {
		t.Fatalf("child with MisuseAbort: %v\n%s", err, out)
	}
	s := string(out)
	if !strings.Contains(s, "concurrent map writes") || !strings.Contains(s, "abort-holder") || !strings.Contains(s, "abort-collider") {
		t.Fatalf("abort report does not name both labels (%v):\n%.2000s", err, s)
	}
	t.Logf("MisuseAbort child: %v; %q", err, firstLine(s, "fatal error: concurrent map writes"))
}
