"""Rows of a byte matrix (addresses) + a tag → dense ids in sorted key order, and sums per key.

What np.unique(..., return_inverse=True) gives over 16-byte addresses (in byte order) plus a small
tag, by a compiled hash group-by: one pass over the rows into an open-addressing table, a sort of
the distinct keys only (a capture has few destinations and sources), and one pass to renumber.
np.unique sorted all the rows: 0.03 s per million uint64 keys and 0.3 s for 16-byte void keys;
the polars group-by that replaced the latter cost 0.17 s per million frames with its copies
(benchmarks/bench_run.py --sections).
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


@njit(cache=True, inline="always")
def _assign(g, table, mask, h, w, t, khi, klo, ktag, ksum, ng):  # pragma: no cover
    """The group of key (h, w, t): g, the previous row's, when the key is the same (a run of one
    address skips the table), else found by linear probing from its slot or added as group ng.
    (its group, the new group count)."""
    if g >= 0 and khi[g] == h and klo[g] == w and ktag[g] == t:
        return g, ng
    s = _slot(h, w, t, mask)
    while True:
        g = table[s]
        if g < 0:
            table[s] = ng
            khi[ng], klo[ng], ktag[ng], ksum[ng] = h, w, t, 0
            return ng, ng + 1
        if khi[g] == h and klo[g] == w and ktag[g] == t:
            return g, ng
        s = (s + 1) & mask


@njit(cache=True)
def _group(addr, b0, b1, tag, sel, weight, first, khi, klo, ktag, ksum):  # pragma: no cover
    """first[i]: the first-seen group of selected row i (-1 unselected); the groups' keys and
    weight sums in khi/klo/ktag/ksum. The key of a row is its bytes b0..b1 (at most 16) read as
    one big-endian number split in two words (lo: the last 8 bytes), so that unsigned order is
    byte order. Returns the number of groups."""
    n = addr.shape[0]
    size = 16
    while size < 2 * n:
        size *= 2
    mask = size - 1
    table = np.full(size, -1, np.int64)
    split = max(b0, b1 - 8)
    ng = 0
    g = -1  # the previous selected row's group: runs of one address skip the table
    for i in range(n):
        if not sel[i]:
            first[i] = -1
            continue
        h = np.uint64(0)
        for b in range(b0, split):
            h = (h << np.uint64(8)) | np.uint64(addr[i, b])
        w = np.uint64(0)
        for b in range(split, b1):
            w = (w << np.uint64(8)) | np.uint64(addr[i, b])
        t = tag[i]
        g, ng = _assign(g, table, mask, h, w, t, khi, klo, ktag, ksum, ng)
        ksum[g] += weight[i]
        first[i] = g
    return ng


@njit(cache=True)
def _group_words(words, w0, tag, sel, weight, first, khi, klo, ktag, ksum):  # pragma: no cover
    """_group for 16-byte rows read as two native 64-bit words (w0 = 1: the second alone, hi
    0): two loads per row instead of sixteen byte shifts. Keys stay native-endian (equality is
    the same); group_rows turns the few distinct ones to byte order before sorting."""
    n = words.shape[0]
    size = 16
    while size < 2 * n:
        size *= 2
    mask = size - 1
    table = np.full(size, -1, np.int64)
    ng = 0
    g = -1
    for i in range(n):
        if not sel[i]:
            first[i] = -1
            continue
        h = words[i, 0] if w0 == 0 else np.uint64(0)
        w = words[i, 1]
        t = tag[i]
        g, ng = _assign(g, table, mask, h, w, t, khi, klo, ktag, ksum, ng)
        ksum[g] += weight[i]
        first[i] = g
    return ng


def _byte_order(words: np.ndarray) -> np.ndarray:
    """Native 64-bit words of address bytes → the bytes read as big-endian numbers."""
    return np.frombuffer(np.ascontiguousarray(words).tobytes(), dtype=">u8").astype(np.uint64)


@njit(cache=True)
def _renumber(first, rank):  # pragma: no cover - numba
    for i in range(first.shape[0]):
        g = first[i]
        if g >= 0:
            first[i] = rank[g]


def group_rows(addr: np.ndarray, b0: int = 0, b1: int | None = None, tag: np.ndarray | None = None,
               sel: np.ndarray | None = None, weight: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(ids, hi, lo, tag, sums) over the rows of the (n, width) uint8 matrix `addr`, keyed on
    their bytes b0..b1 (default: all; at most 16) and `tag` (uint8, default 0): each selected
    row's dense id in the sorted order of the distinct keys (-1 for rows not selected), and per
    id its key (the bytes as a big-endian number: hi the first b1 - b0 - 8, lo the last 8) and
    summed weight (default 0)."""
    n = len(addr)
    b1 = addr.shape[1] if b1 is None else b1
    if b1 - b0 > 16:
        raise ValueError(f"group_rows keys on at most 16 bytes, got {b1 - b0}")
    tag = np.zeros(n, np.uint8) if tag is None else np.ascontiguousarray(tag, dtype=np.uint8)
    sel = np.ones(n, np.bool_) if sel is None else np.ascontiguousarray(sel, dtype=np.bool_)
    weight = np.zeros(n, np.int64) if weight is None else \
        np.ascontiguousarray(weight, dtype=np.int64)
    first = np.empty(n, np.int64)
    # n-row buffers never touched past the groups found (np.empty: no memory until written)
    khi, klo = np.empty(n, np.uint64), np.empty(n, np.uint64)
    ktag, ksum = np.empty(n, np.uint8), np.empty(n, np.int64)
    addr = np.ascontiguousarray(addr, dtype=np.uint8)
    if addr.shape[1] == 16 and (b0, b1) in ((0, 16), (8, 16)):
        words = addr.view(np.uint64)  # (n, 2), no copy
        ng = _group_words(words, b0 // 8, tag, sel, weight, first, khi, klo, ktag, ksum)
        khi, klo = _byte_order(khi[:ng]), _byte_order(klo[:ng])
        if b0 == 8:
            khi[:] = 0
    else:
        ng = _group(addr, b0, b1, tag, sel, weight, first, khi, klo, ktag, ksum)
        khi, klo = khi[:ng], klo[:ng]
    ktag, ksum = ktag[:ng], ksum[:ng]
    order = np.lexsort((ktag, klo, khi))  # by hi, then lo, then tag
    rank = np.empty(ng, np.int64)
    rank[order] = np.arange(ng, dtype=np.int64)
    _renumber(first, rank)
    return first, khi[order], klo[order], ktag[order], ksum[order]


def key_bytes16(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """The (g, 16) address bytes of 16-byte keys from group_rows."""
    keys = np.stack([hi, lo], axis=1).astype(">u8")
    return np.ascontiguousarray(keys).view(np.uint8).reshape(-1, 16)
