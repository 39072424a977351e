"""get_many / set_many / delete_many: one foreign call per batch."""

from __future__ import annotations

import array

import pytest

import mapcache


def test_set_many_mapping_then_get_many(cache):
    data = {f"key-{i}".encode(): f"value-{i}".encode() * (i % 7) for i in range(1000)}
    cache.set_many(data)
    assert len(cache) == 1000
    keys = list(data)
    assert cache.get_many(keys) == [data[k] for k in keys]


def test_set_many_pairs_and_generators(cache):
    cache.set_many((f"k{i}", bytes([i])) for i in range(10))
    assert cache.get_many(f"k{i}" for i in range(10)) == [bytes([i]) for i in range(10)]


def test_get_many_missing_keys_get_default(cache):
    cache[b"a"] = b"1"
    cache[b"c"] = b"3"
    assert cache.get_many([b"a", b"b", b"c"]) == [b"1", None, b"3"]
    assert cache.get_many([b"x", b"a"], default=b"-") == [b"-", b"1"]


def test_get_many_duplicates_and_order(cache):
    cache.set_many({b"a": b"1", b"b": b"2"})
    assert cache.get_many([b"b", b"a", b"b", b"b"]) == [b"2", b"1", b"2", b"2"]


def test_get_many_values_larger_than_the_batch_buffer(cache):
    # more than the per-thread batch buffer holds: some keys come back
    # BUFFER_TOO_SMALL and are fetched again with an exact-size buffer.
    big = {f"big{i}".encode(): bytes([i]) * (300_000 + i) for i in range(8)}
    small = {f"small{i}".encode(): b"s" * i for i in range(8)}
    cache.set_many(big)
    cache.set_many(small)
    keys = [k for pair in zip(big, small) for k in pair] + [b"missing"]
    got = cache.get_many(keys)
    want = [{**big, **small}.get(k) for k in keys]
    assert got == want
    huge = b"H" * (70 << 20)  # above what the thread keeps: a one-off buffer
    cache[b"huge"] = huge
    assert cache.get_many([b"small1", b"huge"]) == [b"s", huge]


def test_empty_batches(cache):
    assert cache.get_many([]) == []
    cache.set_many({})
    cache.set_many([])
    assert cache.delete_many([]) == 0


def test_mixed_key_types(cache):
    cache.set_many([("s", b"1"), (b"b", b"2"), (bytearray(b"ba"), b"3"), (memoryview(b"mv"), b"4")])
    assert cache.get_many(["s", b"b", b"ba", bytearray(b"mv")]) == [b"1", b"2", b"3", b"4"]


def test_wide_memoryview_keys_and_values(cache):
    arr = array.array("i", [7, 8])
    cache.set_many([(memoryview(arr), memoryview(arr))])
    assert cache.get_many([memoryview(arr)]) == [arr.tobytes()]


def test_bytes_like_values(cache):
    cache.set_many({b"a": bytearray(b"x"), b"b": memoryview(b"y"), b"c": "str".encode()})
    assert cache.get_many([b"a", b"b", b"c"]) == [b"x", b"y", b"str"]


def test_delete_many_counts_present_keys(cache):
    cache.set_many({b"a": b"1", b"b": b"2", b"c": b"3"})
    assert cache.delete_many([b"a", b"c", b"zz"]) == 2
    assert list(cache) == [b"b"]
    assert cache.delete_many(iter(["b"])) == 1
    assert len(cache) == 0


def test_set_many_rejects_wrong_shapes(cache):
    with pytest.raises(TypeError):
        cache.set_many([b"not-a-pair"])
    with pytest.raises(TypeError):
        cache.set_many([(b"k", b"v", b"extra")])
    with pytest.raises(TypeError):
        cache.set_many({b"k": "str value"})
    with pytest.raises(TypeError):
        cache.set_many({b"k": None})
    with pytest.raises(TypeError):
        cache.set_many({1: b"v"})


@pytest.mark.parametrize("bad", [
    (b"a", b"b", b"c"),        # three elements: the extra one was silently dropped
    (b"k", b"v", "x", 42),
    (b"only",),
    "ab",                      # a str of two characters is not the pair ("a", "b")
    b"ab",
    bytearray(b"ab"),
    memoryview(b"ab"),
    42,                        # not iterable
])
@pytest.mark.parametrize("position", [0, 1, 2])
def test_every_item_of_set_many_must_be_a_pair(cache, bad, position):
    items = [(b"p%d" % i, b"v") for i in range(3)]
    items[position] = bad
    for store in (cache.set_many, cache.update, lambda it: cache.set_many(iter(it))):
        with pytest.raises(TypeError) as info:
            store(items)
        assert info.value.index == position
        assert f"element #{position}" in str(info.value)
        assert len(cache) == 0  # nothing stored
    if isinstance(bad, tuple):
        assert str(info.value) == (
            f"set_many() element #{position} has length {len(bad)}; 2 is required")


