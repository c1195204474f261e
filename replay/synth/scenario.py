"""A scenario's table row: name, one-line summary, the options it takes → its frame builder."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from replay.synth.options import SynthError
from replay.synth.writer import Capture

MAX_FRAMES = 5_000_000  # beyond this a synthetic trace stops being a handy sample
# Scenarios that build each frame with dpkt (~40 µs a frame here) stop sooner: ~20 s of work.
DPKT_MAX_FRAMES = 500_000


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str  # one line for `replay synth --list`
    build: Callable[..., Capture]  # (Options) -> Capture
    defaults: dict[str, float | int]  # the options it takes (besides --seed) and their defaults
    rate_unit: str = "pps"
    max_duration_s: float = 10.0
    limits: dict[str, tuple[int, int]] = field(default_factory=dict)
    size_means: str = ""  # what --size sizes, for the help text


def check_frames(n: int, scenario: str, limit: int = MAX_FRAMES) -> None:
    """Refuse options that would write an unreasonably large capture, before building it."""
    if n > limit:
        raise SynthError(
            f"{scenario}: these options make {n:,} frames (the limit is {limit:,});"
            " lower --duration or --rate"
        )
