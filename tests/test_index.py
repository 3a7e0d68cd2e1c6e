"""The Hamming index gives exactly what brute force gives, at every edge."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ncii.index import TAIL_LIMIT, HammingIndex, hex_to_words


def brute_force(hashes: list[str], keys: list[int], active: set[int], queries: list[str], t: int):
    found = set()
    for qi, q in enumerate(queries):
        for h, k in zip(hashes, keys, strict=True):
            d = (int(q, 16) ^ int(h, 16)).bit_count()
            if d <= t and k in active:
                found.add((qi, k, d))
    return found


def as_set(hits):
    return {(h.query, h.key, h.distance) for h in hits}


def flip(hex_value: str, bits: list[int], width: int = 256) -> str:
    value = int(hex_value, 16)
    for b in bits:
        value ^= 1 << b
    return f"{value:0{width // 4}x}"


BASE = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"


def test_empty_index_finds_nothing():
    index = HammingIndex(256)
    assert index.search([BASE], 31) == []
    assert HammingIndex.build(256, [], []).search([BASE], 31) == []


def test_single_hash_index_matches():
    """python-threatexchange's index never matches with exactly one hash; ours must."""
    index = HammingIndex.build(256, [BASE], [7])
    assert as_set(index.search([BASE], 31)) == {(0, 7, 0)}
    index = HammingIndex(256)
    index.add(BASE, 7)
    assert as_set(index.search([BASE], 31)) == {(0, 7, 0)}


@pytest.mark.parametrize("bulk", [True, False])
def test_threshold_edges_and_duplicates(bulk):
    at = flip(BASE, list(range(0, 256, 8))[:31])  # 31 bits spread over every chunk
    past = flip(BASE, list(range(0, 256, 8))[:32])
    hashes = [BASE, BASE, at, past]
    keys = [1, 2, 3, 4]
    if bulk:
        index = HammingIndex.build(256, hashes * 300, list(range(1200)))
        found = as_set(index.search([BASE], 31))
        assert {k % 4 for _, k, _ in found} == {0, 1, 2}
        assert all(d == 31 for _, k, d in found if k % 4 == 2)
    else:
        index = HammingIndex(256)
        for h, k in zip(hashes, keys, strict=True):
            index.add(h, k)
        assert as_set(index.search([BASE], 31)) == {(0, 1, 0), (0, 2, 0), (0, 3, 31)}
        assert as_set(index.search([BASE], 32)) == {(0, 1, 0), (0, 2, 0), (0, 3, 31), (0, 4, 32)}
        assert as_set(index.search([BASE], 0)) == {(0, 1, 0), (0, 2, 0)}


def test_concentrated_difference_in_one_chunk_is_found():
    """All 31 differing bits inside two chunks: the other chunks are exact and find it."""
    near = flip(BASE, list(range(31)))
    index = HammingIndex.build(
        256, [near] + [flip(BASE, [200 + i % 56, i % 199]) for i in range(2000)], range(2001)
    )
    assert (0, 0, 31) in as_set(index.search([BASE], 31))


def test_disable_enable_and_incremental_adds_across_segments():
    rng = np.random.default_rng(1)
    hashes = [bytes(rng.integers(0, 256, 32, dtype=np.uint8)).hex() for _ in range(3 * TAIL_LIMIT)]
    index = HammingIndex.build(256, hashes[:TAIL_LIMIT], range(TAIL_LIMIT))
    for k in range(TAIL_LIMIT, 3 * TAIL_LIMIT):
        index.add(hashes[k], k)  # freezes tails into segments, merging as it goes
    assert len(index) == 3 * TAIL_LIMIT
    probe = [hashes[5], hashes[TAIL_LIMIT + 5], hashes[-1]]
    assert {k for _, k, _ in as_set(index.search(probe, 0))} == {
        5,
        TAIL_LIMIT + 5,
        3 * TAIL_LIMIT - 1,
    }
    assert index.set_active(TAIL_LIMIT + 5, False) == 1
    assert index.set_active(3 * TAIL_LIMIT - 1, False) == 1
    assert {k for _, k, _ in as_set(index.search(probe, 0))} == {5}
    index.set_active(TAIL_LIMIT + 5, True)
    assert {k for _, k, _ in as_set(index.search(probe, 0))} == {5, TAIL_LIMIT + 5}
    assert index.active_count() == 3 * TAIL_LIMIT - 1
    index.compact()
    assert {k for _, k, _ in as_set(index.search(probe, 0))} == {5, TAIL_LIMIT + 5}


