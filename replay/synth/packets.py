"""Header templates built with dpkt → frame columns: tile, patch fields, fix checksums (numpy).

A flood of 75k frames differs only in a few header fields, so the scenarios build one frame with
dpkt, copy it into an (n, len) uint8 array and write the varying fields and the checksums column
by column; no Python object per frame. The tests decode the result with dpkt and check every
checksum.
"""

from __future__ import annotations

import socket

import dpkt
import numpy as np

ETH_HLEN = 14
ETH_MIN = 60  # shortest Ethernet frame without its 4-byte FCS: 64 on the wire (IEEE 802.3)
WIRE_EXTRA = 24  # what the wire carries and the capture lacks: FCS 4 + preamble/SFD 8 + IFG 12


def mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def ip4(text: str) -> bytes:
    return socket.inet_aton(text)


def ip6(text: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6, text)


def ether(dst: bytes, src: bytes, payload: dpkt.Packet | bytes, etype: int) -> bytes:
    """One Ethernet frame, zero-padded to the 60-byte minimum as a receiving NIC captures it."""
    frame = bytes(dpkt.ethernet.Ethernet(dst=dst, src=src, type=etype, data=payload))
    return frame + bytes(max(0, ETH_MIN - len(frame)))


def tile(template: bytes, n: int) -> np.ndarray:
    """n copies of one frame as an (n, len) uint8 array."""
    return np.tile(np.frombuffer(template, dtype=np.uint8), (n, 1))


def put_be(frames: np.ndarray, offset: int, width: int, values: np.ndarray | int) -> None:
    """Write big-endian integers of `width` bytes at column `offset` of every row."""
    v = np.broadcast_to(np.asarray(values, dtype=np.uint64), (len(frames),))
    for k in range(width):
        frames[:, offset + k] = (v >> np.uint64(8 * (width - 1 - k))) & np.uint64(0xFF)


def get_be(frames: np.ndarray, offset: int, width: int) -> np.ndarray:
    v = np.zeros(len(frames), dtype=np.uint64)
    for k in range(width):
        v = (v << np.uint64(8)) | frames[:, offset + k].astype(np.uint64)
    return v


def _sum16(block: np.ndarray) -> np.ndarray:
    """Ones'-complement sum (unfolded, uint64) of each row of an even-width uint8 block."""
    if block.shape[1] % 2:
        block = np.concatenate([block, np.zeros((len(block), 1), dtype=np.uint8)], axis=1)
    hi = block[:, 0::2].astype(np.uint64)
    lo = block[:, 1::2].astype(np.uint64)
    return ((hi << np.uint64(8)) | lo).sum(axis=1, dtype=np.uint64)


def _fold(s: np.ndarray) -> np.ndarray:
    for _ in range(4):  # 64-bit sums of < 2^32 words fold to 16 bits in at most 4 rounds
        s = (s & np.uint64(0xFFFF)) + (s >> np.uint64(16))
    return (~s & np.uint64(0xFFFF)).astype(np.uint16)


def fix_ipv4_csum(frames: np.ndarray, l3: int = ETH_HLEN) -> None:
    """Recompute the IPv4 header checksum (RFC 791) of every row; header without options."""
    frames[:, l3 + 10 : l3 + 12] = 0
    put_be(frames, l3 + 10, 2, _fold(_sum16(frames[:, l3 : l3 + 20])))


def fix_l4_csum(frames: np.ndarray, l3: int = ETH_HLEN, zero_means_none: bool = False) -> None:
    """Recompute the UDP or TCP checksum over the IPv4 pseudo-header (RFC 768/793) per row.

    `zero_means_none`: UDP sends a computed 0 as 0xFFFF, because 0 means "no checksum".
    """
    proto = int(frames[0, l3 + 9])
    total = get_be(frames, l3 + 2, 2).astype(np.int64)
    seg_len = int(total[0]) - 20
    if np.any(total != total[0]):
        raise AssertionError("fix_l4_csum needs equal-length packets")  # a scenario bug
    l4 = l3 + 20
    sum_off = l4 + (6 if proto == dpkt.ip.IP_PROTO_UDP else 16)
    frames[:, sum_off : sum_off + 2] = 0
    s = _sum16(frames[:, l3 + 12 : l3 + 20]) + np.uint64(proto + seg_len)
    s = s + _sum16(frames[:, l4 : l4 + seg_len])
    c = _fold(s)
    if zero_means_none:
        c[c == 0] = 0xFFFF
    put_be(frames, sum_off, 2, c)


def u32_to_ip4(values: np.ndarray) -> list[bytes]:
    return [int(v).to_bytes(4, "big") for v in values]


def udp4_frames(
    n: int,
    *,
    src_mac: bytes,
    dst_mac: bytes,
    src_ip: np.ndarray | int,
    dst_ip: np.ndarray | int,
    sport: np.ndarray | int,
    dport: np.ndarray | int,
    payload: np.ndarray,
    ip_id: np.ndarray | int,
    ttl: np.ndarray | int = 64,
    df: bool = False,
    checksum: bool = True,
) -> np.ndarray:
    """n Ethernet/IPv4/UDP frames of one length as an (n, len) array; fields given as columns.

    `payload` is (n, L) or (L,) uint8. The template comes from dpkt; the per-frame fields and
    the checksums are written with numpy. `checksum=False` leaves the UDP checksum 0 (none).
    """
    payload = np.asarray(payload, dtype=np.uint8)
    plen = payload.shape[-1]
    udp = dpkt.udp.UDP(sport=0, dport=0, data=bytes(plen))
    udp.ulen = len(udp)
    ip = dpkt.ip.IP(src=bytes(4), dst=bytes(4), p=dpkt.ip.IP_PROTO_UDP, df=int(df), data=udp)
    frames = tile(ether(dst_mac, src_mac, ip, dpkt.ethernet.ETH_TYPE_IP), n)
    l3 = ETH_HLEN
    put_be(frames, l3 + 4, 2, ip_id)
    put_be(frames, l3 + 8, 1, ttl)
    put_be(frames, l3 + 12, 4, src_ip)
    put_be(frames, l3 + 16, 4, dst_ip)
    put_be(frames, l3 + 20, 2, sport)
    put_be(frames, l3 + 22, 2, dport)
    frames[:, l3 + 28 : l3 + 28 + plen] = payload
    fix_ipv4_csum(frames, l3)
    if checksum:
        fix_l4_csum(frames, l3, zero_means_none=True)
    else:
        frames[:, l3 + 26 : l3 + 28] = 0
    return frames


def ip4_int(text: str) -> int:
    return int.from_bytes(ip4(text), "big")


def line_rate_times(n: int, frame_len: int, rate_bps: int) -> np.ndarray:
    """Start times (ns) of n back-to-back frames of `frame_len` captured bytes at `rate_bps`.

    Each frame occupies (len + FCS 4 + preamble/SFD 8 + IFG 12) × 8 bits; exact integer ns,
    floored (64-byte frames at 1 Gbit/s: exactly 672 ns apart).
    """
    bits = (frame_len + WIRE_EXTRA) * 8
    return (np.arange(n, dtype=np.int64) * (bits * 1_000_000_000)) // int(rate_bps)
