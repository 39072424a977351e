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
