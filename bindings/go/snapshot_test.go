package mapcache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// snapPath is a path for a snapshot file in a fresh directory of the test's.
func snapPath(t *testing.T) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "cache.snap")
}

// fillNumbered stores n entries key-<i> = value-<i>... via SetMany.
func fillNumbered(t *testing.T, c *Cache, n int) {
	t.Helper()
	const batch = 4096
	for start := 0; start < n; start += batch {
		end := min(start+batch, n)
		keys := make([][]byte, 0, end-start)
		vals := make([][]byte, 0, end-start)
		for i := start; i < end; i++ {
			keys = append(keys, numKey(i))
			vals = append(vals, numValue(i))
		}
		if err := c.SetMany(keys, vals); err != nil {
			t.Fatal(err)
		}
	}
}

func numKey(i int) []byte   { return []byte(fmt.Sprintf("key-%09d", i)) }
func numValue(i int) []byte { return []byte(fmt.Sprintf("value-%012d", i*7919)) }

// checkNumbered fails unless c holds exactly the n entries of fillNumbered.
func checkNumbered(t *testing.T, c *Cache, n int) {
	t.Helper()
	if got := c.Len(); got != n {
		t.Fatalf("Len = %d, want %d", got, n)
	}
	const batch = 4096
	for start := 0; start < n; start += batch {
		end := min(start+batch, n)
		keys := make([][]byte, 0, end-start)
		for i := start; i < end; i++ {
			keys = append(keys, numKey(i))
		}
		vals, err := c.GetMany(keys)
		if err != nil {
			t.Fatal(err)
		}
		for j, v := range vals {
			if want := numValue(start + j); !bytes.Equal(v, want) {
				t.Fatalf("%s = %q, want %q", keys[j], v, want)
			}
		}
	}
}

// entries returns a copy of everything c holds.
func entries(t *testing.T, c *Cache) map[string]string {
	t.Helper()
	m := map[string]string{}
	if err := c.Range(func(k, v []byte) bool { m[string(k)] = string(v); return true }); err != nil {
		t.Fatal(err)
	}
	return m
}

func fileSize(t *testing.T, path string) uint64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return uint64(st.Size())
}

func TestSnapshotRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 5000} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			c := newCache(t, Config{})
			fillNumbered(t, c, n)
			path := snapPath(t)
			rep, err := c.SaveWithProgress(path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Records != uint64(n) || rep.Expired != 0 || rep.Bytes != fileSize(t, path) {
				t.Fatalf("SaveReport %+v for %d entries, file of %d bytes", rep, n, fileSize(t, path))
			}
			if (n == 0) != (rep.Blocks == 0) {
				t.Fatalf("SaveReport %+v: blocks for %d entries", rep, n)
			}

			warm, lrep, err := LoadWithReport(path, Config{})
			if err != nil {
				t.Fatal(err)
			}
			defer warm.Close()
			want := LoadReport{Records: uint64(n), Loaded: uint64(n), Bytes: rep.Bytes}
			if lrep != want {
				t.Fatalf("LoadReport %+v, want %+v", lrep, want)
			}
			checkNumbered(t, warm, n)

			plain, err := Load(path, Config{Shards: 4})
			if err != nil {
				t.Fatal(err)
			}
			defer plain.Close()
			checkNumbered(t, plain, n)

			into := newCache(t, Config{})
			irep, err := into.LoadInto(path)
			if err != nil {
				t.Fatal(err)
			}
			if irep != want {
				t.Fatalf("LoadInto report %+v, want %+v", irep, want)
			}
			checkNumbered(t, into, n)
		})
	}
}

