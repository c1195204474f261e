"""Rows of (hi, lo, tag) keys → dense ids in sorted key order, and per-key byte sums.

What np.unique(..., return_inverse=True) gives over 16-byte addresses (two big-endian 64-bit
halves, so that unsigned order is byte order) plus a small tag, by a compiled hash group-by: one
pass over the rows into an open-addressing table, a sort of the distinct keys only (a capture has
few destinations and sources), and one pass to renumber. np.unique sorted all the rows: 0.03 s per
million uint64 keys and 0.3 s for 16-byte void keys; the polars group-by that replaced the latter
cost 0.17 s per million frames with its copies (benchmarks/bench_run.py --sections).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, inline="always")
def _slot(hi, lo, tag, mask):  # pragma: no cover - numba
    # a multiply-xorshift mix (splitmix64's finaliser) of the three words: any fixed mix works,
    # the ids come from the sorted keys, not from the table's order
    h = (hi * np.uint64(0x9E3779B97F4A7C15)) ^ lo ^ (np.uint64(tag) << np.uint64(56))
    h ^= h >> np.uint64(31)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(29)
    return np.int64(h & np.uint64(mask))


@njit(cache=True)
def _group(hi, lo, tag, sel, weight, first, khi, klo, ktag, ksum):  # pragma: no cover - numba
    """first[i]: the first-seen group of selected row i (-1 unselected); the groups' keys and
    weight sums in khi/klo/ktag/ksum. Returns the number of groups."""
    n = hi.shape[0]
    size = 16
    while size < 2 * n:
        size *= 2
    mask = size - 1
    table = np.full(size, -1, np.int64)
    ng = 0
    for i in range(n):
        if not sel[i]:
            first[i] = -1
            continue
        h, w, t = hi[i], lo[i], tag[i]
        s = _slot(h, w, t, mask)
        while True:
            g = table[s]
            if g < 0:
                table[s] = g = ng
                khi[ng], klo[ng], ktag[ng], ksum[ng] = h, w, t, 0
                ng += 1
                break
            if khi[g] == h and klo[g] == w and ktag[g] == t:
                break
            s = (s + 1) & mask
        ksum[g] += weight[i]
        first[i] = g
    return ng


@njit(cache=True)
def _renumber(first, rank, out):  # pragma: no cover - numba
    for i in range(first.shape[0]):
        g = first[i]
        out[i] = rank[g] if g >= 0 else -1


def halves(addr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, 16) address bytes → their big-endian 64-bit halves as uint64 (unsigned order is byte
    order)."""
    h = np.ascontiguousarray(addr, dtype=np.uint8).view(">u8")
    return h[:, 0].astype(np.uint64), h[:, 1].astype(np.uint64)


def group_keys(hi: np.ndarray, lo: np.ndarray, tag: np.ndarray | None = None,
               sel: np.ndarray | None = None, weight: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(ids, hi, lo, tag, sums): each selected row's dense id in the sorted order of the distinct
    (hi, lo, tag) keys (-1 for rows not selected), and per id its key and summed weight."""
    n = len(hi)
    tag = np.zeros(n, np.uint8) if tag is None else np.ascontiguousarray(tag, dtype=np.uint8)
    sel = np.ones(n, np.bool_) if sel is None else np.ascontiguousarray(sel, dtype=np.bool_)
    weight = np.zeros(n, np.int64) if weight is None else \
        np.ascontiguousarray(weight, dtype=np.int64)
    first = np.empty(n, np.int64)
    khi, klo = np.empty(n, np.uint64), np.empty(n, np.uint64)
    ktag, ksum = np.empty(n, np.uint8), np.empty(n, np.int64)
    ng = _group(np.ascontiguousarray(hi, dtype=np.uint64), np.ascontiguousarray(lo, dtype=np.uint64),
                tag, sel, weight, first, khi, klo, ktag, ksum)
    khi, klo, ktag, ksum = khi[:ng], klo[:ng], ktag[:ng], ksum[:ng]
    order = np.lexsort((ktag, klo, khi))  # by hi, then lo, then tag
    rank = np.empty(ng, np.int64)
    rank[order] = np.arange(ng, dtype=np.int64)
    ids = first  # renumbered in place: each row reads its own group before writing
    _renumber(first, rank, ids)
    return ids, khi[order], klo[order], ktag[order], ksum[order]
