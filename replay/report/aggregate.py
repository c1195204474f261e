"""Run directory → the report's tables (polars aggregations; every report front end reads these).

Everything the HTML page, `--stdio`, `--json`, diffs and exports show comes from here, computed
lazily over the Parquet files, so a 10M-packet run never becomes Python objects and never ships
per-packet points to a browser: per-packet columns are reduced to percentiles, histograms,
time bins, or a bounded sample of packet journeys.

Percentiles are nearest-rank (the value at rank ceil(q·n) of the n sorted values), so they are
always a value that occurred and can be checked by hand on small runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from replay.errors import ReplayError
from replay.model.stages import STAGE_IDS, STAGE_INDEX
from replay.store.rundir import Run

PERCENTILES: tuple[tuple[str, float], ...] = (("p50", 0.50), ("p99", 0.99), ("p999", 0.999))

# --sort keys (perf's names where perf has one) and the column each reads. comm/dso/sym/cpu/stage
# are columns of cpu.parquet; flow/queue exist only per packet, so they are read from the
# per-packet cpu_<stage> shares in packets.parquet (which sum to the stage's cpu.parquet total).
CPU_KEYS = {"comm": "comm", "dso": "dso", "sym": "symbol", "cpu": "cpu", "stage": "stage",
            "context": "context"}
PACKET_KEYS = {"flow": "flow", "queue": "queue", "cpu": "cpu", "stage": "stage"}
SORT_KEYS = ("comm", "dso", "sym", "cpu", "stage", "flow", "queue", "context")
DEFAULT_SORT = ("comm", "dso", "sym")


class ReportError(ReplayError):
    """A report option does not fit the run (e.g. an unknown --sort key)."""


def parse_sort(spec: str | None) -> tuple[str, ...]:
    """'cpu,sym' → ('cpu', 'sym'); unknown or incompatible keys are one clear error."""
    if not spec:
        return DEFAULT_SORT
    keys = tuple(k.strip() for k in spec.split(",") if k.strip())
    bad = [k for k in keys if k not in SORT_KEYS]
    if bad or not keys:
        raise ReportError(
            f"--sort {spec!r}: unknown key {', '.join(bad) or '(empty)'}; "
            f"use a comma list of {', '.join(SORT_KEYS)}"
        )
    if len(set(keys)) != len(keys):
        raise ReportError(f"--sort {spec!r}: a key is repeated")
    if any(k in ("flow", "queue") for k in keys):
        other = [k for k in keys if k not in PACKET_KEYS]
        if other:
            raise ReportError(
                f"--sort {spec!r}: flow and queue are per-packet keys and combine only with "
                f"cpu and stage (not {', '.join(other)})"
            )
    return keys


def _rank_index(n: int, q: float) -> int:
    return min(max(math.ceil(n * q) - 1, 0), n - 1)


def _quantiles(lf: pl.LazyFrame, cols: list[str],
               cdf_points: int = 0) -> dict[str, dict[str, Any]]:
    """Nearest-rank percentiles + count/mean/max/sum of several columns (nulls dropped).

    One column at a time in numpy (np.partition at the wanted ranks, or one sort when the CDF's
    101 ranks are wanted too), so only one column is in memory at a time: ~80 MB for a
    10M-packet run. With cdf_points, also that many evenly spaced quantiles ("cdf").
    """
    out: dict[str, dict[str, Any]] = {}
    qs = [i / (cdf_points - 1) for i in range(cdf_points)] if cdf_points > 1 else []
    for c in cols:
        arr = lf.select(pl.col(c).drop_nulls()).collect().to_series().to_numpy()
        n = len(arr)
        d: dict[str, Any] = {"count": n, "mean": None, "max": None, "sum": None,
                             **{k: None for k, _ in PERCENTILES}}
        if n:
            ranks = {k: _rank_index(n, q) for k, q in PERCENTILES}
            cdf_idx = [_rank_index(n, q) for q in qs]
            # many ranks (the CDF's 101): one sort beats partitioning at each of them
            part = np.sort(arr) if cdf_idx else np.partition(arr, sorted(set(ranks.values())))
            for k, i in ranks.items():
                d[k] = int(part[i])
            d["mean"] = round(float(arr.mean()))
            d["max"] = int(arr.max())
            d["sum"] = int(arr.sum())
            if qs:
                d["cdf"] = [int(part[i]) for i in cdf_idx]
        elif qs:
            d["cdf"] = []
        out[c] = d
    return out


_STATS_CACHE: dict[tuple[str, float], dict[str, dict[str, Any]]] = {}
CDF_POINTS = 101


def packet_stats(run: Run) -> dict[str, dict[str, Any]]:
    """Stats of every wait_/cpu_ column and of delivered end-to-end latency ("e2e"), computed
    once per run directory (the page, --stdio and --json all ask for them)."""
    f = run.path / "packets.parquet"
    key = (str(f.resolve()), f.stat().st_mtime if f.exists() else 0.0)
    if key not in _STATS_CACHE:
        lf = run.scan("packets").with_columns(
            pl.when(pl.col("outcome") == "delivered").then(pl.col("t_done") - pl.col("t_wire"))
            .alias("e2e")
        )
        cols = [f"{k}_{s}" for s in STAGE_IDS for k in ("wait", "cpu")] + ["e2e"]
        if len(_STATS_CACHE) > 8:
            _STATS_CACHE.clear()
        _STATS_CACHE[key] = _quantiles(lf, cols, CDF_POINTS)
    return _STATS_CACHE[key]


def _no_cdf(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k != "cdf"}


@dataclass
class Totals:
    cpu_ns: int  # modeled CPU time in cpu.parquet (perf's event count, in ns)
    spans: int  # rows of cpu.parquet (span × symbol): perf's "samples"
    packets: int
    frames: int  # distinct captured frames replayed
    outcomes: dict[str, int]
    duration_ns: int
    ncpu: int


def totals(run: Run) -> Totals:
    cpu = run.scan("cpu").select(
        pl.col("ns").sum().alias("ns"), pl.len().alias("n"), pl.col("cpu").max().alias("maxcpu"),
        pl.col("end").max().alias("tmax"),
    ).collect().row(0, named=True)
    pk = run.scan("packets")
    outc = dict(pk.group_by("outcome").len().collect().iter_rows())
    ag = pk.select(
        pl.len().alias("n"), pl.col("frame").n_unique().alias("frames"),
        pl.col("t_done").max().alias("tmax"),
    ).collect().row(0, named=True)
    ncpu = int(run.meta.get("config", {}).get("host", {}).get("cpus") or 0)
    ncpu = max(ncpu, (cpu["maxcpu"] + 1) if cpu["maxcpu"] is not None else 0)
    # run.json's duration is the last event; never shorter than the last span or packet
    dur = max(int(run.meta.get("summary", {}).get("duration_ns") or 0), int(ag["tmax"] or 0),
              int(cpu["tmax"] or 0))
    return Totals(
        cpu_ns=int(cpu["ns"] or 0), spans=int(cpu["n"]), packets=int(ag["n"]),
        frames=int(ag["frames"]),
        outcomes={k: int(outc.get(k, 0)) for k in ("delivered", "dropped", "consumed", "ignored")},
        duration_ns=dur, ncpu=ncpu,
    )


def overhead(run: Run, keys: tuple[str, ...] = DEFAULT_SORT,
             percent_limit: float = 0.0) -> pl.DataFrame:
    """Overhead rows: the key columns, ns, frames, percent (of all modeled CPU ns), sorted."""
    total = run.scan("cpu").select(pl.col("ns").sum()).collect().item() or 0
    if any(k in ("flow", "queue") for k in keys):
        lf = run.scan("packets")
        long = pl.concat(
            [
                lf.select(
                    *[pl.col(PACKET_KEYS[k]) for k in keys if k != "stage"],
                    pl.lit(s).alias("stage"), pl.col(f"cpu_{s}").alias("ns"),
                    pl.col(f"cpu_{s}").is_not_null().cast(pl.UInt32).alias("frames"),
                ).filter(pl.col("ns").is_not_null())
                for s in STAGE_IDS
            ]
        )
        cols = [PACKET_KEYS[k] for k in keys]
        df = long.group_by(cols).agg(pl.col("ns").sum(), pl.col("frames").sum()).collect()
        if "stage" not in keys:  # count each packet once, not once per stage it reached
            touched = pl.any_horizontal([pl.col(f"cpu_{s}").is_not_null() for s in STAGE_IDS])
            n = lf.filter(touched).group_by(cols).agg(pl.len().alias("frames")).collect()
            df = df.drop("frames").join(n, on=cols, how="left", nulls_equal=True)
    else:
        cols = [CPU_KEYS[k] for k in keys]
        df = (
            run.scan("cpu")
            .with_columns(pl.col(c).cast(pl.String) for c in cols if c not in ("cpu",))
            .group_by(cols)
            .agg(pl.col("ns").sum(), pl.col("frames").cast(pl.Int64).sum())
            .collect()
        )
    df = df.rename({CPU_KEYS.get(k, PACKET_KEYS.get(k, k)): k for k in keys})
    df = df.with_columns(
        (pl.col("ns") * 100.0 / total if total else pl.lit(0.0)).alias("percent"),
        pl.col("frames").cast(pl.Int64),
    )
    df = df.sort(["percent", *keys], descending=[True, *([False] * len(keys))], nulls_last=True)
    if percent_limit > 0:
        df = df.filter(pl.col("percent") >= percent_limit)
    return df


def kernel_symbols(run: Run) -> set[str]:
    """Symbols perf would mark [k]: those whose dso is the kernel image or a module."""
    df = (
        run.scan("cpu").select(pl.col("symbol").cast(pl.String), pl.col("dso").cast(pl.String))
        # kernel image and modules are bracketed; perf's user-space pseudo-objects are too
        .filter(pl.col("dso").str.starts_with("[")
                & ~pl.col("dso").is_in(["[vdso]", "[vsyscall]", "[unknown]", "[heap]", "[stack]"]))
        .select("symbol").unique().collect()
    )
    return set(df["symbol"].to_list())


def stage_latency(run: Run) -> list[dict[str, Any]]:
    """Per stage: packets reaching it, wait and CPU percentiles/mean/total (ns)."""
    q = packet_stats(run)
    rows = []
    for s in STAGE_IDS:
        w, c = q[f"wait_{s}"], q[f"cpu_{s}"]
        if not w["count"] and not c["count"]:
            continue
        rows.append({"stage": s, "packets": int(max(w["count"], c["count"])),
                     "wait": _no_cdf(w), "cpu": _no_cdf(c)})
    return rows


def end_to_end(run: Run) -> dict[str, Any]:
    """t_done - t_wire of delivered packets: count, mean, p50/p99/p99.9, max."""
    return _no_cdf(packet_stats(run)["e2e"])


def drops(run: Run) -> pl.DataFrame:
    """Drops by stage and reason, most first (ties in path order)."""
    df = (
        run.scan("packets").filter(pl.col("outcome") == "dropped")
        .group_by(pl.col("drop_stage").cast(pl.String).alias("stage"),
                  pl.col("drop_reason").cast(pl.String).alias("reason"))
        .len("count").collect()
    )
    return df.with_columns(
        pl.col("stage").replace_strict(STAGE_INDEX, default=len(STAGE_INDEX)).alias("_o")
    ).sort(["count", "_o", "reason"], descending=[True, False, False]).drop("_o")


def latency_cdf(run: Run) -> dict[str, dict[str, list[int]]]:
    """Per stage, 101 evenly spaced quantiles of wait and cpu (for CDF plots; bounded size)."""
    out: dict[str, dict[str, list[int]]] = {}
    for c, d in packet_stats(run).items():
        if not d["count"]:
            continue
        if c == "e2e":
            out.setdefault("end-to-end", {})["total"] = d["cdf"]
        else:
            kind, _, stage = c.partition("_")
            out.setdefault(stage, {})[kind] = d["cdf"]
    return out


def stage_symbols(run: Run) -> dict[str, str]:
    """stage id → the symbol carrying most of its CPU time (what a journey row names)."""
    df = (
        run.scan("cpu").filter(pl.col("stage").is_not_null())
        .group_by(pl.col("stage").cast(pl.String), pl.col("symbol").cast(pl.String))
        .agg(pl.col("ns").sum())
        .sort(["stage", "ns", "symbol"], descending=[False, True, False])
        .group_by("stage", maintain_order=True).first().collect()
    )
    return dict(zip(df["stage"].to_list(), df["symbol"].to_list(), strict=True))


def journey_sample(run: Run, n: int = 40) -> pl.DataFrame:
    """A bounded sample of packets worth following: the slowest delivered, the first dropped and
    consumed ones, the first packets of the run and packets spread evenly over it (at most
    5n rows, in packet order)."""
    lf = run.scan("packets").with_columns(
        pl.col("outcome").cast(pl.String), pl.col("drop_stage").cast(pl.String),
        pl.col("drop_reason").cast(pl.String),
        (pl.col("t_done") - pl.col("t_wire")).alias("latency"),
    )
    parts = [
        lf.filter(pl.col("outcome") == "delivered").top_k(n, by=["latency", "pkt"],
                                                          reverse=[False, True]),
        lf.filter(pl.col("outcome") == "dropped").head(n),
        lf.filter(pl.col("outcome") == "consumed").head(n),
        lf.head(n),
    ]
    total = run.scan("packets").select(pl.len()).collect().item()
    if total > 4 * n:  # and packets spread evenly over the whole run
        parts.append(lf.gather_every(total // n))
    return pl.concat(parts).unique("pkt").sort("pkt").collect()


def journeys(run: Run, n: int = 40) -> list[dict[str, Any]]:
    """Per sampled packet, pwru-like steps: [t_ns, stage, symbol, wait_ns, cpu_ns, note]."""
    from replay.report.labels import flow_labels

    df = journey_sample(run, n)
    syms = stage_symbols(run)
    names = flow_labels(run, df["flow"].to_list())
    out = []
    for r in df.iter_rows(named=True):
        steps: list[list[Any]] = []
        flow = names.get(r["flow"], f"flow {r['flow']}")
        if r["t_wire"] is not None:
            steps.append([r["t_wire"], "wire", "", None, None, f"queue {r['queue']}"])
        if r["t_irq"] is not None:
            steps.append([r["t_irq"], "irq", "", None, None, f"cpu {r['cpu']}"])
        if r["t_poll"] is not None:
            steps.append([r["t_poll"], "poll", "napi_poll", None, None, ""])
        t = r["t_wire"]
        for s in STAGE_IDS:
            w, c = r[f"wait_{s}"], r[f"cpu_{s}"]
            if w is None and c is None:
                continue
            t = (t or 0) + (w or 0) + (c or 0)
            note = ""
            if r["outcome"] == "dropped" and r["drop_stage"] == s:
                note = f"drop: {r['drop_reason']}"
            steps.append([t, s, syms.get(s, ""), w, c, note])
        if r["outcome"] == "dropped" and not any(st[5].startswith("drop") for st in steps):
            steps.append([r["t_done"], r["drop_stage"], "", None, None,
                          f"drop: {r['drop_reason']}"])
        lat = r["latency"]
        out.append({
            "pkt": r["pkt"], "frame": r["frame"], "outcome": r["outcome"],
            "label": f"#{r['pkt']} {r['outcome']}"
                     + (f" {lat} ns" if lat is not None else "") + f" {flow}",
            "title": f"packet {r['pkt']} (frame {r['frame']}, loop {r['loop']}) {flow}: "
                     f"{r['outcome']}" + (f", {lat} ns wire to done" if lat is not None else ""),
            "steps": steps,
        })
    return out


def top_flows(run: Run, n: int = 25) -> pl.DataFrame:
    """Flows with the most drops, then the highest p99 latency (delivered, nearest rank)."""
    lf = run.scan("packets").filter(pl.col("outcome") != "ignored").with_columns(
        pl.col("outcome").cast(pl.String)
    )
    counts = lf.group_by("flow").agg(
        pl.len().alias("packets"), (pl.col("outcome") == "delivered").sum().alias("delivered"),
        (pl.col("outcome") == "dropped").sum().alias("dropped"),
    )
    # nearest rank within each flow (groups here are never empty: delivered rows only)
    def rank(q: float) -> pl.Expr:
        idx = ((pl.len() * q).ceil().cast(pl.Int64) - 1).clip(0, None)
        return pl.col("lat").sort().gather(idx).first()

    lat = (lf.filter(pl.col("outcome") == "delivered")
           .select("flow", (pl.col("t_done") - pl.col("t_wire")).alias("lat")).collect())
    if lat.height:
        per = lat.group_by("flow").agg(rank(0.5).alias("p50"), rank(0.99).alias("p99"),
                                       pl.col("lat").max().alias("max"))
    else:  # (polars 1.x panics on gather in an aggregation over an empty frame)
        per = pl.DataFrame(schema={"flow": pl.UInt32, "p50": pl.Int64, "p99": pl.Int64,
                                   "max": pl.Int64})
    return (
        counts.collect().join(per, on="flow", how="left")
        .sort(["dropped", "p99", "flow"], descending=[True, True, False], nulls_last=True)
        .head(n)
    )


def flame_nodes(run: Run) -> pl.DataFrame:
    """ns per (context, symbol): the leaves of the icicle (root → context → symbol)."""
    return (
        run.scan("cpu")
        .group_by(pl.col("context").cast(pl.String), pl.col("symbol").cast(pl.String))
        .agg(pl.col("ns").sum())
        .sort(["context", "ns", "symbol"], descending=[False, True, False])
        .collect()
    )


def icicle_tree(leaves: pl.DataFrame) -> dict[str, list[Any]]:
    """(context, symbol, ns) leaves → plotly icicle ids/labels/parents/values (branch totals)."""
    ids, labels, parents, values = ["all"], ["all CPU time"], [""], [int(leaves["ns"].sum())]
    for (ctx,), part in leaves.group_by(["context"], maintain_order=True):
        ids.append(f"c/{ctx}")
        labels.append(str(ctx))
        parents.append("all")
        values.append(int(part["ns"].sum()))
        for sym, ns in zip(part["symbol"].to_list(), part["ns"].to_list(), strict=True):
            ids.append(f"c/{ctx}/{sym}")
            labels.append(str(sym))
            parents.append(f"c/{ctx}")
            values.append(int(ns))
    return {"ids": ids, "labels": labels, "parents": parents, "values": values}
