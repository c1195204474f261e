"""Pipeline spec (TOML) → the list of jobs it stands for (traces × matrix × zip groups).

The spec's shape is the contract of DESIGN.md "Pipelines". Paths in the spec are relative to the
spec file, so a spec and its traces can be moved together. Every mistake here is a PipelineError
naming the spec, the key and what to write instead; mistakes in the *values* of knobs are not
caught here but by the config resolver, per job (an invalid config fails its own jobs only).
"""

from __future__ import annotations

import glob
import itertools
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from replay.errors import PipelineError
from replay.runner import ReplayOptions

_TOP_KEYS = (
    "name",
    "traces",
    "config",
    "output",
    "seed",
    "job_reports",
    "replay",
    "matrix",
    "zip",
    "check",
)
_REPLAY_KEYS = tuple(f.name for f in fields(ReplayOptions))
# A knob with this prefix sweeps a replay option (`replay.multiplier = [1, 2]`); the bare name
# `seed` sweeps the seed. Every other knob is a config key as `--set` takes it.
REPLAY_PREFIX = "replay."
SEED_KNOB = "seed"
# summary.parquet's own columns; a knob must not shadow one (config keys never do)
RESERVED = frozenset(
    [
        "job",
        "trace",
        "status",
        "cached",
        "error",
        "frames",
        "packets",
        "received",
        "delivered",
        "dropped",
        "consumed",
        "ignored",
        "duration_ns",
        "key",
        "run",
        "report",
        "wall_s",
        "run_wall_s",
    ]
)


@dataclass(frozen=True)
class Check:
    """A regression check: compare each job against the matching row of a baseline summary."""

    baseline: Path  # a summary.parquet / .csv, or a pipeline output folder holding summary.parquet
    thresholds: dict[str, float | str]  # summary column → allowed increase ("10%" or absolute)


@dataclass(frozen=True)
class Job:
    """One (trace, knob values) point of the sweep."""

    index: int  # position in the spec's order (rows of the summary keep it)
    trace: Path  # absolute
    trace_label: str  # as the user named it: relative to the spec folder when under it
    knobs: dict[str, Any]  # swept key → value, in the spec's order


@dataclass(frozen=True)
class Spec:
    path: Path
    name: str
    traces: tuple[Path, ...]
    trace_labels: tuple[str, ...]
    config: Path | None
    output: Path
    seed: int
    replay: dict[str, Any]
    matrix: dict[str, list[Any]]
    zips: tuple[dict[str, list[Any]], ...]
    check: Check | None = None
    knob_names: tuple[str, ...] = field(default=())
    # each job's own HTML report (`replay report` of its run): ~5 MB each with plotly inlined,
    # so a sweep of thousands may turn it off and render the runs it cares about later
    job_reports: bool = True

    def jobs(self) -> list[Job]:
        """Every (trace, point) in order: traces outermost, then the matrix product, then zips."""
        return [
            Job(i, t, label, point)
            for i, ((t, label), point) in enumerate(
                itertools.product(zip(self.traces, self.trace_labels, strict=True), self.points())
            )
        ]

    def points(self) -> list[dict[str, Any]]:
        """The knob combinations: the full product of [matrix] crossed with each zip group."""
        axes: list[list[dict[str, Any]]] = [
            [{k: v} for v in values] for k, values in self.matrix.items()
        ]
        for group in self.zips:
            n = len(next(iter(group.values())))
            axes.append([{k: vs[i] for k, vs in group.items()} for i in range(n)])
        out = []
        for combo in itertools.product(*axes):
            point: dict[str, Any] = {}
            for part in combo:
                point.update(part)
            out.append(point)
        return out


def _err(path: Path, msg: str) -> PipelineError:
    return PipelineError(f"{path}: {msg}")


def _sweep_lists(path: Path, table: Any, where: str) -> dict[str, list[Any]]:
    if not isinstance(table, dict):
        raise _err(path, f"[{where}] must be a table of key = [values]")
    out: dict[str, list[Any]] = {}
    for k, v in table.items():
        if not isinstance(v, list) or not v:
            raise _err(path, f"[{where}] {k!r} must be a non-empty list of values, got {v!r}")
        if k.startswith(REPLAY_PREFIX) and k[len(REPLAY_PREFIX) :] not in _REPLAY_KEYS:
            raise _err(
                path, f"[{where}] {k!r}: unknown replay option; known: {', '.join(_REPLAY_KEYS)}"
            )
        if k in RESERVED:
            raise _err(path, f"[{where}] {k!r} is not a knob (it names a summary column)")
        if k == SEED_KNOB and not all(isinstance(s, int) and not isinstance(s, bool) for s in v):
            raise _err(path, f"[{where}] seed values must be integers, got {v!r}")
        out[k] = v
    return out


def _zip_groups(path: Path, table: Any) -> list[dict[str, list[Any]]]:
    """[zip] is one group of paired lists, or named sub-tables ([zip.rings]) for several groups."""
    if not isinstance(table, dict):
        raise _err(
            path, "[zip] must be a table of key = [values] (or of sub-tables, one per group)"
        )
    flat = {k: v for k, v in table.items() if not isinstance(v, dict)}
    groups = [(f"zip.{k}", v) for k, v in table.items() if isinstance(v, dict)]
    if flat:
        groups.insert(0, ("zip", flat))
    out = []
    for where, g in groups:
        lists = _sweep_lists(path, g, where)
        lengths = {k: len(v) for k, v in lists.items()}
        if len(set(lengths.values())) > 1:
            shown = ", ".join(f"{k}: {n}" for k, n in lengths.items())
            raise _err(
                path, f"[{where}] lists are advanced together so must have equal lengths ({shown})"
            )
        if lists:
            out.append(lists)
    return out


