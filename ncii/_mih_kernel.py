"""The multi-index probe-and-verify loop, compiled with numba.

Same algorithm and results as the numpy path in :mod:`ncii.index` (the tests run both), in
streaming passes per query, each prefetching ahead so that dozens of cache misses are in
flight at once instead of one (a lookup in a big index is thousands of random memory
accesses, and waiting for each in turn was most of its time):

1. probe: for each chunk and flip mask, read the bucket's entry in ``table``. A bucket of one
   row holds the row itself, so most candidates cost no second lookup (and their hash is
   prefetched at once); a bigger bucket points into ``overflow``;
2. gather: copy the row numbers of the bigger buckets out of ``overflow``;
3. verify: popcount each candidate's full hash against the query, and report a row only
   through the first chunk that can reach it, so no de-duplication pass is needed.

The loop runs without the GIL, so lookups from several threads (a server's request workers)
run on every core at once.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic
from numba.np.arrayobj import make_array

_I8P = ir.IntType(8).as_pointer()
_I32 = ir.IntType(32)

AHEAD = 16
"""How many steps ahead each pass prefetches (enough to cover a DRAM miss)."""
BLOCK = 4096
"""Candidates gathered from big buckets before they are verified (bounds the scratch memory)."""
EMPTY = np.uint32(0xFFFFFFFF)
"""A ``table`` entry of an empty bucket."""
MULTI = np.uint32(0x80000000)
"""Set in a ``table`` entry that is an offset into ``overflow`` (clear: the bucket's one row)."""


@intrinsic
def _popcount(typingctx, value):  # type: ignore[no-untyped-def]
    signature = types.uint64(types.uint64)

    def codegen(context, builder, sig, args):  # type: ignore[no-untyped-def]
        return builder.ctpop(args[0])

    return signature, codegen


@intrinsic
def _prefetch(typingctx, array, index):  # type: ignore[no-untyped-def]
    """Ask the CPU to start loading ``array.flat[index]`` now (read, keep in every cache)."""
    signature = types.void(array, index)

    def codegen(context, builder, sig, args):  # type: ignore[no-untyped-def]
        data = make_array(sig.args[0])(context, builder, args[0]).data
        address = builder.bitcast(builder.gep(data, [args[1]]), _I8P)
        prefetch = cgutils.get_or_insert_function(
            builder.module,
            ir.FunctionType(ir.VoidType(), [_I8P, _I32, _I32, _I32]),
            "llvm.prefetch.p0i8",
        )
        builder.call(prefetch, [address, _I32(0), _I32(3), _I32(1)])
        return context.get_dummy_value()

    return signature, codegen


@njit(cache=True, inline="always")
def _chunk(words, row, c, width):  # type: ignore[no-untyped-def]
    bit = c * width
    i = bit // 64
    shift = bit % 64
    value = words[row, i] >> np.uint64(shift)
    if shift + width > 64:
        value |= words[row, i + 1] << np.uint64(64 - shift)
    return np.int64(value & np.uint64((1 << width) - 1))


@njit(cache=True, nogil=True)
def _verify(  # type: ignore[no-untyped-def]
    q,
    queries,
    words,
    keys,
    active,
    rows,
    chunks,
    count,
    qchunks,
    radii,
    width,
    threshold,
    out,
    found,
):
    """Pass 3 over ``count`` gathered candidates; returns the new ``found``, or -1 when
    ``out`` is full."""
    n_words = words.shape[1]
    for k in range(count):
        if k + AHEAD < count:
            _prefetch(words, rows[k + AHEAD] * n_words)
        row = rows[k]
        distance = 0
        for w in range(n_words):
            distance += _popcount(words[row, w] ^ queries[q, w])
        if distance > threshold or not active[row]:
            continue
        seen = False
        for earlier in range(chunks[k]):
            if radii[earlier] >= 0:
                delta = np.uint64(_chunk(words, row, earlier, width) ^ qchunks[earlier])
                if _popcount(delta) <= radii[earlier]:
                    seen = True
                    break
        if seen:
            continue
        if found == out.shape[0]:
            return -1
        out[found, 0] = q
        out[found, 1] = keys[row]
        out[found, 2] = distance
        found += 1
    return found


@njit(cache=True, nogil=True)
def search(  # type: ignore[no-untyped-def]
    queries,
    first_query,
    words,
    keys,
    active,
    table,
    overflow,
    overflow_starts,
    masks,
    mask_counts,
    radii,
    width,
    threshold,
    out,
):
    """Fill ``out`` (k, 3) with [query, key, distance] for queries from ``first_query`` on.

    ``table`` is (m, 2**width): per chunk and bucket, :data:`EMPTY`, the bucket's one row, or
    :data:`MULTI` | the offset (from ``overflow_starts[c]``) in ``overflow`` of the bucket's
    row count followed by its rows. Chunk ``c`` is probed with the first ``mask_counts[c]`` of
    ``masks`` (its radius ``radii[c]``; -1: not probed). Returns ``(k, next_query)``: when
    ``out`` fills up, the rows of the query in progress are dropped and ``next_query`` says
    where to resume (== number of queries when done).
    """
    m = table.shape[0]
    stride = table.shape[1]
    flat_table = table.reshape(-1)
    n_words = words.shape[1]
    total_probes = 0
    for c in range(m):
        total_probes += mask_counts[c]
    slots = np.empty(total_probes, dtype=np.int64)
    slot_chunk = np.empty(total_probes, dtype=np.int64)
    range_lo = np.empty(total_probes, dtype=np.int64)
    range_chunk = np.empty(total_probes, dtype=np.int64)
    capacity = total_probes + BLOCK  # every single-row bucket, then a block of big ones
    rows = np.empty(capacity, dtype=np.int64)
    chunks = np.empty(capacity, dtype=np.int64)
    qchunks = np.empty(m, dtype=np.int64)
    found = 0
    for q in range(first_query, queries.shape[0]):
        query_start = found
        for c in range(m):
            qchunks[c] = _chunk(queries, q, c, width)
        probes = 0
        for c in range(m):
            for p in range(mask_counts[c]):
                slots[probes] = c * stride + (qchunks[c] ^ masks[p])
                slot_chunk[probes] = c
                probes += 1
        # 1. probe
        ranges = 0
        count = 0
        for i in range(probes):
            if i + AHEAD < probes:
                _prefetch(flat_table, slots[i + AHEAD])
            entry = flat_table[slots[i]]
            if entry == EMPTY:
                continue
            c = slot_chunk[i]
            if entry < MULTI:
                row = np.int64(entry)
                _prefetch(words, row * n_words)
                rows[count] = row
                chunks[count] = c
                count += 1
            else:
                lo = overflow_starts[c] + np.int64(entry ^ MULTI)
                _prefetch(overflow, lo)
                range_lo[ranges] = lo
                range_chunk[ranges] = c
                ranges += 1
        # 2. gather, 3. verify, a block at a time
        for i in range(ranges):
            c = range_chunk[i]
            lo = range_lo[i] + 1
            for j in range(lo, lo + np.int64(overflow[lo - 1])):
                row = np.int64(overflow[j])
                _prefetch(words, row * n_words)
                rows[count] = row
                chunks[count] = c
                count += 1
                if count == capacity:
                    found = _verify(
                        q,
                        queries,
                        words,
                        keys,
                        active,
                        rows,
                        chunks,
                        count,
                        qchunks,
                        radii,
                        width,
                        threshold,
                        out,
                        found,
                    )
                    if found < 0:
                        return query_start, q
                    count = 0
        if count:
            found = _verify(
                q,
                queries,
                words,
                keys,
                active,
                rows,
                chunks,
                count,
                qchunks,
                radii,
                width,
                threshold,
                out,
                found,
            )
            if found < 0:
                return query_start, q
    return found, queries.shape[0]


@njit(cache=True, nogil=True)
def _bucket_counts(words, width, c, counts):  # type: ignore[no-untyped-def]
    counts[:] = 0
    for row in range(words.shape[0]):
        counts[_chunk(words, row, c, width)] += 1


@njit(cache=True, nogil=True)
def overflow_size(words, width, c, counts):  # type: ignore[no-untyped-def]
    """How many ``overflow`` entries chunk ``c`` needs (``counts``: scratch, 2**width int64)."""
    _bucket_counts(words, width, c, counts)
    size = 0
    for b in range(counts.shape[0]):
        if counts[b] > 1:
            size += counts[b] + 1
    return size


@njit(cache=True, nogil=True)
def fill_chunk(words, width, c, counts, table, overflow):  # type: ignore[no-untyped-def]
    """Chunk ``c``'s bucket ``table`` and ``overflow`` (as :func:`ncii.index._bucket_table`
    makes them, by a counting sort instead of an argsort)."""
    _bucket_counts(words, width, c, counts)
    position = 0
    for b in range(counts.shape[0]):
        k = counts[b]
        if k == 0:
            table[b] = EMPTY
            counts[b] = -1
        elif k == 1:
            counts[b] = -1  # the row goes in the table itself
        else:
            table[b] = MULTI | np.uint32(position)
            overflow[position] = k
            counts[b] = position + 1  # where the bucket's next row goes
            position += k + 1
    for row in range(words.shape[0]):
        b = _chunk(words, row, c, width)
        at = counts[b]
        if at < 0:
            table[b] = row
        else:
            overflow[at] = row
            counts[b] = at + 1
