"""Tables → a run directory on disk, written so that a killed run never looks finished.

Every file is written into a sibling temporary directory; `run.json` goes last; then the directory
is renamed into place. A reader treats a directory without `run.json` as incomplete.
"""

from __future__ import annotations

import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from replay.errors import RunError

RUN_FORMAT = "stack-replay-run/1"
TABLES = ("frames", "packets", "cpu", "events")
_META_KEY = b"stack_replay.run"


def _dictionary_columns(table: pa.Table, sample: int = 4096) -> list[str]:
    """Columns worth Parquet dictionary encoding: all but those whose values are mostly distinct
    (times, frame numbers, sequence numbers), judged on an evenly spaced sample. On those the
    writer builds a dictionary, overflows it and falls back, for nothing: skipping them cut the
    1M-frame flood's writes from 0.76 to 0.67 s of CPU and the files from 24 to 19 MB."""
    n = table.num_rows
    if n == 0:
        return list(table.column_names)
    idx = pa.array(np.linspace(0, n - 1, num=min(n, sample)).astype(np.int64))
    keep = []
    for name in table.column_names:
        col = table.column(name)
        if pa.types.is_dictionary(col.type):
            keep.append(name)
            continue
        part = col.take(idx)
        if pc.count_distinct(part).as_py() <= len(part) // 2:
            keep.append(name)
    return keep


def _write_parquet(table: pa.Table, path: Path, meta: bytes, name: str = "") -> None:
    md = dict(table.schema.metadata or {})
    md[_META_KEY] = meta
    table = table.replace_schema_metadata(md)
    try:
        _write_own(table, path, meta, name)
        return
    except TypeError:  # a column type our encoder does not write (events' int16): pyarrow's
        pass
    # zstd level 1: most of the columns are small repeated integers, and the writer is on the
    # end-to-end budget of `replay run` (measured in benchmarks/bench_run.py)
    pq.write_table(table, path, compression="zstd", compression_level=1, write_statistics=False,
                   use_dictionary=_dictionary_columns(table))


def _write_own(table: pa.Table, path: Path, meta: bytes, name: str) -> None:
    """The table through the project's own Parquet encoder (capture/pqwrite.py), one row group
    per million rows. The frames table with the options `replay ingest` uses; the others with
    every page compressed with zstd level 1 (their pages are dictionary indices and
    delta-packed times, which zstd shrinks 4-7x for little CPU). On the 1M-frame flood, against
    pyarrow's writer (zstd 1, dictionaries where sampled values repeat): frames 0.23 → 0.05 CPU-s,
    packets 0.34 → 0.12 CPU-s and 11 → 1.8 MB, cpu 0.15 → 0.08 CPU-s and 2.6 → 0.7 MB
    (/tmp measurements written up in docs/design-notes.md "Speed"). Raises TypeError (before
    creating the file) for a column type the encoder does not write."""
    from replay.capture.ingest import PLAIN_COLUMNS, STATS_COLUMNS, ZSTD_COLUMNS
    from replay.capture.pqwrite import ParquetFileWriter

    if name == "frames":
        opts: dict[str, tuple[str, ...]] = {
            "plain": PLAIN_COLUMNS, "stats": STATS_COLUMNS, "zstd": ZSTD_COLUMNS}
    else:
        opts = {"zstd": tuple(table.column_names)}
    writer = ParquetFileWriter(path, table.schema, **opts)
    ok = False
    try:
        for batch in table.to_batches(max_chunksize=1 << 20):
            writer.write_batch(batch)
        writer.add_key_value_metadata({_META_KEY.decode(): meta.decode()})
        writer.close()
        ok = True
    finally:
        if not ok:
            writer.f.close()


def write_run(
    run_dir: str | os.PathLike[str],
    run_json: dict[str, Any],
    tables: dict[str, pa.Table],
) -> Path:
    """Write `tables` (frames, packets, cpu, events) and run.json into `run_dir`, atomically."""
    final = Path(run_dir)
    if final.exists() and not (final / "run.json").exists() and (
        not final.is_dir() or any(final.iterdir())
    ):
        # never replace something that is not a finished run: a mistyped -o must not wipe a folder
        raise RunError(
            f"{final}: exists and is not a run directory; choose another -o or remove it yourself"
        )
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.partial-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    meta = json.dumps(
        {"format": RUN_FORMAT, "config": run_json.get("config"), "seed": run_json.get("seed")},
        sort_keys=True,
        default=str,
    ).encode()
    # the files are independent and pyarrow's writer releases the GIL: write them side by side
    # (1M-frame flood: frames 0.21 s, packets 0.35 s, cpu 0.18 s one after another)
    names = [name for name in TABLES if name in tables]
    with ThreadPoolExecutor(max_workers=max(1, min(len(names), os.cpu_count() or 1))) as pool:
        jobs = [pool.submit(_write_parquet, tables[n], tmp / f"{n}.parquet", meta, n) for n in names]
        for job in jobs:
            job.result()
    body = dict(run_json)
    body["format"] = RUN_FORMAT
    (tmp / "run.json").write_text(json.dumps(body, indent=1, sort_keys=False, default=str) + "\n")
    old = None
    if final.exists():
        old = final.parent / f".{final.name}.old-{os.getpid()}"
        final.rename(old)
    tmp.rename(final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return final


@dataclass
class Run:
    """A finished run directory, read lazily."""

    path: Path
    meta: dict[str, Any]

    def scan(self, name: str) -> pl.LazyFrame:
        f = self.path / f"{name}.parquet"
        if not f.exists():
            raise RunError(f"{self.path}: {name}.parquet is missing; re-run `replay run`")
        return pl.scan_parquet(f)

    def table(self, name: str) -> pl.DataFrame:
        return self.scan(name).collect()

    @property
    def counters(self) -> dict[str, Any]:
        return dict(self.meta.get("counters", {}))


def read_run(run_dir: str | os.PathLike[str]) -> Run:
    """Open a run directory; a missing or unfinished one is a RunError naming it."""
    p = Path(run_dir)
    if not p.exists():
        raise RunError(f"{p}: no such run directory; make one with `replay run TRACE -o {p}`")
    if not p.is_dir():
        raise RunError(f"{p}: not a run directory (it is a file); pass the folder `replay run -o` wrote")
    rj = p / "run.json"
    if not rj.exists():
        raise RunError(f"{p}: no run.json, so the run is incomplete or this is not a run directory")
    try:
        meta = json.loads(rj.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise RunError(f"{rj}: unreadable run.json ({e}); re-run `replay run`") from None
    if meta.get("format") != RUN_FORMAT:
        raise RunError(f"{rj}: format {meta.get('format')!r}, expected {RUN_FORMAT!r}")
    return Run(p, meta)