def test_64_bit_hashes():
    a = "d1c1b2a3c4e5f607"
    index = HammingIndex.build(64, [a, flip(a, [0, 9, 20, 40, 63], 64)], [1, 2])
    assert as_set(index.search([a], 4)) == {(0, 1, 0)}
    assert as_set(index.search([a], 5)) == {(0, 1, 0), (0, 2, 5)}


def test_malformed_hex_is_refused():
    with pytest.raises(ValueError):
        hex_to_words(["abc"], 256)


clustered_hashes = st.lists(
    st.tuples(st.integers(0, 7), st.lists(st.integers(0, 255), max_size=40)),
    min_size=0,
    max_size=60,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=clustered_hashes,
    queries=st.lists(
        st.tuples(st.integers(0, 7), st.lists(st.integers(0, 255), max_size=40)),
        min_size=1,
        max_size=5,
    ),
    threshold=st.sampled_from([0, 1, 15, 16, 31, 32, 47, 64]),
    inactive=st.sets(st.integers(0, 59), max_size=10),
    incremental=st.booleans(),
)
def test_search_equals_brute_force(rows, queries, threshold, inactive, incremental):
    """Hashes are clustered around 8 seeds (as real banks are), so many pairs are near."""
    rng = np.random.default_rng(0)
    seeds = [bytes(rng.integers(0, 256, 32, dtype=np.uint8)).hex() for _ in range(8)]
    hashes = [flip(seeds[s], bits) for s, bits in rows]
    keys = list(range(len(hashes)))
    qs = [flip(seeds[s], bits) for s, bits in queries]
    if incremental:
        index = HammingIndex(256)
        for h, k in zip(hashes, keys, strict=True):
            index.add(h, k)
    else:
        index = HammingIndex.build(256, hashes, keys)
    for k in inactive:
        index.set_active(k, False)
    active = set(keys) - inactive
    assert as_set(index.search(qs, threshold)) == brute_force(hashes, keys, active, qs, threshold)


