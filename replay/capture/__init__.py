"""Capture files → the frames table (Arrow), the bulk reader every other part calls.

    cap = read_captures(["a.pcapng", "b.pcap.gz"])
    cap.table        # FRAMES_SCHEMA, frames numbered 1.. across all inputs
    cap.inputs[0]    # CaptureInput: format, compression, sha256, frames, link types, warnings

`FrameReader` streams the same table batch by batch (what `replay ingest` uses to keep memory
bounded).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import pyarrow as pa

from replay.capture.reader import CaptureInput, FrameReader
from replay.capture.schema import FRAMES_SCHEMA

__all__ = ["FRAMES_SCHEMA", "Capture", "CaptureInput", "FrameReader", "read_captures"]


@dataclass
class Capture:
    table: pa.Table  # FRAMES_SCHEMA, frames numbered 1.. across all inputs
    inputs: list[CaptureInput]


def read_captures(
    paths: Sequence[str | os.PathLike[str]],
    *,
    on_warning: Callable[[str], None] | None = None,
    sha256: bool | str = True,
) -> Capture:
    """Read every input into one frames table. Raises TraceError for a file that is not a
    capture or cannot be opened; a file cut short or corrupt part-way keeps every frame before
    the damage and adds a warning (to its CaptureInput and to on_warning).

    A regular file's sha256 (of the bytes as stored) is computed apart from the decode, when
    CaptureInput.sha256 is first read (≈0.09 CPU-s per million frames of a 145-byte-per-frame
    capture, against ≈0.13 for the whole decode), and refused with a TraceError if the file
    changed since it was read; stdin is hashed as it streams past. sha256=False skips hashing
    altogether (CaptureInput.sha256 is then ""); sha256="background" starts each file's hash on
    a thread of its own when the file is opened (worth it for a caller that will use the hash on
    a machine with a core to spare)."""
    reader = FrameReader(paths, on_warning=on_warning, sha256=sha256)
    batches = _two_threads(reader)
    table = pa.Table.from_batches(batches, schema=FRAMES_SCHEMA)
    if len(batches) > 1:
        table = table.unify_dictionaries()
    return Capture(table=table, inputs=reader.inputs)


_AHEAD = 2  # decoded batches waiting for their columns at most (bounds the extra memory)


def _two_threads(reader: FrameReader) -> list[pa.RecordBatch]:
    """The reader's batches, its two halves overlapped: this thread walks and decodes
    (FrameReader.decoded), one worker turns each decoded batch into columns (FrameReader.finish:
    flows, validity bitmaps, Arrow arrays), in order. Both halves are compiled kernels that
    release the GIL, so on two cores a capture of several batches reads in about the time of
    the longer half (as `replay ingest` does it, capture/ingest.py)."""
    batches: list[pa.RecordBatch] = []
    pending: deque[Future[pa.RecordBatch]] = deque()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="frames-columns") as pool:
        try:
            for item in reader.decoded():
                pending.append(pool.submit(reader.finish, item))
                while len(pending) > _AHEAD or (pending and pending[0].done()):
                    batches.append(pending.popleft().result())
            while pending:
                batches.append(pending.popleft().result())
        finally:
            for job in pending:
                job.cancel()
    return batches
