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
    from replay.store.rundir import write_run

    # the file hashes (for run.json) run on their own thread while the model replays
    cap = read_captures(list(traces), on_warning=on_warning, sha256="background")
    profile = load_profile(str(config["costs"]["profile"]))
    sim = simulate(cap.table, config, profile, options)
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
    tables = {"frames": cap.table, "packets": sim.packets, "cpu": sim.cpu, "events": sim.events}
    path = write_run(out_dir, run_json, tables)
    if report is not None:
        from replay.report.html import render_html

        render_html(path, Path(report))
    return RunResult(path, sim.summary, notes)
