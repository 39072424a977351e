"""Loading ``libmapcache`` and declaring its C ABI (docs/C_API.md, ABI version 3).

Every foreign function's ``argtypes``/``restype`` is declared here, once.
The library is loaded with :class:`ctypes.CDLL`, which releases the GIL for
the duration of every foreign call (``PyDLL`` would not).

Where the shared library comes from, in order:

1. the ``MAPCACHE_LIBRARY`` environment variable (a path to the file; when it
   is set it must be right: there is no silent fallback);
2. the package's own directory, where the wheel puts it (``pip install
   ./bindings/python`` and ``make wheel`` build it into the package).

Nothing else is guessed: no directory above the package, no repository's
``target/``. When neither has the library the error says what was tried.
"""

from __future__ import annotations

import ctypes
import os
import sys
from ctypes import (
    POINTER,
    Structure,
    c_char_p,
    c_int32,
    c_int64,
    c_size_t,
    c_uint32,
    c_uint64,
    c_void_p,
)
from pathlib import Path
from typing import Any, List, Optional, Tuple

#: The ABI version this binding is written against (``MAPCACHE_ABI_VERSION``).
ABI_VERSION = 3

#: Status codes (``mapcache_status``).
OK = 0
NOT_FOUND = 1
E_INVALID_ARG = 2
E_BUFFER_TOO_SMALL = 3
E_KEY_TOO_LONG = 4
E_VALUE_TOO_LONG = 5
E_CONCURRENT_WRITE = 6
E_CONCURRENT_READ_WRITE = 7
E_NO_MEMORY = 8
E_INVALID_HANDLE = 9
E_INVALID_CONFIG = 10
E_INTERNAL = 11
E_TOO_LARGE = 12
E_LOADER = 13
E_CORRUPT = 14
E_IO = 15
E_GPU = 16

MAX_KEY_LEN = 65535
MAX_VALUE_LEN = 1 << 30

MODE_CONCURRENT = 0
MODE_EXCLUSIVE = 1
MISUSE_ERROR = 0
MISUSE_ABORT = 1
ENGINE_AUTO = 0
ENGINE_SINGLE = 1
ENGINE_PARALLEL = 2
CLOCK_SYSTEM = 0
CLOCK_MANUAL = 1
GPU_AUTO = 0
GPU_OFF = 1
GPU_FORCE = 2

if sys.platform == "darwin":
    LIBRARY_NAME = "libmapcache.dylib"
elif sys.platform == "win32":
    LIBRARY_NAME = "mapcache.dll"
else:
    LIBRARY_NAME = "libmapcache.so"


class LibraryNotFoundError(ImportError):
    """``libmapcache`` could not be found or loaded, or has the wrong ABI."""


class mapcache_config(Structure):
    """``struct mapcache_config``; new fields are only ever appended."""

    _fields_ = [
        ("struct_size", c_size_t),
        ("initial_capacity", c_uint64),
        ("shards", c_uint32),
        ("mode", c_uint32),
        ("misuse_policy", c_uint32),
        ("rehash_engine", c_uint32),
        ("seed", c_uint64),
        # ABI 3: the cache.
        ("max_entries", c_uint64),
        ("max_bytes", c_uint64),
        ("default_ttl_ms", c_uint64),
        ("clock", c_uint32),
        ("reserved", c_uint32),
        # The GPU engine.
        ("gpu_threshold", c_uint64),
        ("gpu_plugin_path", c_char_p),
        ("gpu_mode", c_uint32),
        ("reserved2", c_uint32),
    ]


class mapcache_stats(Structure):
    """``struct mapcache_stats``; the caller sets ``struct_size``, counters are only ever appended."""

    _fields_ = [("struct_size", c_size_t)] + [
        (name, c_uint64)
        for name in (
            "hits",
            "misses",
            "inserts",
            "updates",
            "deletes",
            "evictions",
            "rejections",
            "expirations",
            "load_successes",
            "load_failures",
            "load_time_ns",
            "grows",
            "entries",
            "bytes",
            "misuses",
        )
    ]


class mapcache_save_report(Structure):
    """``struct mapcache_save_report`` (48 bytes); the caller sets ``struct_size``."""

    _fields_ = [
        ("struct_size", c_size_t),
        ("records", c_uint64),
        ("blocks", c_uint64),
        ("bytes", c_uint64),
        ("expired", c_uint64),
        ("os_errno", c_int32),
        ("reserved", c_uint32),
    ]


