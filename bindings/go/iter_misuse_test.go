package mapcache

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// Exclusive mode checks iteration and Len for an overlapping write, as it
// checks Get: a deterministic test, with another goroutine holding the write
// flag through the library's debug hook for the whole of each read.
//
// Before the core checked the flag around each iteration step
// (mapcache_iter_next) and in mapcache_len, Range, All, Keys and Len ran
// through a write unreported: Range returned nil.

// fillForIteration stores n entries, enough for several iteration batches.
func fillForIteration(t *testing.T, c *Cache, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if err := c.SetString(fmt.Sprintf("key-%05d", i), "value"); err != nil {
			t.Fatal(err)
		}
	}
}

// holdWrite makes a view labelled "holder" hold the write flag until the test
// ends or the returned function is called.
func holdWrite(t *testing.T, c *Cache) (release func()) {
	t.Helper()
	rel, err := c.WithLabel("holder").debugHoldWrite([]byte("any"))
	if err != nil {
		t.Fatalf("hold: %v", err)
	}
	done := false
	release = func() {
		if !done {
			done = true
			if err := rel(); err != nil {
				t.Errorf("hold: %v", err)
			}
		}
	}
	t.Cleanup(release)
	return release
}

// wantReadMisuse checks that err is the report of a read ("reader")
// overlapping the holder's write.
func wantReadMisuse(t *testing.T, what string, err error) {
	t.Helper()
	var e *Error
	if !errors.Is(err, ErrConcurrentReadWrite) || !errors.As(err, &e) {
		t.Fatalf("%s during a write = %v, want ErrConcurrentReadWrite", what, err)
	}
	// The error names the method called ("All (panic value)": All).
	if op, _, _ := strings.Cut(what, " "); e.Op != op {
		t.Fatalf("%s: Op %q, want %q: %v", what, e.Op, op, err)
	}
	if e.Holder != "holder" || e.Collider != "reader" {
		t.Fatalf("%s: holder %q, collider %q, want holder, reader: %v", what, e.Holder, e.Collider, err)
	}
}

// recoverMisuse runs loop and returns the value it panicked with (nil if it
// did not panic).
func recoverMisuse(loop func()) (p any) {
	defer func() { p = recover() }()
	loop()
	return nil
}

func TestExclusiveIterationDuringWrite(t *testing.T) {
	const n = 2000
	c := newCache(t, Config{Mode: Exclusive})
	fillForIteration(t, c, n)
	reader := c.WithLabel("reader")
	release := holdWrite(t, c)

	seen := 0
	err := reader.Range(func(_, _ []byte) bool { seen++; return true })
	wantReadMisuse(t, "Range", err)
	if seen != 0 {
		t.Fatalf("Range yielded %d entries during a write before it failed", seen)
	}

	_, err = reader.LenErr()
	wantReadMisuse(t, "LenErr", err)
	if l := reader.Len(); l != 0 {
		t.Fatalf("Len during a write = %d, want 0 (Len reports errors as 0)", l)
	}

	// All and Keys have no error result: a detected misuse panics with the
	// error, as Go's own map stops the program on "concurrent map iteration
	// and map write".
	p := recoverMisuse(func() {
		for range reader.All() {
			t.Fatal("All yielded during a write")
		}
	})
	perr, _ := p.(error)
	wantReadMisuse(t, "All (panic value)", perr)
	p = recoverMisuse(func() {
		for range reader.Keys() {
			t.Fatal("Keys yielded during a write")
		}
	})
	perr, _ = p.(error)
	wantReadMisuse(t, "Keys (panic value)", perr)

	// Once the write is over, everything reads normally.
	release()
	seen = 0
	if err := reader.Range(func(_, _ []byte) bool { seen++; return true }); err != nil || seen != n {
		t.Fatalf("Range after the write = %v, saw %d of %d", err, seen, n)
	}
	if l, err := reader.LenErr(); err != nil || l != n {
		t.Fatalf("LenErr after the write = %d, %v", l, err)
	}
	seen = 0
	for range reader.Keys() {
		seen++
	}
	if seen != n {
		t.Fatalf("Keys after the write saw %d of %d", seen, n)
	}
}

// A write that begins in the middle of an iteration is caught by the next
// step: the hold starts from inside the callback, while the first batch is
// being handed out, and the library call that fetches the next batch fails.
func TestExclusiveIterationStepAfterWriteBegins(t *testing.T) {
	const n = 3 * iterMaxEntries
	c := newCache(t, Config{Mode: Exclusive})
	fillForIteration(t, c, n)
	reader := c.WithLabel("reader")

	seen := 0
	err := reader.Range(func(_, _ []byte) bool {
		seen++
		if seen == 1 {
			holdWrite(t, c)
		}
		return true
	})
	wantReadMisuse(t, "Range step after a write began", err)
	if seen < 1 || seen >= n {
		t.Fatalf("Range saw %d of %d entries before failing", seen, n)
	}
}

// The contract forbids other goroutines' writes, not the iterating
// goroutine's own: writes from inside the loop do not overlap a step (they
// run between library calls), so they are never reported.
func TestExclusiveIterationOwnWrites(t *testing.T) {
	const n = 2000
	c := newCache(t, Config{Mode: Exclusive})
	fillForIteration(t, c, n)
	seen := 0
	for k := range c.Keys() {
		if strings.HasPrefix(string(k), "other-") {
			continue // written by this loop
		}
		seen++
		if _, err := c.Delete(k); err != nil {
			t.Fatalf("Delete from inside Keys: %v", err)
		}
		if err := c.SetString("other-"+string(k), "v"); err != nil {
			t.Fatalf("Set from inside Keys: %v", err)
		}
	}
	if seen != n {
		t.Fatalf("Keys saw %d of the %d keys present throughout", seen, n)
	}
	if _, err := c.LenErr(); err != nil {
		t.Fatal(err)
	}
}
