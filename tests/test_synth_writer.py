"""writer: columns → pcap bytes that dpkt reads back exactly; gzip without time or name."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
from tests._synth_read import read
from hypothesis import given, settings
from hypothesis import strategies as st

from replay.synth import SynthError
from replay.synth.writer import EPOCH_NS, Capture, pcap_bytes, write_capture

frames_st = st.lists(st.binary(min_size=14, max_size=200), min_size=1, max_size=40)


@settings(max_examples=40, deadline=None)
@given(
    frames=frames_st,
    gaps=st.lists(st.integers(0, 10**9), min_size=40, max_size=40),
    nano=st.booleans(),
)
def test_round_trip_through_dpkt(tmp_path_factory, frames, gaps, nano):
    ts = np.cumsum(np.asarray(gaps[: len(frames)], dtype=np.int64))
    if not nano:
        ts = ts // 1000 * 1000  # a µs file holds µs
    out = tmp_path_factory.mktemp("w") / "x.pcap"
    write_capture(Capture(ts, list(frames), nano=nano), out)
    r = read(out)
    assert r.frames == list(frames) and r.nano == nano
    assert list(r.ts_ns) == list(ts + EPOCH_NS)
    assert r.wire_len == [len(f) for f in frames]


def test_fixed_width_array_and_list_give_the_same_bytes():
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (50, 60), dtype=np.uint8)
    ts = np.arange(50, dtype=np.int64) * 672
    assert pcap_bytes(Capture(ts, arr, True)) == pcap_bytes(
        Capture(ts, [r.tobytes() for r in arr], True)
    )


def test_header_is_classic_pcap_ethernet_snaplen_262144():
    data = pcap_bytes(Capture(np.zeros(1, dtype=np.int64), [bytes(60)], nano=False))
    assert struct.unpack("<IHHiIII", data[:24]) == (0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)


def test_gzip_header_has_no_mtime_and_no_name(tmp_path):
    out = tmp_path / "named.pcap.gz"
    write_capture(Capture(np.zeros(1, dtype=np.int64), [bytes(60)], nano=True), out)
    head = out.read_bytes()[:10]
    assert head[:3] == b"\x1f\x8b\x08" and head[3] == 0  # FLG: no FNAME
    assert head[4:8] == bytes(4)  # MTIME 0
    assert gzip.decompress(out.read_bytes())[:4] == bytes.fromhex("4d3cb2a1")


def test_output_that_is_a_directory_is_one_clear_error(tmp_path):
    with pytest.raises(SynthError, match="is a directory"):
        write_capture(Capture(np.zeros(1, dtype=np.int64), [bytes(60)], nano=True), tmp_path)
    assert list(tmp_path.iterdir()) == []