class mapcache_load_report(Structure):
    """``struct mapcache_load_report`` (72 bytes); the caller sets ``struct_size``."""

    _fields_ = [
        ("struct_size", c_size_t),
        ("records", c_uint64),
        ("loaded", c_uint64),
        ("replaced", c_uint64),
        ("expired", c_uint64),
        ("too_large", c_uint64),
        ("bytes", c_uint64),
        ("corrupt_offset", c_uint64),
        ("os_errno", c_int32),
        ("reserved", c_uint32),
    ]


# Argument types, chosen for the cost of converting Python objects per call
# (ctypes calls each argtype's from_param on every call):
# - opaque handles and data pointers are c_void_p: it takes a ``bytes`` object
#   (its internal buffer), an integer address or a ctypes array in ~20 ns.
#   The binding never passes a ``str`` to them (c_void_p would turn it into a
#   wchar_t pointer).
# - size_t arguments are declared c_void_p as well: the same width and calling
#   convention as size_t wherever the two have the same size (checked here),
#   and c_void_p converts an ``int`` in ~20 ns where c_size_t takes ~120 ns.
#   A get passes two sizes: this is a third of the whole call's overhead.
# - the out-pointers of the single-key calls are integer addresses of
#   per-thread cells (c_void_p again; POINTER(...) would cost ~130 ns each);
#   the cold calls keep typed POINTER out-arguments.
_status = c_int32
_handle = c_void_p
_ptr = c_void_p
_size = c_void_p if ctypes.sizeof(c_void_p) == ctypes.sizeof(c_size_t) else c_size_t
_out = c_void_p
_size_p = POINTER(c_size_t)

#: ``typedef void (*mapcache_value_fn)(void *ctx, const uint8_t *value, size_t len)``
VALUE_FN = ctypes.CFUNCTYPE(None, c_void_p, c_void_p, c_size_t)
#: ``typedef void (*mapcache_debug_fn)(void *ctx)``
DEBUG_FN = ctypes.CFUNCTYPE(None, c_void_p)
#: ``typedef int32_t (*mapcache_loader_fn)(void *ctx, const uint8_t *key, size_t key_len,
#: mapcache_load_result *result)``: a ctypes callback takes the GIL while it runs.
LOADER_FN = ctypes.CFUNCTYPE(c_int32, c_void_p, c_void_p, c_size_t, c_void_p)

#: ``typedef void (*mapcache_progress_fn)(void *ctx, uint64_t bytes_written)``: a ctypes
#: callback takes the GIL while it runs.
PROGRESS_FN = ctypes.CFUNCTYPE(None, c_void_p, c_uint64)

