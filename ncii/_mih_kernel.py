"""The multi-index probe-and-verify loop, compiled with numba.

Same algorithm and results as the numpy path in :mod:`ncii.index` (the tests run both), but
one pass with no temporaries: for each chunk and flip mask, walk the bucket (prefetching the
hashes of candidates a few steps ahead, since each is a cache miss), verify each candidate
with hardware popcount, and report a row only through the first chunk that can
reach it, so no de-duplication pass is needed.
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


@njit(cache=True)
def search(  # type: ignore[no-untyped-def]
    queries, first_query, words, order, starts, active, masks, width, threshold, out
):
    """Fill ``out`` (k, 3) with [query, row, distance] for queries from ``first_query`` on.

    Returns ``(k, next_query)``: when ``out`` fills up, the rows of the query in progress are
    dropped and ``next_query`` says where to resume (== number of queries when done).
    """
    n_words = words.shape[1]
    m = order.shape[0]
    radius = threshold // m
    found = 0
    qchunks = np.empty(m, dtype=np.int64)
    for q in range(first_query, queries.shape[0]):
        query_start = found
        for c in range(m):
            qchunks[c] = _chunk(queries, q, c, width)
        for c in range(m):
            for p in range(masks.shape[0]):
                value = qchunks[c] ^ masks[p]
                end = starts[c, value + 1]
                for j in range(starts[c, value], end):
                    if j + 8 < end:
                        _prefetch(words, order[c, j + 8] * n_words)
                    row = order[c, j]
                    distance = 0
                    for w in range(n_words):
                        distance += _popcount(words[row, w] ^ queries[q, w])
                    if distance > threshold or not active[row]:
                        continue
                    # Reported through the first chunk within the radius only.
                    seen = False
                    for earlier in range(c):
                        delta = np.uint64(_chunk(words, row, earlier, width) ^ qchunks[earlier])
                        if _popcount(delta) <= radius:
                            seen = True
                            break
                    if seen:
                        continue
                    if found == out.shape[0]:
                        return query_start, q
                    out[found, 0] = q
                    out[found, 1] = row
                    out[found, 2] = distance
                    found += 1
    return found, queries.shape[0]
