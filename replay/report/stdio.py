"""Run directory → `perf report --stdio`-shaped text (Overhead, latency, drops, counters).

The Overhead block follows perf's layout (tools/perf/ui/stdio/hist.c): `# ` headers with a
dotted underline, each column padded to its widest entry and two spaces between columns, the
last column unpadded, `%7.2f%%`-style overhead, kernel symbols as `[k] sym`, user ones as
`[.] sym`. The sections after it keep the same comment/column grammar so `grep -v '^#'` still
gives the numbers.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from replay.report import aggregate as ag
from replay.report import counters as kc
from replay.report import labels
from replay.store.rundir import Run, read_run

HEADERS = {"comm": "Command", "dso": "Shared Object", "sym": "Symbol", "cpu": "CPU",
           "stage": "Stage", "flow": "Flow", "queue": "Queue", "context": "Context"}


def table(headers: Sequence[str], rows: Sequence[Sequence[str]],
          right: Sequence[bool]) -> list[str]:
    """perf's column grammar: '# ' + headers, a dotted rule, '#', then rows (2-space gaps)."""
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        out = []
        for i, (c, w) in enumerate(zip(cells, widths, strict=True)):
            last = i == len(cells) - 1
            out.append(c.rjust(w) if right[i] else (c if last else c.ljust(w)))
        return "  ".join(out).rstrip()

    # rows are indented by two spaces so they line up under the "# " of the header
    return ["# " + line(headers), "# " + line(["." * w for w in widths]), "#",
            *("  " + line(r) for r in rows)]


def _fmt_key(key: str, value: object, ksyms: set[str], flow_names: dict[int, str]) -> str:
    if value is None:
        return "[overhead]" if key == "stage" else "[unknown]"
    if key == "sym":
        return f"[{'k' if value in ksyms else '.'}] {value}"
    if key == "flow":
        return flow_names.get(int(value), f"flow {value}")  # type: ignore[call-overload]
    return str(value)


def overhead_lines(run: Run, keys: tuple[str, ...], percent_limit: float,
                   show_counts: bool) -> list[str]:
    df = ag.overhead(run, keys, percent_limit)
    ksyms = ag.kernel_symbols(run) if "sym" in keys else set()
    flow_names = labels.flow_labels(run, df["flow"].to_list()) if "flow" in keys else {}
    headers = ["Overhead"] + (["Frames"] if show_counts else []) + [HEADERS[k] for k in keys]
    right = [True] + ([True] if show_counts else []) + [k in ("cpu", "queue") for k in keys]
    rows = []
    for r in df.iter_rows(named=True):
        cells = [f"{r['percent']:.2f}%"]
        if show_counts:
            cells.append(str(r["frames"]))
        cells += [_fmt_key(k, r[k], ksyms, flow_names) for k in keys]
        rows.append(cells)
    return table(headers, rows, right)


def _n(v: object) -> str:
    return "-" if v is None else str(v)


def latency_lines(run: Run) -> list[str]:
    rows = []
    for s in ag.stage_latency(run):
        w, c = s["wait"], s["cpu"]
        rows.append([s["stage"], str(s["packets"]), _n(w["p50"]), _n(w["p99"]), _n(w["p999"]),
                     _n(c["p50"]), _n(c["p99"]), _n(c["p999"])])
    out = ["#",
           "# Latency per stage (ns; nearest-rank percentiles over the packets that reached it)",
           "#"]
    out += table(["Stage", "Packets", "wait p50", "wait p99", "wait p99.9", "cpu p50", "cpu p99",
                  "cpu p99.9"], rows, [False] + [True] * 7)
    e = ag.end_to_end(run)
    out.append("#")
    if e["count"]:
        out.append(
            f"# End to end (delivered, t_done - t_wire, ns): count {e['count']}  mean {e['mean']}"
            f"  p50 {e['p50']}  p99 {e['p99']}  p99.9 {e['p999']}  max {e['max']}"
        )
    else:
        out.append("# End to end: no packet was delivered")
    return out


def drop_lines(run: Run) -> list[str]:
    df = ag.drops(run)
    out = ["#", "# Drops by stage and reason", "#"]
    if df.height == 0:
        return [*out, "# (no drops)"]
    rows = [[str(r["count"]), r["stage"] or "-", r["reason"] or "-"]
            for r in df.iter_rows(named=True)]
    return out + table(["Count", "Stage", "Reason"], rows, [True, False, False])


