//go:build cgo

package mapcache

import (
	"runtime"
	"runtime/cgo"
	"strings"
)

// Snapshots: Save, SaveWithProgress, Load, LoadWithReport, LoadInto (see
// "Snapshots" in the package documentation, mapcache.go).

// SaveReport is what a save did.
type SaveReport struct {
	Records uint64 // records written: the cache's live entries
	Blocks  uint64 // blocks of records written (about 1 MiB each)
	Bytes   uint64 // bytes of the file
	Expired uint64 // entries found expired during the save and left out
}

// LoadReport is what a load did.
type LoadReport struct {
	Records uint64 // records in the file
	// Loaded counts the records stored in the cache (inserted or replacing a
	// value). A bounded cache may have evicted some of them again as later
	// ones arrived.
	Loaded uint64
	// Replaced counts, of those, the records that replaced a value the cache
	// held (LoadInto).
	Replaced uint64
	Expired  uint64 // records left out because their expiry had passed
	// TooLarge counts records left out because their entry is larger than a
	// shard's share of Config.MaxBytes.
	TooLarge uint64
	Bytes    uint64 // bytes of the file
}

// Save writes the cache's entries to a snapshot file at path, replacing any
// file there atomically; the new file gets the permission bits of the file
// it replaces (and its owner and group where the process may set them). It
// is SaveWithProgress without a progress function and report; see there for
// what a save promises and every error.
func (c *Cache) Save(path string) error {
	_, err := c.save("Save", path, nil)
	return err
}

// SaveWithProgress writes the cache's entries to a snapshot file at path,
// replacing any file there atomically, and returns what it wrote.
//
// The records go to a temporary file in path's directory
// (.<name>.<pid>-<id>.tmp, name cut short to fit 255 bytes), which is
// fsynced and renamed over path, and the directory is fsynced: a crash at any
// moment leaves either the previous file or the complete new one at path, and
// a save that fails leaves the previous file as it was and removes its
// temporary file. path is handed to the OS as
// it is (relative to the working directory, or absolute). Only a regular
// file is replaced: a path that names a directory, a device, a FIFO or a
// socket is an ErrIO error before anything is written, and a symbolic link
// is followed (the file it leads to is replaced; one that leads to no file
// is refused).
//
// Access. A save that replaces a regular file gives the new file the
// replaced file's permission bits (mode & 0o777: a snapshot kept 0600 stays
// 0600, rather than getting a new file's 0666 less the umask), set on the
// temporary file before any record is written. It also gives the new file
// the replaced file's owner and group where the process may set them (root
// may set both; another process, a group it belongs to). That part is best
// effort: where the process may not, the new file is the saver's, as after
// any rename. With a symbolic link, it is the file the link leads to whose
// access is kept. A save to a path with no file yet creates one with a new
// file's mode, owned by the saver.
//
// Consistency. Other goroutines keep reading and writing while a save runs:
// each shard of the cache is locked only while its entries' pointers are
// copied, never for the file I/O. Each key's record holds the value the key
// had at the moment its shard was copied, a moment during the save; shards
// are copied one after another, so the file is not one point-in-time image of
// the whole cache (a key written during the save may be saved with its old
// value or its new one, or be absent if it was inserted, or present if it was
// deleted, during the save). Entries expired at that moment are left out
// (SaveReport.Expired); the others keep their expiry as wall-clock time (see
// Load).
//
// progress, if not nil, is called with the bytes written to the file so far,
// after each block of records (about every MiB) and once at the end with the
// file's length, never decreasing (the last value may repeat the one before),
// so that a program can show a progress bar. It runs on a goroutine of its own
// while the save waits for it, with no lock of the cache held: it may use the
// cache (its writes may or may not be in the file). Keep it short: while it
// runs, the save holds back the freeing of memory that writers of any cache
// retire (an epoch pin of the library). If progress panics,
// it is not called again, the save runs to its end (the file is complete and
// in place if the save succeeds), and SaveWithProgress then panics with the
// same value instead of returning; if progress calls runtime.Goexit (t.Fatal
// in a test), SaveWithProgress calls runtime.Goexit in the same way. A panic
// of progress that no one recovers prints progress's own stack (the goroutine
// it ran on, down to the panic) before SaveWithProgress's: the report starts
// "panic: mapcache: the progress function of SaveWithProgress panicked: ..."
// with that stack, then "[recovered]" and "panic: <the value>"; a recover of
// the caller's gets the value itself.
//
// Thread-safety: any goroutine, concurrently with any other call on the
// cache; two saves to the same path may run at once (the last rename wins,
// and each file is complete). In Exclusive mode a save is a read: it fails
// with ErrConcurrentReadWrite when another goroutine writes while a shard is
// copied, and leaves the previous file intact.
//
// Errors (nothing is saved; the previous file at path is intact):
//   - ErrInvalidArgument: path is empty, contains a NUL byte (checked before
//     the library is called), or names no file (e.g. "/" or a path ending in
//     "/..").
//   - *IOError (ErrIO) at the Step "stat", before anything is written: path
//     names a directory (Errno EISDIR), another file that is not a regular
//     file, or a symbolic link that leads to no file (both Errno 0: the
//     library's refusal, not an OS error), or goes through a file that is not
//     a directory (ENOTDIR).
//   - *IOError (ErrIO) at a later Step: creating the temporary file (in
//     path's directory: an ENOENT there, fs.ErrNotExist, is about that
//     directory or that file, never about path, which need not exist) or
//     giving it the replaced file's permission bits (both Step "create"),
//     writing, fsync, rename or the fsync of the directory failed, e.g. a
//     read-only or full directory; it unwraps to the OS's syscall.Errno
//     (errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.ENOSPC)).
//   - ErrClosed, ErrConcurrentReadWrite (Exclusive mode), ErrNoMemory,
//     ErrInternal.
func (c *Cache) SaveWithProgress(path string, progress func(bytesWritten uint64)) (SaveReport, error) {
	return c.save("SaveWithProgress", path, progress)
}

