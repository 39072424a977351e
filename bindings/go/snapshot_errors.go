//go:build cgo

package mapcache

import (
	"fmt"
	"strings"
	"syscall"
)

// CorruptError is the error of a load (Load, LoadWithReport, LoadInto) whose
// file is not a valid snapshot: damaged (a checksum, length, count or offset
// that does not check out), truncated, appended to, not a snapshot at all, or
// written in a newer format version than this library reads.
// errors.Is(err, ErrCorrupt) is true for it. Nothing was loaded: Load returns
// no cache and LoadInto leaves its cache unchanged.
type CorruptError struct {
	Op   string // the method, e.g. "Load"
	Path string // the path it was given
	// Offset is the byte offset in the file of the field or structure that
	// failed its check.
	Offset uint64
	// Message is the library's: "corrupt snapshot at byte offset N: <what
	// was wrong>".
	Message string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("mapcache: %s %s: %s", e.Op, e.Path, e.Message)
}

// Is makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

// IOError is the error of a snapshot call (Save, SaveWithProgress, Load,
// LoadWithReport, LoadInto) whose file operation failed. errors.Is(err, ErrIO)
// is true for it, and it unwraps to Errno, so that errors.Is(err,
// fs.ErrNotExist) is true for a missing file, errors.Is(err,
// fs.ErrPermission) or errors.Is(err, syscall.EACCES) for a directory the
// process may not write, and so on. (os.IsNotExist and its kin do not look
// through wrapped errors; use errors.Is.)
//
// For a save, the file of a "create" error (and of "write" and "fsync") is
// the temporary file in Path's directory, not Path: a "create" that fails
// with ENOENT (fs.ErrNotExist) means that directory is missing or refuses new
// files (Save("/proc/version") fails so, though /proc/version exists), not
// that Path is missing; a save never needs Path to exist.
//
// A save that fails leaves the previous file at Path as it was (and removes
// its temporary file); a load that fails loads nothing.
type IOError struct {
	Op   string // the method, e.g. "Save"
	Path string // the path it was given
	// Step is the operation that failed, as the library names it. For a
	// save, in the order it takes them: "stat" (the check of Path before
	// anything is written: Path names a directory, Errno EISDIR; or no
	// regular file, a FIFO, a device or a socket, Errno 0; or a symbolic link
	// that leads to no file, Errno 0; or a path through a file, as in
	// "file/sub", Errno ENOTDIR), "create" (the temporary file,
	// .<name>.<pid>-<id>.tmp, in Path's directory, or giving it the
	// replaced file's permission bits), "write", "fsync", "rename", "fsync
	// directory". For a load: "open", "stat", "lock" (Errno EAGAIN: another
	// open file holds an exclusive flock on it; the load does not wait),
	// "mmap". Empty if the message names none.
	Step string
	// Errno is the OS's error number for the failure; 0 when the library
	// refused the path itself, without a failed system call to report
	// (Unwrap then returns nil, so errors.Is(err, fs.ErrNotExist) is false):
	// a load of a path that names no regular file, and a save to a path that
	// names no regular file or is a symbolic link that leads to no file (the
	// Message quotes the OS's ENOENT from following the link, but Errno is 0:
	// the refusal is the library's, and Load of the same path reports ENOENT
	// from its open).
	Errno syscall.Errno
	// Message is the library's: "snapshot <step> of <file>: <the OS's
	// message> (os error N)", where file is the one the step worked on (the
	// temporary file for create, write and fsync, the directory for fsync
	// directory); for a path the library refused (Errno 0), "snapshot
	// <step> of <path>: " and the reason, e.g. "not a regular file (a FIFO)"
	// (or a character device, a block device, a socket, a directory) or, for
	// a save, "a symbolic link that leads to no file (...): nothing to
	// replace".
	Message string
}

func (e *IOError) Error() string { return fmt.Sprintf("mapcache: %s: %s", e.Op, e.Message) }

// Is makes errors.Is(err, ErrIO) true.
func (e *IOError) Is(target error) bool { return target == ErrIO }

// Unwrap returns Errno (nil when it is 0).
func (e *IOError) Unwrap() error {
	if e.Errno == 0 {
		return nil
	}
	return e.Errno
}

// snapshotError builds the error of a failed snapshot call on path.
func snapshotError(op, path string, r snapResult) error {
	switch r.st {
	case stCorrupt:
		return &CorruptError{Op: op, Path: path, Offset: r.offset, Message: r.msg}
	case stIO:
		return &IOError{Op: op, Path: path, Step: ioStep(r.msg), Errno: syscall.Errno(r.errno), Message: r.msg}
	}
	return newError(op, r.st, r.msg)
}

// ioStep extracts the step from the library's I/O message, "snapshot <step>
// of <file>: ...".
func ioStep(msg string) string {
	rest, ok := strings.CutPrefix(msg, "snapshot ")
	if !ok {
		return ""
	}
	step, _, ok := strings.Cut(rest, " of ")
	if !ok {
		return ""
	}
	return step
}
