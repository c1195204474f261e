"""A planned job → its cache key, and a job payload → a finished job directory (run in a worker).

A job's key is the sha256 of everything its result depends on: the trace bytes, the fully
resolved config, the cost profile's contents, the replay options, the seed and the tool version.
The job directory `runs/<key[:16]>/` is complete exactly when it holds `job.json`: the worker
builds it under a temporary name (`runs/.partial-…`) and renames it into place as the last step,
so a pipeline killed at any moment (kill -9 included) resumes without redoing finished jobs and
never mistakes a half-written one for finished.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from replay import __version__
from replay.errors import ReplayError
from replay.pipeline.spec import REPLAY_PREFIX, SEED_KNOB, Job, Spec
from replay.runner import ReplayOptions

JOB_FILE = "job.json"
STAGES_FILE = "stages.parquet"
PARTIAL_PREFIX = ".partial-"
KEY_DIR_CHARS = 16  # 64 bits of the key name the folder; job.json keeps the full key and is checked
JOB_FORMAT = "stack-replay-job/1"

JobFn = Callable[..., Any]  # replay.runner.run_traces's signature


class Resolver(Protocol):
    """Base config + knob overrides → (resolved config, resolved cost profile)."""

    def __call__(
        self, base: Path | None, overrides: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]]: ...


class ConfigResolver:
    """The project's resolver: replay.model.config, defaults + the base file + the job's knobs.

    Each job resolves from scratch rather than patching one resolved base: values the resolver
    derives (e.g. a socket's rcvbuf from net.core.rmem_default) must follow the swept knobs.
    """

    def __call__(
        self, base: Path | None, overrides: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        from replay.model.config import resolve_config
        from replay.model.costs import load_profile

        cfg = resolve_config(base, overrides)
        profile = load_profile(str(cfg["costs"]["profile"]))
        # the key hashes the profile's contents, not where the file happens to be
        profile = {
            **profile,
            "profile": {k: v for k, v in profile.get("profile", {}).items() if k != "path"},
        }
        return cfg, profile


def canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def job_key(
    trace_sha256: str,
    config: dict[str, Any],
    profile: dict[str, Any],
    options: dict[str, Any],
    seed: int,
) -> str:
    """sha256 of (trace bytes' sha256, config, cost profile, replay options, seed, tool version)."""
    blob = canonical(
        {
            "trace": trace_sha256,
            "config": config,
            "costs": profile,
            "replay": options,
            "seed": seed,
            "tool": __version__,
        }
    )
    return hashlib.sha256(blob.encode()).hexdigest()


class TraceHashes:
    """sha256 of trace files, remembered in OUTPUT/.trace-hashes.json by (path, size, mtime_ns).

    A week of captures can be gigabytes; rehashing them on every resume would cost more than the
    jobs that are left. A file changed in place gets a new mtime and is hashed again.
    """

    def __init__(self, store: Path | None) -> None:
        self.store = store
        self.known: dict[str, list[Any]] = {}
        if store is not None and store.is_file():
            try:
                self.known = json.loads(store.read_text())
            except (OSError, json.JSONDecodeError):
                self.known = {}

    def sha256(self, path: Path) -> str:
        st = path.stat()
        stamp = [st.st_size, st.st_mtime_ns]
        hit = self.known.get(str(path))
        if hit is not None and hit[:2] == stamp:
            return str(hit[2])
        h = hashlib.sha256()
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        self.known[str(path)] = [*stamp, h.hexdigest()]
        return h.hexdigest()

    def save(self) -> None:
        if self.store is None:
            return
        tmp = self.store.with_name(f"{self.store.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.known))
        tmp.replace(self.store)


@dataclass
class PlannedJob:
    """A job with everything needed to run it, or the error that stops it from running."""

    job: Job
    seed: int
    options: dict[str, Any]
    config: dict[str, Any] | None = None
    key: str | None = None
    error: str | None = None  # planning failed (invalid config): the job fails without running
    cached: dict[str, Any] | None = None  # job.json of a finished run of the same key
    record: dict[str, Any] = field(default_factory=dict)

    @property
    def dir_name(self) -> str:
        assert self.key is not None
        return self.key[:KEY_DIR_CHARS]


def split_knobs(
    knobs: dict[str, Any], seed: int, replay: dict[str, Any]
) -> tuple[dict[str, Any], int, dict[str, Any]]:
    """Separate config overrides from swept replay options (`replay.*`) and the swept seed."""
    overrides: dict[str, Any] = {}
    options = dict(replay)
    for k, v in knobs.items():
        if k == SEED_KNOB:
            seed = int(v)
        elif k.startswith(REPLAY_PREFIX):
            options[k[len(REPLAY_PREFIX) :]] = v
        else:
            overrides[k] = v
    return overrides, seed, options


def plan(spec: Spec, resolver: Resolver, hashes: TraceHashes, runs: Path) -> list[PlannedJob]:
    """Resolve every job's config and key, and find the ones already finished."""
    planned = []
    for job in spec.jobs():
        overrides, seed, options = split_knobs(job.knobs, spec.seed, spec.replay)
        pj = PlannedJob(job=job, seed=seed, options=options)
        try:
            opts = ReplayOptions(**options).to_dict()
            pj.options = opts
            cfg, profile = resolver(spec.config, overrides)
            pj.config = cfg
            pj.key = job_key(hashes.sha256(job.trace), cfg, profile, opts, seed)
        except ReplayError as e:
            pj.error = str(e)
        except (TypeError, ValueError) as e:  # a replay option of the wrong type
            pj.error = f"{type(e).__name__}: {e}"
        except OSError as e:
            pj.error = f"{job.trace}: cannot read the trace ({e.strerror or e})"
        if pj.key is not None:
            done = read_job(runs / pj.dir_name)
            if done is not None and done.get("key") == pj.key and done.get("status") == "ok":
                pj.cached = done
        planned.append(pj)
    return planned


def read_job(job_dir: Path) -> dict[str, Any] | None:
    """job.json of a finished job directory, or None (absent, unfinished, unreadable)."""
    try:
        rec = json.loads((job_dir / JOB_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return rec if isinstance(rec, dict) and rec.get("format") == JOB_FORMAT else None


def payload(
    pj: PlannedJob, runs: Path, command: str = "", job_report: bool = True
) -> dict[str, Any]:
    """What a worker needs: plain data only, so it pickles to any process or Dask worker."""
    return {
        "key": pj.key,
        "trace": str(pj.job.trace),
        "config": pj.config,
        "options": pj.options,
        "seed": pj.seed,
        "runs": str(runs),
        "dir": pj.dir_name,
        "command": command,
        "report": job_report,
    }


def execute_job(p: dict[str, Any], job_fn: JobFn) -> dict[str, Any]:
    """Run one job into a temporary folder, aggregate its stages, write job.json, rename into place.

    Never raises for a job's own failure: the error comes back in the record (status "failed")
    so one broken trace or config fails only its own job.
    """
    t0 = time.perf_counter()
    runs = Path(p["runs"])
    final = runs / p["dir"]
    staging = runs / f"{PARTIAL_PREFIX}{p['dir']}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    # the job's report is written beside the run directory, not in it: the run directory is
    # itself renamed into place by write_run, which would drop a file put there before it
    report = staging.with_name(staging.name + ".report.html")
    rec: dict[str, Any] = {
        "format": JOB_FORMAT,
        "key": p["key"],
        "trace": p["trace"],
        "seed": p["seed"],
        "worker": f"{socket.gethostname()}:{os.getpid()}",
    }
    try:
        t1 = time.perf_counter()
        result = job_fn(
            [Path(p["trace"])],
            p["config"],
            ReplayOptions(**p["options"]),
            staging,
            seed=p["seed"],
            report=report if p.get("report", True) else None,
            command=p.get("command", ""),
        )
        rec["run_wall_s"] = time.perf_counter() - t1
        rec["summary"] = result.summary
        rec["notes"] = list(result.notes)
        _write_stages(staging)
        rec["has_report"] = report.is_file()
        if rec["has_report"]:
            report.replace(staging / "report.html")
        rec["status"] = "ok"
        rec["error"] = None
    except ReplayError as e:
        rec.update(status="failed", error=str(e))
    except (
        Exception
    ) as e:  # a bug in the model must not stop the sweep: record it with its traceback
        rec.update(
            status="failed", error=f"{type(e).__name__}: {e}", traceback=traceback.format_exc()
        )
    rec["wall_s"] = time.perf_counter() - t0
    if rec["status"] != "ok":
        shutil.rmtree(staging, ignore_errors=True)
        report.unlink(missing_ok=True)
        return rec
    _commit(staging, final, rec)
    rec["wall_s"] = time.perf_counter() - t0
    return rec


def _commit(staging: Path, final: Path, rec: dict[str, Any]) -> None:
    """job.json last (via its own temporary name), then the folder's rename makes it visible."""
    tmp = staging / f".{JOB_FILE}.tmp"
    tmp.write_text(json.dumps(rec, indent=1, default=str) + "\n")
    tmp.replace(staging / JOB_FILE)
    old = None
    if final.exists():  # --force, or a leftover without job.json
        old = final.with_name(f"{PARTIAL_PREFIX}old-{final.name}-{uuid.uuid4().hex[:8]}")
        try:
            final.rename(old)
        except FileNotFoundError:
            old = None
    try:
        staging.rename(final)
    except OSError:
        # another process (a worker orphaned by a killed pipeline) finished the same key first:
        # its result is complete and identical by construction, keep it
        shutil.rmtree(staging, ignore_errors=True)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _write_stages(run_dir: Path) -> None:
    """packets.parquet → one row per stage: packets through it, wait/cpu percentiles, drops."""
    from replay.pipeline.stages import stage_table

    packets = run_dir / "packets.parquet"
    if packets.exists():
        stage_table(packets).write_parquet(run_dir / STAGES_FILE, compression="zstd")


def clean_partials(runs: Path) -> int:
    """Remove temporary job folders left by a killed pipeline (call while holding the lock):
    the job's staging folder, and write_run's own temporary beside it (`.<staging>.partial-PID`,
    which a kill between its mkdir and its rename leaves as `..partial-…`)."""
    n = 0
    if runs.is_dir():
        for d in runs.iterdir():
            if d.name.startswith((PARTIAL_PREFIX, "." + PARTIAL_PREFIX)):
                if d.is_dir() and not d.is_symlink():
                    shutil.rmtree(d, ignore_errors=True)
                else:
                    d.unlink(missing_ok=True)
                n += 1
    return n
