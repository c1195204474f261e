"""Decompression bombs → bounded memory: a small compressed file expanding to 1 GiB streams through.

Each case writes a capture whose stored size is at most a few MB but whose decompressed stream is
1 GiB (17 records of 60 MiB of zeros, under the reader's 64 MiB record limit, then a record
claiming 4 GiB), reads it in a child process and compares the child's peak RSS with a child
reading a one-frame capture: the difference must stay far below the 1 GiB the data expands to.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
import zstandard

REPO = Path(__file__).resolve().parent.parent
RECORD = 60 << 20  # bytes of zeros per record: below walk.MAX_RECORD (64 MiB)
RECORDS = 17  # 17 x 60 MiB ≈ 1 GiB decompressed
LIMIT_MIB = 400  # allowed RSS above the one-frame baseline (1 GiB would not fit)

_CHILD = """
import json, resource, sys
from replay.capture import FrameReader
warnings = []
reader = FrameReader([sys.argv[1]], on_warning=warnings.append)
frames = sum(b.num_rows for b in reader)
print(json.dumps({"frames": frames, "warnings": warnings,
                  "rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def _stream(compress, flush) -> bytes:
    """pcap header, RECORDS records of RECORD zero bytes, a record claiming 4 GiB, compressed
    piece by piece (the 1 GiB is never held in memory here either)."""
    out = [compress(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))]
    zeros = bytes(1 << 20)
    for k in range(RECORDS):
        out.append(compress(struct.pack("<IIII", 1_700_000_000 + k, 0, RECORD, RECORD)))
        for _ in range(RECORD >> 20):
            out.append(compress(zeros))
    out.append(compress(struct.pack("<IIII", 1_700_000_100, 0, 0xFFFFFFF0, 0xFFFFFFF0)))
    out.append(flush())
    return b"".join(out)


def _gzip() -> bytes:
    z = zlib.compressobj(6, zlib.DEFLATED, 31)
    return _stream(z.compress, z.flush)


def _zstd() -> bytes:
    z = zstandard.ZstdCompressor(level=3).compressobj()
    return _stream(z.compress, z.flush)


def _read_in_child(path: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    p = subprocess.run([sys.executable, "-c", _CHILD, str(path)], env=env, capture_output=True,
                       text=True, check=True, timeout=300)  # fmt: skip
    return json.loads(p.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def baseline_kib(tmp_path_factory: pytest.TempPathFactory) -> int:
    from tests import capbuild as cb

    p = tmp_path_factory.mktemp("bomb") / "one.pcap"
    p.write_bytes(cb.pcap([(1, 0, cb.udp4(sport=1, dport=2))]))
    return int(_read_in_child(p)["rss_kib"])


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["gzip", "zstd"])
def test_one_gib_bomb_streams_in_bounded_memory(tmp_path: Path, kind: str, baseline_kib: int) -> None:
    stored = {"gzip": _gzip, "zstd": _zstd}[kind]()
    assert len(stored) < 4 << 20  # a small file...
    p = tmp_path / f"bomb.{kind}"
    p.write_bytes(stored)
    got = _read_in_child(p)
    # ...whose 1 GiB of records all arrive, then the 4 GiB claim stops the reading.
    assert got["frames"] == RECORDS
    assert len(got["warnings"]) == 1
    assert "claims 4294967280 bytes (more than 64 MiB)" in got["warnings"][0]
    assert f"{RECORDS} frames before it kept" in got["warnings"][0]
    extra_mib = (got["rss_kib"] - baseline_kib) / 1024
    assert extra_mib < LIMIT_MIB, f"{kind}: peak RSS {extra_mib:.0f} MiB above the one-frame read"



def test_zstd_skippable_frame_of_1_gib_is_skipped_in_bounded_memory() -> None:
    """A skippable frame (RFC 8878 §3.1.2) of 1 GiB, streamed past without being held, then a
    real frame: its bytes come out, and the framer never buffers more than a read step."""
    from replay.capture.source import _RAW_STEP, _ZstdFrames

    payload = b"after the skippable frame" * 100

    class Raw:
        def __init__(self) -> None:
            self.head = struct.pack("<II", 0x184D2A5E, 1 << 30)
            self.zeros = 1 << 30
            self.tail = zstandard.ZstdCompressor().compress(payload)
            self.most = 0  # largest buffer the framer held when asking for more

        def read(self, n: int) -> bytes:
            self.most = max(self.most, len(framer._buf))
            if self.head:
                out, self.head = self.head, b""
                return out
            if self.zeros:
                k = min(n, self.zeros)
                self.zeros -= k
                return bytes(k)
            out, self.tail = self.tail, b""
            return out

    raw = Raw()
    framer = _ZstdFrames(raw.read)
    out = b""
    while chunk := framer.read():
        out += chunk
    assert out == payload
    assert raw.zeros == 0 and raw.most <= 2 * _RAW_STEP
