//go:build cgo

package mapcache

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Every error this package returns matches one of them with
// errors.Is; the concrete type is *Error, or *BatchError for batch calls,
// *LoadError for a failed GetOrLoad loader, *CorruptError and *IOError for
// snapshots (snapshot.go).
var (
	// ErrClosed: the cache was closed (by Close on it or on any of its views).
	ErrClosed = errors.New("mapcache: cache is closed")
	// ErrInvalidArgument: an argument is out of range (MAPCACHE_E_INVALID_ARG),
	// e.g. batch slices of different lengths.
	ErrInvalidArgument = errors.New("mapcache: invalid argument")
	// ErrKeyTooLong: the key is longer than MaxKeyLen.
	ErrKeyTooLong = errors.New("mapcache: key too long")
	// ErrValueTooLong: the value is longer than MaxValueLen.
	ErrValueTooLong = errors.New("mapcache: value too long")
	// ErrConcurrentWrite: exclusive mode, two writers overlapped. The *Error
	// names both callers (Holder and Collider).
	ErrConcurrentWrite = errors.New("mapcache: concurrent map writes")
	// ErrConcurrentReadWrite: exclusive mode, a read overlapped a write.
	ErrConcurrentReadWrite = errors.New("mapcache: concurrent map read and map write")
	// ErrNoMemory: an allocation failed; the cache is unchanged.
	ErrNoMemory = errors.New("mapcache: out of memory")
	// ErrInvalidHandle: the library saw a freed or foreign handle. The Go
	// binding never passes one; seeing it means a bug.
	ErrInvalidHandle = errors.New("mapcache: invalid handle")
	// ErrInvalidConfig: a Config field is out of range.
	ErrInvalidConfig = errors.New("mapcache: invalid config")
	// ErrInternal: a bug in the library (a caught panic).
	ErrInternal = errors.New("mapcache: internal error")
	// ErrBufferTooSmall is handled inside the binding (it retries with a
	// larger buffer); it is exported for completeness and never returned.
	ErrBufferTooSmall = errors.New("mapcache: buffer too small")
	// ErrABIMismatch: the linked library speaks another ABI version.
	ErrABIMismatch = errors.New("mapcache: library ABI version mismatch")
	// ErrTooLarge: the entry (key, value and the library's overhead) is
	// larger than the byte budget of the part of the cache it belongs to,
	// so a cache with Config.MaxBytes could never hold it; nothing was
	// changed (MAPCACHE_E_TOO_LARGE).
	ErrTooLarge = errors.New("mapcache: entry too large for the cache")
	// ErrLoader: the loader of a GetOrLoad failed or panicked
	// (MAPCACHE_E_LOADER). The error is a *LoadError, which also unwraps
	// to what the loader returned.
	ErrLoader = errors.New("mapcache: loader failed")
	// ErrCorrupt: a snapshot file given to Load, LoadWithReport or LoadInto
	// is damaged, truncated, appended to, not a snapshot, or of a newer
	// format version (MAPCACHE_E_CORRUPT). The error is a *CorruptError,
	// with the byte offset in the file of what failed its check; a cache
	// loaded into is unchanged.
	ErrCorrupt = errors.New("mapcache: corrupt snapshot")
	// ErrIO: a file operation of a snapshot save or load failed
	// (MAPCACHE_E_IO). The error is an *IOError, which unwraps to the OS's
	// syscall.Errno, so errors.Is(err, fs.ErrNotExist) and errors.Is(err,
	// syscall.EACCES) work. A failed save leaves the previous file intact.
	ErrIO = errors.New("mapcache: snapshot I/O failed")
	// ErrGPU: Config.GPU is GPUForce and the GPU engine failed
	// (MAPCACHE_E_GPU): New returns it when the engine cannot load (no
	// libcuda.so.1, no CUDA device, the plugin not found or refused; the
	// message says which), and a write returns it when the GPU rebuild it
	// triggered failed, in which case the write changed nothing. GPUAuto
	// never returns it: there a failed GPU rebuild runs on the CPU.
	ErrGPU = errors.New("mapcache: GPU engine failed")
)

// Status codes of the C ABI (docs/C_API.md).
const (
	stOK               = 0
	stNotFound         = 1
	stInvalidArg       = 2
	stBufferTooSmall   = 3
	stKeyTooLong       = 4
	stValueTooLong     = 5
	stConcurrentWrite  = 6
	stConcurrentRW     = 7
	stNoMemory         = 8
	stInvalidHandle    = 9
	stInvalidConfig    = 10
	stInternal         = 11
	stTooLarge         = 12
	stLoader           = 13
	stCorrupt          = 14
	stIO               = 15
	stGPU              = 16
	abiVersionExpected = 3
)