func (c *Cache) save(op, path string, progress func(uint64)) (SaveReport, error) {
	if err := checkPath(op, path); err != nil {
		return SaveReport{}, err
	}
	co := c.core()
	if !co.acquire() {
		return SaveReport{}, closedErr(op)
	}
	var sp *saveProgress
	var h cgo.Handle // 0: no progress function
	if progress != nil {
		sp = &saveProgress{fn: progress}
		h = cgo.NewHandle(sp)
	}
	rep, r := cSave(co.h, labelPtr(c.label), path, h)
	if h != 0 {
		h.Delete()
	}
	co.release()
	if sp != nil {
		switch {
		case sp.panicked:
			repanic("the progress function of "+op, sp.panicValue, sp.panicStack)
		case sp.exited:
			runtime.Goexit()
		}
	}
	if r.st != stOK {
		return SaveReport{}, snapshotError(op, path, r)
	}
	return rep, nil
}

// saveProgress is a save's progress function, as its C callback sees it.
type saveProgress struct {
	fn         func(uint64)
	panicked   bool // fn panicked with panicValue; it is not called again
	panicValue any
	panicStack []byte // fn's goroutine's stack when it panicked
	exited     bool   // fn called runtime.Goexit; it is not called again
}

// report calls the progress function with n, on a goroutine of its own (see
// runCallback), unless an earlier call panicked or exited.
func (p *saveProgress) report(n uint64) {
	if p.panicked || p.exited {
		return
	}
	o := runCallback(func() { p.fn(n) })
	p.panicked, p.panicValue, p.panicStack, p.exited = o.panicked, o.value, o.stack, o.exited
}

// Load creates a cache configured by cfg holding the snapshot at path (a file
// written by Save in this or any other host of the library, of this or an
// older format version). Close it as a cache from New. It is LoadWithReport
// without the report; see there for the file's handling and every error
// (among them: a file under another process's exclusive flock fails at once
// with an *IOError at the Step "lock", Errno EAGAIN, rather than waiting).
func Load(path string, cfg Config) (*Cache, error) {
	c, _, err := load("Load", path, cfg)
	return c, err
}

