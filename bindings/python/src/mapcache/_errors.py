"""The exception hierarchy: one class per ``mapcache_status`` error code.

::

    MapCacheError
    ├── InvalidArgumentError      (also ValueError)   MAPCACHE_E_INVALID_ARG
    ├── KeyTooLongError           (also ValueError)   MAPCACHE_E_KEY_TOO_LONG
    ├── ValueTooLongError         (also ValueError)   MAPCACHE_E_VALUE_TOO_LONG
    ├── InvalidConfigError        (also ValueError)   MAPCACHE_E_INVALID_CONFIG
    ├── BufferTooSmallError                           MAPCACHE_E_BUFFER_TOO_SMALL
    ├── MisuseError                                   (exclusive-mode misuse)
    │   ├── ConcurrentWriteError                      MAPCACHE_E_CONCURRENT_WRITE
    │   └── ConcurrentReadWriteError                  MAPCACHE_E_CONCURRENT_READ_WRITE
    ├── OutOfMemoryError          (also MemoryError)  MAPCACHE_E_NO_MEMORY
    ├── InvalidHandleError                            MAPCACHE_E_INVALID_HANDLE
    │   └── CacheClosedError      (also ValueError)   use of a closed Cache
    ├── InternalError                                 MAPCACHE_E_INTERNAL
    ├── TooLargeError             (also ValueError)   MAPCACHE_E_TOO_LARGE
    ├── LoaderError                                   MAPCACHE_E_LOADER
    ├── CorruptSnapshotError                          MAPCACHE_E_CORRUPT
    ├── SnapshotIOError           (also OSError)      MAPCACHE_E_IO
    │   └── one class per OSError subclass, e.g. also FileNotFoundError
    └── GpuError                                      MAPCACHE_E_GPU

``LoaderError`` is raised only when a loader's failure reaches a caller
without the exception it raised (see :meth:`~mapcache.Cache.get_or_load`,
which re-raises the loader's own exception); it carries the loader status.

A snapshot's I/O failure (:meth:`~mapcache.Cache.save`,
:meth:`~mapcache.Cache.load`, :meth:`~mapcache.Cache.load_into`) is a
:class:`SnapshotIOError`, which is both a :class:`MapCacheError` and an
``OSError`` with the OS's ``errno``, ``strerror`` and the ``filename`` the
call was given. Its class also derives from the ``OSError`` subclass that
``OSError(errno, ...)`` itself picks for that errno (``ENOENT``:
``FileNotFoundError``, ``EACCES``: ``PermissionError``, ``EAGAIN``:
``BlockingIOError``, ...), so ``except FileNotFoundError``, ``except
OSError`` and ``except MapCacheError`` all catch it. Those combined classes
(``SnapshotFileNotFoundError`` and so on) are made here, one per subclass;
catch them by their two bases rather than by their names.

``BufferTooSmallError`` never escapes the :class:`~mapcache.Cache` API (the
binding grows its buffer and retries); it exists so every status has a class.
"""

from __future__ import annotations

import errno as _errno
import os
import re
from typing import Any, Dict, Optional, Type

from . import _lib

__all__ = [
    "MapCacheError",
    "InvalidArgumentError",
    "KeyTooLongError",
    "ValueTooLongError",
    "InvalidConfigError",
    "BufferTooSmallError",
    "MisuseError",
    "ConcurrentWriteError",
    "ConcurrentReadWriteError",
    "OutOfMemoryError",
    "InvalidHandleError",
    "CacheClosedError",
    "InternalError",
    "TooLargeError",
    "LoaderError",
    "CorruptSnapshotError",
    "SnapshotIOError",
    "GpuError",
    "error_for_status",
    "snapshot_io_error",
]


