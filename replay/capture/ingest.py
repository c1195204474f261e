"""Capture files → FRAMES.parquet, written row group by row group (memory stays bounded).

The file is written under a temporary name and renamed when complete, so an interrupted ingest
never leaves a file that looks finished. The inputs (path, format, sha256, frames, link types,
warnings) go into the Parquet key-value metadata as JSON under `replay.inputs`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

import pyarrow.parquet as pq

from replay.capture.reader import CaptureInput, FrameReader
from replay.capture.schema import FRAMES_SCHEMA
from replay.errors import TraceError


def ingest(
    paths: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    on_warning: Callable[[str], None] | None = None,
) -> list[CaptureInput]:
    """Read every input and write the frames table to `out` (zstd Parquet)."""
    out = Path(out)
    tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
    reader = FrameReader(paths, on_warning=on_warning)
    try:
        with pq.ParquetWriter(tmp, FRAMES_SCHEMA, compression="zstd") as writer:
            for batch in reader:
                writer.write_batch(batch)
            writer.add_key_value_metadata(
                {"replay.inputs": json.dumps([asdict(i) for i in reader.inputs])}
            )
        os.replace(tmp, out)
    except OSError as e:
        raise TraceError(str(out), f"cannot write: {e.strerror or e}") from None
    finally:
        if tmp.exists():
            tmp.unlink()
    return reader.inputs
