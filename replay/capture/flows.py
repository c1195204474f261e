"""5-tuples → dense flow ids (first seen = 0), kept across chunks and input files.

An open-addressing hash table in numpy arrays, probed by a compiled loop: a numba typed dict is
several times slower per lookup, and the ids must stay dense across every batch of a read.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_EMPTY = np.uint32(0xFFFFFFFF)


@njit(cache=True, inline="always")
def _mix(h, x):
    h ^= x
    h *= np.uint64(0x9E3779B97F4A7C15)
    h ^= h >> np.uint64(29)
    return h


@njit(cache=True, nogil=True)
def assign(s64, d64, proto, sport, dport, mask, keys, ids, count, out):
    """Write the flow id of row i to out[i] for rows with mask[i]; returns (next id, rows done).

    s64/d64 are the 16-byte addresses viewed as two uint64 each. Stops early (rows done < n)
    when the table passes half full, so the caller can grow it.
    """
    cap = ids.shape[0]
    k = np.empty(5, np.uint64)
    n = out.shape[0]
    for i in range(n):
        if not mask[i]:
            continue
        if count * 2 >= cap:
            return count, i
        k[0] = s64[i, 0]
        k[1] = s64[i, 1]
        k[2] = d64[i, 0]
        k[3] = d64[i, 1]
        k[4] = (
            (np.uint64(proto[i]) << np.uint64(32))
            | (np.uint64(sport[i]) << np.uint64(16))
            | np.uint64(dport[i])
        )
        h = np.uint64(0)
        for j in range(5):
            h = _mix(h, k[j])
        slot = np.int64(h & np.uint64(cap - 1))
        while True:
            fid = ids[slot]
            if fid == _EMPTY:
                for j in range(5):
                    keys[slot, j] = k[j]
                ids[slot] = count
                out[i] = count
                count += 1
                break
            if (
                keys[slot, 0] == k[0]
                and keys[slot, 1] == k[1]
                and keys[slot, 2] == k[2]
                and keys[slot, 3] == k[3]
                and keys[slot, 4] == k[4]
            ):
                out[i] = fid
                break
            slot = (slot + 1) & (cap - 1)
    return count, n


@njit(cache=True, nogil=True)
def _rehash(keys, ids, nkeys, nids):
    cap = nids.shape[0]
    for s in range(ids.shape[0]):
        if ids[s] == _EMPTY:
            continue
        h = np.uint64(0)
        for j in range(5):
            h = _mix(h, keys[s, j])
        slot = np.int64(h & np.uint64(cap - 1))
        while nids[slot] != _EMPTY:
            slot = (slot + 1) & (cap - 1)
        for j in range(5):
            nkeys[slot, j] = keys[s, j]
        nids[slot] = ids[s]


class FlowTable:
    """Dense ids of (src, dst, proto, sport, dport), first seen = 0."""

    def __init__(self, capacity: int = 1 << 12) -> None:
        self.keys = np.zeros((capacity, 5), np.uint64)
        self.ids = np.full(capacity, _EMPTY, np.uint32)
        self.count = 0

    def _grow(self) -> None:
        cap = self.ids.shape[0] * 4
        nkeys = np.zeros((cap, 5), np.uint64)
        nids = np.full(cap, _EMPTY, np.uint32)
        _rehash(self.keys, self.ids, nkeys, nids)
        self.keys, self.ids = nkeys, nids

    def assign(
        self,
        src: np.ndarray,
        dst: np.ndarray,
        proto: np.ndarray,
        sport: np.ndarray,
        dport: np.ndarray,
        mask: np.ndarray,
    ) -> np.ndarray:
        """Flow ids (uint32) of the rows where mask is set; other rows hold 0.

        src/dst: (n, 16) uint8 addresses; proto/sport/dport: (n,) with 0 where absent.
        """
        s64 = np.ascontiguousarray(src).view(np.uint64)
        d64 = np.ascontiguousarray(dst).view(np.uint64)
        out = np.zeros(proto.shape[0], np.uint32)
        start = 0
        n = out.shape[0]
        while start < n:
            self.count, done = assign(
                s64[start:], d64[start:], proto[start:], sport[start:], dport[start:],
                mask[start:], self.keys, self.ids, self.count, out[start:],
            )  # fmt: skip
            start += done
            if start < n:
                self._grow()
        return out
