"""summary.parquet → report.html: p50/p99 latency and drops against each knob, per trace.

Self-contained: plotly.js is inlined once and nothing is fetched at view time. Every string that
comes from a file name or a config value is escaped: HTML-escaped in the page, and in the figure
JSON `<`, `>` and `&` become \\u escapes, so a trace named `</script>…` stays text.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any

import polars as pl

from replay.pipeline.spec import Spec

_JSON_ESC = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}
h1{font-size:20px}h2{font-size:17px;margin-top:32px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:12.5px;margin:8px 0}
td,th{border:1px solid #ddd;padding:3px 7px;text-align:right}
th{background:#f4f4f4}td.l,th.l{text-align:left}
tr.best{background:#fff4c2}tr.failed{background:#fde2e2}
.figs{display:flex;flex-wrap:wrap;gap:8px}.fig{width:560px;height:420px}
.bad{color:#b00}td.bad{min-width:360px}.note{color:#555}code{background:#f4f4f4;padding:0 3px}
"""


def _js(obj: Any) -> str:
    return json.dumps(obj, default=str).translate(_JSON_ESC)


def _e(x: Any) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def best_jobs(df: pl.DataFrame) -> dict[str, int]:
    """Per trace, the job with the fewest drops, then the lowest p99, then p50 (jobs that ran)."""
    ok = df.filter(pl.col("status") == "ok")
    if ok.is_empty():
        return {}
    ranked = ok.sort(
        ["trace", "dropped", "latency_p99_ns", "latency_p50_ns", "job"], nulls_last=True
    )
    return {
        r["trace"]: r["job"]
        for r in ranked.group_by("trace", maintain_order=True).first().iter_rows(named=True)
    }


def _figure(sub: pl.DataFrame, knob: str, best: int | None) -> dict[str, Any]:
    """Latency (p50, p99) and drops against one knob's values for one trace; best starred."""
    ok = sub.filter(pl.col("status") == "ok")
    x = [_e(v) for v in ok[knob].to_list()]
    text = [f"job {j}" for j in ok["job"].to_list()]
    data: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "mode": "markers",
            "name": "p50 latency",
            "x": x,
            "y": ok["latency_p50_ns"].to_list(),
            "text": text,
            "marker": {"color": "#1f77b4"},
        },
        {
            "type": "scatter",
            "mode": "markers",
            "name": "p99 latency",
            "x": x,
            "y": ok["latency_p99_ns"].to_list(),
            "text": text,
            "marker": {"color": "#d62728"},
        },
        {
            "type": "scatter",
            "mode": "markers",
            "name": "drops",
            "x": x,
            "y": ok["dropped"].to_list(),
            "yaxis": "y2",
            "text": text,
            "marker": {"color": "#7f7f7f", "symbol": "x"},
        },
    ]
    # the best a knob value can do whatever the other knobs are: the lower envelope, as a line
    env = (
        ok.with_columns(pl.col(knob).map_elements(_e, return_dtype=pl.String).alias("_x"))
        .group_by("_x", maintain_order=True)
        .agg(pl.col("latency_p99_ns").min(), pl.col("dropped").min())
    )
    if ok.height > env.height:
        for col, name, color, axis in (
            ("latency_p99_ns", "lowest p99 at this value", "#d62728", "y"),
            ("dropped", "fewest drops at this value", "#7f7f7f", "y2"),
        ):
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "name": name,
                    "x": env["_x"].to_list(),
                    "y": env[col].to_list(),
                    "yaxis": axis,
                    "line": {"color": color, "dash": "dot", "width": 1},
                    "hoverinfo": "skip",
                }
            )
    b = ok.filter(pl.col("job") == best) if best is not None else ok.clear()
    if not b.is_empty():
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": "best",
                "x": [_e(b[knob][0])],
                "y": [b["latency_p99_ns"][0]],
                "text": [f"best: job {best}"],
                "marker": {
                    "symbol": "star",
                    "size": 18,
                    "color": "#f5b700",
                    "line": {"width": 1, "color": "#222"},
                },
            }
        )
    max_drops = int(ok["dropped"].max() or 0)
    order = []
    for v in sub[knob].to_list():
        if _e(v) not in order:
            order.append(_e(v))
    layout = {
        "title": {"text": _e(knob)},
        "xaxis": {
            "title": {"text": _e(knob)},
            "type": "category",
            "categoryorder": "array",
            "categoryarray": order,
        },
        "yaxis": {"title": {"text": "latency (ns)"}, "rangemode": "tozero", "tickformat": ",d"},
        "yaxis2": {
            "title": {"text": "drops"},
            "overlaying": "y",
            "side": "right",
            "rangemode": "tozero",
            "tickformat": ",d",  # drops are counts
            # a few drops (or none) would get repeated integer ticks; step by one instead
            **({"dtick": 1, "range": [0, max(1, max_drops) * 1.05]} if max_drops <= 5 else {}),
        },
        "legend": {"orientation": "h", "y": -0.25},
        "margin": {"l": 60, "r": 60, "t": 40, "b": 60},
    }
    return {"data": data, "layout": layout}


