"""Damaged input never crashes, hangs or balloons the reader: only TraceError may escape.

Hypothesis mutates real captures (../shared/traces-real when present, else hand-built ones) and
feeds random bytes behind valid pcap / pcapng headers; every result must still be a well-formed
frames table.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from replay.capture import FRAMES_SCHEMA, read_captures
from replay.errors import TraceError
from tests import capbuild as cb
from tests.oracle import corpus_dir

CORPUS = corpus_dir()


def _seeds() -> list[bytes]:
    seeds = [
        cb.pcap([(1, 2, cb.udp4()), (3, 4, cb.udp4(sport=7))]),
        cb.shb() + cb.idb(1, tsresol=9) + cb.epb(0, 5, cb.udp4()) + cb.spb(cb.udp4()),
    ]
    if CORPUS.is_dir():
        for p in sorted(CORPUS.iterdir()):
            if p.is_file() and p.stat().st_size < 50_000 and p.suffix in (".pcap", ".pcapng", ".cap"):
                seeds.append(p.read_bytes())
    return seeds


SEEDS = _seeds()
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _read(tmp_path: Path, data: bytes) -> None:
    p = tmp_path / "fuzz.bin"
    p.write_bytes(data)
    try:
        cap = read_captures([p])
    except TraceError:
        return
    t = cap.table
    assert t.schema == FRAMES_SCHEMA
    assert t.num_rows == cap.inputs[0].frames
    assert t.column("frame").to_pylist() == list(range(1, t.num_rows + 1))
    caps = t.column("cap_len").to_pylist()
    assert sum(caps) <= len(data)  # nothing invented


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "set", "cut", "insert", "delete", "len"]))
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set":
            data[i] = draw(st.integers(0, 255))
        elif kind == "cut":
            del data[i:]
        elif kind == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[i : i + draw(st.integers(1, 16))]
        elif i + 4 <= len(data):  # a huge or tiny length field somewhere
            v = draw(st.sampled_from([0, 1, 11, 12, 0x7FFFFFFF, 0xFFFFFFFF, 0x10000000]))
            data[i : i + 4] = struct.pack("<I", v)
    return bytes(data)


@FUZZ
@given(data=mutated())
def test_mutated_captures_only_raise_trace_error(tmp_path: Path, data: bytes) -> None:
    _read(tmp_path, data)


HEADERS = [
    cb.pcap([]),
    cb.pcap([], be=True, ns=True),
    cb.pcap([], modified=True),
    cb.pcap([], linktype=127),
    cb.pcap([], linktype=113),
    cb.pcap([], linktype=101),
    cb.shb() + cb.idb(1),
    cb.shb(be=True) + cb.idb(276, be=True),
]


@FUZZ
@given(head=st.sampled_from(HEADERS), body=st.binary(max_size=600))
def test_random_bytes_after_a_valid_header(tmp_path: Path, head: bytes, body: bytes) -> None:
    _read(tmp_path, head + body)


@FUZZ
@given(data=st.binary(max_size=300))
def test_random_bytes(tmp_path: Path, data: bytes) -> None:
    _read(tmp_path, data)


@FUZZ
@given(
    link=st.sampled_from([0, 1, 12, 101, 105, 107, 108, 113, 127, 228, 229, 276, 147]),
    frames=st.lists(st.binary(max_size=120), max_size=6),
)
def test_random_frames_under_every_link_type(tmp_path: Path, link: int, frames: list[bytes]) -> None:
    """Every decoder path sees garbage frames of every length."""
    _read(tmp_path, cb.pcap([(k, 0, f) for k, f in enumerate(frames)], linktype=link))


@pytest.mark.parametrize("seed", range(min(len(SEEDS), 40)))
def test_every_truncation_point_keeps_complete_frames(tmp_path: Path, seed: int) -> None:
    """Cut a capture at 24 points: frames before the cut stay and equal the uncut read."""
    data = SEEDS[seed]
    p = tmp_path / "full"
    p.write_bytes(data)
    try:
        whole = read_captures([p])
    except TraceError:
        return
    full = whole.table
    # A Simple Packet Block takes the next timestamp; cut before it, that one is gone.
    cols = ["cap_len", "wire_len", "iface", "linktype", "src", "dst", "sport", "flow", "error"]
    if whole.inputs[0].untimed_frames == 0:
        cols.append("ts_ns")
    step = max(1, len(data) // 24)
    for cut in range(0, len(data), step):
        q = tmp_path / "cut"
        q.write_bytes(data[:cut])
        warnings: list[str] = []
        try:
            t = read_captures([q], on_warning=warnings.append).table
        except TraceError:
            continue
        assert t.num_rows <= full.num_rows
        assert t.select(cols).to_pylist() == full.slice(0, t.num_rows).select(cols).to_pylist()
        if t.num_rows < full.num_rows and cut > 0 and cut not in _boundaries(data):
            assert warnings and "at byte" in warnings[0]


def _boundaries(data: bytes) -> set[int]:
    """Offsets where a capture may end cleanly (after the header and after each record/block)."""
    out = set()
    if data[:4] == b"\n\r\r\n":
        pos, o = 0, "<"
        while pos + 12 <= len(data):
            if data[pos : pos + 4] == b"\n\r\r\n":
                o = "<" if data[pos + 8 : pos + 12] == b"\x4d\x3c\x2b\x1a" else ">"
            (n,) = struct.unpack(o + "I", data[pos + 4 : pos + 8])
            if n < 12:
                break
            pos += n
            out.add(pos)
        return out
    o = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1", b"\x34\xcd\xb2\xa1") else ">"
    rec = 24 if data[:4] in (b"\x34\xcd\xb2\xa1", b"\xa1\xb2\xcd\x34") else 16
    pos = 24
    out.add(pos)
    while pos + 16 <= len(data):
        (n,) = struct.unpack(o + "I", data[pos + 8 : pos + 12])
        pos += rec + n
        out.add(pos)
    return out


def _compress(kind: str, data: bytes) -> bytes:
    import bz2
    import gzip
    import lzma

    import zstandard

    if kind == "zstd":  # two frames with checksums and a skippable frame between
        zc = zstandard.ZstdCompressor(level=3, write_checksum=True)
        half = len(data) // 2
        skip = struct.pack("<II", 0x184D2A50, 3) + b"abc"
        return zc.compress(data[:half]) + skip + zc.compress(data[half:])
    if kind == "gzip":  # two members
        half = len(data) // 2
        return gzip.compress(data[:half]) + gzip.compress(data[half:])
    return lzma.compress(data) if kind == "xz" else bz2.compress(data)


@st.composite
def mutated_compressed(draw: st.DrawFn) -> tuple[str, bytes]:
    kind = draw(st.sampled_from(["zstd", "gzip", "xz", "bzip2"]))
    data = bytearray(_compress(kind, draw(st.sampled_from(SEEDS))))
    magic = {"zstd": 4, "gzip": 2, "xz": 6, "bzip2": 3}[kind]
    for _ in range(draw(st.integers(1, 4))):
        if len(data) <= magic:
            break
        i = draw(st.integers(magic, len(data) - 1))  # keep the magic: exercise the decompressor
        op = draw(st.sampled_from(["flip", "cut", "insert", "delete", "len"]))
        if op == "flip":
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "cut":
            del data[i:]
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[i : i + draw(st.integers(1, 16))]
        elif i + 3 <= len(data):  # a zstd block header claiming the largest size
            data[i : i + 3] = draw(st.sampled_from([b"\xff\xff\xff", b"\xfd\xff\x1f", b"\x00\x00\x00"]))
    return kind, bytes(data)


@FUZZ
@given(case=mutated_compressed())
def test_mutated_compressed_streams_only_raise_trace_error(tmp_path: Path, case: tuple[str, bytes]) -> None:
    kind, data = case
    p = tmp_path / "fuzz.bin"
    p.write_bytes(data)
    try:
        cap = read_captures([p])
    except TraceError:
        return
    t = cap.table
    assert t.schema == FRAMES_SCHEMA
    assert cap.inputs[0].compression == kind
    assert t.num_rows == cap.inputs[0].frames
    assert t.column("frame").to_pylist() == list(range(1, t.num_rows + 1))
