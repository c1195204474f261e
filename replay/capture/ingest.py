"""Capture files → FRAMES.parquet, written row group by row group (memory stays bounded).

The file is written under a temporary name and renamed when complete, so an interrupted ingest
never leaves a file that looks finished. The inputs (path, format, sha256, frames, link types,
warnings) go into the Parquet key-value metadata as JSON under `replay.inputs`.
"""

from __future__ import annotations

import json
import os
import queue
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from replay.capture.reader import CaptureInput, FrameReader
from replay.capture.schema import FRAMES_SCHEMA
from replay.errors import TraceError

# Parquet settings, chosen column by column on the benchmark capture (1M frames; CPU-s of the
# writer and file size; benchmarks/bench_reader.py): the encoder's own per-value work (~0.2 CPU-s
# per million frames even uncompressed) dominates, so compression goes only where an encoding
# leaves entropy, and dictionary encoding everywhere values repeat (lengths, addresses, ports,
# flows: 1.0-1.4 MB per million values as dictionary indices, cheaper than plain + zstd).
# Measured: zstd-1 everywhere with dictionaries on the small-cardinality columns 0.283 CPU-s /
# 12.4 MB; this 0.245 CPU-s / 10.7 MB; no compression at all 0.239 / 17.1 MB.
_NO_DICT = ("frame", "ts_ns", "ip_id", "tcp_seq", "tcp_ack")  # (nearly) all distinct
_ZSTD = ("ts_ns", "ip_id", "tcp_seq", "tcp_ack")  # delta-coded or plain values with redundancy
PARQUET_OPTIONS: dict[str, Any] = {
    "compression": {n: ("zstd" if n in _ZSTD else "none") for n in FRAMES_SCHEMA.names},
    "compression_level": {n: 1 for n in _ZSTD},
    "use_dictionary": [n for n in FRAMES_SCHEMA.names if n not in _NO_DICT],
    # Min/max statistics where range queries make sense; on every column they cost ~10 % more
    # CPU (measured: 0.38 vs 0.34 CPU-s per million frames) for nothing a reader filters on.
    "write_statistics": ["frame", "ts_ns", "flow"],
    # Frame numbers count up by one and timestamps rise: delta encoding stores them in a few
    # bits each before zstd sees them, which is both cheaper and smaller (measured on the
    # benchmark capture: 0.29 vs 0.32 CPU-s and 12.4 vs 15.5 MB per million frames).
    "column_encoding": {"frame": "DELTA_BINARY_PACKED", "ts_ns": "DELTA_BINARY_PACKED"},
    # Values handed to the column encoder per call (default 1024): fewer calls per row group.
    "write_batch_size": 1 << 16,
}
_QUEUE_DEPTH = 2  # batches decoded ahead of the writer


def ingest(
    paths: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    on_warning: Callable[[str], None] | None = None,
) -> list[CaptureInput]:
    """Read every input and write the frames table to `out` (Parquet, PARQUET_OPTIONS).

    Reading and writing overlap: the Parquet writer runs on a helper thread (pyarrow releases
    the GIL while encoding and compressing), fed through a short queue, so memory holds at most
    a few batches whatever the capture's size.
    """
    out = Path(out)
    tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
    # Each input is hashed on its own thread from the start: the sha256 goes into the metadata.
    reader = FrameReader(paths, on_warning=on_warning, sha256="background")
    q: queue.Queue[pa.RecordBatch | None] = queue.Queue(_QUEUE_DEPTH)
    failure: list[BaseException] = []

    def write() -> None:
        try:
            with pq.ParquetWriter(tmp, FRAMES_SCHEMA, **PARQUET_OPTIONS) as writer:
                while (batch := q.get()) is not None:
                    writer.write_batch(batch)
                writer.add_key_value_metadata(
                    {"replay.inputs": json.dumps([i.to_dict() for i in reader.inputs])}
                )
        except BaseException as e:  # handed to the reading thread below
            failure.append(e)
            while q.get() is not None:  # let the reader finish instead of blocking
                pass

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        try:
            for batch in reader:
                q.put(batch)
        finally:
            q.put(None)
            writer.join()
        if failure:
            e = failure[0]
            if isinstance(e, OSError):
                raise TraceError(str(out), f"cannot write: {e.strerror or e}") from None
            raise e
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    return reader.inputs
