"""Bytes → integers: the endian-aware loads every numba walker and decoder shares.

Loads are assembled byte by byte: numba turns these into single loads, and no unaligned-access or
byte-order assumption about the host leaks in.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, inline="always")
def u16be(b: np.ndarray, p: int) -> int:
    return (np.int64(b[p]) << 8) | np.int64(b[p + 1])


@njit(cache=True, inline="always")
def u16le(b: np.ndarray, p: int) -> int:
    return (np.int64(b[p + 1]) << 8) | np.int64(b[p])


@njit(cache=True, inline="always")
def u32be(b: np.ndarray, p: int) -> int:
    return (
        (np.int64(b[p]) << 24) | (np.int64(b[p + 1]) << 16) | (np.int64(b[p + 2]) << 8) | np.int64(b[p + 3])
    )


@njit(cache=True, inline="always")
def u32le(b: np.ndarray, p: int) -> int:
    return (
        (np.int64(b[p + 3]) << 24) | (np.int64(b[p + 2]) << 16) | (np.int64(b[p + 1]) << 8) | np.int64(b[p])
    )


@njit(cache=True, inline="always")
def u16(b: np.ndarray, p: int, be: bool) -> int:
    return u16be(b, p) if be else u16le(b, p)


@njit(cache=True, inline="always")
def u32(b: np.ndarray, p: int, be: bool) -> int:
    return u32be(b, p) if be else u32le(b, p)