def _expand_traces(path: Path, patterns: Any) -> tuple[list[Path], list[str]]:
    if isinstance(patterns, str):
        patterns = [patterns]
    if (
        not isinstance(patterns, list)
        or not patterns
        or not all(isinstance(p, str) for p in patterns)
    ):
        raise _err(
            path, 'traces must be a glob or a list of globs, e.g. traces = ["traces/*.pcap"]'
        )
    base = path.parent
    found: dict[Path, str] = {}
    for pat in patterns:
        full = Path(pat).expanduser()
        pattern = str(full if full.is_absolute() else base / full)
        matches = sorted(Path(m) for m in glob.glob(pattern, recursive=True) if Path(m).is_file())
        if not matches:
            raise _err(
                path,
                f"traces: {pat!r} matches no file (globs are relative to the spec's folder {base})",
            )
        for m in matches:
            resolved = m.resolve()
            if resolved not in found:
                try:
                    found[resolved] = str(m.relative_to(base))
                except ValueError:
                    found[resolved] = str(m)
    return list(found), list(found.values())


def parse_spec(text: str, path: Path) -> Spec:
    """Parse spec text (`path` names it in errors and anchors its relative paths)."""
    path = path.resolve()
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise _err(path, f"not valid TOML ({e})") from None
    unknown = sorted(set(raw) - set(_TOP_KEYS))
    if unknown:
        raise _err(path, f"unknown key(s) {', '.join(unknown)}; a spec has {', '.join(_TOP_KEYS)}")
    name = raw.get("name", path.stem)
    if not isinstance(name, str) or not name:
        raise _err(path, f"name must be a non-empty string, got {name!r}")
    if "traces" not in raw:
        raise _err(path, 'no traces; add e.g. traces = ["../traces/*.pcap"]')
    traces, labels = _expand_traces(path, raw["traces"])

    config = None
    if "config" in raw:
        if not isinstance(raw["config"], str):
            raise _err(path, f"config must be a path to a config TOML, got {raw['config']!r}")
        config = (path.parent / Path(raw["config"]).expanduser()).resolve()
        if not config.is_file():
            raise _err(path, f"config {raw['config']!r} not found (looked at {config})")

    out = raw.get("output", f"results/{name}")
    if not isinstance(out, str) or not out:
        raise _err(path, f"output must be a folder path, got {out!r}")
    output = (path.parent / Path(out).expanduser()).resolve()

    seed = raw.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise _err(path, f"seed must be an integer, got {seed!r}")

    job_reports = raw.get("job_reports", True)
    if not isinstance(job_reports, bool):
        raise _err(path, f"job_reports must be true or false, got {job_reports!r}")

    replay = raw.get("replay", {})
    if not isinstance(replay, dict):
        raise _err(path, "[replay] must be a table of replay options")
    bad = sorted(set(replay) - set(_REPLAY_KEYS))
    if bad:
        raise _err(
            path, f"[replay] unknown option(s) {', '.join(bad)}; known: {', '.join(_REPLAY_KEYS)}"
        )
    try:
        ReplayOptions(**replay)
    except TypeError as e:
        raise _err(path, f"[replay] {e}") from None

    matrix = _sweep_lists(path, raw.get("matrix", {}), "matrix")
    zips = _zip_groups(path, raw.get("zip", {}))
    names = list(matrix)
    for g in zips:
        for k in g:
            if k in names:
                raise _err(
                    path, f"knob {k!r} is swept twice ([matrix] and [zip] or two zip groups)"
                )
            names.append(k)

    return Spec(
        path=path,
        name=name,
        traces=tuple(traces),
        trace_labels=tuple(labels),
        config=config,
        output=output,
        seed=seed,
        replay=dict(replay),
        matrix=matrix,
        zips=tuple(zips),
        check=_parse_check(path, raw.get("check")),
        knob_names=tuple(names),
        job_reports=job_reports,
    )


def _parse_check(path: Path, raw: Any) -> Check | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("baseline"), str):
        raise _err(
            path,
            '[check] needs baseline = "path to a summary (.parquet/.csv) or an output folder"',
        )
    thresholds = raw.get("thresholds", {})
    extra = sorted(set(raw) - {"baseline", "thresholds"})
    if extra:
        raise _err(
            path,
            f"[check] unknown key(s) {', '.join(extra)}; it has baseline and [check.thresholds]",
        )
    if not isinstance(thresholds, dict) or not thresholds:
        raise _err(
            path,
            "[check.thresholds] must map summary columns to allowed increases, "
            'e.g. latency_p99_ns = "10%"',
        )
    for col, t in thresholds.items():
        ok = isinstance(t, int | float) and not isinstance(t, bool) and t >= 0
        if isinstance(t, str):
            try:
                ok = t.endswith("%") and float(t[:-1]) >= 0
            except ValueError:
                ok = False
        if not ok:
            raise _err(
                path,
                f"[check.thresholds] {col} = {t!r}: write an allowed increase, "
                '"10%" or a number ≥ 0',
            )
    baseline = (path.parent / Path(raw["baseline"]).expanduser()).resolve()
    return Check(baseline=baseline, thresholds=dict(thresholds))


def load_spec(path: str | Path) -> Spec:
    """Read and parse a pipeline spec file."""
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise PipelineError(f"{p}: no such pipeline spec") from None
    except (OSError, UnicodeDecodeError) as e:
        raise PipelineError(f"{p}: cannot read the spec ({e})") from None
    return parse_spec(text, p)
