"""Snapshots: Cache.save, Cache.load (and load_with_report), Cache.load_into.

Round trips at several sizes and through every kind of path; TTLs that expire
between a save and a load, measured on two manual clocks (nothing sleeps);
the progress callback; the reports; and every error: a corrupt file
(CorruptSnapshotError with its offset, the cache loaded into unchanged), an
I/O failure (an OSError subclass with its errno, also a MapCacheError; the
previous file intact after a failed save), a closed cache, a bad config, a bad
path. The 10M-entry round trip and a value of MAX_VALUE_LEN run only under
``make stress`` (MAPCACHE_STRESS=1).
"""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import os
import pathlib
import stat
import subprocess
import sys
import threading
from typing import List

import pytest

import mapcache
from mapcache import Cache, CorruptSnapshotError, LoadReport, SaveReport, SnapshotIOError

from conftest import run_python

STRESS = os.environ.get("MAPCACHE_STRESS") == "1"
stress_only = pytest.mark.skipif(not STRESS, reason="make stress only (MAPCACHE_STRESS=1)")


def _filled(n: int, **config) -> Cache:
    c = Cache(**config)
    c.set_many((f"key-{i}".encode(), f"value-{i}".encode() * (i % 7 + 1)) for i in range(n))
    return c


def _contents(c: Cache) -> dict:
    return dict(c.items())


# ----------------------------------------------------------- round trips


@pytest.mark.parametrize("n", [0, 1, 5000])
def test_round_trip_through_load_and_load_into(tmp_path, n):
    path = tmp_path / "c.snap"
    with _filled(n) as c:
        want = _contents(c)
        report = c.save(path)
    assert isinstance(report, SaveReport)
    assert report.records == n and report.expired == 0
    assert report.bytes == path.stat().st_size > 0
    assert report.blocks >= (1 if n else 0)
    with Cache.load(path) as warm:
        assert _contents(warm) == want
    with Cache() as into:
        into["other"] = b"kept"
        loaded = into.load_into(path)
        assert isinstance(loaded, LoadReport)
        assert (loaded.records, loaded.loaded, loaded.replaced) == (n, n, 0)
        assert (loaded.expired, loaded.too_large) == (0, 0)
        assert loaded.bytes == report.bytes
        assert into.pop("other") == b"kept"  # keys the snapshot does not name stay
        assert _contents(into) == want


def test_a_value_over_a_mib_and_the_longest_key(tmp_path):
    path = tmp_path / "big.snap"
    big = os.urandom((1 << 20) + 12345)
    longest = b"K" * mapcache.MAX_KEY_LEN
    with Cache() as c:
        c["big"] = big
        c[longest] = b"long key"
        c[b""] = b""  # the empty key and the empty value
        c.save(path)
    with Cache.load(path) as warm:
        assert len(warm) == 3
        assert warm["big"] == big
        assert warm[longest] == b"long key"
        assert warm[b""] == b""


def test_load_into_replaces_values_and_reports_it(tmp_path):
    path = tmp_path / "c.snap"
    with _filled(10) as c:
        c.save(path)
    with Cache() as into:
        into.set_many({b"key-1": b"old", b"key-2": b"old", b"mine": b"x"})
        r = into.load_into(path)
        assert (r.records, r.loaded, r.replaced) == (10, 10, 2)
        assert into[b"key-1"] == b"value-1" * 2 and into[b"mine"] == b"x"


def test_load_with_report(tmp_path):
    path = tmp_path / "c.snap"
    with _filled(100) as c:
        saved = c.save(path)
    warm, report = Cache.load_with_report(path, max_entries=1000)
    with warm:
        assert isinstance(warm, Cache) and len(warm) == 100
        assert warm.config["max_entries"] == 1000
    assert (report.records, report.loaded, report.bytes) == (100, 100, saved.bytes)


def test_load_takes_the_config_keywords(tmp_path):
    path = tmp_path / "c.snap"
    with _filled(3) as c:
        c.save(path)
    with Cache.load(path, mode="exclusive", shards=4, seed=7, default_ttl=30.0) as warm:
        with Cache() as defaults:
            want = dict(defaults.config, mode="exclusive", shards=4, seed=7, default_ttl=30.0)
        assert warm.config == want
        assert len(warm) == 3
        warm["new"] = b"x"
        assert warm.stats().entries == 4


