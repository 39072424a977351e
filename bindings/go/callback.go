package mapcache

// callbackOutcome is how a callback run by runCallback ended: it returned, it
// panicked (with value, what recover returned; nil after panic(nil) with
// GODEBUG=panicnil=1), or it called runtime.Goexit.
type callbackOutcome struct {
	panicked bool
	value    any
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
