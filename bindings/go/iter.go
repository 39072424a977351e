package mapcache

import "iter"

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
// fn may call any method of the cache, including writes and Close (after
// which Range returns ErrClosed).
func (c *Cache) Range(fn func(key, value []byte) bool) error {
	const op = "Range"
	co := c.co
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
		}
		if r.flag {
			return nil
		}
	}
}

// All returns an iterator over the entries, for `for k, v := range c.All()`.
// It stops early, silently, on an error (such as ErrClosed); use Range to see
// errors.
func (c *Cache) All() iter.Seq2[[]byte, []byte] {
	return func(yield func([]byte, []byte) bool) {
		_ = c.Range(yield)
	}
}

// Keys returns an iterator over the keys.
func (c *Cache) Keys() iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		_ = c.Range(func(k, _ []byte) bool { return yield(k) })
	}
}
