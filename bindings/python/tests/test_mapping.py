"""The mapping protocol: c[k] = v, c[k], in, len, del, get, pop, setdefault, iteration."""

from __future__ import annotations

from collections.abc import MutableMapping

import pytest

import mapcache


def test_is_a_mutable_mapping(cache):
    assert isinstance(cache, MutableMapping)


def test_set_get_roundtrip(cache):
    cache[b"k"] = b"v"
    assert cache[b"k"] == b"v"
    assert type(cache[b"k"]) is bytes


def test_overwrite_replaces(cache):
    cache[b"k"] = b"one"
    cache[b"k"] = b"two"
    assert cache[b"k"] == b"two"
    assert len(cache) == 1


def test_missing_key_raises_keyerror_with_the_key(cache):
    with pytest.raises(KeyError) as info:
        cache["nope"]
    assert info.value.args == ("nope",)


def test_str_keys_are_utf8_encoded(cache):
    cache["caf\u00e9"] = b"x"
    assert cache["caf\u00e9".encode("utf-8")] == b"x"
    assert list(cache) == ["caf\u00e9".encode("utf-8")]


def test_bytes_like_keys_and_values(cache):
    cache[bytearray(b"ba")] = bytearray(b"v1")
    cache[memoryview(b"mv")] = memoryview(b"v2")
    cache[b"arr"] = memoryview(bytearray(b"v3"))
    assert cache[b"ba"] == b"v1"
    assert cache[bytearray(b"mv")] == b"v2"
    assert cache[memoryview(b"arr")] == b"v3"


def test_memoryview_of_wider_items_counts_bytes(cache):
    import array

    arr = array.array("i", [1, 2, 3])
    cache[memoryview(arr)] = memoryview(arr)
    assert cache[arr.tobytes()] == arr.tobytes()


def test_empty_key_and_empty_value(cache):
    cache[b""] = b""
    assert cache[b""] == b""
    assert b"" in cache
    assert cache.get(b"") == b""


def test_binary_keys_with_nul_bytes_are_distinct(cache):
    cache[b"a\0b"] = b"1"
    cache[b"a\0c"] = b"2"
    cache[b"a"] = b"3"
    assert (cache[b"a\0b"], cache[b"a\0c"], cache[b"a"]) == (b"1", b"2", b"3")


@pytest.mark.parametrize("size", [0, 1, 1023, 1024, 1025, 70_000, (1 << 20) + 1, 5 << 20])
def test_values_of_many_sizes(cache, size):
    # crosses the per-thread buffer's initial size, its growth, and the
    # one-off buffer used above the size it keeps.
    value = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    cache[b"k"] = value
    assert cache[b"k"] == value
    assert cache.get(b"k") == value
    cache[b"small"] = b"s"
    assert cache[b"small"] == b"s"


def test_contains(cache):
    cache[b"k"] = b"v"
    assert b"k" in cache
    assert "k" in cache
    assert b"other" not in cache


def test_len_counts_entries(cache):
    assert len(cache) == 0
    for i in range(100):
        cache[str(i)] = b"v"
    assert len(cache) == 100
    assert bool(cache)


def test_delitem(cache):
    cache[b"k"] = b"v"
    del cache[b"k"]
    assert b"k" not in cache
    with pytest.raises(KeyError):
        del cache[b"k"]


def test_delete_reports_presence(cache):
    cache[b"k"] = b"v"
    assert cache.delete(b"k") is True
    assert cache.delete(b"k") is False


def test_set_reports_replacement(cache):
    assert cache.set(b"k", b"1") is False
    assert cache.set(b"k", b"2") is True
    assert cache[b"k"] == b"2"


def test_get_default(cache):
    assert cache.get(b"k") is None
    assert cache.get(b"k", b"d") == b"d"
    cache[b"k"] = b"v"
    assert cache.get(b"k", b"d") == b"v"


def test_pop(cache):
    cache[b"k"] = b"v"
    assert cache.pop(b"k") == b"v"
    assert b"k" not in cache
    assert cache.pop(b"k", None) is None
    with pytest.raises(KeyError):
        cache.pop(b"k")


def test_popitem(cache):
    cache[b"k"] = b"v"
    assert cache.popitem() == (b"k", b"v")
    with pytest.raises(KeyError):
        cache.popitem()


def test_setdefault_inserts_when_absent(cache):
    assert cache.setdefault(b"k", b"first") == b"first"
    assert cache[b"k"] == b"first"


def test_setdefault_returns_existing(cache):
    cache[b"k"] = b"existing"
    assert cache.setdefault(b"k", b"other") == b"existing"
    assert cache[b"k"] == b"existing"


def test_setdefault_existing_value_larger_than_the_buffer(cache):
    big = b"B" * ((1 << 20) + 10)
    cache[b"k"] = big
    assert cache.setdefault(b"k", b"small") == big
    assert cache.setdefault("k2", bytearray(b"ba")) == b"ba"


def test_setdefault_needs_a_value(cache):
    with pytest.raises(TypeError):
        cache.setdefault(b"k", None)


def test_update_and_kwargs(cache):
    cache.update({b"a": b"1"}, b=b"2")
    cache.update([(b"c", b"3")])
    assert dict(cache.items()) == {b"a": b"1", b"b": b"2", b"c": b"3"}


