"""Report tables → the HTML page's sections (each a function adding itself to the Page).

Section order follows issue 6: what was replayed, Overhead, latency per stage, drops, then the
deeper views. Every number shown is computed in aggregate.py (bounded sizes), every string passes
through `esc`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import plotly.graph_objects as go

from replay.report import aggregate as ag
from replay.report.labels import flow_labels

if TYPE_CHECKING:
    from replay.report.html import Page
    from replay.store.rundir import Run

WAIT_COLOR, CPU_COLOR = "#9db4d3", "#d9534f"
LAYOUT = {"margin": {"l": 60, "r": 20, "t": 40, "b": 50}, "template": "plotly_white",
          "font": {"size": 12}}


def esc(s: object) -> str:
    from replay.report.html import esc as _e

    return _e(s)


Cell = Any  # a display value, or (display, sort value)


def html_table(table_id: str, headers: Sequence[str], rows: Sequence[Sequence[Cell]],
               num: Sequence[bool], sortable: bool = True, cls: str = "") -> str:
    th = "".join(
        f'<th class="{"num" if n else ""}">{esc(h)}</th>' for h, n in zip(headers, num, strict=True)
    )
    body = []
    for r in rows:
        tds = []
        for c, n in zip(r, num, strict=True):
            shown, key = (c if isinstance(c, tuple) else (c, None))
            attr = f' data-v="{esc(key)}"' if key is not None else ""
            shown = "" if shown is None else shown
            tds.append(f'<td class="{"num" if n else ""}"{attr}>{esc(shown)}</td>')
        body.append("<tr>" + "".join(tds) + "</tr>")
    classes = " ".join(x for x in ("sortable" if sortable else "", cls) if x)
    return (f'<table id="{table_id}" class="{classes}"><thead><tr>{th}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>')


def kv_table(pairs: Sequence[tuple[str, object]]) -> str:
    rows = "".join(f"<tr><td>{esc(k)}</td><td class=\"mono\">{esc(v)}</td></tr>" for k, v in pairs)
    return f'<table class="kv">{rows}</table>'


def _flat(d: dict[str, Any], prefix: str = "") -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out += _flat(v, key + ".")
        else:
            out.append((key, v))
    return out


def config_differences(cfg: dict[str, Any]) -> list[tuple[str, object]]:
    """Resolved config keys whose value differs from replay.model.config's defaults."""
    from replay.model.config import default_config

    base = dict(_flat(default_config()))
    return [(k, f"{v!r} (default {base[k]!r})" if k in base else repr(v))
            for k, v in _flat(cfg) if k not in base or base[k] != v]


def replayed(page: Page, run: Run, t: ag.Totals, **_: Any) -> None:
    m = run.meta
    s = m.get("summary", {})
    lat = ag.end_to_end(run)
    o = t.outcomes
    key = [
        ("command", m.get("command", "")),
        ("frames / packets", f"{t.frames} / {t.packets}"),
        ("delivered / dropped / consumed / ignored",
         f"{o['delivered']} / {o['dropped']} / {o['consumed']} / {o['ignored']}"),
        ("modeled CPU time", f"{t.cpu_ns} ns"),
        ("duration (modeled)", f"{t.duration_ns} ns"),
        ("end-to-end latency (delivered)",
         f"p50 {lat['p50']} ns, p99 {lat['p99']} ns, p99.9 {lat['p999']} ns, max {lat['max']} ns"
         if lat["count"] else "no packet delivered"),
        ("seed", m.get("seed", "")),
        ("host addresses", ", ".join(map(str, m.get("host", {}).get("addresses", [])))
         + (" (inferred)" if m.get("host", {}).get("inferred") else "")),
    ]
    if m.get("host", {}).get("note"):
        key.append(("note", m["host"]["note"]))
    if "cpu_busy_ns" in s:
        key.append(("CPU busy per CPU (ns)", ", ".join(map(str, s["cpu_busy_ns"]))))
    inputs = html_table(
        "inputs-table", ["path", "format", "frames", "link types", "sha256"],
        [[i.get("path"), i.get("format"), i.get("frames"),
          ",".join(map(str, i.get("linktypes", []))), i.get("sha256")]
         for i in m.get("inputs", [])],
        [False, False, True, False, False], sortable=False, cls="mono",
    )
    cfg = _flat(m.get("config", {})) + [("replay." + k, v) for k, v in _flat(m.get("replay", {}))]
    cfg += [("costs." + k, v) for k, v in _flat(m.get("costs", {}))]
    diffs = config_differences(m.get("config", {}))
    diff_html = (kv_table(diffs) if diffs else "<p>None: every knob has its default.</p>")
    body = (
        "<h3>Key figures</h3>" + kv_table(key) + "<h3>Inputs</h3>" + inputs
        + "<h3>Configuration: differences from the defaults</h3>" + diff_html
        + "<h3>Configuration (fully resolved)</h3><div class=\"scroll\">" + kv_table(cfg)
        + "</div>"
    )
    page.add("replayed", "What was replayed", body)


def overhead(page: Page, run: Run, t: ag.Totals, **_: Any) -> None:
    keys = ("comm", "dso", "sym", "cpu", "context", "stage")
    df = ag.overhead(run, keys)
    ksyms = ag.kernel_symbols(run)
    rows = []
    for r in df.iter_rows(named=True):
        mark = "[k]" if r["sym"] in ksyms else "[.]"
        rows.append([(f"{r['percent']:.2f}%", round(r["percent"], 6)), r["ns"], r["frames"],
                     r["comm"], r["dso"], f"{mark} {r['sym']}", r["cpu"], r["context"],
                     r["stage"] or "[overhead]"])
    table = html_table("overhead-table",
                       ["Overhead", "ns", "Frames", "Command", "Shared Object", "Symbol", "CPU",
                        "Context", "Stage"],
                       rows, [True, True, True, False, False, False, True, False, False])
    body = (
        f'<p class="note">{t.cpu_ns} ns of modeled CPU time in {t.spans} span × symbol rows '
        "(perf's cpu-clock event). Click a header to sort; type to filter.</p>"
        '<input type="search" id="overhead-filter" data-table="overhead-table" '
        'placeholder="filter (symbol, command, stage…)">'
        f'<div class="scroll">{table}</div>'
    )
    page.add("overhead", "Overhead", body)