_PROTOTYPES = {
    # (cfg, sizeof *cfg): the library writes exactly our struct's size.
    "mapcache_config_init": (_status, [POINTER(mapcache_config), c_size_t]),
    "mapcache_new": (_status, [POINTER(mapcache_config), POINTER(c_void_p)]),
    "mapcache_free": (None, [_handle]),
    # (cache, key, key_len, buf, buf_cap, size_t *out_len)
    "mapcache_get": (_status, [_handle, _ptr, _size, _ptr, _size, _out]),
    # (cache, key, key_len, buf, buf_cap) -> value length, or -status
    "mapcache_get_value": (c_int64, [_handle, _ptr, _size, _ptr, _size]),
    "mapcache_get_with": (_status, [_handle, _ptr, _size, VALUE_FN, c_void_p]),
    # (cache, key, key_len, value, value_len, bool *out_replaced)
    "mapcache_put": (_status, [_handle, _ptr, _size, _ptr, _size, _out]),
    "mapcache_delete": (_status, [_handle, _ptr, _size]),
    # (cache, key, key_len, bool *out)
    "mapcache_contains": (_status, [_handle, _ptr, _size, _out]),
    "mapcache_len": (_status, [_handle, _size_p]),
    "mapcache_clear": (_status, [_handle]),
    # (cache, key, key_len, value, value_len, buf, buf_cap, size_t *out_len, bool *out_inserted)
    "mapcache_get_or_insert": (
        _status,
        [_handle, _ptr, _size, _ptr, _size, _ptr, _size, _out, _out],
    ),
    # (cache, key, key_len, expected, expected_len, new, new_len, bool *out_swapped)
    "mapcache_compare_and_swap": (
        _status,
        [_handle, _ptr, _size, _ptr, _size, _ptr, _size, _out],
    ),
    # The cache calls (ABI 3).
    # (cache, key, key_len, value, value_len, uint64_t ttl_ms)
    "mapcache_put_ttl": (_status, [_handle, _ptr, _size, _ptr, _size, c_uint64]),
    # (cache, uint64_t ms)
    "mapcache_clock_advance": (_status, [_handle, c_uint64]),
    # (cache, key, key_len, loader, ctx, buf, buf_cap, size_t *out_len, int32_t *loader_status)
    "mapcache_get_or_load": (
        _status,
        [_handle, _ptr, _size, LOADER_FN, c_void_p, _ptr, _size, _out, _out],
    ),
    # (result, value, value_len), only inside a loader
    "mapcache_load_result_set": (_status, [c_void_p, _ptr, _size]),
    # (result, const char *message), only inside a loader
    "mapcache_load_result_set_error": (_status, [c_void_p, c_char_p]),
    "mapcache_stats_get": (_status, [_handle, POINTER(mapcache_stats)]),
    # Snapshots. Paths are NUL-terminated bytes (c_char_p; the binding refuses
    # a path with a NUL in it before the call).
    # (cache, path, progress, progress_ctx, mapcache_save_report *report)
    "mapcache_save": (
        _status,
        [_handle, c_char_p, PROGRESS_FN, c_void_p, POINTER(mapcache_save_report)],
    ),
    # (path, cfg, mapcache_t **out, mapcache_load_report *report)
    "mapcache_load": (
        _status,
        [c_char_p, POINTER(mapcache_config), POINTER(c_void_p), POINTER(mapcache_load_report)],
    ),
    # (cache, path, mapcache_load_report *report)
    "mapcache_load_into": (_status, [_handle, c_char_p, POINTER(mapcache_load_report)]),
    # Batches; arrays are passed as addresses (array.array.buffer_info()[0]).
    # (cache, n, keys, key_lens, values, values_cap, out_value_lens, out_statuses)
    "mapcache_get_many": (_status, [_handle, _size, _ptr, _ptr, _ptr, _size, _out, _out]),
    # (cache, n, keys, key_lens, values, value_lens, out_statuses)
    "mapcache_put_many": (_status, [_handle, _size, _ptr, _ptr, _ptr, _ptr, _out]),
    # (cache, n, keys, key_lens, out_statuses)
    "mapcache_delete_many": (_status, [_handle, _size, _ptr, _ptr, _out]),
    "mapcache_iter_new": (_status, [_handle, POINTER(c_void_p)]),
    "mapcache_iter_next": (
        _status,
        [c_void_p, POINTER(c_void_p), _size_p, POINTER(c_void_p), _size_p],
    ),
    "mapcache_iter_free": (None, [c_void_p]),
    "mapcache_set_thread_label": (_status, [c_char_p]),
    "mapcache_last_error": (c_char_p, []),
    "mapcache_status_str": (c_char_p, [_status]),
    "mapcache_abi_version": (c_uint32, []),
    "mapcache_version": (c_char_p, []),
    # Debugging aid (exclusive mode): hold the write flag of `key` while
    # callback(ctx) runs. Used by the misuse tests.
    "mapcache_debug_hold_write": (_status, [_handle, _ptr, _size, DEBUG_FN, c_void_p]),
    # Debugging aid: panics inside the library; always MAPCACHE_E_INTERNAL.
    "mapcache_debug_panic": (_status, [c_char_p]),
    # Debugging aid: (cache, key, key_len, size_t *out) the callers waiting for
    # the load of key in progress. Used by the singleflight tests.
    "mapcache_debug_load_waiters": (_status, [_handle, _ptr, _size, _size_p]),
}

#: Debugging aids: a library built without them still loads.
OPTIONAL = frozenset(
    {"mapcache_debug_hold_write", "mapcache_debug_panic", "mapcache_debug_load_waiters"}
)


def candidate_paths() -> List[Path]:
    """The places searched for the library when ``MAPCACHE_LIBRARY`` is unset, in order."""
    return [Path(__file__).resolve().parent / LIBRARY_NAME]


def find_library() -> Path:
    """Return the path of the library to load (see the module docstring)."""
    env = os.environ.get("MAPCACHE_LIBRARY")
    if env == "":
        raise LibraryNotFoundError(
            "MAPCACHE_LIBRARY is set but empty: set it to the path of a libmapcache, "
            "or unset it to use the package's own"
        )
    if env is not None:
        path = Path(env)
        if not path.is_file():
            raise LibraryNotFoundError(
                f"MAPCACHE_LIBRARY={env!r} does not name an existing file"
            )
        return path.resolve()
    tried = candidate_paths()
    for path in tried:
        if path.is_file():
            return path
    listing = "\n  ".join(f"{p} (no such file)" for p in tried)
    raise LibraryNotFoundError(
        f"{LIBRARY_NAME} not found. MAPCACHE_LIBRARY is not set, and this package "
        f"has no library of its own:\n  {listing}\n"
        f"Install the package from a wheel, which carries the library (`pip install "
        f"./bindings/python` or `make wheel` in the mapcache repository), or set "
        f"MAPCACHE_LIBRARY to the path of a libmapcache built with `make lib`."
    )


