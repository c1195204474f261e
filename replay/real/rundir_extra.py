"""Tables + raw files → a run directory: store.rundir.write_run, plus files kept beside them.

A real run keeps its raw measurements (the pcap handed to tcpreplay, the capture of what was
sent, the receivers' messages) in the run directory. write_run builds the directory under a
staging name, the extras are added there, and only then is it renamed into place, so the run
still appears complete or not at all.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from replay.store import rundir


def write_run(
    run_dir: str | Path,
    run_json: dict[str, Any],
    tables: dict[str, pa.Table],
    extra_files: dict[str, Path],
    extra_tables: dict[str, pa.Table],
) -> Path:
    """write_run, with `extra_files` copied and `extra_tables` written as NAME.parquet inside."""
    final = Path(run_dir)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = final.parent / f".{final.name}.staging-{os.getpid()}"
    if staging.exists():
        shutil.rmtree(staging)
    try:
        rundir.write_run(staging, run_json, tables)
        for name, src in extra_files.items():
            shutil.copyfile(src, staging / name)
        for name, t in extra_tables.items():
            pq.write_table(t, staging / f"{name}.parquet", compression="zstd")
        old = None
        if final.exists():
            old = final.parent / f".{final.name}.old-{os.getpid()}"
            final.rename(old)
        staging.rename(final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return final
