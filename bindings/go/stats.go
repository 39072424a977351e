//go:build cgo

package mapcache

import "time"

// Stats is a snapshot of a cache's counters, from Cache.Stats. The counters
// are always on and count from the cache's creation (Clear does not reset
// them). Taken while other goroutines use the cache, a snapshot is the sum of
// counters read one after another, not one instant's picture; on a quiescent
// cache they add up exactly:
//
//	Hits + Misses == Lookups()
//	Inserts - Evictions - Expirations - Deletes == Entries
type Stats struct {
	// Hits counts lookups that found a live entry, Misses those that found
	// none or an expired one. A lookup is a Get, GetString, Lookup or
	// AppendGet, each key of a GetMany, the reading step of GetOrSet (and so
	// of Swap, which starts with one), and the first lookup of each GetOrLoad
	// (plus a second one, a hit, when it reads a long value: see GetOrLoad).
	// Contains, iteration and CompareAndSwap are not lookups.
	Hits, Misses uint64
	// Inserts counts new keys stored (by any write, loads included), Updates
	// values of present keys replaced (successful CompareAndSwap included).
	Inserts, Updates uint64
	// Deletes counts entries removed by Delete, DeleteMany and Clear.
	Deletes uint64
	// Evictions counts entries the eviction policy removed to keep the cache
	// within MaxEntries and MaxBytes. Rejections, a part of them, counts new
	// entries the policy refused to keep in favour of the ones they would have
	// displaced. The policy judges a new key when later new keys push it out
	// of its admission window, so when Rejections rises during a Set, the
	// refused key is as a rule an earlier new key, not the one that Set
	// wrote (see Set for the exception, an entry heavier than the window).
	Evictions, Rejections uint64
	// Expirations counts entries removed because their time to live ran out
	// (when a call found them, by the eviction sweep, or replaced by a write).
	Expirations uint64
	// LoadSuccesses and LoadFailures count the loads GetOrLoad ran (one per
	// load, however many callers waited for it); a loader that returned an
	// error or panicked is a failure.
	LoadSuccesses, LoadFailures uint64
	// LoadTime is the time GetOrLoad's load functions ran, summed over all
	// loads: each load is timed from the call of load to its return (or its
	// panic or runtime.Goexit), on the goroutine it runs on. It leaves out
	// what a load costs around that: the cgo callback from the library, the
	// hand-off to load's goroutine and back, and the store of the value
	// (together about 5 to 15 µs a load; see GetOrLoad's Cost), so
	// LoadTime/(LoadSuccesses+LoadFailures) is the loaders' own mean latency.
	// (The library's load_time_ns, in the C API, times its C loader callback
	// instead, and so counts that hand-off too; the binding reports its own
	// timing.) Several loads may run at once, each on its own goroutine, so
	// LoadTime may exceed the wall time that passed.
	LoadTime time.Duration
	// Grows counts table doublings.
	Grows uint64
	// Entries is the number of entries held, expired ones not yet removed
	// included (as Len); Bytes is what they are charged against MaxBytes.
	Entries, Bytes int
	// Misuses counts the Exclusive-mode violations detected
	// (ErrConcurrentWrite, ErrConcurrentReadWrite).
	Misuses uint64
}

// Lookups returns Hits + Misses.
func (s Stats) Lookups() uint64 { return s.Hits + s.Misses }

// HitRatio returns Hits / Lookups(), or 0 before the first lookup.
func (s Stats) HitRatio() float64 {
	n := s.Lookups()
	if n == 0 {
		return 0
	}
	return float64(s.Hits) / float64(n)
}

// Stats returns a snapshot of the cache's counters. It has no error result:
// a closed cache reports the zero Stats. Reading them is cheap (the library
// sums a few counters per shard) and, in Exclusive mode, is not a read of the
// map: it may run during another goroutine's write.
func (c *Cache) Stats() Stats {
	co := c.core()
	if !co.acquire() {
		return Stats{}
	}
	s, r := cStats(co.h)
	// The binding's own timing of the loaders replaces the library's, which
	// times the C loader callback: for a Go loader, mostly the binding's
	// hand-off (see Stats.LoadTime).
	s.LoadTime = time.Duration(co.loadTime.Load())
	co.release()
	if r.st != stOK {
		return Stats{}
	}
	return s
}
