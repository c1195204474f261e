"""Report tables → the page's deeper sections: icicle of CPU time, per-CPU timelines, occupancy
with drops over time, the kernel engineer's figures, and the counters as the kernel prints them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from replay.report import aggregate as ag
from replay.report import analysis as an
from replay.report import counters as kc
from replay.report.sections import LAYOUT, esc, html_table

if TYPE_CHECKING:
    from replay.report.html import Page
    from replay.store.rundir import Run

CONTEXT_COLORS = {"hardirq": "#d9534f", "softirq": "#f0ad4e", "ksoftirqd": "#8e6bbf",
                  "task": "#5cb85c"}


def flame(page: Page, run: Run, t: ag.Totals, **_: Any) -> None:
    tree = ag.icicle_tree(ag.flame_nodes(run))
    fig = go.Figure(go.Icicle(
        ids=tree["ids"], labels=tree["labels"], parents=tree["parents"], values=tree["values"],
        branchvalues="total", tiling={"orientation": "v"}, root={"color": "#eef1f4"},
        hovertemplate="%{label}<br>%{value} ns<br>%{percentRoot:.2%} of all<extra></extra>",
    ))
    fig.update_layout(title="CPU time by context and symbol (click to zoom)",
                      **{**LAYOUT, "margin": {"l": 10, "r": 10, "t": 40, "b": 10}})
    page.add("flame", "CPU time by context and symbol", page.figure("flame-icicle", fig, "tall"))


def timelines(page: Page, run: Run, t: ag.Totals, **_: Any) -> None:
    tl = an.cpu_timeline(run, t.duration_ns)
    cpus = sorted(tl["cpus"], key=int)
    if not cpus:
        return
    w = tl["bin_ns"]
    x = [i * w for i in range(tl["bins"])]
    fig = make_subplots(rows=len(cpus), cols=1, shared_xaxes=True,
                        subplot_titles=[f"CPU {c}" for c in cpus], vertical_spacing=0.04)
    for i, c in enumerate(cpus, start=1):
        for ctx in ("hardirq", "softirq", "ksoftirqd", "task"):
            ys = tl["cpus"][c].get(ctx)
            if ys is None:
                continue
            fig.add_scatter(x=x, y=ys, mode="lines", stackgroup=f"cpu{c}", name=ctx,
                            legendgroup=ctx, showlegend=i == 1, row=i, col=1,
                            line={"width": 0.5, "color": CONTEXT_COLORS.get(ctx)})
        fig.update_yaxes(range=[0, 100], title_text="%", row=i, col=1)
    fig.update_xaxes(title_text="ns since replay start", row=len(cpus), col=1)
    height = max(320, 170 * len(cpus) + 80)
    fig.update_layout(title=f"Per-CPU time by context (% of each {w} ns bin, like mpstat "
                            "%irq / %soft)", height=height, **LAYOUT)
    page.add("timelines", "Per-CPU timelines", page.figure("cpu-timeline", fig, height=height))


def occupancy(page: Page, run: Run, t: ag.Totals, **_: Any) -> None:
    oc = an.occupancy(run, t.duration_ns)
    w = oc["bin_ns"]
    x = [i * w for i in range(oc["bins"])]
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=["occupancy (max per bin)", "drops per bin"],
                        specs=[[{"secondary_y": True}], [{}]])
    for kind, series in oc["occupancy"].items():
        for who, ys in series.items():
            label = {"ring": "ring q", "backlog": "backlog cpu", "sock": "socket app"}[kind]
            fig.add_scatter(x=x, y=ys, mode="lines+markers", name=f"{label}{who}",
                            connectgaps=False, row=1, col=1, secondary_y=kind == "sock")
    for reason, ys in oc["drops"].items():
        fig.add_bar(x=x, y=ys, name=f"drop {reason}", row=2, col=1)
    fig.update_yaxes(title_text="packets", row=1, col=1, secondary_y=False)
    fig.update_yaxes(title_text="socket bytes", row=1, col=1, secondary_y=True)
    fig.update_layout(title="Ring, backlog and socket occupancy with drops over time",
                      barmode="stack", height=560, **LAYOUT)
    page.add("occupancy", "Occupancy and drops over time", page.figure("occupancy", fig, "tall"))


def kernel(page: Page, run: Run, t: ag.Totals, **_: Any) -> None:
    k = an.kernel_figures(run, t.duration_ns)
    pw = k["napi_poll_work"]
    fig = go.Figure(go.Bar(x=[h["work"] for h in pw["histogram"]],
                           y=[h["polls"] for h in pw["histogram"]], marker_color="#2459a8"))
    fig.update_layout(title=f"Packets per napi_poll (weight {pw['weight']})",
                      xaxis_title="packets done in the poll", yaxis_title="polls", **LAYOUT)
    sr, kd = k["softirq_raise_to_entry_ns"], k["ksoftirqd_delay_ns"]
    pairs = [
        ("polls / using their whole weight",
         f"{pw['polls']} / {pw['whole_weight']}"
         + (f" ({100 * pw['whole_weight_ratio']:.2f}%)" if pw["whole_weight_ratio"] is not None
            else "")),
        ("napi_poll exits", ", ".join(f"{a}: {b}" for a, b in pw["exit"].items()) or "-"),
        ("time_squeeze: budget / time",
         f"{k['time_squeeze']['budget']} / {k['time_squeeze']['time']}"),
        ("GRO: segments / super-skbs (ratio)",
         f"{k['gro']['segments']} / {k['gro']['skbs']} ({k['gro']['ratio']})"),
        ("softirq raise→entry (ns)", _pct(sr)),
        ("ksoftirqd wake→run (ns)", _pct(kd)),
        ("RSS imbalance (max/mean packets per queue)", k["rss"]["queue_imbalance"]),
        ("CPU imbalance (max/mean busy ns per CPU)", k["rss"]["cpu_imbalance"]),
    ]
    from replay.report.sections import kv_table

    irq = html_table("irq-table", ["Queue", "IRQs", "IRQs/s (modeled)", "Packets"],
                     [[r["queue"], r["irqs"], r["per_second"],
                       k["rss"]["packets_per_queue"].get(str(r["queue"]), 0)] for r in k["irq"]],
                     [True, True, True, True])
    page.add("kernel", "What a kernel engineer looks for",
             '<div class="figs"><div>' + kv_table(pairs) + "<h3>IRQs per queue</h3>" + irq
             + "</div>" + page.figure("poll-work", fig) + "</div>")


def _pct(d: dict[str, Any]) -> str:
    if not d.get("count"):
        return "none"
    return (f"n {d['count']}, p50 {d['p50']}, p99 {d['p99']}, p99.9 {d['p999']}, "
            f"max {d['max']}")


def counters(page: Page, run: Run, t: ag.Totals, **_: Any) -> None:
    c = run.counters
    if not c:
        page.add("counters", "Counters", "<p>run.json has no counters.</p>")
        return
    blocks = [
        ("/proc/net/softnet_stat", kc.softnet_stat_lines(c)),
        ("/proc/interrupts (NIC vectors)", kc.interrupts_lines(c)),
        ("/proc/softirqs (NET_RX)", kc.softirqs_lines(c)),
        ("ethtool -S", kc.ethtool_lines(c)),
        ("nstat -a", kc.nstat_lines(c, t.duration_ns)),
        ("NAPI per queue (model)", kc.napi_lines(c)),
    ]
    sn = c.get("softnet_stat", [])
    cols = ["cpu", "processed", "dropped", "time_squeeze", "received_rps", "flow_limit_count"]
    softnet = html_table("softnet-table", cols, [[r.get(k, 0) for k in cols] for r in sn],
                         [True] * len(cols))
    body = "<h3>softnet_stat, decoded</h3>" + softnet + "".join(
        f"<h3>{esc(title)}</h3><pre>{esc(chr(10).join(lines))}</pre>" for title, lines in blocks
    )
    page.add("counters", "Counters (as the kernel prints them)", body)
