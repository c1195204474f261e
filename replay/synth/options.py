"""`replay synth` options (strings from the command line) → checked numbers for a scenario."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from replay.errors import ReplayError


class SynthError(ReplayError):
    """A `replay synth` scenario name or option is wrong (names the option, the rule, the value)."""


# What --rate means, per scenario: the unit words accepted after the optional SI prefix.
RATE_UNITS: dict[str, tuple[str, ...]] = {
    "bit/s": ("", "b", "bit", "bit/s", "bps", "b/s"),
    "pps": ("", "pps", "p/s"),
    "Hz": ("", "hz"),
}
_PREFIX = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9}
_RATE_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([kmg]?)\s*([a-z/]*)\s*$", re.I)

OPTION_NAMES = ("duration", "rate", "clients", "flows", "size", "seed")


@dataclass(frozen=True)
class Options:
    """The resolved options a scenario builds from (every field set)."""

    duration_ns: int
    rate: float  # in the scenario's rate unit (bit/s, packets/s or Hz)
    clients: int
    flows: int
    size: int  # bytes; what it sizes is the scenario's to say (see its `SIZE_MEANS`)
    seed: int


def parse_rate(text: str | float | int, unit: str) -> float:
    """'100M', '100Mbit', '1.5Mpps', '64Hz', 64 → a positive number in `unit`."""
    if isinstance(text, int | float):
        value = float(text)
    else:
        m = _RATE_RE.match(text)
        word = m.group(3).lower() if m else ""
        if m is None or word not in RATE_UNITS[unit]:
            raise SynthError(
                f"--rate {text!r} is not a rate in {unit}: write a number with an optional"
                f" k/M/G prefix, e.g. {_example(unit)}"
            )
        value = float(m.group(1)) * _PREFIX[m.group(2).lower()]
    if not math.isfinite(value) or value <= 0:
        raise SynthError(f"--rate must be a positive number of {unit}, got {text!r}")
    return value


def _example(unit: str) -> str:
    return {"bit/s": "100M or 1Gbit", "pps": "500k or 1.2Mpps", "Hz": "64 or 128Hz"}[unit]


def check_int(name: str, value: object, lo: int, hi: int, rule: str = "") -> int:
    """An integer option within [lo, hi], or one SynthError naming it."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise SynthError(f"--{name} must be an integer, got {value!r}")
    if not lo <= int(value) <= hi:
        why = f" ({rule})" if rule else ""
        raise SynthError(f"--{name} must be between {lo} and {hi}{why}, got {int(value)}")
    return int(value)


def check_duration(value: object, max_s: float) -> int:
    """Seconds (float) → whole nanoseconds, positive and at most `max_s`."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SynthError(f"--duration must be a number of seconds, got {value!r}")
    if not 0 < value <= max_s:
        raise SynthError(
            f"--duration must be more than 0 and at most {max_s:g} s for this scenario,"
            f" got {value:g}"
        )
    return round(value * 1e9)