def test_reports_are_frozen(tmp_path):
    path = tmp_path / "c.snap"
    with _filled(2) as c:
        s = c.save(path)
        r = c.load_into(path)
    for report in (s, r):
        with pytest.raises(dataclasses.FrozenInstanceError):
            report.records = 0  # type: ignore[misc]
    assert s == SaveReport(records=2, blocks=s.blocks, bytes=s.bytes, expired=0)


# ----------------------------------------------------------------- paths


class _PathLike:
    def __init__(self, p: str) -> None:
        self.p = p

    def __fspath__(self) -> str:
        return self.p


@pytest.mark.parametrize("kind", ["str", "bytes", "Path", "PathLike"])
def test_every_kind_of_path(tmp_path, kind):
    raw = str(tmp_path / "p.snap")
    path = {"str": raw, "bytes": os.fsencode(raw), "Path": pathlib.Path(raw),
            "PathLike": _PathLike(raw)}[kind]
    with _filled(4) as c:
        c.save(path)
        assert c.load_into(path).loaded == 4
    with Cache.load(path) as warm:
        assert len(warm) == 4
    assert os.path.getsize(raw) > 0


def test_a_non_ascii_path(tmp_path):
    path = tmp_path / "snäp-\udcff.snap"  # a surrogate escape: an undecodable byte
    with _filled(2) as c:
        c.save(path)
    assert os.path.exists(os.fsencode(str(path)))
    with Cache.load(path) as warm:
        assert len(warm) == 2


@pytest.mark.parametrize("bad", ["x\0y.snap", b"x\0y.snap"])
def test_a_nul_in_the_path_is_refused_before_the_library_sees_it(tmp_path, bad):
    # Passed on, the path would end at the NUL: the save would write "x".
    path = os.path.join(os.fsencode(tmp_path) if isinstance(bad, bytes) else str(tmp_path), bad)
    with _filled(1) as c:
        for call in (lambda: c.save(path), lambda: c.load_into(path), lambda: Cache.load(path)):
            with pytest.raises(mapcache.InvalidArgumentError, match="NUL") as info:
                call()
            assert isinstance(info.value, ValueError)
    assert os.listdir(tmp_path) == []


def test_an_empty_path_and_a_wrong_type(cache):
    with pytest.raises(mapcache.InvalidArgumentError, match="empty"):
        cache.save("")
    with pytest.raises(mapcache.InvalidArgumentError, match="empty"):
        Cache.load(b"")
    for bad in (42, None, ["a"]):
        with pytest.raises(TypeError):
            cache.save(bad)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            cache.load_into(bad)  # type: ignore[arg-type]


# ------------------------------------------------------------------ TTLs


def test_ttls_expire_between_save_and_load(tmp_path):
    """Two manual clocks: both start at 2020-01-01T00:00:00Z, so the time that
    passes between the save and the load is how far the loader's clock is
    ahead of the saver's."""
    path = tmp_path / "ttl.snap"
    with Cache(manual_clock=True) as a:
        a.set("short", b"5 s", ttl=5)
        a.set("long", b"60 s", ttl=60)
        a["forever"] = b"no ttl"
        a.advance_clock(2)
        saved = a.save(path)
        assert (saved.records, saved.expired) == (3, 0)
    with Cache(manual_clock=True) as b:
        b.advance_clock(10)  # 10 s after the saver's start: "short" expired at 5 s
        r = b.load_into(path)
        assert (r.records, r.loaded, r.expired) == (3, 2, 1)
        assert "short" not in b
        assert b["long"] == b"60 s" and b["forever"] == b"no ttl"
        b.advance_clock(49.999)  # 59.999 s: "long" (expiry 60 s) still lives
        assert b["long"] == b"60 s"
        b.advance_clock(0.001)  # 60 s: its expiry is reached
        assert "long" not in b
        assert b["forever"] == b"no ttl"
    # A new manual-clock cache starts at the saver's origin: nothing expired yet.
    warm, r = Cache.load_with_report(path, manual_clock=True)
    with warm:
        assert r.expired == 0 and len(warm) == 3
        warm.advance_clock(5)
        assert "short" not in warm and "long" in warm