def test_clear(cache):
    for i in range(50):
        cache[str(i)] = b"v"
    cache.clear()
    assert len(cache) == 0
    assert list(cache) == []


def test_iteration_keys_items_values(cache):
    expected = {f"k{i}".encode(): f"v{i}".encode() * i for i in range(200)}
    for k, v in expected.items():
        cache[k] = v
    assert sorted(cache) == sorted(expected)
    assert sorted(cache.keys()) == sorted(expected)
    assert dict(cache.items()) == expected
    assert sorted(cache.values()) == sorted(expected.values())
    assert len(cache.keys()) == 200
    assert (b"k3", b"v3" * 3) in cache.items()


def test_iteration_may_run_alongside_writes(cache):
    for i in range(100):
        cache[str(i)] = b"v"
    seen = []
    for k in cache:
        seen.append(k)
        if not k.startswith(b"new"):
            cache["new" + k.decode()] = b"x"  # no RuntimeError, unlike dict
    assert len(set(seen)) == len(seen)  # never a key twice
    assert {str(i).encode() for i in range(100)} <= set(seen)


def test_abandoned_iterator_is_freed(cache):
    cache[b"a"] = b"1"
    cache[b"b"] = b"2"
    it = iter(cache)
    next(it)
    it.close()
    assert list(it) == []
    del it  # and one dropped unstarted
    iter(cache.items())


def test_equality_with_dict(cache):
    cache[b"a"] = b"1"
    assert cache == {b"a": b"1"}
    assert cache != {b"a": b"2"}


def test_repr(cache):
    cache[b"a"] = b"1"
    assert "len=1" in repr(cache)
    cache.close()
    assert "closed" in repr(cache)


def test_cannot_be_pickled_or_copied(cache):
    import copy
    import pickle

    for attempt in (pickle.dumps, copy.copy, copy.deepcopy):
        with pytest.raises(TypeError, match="cannot be pickled or copied"):
            attempt(cache)


def test_independent_caches(cache):
    with mapcache.Cache() as other:
        cache[b"k"] = b"1"
        other[b"k"] = b"2"
        assert (cache[b"k"], other[b"k"]) == (b"1", b"2")


def test_a_lent_bytearray_is_released_after_the_call(cache):
    # writable buffers are passed without a copy; the call must not keep
    # them exported (a bytearray with an export cannot be resized)
    ba = bytearray(b"abc")
    cache[b"k"] = ba
    cache.set(b"k2", ba)
    cache.setdefault(b"k3", ba)
    cache.compare_and_swap(b"k", ba, ba)
    ba.extend(b"def")
    assert (cache[b"k"], cache[b"k2"], cache[b"k3"]) == (b"abc", b"abc", b"abc")
    cache[b"k"] = ba  # the new contents are stored, not the old
    assert cache[b"k"] == b"abcdef"


def test_get_without_a_default_is_typed_as_maybe_none():
    # py.typed: a type checker reads these. Without the overloads, a TypeVar
    # defaulting to None never bound to None, and get("absent") was typed bytes.
    import typing

    get_overloads = getattr(typing, "get_overloads", None)
    if get_overloads is None:
        pytest.skip("typing.get_overloads is Python 3.11+")
    from mapcache._cache import KeyLike

    def returns(fn, **args):
        for o in get_overloads(fn):
            hints = typing.get_type_hints(o)
            del hints["return"]
            if set(hints) == {"key" if "key" in hints else "keys", *args}:
                return typing.get_type_hints(o)["return"]
        raise AssertionError(f"no overload of {fn.__name__} with {args}")

    assert returns(mapcache.Cache.get) == typing.Optional[bytes]
    assert returns(mapcache.Cache.get_many) == typing.List[typing.Optional[bytes]]
    assert cache_get_absent() is None


def cache_get_absent():
    with mapcache.Cache() as c:
        return c.get(b"absent")


def test_a_subclass_is_itself_in_repr_and_in_the_types_of_load_and_enter(tmp_path):
    import typing

    class Sub(mapcache.Cache):
        pass

    with Sub() as s:
        assert type(s) is Sub
        s[b"k"] = b"v"
        assert repr(s).startswith(f"<{Sub.__module__}.{Sub.__qualname__} mode='concurrent' len=1")
        s.save(tmp_path / "s.snap")
    assert repr(s) == f"<{Sub.__module__}.{Sub.__qualname__} closed>"
    with mapcache.Cache() as c:
        assert repr(c) == "<mapcache.Cache mode='concurrent' len=0>"
    loaded = Sub.load(tmp_path / "s.snap")
    assert type(loaded) is Sub and loaded[b"k"] == b"v"
    loaded.close()
    # The annotations: a TypeVar bound to Cache (so a type checker infers Sub).
    for fn in (mapcache.Cache.load, mapcache.Cache.__enter__):
        ret = typing.get_type_hints(fn)["return"]
        assert isinstance(ret, typing.TypeVar) and ret.__bound__ is not None, (fn, ret)
    ret = typing.get_type_hints(mapcache.Cache.load_with_report)["return"]
    assert isinstance(typing.get_args(ret)[0], typing.TypeVar)
