package mapcache

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"
)

// abortChildEnv makes the test binary, run again as a child, collide under
// MisuseAbort; its value says how ("notify": after signal.Notify(SIGABRT)).
const abortChildEnv = "MAPCACHE_GO_ABORT_CHILD"

// abortChild is the child's side: collide with a held write flag under
// MisuseAbort. It never returns normally; its exit codes 3 to 5 mean that the
// setup failed and 0 that the collision did not end the process.
func abortChild(how string) {
	// No core file from the GOTRACEBACK=crash run.
	_ = syscall.Setrlimit(syscall.RLIMIT_CORE, &syscall.Rlimit{})
	if how == "notify" {
		signal.Notify(make(chan os.Signal, 1), syscall.SIGABRT)
	}
	c, err := New(Config{Mode: Exclusive, MisusePolicy: MisuseAbort})
	if err != nil {
		fmt.Println("New:", err)
		os.Exit(3)
	}
	release, err := c.WithLabel("abort-holder").debugHoldWrite([]byte("a"))
	if err != nil {
		fmt.Println("hold:", err)
		os.Exit(5)
	}
	defer fmt.Println("a deferred function ran")
	err = c.WithLabel("abort-collider").Set([]byte("b"), []byte("x"))
	fmt.Println("survived the collision:", err)
	release()
	os.Exit(0)
}

// runAbortChild runs this test binary as an abortChild with GOTRACEBACK set
// to traceback ("" = unset, Go's default) and returns its output and how it
// ended.
func runAbortChild(t *testing.T, how, traceback string) (string, syscall.WaitStatus) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestMisuseAbortEndsTheProcess$", "-test.count=1")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOTRACEBACK=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, abortChildEnv+"="+how)
	if traceback != "" {
		cmd.Env = append(cmd.Env, "GOTRACEBACK="+traceback)
	}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("child (%s, GOTRACEBACK=%q) did not fail: %v\n%s", how, traceback, err, out)
	}
	s := string(out)
	const report = "fatal error: concurrent map writes: 'abort-collider' collided with a write in progress by 'abort-holder'"
	if !strings.Contains(s, report) {
		t.Fatalf("child (%s, GOTRACEBACK=%q): no report naming both labels (%v):\n%.3000s", how, traceback, err, s)
	}
	if strings.Contains(s, "survived the collision") || strings.Contains(s, "a deferred function ran") {
		t.Fatalf("child (%s, GOTRACEBACK=%q) went on after the collision:\n%.3000s", how, traceback, s)
	}
	return s, ee.Sys().(syscall.WaitStatus)
}

// MisuseAbort: the library prints its report and calls abort(); in a Go
// program the runtime catches the SIGABRT and exits with status 2 and its own
// "SIGABRT: abort" message and stacks (not killed by SIGABRT), unless
// GOTRACEBACK=crash or the program catches SIGABRT with signal.Notify. Deferred
// functions do not run. The MisuseAbort doc comment promises exactly this.
func TestMisuseAbortEndsTheProcess(t *testing.T) {
	if how := os.Getenv(abortChildEnv); how != "" {
		abortChild(how)
	}
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	t.Run("default", func(t *testing.T) {
		out, ws := runAbortChild(t, "plain", "")
		if !ws.Exited() || ws.ExitStatus() != 2 {
			t.Fatalf("child ended with %v, want exit status 2:\n%.3000s", ws, out)
		}
		for _, want := range []string{"SIGABRT: abort", "signal arrived during cgo execution", "goroutine "} {
			if !strings.Contains(out, want) {
				t.Fatalf("child output lacks %q:\n%.3000s", want, out)
			}
		}
	})
	t.Run("GOTRACEBACK=crash", func(t *testing.T) {
		out, ws := runAbortChild(t, "plain", "crash")
		if !ws.Signaled() || ws.Signal() != syscall.SIGABRT {
			t.Fatalf("child ended with %v, want killed by SIGABRT:\n%.3000s", ws, out)
		}
	})
	t.Run("signal.Notify", func(t *testing.T) {
		// The runtime hands the signal to the channel; abort() then raises it
		// again with the default action.
		out, ws := runAbortChild(t, "notify", "")
		if !ws.Signaled() || ws.Signal() != syscall.SIGABRT {
			t.Fatalf("child ended with %v, want killed by SIGABRT:\n%.3000s", ws, out)
		}
	})
}

// MisusePolicy applies to Exclusive mode only (a Concurrent cache has no
// misuse to detect), so New rejects MisuseAbort in Concurrent mode rather
// than ignore it: that Config is a mistake (Mode forgotten), not a choice.
func TestMisuseAbortNeedsExclusive(t *testing.T) {
	c, err := New(Config{MisusePolicy: MisuseAbort})
	if err == nil {
		c.Close()
		t.Fatal("New(Concurrent, MisuseAbort) succeeded; want ErrInvalidConfig")
	}
	var e *Error
	if !errors.Is(err, ErrInvalidConfig) || !errors.As(err, &e) || !strings.Contains(e.Message, "Exclusive") {
		t.Fatalf("New(Concurrent, MisuseAbort) = %#v, want ErrInvalidConfig naming Exclusive", err)
	}
	// MisuseError, the zero value, is fine in both modes.
	for _, mode := range []Mode{Concurrent, Exclusive} {
		c, err := New(Config{Mode: mode, MisusePolicy: MisuseError})
		if err != nil {
			t.Fatalf("New(%v, MisuseError) = %v", mode, err)
		}
		c.Close()
	}
}