def test_entries_expired_at_the_save_are_left_out(tmp_path):
    path = tmp_path / "c.snap"
    with Cache(manual_clock=True) as a:
        a.set("gone", b"x", ttl=1)
        a["kept"] = b"y"
        a.advance_clock(1)
        s = a.save(path)
    assert (s.records, s.expired) == (1, 1)
    with Cache.load(path, manual_clock=True) as warm:
        assert _contents(warm) == {b"kept": b"y"}


# -------------------------------------------------------------- progress


def test_progress_is_monotone_and_ends_at_the_file_size(tmp_path):
    path = tmp_path / "c.snap"
    calls: List[int] = []
    with Cache() as c:
        c.set_many((f"k{i}".encode(), b"v" * 1000) for i in range(4000))  # ~4 MB: several blocks
        report = c.save(path, progress=calls.append)
    size = path.stat().st_size
    assert len(calls) >= 3
    assert calls == sorted(calls) and calls[0] > 0
    assert calls[-1] == size == report.bytes


def test_progress_may_use_the_cache(tmp_path):
    path = tmp_path / "c.snap"
    seen = []
    with _filled(10) as c:
        c.save(path, progress=lambda n: seen.append((n, c[b"key-3"], len(c))))
    assert seen and all(v == b"value-3" * 4 and n == 10 for _, v, n in seen)


def test_an_exception_in_progress_is_raised_after_the_save_completes(tmp_path):
    path = tmp_path / "c.snap"
    calls = []
    boom = RuntimeError("progress failed")

    def progress(n: int) -> None:
        calls.append(n)
        raise boom

    with Cache() as c:
        c.set_many((f"k{i}".encode(), b"v" * 1000) for i in range(3000))
        with pytest.raises(RuntimeError) as info:
            c.save(path, progress=progress)
        assert info.value is boom
        assert len(calls) == 1  # not called again after it raised
        want = _contents(c)
    with Cache.load(path) as warm:  # the save itself completed
        assert _contents(warm) == want


def test_close_inside_progress_is_refused(tmp_path):
    # mapcache_free must not run inside the save's own callback (C contract).
    path = tmp_path / "c.snap"
    with _filled(3) as c:
        with pytest.raises(mapcache.InvalidArgumentError, match="progress"):
            c.save(path, progress=lambda n: c.close())
        assert not c.closed and len(c) == 3
    with Cache.load(path) as warm:
        assert len(warm) == 3


def test_progress_must_be_callable(cache, tmp_path):
    with pytest.raises(TypeError, match="callable"):
        cache.save(tmp_path / "c.snap", progress=42)  # type: ignore[arg-type]
    assert os.listdir(tmp_path) == []


# -------------------------------------------------------- corrupt files


@pytest.fixture
def snapshot(tmp_path) -> pathlib.Path:
    path = tmp_path / "good.snap"
    with _filled(500) as c:
        c.save(path)
    return path


def _damaged(snapshot: pathlib.Path, data: bytes) -> pathlib.Path:
    bad = snapshot.with_name("bad.snap")
    bad.write_bytes(data)
    return bad


def _assert_corrupt(path: pathlib.Path) -> CorruptSnapshotError:
    size = path.stat().st_size
    with pytest.raises(CorruptSnapshotError) as info:
        Cache.load(path)
    exc = info.value
    assert isinstance(exc, mapcache.MapCacheError)
    assert exc.status == 14
    assert isinstance(exc.offset, int) and 0 <= exc.offset <= size
    assert f"offset {exc.offset}" in exc.message == str(exc)
    assert exc.filename == str(path)  # os.fspath of it, as OSError has it
    return exc


def test_a_flipped_byte(snapshot):
    data = bytearray(snapshot.read_bytes())
    middle = len(data) // 2
    data[middle] ^= 0x40
    exc = _assert_corrupt(_damaged(snapshot, bytes(data)))
    assert 0 < exc.offset <= middle  # the structure holding it, not the header


