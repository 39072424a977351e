//go:build cgo

package mapcache

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// Batch calls pack every key (and value) back to back into one []byte with a
// parallel length array, so that the whole batch is one cgo call and no memory
// handed to C contains a Go pointer.

type scratch struct {
	keys  []byte
	vals  []byte
	klens []sizeT
	vlens []sizeT
	sts   []int32
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// maxPooled keeps huge one-off batches from pinning memory in the pool.
const maxPooled = 1 << 20

func getScratch() *scratch { return scratchPool.Get().(*scratch) }

func putScratch(s *scratch) {
	if cap(s.keys) > maxPooled || cap(s.vals) > maxPooled || cap(s.klens) > maxPooled/8 {
		return
	}
	scratchPool.Put(s)
}

func packInto(buf []byte, lens []sizeT, items [][]byte) ([]byte, []sizeT) {
	buf = buf[:0]
	lens = lens[:0]
	for _, it := range items {
		buf = append(buf, it...)
		lens = append(lens, sizeT(len(it)))
	}
	return buf, lens
}

func sized[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// batchHint is the value buffer GetMany allocates per key before it knows the
// sizes; it grows when a batch needed a second call.
var batchHint atomic.Int64

func init() { batchHint.Store(48) }

// GetMany looks up many keys in one cgo call. values[i] is a copy of the value
// of keys[i], or nil if the key is absent (a stored empty value is a non-nil
// empty slice). The values of one call share one backing array. If some keys
// failed (Exclusive-mode misuse, an over-long key) the others are still
// returned and err is a *BatchError; errors.Is works on it.
func (c *Cache) GetMany(keys [][]byte) (values [][]byte, err error) {
	values = make([][]byte, len(keys))
	err = c.getMany("GetMany", keys, values)
	return values, err
}

func (c *Cache) getMany(op string, keys [][]byte, out [][]byte) error {
	co := c.core()
	if !co.acquire() {
		return closedErr(op)
	}
	defer co.release()
	if len(keys) == 0 {
		return nil
	}
	s := getScratch()
	defer putScratch(s)
	lbl := labelPtr(c.label)

	n := len(keys)
	s.keys, s.klens = packInto(s.keys, s.klens, keys)
	s.vlens = sized(s.vlens, n)
	s.sts = sized(s.sts, n)
	hint := batchHint.Load()
	vals := make([]byte, int64(n)*hint)
	r := cGetMany(co.h, lbl, s.keys, s.klens, vals, s.vlens, s.sts)
	if r.st != stOK {
		return newError(op, r.st, r.msg)
	}
	var berr *BatchError
	var retry []int
	need, off := 0, 0
	for i := 0; i < n; i++ {
		switch st := s.sts[i]; st {
		case stOK:
			l := int(s.vlens[i])
			out[i] = vals[off : off+l : off+l]
			off += l
		case stNotFound:
			out[i] = nil
		case stBufferTooSmall:
			retry = append(retry, i)
			need += int(s.vlens[i])
		default:
			berr = addBatchErr(berr, op, n, i, newError(op, st, takeMsg(&r.msg)))
		}
	}
	if len(retry) > 0 {
		if h := int64((off+need)/n + 8); h > hint && h <= 4096 {
			batchHint.CompareAndSwap(hint, h)
		}
		if err := c.getRetry(op, co, lbl, keys, out, retry, need, n, &berr); err != nil {
			return err
		}
	}
	if berr != nil {
		return berr
	}
	return nil
}

// getRetry fetches the values that did not fit, with an exactly sized buffer
// (repeating if they grew in between).
func (c *Cache) getRetry(op string, co *core, lbl *cChar, keys, out [][]byte, idx []int, need, total int, berr **BatchError) error {
	sub := make([][]byte, len(idx))
	for {
		for j, i := range idx {
			sub[j] = keys[i]
		}
		kb, kl := packInto(nil, nil, sub[:len(idx)])
		vlens := make([]sizeT, len(idx))
		sts := make([]int32, len(idx))
		vals := make([]byte, need)
		r := cGetMany(co.h, lbl, kb, kl, vals, vlens, sts)
		if r.st != stOK {
			return newError(op, r.st, r.msg)
		}
		var again []int
		need2, off := 0, 0
		for j, i := range idx {
			switch st := sts[j]; st {
			case stOK:
				l := int(vlens[j])
				out[i] = vals[off : off+l : off+l]
				off += l
			case stNotFound:
				out[i] = nil
			case stBufferTooSmall:
				again = append(again, i)
				need2 += int(vlens[j])
			default:
				*berr = addBatchErr(*berr, op, total, i, newError(op, st, takeMsg(&r.msg)))
			}
		}
		if len(again) == 0 {
			return nil
		}
		idx, need = again, need2
	}
}

// takeMsg hands the batch's message (the first failing key's) to the first
// error built from it.
func takeMsg(m *string) string {
	s := *m
	*m = ""
	return s
}

func addBatchErr(b *BatchError, op string, n, i int, err error) *BatchError {
	if b == nil {
		b = &BatchError{Op: op, Errs: make([]error, n)}
	}
	b.Errs[i] = err
	b.Failed++
	return b
}

// SetMany stores values[i] under keys[i] for every i, in one cgo call.
//
// It checks every length before it copies anything: if a key is longer than
// MaxKeyLen or a value longer than MaxValueLen, it returns the error Set
// would give for it (an *Error matching ErrKeyTooLong or ErrValueTooLong)
// and stores nothing. The pairs are checked in index order, keys[i] before
// values[i], and the error names the first bad one: with a too-long
// values[0] and a too-long keys[1] it is ErrValueTooLong for values[0].
// Keys that fail one by one once the batch runs (ErrConcurrentWrite in
// Exclusive mode, ErrNoMemory) are reported in a *BatchError; the others are
// stored. The batch is not atomic: other goroutines may see part of it.
func (c *Cache) SetMany(keys, values [][]byte) error {
	const op = "SetMany"
	co := c.core()
	if !co.acquire() {
		return closedErr(op)
	}
	defer co.release()
	if len(keys) != len(values) {
		return argError(op, "keys and values have different lengths")
	}
	if len(keys) == 0 {
		return nil
	}
	if err := checkLengths(op, keys, values); err != nil {
		return err
	}
	s := getScratch()
	defer putScratch(s)
	s.keys, s.klens = packInto(s.keys, s.klens, keys)
	s.vals, s.vlens = packInto(s.vals, s.vlens, values)
	s.sts = sized(s.sts, len(keys))
	r := cPutMany(co.h, labelPtr(c.label), s.keys, s.klens, s.vals, s.vlens, s.sts)
	if r.st != stOK {
		return newError(op, r.st, r.msg)
	}
	var berr *BatchError
	for i, st := range s.sts {
		if st != stOK {
			berr = addBatchErr(berr, op, len(keys), i, newError(op, st, takeMsg(&r.msg)))
		}
	}
	if berr != nil {
		return berr
	}
	return nil
}

// checkLengths fails a batch write whose keys or values exceed the library's
// limits before the batch is packed: packing copies every byte (over a
// gigabyte for one over-long value) only for the library to reject it. It
// checks the pairs in index order, each key before its value, so that the
// error names the first bad index.
func checkLengths(op string, keys, values [][]byte) error {
	for i, k := range keys {
		if len(k) > MaxKeyLen {
			return &Error{Op: op, Status: stKeyTooLong, sentinel: ErrKeyTooLong,
				Message: fmt.Sprintf("keys[%d] is %d bytes, longer than MaxKeyLen (%d); nothing was stored", i, len(k), MaxKeyLen)}
		}
		if v := values[i]; len(v) > MaxValueLen {
			return &Error{Op: op, Status: stValueTooLong, sentinel: ErrValueTooLong,
				Message: fmt.Sprintf("values[%d] is %d bytes, longer than MaxValueLen (%d); nothing was stored", i, len(v), MaxValueLen)}
		}
	}
	return nil
}

// DeleteMany removes keys in one cgo call and returns how many were present
// and removed.
//
// Unlike SetMany it has no check up front: each key is deleted on its own,
// and a key that fails (longer than MaxKeyLen: ErrKeyTooLong; or
// ErrConcurrentWrite in Exclusive mode) is reported at its index in a
// *BatchError while the other keys are still deleted and counted in deleted.
// So DeleteMany([][]byte{a, tooLong}) deletes a, returns 1 if it was present,
// and a *BatchError whose Errs[1] matches ErrKeyTooLong. The batch is not
// atomic: other goroutines may see part of it.
func (c *Cache) DeleteMany(keys [][]byte) (deleted int, err error) {
	const op = "DeleteMany"
	co := c.core()
	if !co.acquire() {
		return 0, closedErr(op)
	}
	defer co.release()
	if len(keys) == 0 {
		return 0, nil
	}
	s := getScratch()
	defer putScratch(s)
	s.keys, s.klens = packInto(s.keys, s.klens, keys)
	s.sts = sized(s.sts, len(keys))
	r := cDeleteMany(co.h, labelPtr(c.label), s.keys, s.klens, s.sts)
	if r.st != stOK {
		return 0, newError(op, r.st, r.msg)
	}
	var berr *BatchError
	for i, st := range s.sts {
		switch st {
		case stOK:
			deleted++
		case stNotFound:
		default:
			berr = addBatchErr(berr, op, len(keys), i, newError(op, st, takeMsg(&r.msg)))
		}
	}
	if berr != nil {
		return deleted, berr
	}
	return deleted, nil
}
