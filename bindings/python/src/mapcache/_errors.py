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
    └── LoaderError                                   MAPCACHE_E_LOADER

``LoaderError`` is raised only when a loader's failure reaches a caller
without the exception it raised (see :meth:`~mapcache.Cache.get_or_load`,
which re-raises the loader's own exception); it carries the loader status.

``BufferTooSmallError`` never escapes the :class:`~mapcache.Cache` API (the
binding grows its buffer and retries); it exists so every status has a class.
"""

from __future__ import annotations

import re
from typing import Dict, Optional, Type

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
    "error_for_status",
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


# "concurrent map writes: 'B' collided with a write in progress by 'A'"
_MISUSE_RE = re.compile(r"'(?P<collider>.*)' collided with a write in progress by '(?P<holder>.*)'")


class MisuseError(MapCacheError):
    """Exclusive mode detected two threads overlapping where only one may act.

    Attributes:
        holder: the label of the thread that was writing (``'A'`` in the message),
            or ``None`` when the message could not be parsed.
        collider: the label of the thread that collided with it (``'B'``), the
            one that received this exception, or ``None``.
    """

    def __init__(self, message: str, status: Optional[int] = None) -> None:
        super().__init__(message, status)
        m = _MISUSE_RE.search(message)
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
    cls = _BY_STATUS.get(status, MapCacheError)
    return cls(message, status)