class MapCacheError(Exception):
    """Base of every error reported by libmapcache.

    Attributes:
        status: the ``mapcache_status`` code (an ``int``).
        message: the library's message (``mapcache_last_error()``), or the
            binding's own when the error did not come from the library.
    """

    status: int = -1
    #: For an error of one key in a batch call: that key's position.
    index: Optional[int] = None

    def __init__(self, message: str, status: Optional[int] = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class InvalidArgumentError(MapCacheError, ValueError):
    """A NULL or out-of-range argument reached the library (``MAPCACHE_E_INVALID_ARG``)."""

    status = _lib.E_INVALID_ARG


class BufferTooSmallError(MapCacheError):
    """A caller buffer was too small (``MAPCACHE_E_BUFFER_TOO_SMALL``); handled internally."""

    status = _lib.E_BUFFER_TOO_SMALL


class KeyTooLongError(MapCacheError, ValueError):
    """The key is longer than ``MAX_KEY_LEN`` (65535) bytes (``MAPCACHE_E_KEY_TOO_LONG``)."""

    status = _lib.E_KEY_TOO_LONG


class ValueTooLongError(MapCacheError, ValueError):
    """The value is longer than ``MAX_VALUE_LEN`` (1 GiB) (``MAPCACHE_E_VALUE_TOO_LONG``)."""

    status = _lib.E_VALUE_TOO_LONG


# "concurrent map writes: 'B' collided with a write in progress by 'A'", the
# labels as they are (a newline included: DOTALL), the holder's last.
_MISUSE_SEPARATOR = "' collided with a write in progress by '"
_MISUSE_RE = re.compile(r"'(?P<collider>.*)" + re.escape(_MISUSE_SEPARATOR) + r"(?P<holder>.*)'\Z",
                        re.DOTALL)


class MisuseError(MapCacheError):
    """Exclusive mode detected two threads overlapping where only one may act.

    Attributes:
        holder: the label of the thread that was writing (``'A'`` in the message),
            or ``None`` when the message could not be parsed: also when a
            label holds the message's own words ``' collided with a write in
            progress by '``, which make the split ambiguous.
        collider: the label of the thread that collided with it (``'B'``), the
            one that received this exception, or ``None`` as for ``holder``.
    """

    def __init__(self, message: str, status: Optional[int] = None) -> None:
        super().__init__(message, status)
        m = _MISUSE_RE.search(message) if message.count(_MISUSE_SEPARATOR) == 1 else None
        self.holder: Optional[str] = m.group("holder") if m else None
        self.collider: Optional[str] = m.group("collider") if m else None

    @property
    def labels(self) -> tuple:
        """``(holder, collider)``."""
        return (self.holder, self.collider)


class ConcurrentWriteError(MisuseError):
    """Exclusive mode: another thread was writing (``MAPCACHE_E_CONCURRENT_WRITE``)."""

    status = _lib.E_CONCURRENT_WRITE


class ConcurrentReadWriteError(MisuseError):
    """Exclusive mode: a read overlapped a write (``MAPCACHE_E_CONCURRENT_READ_WRITE``)."""

    status = _lib.E_CONCURRENT_READ_WRITE


class OutOfMemoryError(MapCacheError, MemoryError):
    """An allocation failed; the map is unchanged (``MAPCACHE_E_NO_MEMORY``)."""

    status = _lib.E_NO_MEMORY


class InvalidHandleError(MapCacheError):
    """The handle was freed or foreign (``MAPCACHE_E_INVALID_HANDLE``)."""

    status = _lib.E_INVALID_HANDLE


class CacheClosedError(InvalidHandleError, ValueError):
    """The :class:`~mapcache.Cache` was closed (``close()`` or the ``with`` block ended)."""

    def __init__(self, message: str = "the cache is closed", status: Optional[int] = None) -> None:
        super().__init__(message, status)


class InvalidConfigError(MapCacheError, ValueError):
    """A configuration field is out of range (``MAPCACHE_E_INVALID_CONFIG``)."""

    status = _lib.E_INVALID_CONFIG


class InternalError(MapCacheError):
    """A bug in libmapcache, caught before it crossed the boundary (``MAPCACHE_E_INTERNAL``)."""

    status = _lib.E_INTERNAL


class TooLargeError(MapCacheError, ValueError):
    """A bounded cache: the entry is larger than its shard's share of ``max_bytes``,
    so it could never be held; nothing was changed (``MAPCACHE_E_TOO_LARGE``)."""

    status = _lib.E_TOO_LARGE


class LoaderError(MapCacheError):
    """A loader of :meth:`~mapcache.Cache.get_or_load` failed, and its exception
    is not available (``MAPCACHE_E_LOADER``).

    Attributes:
        loader_status: the status the loader returned to the library.
    """

    status = _lib.E_LOADER
    loader_status: Optional[int] = None


class CorruptSnapshotError(MapCacheError):
    """A snapshot file is damaged, truncated, appended to, not a snapshot, or of
    a newer format version (``MAPCACHE_E_CORRUPT``). A cache loaded into is
    unchanged.

    Attributes:
        offset: the byte offset in the file of the structure that failed its
            check (also named in the message, "corrupt snapshot at byte offset
            N: <what was wrong>"); ``None`` when the library did not report one.
        filename: the path the load was given (``os.fspath`` of it), or ``None``.
    """

    status = _lib.E_CORRUPT

    def __init__(self, message: str, status: Optional[int] = None, offset: Optional[int] = None,
                 filename: Any = None) -> None:
        super().__init__(message, status)
        self.offset = offset
        self.filename = filename


class SnapshotIOError(MapCacheError, OSError):
    """A file operation of a snapshot save or load failed (``MAPCACHE_E_IO``):
    creating, writing, fsyncing or renaming the file of a save, fsyncing its
    directory; opening, examining (fstat), locking or mapping the file of a
    load. A failed save leaves the previous file at its path intact, and a
    cache loaded into is unchanged.

    It is an ``OSError`` (``errno``, ``strerror``, ``filename``), and the
    class of each instance also derives from the ``OSError`` subclass that the
    errno maps to (``FileNotFoundError`` for ``ENOENT``, ``PermissionError``
    for ``EACCES``, ...; see the module docstring), so the usual ``except``
    clauses catch it.

    Attributes:
        errno: the OS's errno for the failed step; ``None`` when the OS gave none.
        strerror: ``os.strerror(errno)`` (the library's message when there is
            no errno).
        filename: the path the call was given (``os.fspath`` of it, ``str``
            or ``bytes``); the failing step may have been on the save's
            temporary file or on the directory, which ``message`` names.
        message: the library's message, also ``str(exc)``: "snapshot <step> of
            <path>: <OS message> (os error N)", where the step is one of
            create, write, fsync, rename, fsync directory, open, lock, stat,
            mmap. A load of a path that names no regular file: "snapshot open
            of <path>: not a regular file (a FIFO)" (or a character device, a
            block device, a socket), with errno ``None``; a directory's is an
            ``IsADirectoryError`` (``EISDIR``).
    """

    status = _lib.E_IO

    def __init__(self, errno: Optional[int], strerror: str, filename: Any = None,
                 message: Optional[str] = None) -> None:
        # The signature is OSError's (errno, strerror, filename), which pickling
        # relies on; MapCacheError's attributes are set here.
        OSError.__init__(self, errno, strerror, filename)
        self.message = message if message is not None else strerror

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> Any:
        return (type(self), (self.errno, self.strerror, self.filename, self.message))


class GpuError(MapCacheError):
    """A cache made with ``gpu="force"``: the GPU engine failed
    (``MAPCACHE_E_GPU``). The :class:`~mapcache.Cache` constructor raises it
    when the engine cannot load (no ``libcuda.so.1``, no CUDA device, the
    plugin ``libmapcache_cuda.so`` not found or refused; the message says
    which), and a write raises it when the GPU rebuild it triggered failed, in
    which case the write changed nothing. With ``gpu="auto"`` it is never
    raised: a failed GPU rebuild runs on the CPU instead."""

    status = _lib.E_GPU


def _combined_io_classes() -> Dict[Type[OSError], Type[SnapshotIOError]]:
    """``SnapshotIOError`` joined with each ``OSError`` subclass an errno maps to,
    made once, named ``Snapshot<subclass name>`` and kept in this module (so
    that their instances pickle)."""
    bases = {type(OSError(code, "")) for code in _errno.errorcode} - {OSError}
    combined: Dict[Type[OSError], Type[SnapshotIOError]] = {}
    for base in sorted(bases, key=lambda b: b.__name__):
        name = f"Snapshot{base.__name__}"
        cls = type(name, (SnapshotIOError, base), {
            "__module__": __name__,
            "__qualname__": name,
            "__doc__": f"A :class:`SnapshotIOError` that is also a ``{base.__name__}``.",
        })
        globals()[name] = cls
        combined[base] = cls
    return combined


_IO_CLASSES = _combined_io_classes()


def snapshot_io_error(os_errno: int, message: str, filename: Any = None) -> SnapshotIOError:
    """The :class:`SnapshotIOError` for ``os_errno`` (0: the OS gave none), of the
    class that also derives from the ``OSError`` subclass of that errno."""
    if not os_errno:
        return SnapshotIOError(None, message, filename, message)
    cls = _IO_CLASSES.get(type(OSError(os_errno, "")), SnapshotIOError)
    return cls(os_errno, os.strerror(os_errno), filename, message)


_BY_STATUS: Dict[int, Type[MapCacheError]] = {
    cls.status: cls
    for cls in (
        InvalidArgumentError,
        BufferTooSmallError,
        KeyTooLongError,
        ValueTooLongError,
        ConcurrentWriteError,
        ConcurrentReadWriteError,
        OutOfMemoryError,
        InvalidHandleError,
        InvalidConfigError,
        InternalError,
        TooLargeError,
        LoaderError,
        CorruptSnapshotError,
        GpuError,
    )
}


def error_for_status(status: int, message: Optional[str] = None) -> MapCacheError:
    """Build the exception for an error ``status``.

    ``message`` defaults to this thread's ``mapcache_last_error()``, so call it
    on the thread that made the failing call, right after it.
    """
    if message is None:
        message = _lib.last_error()
    if not message:
        message = _lib.status_str(status)
    if status == _lib.E_IO:  # without the errno the call's report holds
        return snapshot_io_error(0, message)
    cls = _BY_STATUS.get(status, MapCacheError)
    return cls(message, status)
