"""Flow tuples → Toeplitz RSS hash → RX queue, as the NIC computes it (KERNEL.md §5).

`toeplitz_hash` is the bit-serial definition (Microsoft "RSS Hashing Functions"); `hash_frames`
is the same function, table-driven and columnar: for every byte position and byte value the
32-bit contribution is precomputed, so a 12-byte IPv4 4-tuple costs 12 lookups and XORs.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# The Microsoft default key (KERNEL.md §5; DPDK test_thash.c default_rss_key, 82599 datasheet)
MICROSOFT_KEY = bytes.fromhex(
    "6d5a56da255b0ec24167253d43a38fb0d0ca2bcbae7b30b477cb2da38030f20c6a42b73bbeac01fa"
)


def toeplitz_hash(key: bytes, data: bytes) -> int:
    """The Toeplitz hash of `data` under `key`: for each input bit set (MSB first), XOR in the
    leftmost 32 bits of the key shifted left by the bit's position."""
    k = int.from_bytes(key, "big")
    klen = len(key) * 8
    result = 0
    for i, byte in enumerate(data):
        for b in range(8):
            if byte & (0x80 >> b):
                pos = i * 8 + b
                if pos + 32 <= klen:
                    result ^= (k >> (klen - 32 - pos)) & 0xFFFFFFFF
                else:  # past the key's end the window is zero-filled on the right
                    result ^= (k << (pos + 32 - klen)) & 0xFFFFFFFF
    return result


def key_bytes(hkey: str, seed: int = 0) -> bytes:
    """`nic.hkey`: "microsoft", "random" (52 bytes, as netdev_rss_key_fill gives, seeded), or hex."""
    if hkey == "microsoft":
        return MICROSOFT_KEY
    if hkey == "random":
        # net/ethtool/ioctl.c:1288-1295: NETDEV_RSS_KEY_LEN (52) random bytes, once per boot;
        # seeded here so that a run is reproducible
        return np.random.default_rng(seed).bytes(52)
    return bytes.fromhex(hkey.replace(":", ""))


def _table(key: bytes, nbytes: int) -> np.ndarray:
    """tbl[pos, v] = hash contribution of byte value v at input byte position pos."""
    tbl = np.zeros((nbytes, 256), dtype=np.uint32)
    for pos in range(nbytes):
        for bit in range(8):
            one = bytes(pos) + bytes([0x80 >> bit])
            contrib = toeplitz_hash(key, one)
            mask = np.array([(v >> (7 - bit)) & 1 for v in range(256)], dtype=bool)
            tbl[pos, mask] ^= np.uint32(contrib)
    return tbl


_TABLES: dict[bytes, np.ndarray] = {}


def _cached_table(key: bytes) -> np.ndarray:
    t = _TABLES.get(key)
    if t is None:
        t = _TABLES[key] = _table(key, 36)  # IPv6 + ports is the longest input
    return t


@njit(cache=True, nogil=True)
def _hash_rows(tbl, src, dst, sport, dport, v6, use_ports, out):  # pragma: no cover - numba
    n = src.shape[0]
    for i in range(n):
        h = np.uint32(0)
        pos = 0
        if v6[i]:
            for j in range(16):
                h ^= tbl[pos, src[i, j]]
                pos += 1
            for j in range(16):
                h ^= tbl[pos, dst[i, j]]
                pos += 1
        else:
            for j in range(12, 16):
                h ^= tbl[pos, src[i, j]]
                pos += 1
            for j in range(12, 16):
                h ^= tbl[pos, dst[i, j]]
                pos += 1
        if use_ports[i]:
            h ^= tbl[pos, (sport[i] >> 8) & 0xFF]
            h ^= tbl[pos + 1, sport[i] & 0xFF]
            h ^= tbl[pos + 2, (dport[i] >> 8) & 0xFF]
            h ^= tbl[pos + 3, dport[i] & 0xFF]
        out[i] = h


def hash_frames(
    key: bytes,
    src: np.ndarray,
    dst: np.ndarray,
    sport: np.ndarray,
    dport: np.ndarray,
    v6: np.ndarray,
    use_ports: np.ndarray,
) -> np.ndarray:
    """Toeplitz hash per frame. src/dst: (n, 16) uint8 (IPv4 mapped); use_ports: 4-tuple rows."""
    out = np.zeros(len(src), dtype=np.uint32)
    if len(src):
        _hash_rows(
            _cached_table(key),
            np.ascontiguousarray(src),
            np.ascontiguousarray(dst),
            sport.astype(np.int64, copy=False),
            dport.astype(np.int64, copy=False),
            v6.astype(np.bool_, copy=False),
            use_ports.astype(np.bool_, copy=False),
            out,
        )
    return out


def indirection_table(size: int, queues: int) -> np.ndarray:
    """ethtool_rxfh_indir_default: entry i -> queue i % queues (include/linux/ethtool.h:170)."""
    return (np.arange(size) % queues).astype(np.int32)


def queue_of(hashes: np.ndarray, table: np.ndarray) -> np.ndarray:
    """indir[hash & (size - 1)]: the low bits select the entry (scaling.rst, 128 entries -> 7 bits)."""
    return table[(hashes & np.uint32(len(table) - 1)).astype(np.int64)]