// A value larger than a block (1 MiB), the longest key, an empty key and an
// empty value survive.
func TestSnapshotLargeValueLongestKey(t *testing.T) {
	c := newCache(t, Config{})
	big := make([]byte, 3<<20)
	for i := range big {
		big[i] = byte(i*31 + 7)
	}
	longKey := bytes.Repeat([]byte{'k'}, MaxKeyLen)
	for _, kv := range [][2][]byte{{[]byte("big"), big}, {longKey, []byte("long")}, {nil, []byte("empty key")}, {[]byte("empty"), nil}} {
		if err := c.Set(kv[0], kv[1]); err != nil {
			t.Fatal(err)
		}
	}
	path := snapPath(t)
	if err := c.Save(path); err != nil {
		t.Fatal(err)
	}
	warm, err := Load(path, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer warm.Close()
	if got := entries(t, warm); !mapsEqual(got, entries(t, c)) || len(got) != 4 {
		t.Fatalf("loaded %d entries, not the 4 saved", len(got))
	}
	if v, ok := warm.Get([]byte("empty")); !ok || v == nil || len(v) != 0 {
		t.Fatalf("empty value = %q, %v", v, ok)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TTLs are wall-clock times in the file: with two manual-clock caches, the
// time that passes between the save and the load is how far the loader's
// clock is past the saver's.
func TestSnapshotTTLExpiresBetweenSaveAndLoad(t *testing.T) {
	a := newCache(t, Config{ManualClock: true})
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(a.SetWithTTL([]byte("brief"), []byte("5s"), 5*time.Second))
	must(a.SetWithTTL([]byte("minute"), []byte("60s"), 60*time.Second))
	must(a.Set([]byte("forever"), []byte("no ttl")))
	must(a.AdvanceClock(2 * time.Second))
	path := snapPath(t)
	rep, err := a.SaveWithProgress(path, nil)
	must(err)
	if rep.Records != 3 || rep.Expired != 0 {
		t.Fatalf("SaveReport %+v", rep)
	}

	// 10 s of wall time after the save's 2 s: "brief" (expiring at 5 s) is
	// gone, "minute" (at 60 s) has 50 s left.
	b := newCache(t, Config{ManualClock: true})
	must(b.AdvanceClock(10 * time.Second))
	lrep, err := b.LoadInto(path)
	must(err)
	if lrep.Records != 3 || lrep.Loaded != 2 || lrep.Expired != 1 {
		t.Fatalf("LoadReport %+v, want 3 records, 2 loaded, 1 expired", lrep)
	}
	if _, ok := b.Get([]byte("brief")); ok {
		t.Fatal("brief survived its TTL across the load")
	}
	mustGet(t, b, "minute", "60s")
	mustGet(t, b, "forever", "no ttl")
	must(b.AdvanceClock(50*time.Second - time.Millisecond))
	mustGet(t, b, "minute", "60s")
	must(b.AdvanceClock(time.Millisecond))
	if _, ok := b.Get([]byte("minute")); ok {
		t.Fatal("minute outlived its saved expiry")
	}
	mustGet(t, b, "forever", "no ttl")

	// Load into a new manual-clock cache: its clock starts at 0 (wall time
	// 2020-01-01), before the save's 2 s, so nothing has expired.
	c, lrep, err := LoadWithReport(path, Config{ManualClock: true})
	must(err)
	defer c.Close()
	if lrep.Loaded != 3 || lrep.Expired != 0 {
		t.Fatalf("LoadReport %+v, want all 3 loaded", lrep)
	}
	must(c.AdvanceClock(5 * time.Second))
	if _, ok := c.Get([]byte("brief")); ok {
		t.Fatal("brief outlived its saved expiry (5 s)")
	}
	mustGet(t, c, "minute", "60s")
}

// Progress is reported in increasing order and ends at the file's length; the
// progress function may write to the cache during the save.
func TestSnapshotProgress(t *testing.T) {
	c := newCache(t, Config{})
	// About 3 MiB of records: several blocks.
	val := bytes.Repeat([]byte("v"), 300)
	keys := make([][]byte, 10000)
	vals := make([][]byte, len(keys))
	for i := range keys {
		keys[i], vals[i] = numKey(i), val
	}
	if err := c.SetMany(keys, vals); err != nil {
		t.Fatal(err)
	}
	path := snapPath(t)
	var seen []uint64
	rep, err := c.SaveWithProgress(path, func(n uint64) {
		seen = append(seen, n)
		if err := c.SetString(fmt.Sprintf("during-%d", len(seen)), "x"); err != nil {
			t.Errorf("Set from the progress function: %v", err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	size := fileSize(t, path)
	if len(seen) < 3 {
		t.Fatalf("progress called %d times for %d blocks: %v", len(seen), rep.Blocks, seen)
	}
	for i := 1; i < len(seen); i++ {
		if seen[i] < seen[i-1] {
			t.Fatalf("progress went backwards: %v", seen)
		}
	}
	if last := seen[len(seen)-1]; last != size || rep.Bytes != size {
		t.Fatalf("last progress %d, report %d bytes, file %d bytes", last, rep.Bytes, size)
	}
	if rep.Records < 10000 {
		t.Fatalf("saved %d records of 10000", rep.Records)
	}
	for i := 1; i <= len(seen); i++ {
		mustGet(t, c, fmt.Sprintf("during-%d", i), "x")
	}
	warm, err := Load(path, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer warm.Close()
	if uint64(warm.Len()) != rep.Records {
		t.Fatalf("loaded %d entries, saved %d", warm.Len(), rep.Records)
	}
}

// A panic in the progress function does not cross the library: the save
// completes, the function is not called again, and SaveWithProgress panics
// with the same value afterwards.
func TestSnapshotProgressPanic(t *testing.T) {
	c := newCache(t, Config{})
	fillNumbered(t, c, 100000) // several blocks
	path := snapPath(t)
	calls := 0
	type boom struct{ n uint64 }
	var got any
	var rep SaveReport
	func() {
		defer func() { got = recover() }()
		rep, _ = c.SaveWithProgress(path, func(n uint64) {
			calls++
			panic(boom{n})
		})
		t.Error("SaveWithProgress returned after its progress function panicked")
	}()
	if b, ok := got.(boom); !ok || b.n == 0 {
		t.Fatalf("recovered %#v, want the progress function's boom", got)
	}
	if calls != 1 {
		t.Fatalf("progress called %d times after its panic, want 1", calls)
	}
	_ = rep
	warm, err := Load(path, Config{})
	if err != nil {
		t.Fatalf("the save interrupted by the panic left no complete file: %v", err)
	}
	defer warm.Close()
	checkNumbered(t, warm, 100000)
	// The cache still works, and saves again.
	if err := c.Save(path); err != nil {
		t.Fatal(err)
	}
}

// runtime.Goexit in the progress function (t.FailNow, say) ends the saving
// goroutine once the save is done, not in the middle of the library.
func TestSnapshotProgressGoexit(t *testing.T) {
	c := newCache(t, Config{})
	fillNumbered(t, c, 100000)
	path := snapPath(t)
	calls := 0
	returned := false
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.SaveWithProgress(path, func(uint64) {
			calls++
			runtime.Goexit()
		})
		returned = true
	}()
	<-done
	if returned || calls != 1 {
		t.Fatalf("after Goexit in progress: SaveWithProgress returned %v, progress called %d times", returned, calls)
	}
	warm, err := Load(path, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer warm.Close()
	checkNumbered(t, warm, 100000)
}

// A snapshot saved while 2 goroutines keep writing holds, for every key, a
// value that key really had during the save. Writer w owns the keys i with
// i%2 == w and writes pass after pass, each pass giving every key the value
// "<key>/<pass>"; the passes a writer had finished when the save started and
// had started when it ended bound the pass each loaded value may come from.
func TestSnapshotWhileWriting(t *testing.T) {
	const keys = 20000
	pad := strings.Repeat("p", 100) // ~2.5 MiB in all: several blocks
	value := func(k, pass int) []byte { return []byte(fmt.Sprintf("%s/%d/%s", numKey(k), pass, pad)) }
	c := newCache(t, Config{})
	for k := 0; k < keys; k++ {
		if err := c.Set(numKey(k), value(k, 0)); err != nil {
			t.Fatal(err)
		}
	}
	var started, finished [2]atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for pass := 1; ; pass++ {
				select {
				case <-stop:
					return
				default:
				}
				started[w].Store(int64(pass))
				for k := w; k < keys; k += 2 {
					if err := c.Set(numKey(k), value(k, pass)); err != nil {
						t.Error(err)
						return
					}
				}
				finished[w].Store(int64(pass))
			}
		}()
	}
	// Make sure both writers write during the save: the first progress report
	// (after the first block) waits until each has finished one more pass.
	var before [2]int64
	for w := range before {
		before[w] = finished[w].Load()
	}
	path := snapPath(t)
	waited := false
	_, err := c.SaveWithProgress(path, func(uint64) {
		if waited {
			return
		}
		waited = true
		for w := range 2 {
			target := finished[w].Load() + 1
			for finished[w].Load() < target {
				runtime.Gosched()
			}
		}
	})
	var after [2]int64
	for w := range after {
		after[w] = started[w].Load()
	}
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if !waited {
		t.Fatal("the progress function was never called")
	}
	warm, err := Load(path, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer warm.Close()
	if warm.Len() != keys {
		t.Fatalf("loaded %d keys, want %d", warm.Len(), keys)
	}
	for k := 0; k < keys; k++ {
		v, ok := warm.Get(numKey(k))
		if !ok {
			t.Fatalf("%s missing from the snapshot", numKey(k))
		}
		parts := strings.SplitN(string(v), "/", 3)
		pass, perr := strconv.Atoi(parts[min(1, len(parts)-1)])
		w := k % 2
		if len(parts) != 3 || parts[0] != string(numKey(k)) || parts[2] != pad || perr != nil {
			t.Fatalf("%s holds %.40q..., a value never written for it", numKey(k), v)
		}
		if int64(pass) < before[w] || int64(pass) > after[w] {
			t.Fatalf("%s holds pass %d, not one it had during the save (passes %d to %d)", numKey(k), pass, before[w], after[w])
		}
	}
}

// corruptions are ways of damaging a valid snapshot.
var corruptions = []struct {
	name   string
	damage func(b []byte) []byte
}{
	{"flipped byte in a block", func(b []byte) []byte { b[len(b)/2] ^= 0x40; return b }},
	{"flipped byte in the header", func(b []byte) []byte { b[9] ^= 0x01; return b }},
	{"truncated", func(b []byte) []byte { return b[:len(b)-7] }},
	{"truncated to the header", func(b []byte) []byte { return b[:40] }},
	{"appended garbage", func(b []byte) []byte { return append(b, "garbage"...) }},
	{"garbage", func(b []byte) []byte {
		for i := range b {
			b[i] = byte(i*131 + 17)
		}
		return b
	}},
	{"empty", func(b []byte) []byte { return b[:0] }},
}

// A damaged file is ErrCorrupt, a *CorruptError with an offset inside the
// file, from Load and LoadInto; a cache loaded into is unchanged.
func TestSnapshotCorrupt(t *testing.T) {
	src := newCache(t, Config{})
	fillNumbered(t, src, 3000)
	good := snapPath(t)
	if err := src.Save(good); err != nil {
		t.Fatal(err)
	}
	orig, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range corruptions {
		t.Run(tc.name, func(t *testing.T) {
			bad := tc.damage(append([]byte(nil), orig...))
			path := snapPath(t)
			if err := os.WriteFile(path, bad, 0o644); err != nil {
				t.Fatal(err)
			}
			check := func(err error) {
				t.Helper()
				var ce *CorruptError
				if !errors.Is(err, ErrCorrupt) || !errors.As(err, &ce) {
					t.Fatalf("err = %v, want a *CorruptError", err)
				}
				if ce.Path != path || ce.Offset > uint64(len(bad)) ||
					!strings.Contains(ce.Message, "offset "+strconv.FormatUint(ce.Offset, 10)) ||
					!strings.Contains(err.Error(), path) {
					t.Fatalf("CorruptError %+v (%q) for a file of %d bytes", ce, err, len(bad))
				}
				if errors.Is(err, ErrIO) {
					t.Fatal("a corrupt file is ErrIO too")
				}
			}
			c, err := Load(path, Config{})
			if c != nil {
				t.Fatal("Load of a corrupt file returned a cache")
			}
			check(err)
			_, _, err = LoadWithReport(path, Config{})
			check(err)

			into := newCache(t, Config{})
			if err := into.Set(numKey(7), []byte("mine")); err != nil {
				t.Fatal(err)
			}
			if err := into.Set([]byte("other"), []byte("kept")); err != nil {
				t.Fatal(err)
			}
			before := entries(t, into)
			rep, err := into.LoadInto(path)
			check(err)
			if rep != (LoadReport{}) {
				t.Fatalf("report %+v after a failed LoadInto", rep)
			}
			if after := entries(t, into); !mapsEqual(before, after) {
				t.Fatalf("LoadInto of a corrupt file changed the cache: %v -> %d entries", before, len(after))
			}
		})
	}
}

func TestSnapshotMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no-such.snap")
	check := func(err error) {
		t.Helper()
		var ie *IOError
		if !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, ErrIO) || !errors.Is(err, syscall.ENOENT) || !errors.As(err, &ie) {
			t.Fatalf("err = %v, want an *IOError matching fs.ErrNotExist", err)
		}
		if ie.Step != "open" || ie.Errno != syscall.ENOENT || ie.Path != path || !strings.Contains(ie.Message, path) {
			t.Fatalf("IOError %+v", ie)
		}
		if errors.Is(err, ErrCorrupt) {
			t.Fatal("a missing file is ErrCorrupt")
		}
	}
	c, err := Load(path, Config{})
	if c != nil {
		t.Fatal("Load of a missing file returned a cache")
	}
	check(err)
	into := newCache(t, Config{})
	_, err = into.LoadInto(path)
	check(err)
}

// A save that cannot create its temporary file fails with the OS's error.
func TestSnapshotSaveCannotCreate(t *testing.T) {
	c := newCache(t, Config{})
	fillNumbered(t, c, 10)
	if os.Geteuid() == 0 {
		// root may write any directory; nobody may create files in /proc.
		err := c.Save("/proc/mapcache-go-test.snap")
		var ie *IOError
		if !errors.As(err, &ie) || !errors.Is(err, ErrIO) || ie.Step != "create" || ie.Errno == 0 || !errors.Is(err, ie.Errno) {
			t.Fatalf("Save into /proc: %v (%+v)", err, ie)
		}
		return
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "c.snap")
	if err := c.Save(path); err != nil {
		t.Fatal(err)
	}
	prev, _ := os.ReadFile(path)
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(dir, 0o755)
	if err := c.Set([]byte("new"), []byte("entry")); err != nil {
		t.Fatal(err)
	}
	err := c.Save(path)
	var ie *IOError
	if !errors.As(err, &ie) || !errors.Is(err, fs.ErrPermission) || !errors.Is(err, syscall.EACCES) || ie.Step != "create" {
		t.Fatalf("Save into a read-only directory: %v", err)
	}
	if now, _ := os.ReadFile(path); !bytes.Equal(now, prev) {
		t.Fatal("the failed save changed the previous file")
	}
}

// fsizeChildEnv, set in the environment of a child run of this test binary,
// makes TestSnapshotFailedSaveKeepsPrevious the child: it saves to the path
// the variable holds under a file size limit of its own and prints the
// outcome.
const fsizeChildEnv = "MAPCACHE_GO_FSIZE_CHILD"

// A save whose writes fail (the file size limit, RLIMIT_FSIZE, which holds
// for root too: EFBIG) leaves the previous snapshot as it was, loadable, and
// no temporary file behind. The limit is a process's: the failing save runs
// in a child (this test binary, this test alone), so that no other test of
// this process, run in parallel, writes under it.
func TestSnapshotFailedSaveKeepsPrevious(t *testing.T) {
	if path := os.Getenv(fsizeChildEnv); path != "" {
		fmt.Println(failedSaveChild(path))
		os.Exit(0)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "c.snap")
	c := newCache(t, Config{})
	fillNumbered(t, c, 100)
	if err := c.Save(path); err != nil {
		t.Fatal(err)
	}
	prev, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestSnapshotFailedSaveKeepsPrevious$", "-test.count=1")
	cmd.Env = append(os.Environ(), fsizeChildEnv+"="+path)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the child failed: %v\n%s", err, out)
	}
	report := strings.TrimSpace(string(out))
	if skip, ok := strings.CutPrefix(report, "skip: "); ok {
		t.Skip(skip)
	}
	if report != "ok" {
		t.Fatalf("the child: %s", report)
	}
	if now, _ := os.ReadFile(path); !bytes.Equal(now, prev) {
		t.Fatal("the failed save changed the previous file")
	}
	names, _ := os.ReadDir(dir)
	if len(names) != 1 {
		t.Fatalf("the failed save left files behind: %v", names)
	}
	warm, err := Load(path, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer warm.Close()
	checkNumbered(t, warm, 100)
}

// failedSaveChild is the child of TestSnapshotFailedSaveKeepsPrevious: a
// cache of 200,000 entries (a file of several MiB) saved to path under a
// file size limit of 1 MiB. It returns "ok" when the save failed as it
// should, "skip: ..." when the limit cannot be lowered, else what went wrong.
func failedSaveChild(path string) string {
	c, err := New(Config{})
	if err != nil {
		return err.Error()
	}
	defer c.Close()
	const n, batch = 200000, 4096
	for start := 0; start < n; start += batch {
		var keys, vals [][]byte
		for i := start; i < min(start+batch, n); i++ {
			keys = append(keys, numKey(i))
			vals = append(vals, numValue(i))
		}
		if err := c.SetMany(keys, vals); err != nil {
			return err.Error()
		}
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		return err.Error()
	}
	lim.Cur = 1 << 20
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		return fmt.Sprintf("skip: cannot lower RLIMIT_FSIZE: %v", err)
	}
	// (Go ignores SIGXFSZ, so the write fails with EFBIG instead.)
	err = c.Save(path)
	var ie *IOError
	if !errors.As(err, &ie) || !errors.Is(err, syscall.EFBIG) || ie.Step != "write" {
		return fmt.Sprintf("Save over the file size limit: %v", err)
	}
	return "ok"
}

// A path that names no regular file is refused at once by every load: a FIFO
// (which a plain open(2) would wait on for a writer) and a character device,
// as an *IOError at the step "open" with no errno, saying so. The test holds
// the FIFO open for reading and writing itself, so that a load that waited for
// a writer would get one (and fail otherwise) rather than hang.
func TestSnapshotLoadOfNoRegularFile(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	held, err := syscall.Open(fifo, syscall.O_RDWR|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(held)
	for _, tc := range []struct{ path, what string }{{fifo, "a FIFO"}, {"/dev/null", "a character device"}} {
		check := func(op string, err error) {
			t.Helper()
			var ie *IOError
			if !errors.As(err, &ie) || !errors.Is(err, ErrIO) || errors.Unwrap(err) != nil {
				t.Fatalf("%s of %s: %v, want an *IOError with no errno", op, tc.what, err)
			}
			want := fmt.Sprintf("snapshot open of %s: not a regular file (%s)", tc.path, tc.what)
			if ie.Op != op || ie.Step != "open" || ie.Errno != 0 || ie.Path != tc.path || ie.Message != want {
				t.Fatalf("%s of %s: %+v, want the message %q", op, tc.what, ie, want)
			}
		}
		c, err := Load(tc.path, Config{})
		if c != nil {
			t.Fatalf("Load of %s returned a cache", tc.what)
		}
		check("Load", err)
		_, _, err = LoadWithReport(tc.path, Config{})
		check("LoadWithReport", err)
		into := newCache(t, Config{})
		_, err = into.LoadInto(tc.path)
		check("LoadInto", err)
	}
}

func TestSnapshotBadArguments(t *testing.T) {
	c := newCache(t, Config{})
	dir := t.TempDir()
	nul := filepath.Join(dir, "a\x00b")
	isArg := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, ErrInvalidArgument) {
			t.Fatalf("%s: err = %v, want ErrInvalidArgument", what, err)
		}
	}
	isArg("Save with a NUL", c.Save(nul))
	_, err := c.SaveWithProgress(nul, func(uint64) { t.Error("progress called") })
	isArg("SaveWithProgress with a NUL", err)
	_, err = Load(nul, Config{})
	isArg("Load with a NUL", err)
	_, err = c.LoadInto(nul)
	isArg("LoadInto with a NUL", err)
	if _, err := os.Stat(filepath.Join(dir, "a")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("a save with a NUL in its path wrote the path up to the NUL")
	}
	isArg("Save to an empty path", c.Save(""))
	isArg("Save to /", c.Save("/"))
	_, err = Load("", Config{})
	isArg("Load of an empty path", err)
	_, err = c.LoadInto("")
	isArg("LoadInto of an empty path", err)
}

func TestSnapshotClosedCache(t *testing.T) {
	path := snapPath(t)
	c, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Save(path); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := c.Save(path); !errors.Is(err, ErrClosed) {
		t.Fatalf("Save on a closed cache: %v", err)
	}
	if _, err := c.SaveWithProgress(path, func(uint64) {}); !errors.Is(err, ErrClosed) {
		t.Fatalf("SaveWithProgress on a closed cache: %v", err)
	}
	if _, err := c.LoadInto(path); !errors.Is(err, ErrClosed) {
		t.Fatalf("LoadInto on a closed cache: %v", err)
	}
}

// Load checks its Config as New does, before it opens the file.
func TestSnapshotLoadBadConfig(t *testing.T) {
	src := newCache(t, Config{})
	fillNumbered(t, src, 10)
	path := snapPath(t)
	if err := src.Save(path); err != nil {
		t.Fatal(err)
	}
	for _, cfg := range []Config{
		{MaxEntries: -1},
		{DefaultTTL: -time.Second},
		{MisusePolicy: MisuseAbort},
		{Shards: 3},
	} {
		c, err := Load(path, cfg)
		var e *Error
		if c != nil || !errors.Is(err, ErrInvalidConfig) || !errors.As(err, &e) || e.Op != "Load" {
			t.Fatalf("Load with %+v: %v, %v", cfg, c, err)
		}
	}
	// Bad config is reported even for a missing file.
	if _, err := Load(path+".missing", Config{MaxBytes: -1}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Load of a missing file with a bad config: %v", err)
	}
}

// A bounded cache loaded from a bigger snapshot keeps within its bound.
func TestSnapshotLoadBounded(t *testing.T) {
	src := newCache(t, Config{})
	fillNumbered(t, src, 5000)
	path := snapPath(t)
	if err := src.Save(path); err != nil {
		t.Fatal(err)
	}
	c, rep, err := LoadWithReport(path, Config{MaxEntries: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Len() > 1000 || rep.Records != 5000 || rep.Loaded != 5000 {
		t.Fatalf("Len %d, report %+v", c.Len(), rep)
	}
}

// Exclusive mode: LoadInto is a write, so it fails while another goroutine
// holds the write flag, changing nothing.
func TestSnapshotExclusiveLoadIntoCollides(t *testing.T) {
	src := newCache(t, Config{})
	fillNumbered(t, src, 100)
	path := snapPath(t)
	if err := src.Save(path); err != nil {
		t.Fatal(err)
	}
	c := newCache(t, Config{Mode: Exclusive})
	release, err := c.WithLabel("holder").debugHoldWrite([]byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.WithLabel("loader").LoadInto(path)
	if rerr := release(); rerr != nil {
		t.Fatal(rerr)
	}
	var e *Error
	if !errors.Is(err, ErrConcurrentWrite) || !errors.As(err, &e) || e.Holder != "holder" || e.Collider != "loader" {
		t.Fatalf("LoadInto during a write: %v", err)
	}
	if c.Len() != 0 {
		t.Fatalf("the refused LoadInto stored %d entries", c.Len())
	}
	if _, err := c.LoadInto(path); err != nil {
		t.Fatal(err)
	}
	checkNumbered(t, c, 100)
}

// The stress sizes (MAPCACHE_GO_STRESS=1, make stress-go): 10 million entries,
// and a value of MaxValueLen.
func TestSnapshotStress10M(t *testing.T) {
	if os.Getenv("MAPCACHE_GO_STRESS") == "" {
		t.Skip("10M-entry round trip: MAPCACHE_GO_STRESS=1 (make stress-go)")
	}
	const n = 10_000_000
	c := newCache(t, Config{InitialCapacity: n})
	fillNumbered(t, c, n)
	path := snapPath(t)
	rep, err := c.SaveWithProgress(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != n {
		t.Fatalf("saved %d records", rep.Records)
	}
	warm, err := Load(path, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer warm.Close()
	checkNumbered(t, warm, n)
}

func TestSnapshotStressMaxValue(t *testing.T) {
	if os.Getenv("MAPCACHE_GO_STRESS") == "" {
		t.Skip("a MaxValueLen value: MAPCACHE_GO_STRESS=1 (make stress-go)")
	}
	c := newCache(t, Config{})
	big := make([]byte, MaxValueLen)
	for i := 0; i < len(big); i += 4093 {
		big[i] = byte(i / 4093)
	}
	big[len(big)-1] = 0xEE
	if err := c.Set([]byte("big"), big); err != nil {
		t.Fatal(err)
	}
	path := snapPath(t)
	if err := c.Save(path); err != nil {
		t.Fatal(err)
	}
	c.Close()
	warm, err := Load(path, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer warm.Close()
	clear(big)
	got, ok, err := warm.AppendGet(big[:0], []byte("big")) // into big's memory: no second GiB
	if err != nil || !ok || len(got) != MaxValueLen || got[len(got)-1] != 0xEE {
		t.Fatalf("the MaxValueLen value came back as %d bytes, %v, %v", len(got), ok, err)
	}
	for i := 0; i < len(got)-1; i++ {
		want := byte(0)
		if i%4093 == 0 {
			want = byte(i / 4093)
		}
		if got[i] != want {
			t.Fatalf("byte %d of the MaxValueLen value is %d, want %d", i, got[i], want)
		}
	}
}

// A save that replaces a regular file gives the new file the replaced file's
// permission bits (a snapshot kept 0600 stays 0600), whatever the umask
// would give a new file; a symbolic link's target is what is kept.
func TestSaveKeepsReplacedPermissions(t *testing.T) {
	c := newCache(t, Config{})
	if err := c.SetString("k", "v"); err != nil {
		t.Fatal(err)
	}
	path := snapPath(t)
	if err := c.Save(path); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []fs.FileMode{0o600, 0o640, 0o604} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		if err := c.Save(path); err != nil {
			t.Fatal(err)
		}
		if got := permOf(t, path); got != mode {
			t.Fatalf("a save over a %#o file made a %#o file", mode, got)
		}
	}
	link := filepath.Join(filepath.Dir(path), "link.snap")
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c.Save(link); err != nil {
		t.Fatal(err)
	}
	if got := permOf(t, path); got != 0o600 {
		t.Fatalf("a save through a link to a 0600 file made it %#o", got)
	}
}

// permOf is the permission bits of the file at path.
func permOf(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// Load takes its shared flock without waiting: a file under an exclusive
// flock (here of another open file of this process) fails at once at the
// Step "lock" with EAGAIN, and loads once the lock is gone.
func TestLoadDoesNotWaitForTheLock(t *testing.T) {
	c := newCache(t, Config{})
	if err := c.SetString("k", "v"); err != nil {
		t.Fatal(err)
	}
	path := snapPath(t)
	if err := c.Save(path); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Skipf("flock: %v", err)
	}
	done := make(chan error, 3)
	go func() {
		l, err := Load(path, Config{})
		if l != nil {
			l.Close()
		}
		done <- err
		_, _, err = LoadWithReport(path, Config{})
		done <- err
		_, err = c.LoadInto(path)
		done <- err
	}()
	for _, op := range []string{"Load", "LoadWithReport", "LoadInto"} {
		select {
		case err := <-done:
			var e *IOError
			if !errors.As(err, &e) || e.Op != op || e.Step != "lock" || e.Errno != syscall.EAGAIN || !errors.Is(err, syscall.EWOULDBLOCK) {
				t.Fatalf("%s of an exclusively locked file = %#v, want an *IOError at Step lock with EAGAIN", op, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s of an exclusively locked file is waiting for the lock", op)
		}
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_UN); err != nil {
		t.Fatal(err)
	}
	if _, err := c.LoadInto(path); err != nil {
		t.Fatalf("LoadInto after the lock was released = %v", err)
	}
}
