"""Scenario name + options → a synthetic capture file (`replay synth`).

    >>> from replay.synth import SCENARIOS, synthesize
    >>> synthesize("https-download", "traces/https-download.pcap", duration=0.1, rate="100M")

Each scenario is one module building its frames with dpkt (a template per header, varied by
numpy columns where a flood needs speed); `writer` turns them into pcap. Same options and
seed, same bytes.
"""

from __future__ import annotations

from pathlib import Path

from replay.synth import (
    conn_flood,
    fragments,
    game_server,
    gigabit_flood,
    https_download,
    mixed,
    reuseport,
    syn_flood,
    tcp_ipv6,
    udp_flood,
    vxlan,
)
from replay.synth.options import (
    OPTION_NAMES,
    Options,
    SynthError,
    check_duration,
    check_int,
    parse_rate,
)
from replay.synth.scenario import Scenario
from replay.synth.writer import Capture, write_capture

__all__ = ["SCENARIOS", "Scenario", "SynthError", "build", "resolve", "synthesize"]

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        https_download.SCENARIO,
        game_server.SCENARIO,
        gigabit_flood.SCENARIO,
        udp_flood.SCENARIO,
        tcp_ipv6.SCENARIO,
        fragments.SCENARIO,
        vxlan.SCENARIO,
        reuseport.SCENARIO,
        syn_flood.SCENARIO,
        conn_flood.SCENARIO,
        mixed.SCENARIO,
    )
}

_COUNT_LIMITS = {"clients": (1, 65535), "flows": (1, 65535), "size": (1, 65507)}


def scenario(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise SynthError(
            f"unknown scenario {name!r}; choose one of: {', '.join(SCENARIOS)}"
            " (replay synth --list describes them)"
        ) from None


def resolve(name: str, **options: object) -> Options:
    """Scenario defaults + the given options (None = default) → checked Options."""
    sc = scenario(name)
    for key, value in options.items():
        if key not in OPTION_NAMES:
            raise TypeError(f"synthesize() got an unknown option {key!r}")  # a caller's bug
        if value is not None and key != "seed" and key not in sc.defaults:
            takes = ", ".join(f"--{k}" for k in (*sc.defaults, "seed"))
            raise SynthError(f"scenario {name} does not take --{key} (it takes {takes})")
    given = {k: v for k, v in options.items() if v is not None}
    merged: dict[str, object] = {**sc.defaults, **given}
    counts = {}
    for key in ("clients", "flows", "size"):
        lo, hi = sc.limits.get(key, _COUNT_LIMITS[key])
        counts[key] = check_int(key, merged[key], lo, hi) if key in merged else 0
    rate = merged.get("rate")
    return Options(
        duration_ns=check_duration(merged["duration"], sc.max_duration_s),
        rate=parse_rate(rate, sc.rate_unit) if rate is not None else 0.0,  # type: ignore[arg-type]
        clients=counts["clients"],
        flows=counts["flows"],
        size=counts["size"],
        seed=check_int("seed", merged.get("seed", 1), 0, 2**32 - 1),
    )


def build(name: str, **options: object) -> Capture:
    """The capture a scenario makes, in memory (columns), without writing it."""
    return scenario(name).build(resolve(name, **options))


def synthesize(name: str, out: str | Path, **options: object) -> Path:
    """Write scenario `name` to `out` (.gz → gzip). Options: duration (s), rate (number or text
    with units, e.g. "100M"), clients, flows, size, seed. Raises SynthError on a bad one."""
    opts = resolve(name, **options)  # check everything before any work
    return write_capture(scenario(name).build(opts), out)


def _short(value: float | int) -> str:
    for div, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= div and value % div == 0:
            return f"{value / div:g}{prefix}"
    return f"{value:g}"


def describe() -> list[str]:
    """One line per scenario for `replay synth --list`: name, what it holds, its defaults."""
    width = max(len(n) for n in SCENARIOS)
    lines = []
    for name, sc in SCENARIOS.items():
        opts = " ".join(
            f"--{k} {_short(v) if k == 'rate' else f'{v:g}'}"
            + (sc.rate_unit if k == "rate" else "")
            for k, v in sc.defaults.items()
        )
        lines.append(f"{name:<{width}}  {sc.summary}  [defaults: {opts}]")
    return lines