def test_a_truncated_file(snapshot):
    data = snapshot.read_bytes()
    for end in (0, 1, 7, len(data) // 2, len(data) - 1):
        _assert_corrupt(_damaged(snapshot, data[:end]))


def test_garbage_and_appended_bytes(snapshot):
    exc = _assert_corrupt(_damaged(snapshot, b"this is a text file, not a snapshot\n"))
    assert exc.offset == 0
    _assert_corrupt(_damaged(snapshot, snapshot.read_bytes() + b"\0trailing"))


def test_load_into_a_corrupt_file_leaves_the_cache_unchanged(snapshot):
    data = bytearray(snapshot.read_bytes())
    data[-10] ^= 0xFF  # the last block: every block before it is valid
    bad = _damaged(snapshot, bytes(data))
    with Cache() as c:
        c.set_many({b"key-1": b"mine", b"other": b"x"})
        before = _contents(c)
        with pytest.raises(CorruptSnapshotError) as info:
            c.load_into(bad)
        assert info.value.offset > 0
        assert _contents(c) == before


# ------------------------------------------------------------ I/O errors


def test_a_missing_file_is_file_not_found(tmp_path):
    missing = tmp_path / "nope" / "c.snap"
    with pytest.raises(FileNotFoundError) as info:
        Cache.load(missing)
    exc = info.value
    assert isinstance(exc, SnapshotIOError) and isinstance(exc, mapcache.MapCacheError)
    assert exc.errno == errno.ENOENT and exc.strerror == os.strerror(errno.ENOENT)
    assert exc.filename == str(missing)  # os.fspath of it, as open() gives
    assert exc.status == 15
    assert "open" in exc.message and str(missing) in exc.message and str(exc) == exc.message
    with Cache() as c:
        with pytest.raises(mapcache.MapCacheError) as info2:
            c.load_into(str(missing))
        assert isinstance(info2.value, FileNotFoundError)
        assert info2.value.filename == str(missing)


def test_a_path_that_names_no_regular_file_is_refused_at_once(tmp_path):
    """A FIFO (which a plain open(2) waits on for a writer) and a character
    device are refused by every load: SnapshotIOError, errno None, a message
    that names the path and says it is not a regular file. This process holds
    the FIFO open for reading and writing, so that a load that waited for a
    writer would get one and end otherwise (CorruptSnapshotError: an empty
    "file") rather than hang the suite."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    held = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
    try:
        for path, what in ((fifo, "a FIFO"), ("/dev/null", "a character device")):
            with Cache() as c:
                c[b"k"] = b"v"
                for call in (lambda: Cache.load(path), lambda: Cache.load_with_report(path),
                             lambda: c.load_into(path)):
                    with pytest.raises(SnapshotIOError) as info:
                        call()
                    exc = info.value
                    assert type(exc) is SnapshotIOError and exc.errno is None
                    assert exc.message == f"snapshot open of {path}: not a regular file ({what})"
                    assert exc.filename == str(path)
                assert dict(c.items()) == {b"k": b"v"}
    finally:
        os.close(held)


def test_a_directory_is_is_a_directory_error(tmp_path):
    with pytest.raises(IsADirectoryError) as info:
        Cache.load(tmp_path)
    assert isinstance(info.value, SnapshotIOError) and info.value.errno == errno.EISDIR
    assert info.value.message.startswith(f"snapshot open of {tmp_path}: ")


def test_a_file_locked_by_another_writer_is_blocking_io_error(snapshot):
    # flock locks belong to the open file description: this process's
    # exclusive lock keeps out the library's shared one.
    with open(snapshot, "rb") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        with pytest.raises(BlockingIOError) as info:
            Cache.load(snapshot)
        assert isinstance(info.value, SnapshotIOError)
        assert info.value.errno in (errno.EAGAIN, errno.EWOULDBLOCK)
        assert "lock" in info.value.message
    with Cache.load(snapshot) as warm:  # unlocked: it loads
        assert len(warm) == 500


def test_a_save_that_cannot_create_its_file(tmp_path):
    path = tmp_path / "c.snap"
    with Cache() as c:
        c["old"] = b"1"
        c.save(path)
        before = path.read_bytes()
        c["new"] = b"2"
        if os.geteuid() == 0:
            # root writes into a read-only directory anyway: /proc refuses it
            target = pathlib.Path("/proc/mapcache-py-test.snap")
            with pytest.raises(SnapshotIOError) as info:
                c.save(target)
            assert isinstance(info.value, OSError) and info.value.errno
        else:
            target = path
            tmp_path.chmod(stat.S_IRUSR | stat.S_IXUSR)
            try:
                with pytest.raises(PermissionError) as info:
                    c.save(target)
            finally:
                tmp_path.chmod(stat.S_IRWXU)
            assert info.value.errno == errno.EACCES
        exc = info.value
        assert isinstance(exc, mapcache.MapCacheError) and exc.status == 15
        assert exc.filename == str(target) and "create" in exc.message
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["c.snap"]  # no temporary file left
    with Cache.load(path) as old:
        assert _contents(old) == {b"old": b"1"}


def test_a_failed_write_leaves_the_previous_snapshot_intact(tmp_path):
    """A write that fails half way (RLIMIT_FSIZE: EFBIG, which root gets too)
    raises with its errno and leaves the previous file as it was; an exception
    the progress callback raised before is the error's __context__."""
    path = tmp_path / "c.snap"
    with _filled(10) as c:
        c.save(path)
    before = path.read_bytes()
    code = f"""
import resource, signal, mapcache
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
c = mapcache.Cache()
c.set_many((b"k%d" % i, b"v" * 1000) for i in range(5000))  # ~5 MB
resource.setrlimit(resource.RLIMIT_FSIZE, (3 << 20, resource.RLIM_INFINITY))
def progress(n):
    raise KeyError("from progress")
for p in (None, progress):
    try:
        c.save({str(path)!r}, progress=p)
    except mapcache.SnapshotIOError as exc:
        assert type(exc) is mapcache.SnapshotIOError  # EFBIG has no OSError subclass
        assert isinstance(exc, OSError) and isinstance(exc, mapcache.MapCacheError)
        print("errno", exc.errno, "|", exc.message, "|", repr(exc.__context__))
"""
    out = run_python(code)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 2, out.stdout
    for line in lines:
        assert line.startswith(f"errno {errno.EFBIG} | snapshot write of"), line
    assert lines[0].endswith("| None")
    assert lines[1].endswith("| KeyError('from progress')")
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["c.snap"]


def test_io_error_class_design():
    """Every SnapshotIOError is an OSError, with the builtin subclass that
    OSError(errno, ...) itself picks for its errno, and a MapCacheError."""
    for code, builtin in ((errno.ENOENT, FileNotFoundError), (errno.EACCES, PermissionError),
                          (errno.EISDIR, IsADirectoryError), (errno.EAGAIN, BlockingIOError)):
        exc = mapcache._errors.snapshot_io_error(code, "msg", "/p")
        assert isinstance(exc, builtin) and isinstance(exc, SnapshotIOError)
        assert type(OSError(code, "x")) is builtin
        assert (exc.errno, exc.strerror, exc.filename, exc.message) == (
            code, os.strerror(code), "/p", "msg")
    plain = mapcache._errors.snapshot_io_error(errno.EFBIG, "m", "/p")
    assert type(plain) is SnapshotIOError and plain.errno == errno.EFBIG
    none = mapcache._errors.snapshot_io_error(0, "no errno", b"/p")
    assert type(none) is SnapshotIOError and none.errno is None and none.filename == b"/p"


# ------------------------------------------------ closed cache, bad config


def test_a_closed_cache(tmp_path):
    path = tmp_path / "c.snap"
    c = _filled(2)
    c.save(path)
    c.close()
    with pytest.raises(mapcache.CacheClosedError):
        c.save(tmp_path / "other.snap")
    with pytest.raises(mapcache.CacheClosedError):
        c.load_into(path)
    assert os.listdir(tmp_path) == ["c.snap"]


def test_bad_config_in_load(snapshot):
    with pytest.raises(mapcache.InvalidConfigError):
        Cache.load(snapshot, shards=3)
    with pytest.raises(TypeError):
        Cache.load(snapshot, no_such_option=1)
    with pytest.raises(TypeError):
        Cache.load(snapshot, mode=1)
    with pytest.raises(ValueError):
        Cache.load(snapshot, default_ttl=-1)
    with pytest.raises(TypeError):
        Cache.load(snapshot, {"shards": 4})  # type: ignore[misc]  # keywords only


def test_exclusive_mode_save_and_load_into_work_alone(tmp_path, exclusive):
    path = tmp_path / "c.snap"
    exclusive["a"] = b"1"
    assert exclusive.save(path).records == 1
    assert exclusive.load_into(path).replaced == 1


def test_exclusive_mode_save_is_a_read_and_load_into_a_write(tmp_path, exclusive):
    from test_misuse import HOLDER, OTHER, while_write_held

    path = tmp_path / "c.snap"
    exclusive.set_many({b"a": b"1", b"b": b"2"})
    exclusive.save(path)
    before = path.read_bytes()
    exclusive["a"] = b"changed"
    exc = while_write_held(exclusive, b"a", lambda: exclusive.save(path))
    assert isinstance(exc, mapcache.ConcurrentReadWriteError), repr(exc)
    assert (exc.holder, exc.collider) == (HOLDER, OTHER)
    assert path.read_bytes() == before  # the previous file is intact
    exc = while_write_held(exclusive, b"a", lambda: exclusive.load_into(path))
    assert isinstance(exc, mapcache.ConcurrentWriteError), repr(exc)
    assert exclusive["a"] == b"changed"  # nothing loaded


def test_the_statuses_without_a_report():
    """error_for_status (which has no report) still gives the snapshot classes."""
    for st in (14, 15):
        assert mapcache._lib.status_str(st) != mapcache._lib.status_str(999)
    corrupt = mapcache._errors.error_for_status(14, "corrupt snapshot at byte offset 3: x")
    assert type(corrupt) is CorruptSnapshotError and corrupt.offset is None
    io = mapcache._errors.error_for_status(15, "snapshot open of /p: (os error 2)")
    assert type(io) is SnapshotIOError and io.errno is None and io.status == 15
    assert str(io) == "snapshot open of /p: (os error 2)"


def test_the_errors_pickle(tmp_path, snapshot):
    import pickle

    data = bytearray(snapshot.read_bytes())
    data[200] ^= 1
    bad = _damaged(snapshot, bytes(data))
    raised = []
    for call in (lambda: Cache.load(bad), lambda: Cache.load(tmp_path / "missing")):
        try:
            call()
        except mapcache.MapCacheError as exc:
            raised.append(exc)
    assert [type(e).__name__ for e in raised] == ["CorruptSnapshotError",
                                                  "SnapshotFileNotFoundError"]
    for exc in raised:
        again = pickle.loads(pickle.dumps(exc))
        assert type(again) is type(exc) and vars(again) == vars(exc)
        assert str(again) == str(exc) and again.args == exc.args
        if isinstance(exc, OSError):
            assert (again.errno, again.strerror, again.filename) == (
                exc.errno, exc.strerror, exc.filename)


# -------------------------------------------------------------- the GIL


# The load's probe. The main thread loads a large snapshot, each time through
# a new hard link to it (so that each load opens a path of its own); a second
# thread reads /proc/self/fd/N for every N, over and over, and counts how often
# each link shows up as an open file of the process. The library holds the
# file open from its open(2) to the end of the load, inside the one library
# call. A link seen twice, by two readlink calls with the probe's Python code
# between them, proves that the probe ran Python code while the load was inside
# the library: had the load kept the GIL, the probe's code after the first
# sighting could run only once that load had returned and closed the file, and
# no later readlink could show that link again (it is never opened again). So
# the control (a load through PyDLL, which keeps the GIL; argv[1] "control")
# never proves it, however many loads it makes, while a load that releases the
# GIL proves it in its first load or so; the loads stop as soon as it is proved,
# at most ATTEMPTS of them (nothing here is timed).
_GIL_PROBE = r"""
import os, sys, tempfile, threading, mapcache
from mapcache import _cache
control = len(sys.argv) > 1
if control:  # a load that keeps the GIL (PyDLL)
    import ctypes
    fn = ctypes.PyDLL(str(mapcache.library_path()))["mapcache_load"]
    fn.restype, fn.argtypes = mapcache._lib._PROTOTYPES["mapcache_load"]
    _cache._load_file = fn
ATTEMPTS = 3 if control else 200
N = 200_000
work = tempfile.mkdtemp()
snap = os.path.join(work, "big.snap")
with mapcache.Cache() as c:
    for base in range(0, N, 10_000):
        c.set_many([(b"%016d" % i, b"%032d" % i) for i in range(base, base + 10_000)])
    c.save(snap)
prefix = os.path.join(work, "link-")
seen = {}
proved = threading.Event()
done = threading.Event()
def probe():
    while not done.is_set():
        for fd in range(256):
            try:
                target = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                continue
            if target.startswith(prefix):
                seen[target] = seen.get(target, 0) + 1
                if seen[target] >= 2:
                    proved.set()
                    return
threading.Thread(target=probe, daemon=True).start()
loads = 0
try:
    while loads < ATTEMPTS and not proved.is_set():
        link = f"{prefix}{loads}.snap"
        os.link(snap, link)
        with mapcache.Cache.load(link) as warm:
            assert len(warm) == N
        os.unlink(link)
        loads += 1
finally:
    done.set()
    os.unlink(snap)
    for name in os.listdir(work):
        os.unlink(os.path.join(work, name))
    os.rmdir(work)
print("proved" if proved.is_set() else "not proved", "after", loads, "loads")
"""


def test_load_releases_the_gil():
    """Another Python thread runs while Cache.load is inside the library (see
    _GIL_PROBE); the same probe around a load that keeps the GIL (PyDLL, the
    control) never sees that."""
    fd = os.open(os.devnull, os.O_RDONLY)
    try:
        if not os.path.islink(f"/proc/self/fd/{fd}"):
            pytest.skip("needs /proc/self/fd")
    finally:
        os.close(fd)
    out = run_python(_GIL_PROBE)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("proved after "), out.stdout
    control = subprocess.run([sys.executable, "-c", _GIL_PROBE, "control"],
                             capture_output=True, text=True, timeout=120)
    assert control.returncode == 0, control.stderr
    assert control.stdout.strip() == "not proved after 3 loads", control.stdout


def test_every_snapshot_call_goes_through_cdll():
    """save and load_into are called as load is (see above): through the CDLL,
    which releases the GIL (a PyDLL function has FUNCFLAG_PYTHONAPI set, and
    keeps it)."""
    import ctypes

    from mapcache import _cache

    for fn in (_cache._save, _cache._load_file, _cache._load_into):
        assert not fn._flags_ & ctypes._FUNCFLAG_PYTHONAPI  # type: ignore[attr-defined]
    held = ctypes.PyDLL(str(mapcache.library_path()))["mapcache_save"]
    assert held._flags_ & ctypes._FUNCFLAG_PYTHONAPI  # type: ignore[attr-defined]


def test_save_from_many_threads(tmp_path):
    """Saves from several threads at once, while another writes: each file is complete."""
    with _filled(2000) as c:
        errors: List[BaseException] = []

        def save(i: int) -> None:
            try:
                c.save(tmp_path / f"s{i}.snap")
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=save, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for i in range(2000):
            c[f"key-{i}".encode()] = b"new"
        for t in threads:
            t.join()
        assert errors == []
    for i in range(4):
        with Cache.load(tmp_path / f"s{i}.snap") as warm:
            assert len(warm) == 2000
            assert all(v == b"new" or v.startswith(b"value-") for v in warm.values())


# ---------------------------------------------------------------- stress


@stress_only
def test_ten_million_entries(tmp_path):
    path = tmp_path / "10m.snap"
    n = 10_000_000
    step = 100_000
    with Cache(initial_capacity=n) as c:
        for base in range(0, n, step):
            c.set_many([(b"%016d" % i, b"%032d" % i) for i in range(base, base + step)])
        report = c.save(path)
        assert report.records == n
    warm, r = Cache.load_with_report(path)
    with warm:
        assert (r.records, r.loaded) == (n, n)
        assert len(warm) == n
        for i in (0, 1, 4_999_999, n - 1):
            assert warm[b"%016d" % i] == b"%032d" % i
        keys = [b"%016d" % i for i in range(0, n, 9973)]
        assert warm.get_many(keys) == [b"%032d" % i for i in range(0, n, 9973)]


@stress_only
def test_the_largest_value(tmp_path):
    path = tmp_path / "max.snap"
    value = b"\xab" * mapcache.MAX_VALUE_LEN
    with Cache() as c:
        c["max"] = value
        c.save(path)
    with Cache.load(path) as warm:
        assert warm["max"] == value


def test_save_replaces_only_a_regular_file(tmp_path):
    c = Cache()
    c[b"k"] = b"v"
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(SnapshotIOError) as info:
        c.save(fifo)
    assert "not a regular file (a FIFO): a save would replace it" in info.value.message
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    with pytest.raises(IsADirectoryError):
        c.save(tmp_path)
    real = tmp_path / "real.snap"
    link = tmp_path / "link.snap"
    link.symlink_to(real.name)
    real.write_bytes(b"old")
    c.save(link)  # through the link: the file it leads to is replaced
    assert link.is_symlink() and Cache.load(real)[b"k"] == b"v"
    c.close()
