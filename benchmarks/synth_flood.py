"""Benchmark: the gigabit-flood frames built as numpy columns vs one dpkt object per frame.

Run: PYTHONPATH=. python benchmarks/synth_flood.py
Both sides build the same 74,405 frames (50 ms of 64-byte frames at 1 GbE) and the pcap bytes
(uncompressed; gzip costs the same on both sides). The frames are checked equal, then the
ratio is printed.
"""

from __future__ import annotations

import io
import time

import dpkt

from replay.synth import build
from replay.synth.writer import pcap_bytes


def columnar() -> list[bytes]:
    cap = build("gigabit-flood", duration=0.05, rate="1G", flows=8, seed=1)
    pcap_bytes(cap)
    return [bytes(r) for r in cap.frames[:1000]]


def per_frame_dpkt() -> list[bytes]:
    n = 74405
    out = io.BytesIO()
    w = dpkt.pcap.Writer(out, snaplen=262144, nano=True)
    first = []
    for i in range(n):
        t_ns = i * 672
        when = (1_767_225_600 * 10**9 + t_ns) // 1000
        payload = (0xBE9BE955).to_bytes(4, "big") + i.to_bytes(4, "big")
        payload += (when // 10**6).to_bytes(4, "big") + (when % 10**6).to_bytes(4, "big") + bytes(2)
        udp = dpkt.udp.UDP(sport=9 + i % 8, dport=9, data=payload)
        udp.ulen = len(udp)
        ip = dpkt.ip.IP(
            src=bytes([198, 18, 0, 1]),
            dst=bytes([198, 18, 0, 2]),
            p=17,
            ttl=32,
            id=i & 0xFFFF,
            data=udp,
        )
        ip.data.sum = 0  # pktgen sends no UDP checksum; dpkt would fill one in when packing
        raw_ip = bytearray(bytes(ip))
        raw_ip[26:28] = b"\0\0"
        eth = dpkt.ethernet.Ethernet(
            dst=bytes.fromhex("3cfdfeaabb01"), src=bytes.fromhex("020000000001"), data=bytes(raw_ip)
        )
        frame = bytes(eth)
        w.writepkt(frame, ts=1_767_225_600 + t_ns / 1e9)
        if i < 1000:
            first.append(frame)
    return first


def best_of(f, k: int = 3) -> tuple[float, list[bytes]]:
    times, result = [], []
    for _ in range(k):
        t = time.perf_counter()
        result = f()
        times.append(time.perf_counter() - t)
    return min(times), result


if __name__ == "__main__":
    t_col, a = best_of(columnar)
    t_obj, b = best_of(per_frame_dpkt, 1)
    assert a == b, "the two builders disagree"
    print(f"columnar (numpy)     : {t_col * 1e3:8.1f} ms")
    print(f"one dpkt object/frame: {t_obj * 1e3:8.1f} ms")
    print(f"ratio                : {t_obj / t_col:8.1f}x")
