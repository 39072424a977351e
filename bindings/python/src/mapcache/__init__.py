"""mapcache: Python bindings (ctypes) for libmapcache, an embedded key/value cache engine.

>>> import mapcache
>>> with mapcache.Cache(initial_capacity=1000) as c:
...     c["user:1"] = b"alice"
...     c[b"user:1"]
b'alice'

The shared library is the one named by ``MAPCACHE_LIBRARY``, or else the one
the wheel put in this package's directory (see :mod:`mapcache._lib`).
Every call releases the GIL while it runs in the library, except a single get
(``cache[key]``, ``get()``): a sub-microsecond lookup that keeps the GIL so that
the library can build the resulting ``bytes`` itself (see :mod:`mapcache._lib`).
"""

from __future__ import annotations

from pathlib import Path

from . import _lib
from ._cache import Cache, KeyLike, ValueLike, set_thread_label
from ._snapshot import LoadReport, SaveReport
from ._stats import Stats
from ._gpu import GpuStatus, gpu_status
from ._errors import (
    BufferTooSmallError,
    CacheClosedError,
    ConcurrentReadWriteError,
    ConcurrentWriteError,
    CorruptSnapshotError,
    GpuError,
    InternalError,
    InvalidArgumentError,
    InvalidConfigError,
    InvalidHandleError,
    KeyTooLongError,
    LoaderError,
    MapCacheError,
    MisuseError,
    OutOfMemoryError,
    SnapshotIOError,
    TooLargeError,
    ValueTooLongError,
)
from ._lib import ABI_VERSION, MAX_KEY_LEN, MAX_VALUE_LEN, LibraryNotFoundError

__all__ = [
    "Cache",
    "Stats",
    "SaveReport",
    "LoadReport",
    "GpuStatus",
    "gpu_status",
    "set_thread_label",
    "KeyLike",
    "ValueLike",
    "library_version",
    "abi_version",
    "library_path",
    "ABI_VERSION",
    "MAX_KEY_LEN",
    "MAX_VALUE_LEN",
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
    "LibraryNotFoundError",
]

__version__ = "0.1.0"


def library_version() -> str:
    """The loaded library's version (``mapcache_version()``), e.g. ``"0.1.0"``."""
    return _lib.version()


def abi_version() -> int:
    """The loaded library's C ABI version (``mapcache_abi_version()``)."""
    return _lib.abi_version()


def library_path() -> Path:
    """The path the library was loaded from."""
    return _lib.LIBRARY_PATH