def latency(page: Page, run: Run, t: ag.Totals, **_: Any) -> None:
    stages = ag.stage_latency(run)
    names = [s["stage"] for s in stages]
    fig = go.Figure()
    fig.add_bar(y=names, x=[s["wait"]["mean"] or 0 for s in stages], name="wait (mean ns)",
                orientation="h", marker_color=WAIT_COLOR)
    fig.add_bar(y=names, x=[s["cpu"]["mean"] or 0 for s in stages], name="CPU (mean ns)",
                orientation="h", marker_color=CPU_COLOR)
    fig.update_layout(barmode="stack", title="Mean time per stage: wait + CPU (ns)",
                      yaxis={"autorange": "reversed"}, xaxis_title="ns", **LAYOUT)
    cdf = ag.latency_cdf(run)
    cfig = go.Figure()
    for stage, d in cdf.items():
        if stage == "end-to-end":
            continue
        for kind in ("wait", "cpu"):
            if kind in d:
                vals = d[kind]
                n = len(vals)
                cfig.add_scatter(x=vals, y=[(i + 1) / n for i in range(n)], mode="lines",
                                 name=f"{stage} {kind}", visible=True if kind == "wait"
                                 else "legendonly")
    if "end-to-end" in cdf:
        vals = cdf["end-to-end"]["total"]
        cfig.add_scatter(x=vals, y=[(i + 1) / len(vals) for i in range(len(vals))],
                         mode="lines", name="end to end", line={"width": 3, "color": "#1d232a"})
    cfig.update_layout(title="CDF per stage (wait; click the legend for CPU)",
                       xaxis={"title": "ns", "type": "log"}, yaxis_title="fraction", **LAYOUT)
    rows = []
    for s in stages:
        w, c = s["wait"], s["cpu"]
        rows.append([s["stage"], s["packets"], w["p50"], w["p99"], w["p999"], w["mean"],
                     c["p50"], c["p99"], c["p999"], c["mean"]])
    table = html_table("latency-table",
                       ["Stage", "Packets", "wait p50", "wait p99", "wait p99.9", "wait mean",
                        "cpu p50", "cpu p99", "cpu p99.9", "cpu mean"],
                       rows, [False] + [True] * 9)
    body = (
        '<div class="figs">' + page.figure("latency-stack", fig)
        + page.figure("latency-cdf", cfig) + "</div>"
        "<h3>Percentiles per stage (ns, nearest rank)</h3>" + table
    )
    page.add("latency", "Latency per stage", body)


def drops(page: Page, run: Run, t: ag.Totals, **_: Any) -> None:
    df = ag.drops(run)
    if df.height == 0:
        page.add("drops", "Drops", "<p>No packet was dropped.</p>")
        return
    fig = go.Figure()
    for stage in dict.fromkeys(df["stage"].to_list()):
        sub = df.filter(df["stage"] == stage)
        fig.add_bar(x=sub["reason"].to_list(), y=sub["count"].to_list(), name=str(stage))
    fig.update_layout(title="Drops by reason (colour: stage)", barmode="stack",
                      yaxis_title="packets", **LAYOUT)
    rows = [[r["count"], r["stage"], r["reason"]] for r in df.iter_rows(named=True)]
    table = html_table("drops-table", ["Count", "Stage", "Reason"], rows, [True, False, False])
    page.add("drops", "Drops by stage and reason",
             '<div class="figs">' + page.figure("drops-bar", fig) + f"<div>{table}</div></div>")


def journey(page: Page, run: Run, t: ag.Totals, journeys: int = 40, **_: Any) -> None:
    js = ag.journeys(run, journeys)
    page.data("journeys-data", js)
    body = (
        '<p class="note">Each step is the end of a stage, with the wait before it and its CPU '
        "time (like pwru's per-packet trace). The list holds the slowest delivered packets, "
        "the first dropped and consumed ones, and the first packets of the run.</p>"
        '<label>Packet <select id="pkt-select" aria-label="packet"></select></label>'
        '<div id="journey-view"></div>'
    )
    page.add("journey", "Packet journey", body)


def top_flows(page: Page, run: Run, t: ag.Totals, **_: Any) -> None:
    df = ag.top_flows(run, 25)
    if df.height == 0:
        return
    names = flow_labels(run, df["flow"].to_list())
    rows = [[r["flow"], names.get(r["flow"], ""), r["packets"], r["delivered"], r["dropped"],
             r["p50"], r["p99"], r["max"]] for r in df.iter_rows(named=True)]
    table = html_table("flows-table", ["Flow", "5-tuple", "Packets", "Delivered", "Dropped",
                                       "p50 ns", "p99 ns", "max ns"],
                       rows, [True, False, True, True, True, True, True, True])
    page.add("flows", "Top flows by latency and drops",
             '<p class="note">The 25 flows with the most drops, then the highest p99.</p>'
             + f'<div class="scroll">{table}</div>')


def all_sections() -> list[Callable[..., None]]:
    from replay.report import sections_deep as d

    return [replayed, overhead, latency, d.flame, d.timelines, d.occupancy, drops, d.kernel,
            d.counters, top_flows, journey]
