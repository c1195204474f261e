"""Traces + config + replay options → a run directory: the one call every front end makes.

The CLI (`replay run`), pipelines and the real-kernel harness all go through `run_traces`, so a
run made any way is the same run.
"""

from __future__ import annotations

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
