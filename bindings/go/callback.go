//go:build cgo

package mapcache

import (
	"fmt"
	"runtime/debug"
)

// callbackOutcome is how a callback run by runCallback ended: it returned, it
// panicked (with value, what recover returned; nil after panic(nil) with
// GODEBUG=panicnil=1; and stack, its goroutine's stack from the panic), or it
// called runtime.Goexit.
type callbackOutcome struct {
	panicked bool
	value    any
	stack    []byte
	exited   bool
}

// runCallback calls fn, a function of the host's called back from C (a
// GetOrLoad loader, a save's progress function), on a goroutine of its own
// and waits for it. Neither a panic nor runtime.Goexit may unwind through the
// C frames of the library below the callback: Go would skip them, without
// running the library's clean-up (its load would never end, its save would
// leave its temporary file). A panic could be recovered on the calling
// goroutine, but Goexit cannot be stopped once started, so fn runs where it
// can only end its own goroutine; the caller re-raises either once the
// library has returned.
func runCallback(fn func()) (o callbackOutcome) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		returned, recovered := false, false
		defer func() {
			if !returned && !recovered { // Goexit: no panic to report
				o.exited, o.panicked, o.value = true, false, nil
			}
		}()
		func() {
			defer func() {
				if !returned {
					o.panicked, o.value = true, recover()
					// Still on the panicking stack: the frames of fn down
					// to the panic are in it.
					o.stack = debug.Stack()
				}
			}()
			fn()
			returned = true
		}()
		recovered = !returned // reached after a recovered panic, not after Goexit
	}()
	<-done
	return o
}

// repanic panics with value, the value a callback panicked with (the value a
// recover of the caller's gets), after a panic with a callbackPanic carrying
// the callback's stack, recovered at once: so that a panic no one recovers
// prints the callback's stack (the place of the bug, on another goroutine)
// before the caller's, as "panic: <the callbackPanic> [recovered]" followed by
// "panic: <value>".
func repanic(what string, value any, stack []byte) {
	defer func() {
		recover()
		panic(value)
	}()
	panic(&callbackPanic{what: what, value: value, stack: stack})
}

// callbackPanic is the first of repanic's two panics; what names the
// callback, e.g. "the loader of GetOrLoad".
type callbackPanic struct {
	what  string
	value any
	stack []byte
}

func (p *callbackPanic) Error() string {
	return fmt.Sprintf("mapcache: %s panicked: %v; its goroutine's stack when it panicked:\n\n%s", p.what, p.value, p.stack)
}
