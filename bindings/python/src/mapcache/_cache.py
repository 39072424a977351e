"""``mapcache.Cache``: a mapping of bytes to bytes held by libmapcache.

Implementation notes (what keeps the hot paths lean):

* every foreign function is looked up once, into a module global;
* ``cache[key]`` and ``get()`` make one call of ``mapcache_get_object``, which
  returns the finished ``bytes`` (made by CPython's PyBytes_FromStringAndSize,
  called by the library) or the negated status as an ``int``; it keeps the GIL
  (see _lib) and takes a per-cache ``getter`` (``bytes`` packing the handle and
  the two constructors) and the key, three arguments without argtypes;
* where that function is unavailable (see _lib), and for keys over
  MAX_KEY_LEN, a single get copies the value into a per-thread
  ``create_string_buffer`` with ``mapcache_get_value``, growing it when the
  value is longer;
* the other single-key calls' out-cells and their pointers are per-thread, so
  a call allocates only its result;
* ``bytes`` keys and values are passed to C without any conversion (the data
  pointer of the ``bytes`` object); ``str`` keys are UTF-8 encoded; other
  bytes-like objects go through a slower normalising path;
* batches pack the keys into one ``bytes`` object and their lengths into an
  ``array.array`` of ``size_t`` passed by address.

The GIL is released for every foreign call (``ctypes.CDLL``) but the single
get above, so other Python threads run while one thread is inside the library;
all per-call state is either local or thread-local (the getters are read-only).
"""

from __future__ import annotations

import inspect
import math
import os
import struct
import threading
from array import array
from collections.abc import ItemsView, KeysView, Mapping, MutableMapping, ValuesView
from contextlib import contextmanager
from ctypes import (
    addressof,
    byref,
    c_bool,
    c_char,
    c_int32,
    c_size_t,
    c_void_p,
    create_string_buffer,
    sizeof,
    string_at,
)
from itertools import accumulate
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Optional,
    Tuple,
    Type,
    TypeVar,
    Union,
    overload,
)

from . import _in_call, _lib, _load, _shutdown, _snapshot, _swallowed
from ._bytes import as_bytes
from ._in_call import call_here
from ._errors import (
    CacheClosedError,
    InvalidArgumentError,
    InvalidConfigError,
    LoaderError,
    MapCacheError,
    error_for_status,
)
from ._snapshot import LoadReport, PathLike, SaveReport
from ._stats import Stats

__all__ = ["Cache", "set_thread_label", "KeyLike", "ValueLike"]

#: A key: ``bytes``, any other bytes-like object, or ``str`` (UTF-8 encoded).
KeyLike = Union[bytes, bytearray, memoryview, str]
#: A value: ``bytes`` or any other bytes-like object.
ValueLike = Union[bytes, bytearray, memoryview]
_D = TypeVar("_D")
_C = TypeVar("_C", bound="Cache")

_L = _lib.lib
_new = _L.mapcache_new
_free = _L.mapcache_free
_config_init = _L.mapcache_config_init
_get = _L.mapcache_get
_get_value = _L.mapcache_get_value
_get_object = _lib.get_object
_put = _L.mapcache_put
_delete = _L.mapcache_delete
_contains = _L.mapcache_contains
_len = _L.mapcache_len
_clear = _L.mapcache_clear
_get_or_insert = _L.mapcache_get_or_insert
_cas = _L.mapcache_compare_and_swap
_put_ttl = _L.mapcache_put_ttl
_clock_advance = _L.mapcache_clock_advance
_get_or_load = _L.mapcache_get_or_load
_stats_get = _L.mapcache_stats_get
_get_many = _L.mapcache_get_many
_put_many = _L.mapcache_put_many
_delete_many = _L.mapcache_delete_many
_iter_new = _L.mapcache_iter_new
_iter_next = _L.mapcache_iter_next
_iter_free = _L.mapcache_iter_free
_set_thread_label = _L.mapcache_set_thread_label
_save = _L.mapcache_save
_load_file = _L.mapcache_load
_load_into = _L.mapcache_load_into

_OK = _lib.OK
_NOT_FOUND = _lib.NOT_FOUND
_TOO_SMALL = _lib.E_BUFFER_TOO_SMALL
_INVALID_ARG = _lib.E_INVALID_ARG
_INVALID_HANDLE = _lib.E_INVALID_HANDLE
_LOADER = _lib.E_LOADER
_MAX_KEY_LEN = _lib.MAX_KEY_LEN
_ABSENT_CODE = -_lib.NOT_FOUND  # what mapcache_get_object's miss gets for an absent key


def _getter(handle: int) -> bytes:
    """``struct mapcache_getter`` for mapcache_get_object: the handle (0 for a
    closed cache: the library then reports MAPCACHE_E_INVALID_ARG) and the two
    CPython constructors."""
    return struct.pack(_lib.GETTER_FORMAT, handle, _lib.MAKE_BYTES, _lib.MISS_INT)


_CLOSED_GETTER = _getter(0)

# array typecodes matching size_t and mapcache_status (int32_t).
_SZ = next(t for t in "QLI" if array(t).itemsize == sizeof(c_size_t))
_ST = next(t for t in "ilh" if array(t).itemsize == 4)
_SZ_ZERO = array(_SZ, [0])
_ST_ZERO = array(_ST, [0])

_MODES = {"concurrent": _lib.MODE_CONCURRENT, "exclusive": _lib.MODE_EXCLUSIVE}
_MISUSE = {"error": _lib.MISUSE_ERROR, "abort": _lib.MISUSE_ABORT}
_ENGINES = {"auto": _lib.ENGINE_AUTO, "single": _lib.ENGINE_SINGLE, "parallel": _lib.ENGINE_PARALLEL}
_GPU = {"auto": _lib.GPU_AUTO, "off": _lib.GPU_OFF, "force": _lib.GPU_FORCE}

# Per-thread buffers: single gets keep up to _KEEP_SINGLE bytes, batches up to
# _KEEP_BATCH; a larger value is read through a one-off buffer.
_INITIAL_SINGLE = 1024
_KEEP_SINGLE = 1 << 20
_INITIAL_BATCH = 1 << 16
_KEEP_BATCH = 64 << 20

_MISSING: Any = object()  # "no default given"
_ABSENT: Any = object()  # "the key was absent"


def _pow2(n: int) -> int:
    return 1 << max(n - 1, 1).bit_length()


