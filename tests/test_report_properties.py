"""Invariants of the report over random run directories (hypothesis)."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from replay.capture.schema import FRAMES_SCHEMA
from replay.model.stages import STAGE_IDS
from replay.report import aggregate as ag
from replay.report.export import export_text
from replay.report.html import render_html
from replay.report.stdio import render_stdio
from replay.store.rundir import read_run, write_run
from replay.store.schema import CPU_SCHEMA, EVENTS_SCHEMA, PACKETS_SCHEMA
from tests.runfixtures import _table, packet_row, run_json

names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1,
                max_size=12)


@st.composite
def runs(draw: Any) -> dict[str, Any]:
    n = draw(st.integers(1, 25))
    packets = []
    for i in range(n):
        depth = draw(st.integers(0, len(STAGE_IDS)))
        stages = [s for s in STAGE_IDS[:depth] if s != "backlog"]
        wait = {s: draw(st.integers(0, 10_000)) for s in stages}
        cpu = {s: draw(st.integers(0, 5_000)) for s in stages}
        outcome = "delivered" if depth == len(STAGE_IDS) else draw(
            st.sampled_from(["dropped", "consumed"]))
        drop = {"drop_stage": stages[-1] if stages else "driver",
                "drop_reason": draw(st.sampled_from(["NO_SOCKET", "SOCKET_RCVBUFF"]))
                } if outcome == "dropped" else {}
        packets.append(packet_row(i + 1, draw(st.integers(0, 3)), outcome, queue=0, cpu=0,
                                  t_wire=i * 1000, skb=i + 1, wait=wait, cpu_ns=cpu, **drop))
    cpu_rows = []
    for _ in range(draw(st.integers(1, 12))):
        start = draw(st.integers(0, 50_000))
        ns = draw(st.integers(1, 9_000))
        cpu_rows.append({"cpu": draw(st.integers(0, 3)), "start": start, "end": start + ns,
                         "context": draw(st.sampled_from(["hardirq", "softirq", "task"])),
                         "comm": draw(names), "dso": draw(st.sampled_from(["[kernel.kallsyms]",
                                                                           "app"])),
                         "symbol": draw(names), "stage": draw(st.sampled_from([None, "ip"])),
                         "category": "netdev", "ns": ns, "frames": draw(st.integers(0, 64))})
    return {"packets": packets, "cpu": cpu_rows, "path": draw(names)}


def write(tmp: Path, r: dict[str, Any]) -> Path:
    tables = {"frames": _table(FRAMES_SCHEMA, []), "packets": _table(PACKETS_SCHEMA, r["packets"]),
              "cpu": _table(CPU_SCHEMA, r["cpu"]), "events": _table(EVENTS_SCHEMA, [])}
    inputs = [{"path": r["path"], "sha256": "0", "frames": 1, "linktypes": [1],
               "format": "pcap"}]
    return write_run(tmp / "run", run_json("p", 1, 1, inputs=inputs, command=r["path"]), tables)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(runs())
def test_overhead_sums_to_100_and_exports_keep_every_ns(r: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as d:
        run = read_run(write(Path(d), r))
        total = sum(c["ns"] for c in r["cpu"])
        df = ag.overhead(run)
        assert abs(df["percent"].sum() - 100.0) < 1e-6
        assert df["percent"].to_list() == sorted(df["percent"].to_list(), reverse=True)
        assert int(df["ns"].sum()) == total
        folded = export_text(run, "folded").splitlines()
        assert sum(int(line.rpartition(" ")[2]) for line in folded) == total
        per_pkt = sum(v for p in r["packets"] for k, v in p.items()
                      if k.startswith("cpu_") and v is not None)
        assert int(ag.overhead(run, ("flow",))["ns"].sum()) == per_pkt
        speed = json.loads(export_text(run, "speedscope"))
        assert sum(sum(p["weights"]) for p in speed["profiles"]) == total
        text = render_stdio(run)
        assert len(text.split("# Overhead")[1].split("#\n# Latency")[0].splitlines()) == (
            3 + df.height)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(runs())
def test_no_foreign_string_reaches_the_page_unescaped(r: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as d:
        run = write(Path(d), r)
        page = render_html(run, Path(d) / "r.html").read_text()
        from plotly.offline import get_plotlyjs

        page = page.replace(get_plotlyjs(), "")
        # outside the JSON data blocks, every tag is one the report itself writes
        markup = re.sub(r'<script type="application/json" id="[^"]+">.*?</script>', "", page,
                        flags=re.S)
        tags = set(re.findall(r"</?([a-zA-Z][a-zA-Z0-9]*)", markup))
        assert tags <= {"html", "head", "meta", "title", "style", "body", "header", "h1", "h2",
                        "h3", "div", "nav", "a", "main", "section", "p", "table", "thead",
                        "tbody", "tr", "th", "td", "input", "label", "select", "pre", "script"}
        from replay.report.html import esc

        assert f">{esc(r['path'])}</td>" in markup  # the input path, shown as text


def test_stage_latency_counts_only_packets_that_reached_the_stage(tmp_path: Path) -> None:
    rows = [packet_row(1, 0, "delivered", queue=0, cpu=0, t_wire=0,
                       wait=dict.fromkeys(STAGE_IDS, 1), cpu_ns=dict.fromkeys(STAGE_IDS, 2)),
            packet_row(2, 0, "consumed", queue=0, cpu=0, t_wire=0, wait={"driver": 5},
                       cpu_ns={"driver": 7})]
    run = write(tmp_path, {"packets": rows, "cpu": [], "path": "x"})
    st_ = {s["stage"]: s for s in ag.stage_latency(read_run(run))}
    assert st_["driver"]["packets"] == 2 and st_["app"]["packets"] == 1
    assert st_["driver"]["wait"]["max"] == 5
    assert pl.DataFrame(ag.overhead(read_run(run))).height == 0