func sentinelFor(st int32) error {
	switch st {
	case stInvalidArg:
		return ErrInvalidArgument
	case stBufferTooSmall:
		return ErrBufferTooSmall
	case stKeyTooLong:
		return ErrKeyTooLong
	case stValueTooLong:
		return ErrValueTooLong
	case stConcurrentWrite:
		return ErrConcurrentWrite
	case stConcurrentRW:
		return ErrConcurrentReadWrite
	case stNoMemory:
		return ErrNoMemory
	case stInvalidHandle:
		return ErrInvalidHandle
	case stInvalidConfig:
		return ErrInvalidConfig
	case stTooLarge:
		return ErrTooLarge
	case stLoader:
		return ErrLoader
	case stCorrupt:
		return ErrCorrupt
	case stIO:
		return ErrIO
	case stGPU:
		return ErrGPU
	default:
		return ErrInternal
	}
}

// Error is a failed call. For ErrConcurrentWrite and ErrConcurrentReadWrite,
// Holder is the label of the caller whose write was in progress and Collider
// the label of the caller that ran into it (labels are set with
// Cache.WithLabel; an unlabelled caller appears as "thread <os tid>"). Both
// are empty when a label holds the message's own words "' collided with a
// write in progress by '", which make the message ambiguous (labels are
// quoted unescaped; a label may be empty too).
type Error struct {
	Op       string // the method, e.g. "Set"
	Status   int32  // the mapcache_status, 0 for errors raised by the binding
	Message  string // the library's message (mapcache_last_error)
	Holder   string
	Collider string
	sentinel error
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = e.sentinel.Error()
	}
	return fmt.Sprintf("mapcache: %s: %s", e.Op, msg)
}

// Unwrap returns the sentinel, so errors.Is(err, ErrConcurrentWrite) works.
func (e *Error) Unwrap() error { return e.sentinel }

// newError builds the error for a failed C call.
func newError(op string, st int32, msg string) *Error {
	e := &Error{Op: op, Status: st, Message: msg, sentinel: sentinelFor(st)}
	if st == stConcurrentWrite || st == stConcurrentRW {
		e.Holder, e.Collider, _ = parseMisuse(msg)
	}
	return e
}

func argError(op, msg string) *Error {
	return &Error{Op: op, Status: stInvalidArg, Message: msg, sentinel: ErrInvalidArgument}
}

// parseMisuse extracts both names from the library's misuse message:
//
//	concurrent map writes: 'B' collided with a write in progress by 'A'
//
// It returns (holder A, collider B).
func parseMisuse(msg string) (holder, collider string, ok bool) {
	const mid = "' collided with a write in progress by '"
	i := strings.Index(msg, ": '")
	if i < 0 {
		return "", "", false
	}
	rest := msg[i+3:]
	// Labels are quoted unescaped: a label holding the separator itself
	// makes the split ambiguous, and no labels beat wrong ones.
	j := strings.Index(rest, mid)
	if j < 0 || strings.Count(rest, mid) != 1 || !strings.HasSuffix(rest, "'") || len(rest) < j+len(mid)+1 {
		return "", "", false
	}
	return rest[j+len(mid) : len(rest)-1], rest[:j], true
}

// BatchError reports the keys of a batch call that failed one by one (the call
// itself ran). Errs has one entry per key, nil where the key succeeded.
// errors.Is(err, ErrKeyTooLong) is true if any key failed with that error.
type BatchError struct {
	Op     string
	Errs   []error
	Failed int
}

func (e *BatchError) Error() string {
	for i, err := range e.Errs {
		if err != nil {
			return fmt.Sprintf("mapcache: %s: %d of %d keys failed; key %d: %v", e.Op, e.Failed, len(e.Errs), i, err)
		}
	}
	return fmt.Sprintf("mapcache: %s: batch failed", e.Op)
}

// Unwrap returns the distinct per-key errors (by sentinel), for errors.Is/As.
func (e *BatchError) Unwrap() []error {
	var out []error
	seen := map[error]bool{}
	for _, err := range e.Errs {
		if err == nil {
			continue
		}
		var s error = err
		if me, ok := err.(*Error); ok {
			s = me.sentinel
		}
		if !seen[s] {
			seen[s] = true
			out = append(out, err)
		}
	}
	return out
}
