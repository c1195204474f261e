"""Generate a large synthetic capture (pcap or pcapng) for reader benchmarks, vectorised.

Frames: Ethernet + IPv4 + TCP (60 %) or UDP (40 %), 1,000 flows, payloads of 0-160 bytes
(frames 54-214 bytes, mean ~120): the small-packet regime where a reader's per-frame cost,
not I/O, decides the rate.

    python benchmarks/gen_capture.py OUT.pcap --frames 1000000 [--pcapng] [--seed 1]
"""

from __future__ import annotations

import argparse
import struct

import numpy as np


def _csum_free_headers(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame header bytes (n, 54) and payload lengths."""
    tcp = rng.random(n) < 0.6
    flow = rng.integers(0, 1000, n)
    pay = rng.integers(0, 161, n)
    hdr = np.zeros((n, 54), np.uint8)
    hdr[:, 0:6] = [0x02, 0, 0, 0, 0, 1]
    hdr[:, 6:12] = [0x02, 0, 0, 0, 0, 2]
    hdr[:, 12:14] = [0x08, 0x00]
    iplen = np.where(tcp, 40, 28) + pay
    hdr[:, 14] = 0x45
    hdr[:, 16] = iplen >> 8
    hdr[:, 17] = iplen & 0xFF
    ident = np.arange(n) & 0xFFFF
    hdr[:, 18] = ident >> 8
    hdr[:, 19] = ident & 0xFF
    hdr[:, 20] = 0x40
    hdr[:, 22] = 64
    hdr[:, 23] = np.where(tcp, 6, 17)
    hdr[:, 26:30] = [10, 0, 0, 1]
    hdr[:, 30] = 10
    hdr[:, 31] = 1
    hdr[:, 32] = flow >> 8
    hdr[:, 33] = flow & 0xFF
    sport = 10000 + flow
    hdr[:, 34] = sport >> 8
    hdr[:, 35] = sport & 0xFF
    hdr[:, 36:38] = [0x01, 0xBB]
    # UDP: length + zero checksum in bytes 38-41; TCP: seq 38-41, ack 42-45, offset, flags.
    ulen = 8 + pay
    hdr[:, 38] = np.where(tcp, 0, ulen >> 8)
    hdr[:, 39] = np.where(tcp, 0, ulen & 0xFF)
    hdr[:, 46] = np.where(tcp, 0x50, 0)
    hdr[:, 47] = np.where(tcp, 0x10, 0)
    caplen = np.where(tcp, 54, 42) + pay
    return hdr, caplen


def generate(path: str, frames: int, pcapng: bool = False, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    with open(path, "wb") as f:
        if pcapng:
            shb_opts = b""
            shb = struct.pack("<IIIHHq", 0x0A0D0D0A, 28 + len(shb_opts), 0x1A2B3C4D, 1, 0, -1)
            f.write(shb + shb_opts + struct.pack("<I", 28))
            f.write(struct.pack("<IIHHI", 1, 20, 1, 0, 262144) + struct.pack("<I", 20))
        else:
            f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        step = 1 << 18
        t0 = 1_700_000_000_000_000
        for start in range(0, frames, step):
            n = min(step, frames - start)
            hdr, caplen = _csum_free_headers(rng, n)
            ts = t0 + (start + np.arange(n, dtype=np.int64)) * 7  # µs
            rec_hdr = 28 if pcapng else 16
            pad = (-caplen) % 4 if pcapng else np.zeros(n, np.int64)
            size = rec_hdr + caplen + pad + (4 if pcapng else 0)
            ends = np.cumsum(size)
            begins = ends - size
            out = np.zeros(int(ends[-1]), np.uint8)
            u32 = lambda off, v, out=out: out.__setitem__(  # noqa: E731
                (off[:, None] + np.arange(4)),
                np.asarray(v, np.uint32)[:, None].view(np.uint8).reshape(-1, 4),
            )
            data0 = begins + rec_hdr
            idx = data0[:, None] + np.arange(54)
            m = np.arange(54) < caplen[:, None]  # UDP frames are shorter than the 54-byte template
            out[idx[m]] = hdr[m]
            if pcapng:
                u32(begins, np.full(n, 6))
                u32(begins + 4, size)
                u32(begins + 8, np.zeros(n))
                u32(begins + 12, ts >> 32)
                u32(begins + 16, ts & 0xFFFFFFFF)
                u32(begins + 20, caplen)
                u32(begins + 24, caplen)
                u32(ends - 4, size)
            else:
                u32(begins, ts // 1_000_000)
                u32(begins + 4, ts % 1_000_000)
                u32(begins + 8, caplen)
                u32(begins + 12, caplen)
            f.write(out.tobytes())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--frames", type=int, default=1_000_000)
    ap.add_argument("--pcapng", action="store_true")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    generate(a.out, a.frames, a.pcapng, a.seed)


if __name__ == "__main__":
    main()
