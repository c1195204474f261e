"""`replay report --stdio`: perf's grammar, exact numbers of the small run, errors as one line."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from replay.cli import app
from replay.report import aggregate as ag
from replay.report.stdio import render_stdio
from replay.store.rundir import read_run
from tests.runfixtures import small_run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_run(tmp_path_factory.mktemp("r") / "small")


def test_overhead_is_symbol_ns_over_all_cpu_ns(run_dir: Path) -> None:
    df = ag.overhead(read_run(run_dir))
    top = df.row(0, named=True)
    assert (top["comm"], top["sym"], top["ns"], top["percent"]) == (
        "swapper/0", "ixgbe_clean_rx_irq", 5000, 25.0)
    assert df["percent"].sum() == pytest.approx(100.0)
    assert df.height == 11


def test_overhead_ties_sort_by_key_after_percent(run_dir: Path) -> None:
    df = ag.overhead(read_run(run_dir))
    fifteen = df.filter(pl.col("percent") == 15.0)["sym"].to_list()
    assert fifteen == ["app_work", "__netif_receive_skb_core"]  # comm "game" < "swapper/0"


def test_sort_by_flow_uses_per_packet_cpu_shares(run_dir: Path) -> None:
    df = ag.overhead(read_run(run_dir), ("flow",))
    # flow 0 = p1 + p2 cpu (6600 + 6700), flow 1 = p3 (5200); 20000 ns in all
    assert dict(zip(df["flow"].to_list(), df["ns"].to_list(), strict=True)) == {0: 13300, 1: 5200}
    assert df["percent"].to_list() == [66.5, 26.0]


def test_stage_latency_is_nearest_rank(run_dir: Path) -> None:
    rows = {r["stage"]: r for r in ag.stage_latency(read_run(run_dir))}
    assert "backlog" not in rows  # no RPS: the stage is null for every packet
    d = rows["driver"]
    assert d["packets"] == 3
    assert (d["wait"]["p50"], d["wait"]["p99"], d["wait"]["p999"]) == (1200, 2000, 2000)
    assert (d["cpu"]["p50"], d["cpu"]["p99"]) == (1500, 2000)
    assert (rows["copy"]["wait"]["p50"], rows["copy"]["wait"]["p99"]) == (4000, 9000)
    e = ag.end_to_end(read_run(run_dir))
    assert (e["count"], e["p50"], e["p99"], e["max"], e["mean"]) == (2, 12600, 17800, 17800, 15200)


def test_drops_by_stage_and_reason(run_dir: Path) -> None:
    assert ag.drops(read_run(run_dir)).rows() == [("driver", "rx_missed_errors", 1),
                                                  ("l4", "SOCKET_RCVBUFF", 1)]


def test_stdio_reads_like_perf_report(run_dir: Path) -> None:
    text = render_stdio(run_dir)
    lines = text.splitlines()
    assert "# Samples: 11 of event 'cpu-clock' (modeled CPU spans x symbols)" in lines
    assert "# Event count (approx.): 20000 (ns of modeled CPU time)" in lines
    assert "# Overhead  Command    Shared Object      Symbol" in lines
    assert "    25.00%  swapper/0  [kernel.kallsyms]  [k] ixgbe_clean_rx_irq" in lines
    assert "    15.00%  game       game               [.] app_work" in lines
    assert "      1  l4      SOCKET_RCVBUFF" in lines


def test_percent_limit_hides_small_rows(run_dir: Path) -> None:
    text = render_stdio(run_dir, percent_limit=10.0, counters=False)
    assert "ip_rcv" not in text.split("# Latency")[0]
    assert "udp_rcv" in text


def test_counters_print_as_the_kernel_does(run_dir: Path) -> None:
    lines = render_stdio(run_dir).splitlines()
    # softnet_stat: 15 %08x columns, processed=3, time_squeeze=1, CPU index in column 13
    assert ("00000003 00000000 00000001 " + "00000000 " * 9 + "00000000 00000000 00000000"
            ) in lines
    assert lines[lines.index("00000003 00000000 00000001 " + "00000000 " * 9
                             + "00000000 00000000 00000000") + 1].split()[12] == "00000001"
    assert "128:          2          0 IR-PCI-MSIX  0-edge      eth0-TxRx-0" in lines
    assert "      NET_RX:          2          0" in lines
    assert "     rx_missed_errors: 1" in lines
    # nstat: %-32s%-16llu%6.1f, zero counters hidden; rate per second of the 21500 ns run
    assert f"{'UdpRcvbufErrors':<32s}{1:<16d}{1 / 21500e-9:6.1f}" in lines
    assert not any(line.startswith("UdpNoPorts") for line in lines)


@pytest.mark.parametrize("spec", ["foo", "sym,foo", "flow,sym", "cpu,cpu", ","])
def test_bad_sort_keys_are_one_clear_error(spec: str) -> None:
    with pytest.raises(ag.ReportError, match="--sort"):
        ag.parse_sort(spec)


def test_cli_stdio_prints_the_report(run_dir: Path) -> None:
    r = CliRunner().invoke(app, ["report", str(run_dir), "--stdio", "-s", "cpu,sym", "-n"])
    assert r.exit_code == 0, r.output
    assert r.output == render_stdio(run_dir, sort="cpu,sym", show_counts=True)


@pytest.mark.parametrize("args", [["/nonexistent/run"], ["--stdio", "/nonexistent/run"]])
def test_missing_run_directory_is_one_line_and_exit_1(args: list[str]) -> None:
    r = CliRunner().invoke(app, ["report", *args])
    assert r.exit_code == 1
    assert len(r.output.strip().splitlines()) == 1
    assert "no such run directory" in r.output


def test_a_plain_directory_is_not_a_run(tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["report", str(tmp_path), "--stdio"])
    assert r.exit_code == 1
    assert "no run.json" in r.output and "Traceback" not in r.output


def test_bad_sort_from_cli_exits_1(run_dir: Path) -> None:
    r = CliRunner().invoke(app, ["report", str(run_dir), "--stdio", "--sort", "nope"])
    assert r.exit_code == 1 and "unknown key nope" in r.output


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 10**9), min_size=1, max_size=300))
def test_quantiles_match_the_nearest_rank_definition(values: list[int]) -> None:
    lf = pl.LazyFrame({"x": values})
    got = ag._quantiles(lf, ["x"])["x"]
    s = np.sort(np.array(values))
    for k, q in ag.PERCENTILES:
        assert got[k] == s[max(math.ceil(len(s) * q) - 1, 0)]
    assert got["max"] == s[-1]
