"""Traces + config + replay options → a run directory: the one call every front end makes.

The CLI (`replay run`), pipelines and the real-kernel harness all go through `run_traces`, so a
run made any way is the same run.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ReplayOptions:
    """tcpreplay's speed options, applied in virtual time (tcpreplay(1) names)."""

    multiplier: float | None = None  # -x: scale the capture's inter-frame gaps by 1/multiplier
    pps: float | None = None  # -p: a fixed packet rate
    mbps: float | None = None  # -M: a fixed data rate in Mbit/s
    topspeed: bool = False  # -t: back to back at link speed
    loop: int = 1  # -l: replay the capture this many times
    limit: int | None = None  # -L: stop after this many packets
    duration: float | None = None  # --duration: stop after this many seconds of replay

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, False)}


_HEAP_TUNED = False


def keep_freed_memory() -> None:
    """Let glibc's malloc reuse freed memory instead of returning it to the kernel (once per process).

    Why: a `replay run` allocates and frees a few hundred MB of numpy columns per million frames,
    each over glibc's 32 MB mmap ceiling, so every one came back as fresh pages the kernel must
    fault in and zero. Measured here: first-touch memory costs ~1 s per GB (sys time), and on a
    1M-frame flood `simulate` took 4.1 s with 3.0 s of system time; with big blocks taken from the
    heap and kept after free (mallopt M_MMAP_MAX 0, M_TRIM_THRESHOLD high) it took 2.1 s
    (benchmarks/bench_run.py). The cost is that the process keeps its peak heap until it exits,
    which a run or a pipeline worker does. Other C libraries: nothing happens.
    """
    global _HEAP_TUNED
    if _HEAP_TUNED:
        return
    _HEAP_TUNED = True
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return  # not glibc (musl has no mallopt): keep the default
    m_trim_threshold, m_top_pad, m_mmap_max = -1, -2, -4  # malloc.h
    mallopt(m_mmap_max, 0)
    mallopt(m_trim_threshold, 2**31 - 1)
    mallopt(m_top_pad, 256 << 20)
    # No transparent huge pages for this process (prctl PR_SET_THP_DISABLE = 41, Linux 3.15+;
    # inherited by child processes). Why: on this VM (Firecracker, THP "always") a huge-page
    # fault takes a fresh 2 MB block the host has to back, while 4 KB faults mostly get pages
    # the guest already recycled: the 1M-frame flood's `simulate` spent 1.07-1.11 s in the
    # kernel with huge pages and 0.51-0.52 s without, for the same 1.5 GB peak (user time
    # unchanged within noise; /tmp lineprof runs, docs/design-notes.md "Speed").
    prctl = getattr(libc, "prctl", None)
    if prctl is not None:
        prctl(41, 1, 0, 0, 0)


@dataclass
class RunResult:
    run_dir: Path
    summary: dict[str, Any]
    notes: list[str]  # things the user should know (e.g. host addresses were inferred)


def run_traces(
    traces: Sequence[str | os.PathLike[str]],
    config: dict[str, Any],
    options: ReplayOptions,
    out_dir: str | os.PathLike[str],
    *,
    seed: int = 0,
    report: str | os.PathLike[str] | None = None,
    command: str = "",
    on_warning: Callable[[str], None] | None = None,
) -> RunResult:
    """Read `traces`, replay them through the model with the resolved `config`, write the run
    directory `out_dir` (and the HTML report when asked). `config` comes from
    replay.model.config.resolve_config / apply_overrides."""
    from replay import __version__
    from replay.capture import read_captures
    from replay.model.costs import load_profile
    from replay.model.simulate import simulate
    from replay.store.rundir import RunWriter

    keep_freed_memory()
    # The run directory is opened first (a wrong -o fails before any work) and each table is
    # encoded on a worker thread from the moment it exists: frames.parquet while the model
    # replays on this thread (which uses one core), packets.parquet while the rest is made.
    with RunWriter(out_dir) as writer:
        cap = read_captures(list(traces), on_warning=on_warning)
        writer.add("frames", cap.table)
        # the file hashes (for run.json) run on their own thread while the model replays,
        # started only now so that they do not compete with the reading
        for inp in cap.inputs:
            inp.start_hash()
        profile = load_profile(str(config["costs"]["profile"]))
        # packets.parquet is encoded while the cpu table and the summary are made
        sim = simulate(cap.table, config, profile, options, on_table=writer.add)
        notes = list(sim.notes)
        for inp in cap.inputs:
            notes.extend(f"{inp.path}: {w}" for w in inp.warnings)
        resolved = dict(config)
        resolved["app"] = sim.apps
        run_json = {
            "tool": {"name": "stack-replay", "version": __version__},
            "command": command,
            "inputs": [
                {"path": i.path, "sha256": i.sha256, "frames": i.frames, "linktypes": i.linktypes,
                 "format": i.format if not i.compression else f"{i.format}+{i.compression}"}
                for i in cap.inputs
            ],
            "config": resolved,
            "costs": profile,
            "replay": options.to_dict(),
            "seed": seed,
            "host": sim.host,
            "notes": notes,
            "summary": sim.summary,
            "counters": sim.counters,
        }
        path = writer.finish(run_json)
    if report is not None:
        from replay.report.html import render_html

        render_html(path, Path(report))
    return RunResult(path, sim.summary, notes)
