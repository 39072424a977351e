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
	// within MaxEntries and MaxBytes; Rejections, a part of them, counts new
	// entries the policy refused to keep in favour of the ones they would have
	// displaced.
	Evictions, Rejections uint64
	// Expirations counts entries removed because their time to live ran out
	// (when a call found them, by the eviction sweep, or replaced by a write).
	Expirations uint64
	// LoadSuccesses and LoadFailures count the loads GetOrLoad ran (one per
	// load, however many callers waited for it); a loader that returned an
	// error or panicked is a failure. LoadTime is the time spent in loaders,
	// summed over all loads.
	LoadSuccesses, LoadFailures uint64
	LoadTime                    time.Duration
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
	co.release()
	if r.st != stOK {
		return Stats{}
	}
	return s
}
