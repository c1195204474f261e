"""Tables → a run directory on disk, written so that a killed run never looks finished.

Every file is written into a sibling temporary directory; `run.json` goes last; then the directory
is renamed into place. A reader treats a directory without `run.json` as incomplete.
`write_run` takes the four tables at once; `RunWriter` takes each when it exists, so its encoding
overlaps whatever the caller does next (`replay run`: the replay itself).
"""

from __future__ import annotations

import json
import os
import shutil
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from replay.errors import RunError

if TYPE_CHECKING:  # imported when writing only: `replay report` need not load numba
    from replay.capture.pqwrite import ParquetFileWriter

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


class _Encoded:
    """One table on its way to a Parquet file: encoded (all batches written) by our own encoder,
    or, for a column type it does not write, kept for pyarrow's; `close` finishes the file once
    the run's metadata is known."""

    def __init__(self, table: pa.Table, path: Path, name: str) -> None:
        self.path = path
        self.table: pa.Table | None = None
        self.writer = _encode_own(table, path, name)
        if self.writer is None:
            self.table = table

    def close(self, meta: bytes) -> None:
        if self.writer is not None:
            # the same footer as a table written with the metadata from the start: it is in
            # the Arrow schema (what readers restore) and in the file's key-value metadata
            md = dict(self.writer.schema.metadata or {})
            md[_META_KEY] = meta
            self.writer.replace_schema_metadata(md)
            self.writer.add_key_value_metadata({_META_KEY.decode(): meta.decode()})
            self.writer.close()
            return
        assert self.table is not None
        md = dict(self.table.schema.metadata or {})
        md[_META_KEY] = meta
        table = self.table.replace_schema_metadata(md)
        # zstd level 1: most of the columns are small repeated integers, and the writer is on
        # the end-to-end budget of `replay run` (measured in benchmarks/bench_run.py)
        pq.write_table(table, self.path, compression="zstd", compression_level=1,
                       write_statistics=False, use_dictionary=_dictionary_columns(table))

    def abandon(self) -> None:
        if self.writer is not None:
            self.writer.f.close()


def _encode_own(table: pa.Table, path: Path, name: str) -> ParquetFileWriter | None:
    """The table's batches through the project's own Parquet encoder (capture/pqwrite.py), one
    row group per million rows, left open for the footer; None (before creating the file) for
    a column type the encoder does not write (events' int16). The frames table with the options
    `replay ingest` uses; the others with every page compressed with zstd level 1 (their pages
    are dictionary indices and delta-packed times, which zstd shrinks 4-7x for little CPU). On
    the 1M-frame flood, against pyarrow's writer (zstd 1, dictionaries where sampled values
    repeat): frames 0.23 → 0.05 CPU-s, packets 0.34 → 0.12 CPU-s and 11 → 1.8 MB, cpu 0.15 →
    0.08 CPU-s and 2.6 → 0.7 MB (/tmp measurements written up in docs/design-notes.md "Speed")."""
    from replay.capture.ingest import PLAIN_COLUMNS, STATS_COLUMNS, ZSTD_COLUMNS
    from replay.capture.pqwrite import ParquetFileWriter

    if name == "frames":
        opts: dict[str, tuple[str, ...]] = {
            "plain": PLAIN_COLUMNS, "stats": STATS_COLUMNS, "zstd": ZSTD_COLUMNS}
    else:
        opts = {"zstd": tuple(table.column_names)}
    try:
        writer = ParquetFileWriter(path, table.schema, **opts)
    except TypeError:
        return None
    ok = False
    try:
        for batch in table.to_batches(max_chunksize=1 << 20):
            writer.write_batch(batch)
        ok = True
    finally:
        if not ok:
            writer.f.close()
    return writer


class RunWriter:
    """A run directory being written: each table is encoded on a worker thread from the moment
    it is handed over (`add`), and `finish` completes the files with the run's metadata, writes
    run.json and renames the directory into place.

    Why: the frames table exists long before the replay's tables, and the replay runs on one
    core, so `replay run` encodes frames.parquet on the other core meanwhile instead of after
    the replay. Used as a context manager: leaving it without `finish` (an error) removes the
    partial directory.
    """

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        final = Path(run_dir)
        if final.exists() and not (final / "run.json").exists() and (
            not final.is_dir() or any(final.iterdir())
        ):
            # never replace something that is not a finished run: a mistyped -o must not wipe a
            # folder
            raise RunError(
                f"{final}: exists and is not a run directory; choose another -o or remove it "
                "yourself"
            )
        final.parent.mkdir(parents=True, exist_ok=True)
        self.final = final
        self.tmp = final.parent / f".{final.name}.partial-{os.getpid()}"
        if self.tmp.exists():
            shutil.rmtree(self.tmp)
        self.tmp.mkdir()
        # the files are independent and the encoder's kernels, zstd and file writes release
        # the GIL: write them side by side (1M-frame flood: frames 0.05 s, packets 0.10 s, cpu
        # 0.07 s of CPU)
        workers = max(1, min(len(TABLES), os.cpu_count() or 1))
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="run-writer")
        self._jobs: dict[str, Future[_Encoded]] = {}
        self._finished = False

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._finished:
            self.abort()

    def add(self, name: str, table: pa.Table) -> None:
        """Start writing `name`.parquet (one of TABLES) from `table`."""
        if name not in TABLES or name in self._jobs:
            raise ValueError(f"RunWriter.add: {name!r} is not one of {TABLES} or was added twice")
        self._jobs[name] = self._pool.submit(_Encoded, table, self.tmp / f"{name}.parquet", name)

    def finish(self, run_json: dict[str, Any]) -> Path:
        """Complete every file with the run's metadata (config, seed), write run.json last and
        move the directory into place."""
        meta = json.dumps(
            {"format": RUN_FORMAT, "config": run_json.get("config"), "seed": run_json.get("seed")},
            sort_keys=True,
            default=str,
        ).encode()
        def close(job: Future[_Encoded]) -> None:
            job.result().close(meta)

        # queued behind every encode, so a worker waiting here waits for one already running
        try:
            for done in [self._pool.submit(close, job) for job in self._jobs.values()]:
                done.result()
        except BaseException:
            self.abort()
            raise
        self._pool.shutdown()
        body = dict(run_json)
        body["format"] = RUN_FORMAT
        (self.tmp / "run.json").write_text(json.dumps(body, indent=1, sort_keys=False, default=str) + "\n")
        old = None
        if self.final.exists():
            old = self.final.parent / f".{self.final.name}.old-{os.getpid()}"
            self.final.rename(old)
        self.tmp.rename(self.final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        self._finished = True
        return self.final

    def abort(self) -> None:
        """Stop: wait for the encodes under way, close their files, remove the partial folder."""
        for job in self._jobs.values():
            job.cancel()
        self._pool.shutdown(wait=True)
        for job in self._jobs.values():
            if job.done() and not job.cancelled() and job.exception() is None:
                job.result().abandon()
        shutil.rmtree(self.tmp, ignore_errors=True)


def write_run(
    run_dir: str | os.PathLike[str],
    run_json: dict[str, Any],
    tables: dict[str, pa.Table],
) -> Path:
    """Write `tables` (frames, packets, cpu, events) and run.json into `run_dir`, atomically."""
    with RunWriter(run_dir) as writer:
        for name in TABLES:
            if name in tables:
                writer.add(name, tables[name])
        return writer.finish(run_json)


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