def _one_off(n: int) -> int:
    # create_string_buffer(n) makes (and ctypes caches forever) a type per size:
    # round one-off sizes up to whole MiB so that at most a few thousand exist.
    return -(-n // (1 << 20)) << 20


class _ThreadState(threading.local):
    """Buffers and out-cells owned by one thread (the GIL is released during most calls).

    The buffer's address, its capacity and the cells' addresses are kept as
    ready-made c_void_p objects: passed for a c_void_p argtype they need no
    conversion at all (see _lib).
    """

    def __init__(self) -> None:
        out_len = c_size_t()
        # (buffer, its address, its capacity, out_len cell, its address)
        self.single: Tuple[Any, c_void_p, c_void_p, c_size_t, c_void_p] = _single_state(
            create_string_buffer(_INITIAL_SINGLE), out_len)
        # (buffer, its address, its capacity as c_void_p and as int): the
        # buffer of mapcache_get_value, the lookups of cache[key] and get()
        self.value: Tuple[Any, c_void_p, c_void_p, int] = _value_state(
            create_string_buffer(_INITIAL_SINGLE))
        flag = c_bool()
        # (bool out cell, its address)
        self.flag: Tuple[c_bool, c_void_p] = (flag, c_void_p(addressof(flag)))
        self.batch: Any = None  # allocated by the thread's first batch
        self.batch_cap = 0
        self.labels: List[Optional[str]] = []  # the Cache.label() blocks open
        self.base_label: Optional[str] = None  # set with set_thread_label()


def _single_state(buf: Any, out_len: c_size_t) -> Tuple[Any, c_void_p, c_void_p, c_size_t, c_void_p]:
    return (buf, c_void_p(addressof(buf)), c_void_p(sizeof(buf)), out_len,
            c_void_p(addressof(out_len)))


def _value_state(buf: Any) -> Tuple[Any, c_void_p, c_void_p, int]:
    return (buf, c_void_p(addressof(buf)), c_void_p(sizeof(buf)), sizeof(buf))


def _value_buffer(needed: int) -> Tuple[Any, c_void_p, c_void_p, int]:
    """A buffer of at least ``needed`` bytes for mapcache_get_value; kept as the
    thread's buffer unless it is very large."""
    if needed > _KEEP_SINGLE:
        return _value_state(create_string_buffer(_one_off(needed)))
    state = _value_state(create_string_buffer(_pow2(needed)))
    _ts.value = state
    return state


def _single_buffer(needed: int) -> Tuple[Any, c_void_p, c_void_p]:
    """(buffer, address, capacity) of at least ``needed`` bytes for this thread's
    single-key calls; kept for the thread's next calls unless it is very large."""
    if needed > _KEEP_SINGLE:
        buf = create_string_buffer(_one_off(needed))
        return buf, c_void_p(addressof(buf)), c_void_p(sizeof(buf))
    state = _single_state(create_string_buffer(_pow2(needed)), _ts.single[3])
    _ts.single = state
    return state[0], state[1], state[2]


_ts = _ThreadState()


def _batch_buffer(needed: int) -> Tuple[Any, int]:
    ts = _ts
    if needed <= ts.batch_cap:
        return ts.batch, ts.batch_cap
    if needed > _KEEP_BATCH:
        buf = create_string_buffer(_one_off(needed))
        return buf, sizeof(buf)
    cap = _pow2(needed)
    ts.batch = create_string_buffer(cap)
    ts.batch_cap = cap
    return ts.batch, cap


def _key(key: Any) -> bytes:
    """Normalise a key that is not exactly ``bytes``."""
    if isinstance(key, str):
        return key.encode("utf-8")
    if isinstance(key, bytes):
        # A subclass may override __len__, and the length passed to C must be
        # the buffer's: copy it into an exact bytes object.
        return bytes(key)
    try:
        with memoryview(key) as mv:
            return mv.tobytes()
    except TypeError:
        raise TypeError(
            f"a mapcache key must be bytes-like or str, not {type(key).__name__}"
        ) from None


class _Borrowed:
    """A writable contiguous buffer lent to one call without copying it.

    ``c_void_p`` takes it through ``_as_parameter_`` (the buffer's address) and
    ``len()`` is its size in bytes. While it lives, the exporter (a bytearray,
    an mmap, ...) cannot be resized or closed.
    """

    __slots__ = ("_as_parameter_", "_len", "_keep")

    def __init__(self, mv: memoryview) -> None:
        self._keep = c_char.from_buffer(mv)  # holds the buffer export
        self._as_parameter_ = addressof(self._keep)
        self._len = mv.nbytes

    def __len__(self) -> int:
        return self._len

    def __bytes__(self) -> bytes:
        return string_at(self._as_parameter_, self._len)


def _value(value: Any) -> Any:
    """Normalise a value that is not exactly ``bytes``: something ``c_void_p`` accepts
    whose ``len()`` is its size in bytes (a writable buffer is passed without a copy)."""
    if isinstance(value, bytes):
        return bytes(value)  # a subclass: its __len__ is not trusted (see _key)
    if isinstance(value, str):
        raise TypeError("a mapcache value must be bytes-like, not str (encode it first)")
    try:
        mv = memoryview(value)
    except TypeError:
        raise TypeError(
            f"a mapcache value must be bytes-like, not {type(value).__name__}"
        ) from None
    with mv:
        if not mv.readonly and mv.c_contiguous and mv.nbytes:
            return _Borrowed(mv)
        return mv.tobytes()


def _lengths(items: List[Any]) -> Tuple[array, int]:
    """The lengths of ``items`` as a size_t array, and their sum (fast when they
    are all equal)."""
    lens = list(map(len, items))
    first = lens[0]
    n = len(lens)
    if lens.count(first) == n:
        return array(_SZ, (first,)) * n, first * n
    return array(_SZ, lens), sum(lens)


def _key_list(keys: Any, op: str) -> List[Any]:
    """``keys`` as a list, refusing a single key: a ``str``, ``bytes``,
    ``bytearray`` or ``memoryview`` is iterable too, and taken as a batch it
    would silently mean one-character (or one-integer) keys."""
    if keys.__class__ is list:
        return keys
    if isinstance(keys, (str, bytes, bytearray, memoryview)):
        raise TypeError(
            f"{op}() takes an iterable of keys, not a single {type(keys).__name__} "
            f"key: pass [key]"
        )
    return list(keys)


def _each(convert: Callable[[Any], Any], items: List[Any]) -> List[Any]:
    """``[convert(x) for x in items]``; an error converting one (a TypeError or
    ValueError) says which, in its ``.index``, as a batch's per-key errors do."""
    out = []
    for i, item in enumerate(items):
        try:
            out.append(convert(item))
        except (TypeError, ValueError) as exc:
            exc.index = i  # type: ignore[attr-defined]
            raise
    return out


_PAIR_TYPES = {tuple, list}


def _pair_error(i: int, message: str) -> TypeError:
    exc = TypeError(message)
    exc.index = i  # type: ignore[attr-defined]
    return exc


def _split_pairs(pairs: List[Any]) -> Tuple[List[Any], List[Any]]:
    """The keys and the values of ``pairs``, each item exactly a (key, value)
    pair, as ``dict()`` takes them; a TypeError with the item's position in
    ``.index`` otherwise. A ``str`` or bytes-like item is refused even of
    length 2 (``"ab"`` is not the pair ``("a", "b")``)."""
    keys: List[Any] = []
    values: List[Any] = []
    for i, item in enumerate(pairs):
        if isinstance(item, (str, bytes, bytearray, memoryview)):
            raise _pair_error(i, f"set_many() element #{i} is a {type(item).__name__}, "
                                 "not a (key, value) pair")
        try:
            pair = tuple(item)
        except TypeError:
            raise _pair_error(i, f"cannot convert set_many() element #{i} to a (key, value) "
                                 f"pair: {type(item).__name__} is not iterable") from None
        if len(pair) != 2:
            raise _pair_error(i, f"set_many() element #{i} has length {len(pair)}; 2 is required")
        keys.append(pair[0])
        values.append(pair[1])
    return keys, values


def _pack_keys(keys: List[Any]) -> Tuple[bytes, array, List[Any]]:
    """Pack (non-empty) keys back to back; return (packed, lengths, keys as normalised)."""
    try:
        packed = b"".join(keys)
    except TypeError:
        keys = _each(lambda k: k if k.__class__ is bytes else _key(k), keys)
        packed = b"".join(keys)
    lens, total = _lengths(keys)
    if total != len(packed):  # a memoryview whose items are not bytes
        keys = _each(_key, keys)
        packed = b"".join(keys)
        lens, total = _lengths(keys)
    return packed, lens, keys


def _pack_values(values: List[Any]) -> Tuple[bytes, array]:
    try:
        packed = b"".join(values)
    except TypeError:
        values = _each(as_bytes, values)
        packed = b"".join(values)
    lens, total = _lengths(values)
    if total != len(packed):
        values = _each(as_bytes, values)
        packed = b"".join(values)
        lens, total = _lengths(values)
    return packed, lens


# Splitting a batch's values when they all have the same length: a Struct of
# "Ls" * chunk unpacks a chunk of values in one C loop, several times faster
# than slicing in a Python loop. Compiled Structs are cached per (length, count).
_CHUNK = 512
_structs: Dict[Tuple[int, int], Any] = {}


def _unpacker(length: int, count: int) -> Any:
    s = _structs.get((length, count))
    if s is None:
        if len(_structs) >= 256:
            _structs.clear()
        s = _structs[(length, count)] = struct.Struct("=" + f"{length}s" * count).unpack_from
    return s


def _split_uniform(buf: Any, length: int, n: int) -> List[bytes]:
    if length == 0:
        return [b""] * n
    if n <= _CHUNK:
        return list(_unpacker(length, n)(buf))
    out: List[bytes] = []
    extend = out.extend
    full, rest = divmod(n, _CHUNK)
    unpack = _unpacker(length, _CHUNK)
    step = length * _CHUNK
    for off in range(0, full * step, step):
        extend(unpack(buf, off))
    if rest:
        extend(_unpacker(length, rest)(buf, full * step))
    return out


def set_thread_label(label: Optional[str]) -> None:
    """Name the calling thread in misuse reports (``None`` clears the label).

    The label belongs to the OS thread and applies to every cache, until
    replaced; a :meth:`Cache.label` block returns to it when it ends.
    Labels are at most 1023 bytes of UTF-8 without NUL (else ValueError).
    """
    _apply_label(label)
    _ts.base_label = label


def _apply_label(label: Optional[str]) -> None:
    if label is None:
        raw = None
    elif isinstance(label, str):
        if "\0" in label:
            raise ValueError("a thread label must not contain NUL characters")
        raw = label.encode("utf-8")
    else:
        raise TypeError(f"a thread label must be str or None, not {type(label).__name__}")
    st = _set_thread_label(raw)
    if st:
        raise error_for_status(st)


_MAX_MS = (1 << 64) - 1


def _seconds(name: str, seconds: Any) -> float:
    """``seconds`` checked: a real number, not negative, not NaN."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, not {type(seconds).__name__}")
    if seconds != seconds or seconds < 0:  # NaN compares unequal to itself
        raise ValueError(f"{name} must be a number of seconds >= 0, got {seconds!r}")
    return seconds


def _ttl_ms(name: str, seconds: Any) -> int:
    """A TTL in seconds as the C ABI's whole milliseconds: 0 stays 0 (never
    expires), anything else is rounded up (at microsecond precision, so that
    0.1 is 100 ms and not 101) to at least 1 ms, and infinity or more than the
    ABI holds is its largest value (never, in practice)."""
    seconds = _seconds(name, seconds)
    if seconds == 0:
        return 0
    if math.isinf(seconds):
        return _MAX_MS
    micros = round(seconds * 1_000_000)
    return min(max(1, -(-micros // 1000)), _MAX_MS)


class _ClockMoves:
    """The moves of a cache's manual clock asked for so far, so that each
    :meth:`Cache.advance_clock` rounds their running total to whole
    milliseconds, not its own step (ten steps of 0.0004 s had left the clock
    where it was)."""

    __slots__ = ("lock", "asked", "moved")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.asked = 0.0  # seconds asked for, in all
        self.moved = 0  # whole milliseconds moved, in all

    def step_ms(self, seconds: Any) -> int:
        """The milliseconds to move now for a move of ``seconds`` (held
        ``lock``; the caller commits with :meth:`commit` once it moved)."""
        seconds = _seconds("seconds", seconds)
        if math.isinf(seconds) or math.isinf(self.asked + seconds):
            return _MAX_MS
        target = min(round((self.asked + seconds) * 1000), _MAX_MS)
        return max(target - self.moved, 0)

    def commit(self, seconds: float, ms: int) -> None:
        self.asked += seconds
        self.moved = min(self.moved + ms, _MAX_MS)


def _c_config(config: Dict[str, Any]) -> "_lib.mapcache_config":
    """The ``mapcache_config`` for the keyword arguments of :class:`Cache`
    (``config`` has every one of them), each checked: TypeError for a wrong
    type, ValueError for a value out of range."""
    # The library writes exactly the size we state, and reads no further.
    cfg = _lib.mapcache_config()
    st = _config_init(byref(cfg), sizeof(cfg))
    if st:
        raise error_for_status(st)
    cfg.initial_capacity = _uint("initial_capacity", config["initial_capacity"], 64)
    cfg.shards = _uint("shards", config["shards"], 32)
    cfg.mode = _choice("mode", config["mode"], _MODES)
    cfg.misuse_policy = _choice("misuse_policy", config["misuse_policy"], _MISUSE)
    cfg.rehash_engine = _choice("rehash_engine", config["rehash_engine"], _ENGINES)
    cfg.seed = _uint("seed", config["seed"], 64)
    cfg.max_entries = _uint("max_entries", config["max_entries"], 64)
    cfg.max_bytes = _uint("max_bytes", config["max_bytes"], 64)
    default_ttl = config["default_ttl"]
    cfg.default_ttl_ms = 0 if default_ttl is None else _ttl_ms("default_ttl", default_ttl)
    manual_clock = config["manual_clock"]
    if not isinstance(manual_clock, bool):
        raise TypeError(f"manual_clock must be a bool, not {type(manual_clock).__name__}")
    cfg.clock = _lib.CLOCK_MANUAL if manual_clock else _lib.CLOCK_SYSTEM
    cfg.gpu_mode = _choice("gpu", config["gpu"], _GPU)
    cfg.gpu_threshold = _uint("gpu_threshold", config["gpu_threshold"], 64)
    gpu_plugin = config["gpu_plugin"]
    if gpu_plugin is not None:
        if not isinstance(gpu_plugin, (str, bytes, os.PathLike)):
            raise TypeError(f"gpu_plugin must be a path (str, bytes or os.PathLike), "
                            f"not {type(gpu_plugin).__name__}")
        raw = os.fsencode(gpu_plugin)
        if b"\0" in raw:
            # The library would read the path only up to the NUL: another file.
            raise InvalidConfigError(f"gpu_plugin must not contain a NUL byte: {gpu_plugin!r}")
        # Kept alive by cfg (ctypes keeps the bytes) until mapcache_new, which
        # copies it.
        cfg.gpu_plugin_path = raw
    return cfg


class Cache(MutableMapping):  # type: ignore[type-arg]
    """A concurrent, in-process map from bytes to bytes, stored outside the Python heap.

    All arguments are keyword-only::

        cache = Cache(initial_capacity=1_000_000, shards=16, mode="concurrent")

    Args:
        initial_capacity: entries to size the table for up front (a sizing
            hint, not a bound: see ``max_entries``). 0 grows from small; at
            most 2**30 (more raises :class:`InvalidConfigError`).
        shards: number of shards, 0 for automatic, otherwise a power of two
            of at most 65536.
        mode: ``"concurrent"`` (default: any number of threads may read and
            write) or ``"exclusive"`` (the host promises one writer at a time;
            overlapping calls raise :class:`ConcurrentWriteError` or
            :class:`ConcurrentReadWriteError`). Overlap is judged by the write
            flag, which a write holds from finding its key to publishing the
            change (a table grow included); the key and value of an entry
            over 256 bytes are copied into it before the flag is taken, so a
            write made while another thread is still copying a large value in
            is not seen, and no error proves nothing.
        misuse_policy: what exclusive mode does on misuse: ``"error"``
            (default, raise) or ``"abort"`` (abort the process, as Go does).
        rehash_engine: ``"auto"``, ``"single"`` or ``"parallel"``.
        seed: hash seed; 0 picks a random one per cache.
        max_entries: the most entries the cache holds (0: no bound); past it
            the eviction policy chooses what to drop. With ``shards=0`` a
            bounded cache gets at most one shard per 4096 entries of capacity;
            an explicit ``shards`` larger than ``max_entries`` raises
            :class:`InvalidConfigError`.
        max_bytes: the most bytes the entries may occupy, each charged its
            full footprint (0: no bound). The bound is split evenly between
            the shards, and an entry larger than one shard's share never fits:
            it raises :class:`TooLargeError` (and is counted ``too_large`` by a
            load). With ``shards=0`` the shard count comes from the bounds
            too: at most one shard per 4096 entries the bounds allow (for
            ``max_bytes``, counted at a typical small entry's charge), and at
            most four per CPU core (a power of two, at most 256). So
            ``max_bytes`` alone usually picks several shards, and a single
            value can be only a fraction of it: on a 2-core host a 16 MiB or
            1 GiB cache gets 8 shards, and a value of more than about 1/8 of
            ``max_bytes`` raises :class:`TooLargeError`. Pass ``shards=1`` (or
            another small power of two) to let one entry take up to the whole
            bound (a share), at the cost of write concurrency.
        default_ttl: seconds (an ``int`` or ``float``; not a ``bool``) an
            entry lives when it is written without a ``ttl`` of its own;
            ``None`` or 0: entries never expire.
            A load (:meth:`load`, :meth:`load_into`) gives each entry the
            expiry its record was saved with instead: a record saved without
            one never expires after the load.
            Times are whole milliseconds in the library: a TTL is rounded up.
        manual_clock: measure TTLs against a clock that moves only by
            :meth:`advance_clock` (for tests: nothing needs to sleep), instead
            of the system's monotonic clock.
        gpu: ``"auto"`` (rebuild large tables on the GPU when the CUDA driver,
            a device and the plugin ``libmapcache_cuda.so`` are there, else on
            the CPU), ``"off"`` or ``"force"`` (the GPU or an error:
            :class:`GpuError` from the constructor when the engine cannot
            load, and from a write whose rebuild fails on it). See
            :func:`mapcache.gpu_status`. The wheel does not carry the plugin:
            build it with ``make cuda`` and put it beside the wheel's
            ``libmapcache.so`` (the installed ``mapcache`` package directory),
            or name it with ``gpu_plugin``; without it ``"auto"`` runs on the
            CPU and ``"force"`` raises :class:`GpuError`, GPU or not.
        gpu_threshold: the smallest table, in entries it is sized for, rebuilt
            on the GPU (0: the library's default).
        gpu_plugin: the plugin's path, a ``str``, ``bytes`` or
            ``os.PathLike`` (``None``: beside the library; a relative path is
            taken from the working directory now); a NUL byte in it raises
            :class:`InvalidConfigError`.

    Raises:
        TypeError: an unknown keyword or an argument of the wrong type.
        ValueError: an argument out of range (:class:`InvalidConfigError` when
            the library rejects it).

    Keys are ``bytes``-like or ``str`` (UTF-8 encoded; keys always come back
    as ``bytes``); values are ``bytes``-like and come back as ``bytes``. So
    ``"a"`` and ``b"a"`` are the same key (``"a" in cache`` is True after
    ``cache[b"a"] = ...``), but what the cache gives back is never a ``str``:
    ``cache == {"a": b"1"}`` is False where ``cache == {b"a": b"1"}`` is True,
    and ``dict(cache)`` has ``bytes`` keys. A ``str`` that UTF-8 cannot encode
    (a lone surrogate, ``"\\ud800"``) raises ``UnicodeEncodeError`` (a
    ``ValueError``).

    ``os.fork()``: a child may use a cache it inherited only if no other
    thread was inside a call on it at the fork. The child has only the forking
    thread, and a shard lock another thread held stays held in it: the child's
    next write or load on that shard waits for ever (in ``mode="exclusive"``
    it raises :class:`ConcurrentWriteError`). Fork before other threads use
    the cache, or make new caches in the child.
    Every call releases the GIL while it runs in the library, except a single
    get (``cache[key]``, ``get()``), which keeps it (it never blocks; see
    :mod:`mapcache._lib`). A closed cache raises :class:`CacheClosedError` on
    any use.

    Snapshots: :meth:`save` writes the cache to a file, crash-safely;
    :meth:`load` (or :meth:`load_with_report`) makes a new cache from one, and
    :meth:`load_into` loads one into a live cache.
    """

    __slots__ = ("_h", "_getter", "_config", "_close_lock", "_failures", "_clock_moves",
                 "__weakref__")

    def __init__(
        self,
        *,
        initial_capacity: int = 0,
        shards: int = 0,
        mode: str = "concurrent",
        misuse_policy: str = "error",
        rehash_engine: str = "auto",
        seed: int = 0,
        max_entries: int = 0,
        max_bytes: int = 0,
        default_ttl: Optional[float] = None,
        manual_clock: bool = False,
        gpu: str = "auto",
        gpu_threshold: int = 0,
        gpu_plugin: Optional[PathLike] = None,
    ) -> None:
        if getattr(self, "_h", None) is not None:
            # A second __init__ would drop the live handle (and every entry)
            # without freeing it.
            raise TypeError(
                "Cache.__init__ called on a live cache: close() it and make a new Cache")
        self._init_closed()
        config: Dict[str, Any] = {
            "initial_capacity": initial_capacity,
            "shards": shards,
            "mode": mode,
            "misuse_policy": misuse_policy,
            "rehash_engine": rehash_engine,
            "seed": seed,
            "max_entries": max_entries,
            "max_bytes": max_bytes,
            "default_ttl": default_ttl,
            "manual_clock": manual_clock,
            "gpu": gpu,
            "gpu_threshold": gpu_threshold,
            "gpu_plugin": gpu_plugin,
        }
        cfg = _c_config(config)
        out = c_void_p()
        st = _new(byref(cfg), byref(out))
        if st:
            raise error_for_status(st)
        self._adopt(out, config, "mapcache_new")

    def _init_closed(self) -> None:
        """The state of a cache without a handle yet (or closed)."""
        self._h: Optional[c_void_p] = None
        self._getter = _CLOSED_GETTER
        self._close_lock = threading.Lock()
        self._failures = _load.Failures()
        self._clock_moves = _ClockMoves()

    def _adopt(self, out: c_void_p, config: Dict[str, Any], made_by: str) -> None:
        """Take the new handle ``out``, made from ``config``, by ``made_by``."""
        if not out.value:
            raise MapCacheError(f"{made_by} returned OK but no handle")
        # a c_void_p instance: passed to C with no conversion at all
        self._h = out
        self._getter = _getter(out.value)
        self._config = config

    # ----------------------------------------------------------- lifecycle

    def close(self) -> None:
        """Free the cache. Idempotent; any later use raises :class:`CacheClosedError`.

        ``close()`` does not wait for calls that other threads have already
        started on the cache: it returns at once, and each such call either
        completes on the cache as it was (a :meth:`get_or_load` returns its
        value, a :meth:`save` writes its whole file) or fails with
        :class:`CacheClosedError` (or :class:`InvalidHandleError`); none
        crashes. What such a call stored is freed with the cache, once the
        last of them has returned. Every call that starts after ``close()``
        returned raises :class:`CacheClosedError` (``closed``, ``config``,
        ``label()`` and ``repr()`` still work). So do not close a cache while
        other threads are still using it, unless losing their writes is
        fine. Inside a callback that a call on this cache runs on this
        thread (a :meth:`get_or_load` loader, the progress callback of a
        :meth:`save`) it raises :class:`InvalidArgumentError`: that call is
        still using the cache.
        """
        with self._close_lock:
            h = self._h
            if h is None:
                return
            call = call_here(h.value or 0)
            if call is not None:
                raise InvalidArgumentError(
                    f"close() inside {call} of this cache: the call is still using it "
                    "(close it after the call returns)",
                    _INVALID_ARG)
            self._h = None
            self._getter = _CLOSED_GETTER
        _free(h)

    def __del__(self) -> None:
        try:
            h = self._h
        except AttributeError:  # __init__ failed before setting it
            return
        if h is not None and _free is not None:
            self._h = None
            self._getter = _CLOSED_GETTER
            _free(h)

    def __enter__(self: _C) -> _C:
        """``with Cache(...) as cache:`` closes the cache when the block ends."""
        self._handle()
        return self

    def __exit__(self, *exc: Any) -> None:
        """Close the cache."""
        self.close()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran."""
        return self._h is None

    @property
    def config(self) -> Dict[str, Any]:
        """The keyword arguments the cache was created with."""
        return dict(self._config)

    def __repr__(self) -> str:
        cls = type(self)
        name = "mapcache.Cache" if cls is Cache else f"{cls.__module__}.{cls.__qualname__}"
        if self._h is None:
            return f"<{name} closed>"
        return f"<{name} mode={self._config['mode']!r} len={len(self)}>"

    def __reduce__(self) -> Any:
        raise TypeError(
            "a mapcache.Cache cannot be pickled or copied (its data lives in the library); "
            "to copy one, save it and load the snapshot (Cache.save, Cache.load)"
        )

    def _handle(self) -> c_void_p:
        h = self._h
        if h is None:
            raise CacheClosedError()
        return h

    def _error(self, st: int, key: Any = _MISSING) -> BaseException:
        """The exception for status ``st`` of a call just made on this thread."""
        if (st == _INVALID_ARG or st == _INVALID_HANDLE) and self._h is None:
            return CacheClosedError()
        if st == _NOT_FOUND and key is not _MISSING:
            return KeyError(key)
        return error_for_status(st)

    @contextmanager
    def label(self, name: str) -> Iterator[None]:
        """Label the calling thread for misuse reports inside a ``with`` block.

        ``with cache.label("worker-3"): ...`` makes a
        :class:`ConcurrentWriteError` name this thread ``'worker-3'``. The label
        is per OS thread (it applies to every cache) and the previous label is
        restored on exit, so blocks nest.
        """
        _apply_label(name)
        stack = _ts.labels
        stack.append(name)
        try:
            yield
        finally:
            stack.pop()
            _apply_label(stack[-1] if stack else _ts.base_label)

    # -------------------------------------------------------- single keys

    # cache[key] and get() make one call of mapcache_get_object (see _lib): it
    # returns the value as bytes, or an int for anything else. A key over
    # MAX_KEY_LEN (which the call's 32-bit length must not receive) and a
    # binding without that function take the buffered path below.

    def __getitem__(self, key: KeyLike) -> bytes:
        """``cache[key]``: the value of ``key`` (a copy, as ``bytes``); KeyError when absent."""
        k = key if key.__class__ is bytes else _key(key)
        n = len(k)
        if n <= _MAX_KEY_LEN:
            v = _get_object(self._getter, k, n)
            if v.__class__ is bytes:
                return v
            return self._missed(v, key, _MISSING)
        return self._get_buffered(key, k, _MISSING)

    # get() repeats __getitem__'s few lines rather than sharing a helper: a
    # __getitem__ that called get() measured 271-279 ns against 235-246 per hit
    # on a cache-resident table (one more Python call, about 15%).
    @overload
    def get(self, key: KeyLike) -> Optional[bytes]: ...

    @overload
    def get(self, key: KeyLike, default: _D) -> Union[bytes, _D]: ...

    def get(self, key: KeyLike, default: Any = None) -> Any:
        """The value of ``key``, or ``default`` (None unless given) when it is absent."""
        k = key if key.__class__ is bytes else _key(key)
        n = len(k)
        if n <= _MAX_KEY_LEN:
            v = _get_object(self._getter, k, n)
            if v.__class__ is bytes:
                return v
            return self._missed(v, key, default)
        return self._get_buffered(key, k, default)

    def _missed(self, code: int, key: Any, default: Any) -> Any:
        """After mapcache_get_object returned ``code``, a negated status."""
        if code == _ABSENT_CODE:
            if default is _MISSING:
                raise KeyError(key)
            return default
        raise self._error(-code)

    # The buffered path: mapcache_get_value (5 arguments, the length as the
    # result) into this thread's buffer. A ctypes call costs ~50 ns per argument.

    def _getitem_buffered(self, key: KeyLike) -> bytes:
        k = key if key.__class__ is bytes else _key(key)
        return self._get_buffered(key, k, _MISSING)

    def _get_buffered_default(self, key: KeyLike, default: Any = None) -> Any:
        k = key if key.__class__ is bytes else _key(key)
        return self._get_buffered(key, k, default)

    def _get_buffered(self, key: Any, k: bytes, default: Any) -> Any:
        buf, addr, cap, size = _ts.value
        n = _get_value(self._h, k, len(k), addr, cap)
        if 0 <= n <= size:
            return buf[:n]
        return self._get_slow(n, key, k, default)

    def _get_slow(self, n: int, key: Any, k: bytes, default: Any) -> Any:
        """After mapcache_get_value returned ``n``: a value longer than the
        buffer (``n`` > its size: retry with a larger one), absent (``-1``), or
        an error (``-status``)."""
        while n >= 0:
            buf, addr, cap, size = _value_buffer(n)
            n = _get_value(self._h, k, len(k), addr, cap)
            if 0 <= n <= size:
                return buf[:n]
        if -n == _NOT_FOUND:
            if default is _MISSING:
                raise KeyError(key)
            return default
        raise self._error(-n)

    def __setitem__(self, key: KeyLike, value: ValueLike) -> None:
        """``cache[key] = value``: insert or replace (the library copies both)."""
        if key.__class__ is not bytes:
            key = _key(key)
        if value.__class__ is not bytes:
            value = _value(value)
        st = _put(self._h, key, len(key), value, len(value), None)
        if st:
            del value  # a traceback must not keep a buffer export alive
            raise self._error(st)

    def set(self, key: KeyLike, value: ValueLike, ttl: Optional[float] = None) -> Optional[bool]:
        """Store ``value`` under ``key``.

        ``ttl``: seconds until the entry expires, an ``int`` or a ``float``
        (a ``bool``, ``Fraction`` or ``Decimal`` raises TypeError); ``None``
        gives it the cache's ``default_ttl``, 0 means it never expires
        (whatever the default). Negative or NaN raises ValueError;
        ``math.inf`` (or anything past the clock's end, about 292 years)
        means the entry lives until the clock's end, which in practice is
        never (with ``manual_clock=True``, an :meth:`advance_clock` to the end
        leaves it alive still: see there). Times are whole milliseconds in the
        library: a TTL is rounded up (0.0001 is 1 ms). An expired entry is
        absent for every call.

        Returns True when it replaced a value, False when the key was new; with
        a ``ttl`` given, None (the library's put with a TTL does not report it).

        In a bounded cache (``max_entries``, ``max_bytes``) a new key is not
        always kept. It enters the eviction policy's admission window (the
        shard's most recent new entries) and stays there at first, so
        ``cache[key]`` right after finds it; when later writes push it out of
        the window the policy keeps it or refuses it in favour of the entry it
        would displace, which ``stats().rejections`` (and ``evictions``)
        count: a rejection counted during a ``set`` is, as a rule, of an
        earlier new key. The exception is an entry heavier than the whole
        window (which starts at 1% of a shard's share of the bounds and adapts,
        down to almost nothing: with ``max_bytes``, ordinary entries can be):
        it meets the policy at once, may be refused, and
        ``cache[key]`` right after then raises KeyError. Either way the call
        succeeds (False: the key was new): the value was stored, and perhaps
        evicted. ``cache[key] = value`` is this call.
        """
        if key.__class__ is not bytes:
            key = _key(key)
        if value.__class__ is not bytes:
            value = _value(value)
        if ttl is not None:
            ms = _ttl_ms("ttl", ttl)
            st = _put_ttl(self._h, key, len(key), value, len(value), ms)
            if st:
                del value
                raise self._error(st)
            return None
        flag, flag_addr = _ts.flag
        st = _put(self._h, key, len(key), value, len(value), flag_addr)
        if st:
            del value
            raise self._error(st)
        return flag.value

    def get_or_load(self, key: KeyLike, loader: Callable[[], ValueLike]) -> bytes:
        """The value of ``key``; on a miss, ``loader()`` computes it, and it is
        stored (with the default TTL) and returned.

        Concurrent misses on one key, from any threads, run ``loader`` once:
        the first caller runs it, on its own thread; the others wait inside
        the library (the GIL released) and get the same value. If ``loader``
        raises, nothing is cached, and the very exception object it raised is
        raised in the caller that ran it and in every caller that waited for
        that load; the next call loads again. If another write stores the key
        while ``loader`` runs, that value is kept and returned instead.

        ``loader`` takes no arguments and returns a bytes-like value (else
        TypeError, raised the same way). It runs with no lock of the cache
        held and may use the cache (but not :meth:`close` it: that raises
        :class:`InvalidArgumentError`); a ``get_or_load`` of the same key from
        inside it (on its thread) raises :class:`InvalidArgumentError` rather
        than wait for itself. Loaders that need each other's keys, on two
        threads (the loader of A gets B while B's gets A), wait for each other
        for good: only the same-key case is detected.

        A caller waiting for another thread's load waits inside the library:
        a Ctrl-C reaches it (as the main thread) only once that load ends, and
        there is no timeout. A loader that may hang should bound its own time.

        A KeyboardInterrupt (Ctrl-C) while ``loader`` runs is its exception
        like any other, and one anywhere else in this call is raised by it
        with nothing left behind (no lock held, no call counted, no kept
        exception: later calls on every thread, :meth:`close` and
        interpreter exit go on as usual). One narrow case is different: a
        Ctrl-C that reaches the loading thread while the library looks the
        key up lands as the library calls the loader, at the entry of the
        package's callback, before any of its code runs (CPython raises a
        pending signal's exception on entering any Python function). This
        call raises it too, but the library has received no result from the
        callback: ctypes then writes none, and the library reads whatever the
        callback's result slot held. The callers waiting for that load get a
        :class:`LoaderError` naming that meaningless status (all that was
        seen on CPython 3.9 to 3.13, x86-64), or, should the slot hold 0, the
        empty value ``b""``, which the library then caches as the key's
        value. The binding cannot rule that out: none of its code runs
        before that point, and the C ABI gives it no other way to report the
        load's outcome. Where ``b""`` is never a loaded value, a caller that
        catches the KeyboardInterrupt can drop it: ``if cache.get(key) ==
        b"": cache.pop(key, None)``. Raising the interrupt here relies on the
        hook :mod:`mapcache._swallowed` chains into ``sys.unraisablehook`` at
        import, and a hook installed later that does not chain to it
        (pytest's, during a test) gets such an interrupt printed as
        "Exception ignored" instead, and this call a :class:`LoaderError`.

        At interpreter exit, calls still in flight on other (daemon) threads
        are waited for (at most ``mapcache._shutdown.GRACE``, 30 s) before
        finalization starts; meanwhile a loader that has not started yet
        fails with RuntimeError instead of running, and a new call from
        another thread blocks for good (a daemon thread's loader woken during
        finalization would otherwise abort the process).
        """
        if key.__class__ is not bytes:
            key = _key(key)
        if not callable(loader):
            raise TypeError(f"loader must be callable, not {type(loader).__name__}")
        failures = self._failures
        h = self._h
        handle = h.value or 0 if h is not None else 0
        # The bookkeeping around the library call survives a KeyboardInterrupt
        # at any point (see mapcache._shutdown for where CPython raises one):
        # each registration is one store or C call inside the ``try`` whose
        # ``finally`` undoes it with one idempotent C call first thing, and
        # the failure bookkeeping (``held``) is let go of by dropping it.
        sd = _shutdown.token()
        ctx = _load.new_ctx()
        held: Optional[_load.Held] = None
        try:
            held = failures.enter(key)
            try:
                try:
                    _load.calls[ctx] = (loader, key, failures, handle)
                    _shutdown.enter(sd)  # a loader must not run once the interpreter is finalizing
                    return self._get_or_load(key, ctx, failures)
                finally:
                    _shutdown.leave(sd)
            finally:
                _load.calls.pop(ctx, None)
        finally:
            if held is not None:
                # The library has settled this call's load: a failure it
                # recorded can have no new waiters.
                held[0].unsettled.pop(ctx, None)
            # (The frame outlives the call in a traceback, which must not
            # keep the key's failures.)
            held = None

    def _get_or_load(self, key: bytes, ctx: int, failures: "_load.Failures") -> bytes:
        buf, addr, cap, n, n_addr = _ts.single
        status = c_int32()
        status_addr = addressof(status)
        _swallowed.take()  # nothing left over from an earlier call
        while True:
            st = _get_or_load(self._h, key, len(key), _load.run_loader, ctx, addr, cap, n_addr,
                              status_addr)
            # An exception that escaped the loader callback before its body ran
            # (a Ctrl-C's KeyboardInterrupt): the library saw no loader result.
            escaped = _swallowed.take()
            if escaped is not None:
                raise escaped
            if st == 0:
                return buf[: n.value]
            if st == _TOO_SMALL:  # cached, and longer than the buffer: call again
                buf, addr, cap = _single_buffer(n.value)
                continue
            if st == _LOADER:
                exc = failures.get(status.value)
                if exc is not None:
                    raise exc
                err = error_for_status(st)
                if isinstance(err, LoaderError):
                    err.loader_status = status.value
                raise err
            raise self._error(st)

    def advance_clock(self, seconds: float) -> None:
        """Move the cache's manual clock forward by ``seconds``: every entry
        whose deadline it reaches is expired
        from then on, returned by no call (``len`` and :meth:`stats` count it
        until it is removed: see ``__len__``).

        Only for a cache made with ``manual_clock=True`` (otherwise
        :class:`InvalidArgumentError`); negative or NaN raises ValueError. The
        clock stops at its end, 2**63 - 1 ns (about 292 years): a move
        past it (``math.inf``, say) moves it to the end, where an entry written
        with a TTL still lives (until the end).

        The clock moves in whole milliseconds: each call moves it to the
        nearest millisecond of the total this Cache's calls asked for so far,
        so that small steps add up (ten of 0.0004 s move it 4 ms; one of them
        alone moves it none).
        """
        moves = self._clock_moves
        with moves.lock:
            ms = moves.step_ms(seconds)
            st = _clock_advance(self._h, ms)
            if st:
                raise self._error(st)
            moves.commit(float(seconds), ms)

    def stats(self) -> Stats:
        """The cache's counters (see :class:`mapcache.Stats`): cheap, always on."""
        raw = _lib.mapcache_stats()
        raw.struct_size = sizeof(raw)
        st = _stats_get(self._h, byref(raw))
        if st:
            raise self._error(st)
        return Stats._of(raw)

    # ----------------------------------------------------------- snapshots

    def save(self, path: PathLike, progress: Optional[Callable[[int], Any]] = None) -> SaveReport:
        """Save the cache to a snapshot file at ``path``; return a :class:`SaveReport`.

        ``path`` is a ``str``, ``bytes`` or ``os.PathLike`` (encoded with
        ``os.fsencode``). The file is replaced atomically: the records go to
        a temporary file in the same directory, which is fsynced and renamed
        over ``path``, and the directory is fsynced; a crash at any moment
        leaves either the previous file or the complete new one, and a save
        that fails leaves the previous file as it was. Only a regular file is
        replaced: a ``path`` that names a directory, a device, a FIFO or a
        socket raises :class:`SnapshotIOError` before anything is written, and
        a symbolic link is followed (the file it leads to is replaced; one that
        leads to no file is refused). The new file gets the permission bits of
        the file it replaces (a snapshot kept ``0o600`` stays so), and its
        owner and group where the process may set them, else the saver's.

        Consistency: other threads keep reading and writing during a save
        (each shard is locked only while its entries' pointers are copied,
        never for the file I/O). Each key's record holds the value the key
        had at the moment its shard was copied, a moment during the save; the
        shards are copied one after another, so the file is not an image of
        the whole cache at one instant. Entries expired at that moment are
        left out (``expired`` in the report); the others keep their expiry as
        an absolute wall-clock time, so a cache loaded later honours their
        TTLs (see :meth:`load` for manual clocks).

        ``progress``, if given, is called as ``progress(bytes_written)`` on
        the saving thread after each block of records (about every MiB) and
        once at the end with the file's length; the values never decrease.
        It runs with no lock of the cache held and may use the cache (but not
        :meth:`close` it: that raises :class:`InvalidArgumentError`). Keep it
        short: while it runs the save holds back the freeing of memory that
        writers of any cache retire (an epoch pin of the library). If it
        raises, it is not called again, the save still completes (the file is
        written), and the exception is raised once the save returns; if the
        save itself failed too, the save's error is raised, with the
        callback's exception as its ``__context__``. A KeyboardInterrupt
        during a save is raised in the callback and so likewise ends the call
        only once the file is complete (one that lands as the library calls
        the callback, before ``progress`` starts, too: see
        :meth:`get_or_load` on ``sys.unraisablehook``); one anywhere else in
        the call, with or without ``progress``, is raised by it with nothing
        left behind (:meth:`close` and later calls work as usual). At
        interpreter exit, saves with a
        ``progress`` still in flight on other (daemon) threads are waited for
        (their further progress calls skipped) before finalization starts;
        a new one from another thread blocks for good (see
        :meth:`get_or_load`).

        Thread-safety: any thread, concurrently with any other call on the
        cache; several saves may run at once (to one path: the last rename
        wins, and each file is complete). The GIL is released during the
        save but for the progress calls. In ``mode="exclusive"`` a save is a
        read: it raises :class:`ConcurrentReadWriteError` when another
        thread writes while a shard is copied (the previous file is intact).

        Raises:
            SnapshotIOError: a file operation failed (a missing or read-only
                directory, a full disk...); it is also an ``OSError`` of the
                errno's subclass (e.g. ``PermissionError``) with ``errno``,
                ``strerror`` and ``filename``, and its message names the
                step. The previous file is intact.
            InvalidArgumentError: ``path`` is empty, names no file (``"/"``),
                or contains a NUL byte (checked before the library is called).
            TypeError: ``path`` is not a path, or ``progress`` not callable.
            CacheClosedError: the cache is closed.
            ConcurrentReadWriteError, OutOfMemoryError, InternalError: as
                the library reports them; the previous file is intact.
        """
        raw = _snapshot.fs_path(path)
        h = self._handle()
        report = _lib.mapcache_save_report()
        report.struct_size = sizeof(report)
        if progress is None:
            fn, ctx = _snapshot.NO_PROGRESS, 0
        elif callable(progress):
            fn, ctx = _snapshot.run_progress, _snapshot.new_ctx()
        else:
            raise TypeError(f"progress must be callable or None, not {type(progress).__name__}")
        raised: List[BaseException] = []
        handle = h.value or 0
        # Interrupt-safe bookkeeping, as in get_or_load (see mapcache._shutdown).
        sd = _shutdown.token()
        mark = _in_call.token()
        _swallowed.take()  # nothing left over from an earlier call
        try:
            try:
                try:
                    if ctx:
                        _snapshot.calls[ctx] = (progress, raised)
                        # a progress call must not run once the interpreter is finalizing
                        _shutdown.enter(sd)
                    _in_call.marks[mark] = (handle, "the progress callback of a save")
                    st = _save(h, raw, fn, ctx, byref(report))
                finally:
                    _in_call.marks.pop(mark, None)
            finally:
                _snapshot.calls.pop(ctx, None)
        finally:
            _shutdown.leave(sd)
        # What escaped the callback before its body ran (a Ctrl-C's
        # KeyboardInterrupt: see mapcache._swallowed) counts as raised by it.
        escaped = _swallowed.take()
        if escaped is not None and not raised:
            raised.append(escaped)
        if st:
            err = self._snapshot_error(st, path, report)
            if raised:
                err.__context__ = raised[0]
            raise err
        if raised:
            raise raised[0]
        return SaveReport._of(report)

    @classmethod
    def load(cls: Type[_C], path: PathLike, **config: Any) -> _C:
        """A new cache holding the snapshot at ``path`` (a file written by
        :meth:`save`), configured by the keyword arguments of :class:`Cache`.

        The same as :meth:`load_with_report`, without the report.
        """
        return cls.load_with_report(path, **config)[0]

    @classmethod
    def load_with_report(cls: Type[_C], path: PathLike, **config: Any) -> Tuple[_C, LoadReport]:
        """A new cache holding the snapshot at ``path``, and a :class:`LoadReport`.

        ``config`` takes the keyword arguments of :class:`Cache`, with the
        same defaults and checks (``Cache.load(path, max_entries=10_000)``);
        :attr:`config` reports them as given. The table is sized for the
        snapshot up front (``initial_capacity`` is raised to the file's
        record count). A bounded cache smaller than the snapshot keeps what
        its eviction policy keeps as the records arrive in file order. (For a
        subclass of Cache, its ``__init__`` is not called.)

        The whole file is validated (every length, count, offset and
        checksum) before the cache is returned, under a shared advisory lock
        (``flock``); a file that another process holds an exclusive ``flock``
        on fails at once (``BlockingIOError``). What remains: a process that
        ignores the lock and truncates the file during the load kills the
        loading process with SIGBUS (mapcache's own saves never modify an
        existing file, they rename a new one over it).

        TTLs: each record's expiry is a wall-clock time; records whose
        expiry has passed are left out (``expired`` in the report), the
        others expire when it comes. A cache with ``manual_clock=True`` has
        the wall time 2020-01-01T00:00:00Z plus its clock's reading: between
        a save from one manual-clock cache and a load into another, the time
        that passes is how far the loader's clock has moved past the saver's
        (a new cache's clock reads 0), and records saved from a system-clock
        cache lie years in its future.

        Thread-safety: any thread; the GIL is released during the load.

        Raises:
            CorruptSnapshotError: the file is damaged, truncated, appended to,
                not a snapshot, or of a newer format version; ``offset`` is
                where, and the message says what was wrong.
            SnapshotIOError: the file could not be opened, examined (fstat),
                locked or mapped; also an ``OSError`` of the errno's subclass
                (a missing file: ``FileNotFoundError``, errno ``ENOENT``). A
                path that names no regular file fails at once: a directory
                with ``IsADirectoryError``, a FIFO, a device or a socket with
                errno ``None`` and the message "snapshot open of <path>: not a
                regular file (a FIFO)" or the like (a FIFO is never waited on
                for a writer).
            InvalidArgumentError: ``path`` is empty or contains a NUL byte.
            TypeError, ValueError, InvalidConfigError: a bad configuration, as
                for :class:`Cache` (an unknown keyword is a TypeError).
            OutOfMemoryError, InternalError: as the library reports them.
        """
        raw = _snapshot.fs_path(path)
        bound = _INIT_SIGNATURE.bind(None, **config)  # TypeError, as Cache(...) gives
        bound.apply_defaults()
        full = dict(bound.arguments)
        del full["self"]
        cfg = _c_config(full)
        cache = cls.__new__(cls)
        cache._init_closed()
        out = c_void_p()
        report = _lib.mapcache_load_report()
        report.struct_size = sizeof(report)
        st = _load_file(raw, byref(cfg), byref(out), byref(report))
        if st:
            raise _snapshot.error(st, path, report.corrupt_offset, report.os_errno)
        cache._adopt(out, full, "mapcache_load")
        return cache, LoadReport._of(report)

    def load_into(self, path: PathLike) -> LoadReport:
        """Load the snapshot at ``path`` into this cache; return a :class:`LoadReport`.

        Each record overwrites the value of the key it names, as a write
        would (``replaced`` counts them); keys the snapshot does not name are
        left alone. The whole file is validated first, as for
        :meth:`load_with_report` (whose notes on locking and TTLs apply
        here, measured against this cache's clock): a bad file raises and
        leaves the cache unchanged. Only an allocation failure while the
        records are stored (:class:`OutOfMemoryError`) leaves the records
        stored until then.

        Thread-safety: any thread, concurrently with any other call on the
        cache; the records are stored in chunks of a few thousand per shard,
        and between chunks a writer waiting for the shard goes first, so it
        waits about one chunk, not the whole load. The GIL is released during
        the load. In ``mode="exclusive"`` the load is one write: it raises
        :class:`ConcurrentWriteError` if another thread is writing, before
        changing anything.

        Raises:
            CorruptSnapshotError, SnapshotIOError: as for
                :meth:`load_with_report`; the cache is unchanged.
            InvalidArgumentError: ``path`` is empty or contains a NUL byte.
            TypeError: ``path`` is not a path.
            CacheClosedError: the cache is closed.
            ConcurrentWriteError (unchanged), OutOfMemoryError, InternalError:
                as the library reports them.
        """
        raw = _snapshot.fs_path(path)
        report = _lib.mapcache_load_report()
        report.struct_size = sizeof(report)
        st = _load_into(self._handle(), raw, byref(report))
        if st:
            raise self._snapshot_error(st, path, report)
        return LoadReport._of(report)

    def _snapshot_error(self, st: int, path: Any, report: Any) -> BaseException:
        """The exception for status ``st`` of a snapshot call on this cache just
        made on this thread; ``report`` is the call's report."""
        if (st == _INVALID_ARG or st == _INVALID_HANDLE) and self._h is None:
            return CacheClosedError()
        return _snapshot.error(st, path, getattr(report, "corrupt_offset", 0), report.os_errno)

    def __delitem__(self, key: KeyLike) -> None:
        """``del cache[key]``; KeyError when absent."""
        k = key if key.__class__ is bytes else _key(key)
        st = _delete(self._h, k, len(k))
        if st:
            raise self._error(st, key)

    def delete(self, key: KeyLike) -> bool:
        """Remove ``key``; return True when it was present (no KeyError)."""
        k = key if key.__class__ is bytes else _key(key)
        st = _delete(self._h, k, len(k))
        if st == 0:
            return True
        if st == _NOT_FOUND:
            return False
        raise self._error(st)

    def __contains__(self, key: object) -> bool:
        """``key in cache``; TypeError for a key that is not bytes-like or str."""
        k = key if key.__class__ is bytes else _key(key)
        flag, flag_addr = _ts.flag
        st = _contains(self._h, k, len(k), flag_addr)
        if st:
            raise self._error(st)
        return flag.value

    def __len__(self) -> int:
        """The number of entries (a moment's count under concurrent writes).

        Entries whose TTL has run out are counted until the library removes
        them (a lookup that finds one removes it), although no call returns
        them: after a TTL expires, ``len(cache)`` may exceed
        ``len(list(cache))`` (``stats().entries`` counts the same way).

        In ``mode="exclusive"`` it is a read like ``get``: it raises
        :class:`ConcurrentReadWriteError` when another thread's write is in flight.
        """
        n = c_size_t()
        st = _len(self._h, byref(n))
        if st:
            raise self._error(st)
        return n.value

    def clear(self) -> None:
        """Remove every entry."""
        st = _clear(self._h)
        if st:
            raise self._error(st)

    def pop(self, key: KeyLike, default: Any = _MISSING) -> Any:
        """Remove ``key`` and return its value (or ``default``; KeyError without one).

        Not atomic: the C ABI has no remove-and-return, so this is a get followed
        by a delete; a concurrent writer may replace the value in between (the
        value returned is then the one read, and the one removed the newer).
        Between concurrent pops, though, a value is returned to one caller
        only: a pop whose delete finds the key already gone starts over, and
        then finds it absent (or a newer value).
        """
        while True:
            value = self.get(key, _ABSENT)
            if value is _ABSENT:
                if default is _MISSING:
                    raise KeyError(key)
                return default
            if self.delete(key):
                return value

    def popitem(self) -> Tuple[bytes, bytes]:
        """Remove some item and return it as ``(key, value)``; KeyError when
        there is none to remove.

        Not atomic (an iteration, then :meth:`pop`): under concurrent pops each
        item is returned to one caller only, and a pop that another thread
        beat to an item tries the next one, so KeyError means the iteration
        found nothing this call could remove (the cache was empty, or emptied
        meanwhile), not that a race was lost.
        """
        for key in self:
            value = self.pop(key, _ABSENT)
            if value is not _ABSENT:
                return key, value
        raise KeyError("popitem(): the cache is empty")

    def setdefault(self, key: KeyLike, default: ValueLike) -> bytes:  # type: ignore[override]
        """Get-or-insert, atomically: return the value of ``key``, inserting
        ``default`` first when the key is absent."""
        if key.__class__ is not bytes:
            key = _key(key)
        if default is None:
            raise TypeError("setdefault needs a bytes-like default (None cannot be stored)")
        v = default if default.__class__ is bytes else _value(default)
        buf, addr, cap, n, n_addr = _ts.single
        flag, flag_addr = _ts.flag
        while True:
            st = _get_or_insert(self._h, key, len(key), v, len(v), addr, cap, n_addr, flag_addr)
            if st == 0:
                if flag.value:
                    return default if default.__class__ is bytes else bytes(v)
                return buf[: n.value]
            if st != _TOO_SMALL:
                del v, default
                raise self._error(st)
            buf, addr, cap = _single_buffer(n.value)

    def compare_and_swap(self, key: KeyLike, expected: ValueLike, new: ValueLike) -> bool:
        """Replace the value of ``key`` with ``new`` if it equals ``expected``, atomically.

        Returns True when swapped, False when the current value differed.
        Raises KeyError when ``key`` is absent.
        """
        if key.__class__ is not bytes:
            key = _key(key)
        if expected.__class__ is not bytes:
            expected = _value(expected)
        if new.__class__ is not bytes:
            new = _value(new)
        flag, flag_addr = _ts.flag
        st = _cas(self._h, key, len(key), expected, len(expected), new, len(new), flag_addr)
        if st:
            del expected, new
            raise self._error(st, key)
        return flag.value

    def update(self, other: Any = _MISSING, /, **kwargs: ValueLike) -> None:  # type: ignore[override]
        """Store every pair of ``other`` (a mapping or pairs) and ``kwargs``, as one batch."""
        if other is not _MISSING:
            self.set_many(other)
        if kwargs:
            self.set_many(kwargs)

    # ------------------------------------------------------------- batches

    @overload
    def get_many(self, keys: Iterable[KeyLike]) -> List[Optional[bytes]]: ...

    @overload
    def get_many(self, keys: Iterable[KeyLike], default: _D) -> List[Union[bytes, _D]]: ...

    def get_many(self, keys: Iterable[KeyLike], default: Any = None) -> List[Any]:
        """The values of ``keys``, in order, with ``default`` (None unless
        given) for absent keys.

        One foreign call for the whole batch (a second one only for values that
        did not fit the per-thread buffer). A single ``str`` or bytes-like key
        raises ``TypeError`` (it would otherwise be taken as many one-character
        keys): pass ``[key]``.
        """
        keys = _key_list(keys, "get_many")
        n = len(keys)
        if n == 0:
            self._handle()
            return []
        packed, klens, keys = _pack_keys(keys)  # type: ignore[assignment]
        ts = _ts
        buf, cap = ts.batch, ts.batch_cap
        if cap < n * 32:
            buf, cap = _batch_buffer(max(n * 32, _INITIAL_BATCH))
        vlens = _SZ_ZERO * n
        sts = _ST_ZERO * n
        st = _get_many(self._h, n, packed, klens.buffer_info()[0], addressof(buf), cap,
                       vlens.buffer_info()[0], sts.buffer_info()[0])
        if st:
            raise self._error(st)
        if sts.count(0) == n:  # every key found and copied: the common case
            first = vlens[0]
            if vlens.count(first) == n:  # ... with values of one length
                return _split_uniform(buf, first, n)
            ends = list(accumulate(vlens))
            raw = buf[: ends[-1]]
            ends.insert(0, 0)
            return [raw[a:b] for a, b in zip(ends, ends[1:])]
        return self._get_many_slow(keys, buf, vlens, sts, default)

    def _get_many_slow(self, keys: List[bytes], buf: Any, vlens: array, sts: array,
                       default: Any) -> List[Any]:
        out: List[Any] = [default] * len(keys)
        retry: List[int] = []
        pos = 0
        for i, st in enumerate(sts):
            if st == 0:
                ln = vlens[i]
                out[i] = buf[pos: pos + ln]
                pos += ln
            elif st == _NOT_FOUND:
                pass
            elif st == _TOO_SMALL:
                retry.append(i)
            else:
                exc = error_for_status(st)
                exc.index = i  # type: ignore[attr-defined]
                raise exc
        while retry:  # values that did not fit: fetch them again, sized exactly
            sub = [keys[i] for i in retry]
            need = sum(vlens[i] for i in retry)
            # grow the thread's buffer to the whole batch, for the next calls
            buf, cap = _batch_buffer(pos + need)
            m = len(sub)
            packed, klens, _ = _pack_keys(sub)
            sub_lens = _SZ_ZERO * m
            sub_sts = _ST_ZERO * m
            st = _get_many(self._h, m, packed, klens.buffer_info()[0], addressof(buf), cap,
                           sub_lens.buffer_info()[0], sub_sts.buffer_info()[0])
            if st:
                raise self._error(st)
            again: List[int] = []
            pos = 0
            for j, i in enumerate(retry):
                st = sub_sts[j]
                if st == 0:
                    ln = sub_lens[j]
                    out[i] = buf[pos: pos + ln]
                    pos += ln
                elif st == _NOT_FOUND:
                    out[i] = default
                elif st == _TOO_SMALL:  # grew in between
                    vlens[i] = sub_lens[j]
                    again.append(i)
                else:
                    exc = error_for_status(st)
                    exc.index = i  # type: ignore[attr-defined]
                    raise exc
            retry = again
        return out

    def set_many(self, items: Union[Mapping, Iterable[Tuple[KeyLike, ValueLike]]]) -> None:  # type: ignore[type-arg]
        """Store many pairs in one foreign call.

        ``items`` is a mapping or an iterable of ``(key, value)`` pairs, each
        exactly two items long, as ``dict()`` takes them (a ``str`` or
        bytes-like item is not a pair, even of length 2). Every item, key and
        value is checked and converted before anything is stored: an item that
        is not a pair, or a key or value of a type the cache does not take,
        raises ``TypeError`` with its position in ``.index`` (``"set_many()
        element #1 has length 3; 2 is required"``), and an iterable that
        raises part-way passes its exception on; either way nothing is
        stored. Then each key is stored
        independently (a batch is not a transaction): if one fails, the
        exception is that key's error (its position in ``.index``) and the
        other keys were still stored.
        """
        if items.__class__ is dict:
            keys = list(items)
            values = list(items.values())
        elif isinstance(items, Mapping):  # one pass, so keys and values stay paired
            pairs = list(items.items())
            keys = [k for k, _ in pairs]
            values = [v for _, v in pairs]
        else:
            pairs = items if items.__class__ is list else list(items)
            types = set(map(type, pairs))
            if types <= _PAIR_TYPES and list(map(len, pairs)).count(2) == len(pairs):
                # every item a tuple or list of two: the common case, in C loops
                keys = [k for k, _ in pairs]
                values = [v for _, v in pairs]
            else:
                keys, values = _split_pairs(pairs)
        n = len(keys)
        if n == 0:
            self._handle()
            return
        pk, klens, _ = _pack_keys(keys)
        pv, vlens = _pack_values(values)
        sts = _ST_ZERO * n
        st = _put_many(self._h, n, pk, klens.buffer_info()[0], pv, vlens.buffer_info()[0],
                       sts.buffer_info()[0])
        if st:
            raise self._error(st)
        if sts.count(0) != n:
            for i, s in enumerate(sts):
                if s:
                    exc = error_for_status(s)
                    exc.index = i  # type: ignore[attr-defined]
                    raise exc

    def delete_many(self, keys: Iterable[KeyLike]) -> int:
        """Remove ``keys`` in one foreign call; return how many were present.

        A single ``str`` or bytes-like key raises ``TypeError``: pass ``[key]``.
        """
        keys = _key_list(keys, "delete_many")
        n = len(keys)
        if n == 0:
            self._handle()
            return 0
        packed, klens, _ = _pack_keys(keys)
        sts = _ST_ZERO * n
        st = _delete_many(self._h, n, packed, klens.buffer_info()[0], sts.buffer_info()[0])
        if st:
            raise self._error(st)
        deleted = sts.count(0)
        if deleted + sts.count(_NOT_FOUND) != n:
            for i, s in enumerate(sts):
                if s not in (0, _NOT_FOUND):
                    exc = error_for_status(s)
                    exc.index = i  # type: ignore[attr-defined]
                    raise exc
        return deleted

    # ----------------------------------------------------------- iteration

    def __iter__(self) -> Iterator[bytes]:
        """Iterate over the keys (weakly consistent: see :meth:`items`)."""
        return _Iter(self, 0)

    def keys(self) -> "KeysView[bytes]":
        """A view of the keys (as ``bytes``); iterating it walks the library's iterator."""
        return KeysView(self)

    def items(self) -> "ItemsView[bytes, bytes]":
        """A view of ``(key, value)`` pairs, read in one pass over the table.

        Iteration is weakly consistent: it may run while other threads (or the
        loop itself) write; a key present for the whole iteration is yielded
        exactly once, no key twice, and keys added or removed meanwhile may or
        may not be seen.

        In ``mode="exclusive"`` the library reads the table in steps (one bucket
        chain each), and each step is a read: the iteration raises
        :class:`ConcurrentReadWriteError` when a step overlaps another thread's
        write. A write that starts and ends between two steps is not seen.
        """
        return _ItemsView(self)

    def values(self) -> "ValuesView[bytes]":
        """A view of the values, read in one pass over the table."""
        return _ValuesView(self)


#: The keyword arguments of Cache(...), with their defaults: Cache.load takes the same.
_INIT_SIGNATURE = inspect.signature(Cache.__init__)


class _Iter:
    """Wraps a ``mapcache_iter_t``. Weakly consistent: a key present for the whole
    iteration is yielded exactly once and no key twice; concurrent changes are
    allowed (no RuntimeError as with dict)."""

    __slots__ = ("_cache", "_it", "_mode", "_lock", "_kp", "_kl", "_vp", "_vl", "_args")

    def __init__(self, cache: Cache, mode: int) -> None:
        self._it: Optional[int] = None
        self._cache = cache  # keeps the Cache (and so its handle) alive
        self._mode = mode  # 0 keys, 1 items, 2 values
        self._lock = threading.Lock()
        it = c_void_p()
        st = _iter_new(cache._h, byref(it))
        if st:
            raise cache._error(st)
        self._it = it.value
        self._kp, self._kl, self._vp, self._vl = c_void_p(), c_size_t(), c_void_p(), c_size_t()
        self._args = (byref(self._kp), byref(self._kl), byref(self._vp), byref(self._vl))

    def __iter__(self) -> "_Iter":
        return self

    def __next__(self) -> Any:
        with self._lock:  # one thread at a time inside this iterator
            it = self._it
            if it is None:
                raise StopIteration
            st = _iter_next(it, *self._args)
            if st == 0:
                mode = self._mode
                kl = self._kl.value
                key = string_at(self._kp.value or 0, kl) if kl else b""
                if mode == 0:
                    return key
                vl = self._vl.value
                value = string_at(self._vp.value or 0, vl) if vl else b""
                return (key, value) if mode == 1 else value
            self._close_locked()
            if st == _NOT_FOUND:
                raise StopIteration
            raise self._cache._error(st)

    def _close_locked(self) -> None:
        it = self._it
        if it is not None:
            self._it = None
            _iter_free(it)

    def close(self) -> None:
        """Free the library iterator now (otherwise it is freed at the end or on GC)."""
        with self._lock:
            self._close_locked()

    def __del__(self) -> None:
        it = getattr(self, "_it", None)
        if it is not None and _iter_free is not None:
            self._it = None
            _iter_free(it)


class _ItemsView(ItemsView):  # type: ignore[type-arg]
    __slots__ = ()

    def __iter__(self) -> Iterator[Tuple[bytes, bytes]]:
        return _Iter(self._mapping, 1)  # type: ignore[attr-defined]


class _ValuesView(ValuesView):  # type: ignore[type-arg]
    __slots__ = ()

    def __iter__(self) -> Iterator[bytes]:
        return _Iter(self._mapping, 2)  # type: ignore[attr-defined]


if _get_object is None:  # see _lib: single gets take the buffered path
    Cache.__getitem__ = Cache._getitem_buffered  # type: ignore[assignment]
    Cache.get = Cache._get_buffered_default  # type: ignore[assignment]


def _uint(name: str, value: Any, bits: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not 0 <= value < (1 << bits):
        raise ValueError(f"{name} must be in 0..{(1 << bits) - 1}, got {value}")
    return value


def _choice(name: str, value: Any, choices: Dict[str, int]) -> int:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    try:
        return choices[value]
    except KeyError:
        options = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {options}, got {value!r}") from None