def mpstat_lines(run: Run, duration_ns: int, intervals: int = 10) -> list[str]:
    """Like `mpstat -P ALL`: per interval and CPU, % of time in hardirq/softirq/ksoftirqd/task."""
    from replay.report.analysis import cpu_timeline

    tl = cpu_timeline(run, duration_ns, intervals)
    rows = []
    for i in range(tl["bins"]):
        for c in sorted(tl["cpus"], key=int):
            ctx = tl["cpus"][c]
            vals = [ctx.get(k, [0.0] * tl["bins"])[i] for k in
                    ("hardirq", "softirq", "ksoftirqd", "task")]
            rows.append([str(i * tl["bin_ns"]), c, *(f"{v:.2f}" for v in vals)])
    out = ["#", f"# CPU time by context per {tl['bin_ns']} ns interval (like mpstat %irq %soft)",
           "#"]
    return out + table(["t (ns)", "CPU", "%hi", "%si", "%ksoftirqd", "%task"], rows,
                       [True] * 6)


def kernel_lines(run: Run, duration_ns: int) -> list[str]:
    from replay.report.analysis import kernel_figures

    k = kernel_figures(run, duration_ns)
    pw, g, sq = k["napi_poll_work"], k["gro"], k["time_squeeze"]

    def block(d: dict[str, int | None]) -> str:
        if not d.get("count"):
            return "none"
        return f"n {d['count']}  p50 {d['p50']}  p99 {d['p99']}  p99.9 {d['p999']}  max {d['max']}"

    hist = "  ".join(f"{h['work']}:{h['polls']}" for h in pw["histogram"]) or "none"
    out = [
        "#", "# Kernel figures", "#",
        f"# napi_poll: {pw['polls']} polls, {pw['whole_weight']} used their whole weight "
        f"({pw['weight']})",
        f"# napi_poll work histogram (packets:polls): {hist}",
        "# napi_poll exits: " + (", ".join(f"{a} {b}" for a, b in pw["exit"].items()) or "none"),
        f"# time_squeeze: budget {sq['budget']}, time {sq['time']}",
        f"# GRO: {g['segments']} segments in {g['skbs']} skbs (ratio {_n(g['ratio'])})",
        f"# softirq raise->entry (ns): {block(k['softirq_raise_to_entry_ns'])}",
        f"# ksoftirqd wake->run (ns): {block(k['ksoftirqd_delay_ns'])}",
        "# IRQs per queue: " + (", ".join(
            f"q{r['queue']} {r['irqs']} ({r['per_second']}/s)" for r in k["irq"]) or "none"),
        f"# RSS imbalance (max/mean): queues {_n(k['rss']['queue_imbalance'])}, "
        f"CPUs {_n(k['rss']['cpu_imbalance'])}",
    ]
    return out


def header_lines(run: Run) -> list[str]:
    t = ag.totals(run)
    m = run.meta
    o = t.outcomes
    lines = [f"# stack-replay report of run {run.path.name}"]
    if m.get("command"):
        lines.append(f"# Command: {m['command']}")
    for i in m.get("inputs", []):
        lines.append(f"# Input: {i.get('path')} ({i.get('frames')} frames, {i.get('format')})")
    lines += [
        "#",
        f"# Samples: {t.spans} of event 'cpu-clock' (modeled CPU spans x symbols)",
        f"# Event count (approx.): {t.cpu_ns} (ns of modeled CPU time)",
        f"# Frames: {t.frames} ({t.packets} packets replayed: delivered {o['delivered']}, "
        f"dropped {o['dropped']}, consumed {o['consumed']}, ignored {o['ignored']})",
        "#",
    ]
    return lines


def render_stdio(
    run_dir: str | os.PathLike[str] | Run,
    sort: str | tuple[str, ...] | None = None,
    percent_limit: float = 0.0,
    show_counts: bool = False,
    counters: bool = True,
) -> str:
    """The whole --stdio text of a run directory."""
    run = run_dir if isinstance(run_dir, Run) else read_run(run_dir)
    keys = sort if isinstance(sort, tuple) else ag.parse_sort(sort)
    lines = header_lines(run)
    lines += overhead_lines(run, keys, percent_limit, show_counts)
    lines += latency_lines(run)
    lines += drop_lines(run)
    if counters:
        duration = ag.totals(run).duration_ns
        lines += kernel_lines(run, duration)
        lines += mpstat_lines(run, duration)
        lines += kc.counter_lines(run)
    return "\n".join(lines) + "\n"

