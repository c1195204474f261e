"""Capture files → FRAMES.parquet, written row group by row group (memory stays bounded).

The file is written under a temporary name and renamed when complete, so an interrupted ingest
never leaves a file that looks finished. The inputs (path, format, blake3 of the stored bytes,
frames, link types, warnings) go into the Parquet key-value metadata as JSON under
`replay.inputs`.
"""

from __future__ import annotations

import json
import os
import queue
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from replay.capture.pqwrite import ParquetFileWriter
from replay.capture.reader import CaptureInput, Decoded, FrameReader
from replay.capture.schema import FRAMES_SCHEMA
from replay.errors import TraceError

# The frames file is written by our own encoder (pqwrite.py): pyarrow's ParquetWriter cost
# 0.245 CPU-s per million frames with the best options found (0.21 with every option off),
# pqwrite ≈0.06, the largest share of `replay ingest`'s time per frame (benchmarks/
# bench_reader.py --writers compares the two on the same batches). Columns whose values are
# (nearly) all distinct go plain instead of trying a dictionary; min/max statistics where range
# queries make sense.
PLAIN_COLUMNS = ("ip_id", "tcp_seq", "tcp_ack")
STATS_COLUMNS = ("frame", "ts_ns", "flow")
# zstd level 1 on the plain columns only: every other column's encoding leaves little for it.
# Measured on the benchmark capture: ≈0.004 CPU-s per million frames per column; ip_id 4.0 →
# 1.4 bytes a frame (the file: 17.1 → 10.4 MB per million frames).
ZSTD_COLUMNS = PLAIN_COLUMNS
_QUEUE_DEPTH = 2  # batches decoded ahead of the writer thread


def ingest(
    paths: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    on_warning: Callable[[str], None] | None = None,
) -> list[CaptureInput]:
    """Read every input and write the frames table to `out` (Parquet, pqwrite.py).

    The work is split between two threads, which overlap because the compiled kernels release
    the GIL: this one walks and decodes (FrameReader.decoded); a helper thread turns each decoded
    batch into columns (FrameReader.finish: flows, validity bitmaps, Arrow arrays) and writes it.
    Measured per million frames: 0.10 and 0.12 CPU-s, against 0.15 and 0.07 with the whole
    reader on this thread (benchmarks/bench_reader.py --only scaling prints them per thread).
    A short queue between the two keeps memory at a few batches whatever the capture's size.
    """
    out = Path(out)
    tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
    # Each input is hashed on its own thread from the start; the digest goes into the metadata.
    # BLAKE3, not sha256: a cryptographic hash as well (`b3sum FILE` prints it), at 0.03
    # CPU-s per million frames against sha256's 0.11, which was a third of ingest's CPU time
    # (sha256 stays where DESIGN.md names it: run.json's inputs and the pipeline's job keys).
    reader = FrameReader(paths, on_warning=on_warning, sha256="background", hash="blake3")
    q: queue.Queue[Decoded | None] = queue.Queue(_QUEUE_DEPTH)
    failure: list[BaseException] = []

    def write() -> None:
        try:
            with ParquetFileWriter(
                tmp, FRAMES_SCHEMA, plain=PLAIN_COLUMNS, stats=STATS_COLUMNS, zstd=ZSTD_COLUMNS
            ) as writer:
                while (item := q.get()) is not None:
                    writer.write_batch(reader.finish(item))
                writer.add_key_value_metadata(
                    {"replay.inputs": json.dumps([i.to_dict() for i in reader.inputs])}
                )
        except BaseException as e:  # handed to the reading thread below
            failure.append(e)
            while q.get() is not None:  # let the reader finish instead of blocking
                pass

    writer = threading.Thread(target=write, name="frames-writer", daemon=True)
    writer.start()
    try:
        try:
            for item in reader.decoded():
                q.put(item)
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
