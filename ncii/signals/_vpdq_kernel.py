"""vPDQ's per-frame filters compiled with numba; imported on the first video frame, so that
hashing images (and the worker processes that do it) never pay numba's import."""

from __future__ import annotations

import numpy as np
from numba import njit

# Plain loops rather than numpy's matmul: on a busy machine OpenBLAS's threads spin and
# make these tiny products 20 times slower than the loops.


@njit(cache=True)
def _luma_line(line, out):  # type: ignore[no-untyped-def]
    """One row's luma into ``out`` (float32): a loop of its own, which LLVM vectorises."""
    r = np.float32(0.299)
    g = np.float32(0.587)
    b = np.float32(0.114)
    for j in range(line.shape[0]):
        out[j] = (
            r * np.float32(line[j, 0]) + g * np.float32(line[j, 1]) + b * np.float32(line[j, 2])
        )


@njit(cache=True)
def block_filter(rgb, row_starts, row_weights, column_starts, column_weights):  # type: ignore[no-untyped-def]
    width = rgb.shape[1]
    rows = np.zeros((64, width))
    luma_line = np.empty(width, dtype=np.float32)
    for row in range(64):
        acc = rows[row]
        for t in range(row_weights.shape[1]):
            weight = row_weights[row, t]
            if weight == 0.0:
                continue
            _luma_line(rgb[row_starts[row] + t], luma_line)
            for j in range(width):
                acc[j] += weight * luma_line[j]
    block = np.zeros((64, 64))
    for row in range(64):
        for column in range(64):
            total = 0.0
            first = column_starts[column]
            for t in range(column_weights.shape[1]):
                total += column_weights[column, t] * rows[row, first + t]
            block[row, column] = total
    return block


@njit(cache=True)
def luma(rgb):  # type: ignore[no-untyped-def]
    """PDQ's luma as float32: the same floats as ``ncii.video.luma`` (no fused multiply-add;
    checked on every RGB triple), five times faster."""
    height, width = rgb.shape[0], rgb.shape[1]
    out = np.empty((height, width), dtype=np.float32)
    for i in range(height):
        _luma_line(rgb[i], out[i])
    return out


@njit(cache=True)
def accumulate(rgb, first, total, squares, rounded):  # type: ignore[no-untyped-def]
    """``ncii.video.accumulate`` in one pass a row at a time: the same floats."""
    height, width = rgb.shape[0], rgb.shape[1]
    value = np.empty(width, dtype=np.float32)
    for i in range(height):
        _luma_line(rgb[i], value)
        out = rounded[i]
        base = first[i]
        sums = total[i]
        sum_squares = squares[i]
        for j in range(width):
            change = value[j] - base[j]
            out[j] = np.uint8(np.rint(value[j]))
            sums[j] += change
            sum_squares[j] += change * change


@njit(cache=True)
def dct16(block, dct):  # type: ignore[no-untyped-def]
    half = np.zeros((16, 64))
    for i in range(16):
        for j in range(64):
            total = 0.0
            for k in range(64):
                total += dct[i, k] * block[k, j]
            half[i, j] = total
    out = np.zeros((16, 16))
    for i in range(16):
        for j in range(16):
            total = 0.0
            for k in range(64):
                total += half[i, k] * dct[j, k]
            out[i, j] = total
    return out


@njit(cache=True)
def add_region(block, rows, columns_t, top, left, delta):  # type: ignore[no-untyped-def]
    """``block += rows[:, top:top+h] @ delta @ columns_t[left:left+w].T``, skipping zeros:
    ``delta`` is mostly zero (it changes only an overlay's pixels) and each input row or
    column feeds only a few of the 64 samples."""
    height, width = delta.shape
    partial = np.zeros((height, 64))
    for i in range(height):
        for j in range(width):
            change = delta[i, j]
            if change == 0.0:
                continue
            weights = columns_t[left + j]
            for c in range(64):
                if weights[c] != 0.0:
                    partial[i, c] += change * weights[c]
    for r in range(64):
        for i in range(height):
            weight = rows[r, top + i]
            if weight == 0.0:
                continue
            for c in range(64):
                block[r, c] += weight * partial[i, c]
