"""Configuration keywords: names, types, ranges."""

from __future__ import annotations

import pytest

import mapcache


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"initial_capacity": 10_000},
        {"shards": 1},
        {"shards": 16},
        {"shards": 65536},
        {"mode": "concurrent"},
        {"mode": "exclusive"},
        {"misuse_policy": "error"},
        {"misuse_policy": "abort"},
        {"rehash_engine": "auto"},
        {"rehash_engine": "single"},
        {"rehash_engine": "parallel"},
        {"seed": 12345},
        {"seed": 2**64 - 1},
    ],
)
def test_valid_configs_make_working_caches(kwargs):
    with mapcache.Cache(**kwargs) as c:
        for i in range(2000):  # past the initial size: exercises growth
            c[i.to_bytes(4, "little")] = b"v"
        assert len(c) == 2000
        assert c[(1999).to_bytes(4, "little")] == b"v"
        assert c.config == {**c.config, **kwargs}


def test_unknown_keyword_is_a_type_error():
    with pytest.raises(TypeError):
        mapcache.Cache(capacityy=10)


def test_positional_arguments_are_rejected():
    with pytest.raises(TypeError):
        mapcache.Cache(10)  # type: ignore[misc]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initial_capacity": "10"},
        {"initial_capacity": 1.5},
        {"initial_capacity": True},
        {"shards": None},
        {"mode": 1},
        {"misuse_policy": None},
        {"rehash_engine": b"auto"},
        {"seed": "0"},
    ],
)
def test_wrong_types_are_type_errors(kwargs):
    with pytest.raises(TypeError):
        mapcache.Cache(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initial_capacity": -1},
        {"initial_capacity": 2**64},
        {"shards": -1},
        {"shards": 2**32},
        {"mode": "shared"},
        {"misuse_policy": "ignore"},
        {"rehash_engine": "gpu!"},
        {"seed": -5},
    ],
)
def test_out_of_range_values_are_value_errors(kwargs):
    with pytest.raises(ValueError):
        mapcache.Cache(**kwargs)


@pytest.mark.parametrize("shards", [3, 6, 100, 131072])
def test_library_rejects_bad_shard_counts(shards):
    # the binding passes these through; the library's INVALID_CONFIG becomes
    # InvalidConfigError, which is also a ValueError.
    with pytest.raises(mapcache.InvalidConfigError) as info:
        mapcache.Cache(shards=shards)
    assert isinstance(info.value, ValueError)
    assert info.value.status == 10
    assert "shard" in str(info.value).lower()


@pytest.mark.parametrize("capacity", [2**30 + 1, 2**62, 2**64 - 1])
def test_library_rejects_initial_capacity_over_its_limit(capacity):
    # MAPCACHE_MAX_INITIAL_CAPACITY is 2**30: more is refused up front (nothing
    # is allocated), with a message naming the field and the limit.
    with pytest.raises(mapcache.InvalidConfigError) as info:
        mapcache.Cache(initial_capacity=capacity)
    assert info.value.status == 10
    assert "initial_capacity" in str(info.value)
    assert "1073741824" in str(info.value)
