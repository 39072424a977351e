//go:build cgo

package mapcache

import (
	"errors"
	"iter"
)

// Iteration copies entries out in batches (one cgo call per batch of up to
// iterMaxEntries entries), into a fresh buffer per batch: the key and value
// slices handed to the callback are the caller's to keep.
const (
	iterBufSize    = 16 << 10
	iterMaxEntries = 512
)

// Range calls fn for each entry until fn returns false. It is weakly
// consistent: an entry present for the whole iteration is seen exactly once,
// no key twice; entries written during the iteration may or may not be seen.
// fn may call any method of the cache, including writes and Close: after
// Close, fn is not called again and Range returns ErrClosed (or nil, if the
// fn that closed the cache also returned false to stop).
//
// Entries are copied out up to 512 (16 KiB) per library call, and fn runs
// between calls. The library reads the map one bucket chain at a time (a
// step); in Exclusive mode it checks for another goroutine's write before and
// after each step, as Get does before and after its lookup. If a write holds
// the flag at a check, Range stops and returns ErrConcurrentReadWrite, and
// the entries that library call fetched are not handed to fn. A write made
// and finished between two checks, in particular while fn runs, is not seen
// (see "What Exclusive mode detects" in the package doc). fn's own writes
// never count: they do not overlap a step.
func (c *Cache) Range(fn func(key, value []byte) bool) error {
	return c.rangeAs("Range", fn)
}

// rangeAs is Range, its errors' Op op: the method the caller called (Range,
// All, Keys).
func (c *Cache) rangeAs(op string, fn func(key, value []byte) bool) error {
	co := c.core()
	if !co.acquire() {
		return closedErr(op)
	}
	defer co.release()
	lbl := labelPtr(c.label)
	r := cIterOpen(co.h, lbl)
	if r.st != stOK {
		return newError(op, r.st, r.msg)
	}
	it := r.p
	defer cIterClose(it)
	lens := make([]sizeT, 2*iterMaxEntries)
	size := iterBufSize
	for {
		if co.state.Load()&closedBit != 0 {
			return closedErr(op)
		}
		buf := make([]byte, size)
		r := cIterFill(it, lbl, buf, lens)
		size = iterBufSize
		switch r.st {
		case stOK:
		case stBufferTooSmall:
			size = r.n // one entry larger than the buffer: fetch it alone
			continue
		default:
			return newError(op, r.st, r.msg)
		}
		off := 0
		for i := 0; i < r.n; i++ {
			kl, vl := int(lens[2*i]), int(lens[2*i+1])
			k := buf[off : off+kl : off+kl]
			v := buf[off+kl : off+kl+vl : off+kl+vl]
			off += kl + vl
			if !fn(k, v) {
				return nil
			}
			// fn (or another goroutine) may have closed the cache: stop
			// here, with ErrClosed, rather than hand fn the rest of this
			// batch or end as if the iteration had completed.
			if co.state.Load()&closedBit != 0 {
				return closedErr(op)
			}
		}
		if r.flag {
			return nil
		}
	}
}

// All returns an iterator over the entries, for `for k, v := range c.All()`:
// Range without an error result. It ends early, silently, when the cache is
// closed (before or during the loop). On any other error it panics with that
// error (an *Error whose Op is "All"; recover it and test it with errors.Is): in Exclusive
// mode, ErrConcurrentReadWrite when a step overlaps another goroutine's
// write, where Go's own map stops the program with "concurrent map iteration
// and map write". Ending the loop silently instead would hand back fewer
// entries than the cache holds, as if that were all of them. Use Range to get
// errors as values.
func (c *Cache) All() iter.Seq2[[]byte, []byte] {
	return func(yield func([]byte, []byte) bool) {
		panicUnlessClosed(c.rangeAs("All", yield))
	}
}

// Keys returns an iterator over the keys; it ends and panics as All does
// (the error's Op is "Keys").
func (c *Cache) Keys() iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		panicUnlessClosed(c.rangeAs("Keys", func(k, _ []byte) bool { return yield(k) }))
	}
}

// panicUnlessClosed is how All and Keys, which have no error result, report
// an iteration that failed for a reason other than a closed cache.
func panicUnlessClosed(err error) {
	if err != nil && !errors.Is(err, ErrClosed) {
		panic(err)
	}
}