// LoadWithReport creates a cache configured by cfg holding the snapshot at
// path, and reports what it loaded.
//
// The file is mapped read-only under a shared advisory lock (flock, tried
// without waiting: see Errors), and the whole of it is validated (every
// length, count and offset against the file's size, every checksum) before
// the cache is returned; each block is copied out of the mapping before it is
// checked and used, so a file changed under the load cannot make it use
// unchecked bytes. What remains: a process
// that ignores the advisory lock and truncates the file during the load makes
// this process receive SIGBUS, which kills it (Save never modifies an
// existing file; it renames a new one over it).
//
// Records whose wall-clock expiry has passed are left out
// (LoadReport.Expired); the others expire when their saved expiry comes (see
// Snapshots in the package documentation for the wall time of a cache with
// Config.ManualClock). The cache is sized for the snapshot
// up front (cfg.InitialCapacity is raised to the file's record count). A
// bounded cache (cfg.MaxEntries, cfg.MaxBytes) smaller than the snapshot
// keeps what its eviction policy keeps as the records arrive in file order;
// records larger than a shard's share of MaxBytes are left out
// (LoadReport.TooLarge).
//
// Thread-safety: any goroutine.
//
// Errors (no cache is returned):
//   - ErrInvalidArgument: path is empty or contains a NUL byte.
//   - *CorruptError (ErrCorrupt): the file is damaged, truncated, appended
//     to, not a snapshot, or of a newer format version; Offset says where.
//   - *IOError (ErrIO): the file could not be opened, locked, examined or
//     mapped; a missing file is errors.Is(err, fs.ErrNotExist). A path that
//     names no regular file fails at once, at the Step "open": a directory
//     with EISDIR, a FIFO (never waited on for a writer), a device or a
//     socket with Errno 0 and the Message "snapshot open of <path>: not a
//     regular file (a FIFO)" or the like. The shared lock is tried without
//     waiting: if another process (or another open file of this one) holds
//     an exclusive flock on the file, the call fails at once at the Step
//     "lock" with Errno EAGAIN (syscall.EWOULDBLOCK, the same value on
//     Linux). A program that coordinates with writers through flock must
//     retry.
//   - ErrInvalidConfig (cfg as for New), ErrABIMismatch, ErrNoMemory,
//     ErrInternal.
func LoadWithReport(path string, cfg Config) (*Cache, LoadReport, error) {
	return load("LoadWithReport", path, cfg)
}

func load(op, path string, cfg Config) (*Cache, LoadReport, error) {
	if err := checkPath(op, path); err != nil {
		return nil, LoadReport{}, err
	}
	if err := checkConfig(op, cfg); err != nil {
		return nil, LoadReport{}, err
	}
	h, rep, r := cLoad(path, cfg)
	if r.st != stOK {
		return nil, LoadReport{}, snapshotError(op, path, r)
	}
	return newCacheOf(h, cfg), rep, nil
}

// LoadInto loads the snapshot at path into the cache and reports what it
// loaded: each record overwrites the value of the key it names, as Set would
// (with the record's saved expiry instead of Config.DefaultTTL); keys the
// snapshot does not name are left alone. The file is validated whole first,
// as by LoadWithReport (see there for the file's handling, expiry and
// bounds): a bad file changes nothing. Only ErrNoMemory while the records
// are stored leaves the records stored until then.
//
// Thread-safety: any goroutine, concurrently with any other call on the
// cache: each shard takes its records in chunks of a few thousand under its
// lock, so other writers wait at most that long, and may see some of the
// records before LoadInto returns. In Exclusive mode the load is one write:
// it fails with ErrConcurrentWrite, changing nothing, if another goroutine
// is writing.
//
// Errors (the cache is unchanged, except as said for ErrNoMemory):
//   - ErrInvalidArgument: path is empty or contains a NUL byte.
//   - *CorruptError (ErrCorrupt), with the offset of what failed its check.
//   - *IOError (ErrIO): a missing file is errors.Is(err, fs.ErrNotExist);
//     a file another process holds an exclusive flock on fails at once, at
//     the Step "lock" with Errno EAGAIN (syscall.EWOULDBLOCK), as for
//     LoadWithReport.
//   - ErrClosed, ErrConcurrentWrite (Exclusive mode), ErrNoMemory,
//     ErrInternal.
func (c *Cache) LoadInto(path string) (LoadReport, error) {
	const op = "LoadInto"
	if err := checkPath(op, path); err != nil {
		return LoadReport{}, err
	}
	co := c.core()
	if !co.acquire() {
		return LoadReport{}, closedErr(op)
	}
	rep, r := cLoadInto(co.h, labelPtr(c.label), path)
	co.release()
	if r.st != stOK {
		return LoadReport{}, snapshotError(op, path, r)
	}
	return rep, nil
}

// checkPath refuses a path the C ABI cannot carry: C strings end at the first
// NUL byte, so a path with one would name another file.
func checkPath(op, path string) error {
	if strings.IndexByte(path, 0) >= 0 {
		return argError(op, "the snapshot path contains a NUL byte")
	}
	return nil
}