def _table(sub: pl.DataFrame, knobs: list[str], best: int | None) -> str:
    cols = [
        "job",
        *knobs,
        "seed",
        "status",
        "frames",
        "delivered",
        "dropped",
        "latency_p50_ns",
        "latency_p99_ns",
    ]
    cols += [c for c in sub.columns if c.startswith("drops_")]
    head = "".join(
        f'<th class="l">{_e(c)}</th>' if c in knobs else f"<th>{_e(c)}</th>" for c in cols
    )
    rows = []
    for r in sub.iter_rows(named=True):
        cls = "best" if r["job"] == best else ("failed" if r["status"] != "ok" else "")
        cells = "".join(
            f'<td class="l">{_e(r[c])}</td>' if c in knobs else f"<td>{_e(r[c])}</td>" for c in cols
        )
        if r.get("report"):
            link = f'<a href="{_e(r["report"])}">report</a>'
        elif r.get("run"):
            link = f'<a href="{_e(r["run"])}/">run</a>'
        else:
            link = ""
        mark = "★ best" if r["job"] == best else ""
        err = f'<td class="l bad">{_e(r["error"])}</td>' if r["error"] else '<td class="l"></td>'
        rows.append(
            f'<tr class="{cls}">{cells}<td class="l">{link}</td><td class="l">{mark}</td>{err}</tr>'
        )
    return (
        f'<table><tr>{head}<th class="l">job report</th><th class="l"></th>'
        f'<th class="l">error</th></tr>{"".join(rows)}</table>'
    )


def _overview(df: pl.DataFrame, traces: list[str], knobs: list[str], best: dict[str, int]) -> str:
    """One row per trace: its jobs, failures and the best configuration, linking to its section."""
    head = "".join(f'<th class="l">{_e(k)}</th>' for k in knobs)
    rows = []
    for n, trace in enumerate(traces):
        sub = df.filter(pl.col("trace") == trace)
        failed = sub.filter(pl.col("status") != "ok").height
        b = sub.filter(pl.col("job") == best[trace]).row(0, named=True) if trace in best else None
        cells = "".join(f'<td class="l">{_e(b[k]) if b else ""}</td>' for k in knobs)
        figs = (
            f"<td>{_e(b['dropped'])}</td><td>{_e(b['latency_p50_ns'])}</td>"
            f"<td>{_e(b['latency_p99_ns'])}</td>"
            if b
            else "<td></td><td></td><td></td>"
        )
        cls = " class='failed'" if failed == sub.height else ""
        rows.append(
            f"<tr{cls}><td class='l'><a href='#t{n}'>{_e(trace)}</a></td><td>{sub.height}</td>"
            f"<td class='{'bad' if failed else ''}'>{failed}</td>{cells}{figs}</tr>"
        )
    return (
        "<h2>Best configuration per trace</h2><table><tr><th class='l'>trace</th><th>jobs</th>"
        f"<th>failed</th>{head}<th>dropped</th><th>p50 ns</th><th>p99 ns</th></tr>"
        f"{''.join(rows)}</table>"
    )


def render(df: pl.DataFrame, spec: Spec, knobs: list[str], check_failures: list[str]) -> str:
    from plotly.offline import get_plotlyjs

    best = best_jobs(df)
    n_failed = df.filter(pl.col("status") != "ok").height
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{_e(spec.name)}: sweep report</title><style>{_CSS}</style>",
        f"<script>{get_plotlyjs()}</script></head><body>",
        f"<h1>Pipeline <code>{_e(spec.name)}</code></h1>",
        f"<p>{df.height} jobs over {df['trace'].n_unique()} trace(s); knobs: "
        f"{', '.join(f'<code>{_e(k)}</code>' for k in knobs) or 'none'}; "
        f"<span class='{'bad' if n_failed else ''}'>{n_failed} failed</span>. "
        "Best configuration per trace: fewest drops, then lowest p99 latency (★).</p>",
    ]
    if spec.check is not None:
        parts.append(f"<h2>Check against <code>{_e(spec.check.baseline.name)}</code></h2>")
        parts.append(
            "<ul>" + "".join(f"<li class='bad'>{_e(f)}</li>" for f in check_failures) + "</ul>"
            if check_failures
            else "<p>No threshold crossed.</p>"
        )
    traces = df["trace"].unique(maintain_order=True).to_list()
    parts.append(_overview(df, traces, knobs, best))
    fig_id = 0
    for n, trace in enumerate(traces):
        sub = df.filter(pl.col("trace") == trace)
        parts.append(f"<h2 id='t{n}'>{_e(trace)}</h2>")
        if knobs and sub.filter(pl.col("status") == "ok").height:
            parts.append("<div class='figs'>")
            for k in knobs:
                fig = _figure(sub, k, best.get(trace))
                parts.append(
                    f"<div class='fig' id='f{fig_id}'></div><script>Plotly.newPlot('f{fig_id}',"
                    f'{_js(fig["data"])},{_js(fig["layout"])},{{"displaylogo":false,"responsive":true}});</script>'
                )
                fig_id += 1
            parts.append("</div>")
        parts.append(_table(sub, knobs, best.get(trace)))
    parts.append("</body></html>\n")
    return "".join(parts)


def write_sweep_report(
    df: pl.DataFrame, spec: Spec, path: Path, knobs: list[str], check_failures: list[str]
) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(render(df, spec, knobs, check_failures))
    tmp.replace(path)
