//go:build cgo

package mapcache

import (
	"fmt"
	"strings"
	"time"
)

// Time to live is kept by the library in whole milliseconds. A TTL is rounded
// up, never down, so that a short TTL cannot become 0 (which means "never
// expires"); the manual clock moves only by whole milliseconds, so that a test
// moves it exactly as far as it says.

// ttlMillis converts a non-negative TTL to milliseconds, rounding up.
func ttlMillis(d time.Duration) uint64 {
	ms := uint64(d / time.Millisecond)
	if d%time.Millisecond != 0 {
		ms++
	}
	return ms
}

// checkCacheConfig refuses the cache fields of cfg that are out of range
// before the library sees them (for op, New or Load) (they are unsigned there).
func checkCacheConfig(op string, cfg Config) error {
	bad := func(msg string) error {
		return &Error{Op: op, Status: stInvalidConfig, Message: msg, sentinel: ErrInvalidConfig}
	}
	switch {
	case cfg.MaxEntries < 0:
		return bad(fmt.Sprintf("MaxEntries %d is negative (0 = no bound)", cfg.MaxEntries))
	case cfg.MaxBytes < 0:
		return bad(fmt.Sprintf("MaxBytes %d is negative (0 = no bound)", cfg.MaxBytes))
	case cfg.DefaultTTL < 0:
		return bad(fmt.Sprintf("DefaultTTL %v is negative (0 = entries never expire)", cfg.DefaultTTL))
	case strings.IndexByte(cfg.GPUPlugin, 0) >= 0:
		// A C string ends at the first NUL: the library would load another file.
		return bad(fmt.Sprintf("GPUPlugin %q contains a NUL byte", cfg.GPUPlugin))
	}
	return nil
}

// SetWithTTL stores value under key, as Set does, with a time to live of its
// own instead of Config.DefaultTTL: the entry expires ttl after this call,
// after which no call returns it (Get, GetMany, Contains, iteration,
// GetOrSet, CompareAndSwap and Swap all treat it as absent) and the library
// reclaims it, counting it in Stats.Expirations. ttl is kept in whole
// milliseconds, rounded up. A ttl of 0 means the entry never expires, whatever
// the cache's DefaultTTL; a negative ttl is ErrInvalidArgument and stores
// nothing.
//
// Time is the system's monotonic clock, or with Config.ManualClock the cache's
// own clock, moved by AdvanceClock.
func (c *Cache) SetWithTTL(key, value []byte, ttl time.Duration) error {
	const op = "SetWithTTL"
	if ttl < 0 {
		return argError(op, fmt.Sprintf("ttl %v is negative (0 = never expires)", ttl))
	}
	co := c.core()
	if !co.acquire() {
		return closedErr(op)
	}
	r := cPutTTL(co.h, labelPtr(c.label), key, value, ttlMillis(ttl))
	co.release()
	if r.st != stOK {
		return newError(op, r.st, r.msg)
	}
	return nil
}

// AdvanceClock moves the clock of a cache made with Config.ManualClock
// forward by d, for every view of the cache: entries whose time to live has
// run out by the new time are expired from then on. The clock counts whole
// milliseconds, so d must be a non-negative multiple of time.Millisecond; any
// other d is ErrInvalidArgument and moves nothing. The clock stops at its end,
// 2^63-1 ns (about 292 years): a move past it moves it to the end, where an
// entry written with a TTL still lives (until the end). On a cache that uses
// the system clock (ManualClock false) it is ErrInvalidArgument too.
func (c *Cache) AdvanceClock(d time.Duration) error {
	const op = "AdvanceClock"
	if d < 0 || d%time.Millisecond != 0 {
		return argError(op, fmt.Sprintf("%v is not a non-negative whole number of milliseconds", d))
	}
	co := c.core()
	if !co.acquire() {
		return closedErr(op)
	}
	r := cClockAdvance(co.h, uint64(d/time.Millisecond))
	co.release()
	if r.st != stOK {
		return newError(op, r.st, r.msg)
	}
	return nil
}