def load(path: Optional[Path] = None) -> ctypes.CDLL:
    """Load the library, declare every prototype and check the ABI version."""
    if path is None:
        path = find_library()
    try:
        lib = ctypes.CDLL(str(path))
    except OSError as exc:
        raise LibraryNotFoundError(f"cannot load {path}: {exc}") from exc
    missing = []
    for name, (restype, argtypes) in _PROTOTYPES.items():
        try:
            fn = getattr(lib, name)
        except AttributeError:
            if name not in OPTIONAL:
                missing.append(name)
            continue
        fn.restype = restype
        fn.argtypes = argtypes
    if missing:
        raise LibraryNotFoundError(f"{path} lacks the symbols {', '.join(missing)}")
    abi = lib.mapcache_abi_version()
    if abi != ABI_VERSION:
        raise LibraryNotFoundError(
            f"{path} has C ABI version {abi}; this binding needs version {ABI_VERSION}"
        )
    return lib


LIBRARY_PATH: Path = find_library()
lib: ctypes.CDLL = load(LIBRARY_PATH)


# Single-key gets: mapcache_get_object(getter, key, key_len) -> the host's object.
# The library calls the two constructors named in the getter (``struct
# mapcache_getter``: cache, make, miss), and they are CPython's own
# PyBytes_FromStringAndSize (a present key: its value as ``bytes``) and
# PyLong_FromLongLong (anything else: the negated status, -1 for an absent key):
# one foreign call hands back the finished ``bytes``, with no per-thread buffer
# to find and no copy to slice out of it. So:
# - it is called through a ``ctypes.PyDLL`` function object, which keeps the GIL
#   held (the constructors need it); the call never blocks (a read waits for
#   nothing) and a value is copied while it runs, as any ``bytes`` copy would;
# - its restype is ``py_object``, which takes over the new reference;
# - it has NO argtypes: each argtype's from_param costs ~15 ns per call, and
#   without them ctypes passes the getter and the key (``bytes``) as pointers to
#   their data and the key length (an ``int``) as a C int, which is exactly the
#   ``uint32_t key_len`` of the prototype for every length up to MAX_KEY_LEN (the
#   binding sends a longer key down the buffered path instead). Nothing else may
#   be passed to it.
# None where the library lacks the function or ctypes cannot reach the CPython
# API (not CPython): the binding then uses mapcache_get_value.
GETTER_FORMAT = "PPP"  # struct mapcache_getter: three pointers


def _load_get_object(path: Path) -> Tuple[Any, int, int]:
    pythonapi = getattr(ctypes, "pythonapi", None)
    if sys.implementation.name != "cpython" or pythonapi is None:
        return None, 0, 0
    try:
        fn = ctypes.PyDLL(str(path))["mapcache_get_object"]
        make = ctypes.cast(pythonapi.PyBytes_FromStringAndSize, c_void_p).value
        miss = ctypes.cast(pythonapi.PyLong_FromLongLong, c_void_p).value
    except (AttributeError, OSError):
        return None, 0, 0
    if not make or not miss:
        return None, 0, 0
    fn.restype = ctypes.py_object
    return fn, make, miss


#: ``mapcache_get_object`` (see above) or None, and the addresses of the two
#: CPython constructors for its getters.
get_object, MAKE_BYTES, MISS_INT = _load_get_object(LIBRARY_PATH)


def version() -> str:
    """The library's version string (``mapcache_version()``)."""
    return lib.mapcache_version().decode("utf-8", "replace")


def abi_version() -> int:
    """The library's C ABI version (``mapcache_abi_version()``)."""
    return int(lib.mapcache_abi_version())


def last_error() -> str:
    """This thread's last error message (``mapcache_last_error()``)."""
    msg = lib.mapcache_last_error()
    return msg.decode("utf-8", "replace") if msg else ""


def status_str(status: int) -> str:
    """The library's name for a status code (``mapcache_status_str()``)."""
    s = lib.mapcache_status_str(status)
    return s.decode("utf-8", "replace") if s else f"status {status}"