def test_pairs_of_any_iterable_kind_are_taken(cache):
    cache.set_many([[b"a", b"1"], (b"b", b"2"), iter((b"c", b"3")), (b"d", b"4")])
    assert sorted(cache.items()) == [(b"a", b"1"), (b"b", b"2"), (b"c", b"3"), (b"d", b"4")]


def test_get_many_rejects_wrong_key_types(cache):
    with pytest.raises(TypeError):
        cache.get_many([b"a", 1])
    with pytest.raises(TypeError):
        cache.delete_many([None])


def test_per_key_error_names_its_index(cache):
    long_key = b"k" * (mapcache.MAX_KEY_LEN + 1)
    with pytest.raises(mapcache.KeyTooLongError) as info:
        cache.set_many([(b"ok", b"1"), (long_key, b"2")])
    assert info.value.index == 1
    assert cache[b"ok"] == b"1"  # a batch is not a transaction
    with pytest.raises(mapcache.KeyTooLongError) as info:
        cache.get_many([b"ok", long_key])
    assert info.value.index == 1
    with pytest.raises(mapcache.KeyTooLongError) as info:
        cache.delete_many([long_key])
    assert info.value.index == 0


def test_set_many_from_another_cache_and_from_a_mapping_view(cache):
    with mapcache.Cache() as other:
        other.set_many({f"k{i}": f"v{i}".encode() for i in range(300)})
        cache.set_many(other)
        assert dict(cache.items()) == dict(other.items())
    cache.clear()
    from types import MappingProxyType

    cache.set_many(MappingProxyType({b"a": b"1"}))
    assert cache[b"a"] == b"1"


def test_get_many_buffer_grows_for_the_next_batch(cache):
    data = {f"k{i}".encode(): bytes([i % 256]) * 200 for i in range(2000)}  # 400 kB
    cache.set_many(data)
    for _ in range(3):  # the first call retries the overflow, later ones fit
        assert cache.get_many(list(data)) == list(data.values())


@pytest.mark.parametrize("n", [1, 2, 511, 512, 513, 1024, 1300])
@pytest.mark.parametrize("length", [0, 1, 32, 1000])
def test_values_of_one_length_in_batches_of_many_sizes(cache, n, length):
    # values of one length take the Struct-unpacking path, in chunks
    data = {f"k{i}".encode(): (i.to_bytes(4, "little") * 250)[:length] for i in range(n)}
    cache.set_many(data)
    keys = list(data)[::-1]
    assert cache.get_many(keys) == [data[k] for k in keys]


def test_many_distinct_batch_shapes(cache):
    # more (length, count) shapes than the unpacker cache keeps
    cache.set_many({f"k{i}".encode(): b"x" * 8 for i in range(300)})
    for n in range(1, 300):
        keys = [f"k{i}".encode() for i in range(n)]
        assert cache.get_many(keys) == [b"x" * 8] * n


@pytest.mark.parametrize("single", ["abc", b"abc", bytearray(b"abc"), memoryview(b"abc")])
@pytest.mark.parametrize("call", ["get_many", "delete_many"])
def test_a_single_key_where_keys_are_expected_is_a_type_error(single, call):
    with mapcache.Cache() as c:
        c[b"a"] = b"1"
        with pytest.raises(TypeError, match=r"iterable of keys, not a single"):
            getattr(c, call)(single)
        # Nothing was read as one-character keys, nothing deleted.
        assert c[b"a"] == b"1"
        assert getattr(c, call)([single]) in ([None], 0)


def test_a_wrong_type_in_a_batch_names_its_index_and_stores_nothing(cache):
    with pytest.raises(TypeError) as info:
        cache.set_many([(b"a", b"1"), (b"b", None), (b"c", b"3")])
    assert info.value.index == 1
    with pytest.raises(TypeError) as info:
        cache.set_many([(b"a", b"1"), (2.5, b"2")])
    assert info.value.index == 1
    assert b"a" not in cache and b"c" not in cache  # converted before anything is stored

    def pairs():
        yield b"a", b"1"
        raise RuntimeError("the iterable failed")

    with pytest.raises(RuntimeError, match="the iterable failed"):
        cache.set_many(pairs())
    assert b"a" not in cache
    with pytest.raises(TypeError) as info:
        cache.get_many([b"a", 1])
    assert info.value.index == 1
