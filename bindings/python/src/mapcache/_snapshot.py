"""What :meth:`mapcache.Cache.save`, :meth:`~mapcache.Cache.load` and
:meth:`~mapcache.Cache.load_into` share: the path as the C ABI takes it, the
reports, the save's progress callback, and the exception for a failed call.

The progress callback is one ctypes callback for every save (kept alive by
this module), like the loader of ``get_or_load`` (see :mod:`mapcache._load`):
a save registers its Python callable under a fresh ctx value for the length of
the call, and the callback, which the library runs on the saving thread with
the GIL taken by ctypes, finds it there. An exception the callable raises is
kept and raised once the save has returned (the library's callback cannot
fail); the callable is not called again during that save.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Union

from . import _lib, _shutdown, _swallowed
from ._errors import (
    CorruptSnapshotError,
    InvalidArgumentError,
    MapCacheError,
    error_for_status,
    snapshot_io_error,
)

__all__ = ["SaveReport", "LoadReport", "PathLike", "fs_path", "calls", "new_ctx", "error",
           "run_progress", "NO_PROGRESS"]

#: A path: ``str``, ``bytes`` or an ``os.PathLike`` of either.
PathLike = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]


@dataclass(frozen=True)
class SaveReport:
    """What :meth:`mapcache.Cache.save` wrote.

    Attributes:
        records: records written: the cache's live entries at the save.
        blocks: blocks of records written (about 1 MiB each).
        bytes: bytes of the file.
        expired: entries found expired during the save and left out.
    """

    records: int = 0
    blocks: int = 0
    bytes: int = 0
    expired: int = 0

    @classmethod
    def _of(cls, raw: "_lib.mapcache_save_report") -> "SaveReport":
        return cls(records=raw.records, blocks=raw.blocks, bytes=raw.bytes, expired=raw.expired)


@dataclass(frozen=True)
class LoadReport:
    """What :meth:`mapcache.Cache.load_into` or :meth:`mapcache.Cache.load_with_report` did.

    Attributes:
        records: records in the file.
        loaded: records stored in the cache (inserted or replacing a value);
            a bounded cache may have evicted some of them again as later ones
            arrived.
        replaced: of those, records that replaced a value the cache held.
        expired: records left out because their expiry (wall-clock time) had
            passed.
        too_large: records left out because the entry is larger than a
            bounded cache's share of ``max_bytes`` for one shard.
        bytes: bytes of the file.
    """

    records: int = 0
    loaded: int = 0
    replaced: int = 0
    expired: int = 0
    too_large: int = 0
    bytes: int = 0

    @classmethod
    def _of(cls, raw: "_lib.mapcache_load_report") -> "LoadReport":
        return cls(records=raw.records, loaded=raw.loaded, replaced=raw.replaced,
                   expired=raw.expired, too_large=raw.too_large, bytes=raw.bytes)


def fs_path(path: Any) -> bytes:
    """``path`` as the NUL-terminated bytes the C ABI takes (``os.fsencode``:
    a ``str`` is encoded as the OS's functions would, undecodable bytes
    included). TypeError for anything that is not a path; a NUL in it raises
    :class:`InvalidArgumentError` (the library would read the path only up to
    it, and name another file)."""
    raw = os.fsencode(path)
    if b"\0" in raw:
        raise InvalidArgumentError(f"a snapshot path must not contain a NUL byte: {path!r}",
                                   _lib.E_INVALID_ARG)
    return raw


def error(st: int, path: Any, corrupt_offset: int = 0, os_errno: int = 0) -> MapCacheError:
    """The exception for status ``st`` of a snapshot call on ``path`` just made on
    this thread, with what its report holds."""
    message = _lib.last_error() or _lib.status_str(st)
    filename = os.fspath(path)
    if st == _lib.E_CORRUPT:
        return CorruptSnapshotError(message, st, corrupt_offset, filename)
    if st == _lib.E_IO:
        return snapshot_io_error(os_errno, message, filename)
    return error_for_status(st, message)


# The saves running now, by the ctx value passed to the library: (the
# callable, the list its exception goes to). Registered before the call and
# removed after it (one store, and ``calls.pop(ctx, None)`` first in a
# ``finally``: see mapcache._shutdown), so the callback, which runs during
# that call on its thread, always finds it.
calls: Dict[int, Any] = {}
_ids = itertools.count(1)


def new_ctx() -> int:
    """A fresh ctx value for one save (registers nothing)."""
    return next(_ids)


#: Tests only: called at the progress callback's entry, before its ``try``
#: (see ``_load._entry_hook``).
_entry_hook: Optional[Callable[[], None]] = None


@_swallowed.watch
def _run(ctx: Optional[int], bytes_written: int) -> None:
    """The ``mapcache_progress_fn`` (called by the library, with the GIL taken by ctypes)."""
    if _entry_hook is not None:
        _entry_hook()
    call = None
    try:  # first: see _load._run
        call = calls.get(ctx or 0)
        if call is None or call[1]:  # none registered (cannot happen), or it raised already
            return
        if not _shutdown.callbacks_allowed():  # exiting: let the save end soon (see _shutdown)
            return
        call[0](bytes_written)
    except BaseException as exc:  # raised by the save once it returns
        if call is None:
            _swallowed.keep(exc)
        else:
            call[1].append(exc)


#: The one callback every save with a progress callable goes through.
run_progress = _lib.PROGRESS_FN(_run)
#: The NULL callback, for a save without one.
NO_PROGRESS = _lib.PROGRESS_FN()
