"""Timestamps + frame bytes (columns) → a classic pcap file, optionally gzip-compressed.

The bytes depend only on the inputs: no wall-clock time goes into the pcap header or the gzip
header (mtime 0, no file name), so the same scenario options give the same file.
"""

from __future__ import annotations

import gzip
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from replay.synth.options import SynthError

MAGIC_US = 0xA1B2C3D4  # pcap-savefile(5): microsecond timestamps (tcpdump's default)
MAGIC_NS = 0xA1B23C4D  # nanosecond timestamps (tcpdump --time-stamp-precision=nano)
LINKTYPE_ETHERNET = 1
SNAPLEN = 262144  # tcpdump's default snapshot length: nothing is cut

# The first packet of every synthetic capture: 2026-01-01T00:00:00Z. A fixed instant (not "now")
# keeps the output deterministic.
EPOCH_NS = 1_767_225_600 * 1_000_000_000

_REC = np.dtype([("sec", "<u4"), ("frac", "<u4"), ("caplen", "<u4"), ("wirelen", "<u4")])


@dataclass
class Capture:
    """A synthetic capture as columns: `ts_ns` (int64, ns from the first frame) and the frames.

    `frames` is either a 2-D uint8 array (every frame the same length: the fast path for floods)
    or a list of bytes.
    """

    ts_ns: np.ndarray
    frames: np.ndarray | list[bytes]
    nano: bool

    def __len__(self) -> int:
        return len(self.ts_ns)

    def frame(self, i: int) -> bytes:
        return bytes(self.frames[i])

    def lengths(self) -> np.ndarray:
        if isinstance(self.frames, np.ndarray):
            return np.full(len(self.frames), self.frames.shape[1], dtype=np.uint32)
        return np.fromiter((len(f) for f in self.frames), dtype=np.uint32, count=len(self.frames))


def merge(parts: list[Capture], nano: bool) -> Capture:
    """Several captures → one, ordered by time (ties keep the order of `parts`)."""
    ts = np.concatenate([p.ts_ns for p in parts])
    frames = [
        f
        for p in parts
        for f in (p.frames if isinstance(p.frames, list) else [bytes(r) for r in p.frames])
    ]
    order = np.argsort(ts, kind="stable")
    return Capture(ts[order], [frames[i] for i in order], nano)


def pcap_bytes(cap: Capture) -> bytes:
    """The whole pcap file for `cap`, built with numpy (no per-frame Python for fixed sizes)."""
    n = len(cap)
    ts = np.asarray(cap.ts_ns, dtype=np.int64) + EPOCH_NS
    if n and np.any(np.diff(ts) < 0):
        raise AssertionError("capture timestamps must be sorted")  # a scenario bug, not input
    unit = 1 if cap.nano else 1000
    head = struct.pack(
        "<IHHiIII", MAGIC_NS if cap.nano else MAGIC_US, 2, 4, 0, 0, SNAPLEN, LINKTYPE_ETHERNET
    )
    rec = np.empty(n, dtype=_REC)
    rec["sec"] = ts // 1_000_000_000
    rec["frac"] = (ts % 1_000_000_000) // unit
    lengths = cap.lengths()
    rec["caplen"] = lengths
    rec["wirelen"] = lengths
    if isinstance(cap.frames, np.ndarray):
        width = cap.frames.shape[1]
        out = np.empty((n, 16 + width), dtype=np.uint8)
        out[:, :16] = rec.view(np.uint8).reshape(n, 16)
        out[:, 16:] = cap.frames
        return head + out.tobytes()
    hdr = rec.tobytes()
    return head + b"".join(
        part for i, f in enumerate(cap.frames) for part in (hdr[16 * i : 16 * i + 16], f)
    )


def write_capture(cap: Capture, out: str | Path) -> Path:
    """Write `cap` to `out` (gzip when it ends in .gz) via a temporary name, then rename."""
    out = Path(out)
    if out.is_dir():
        raise SynthError(f"-o {out} is a directory: give a file name such as {out}/trace.pcap")
    if not out.parent.exists():
        raise SynthError(f"-o {out}: directory {out.parent} does not exist; create it first")
    data = pcap_bytes(cap)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            if out.name.endswith(".gz"):
                # filename="" and mtime=0: nothing time- or path-dependent in the gzip header.
                with gzip.GzipFile(
                    filename="", mode="wb", fileobj=f, compresslevel=9, mtime=0
                ) as gz:
                    gz.write(data)
            else:
                f.write(data)
        os.replace(tmp, out)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise SynthError(f"-o {out}: cannot write: {e.strerror}") from None
    return out
