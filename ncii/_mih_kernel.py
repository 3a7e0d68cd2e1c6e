"""The multi-index probe-and-verify loop, compiled with numba.

Same algorithm and results as the numpy path in :mod:`ncii.index` (the tests run both), in
three streaming passes per query, each prefetching a fixed distance ahead so that dozens of
cache misses are in flight at once instead of one (a lookup in a big index is thousands of
random memory accesses, and waiting for each in turn was most of its time):

1. probe: for each chunk and flip mask, read the bucket's bounds in ``starts``;
2. gather: copy the row numbers of the non-empty buckets out of ``order``;
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
"""Candidates gathered before they are verified (bounds the scratch memory)."""


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
    q, queries, words, active, rows, chunks, count, qchunks, radii, width, threshold, out, found
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
        out[found, 1] = row
        out[found, 2] = distance
        found += 1
    return found


@njit(cache=True, nogil=True)
def search(  # type: ignore[no-untyped-def]
    queries,
    first_query,
    words,
    order,
    starts,
    active,
    masks,
    mask_counts,
    radii,
    width,
    threshold,
    out,
):
    """Fill ``out`` (k, 3) with [query, row, distance] for queries from ``first_query`` on.

    ``order`` is (m, n) and ``starts`` is (m, 2**width + 1); chunk ``c`` is probed with the
    first ``mask_counts[c]`` of ``masks`` (its radius ``radii[c]``; -1: not probed). Returns
    ``(k, next_query)``: when ``out`` fills up, the rows of the query in progress are dropped
    and ``next_query`` says where to resume (== number of queries when done).
    """
    m = order.shape[0]
    n = order.shape[1]
    stride = starts.shape[1]
    flat_starts = starts.reshape(-1)
    flat_order = order.reshape(-1)
    total_probes = 0
    for c in range(m):
        total_probes += mask_counts[c]
    slots = np.empty(total_probes, dtype=np.int64)
    slot_chunk = np.empty(total_probes, dtype=np.int64)
    range_lo = np.empty(total_probes, dtype=np.int64)
    range_hi = np.empty(total_probes, dtype=np.int64)
    range_chunk = np.empty(total_probes, dtype=np.int64)
    rows = np.empty(BLOCK, dtype=np.int64)
    chunks = np.empty(BLOCK, dtype=np.int64)
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
        for i in range(probes):
            if i + AHEAD < probes:
                _prefetch(flat_starts, slots[i + AHEAD])
            lo = flat_starts[slots[i]]
            hi = flat_starts[slots[i] + 1]
            if hi > lo:
                c = slot_chunk[i]
                range_lo[ranges] = c * n + lo
                range_hi[ranges] = c * n + hi
                range_chunk[ranges] = c
                ranges += 1
        # 2. gather, 3. verify, a block at a time
        count = 0
        for i in range(ranges):
            if i + AHEAD < ranges:
                _prefetch(flat_order, range_lo[i + AHEAD])
            c = range_chunk[i]
            for j in range(range_lo[i], range_hi[i]):
                rows[count] = flat_order[j]
                chunks[count] = c
                count += 1
                if count == BLOCK:
                    found = _verify(
                        q,
                        queries,
                        words,
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
