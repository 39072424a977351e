"""``mapcache.gpu_status``: the GPU engine is inactive on a machine without an
NVIDIA driver (or without the plugin beside the library), says why, and the
cache works on the CPU."""

from __future__ import annotations

import pytest

import mapcache


def test_an_inactive_engine_says_why():
    with mapcache.Cache() as c:
        for i in range(20000):
            c[f"k{i}"] = b"v"
        s = mapcache.gpu_status(c)
        if s.active:
            pytest.skip(f"a GPU engine is active on this machine: {s.reason}")
        assert s.reason.startswith(("libcuda.so.1 not found", "plugin not found at ", "no CUDA device")), s.reason
        assert s.gpu_rebuilds == 0
        assert c["k1"] == b"v"


def test_a_closed_cache_raises():
    c = mapcache.Cache()
    c.close()
    with pytest.raises(mapcache.CacheClosedError):
        mapcache.gpu_status(c)


def test_off_says_off():
    with mapcache.Cache(gpu="off") as c:
        assert mapcache.gpu_status(c) == mapcache.GpuStatus(active=False, reason="off")
        assert c.config["gpu"] == "off"


def test_force_without_an_engine_is_refused():
    with pytest.raises(mapcache.GpuError, match="GPU engine") as info:
        mapcache.Cache(gpu="force", gpu_plugin="/nonexistent/libmapcache_cuda.so")
    assert info.value.status == 16


def test_force_where_the_engine_cannot_load_raises_gpu_error():
    # The plugin looked for beside the library: without libcuda.so.1, a device
    # or the plugin, the constructor raises GpuError (MAPCACHE_E_GPU), saying why.
    try:
        c = mapcache.Cache(gpu="force")
    except mapcache.GpuError as e:
        assert e.status == 16 and type(e) is mapcache.GpuError
        assert "GPU engine" in e.message, e.message
        return
    with c:
        s = mapcache.gpu_status(c)
    if s.active:
        pytest.skip(f"a GPU engine is active on this machine: {s.reason}")
    pytest.fail(f"gpu='force' succeeded with an inactive engine: {s}")


def test_a_configured_plugin_path_is_used():
    with mapcache.Cache(gpu_plugin="/nonexistent/libmapcache_cuda.so", gpu_threshold=1) as c:
        for i in range(5000):
            c[f"k{i}"] = b"v"
        s = mapcache.gpu_status(c)
        assert not s.active
        assert s.fallbacks > 0  # every grow was meant for the GPU, and ran on the CPU
        assert s.reason.startswith("libcuda.so.1 not found") or s.reason == (
            "plugin not found at /nonexistent/libmapcache_cuda.so"
        ), s.reason
        assert len(c) == 5000


@pytest.mark.parametrize("kwargs", [{"gpu": "on"}, {"gpu": 1}, {"gpu_threshold": -1}, {"gpu_plugin": 3}])
def test_bad_gpu_arguments(kwargs):
    with pytest.raises((TypeError, ValueError)):
        mapcache.Cache(**kwargs)


@pytest.mark.parametrize("path", ["\0/evil/libmapcache_cuda.so", "/nonexistent/a.so\0b", b"/nonexistent/a.so\0b"])
def test_a_plugin_path_with_nul_is_refused(path, tmp_path):
    # The library would read the path only up to the NUL, naming another
    # file: the constructor and load refuse it, before the library sees it.
    with pytest.raises(mapcache.InvalidConfigError, match="NUL"):
        mapcache.Cache(gpu_plugin=path)
    with pytest.raises(mapcache.InvalidConfigError, match="NUL"):
        mapcache.Cache(gpu="force", gpu_plugin=path)
    snap = tmp_path / "s.snap"
    with mapcache.Cache() as c:
        c.save(snap)
    with pytest.raises(mapcache.InvalidConfigError, match="NUL"):
        mapcache.Cache.load(snap, gpu_plugin=path)


def test_a_plugin_path_may_be_bytes_or_pathlike(tmp_path):
    # Paths are str, bytes or os.PathLike, as for save() and load().
    missing = tmp_path / "libmapcache_cuda.so"
    for path in (missing, bytes(missing), str(missing)):
        with mapcache.Cache(gpu_plugin=path, gpu_threshold=1) as c:
            assert c.config["gpu_plugin"] == path
            for i in range(5000):
                c[f"k{i}"] = b"v"
            s = mapcache.gpu_status(c)
            assert s.reason.startswith("libcuda.so.1 not found") or s.reason == f"plugin not found at {missing}", s.reason


@pytest.mark.parametrize("arg", [None, object(), {}])
def test_gpu_status_of_something_else_is_a_type_error(arg):
    with pytest.raises(TypeError, match="Cache"):
        mapcache.gpu_status(arg)
