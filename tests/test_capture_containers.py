"""Container formats → the right records: pcap variants, pcapng blocks, compression, damage."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import sys
import zlib
from pathlib import Path

import pytest
import zstandard

from replay.capture import read_captures
from replay.errors import TraceError
from tests import capbuild as cb

F1 = cb.udp4(sport=1, dport=2)
F2 = cb.udp4(sport=3, dport=4, payload=b"y" * 30)


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def _col(cap, name: str) -> list:
    return cap.table.column(name).to_pylist()


@pytest.mark.parametrize("be", [False, True])
def test_pcap_microseconds_both_byte_orders(tmp_path: Path, be: bool) -> None:
    p = _write(tmp_path, "a.pcap", cb.pcap([(1_700_000_000, 123_456, F1), (1_700_000_001, 7, F2)], be=be))
    cap = read_captures([p])
    assert _col(cap, "frame") == [1, 2]
    assert _col(cap, "ts_ns") == [1_700_000_000_123_456_000, 1_700_000_001_000_007_000]
    assert _col(cap, "cap_len") == [len(F1), len(F2)]
    assert _col(cap, "sport") == [1, 3]
    i = cap.inputs[0]
    assert (i.format, i.compression, i.frames, i.linktypes, i.warnings) == (
        "pcap",
        None,
        2,
        [1],
        [],
    )


@pytest.mark.parametrize("be", [False, True])
def test_pcap_nanoseconds(tmp_path: Path, be: bool) -> None:
    p = _write(tmp_path, "a.pcap", cb.pcap([(5, 999_999_999, F1)], be=be, ns=True))
    cap = read_captures([p])
    assert _col(cap, "ts_ns") == [5_999_999_999]
    assert cap.inputs[0].format == "pcap-ns"


def test_pcap_modified_variant_has_24_byte_records(tmp_path: Path) -> None:
    p = _write(tmp_path, "m.pcap", cb.pcap([(1, 2, F1), (3, 4, F2)], modified=True))
    cap = read_captures([p])
    assert cap.inputs[0].format == "pcap-modified"
    assert _col(cap, "ts_ns") == [1_000_002_000, 3_000_004_000]
    assert _col(cap, "dport") == [2, 4]


@pytest.mark.parametrize(
    ("modified", "extra", "fmt"),
    [(False, 4, "pcap-nokia"), (False, 8, "pcap-ss990915"), (True, 12, "pcap-ss991029")],
)
def test_pcap_variants_with_longer_record_headers(
    tmp_path: Path, modified: bool, extra: int, fmt: str
) -> None:
    """What `editcap -F nokiapcap / rh6_1pcap / suse6_3pcap` writes: extra header bytes."""
    import struct

    magic = 0xA1B2CD34 if modified else 0xA1B2C3D4
    data = struct.pack("<IHHiIII", magic, 2, 4, 0, 0, 262144, 1)
    for k, f in enumerate([F1, F2, F1]):
        data += struct.pack("<IIII", 100 + k, 5, len(f), len(f)) + b"\x07" * extra + f
    cap = read_captures([_write(tmp_path, "v.pcap", data)])
    assert cap.inputs[0].format == fmt
    assert _col(cap, "sport") == [1, 3, 1]
    assert _col(cap, "ts_ns") == [100_000_005_000, 101_000_005_000, 102_000_005_000]


def test_pcap_orig_len_and_fcs_bits_masked(tmp_path: Path) -> None:
    # Link-type field 0x14000001: FCS-length bits set (draft-ietf-opsawg-pcap §4); type is 1.
    p = _write(tmp_path, "f.pcap", cb.pcap([(1, 0, F1[:40])], orig=[1514], linktype=0x14000001))
    cap = read_captures([p])
    assert _col(cap, "linktype") == [1]
    assert (_col(cap, "wire_len"), _col(cap, "cap_len")) == ([1514], [40])


def test_pcapng_interfaces_resolutions_blocks_and_sections(tmp_path: Path) -> None:
    data = b"".join([
        cb.shb(),
        cb.idb(1, tsresol=9),                       # iface 0: ns
        cb.idb(101, tsresol=3, tsoffset=100),        # iface 1: ms, +100 s
        cb.idb(1, snaplen=50, tsresol=0x80 | 10),    # iface 2: 2^-10 s, snaplen 50
        cb.epb(0, 1_500_000_000_123_456_789, F1),
        cb.block(4, b"\x00" * 8),                    # name resolution block: skipped
        cb.epb(1, 2_000, F1[14:]),                   # raw IP on iface 1
        cb.block(0x00000BAD, b"custom!!"),           # custom block: skipped
        cb.spb(F2),                                  # iface 0 of the section; no timestamp
        cb.pb(2, 3 * 1024 + 512, F1),               # obsolete Packet Block on iface 2
        cb.block(5, b"\x00" * 12),                   # interface statistics: skipped
        cb.shb(be=True),                             # section 2, big-endian: ifaces restart
        cb.idb(1, snaplen=30, be=True),              # global iface 3, µs, snaplen 30
        cb.epb(0, 7_000_001, F2, be=True),
        cb.spb(F2, be=True),                         # snaplen rule: 30 bytes kept
    ])  # fmt: skip
    cap = read_captures([_write(tmp_path, "x.pcapng", data)])
    assert _col(cap, "iface") == [0, 1, 0, 2, 3, 3]
    assert _col(cap, "linktype") == [1, 101, 1, 1, 1, 1]
    assert _col(cap, "ts_ns") == [
        1_500_000_000_123_456_789,
        102_000_000_000,
        102_000_000_000,  # SPB: the previous packet's time
        3_500_000_000,
        7_000_001_000,
        7_000_001_000,
    ]
    assert _col(cap, "cap_len") == [len(F1), len(F1) - 14, len(F2), len(F1), len(F2), 30]
    assert _col(cap, "wire_len") == [len(F1), len(F1) - 14, len(F2), len(F1), len(F2), len(F2)]
    assert _col(cap, "sport") == [1, 1, 3, 1, 3, None]  # 30 bytes end inside IPv4
    assert _col(cap, "error")[5] == "truncated:ipv4"
    i = cap.inputs[0]
    assert (i.format, i.sections, i.interfaces, i.untimed_frames) == ("pcapng", 2, 4, 2)
    assert i.linktypes == [1, 101]


def test_pcapng_simple_packet_before_any_timestamp_takes_the_next(tmp_path: Path) -> None:
    data = cb.shb() + cb.idb(1) + cb.spb(F1) + cb.epb(0, 9_000_000, F2)
    cap = read_captures([_write(tmp_path, "s.pcapng", data)])
    assert _col(cap, "ts_ns") == [9_000_000_000, 9_000_000_000]


def test_truncated_file_keeps_complete_frames_and_names_the_offset(tmp_path: Path) -> None:
    full = cb.pcap([(1, 0, F1), (2, 0, F2), (3, 0, F1)])
    cut = len(full) - 5
    p = _write(tmp_path, "t.pcap", full[:cut])
    warnings: list[str] = []
    cap = read_captures([p], on_warning=warnings.append)
    assert cap.table.num_rows == 2
    third = 24 + 2 * 16 + len(F1) + len(F2)
    assert warnings == [
        f"{p}: cut short at byte {third}: the record there needs {16 + len(F1)} bytes, "
        f"{len(F1) + 16 - 5} remain; 2 complete frames kept"
    ]


def test_record_claiming_4gb_stops_without_allocating(tmp_path: Path) -> None:
    import struct
    import tracemalloc

    data = cb.pcap([(1, 0, F1)]) + struct.pack("<IIII", 2, 0, 0xFFFFFFF0, 0xFFFFFFF0) + b"z" * 100
    warnings: list[str] = []
    tracemalloc.start()
    cap = read_captures([_write(tmp_path, "big.pcap", data)], on_warning=warnings.append)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert cap.table.num_rows == 1
    assert peak < 200 << 20
    assert "claims 4294967280 bytes" in warnings[0]


def test_pcapng_bad_trailer_stops_with_the_frames_before(tmp_path: Path) -> None:
    bad = bytearray(cb.epb(0, 5, F2))
    bad[-1] ^= 0xFF
    data = cb.shb() + cb.idb(1) + cb.epb(0, 1, F1) + bytes(bad)
    warnings: list[str] = []
    cap = read_captures([_write(tmp_path, "b.pcapng", data)], on_warning=warnings.append)
    assert cap.table.num_rows == 1
    off = len(cb.shb() + cb.idb(1) + cb.epb(0, 1, F1))
    assert f"pcapng block at byte {off}: trailing block length differs" in warnings[0]


def test_pcapng_packet_on_undescribed_interface(tmp_path: Path) -> None:
    data = cb.shb() + cb.idb(1) + cb.epb(3, 1, F1)
    warnings: list[str] = []
    cap = read_captures([_write(tmp_path, "i.pcapng", data)], on_warning=warnings.append)
    assert cap.table.num_rows == 0
    assert "names interface 3, which its section lacks" in warnings[0]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"hello, this is text\n", "not a pcap or pcapng file"),
        (b"", "not a pcap or pcapng file"),
        (cb.pcap([], version=(1, 4)), "pcap version 1.4 is not supported (only 2.x)"),
        (
            cb.shb(version=(2, 0)) + cb.idb(1),
            "pcapng version 2.0 is not supported (only 1.0 and 1.2)",
        ),
        (
            cb.pcap([], linktype=0x00300001),
            "pcap header: reserved link-type bits are set (0x00300001)",
        ),
        (cb.pcap([])[:20], "pcap file header cut short (20 of 24 bytes)"),
    ],
)
def test_unreadable_files_raise_trace_error(tmp_path: Path, data: bytes, message: str) -> None:
    p = _write(tmp_path, "bad.pcap", data)
    with pytest.raises(TraceError) as e:
        read_captures([p])
    assert str(e.value) == f"{p}: {message}"


def test_sha256_of_the_stored_bytes_or_none_when_not_asked(tmp_path: Path) -> None:
    import hashlib

    data = cb.pcap([(1, 0, F1), (2, 0, F2)])
    p = _write(tmp_path, "h.pcap", data)
    assert read_captures([p]).inputs[0].sha256 == hashlib.sha256(data).hexdigest()
    fast = read_captures([p], sha256=False)
    assert fast.inputs[0].sha256 == ""
    assert fast.table.equals(read_captures([p]).table)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match=r"nope\.pcap: no such file"):
        read_captures([tmp_path / "nope.pcap"])


COMPRESSORS = {
    "gzip": gzip.compress,
    "zstd": lambda b: zstandard.ZstdCompressor().compress(b),
    "xz": lzma.compress,
    "bzip2": bz2.compress,
}


@pytest.mark.parametrize("kind", sorted(COMPRESSORS))
def test_compression_is_found_by_magic_not_name(tmp_path: Path, kind: str) -> None:
    raw = cb.pcap([(1, 0, F1), (2, 0, F2)])
    stored = COMPRESSORS[kind](raw)
    p = _write(tmp_path, "plain-looking.pcap", stored)  # the name says nothing
    cap = read_captures([p])
    plain = read_captures([_write(tmp_path, "p.pcap", raw)])
    assert cap.table.equals(plain.table)
    assert cap.inputs[0].compression == kind
    import hashlib

    assert cap.inputs[0].sha256 == hashlib.sha256(stored).hexdigest()


@pytest.mark.parametrize("kind", sorted(COMPRESSORS))
def test_compressed_file_cut_short_keeps_frames_before_the_damage(tmp_path: Path, kind: str) -> None:
    # > 900 kB, so that bzip2 (900 kB blocks) has a complete block before the cut.
    raw = cb.pcap([(k, 0, F1 + bytes([k % 251]) * 20 + bytes(range(k % 256))) for k in range(8000)])
    stored = COMPRESSORS[kind](raw)
    p = _write(tmp_path, "c.pcap", stored[: len(stored) * 3 // 4])
    warnings: list[str] = []
    cap = read_captures([p], on_warning=warnings.append)
    assert 0 < cap.table.num_rows < 8000
    assert len(warnings) == 1 and kind in warnings[0]
    assert cap.inputs[0].sha256 == __import__("hashlib").sha256(stored[: len(stored) * 3 // 4]).hexdigest()


def test_decompression_bomb_does_not_balloon(tmp_path: Path) -> None:
    """256 MiB of zeros compress to 256 KiB; not a capture, and found so at once."""
    import resource

    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    stored = z.compress(b"\0" * (1 << 28)) + z.flush()
    p = _write(tmp_path, "bomb.pcap", stored)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(TraceError, match="not a pcap or pcapng file \\(after gzip decompression\\)"):
        read_captures([p])
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100 * 1024  # KiB


def test_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = gzip.compress(cb.pcap([(1, 0, F1)]))

    class _Stdin:
        buffer = io.BytesIO(raw)

    monkeypatch.setattr(sys, "stdin", _Stdin)
    cap = read_captures(["-"])
    assert cap.inputs[0].path == "-"
    assert cap.inputs[0].compression == "gzip"
    assert _col(cap, "sport") == [1]
    # stdin cannot be read twice: it is hashed as it streams past.
    assert cap.inputs[0].sha256 == __import__("hashlib").sha256(raw).hexdigest()


@pytest.mark.parametrize("mode", [True, "background"])
def test_regular_file_hash_apart_from_decode_is_the_stored_bytes_hash(
    tmp_path: Path, mode: bool | str
) -> None:
    """Lazily on first use (True) or on its own thread (background): same digest, plain or
    compressed, and the same after the reader has finished with the file."""
    import hashlib

    from replay.capture import FrameReader

    plain = cb.pcap([(1, 0, F1), (2, 0, F2)])
    for name, data in [("p.pcap", plain), ("p.pcap.gz", gzip.compress(plain))]:
        p = _write(tmp_path, name, data)
        reader = FrameReader([p], sha256=mode)
        n = sum(b.num_rows for b in reader)
        assert n == 2
        info = reader.inputs[0]
        assert info.sha256 == hashlib.sha256(data).hexdigest()
        assert info.bytes_stored == len(data)
        assert info.to_dict()["sha256"] == info.sha256


@pytest.mark.parametrize("mode", [True, "background"])
def test_blake3_of_a_file_and_of_stdin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       mode: bool | str) -> None:  # fmt: skip
    """hash="blake3" (what `replay ingest` records): the digest `b3sum` prints, under the key
    "blake3"; `sha256` is then empty rather than a digest of another algorithm."""
    from blake3 import blake3

    from replay.capture import FrameReader

    data = gzip.compress(cb.pcap([(1, 0, F1), (2, 0, F2)]))
    p = _write(tmp_path, "p.pcap.gz", data)

    class _Stdin:
        buffer = io.BytesIO(data)

    monkeypatch.setattr(sys, "stdin", _Stdin)
    for path in (p, "-"):
        reader = FrameReader([path], sha256=mode, hash="blake3")
        assert sum(b.num_rows for b in reader) == 2
        info = reader.inputs[0]
        assert info.digest == blake3(data).hexdigest()
        assert info.sha256 == ""
        d = info.to_dict()
        assert d["blake3"] == info.digest and "sha256" not in d and "hash" not in d
        assert list(d)[:4] == ["path", "format", "compression", "blake3"]


def test_file_changed_between_reading_and_hashing_is_refused(tmp_path: Path) -> None:
    import os

    data = cb.pcap([(1, 0, F1), (2, 0, F2)])
    p = _write(tmp_path, "c.pcap", data)
    cap = read_captures([p])
    p.write_bytes(cb.pcap([(1, 0, F1)]))
    os.utime(p, ns=(1, 1))  # a different mtime even on a coarse clock
    with pytest.raises(TraceError) as e:
        _ = cap.inputs[0].sha256
    assert str(e.value) == f"{p}: changed while it was being read; read it again"


def test_several_files_number_frames_and_flows_across_inputs(tmp_path: Path) -> None:
    a = _write(tmp_path, "a.pcap", cb.pcap([(1, 0, F1), (2, 0, F2)]))
    b = _write(tmp_path, "b.pcapng", cb.shb() + cb.idb(1) + cb.epb(0, 3, F2) + cb.epb(0, 4, F1))
    cap = read_captures([a, b])
    assert _col(cap, "frame") == [1, 2, 3, 4]
    assert _col(cap, "flow") == [0, 1, 1, 0]
    assert [i.frames for i in cap.inputs] == [2, 2]
    assert [i.first_frame for i in cap.inputs] == [1, 3]


def test_small_chunks_and_batches_give_the_same_table(tmp_path: Path) -> None:
    """Streaming boundaries (records split across reads, many batches) change nothing."""
    import pyarrow as pa

    from replay.capture import FrameReader

    frames = [(k, k, F1 if k % 3 else F2) for k in range(500)]
    p = _write(tmp_path, "s.pcap", cb.pcap(frames))
    whole = read_captures([p]).table
    small = pa.Table.from_batches(list(FrameReader([p], batch_frames=7, chunk_bytes=100)))
    assert small.num_rows == 500
    assert small.unify_dictionaries().equals(whole)


def test_two_thread_read_keeps_batch_order_and_errors(tmp_path: Path) -> None:
    """read_captures decodes on the calling thread and builds columns on a worker: with many
    batches the table is the one-thread reader's, batch for batch (flow ids are numbered in
    order of first appearance, so order matters); an error on either side reaches the caller."""
    import pyarrow as pa

    from replay.capture import FrameReader, _two_threads

    frames = [(k, k, [F1, F2, F1 + b"x" * (k % 5)][k % 3]) for k in range(300)]
    p = _write(tmp_path, "s.pcap", cb.pcap(frames))
    one = list(FrameReader([p, p], batch_frames=7, chunk_bytes=100))
    two = _two_threads(FrameReader([p, p], batch_frames=7, chunk_bytes=100))
    assert len(two) == len(one) > 100  # chunks of 100 bytes: a batch or two per chunk
    assert pa.Table.from_batches(two).equals(pa.Table.from_batches(one))

    class FinishFails(FrameReader):
        def finish(self, item):  # type: ignore[no-untyped-def]
            if item.frame0 > 50:
                raise ValueError("finish failed")
            return super().finish(item)

    class DecodeFails(FrameReader):
        def decoded(self):  # type: ignore[no-untyped-def]
            for k, item in enumerate(super().decoded()):
                if k == 5:
                    raise TraceError(str(p), "decode failed")
                yield item

    with pytest.raises(ValueError, match="finish failed"):
        _two_threads(FinishFails([p], batch_frames=7, chunk_bytes=100))
    with pytest.raises(TraceError, match="decode failed"):
        _two_threads(DecodeFails([p], batch_frames=7, chunk_bytes=100))


def test_hash_started_after_reading(tmp_path: Path) -> None:
    """start_hash (what `replay run` calls once the reading is over) computes the same digest
    on a thread of its own; a second call or a stdin input does nothing more."""
    import hashlib

    data = cb.pcap([(1, 0, F1), (2, 0, F2)])
    p = _write(tmp_path, "h.pcap", data)
    cap = read_captures([p])
    cap.inputs[0].start_hash()
    cap.inputs[0].start_hash()
    assert cap.inputs[0].sha256 == hashlib.sha256(data).hexdigest()
    cap.inputs[0].start_hash()  # already a string: nothing to start


def test_zstd_frames_skippable_frames_and_checksums(tmp_path: Path) -> None:
    """Concatenated zstd frames (with content checksums) and a skippable frame between them
    read as one stream; every cut point inside the stream keeps the frames before it."""
    import struct

    recs = [(k, 0, F1 + bytes([k % 251]) * 40) for k in range(3000)]
    raw = cb.pcap(recs)
    half = len(raw) // 2
    zc = zstandard.ZstdCompressor(level=3, write_checksum=True)
    skip = struct.pack("<II", 0x184D2A53, 5) + b"12345"
    stored = zc.compress(raw[:half]) + skip + zc.compress(raw[half:])
    cap = read_captures([_write(tmp_path, "z.pcap", stored)])
    assert cap.table.num_rows == 3000 and cap.inputs[0].warnings == []
    assert cap.table.equals(read_captures([_write(tmp_path, "p.pcap", raw)]).table)
    kept = []
    for cut in range(4, len(stored), max(1, len(stored) // 40)):
        warnings: list[str] = []
        c = _write(tmp_path, "c.pcap", stored[:cut])
        try:
            got = read_captures([c], on_warning=warnings.append)
        except TraceError as e:  # cut before the first block: nothing to keep
            assert "zstd data is corrupt or cut short before any capture data" in str(e)
            continue
        assert len(warnings) == 1 and "zstd" in warnings[0]
        assert got.table.equals(cap.table.slice(0, got.table.num_rows))
        kept.append(got.table.num_rows)
    assert kept == sorted(kept) and 0 < kept[-1] < 3000