def test_large_random_bank_equals_brute_force():
    rng = np.random.default_rng(42)
    n = 20_000
    raw = rng.integers(0, 256, (n, 32), dtype=np.uint8)
    # Plant near-duplicates of the first 200 rows at distances 20-40.
    for i in range(200):
        row = raw[i].copy()
        for b in rng.choice(256, size=20 + i % 21, replace=False):
            row[b // 8] ^= 1 << (b % 8)
        raw[n - 200 + i] = row
    hexes = [r.tobytes().hex() for r in raw]
    index = HammingIndex.build(256, hexes, range(n))
    queries = hexes[:200]
    words = hex_to_words(hexes, 256)
    q = hex_to_words(queries, 256)
    d = np.bitwise_count(q[:, None, :] ^ words[None, :, :]).sum(axis=2)
    expected = {(int(a), int(b), int(d[a, b])) for a, b in zip(*np.nonzero(d <= 31), strict=True)}
    assert as_set(index.search(queries, 31)) == expected
    assert len(expected) > 300  # the planted pairs within 31 are really there


@pytest.fixture(params=["kernel", "numpy"])
def search_path(request, monkeypatch):
    import ncii.index

    if request.param == "numpy":
        monkeypatch.setattr(ncii.index, "USE_KERNEL", False)
    return request.param


@pytest.mark.parametrize(("n", "width"), [(5_000, None), (20_000, 12), (20_000, 21), (20_000, 23)])
def test_kernel_and_numpy_paths_agree_with_brute_force(search_path, n, width, monkeypatch):
    """Both search paths, on the chunk widths large banks get (forced here on small data)."""
    import ncii.index

    if width is not None:
        monkeypatch.setattr(ncii.index, "_choose_chunk_width", lambda n, bits: width)
    rng = np.random.default_rng(n)
    seeds = rng.integers(0, 256, (50, 32), dtype=np.uint8)
    raw = seeds[rng.integers(0, 50, n)].copy()
    flips = rng.integers(0, 256, (n, 24))  # clustered: up to 24 random flips from a seed
    for j in range(flips.shape[1]):
        raw[np.arange(n), flips[:, j] // 8] ^= (1 << (flips[:, j] % 8)).astype(np.uint8)
    hexes = [r.tobytes().hex() for r in raw]
    index = HammingIndex.build(256, hexes, range(n))
    for k in range(0, n, 97):
        index.set_active(k, False)
    queries = hexes[:3] + [r.tobytes().hex() for r in seeds[:3]]
    words = hex_to_words(hexes, 256)
    q = hex_to_words(queries, 256)
    d = np.bitwise_count(q[:, None, :] ^ words[None, :, :]).sum(axis=2)
    for threshold in (0, 31, 40):
        hits = np.nonzero(d <= threshold)
        expected = {
            (int(a), int(b), int(d[a, b])) for a, b in zip(*hits, strict=True) if b % 97 != 0
        }
        assert as_set(index.search(queries, threshold)) == expected


@pytest.mark.parametrize("width", [8, 12, 16])
def test_kernel_and_numpy_builds_make_the_same_bucket_tables(width, monkeypatch):
    """The compiled counting sort and the numpy argsort give identical arrays, whether the
    buckets hold mostly several rows (8 bits), a few (12) or mostly one or none (16)."""
    import ncii.index

    monkeypatch.setattr(ncii.index, "_choose_chunk_width", lambda n, bits: width)
    rng = np.random.default_rng(width)
    words = rng.integers(0, 2**63, size=(20_000, 4), dtype=np.int64).view(np.uint64)
    words[:3000] = words[0]  # one huge bucket in every chunk
    keys = np.arange(len(words), dtype=np.int64)
    active = np.ones(len(words), dtype=bool)
    compiled = ncii.index._Segment(words, keys, active)
    monkeypatch.setattr(ncii.index, "_kernel", lambda: None)
    plain = ncii.index._Segment(words, keys, active)
    for name in ncii.index._Segment.ARRAYS:
        assert np.array_equal(getattr(compiled, name), getattr(plain, name)), name
    table = compiled.table
    assert ((table != ncii.index.EMPTY) & (table >= ncii.index.MULTI)).any()  # big buckets
    if width >= 12:
        assert (table == ncii.index.EMPTY).any() and (table < ncii.index.MULTI).any()


def test_no_queries_give_no_hits():
    index = HammingIndex.build(256, [BASE] * 2000, range(2000))
    assert index.search_arrays(np.empty((0, 4), dtype=np.uint64), 31).shape == (0, 3)


def test_saved_index_loads_without_rebuild_and_stays_mutable(tmp_path):
    rng = np.random.default_rng(3)
    hexes = [bytes(rng.integers(0, 256, 32, dtype=np.uint8)).hex() for _ in range(5000)]
    index = HammingIndex.build(256, hexes, range(5000))
    index.add(BASE, 9999)
    index.set_active(3, False)
    index.save(tmp_path / "snap")
    loaded = HammingIndex.load(tmp_path / "snap")
    assert len(loaded) == 5001 and loaded.active_count() == 5000
    queries = [hexes[3], hexes[4], BASE]
    assert as_set(loaded.search(queries, 31)) == as_set(index.search(queries, 31))
    loaded.set_active(4, False)
    loaded.add(hexes[4], 123)
    assert {k for _, k, _ in as_set(loaded.search(queries, 0))} == {123, 9999}


def test_lookups_from_several_threads_at_once_agree_with_one_thread():
    """The compiled loop releases the GIL; concurrent callers must not disturb each other."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(7)
    words = rng.integers(0, 2**63, size=(20_000, 4), dtype=np.int64).view(np.uint64)
    index = HammingIndex(256)
    index.add_words(words, np.arange(len(words), dtype=np.int64))
    queries = words[rng.integers(0, len(words), 300)].copy()
    queries[:, 0] ^= np.uint64(0xFF)  # 8 bits away from a bank row
    alone = [index.search_arrays(q[None, :], 31).tolist() for q in queries]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda q: index.search_arrays(q[None, :], 31).tolist(), queries))
    assert together == alone
    assert all(any(hit[2] == 8 for hit in hits) for hits in alone)
