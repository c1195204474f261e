"""A pipeline spec → its jobs run (or taken from the cache) → summary, dataset and sweep report.

The output folder holds a lock (`.lock`, flock) while a pipeline works in it: two pipelines
writing the same folder would clean each other's temporary job folders. The kernel drops the
lock when its holder dies, even by kill -9, so a resumed pipeline never finds a stale one.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from replay.errors import PipelineError
from replay.pipeline.jobs import (
    ConfigResolver,
    JobFn,
    PlannedJob,
    Resolver,
    TraceHashes,
    clean_partials,
    payload,
    plan,
)
from replay.pipeline.progress import Progress
from replay.pipeline.spec import Spec
from replay.pipeline.summary import summary_frame, write_atomic_parquet, write_dataset


@dataclass
class PipelineResult:
    spec: Spec
    planned: list[PlannedJob]
    output: Path
    done: int = 0
    cached: int = 0
    failed: int = 0
    wall_s: float = 0.0
    summary: pl.DataFrame | None = None
    check_failures: list[str] = field(default_factory=list)
    check_notes: list[str] = field(default_factory=list)

    @property
    def jobs(self) -> int:
        return len(self.planned)

    def counts(self) -> dict[str, Any]:
        """The --json line (DESIGN.md "Pipelines"), plus the check's result if the spec has one."""
        out: dict[str, Any] = {
            "jobs": self.jobs,
            "done": self.done,
            "cached": self.cached,
            "failed": self.failed,
            "output": str(self.output),
        }
        if self.spec.check is not None:
            out["check"] = {"failures": self.check_failures, "notes": self.check_notes}
        return out

    def line(self) -> str:
        s = (
            f"{self.jobs} jobs: {self.done} done, {self.cached} cached, "
            f"{self.failed} failed → {self.output}"
        )
        if self.spec.check is not None:
            s += f"; check: {len(self.check_failures)} threshold(s) crossed"
        return s


@contextmanager
def output_lock(out: Path) -> Iterator[None]:
    out.mkdir(parents=True, exist_ok=True)
    fd = os.open(out / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise PipelineError(
                f"{out}: another pipeline (pid {holder}) is writing this output folder; wait "
                "for it "
                "or set a different output"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)


def plan_spec(
    spec: Spec, resolver: Resolver | None = None, *, save_hashes: bool = False
) -> list[PlannedJob]:
    """Resolve and key every job; cached ones carry their job.json (used by --dry-run too)."""
    hashes = TraceHashes(spec.output / ".trace-hashes.json" if spec.output.is_dir() else None)
    planned = plan(spec, resolver or ConfigResolver(), hashes, spec.output / "runs")
    if save_hashes:
        hashes.store = spec.output / ".trace-hashes.json"
        hashes.save()
    return planned


def run_pipeline(
    spec: Spec,
    *,
    workers: int,
    scheduler: str | None = None,
    force: bool = False,
    job_fn: JobFn | None = None,
    resolver: Resolver | None = None,
    progress: bool = True,
    write_baseline: bool = False,
) -> PipelineResult:
    """Run every job not already finished, then write summary.parquet, dataset/ and report.html."""
    from replay.pipeline.executors import DaskExecutor, LocalExecutor

    if job_fn is None:
        from replay.runner import run_traces

        job_fn = run_traces
    executor = DaskExecutor(scheduler) if scheduler else LocalExecutor(workers)
    t0 = time.perf_counter()
    out = spec.output
    with output_lock(out):
        runs = out / "runs"
        runs.mkdir(exist_ok=True)
        clean_partials(runs)
        planned = plan_spec(spec, resolver, save_hashes=True)
        res = PipelineResult(spec, planned, out)
        pending: list[PlannedJob] = []
        twins: dict[str, list[PlannedJob]] = {}  # jobs whose key equals a pending job's: run once
        for pj in planned:
            if pj.error is not None:
                pj.record = {"status": "failed", "error": pj.error}
                res.failed += 1
            elif pj.cached is not None and not force:
                pj.record = {**pj.cached, "cached": True}
                res.cached += 1
            elif pj.key in twins:
                twins[pj.key].append(pj)
            else:
                twins[pj.key] = [pj]  # type: ignore[index]
                pending.append(pj)
        bar = Progress(len(planned), res.cached, res.failed, enabled=progress)

        def on_done(i: int, rec: dict[str, Any]) -> None:
            for pj in twins[pending[i].key]:  # type: ignore[index]
                pj.record = {**rec, "cached": False}
                if rec.get("status") == "ok":
                    res.done += 1
                else:
                    res.failed += 1
                bar.update(rec)

        try:
            executor.run(
                [payload(pj, runs, _command(spec, pj), spec.job_reports) for pj in pending],
                job_fn,
                on_done,
            )
        finally:
            bar.close()
        finish(res, write_baseline)
    res.wall_s = time.perf_counter() - t0
    return res


def _command(spec: Spec, pj: PlannedJob) -> str:
    """How the run was made, for its run.json: the pipeline, the job, its knobs."""
    knobs = " ".join(f"{k}={v}" for k, v in pj.job.knobs.items())
    return f"replay pipeline {spec.path} (job {pj.job.index}: {pj.job.trace_label} {knobs})".strip()


def write_failures(planned: list[PlannedJob], path: Path) -> None:
    """failed.jsonl: one line per failed job with its knobs, error and (for a bug) traceback."""
    lines = [
        json.dumps(
            {
                "job": pj.job.index,
                "trace": pj.job.trace_label,
                "knobs": pj.job.knobs,
                "error": pj.record.get("error"),
                "traceback": pj.record.get("traceback"),
            },
            default=str,
        )
        for pj in planned
        if pj.record.get("status") != "ok"
    ]
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text("".join(f"{line}\n" for line in lines))
    tmp.replace(path)


def finish(res: PipelineResult, new_baseline: bool = False) -> None:
    """Write summary.parquet, dataset/ and report.html; run the spec's check (or, with
    `new_baseline`, write this sweep's summary as its baseline)."""
    from replay.pipeline.check import run_check, write_baseline
    from replay.pipeline.sweep_report import write_sweep_report

    spec, out = res.spec, res.output
    knobs = [k for k in spec.knob_names if k != "seed"]
    df = summary_frame(res.planned, spec.knob_names)
    write_atomic_parquet(df, out / "summary.parquet")
    write_failures(res.planned, out / "failed.jsonl")
    write_dataset(res.planned, df, out, knobs)
    res.summary = df
    if spec.check is not None and new_baseline:
        res.check_notes = [f"baseline written to {write_baseline(df, spec.check)}"]
    elif spec.check is not None:
        res.check_failures, res.check_notes = run_check(df, spec.check, knobs)
    write_sweep_report(df, spec, out / "report.html", knobs, res.check_failures)
