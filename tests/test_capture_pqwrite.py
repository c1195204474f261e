"""pqwrite (our Parquet encoder) → files that pyarrow and polars read back to the exact table.

Round trips on generated columns (hypothesis: nulls, runs, wide values, sliced batches), on the
bundled traces and on every real capture; the kernels' output stays within the buffer the
writer gives them (checked with numba's bounds checking on, in a child process).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from replay.capture import read_captures
from replay.capture.ingest import ingest
from replay.capture.pqwrite import ParquetFileWriter
from replay.capture.schema import FRAMES_SCHEMA
from replay.errors import TraceError
from tests.oracle import corpus_dir

REPO = Path(__file__).resolve().parent.parent
CORPUS = corpus_dir()

SCHEMA = pa.schema([
    pa.field("u8", pa.uint8()),
    pa.field("u16", pa.uint16()),
    pa.field("u32", pa.uint32()),
    pa.field("u32_plain", pa.uint32()),
    pa.field("u64", pa.uint64(), nullable=False),
    pa.field("i64", pa.int64()),
    pa.field("flag", pa.bool_()),
    pa.field("mac", pa.binary(6)),
    pa.field("addr", pa.binary(16)),
    pa.field("kind", pa.dictionary(pa.int8(), pa.string())),
    pa.field("req", pa.uint32(), nullable=False),
])  # fmt: skip


def _values(rng: np.random.Generator, n: int, dtype: type, bits: int, shape: str) -> np.ndarray:
    """n values of `dtype`: runs of a few values, few distinct values, or anything."""
    hi = 1 << bits
    if shape == "runs":
        return np.repeat(rng.integers(0, min(hi, 5), n), rng.integers(1, 40, n))[:n].astype(dtype)
    if shape == "few":
        return rng.integers(0, min(hi, 7), n).astype(dtype)
    return rng.integers(0, hi, n, dtype=np.uint64).astype(dtype)


def _batch(rng: np.random.Generator, n: int, null_rate: float, shape: str) -> pa.RecordBatch:
    def mask() -> np.ndarray | None:
        return None if null_rate == 0 else rng.random(n) < null_rate

    def rows(width: int) -> list[bytes]:
        return [bytes(r) for r in _values(rng, n * width, np.uint8, 8, shape).reshape(n, width)]

    i64 = _values(rng, n, np.uint64, 64, shape).view(np.int64)
    if shape == "runs":  # timestamps: rising with jitter, sometimes going back
        i64 = 1_700_000_000_000_000_000 + np.cumsum(rng.integers(-1000, 10**6, n))
    cols = [
        pa.array(_values(rng, n, np.uint8, 8, shape), mask=mask()),
        pa.array(_values(rng, n, np.uint16, 16, shape), mask=mask()),
        pa.array(_values(rng, n, np.uint32, 32 if shape == "any" else 12, shape), mask=mask()),
        pa.array(_values(rng, n, np.uint32, 32, shape), mask=mask()),
        pa.array(np.arange(1, n + 1, dtype=np.uint64) * (1 if shape != "any" else 3)),
        pa.array(i64, mask=mask()),
        pa.array(rng.random(n) < 0.5, mask=mask()),
        pa.array(rows(6), pa.binary(6), mask=mask()),
        pa.array(rows(16), pa.binary(16), mask=mask()),
        pa.DictionaryArray.from_arrays(
            pa.array(rng.integers(0, 3, n).astype(np.int8), mask=mask()), pa.array(["gre", "vxlan", "é"])
        ),
        pa.array(_values(rng, n, np.uint32, 32, shape)),
    ]
    return pa.record_batch(cols, schema=SCHEMA)


def _same(got: pa.Table, ref: pa.Table) -> None:
    """Equal values column by column (dictionary columns compared as their strings)."""
    assert got.schema.remove_metadata() == ref.schema.remove_metadata()
    for name in ref.column_names:
        a, b = got.column(name), ref.column(name)
        if pa.types.is_dictionary(a.type):
            a, b = a.cast(pa.string()), b.cast(pa.string())
        assert a.equals(b), name


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 2**32 - 1),
    sizes=st.lists(st.integers(1, 700), min_size=0, max_size=3),
    null_rate=st.sampled_from([0.0, 0.3, 0.95, 1.0]),
    shape=st.sampled_from(["runs", "few", "any"]),
    offset=st.integers(0, 9),
)
def test_round_trip(tmp_path: Path, seed: int, sizes: list[int], null_rate: float, shape: str,
                    offset: int) -> None:  # fmt: skip
    rng = np.random.default_rng(seed)
    batches = [_batch(rng, n, null_rate, shape) for n in sizes]
    # a sliced batch: buffers that do not start at the first value
    batches = [b.slice(min(offset, b.num_rows - 1)) if i == 0 else b for i, b in enumerate(batches)]
    out = tmp_path / "t.parquet"
    zstd = ("u32_plain", "kind", "i64") if seed % 2 else ()  # plain, dictionary and delta pages
    with ParquetFileWriter(out, SCHEMA, plain=("u32_plain",), stats=("u64", "i64", "req"), zstd=zstd) as w:
        for b in batches:
            w.write_batch(b)
        w.add_key_value_metadata({"k": "v"})
    ref = pa.Table.from_batches(batches, schema=SCHEMA)
    got = pq.read_table(out)
    _same(got, ref)
    assert pq.read_metadata(out).metadata[b"k"] == b"v"
    if batches and ref.num_rows:
        assert pl.read_parquet(out).equals(pl.from_arrow(ref))  # type: ignore[union-attr]
    meta = pq.read_metadata(out)
    assert meta.num_rows == ref.num_rows and meta.num_row_groups == len(batches)
    for g, b in enumerate(batches):
        for name in ("u64", "i64", "req"):
            col = b.column(name)
            st_ = meta.row_group(g).column(SCHEMA.names.index(name)).statistics
            if col.null_count == len(col):
                continue
            assert (st_.min, st_.max, st_.null_count) == (
                pa.compute.min(col).as_py(), pa.compute.max(col).as_py(), col.null_count)


def test_schema_metadata_set_at_close(tmp_path: Path) -> None:
    """Schema metadata given after the batches (the run directory's config, known only after
    the replay) makes the same file, byte for byte, as the schema carrying it from the start."""
    rng = np.random.default_rng(11)
    batches = [_batch(rng, n, 0.3, "any") for n in (1000, 2500)]
    md = {b"stack_replay.run": b'{"seed": 1}'}
    early, late = tmp_path / "early.parquet", tmp_path / "late.parquet"
    with ParquetFileWriter(early, SCHEMA.with_metadata(md), zstd=("i64",)) as w:
        for b in batches:
            w.write_batch(b)
    with ParquetFileWriter(late, SCHEMA, zstd=("i64",)) as w:
        for b in batches:
            w.write_batch(b)
        w.replace_schema_metadata(md)
    assert late.read_bytes() == early.read_bytes()
    assert pq.read_table(late).schema.metadata == md


def test_unsupported_type_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="not supported"):
        ParquetFileWriter(tmp_path / "x.parquet", pa.schema([pa.field("s", pa.string())]))


def _ingest_matches_reader(paths: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "frames.parquet"
    ingest(paths, out)
    ref = read_captures(paths, sha256=False).table
    got = pq.read_table(out)
    assert got.schema.remove_metadata() == FRAMES_SCHEMA
    _same(got, ref)


def test_bundled_traces_ingest_to_the_reader_table(tmp_path: Path) -> None:
    traces = sorted((REPO / "traces").glob("*.pcap*"))
    assert traces
    _ingest_matches_reader(traces, tmp_path)


def test_a_capture_without_frames_gives_an_empty_table(tmp_path: Path) -> None:
    from tests import capbuild as cb

    src = tmp_path / "empty.pcap"
    src.write_bytes(cb.pcap([]))
    out = tmp_path / "frames.parquet"
    ingest([src], out)
    t = pq.read_table(out)
    assert t.num_rows == 0 and t.schema.remove_metadata() == FRAMES_SCHEMA
    assert pl.read_parquet(out).shape == (0, len(FRAMES_SCHEMA))


@pytest.mark.corpus
@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"real-capture corpus not found at {CORPUS}")
def test_real_captures_ingest_to_the_reader_table(tmp_path: Path) -> None:
    """Every real capture our reader takes: the Parquet file reads back to its table."""
    done = 0
    for p in sorted(CORPUS.iterdir()):
        if not p.is_file() or p.suffix in (".md", ".tsv") or p.name == "SHA256SUMS":
            continue
        try:
            _ingest_matches_reader([p], tmp_path)
        except TraceError:
            continue  # refused by the reader (tests/test_capture_oracle.py checks which)
        done += 1
    assert done >= 40


_BOUNDS_CHILD = """
import sys
sys.path.insert(0, sys.argv[1])
import numpy as np, pyarrow as pa
from tests.test_capture_pqwrite import _batch, SCHEMA
from replay.capture.pqwrite import ParquetFileWriter
rng = np.random.default_rng(7)
for n in (1, 2, 7, 8, 9, 31, 127, 128, 129, 300):
    for shape in ("runs", "few", "any"):
        for rate in (0.0, 0.5, 1.0):
            # a writer per batch: its buffer is then exactly what the batch asked for
            with ParquetFileWriter(sys.argv[2], SCHEMA, plain=("u32_plain",), stats=("u64",)) as w:
                w.write_batch(_batch(rng, n, rate, shape))
print("ok")
"""


@pytest.mark.slow
def test_kernels_stay_inside_their_buffers(tmp_path: Path) -> None:
    """Compiled with bounds checks (a fresh numba cache), an out-of-bounds store raises instead
    of corrupting memory: small batches of every shape, where padding dominates."""
    env = dict(os.environ, NUMBA_BOUNDSCHECK="1", NUMBA_CACHE_DIR=str(tmp_path / "nbcache"))
    r = subprocess.run([sys.executable, "-c", _BOUNDS_CHILD, str(REPO), str(tmp_path / "b.parquet")],
                       capture_output=True, text=True, env=env, timeout=600)  # fmt: skip
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]
