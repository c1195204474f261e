"""`replay report --json`: the schema in docs/report-json.md, with the small run's numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from replay.cli import app
from tests.regen_golden import other_run
from tests.runfixtures import small_run

DOC = Path(__file__).resolve().parents[1] / "docs" / "report-json.md"


@pytest.fixture(scope="module")
def doc(tmp_path_factory: pytest.TempPathFactory) -> dict:
    run = small_run(tmp_path_factory.mktemp("j") / "small")
    r = CliRunner().invoke(app, ["report", str(run), "--json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def test_top_level_fields_are_the_documented_ones(doc: dict) -> None:
    assert doc["schema"] == "stack-replay-report/1"
    text = DOC.read_text()
    for key in doc:
        assert f"`{key}`" in text, f"{key} is not documented in docs/report-json.md"


def test_totals_and_overhead(doc: dict) -> None:
    assert doc["totals"] == {"cpu_ns": 20000, "samples": 11, "frames": 5, "packets": 5,
                             "outcomes": {"delivered": 2, "dropped": 2, "consumed": 0,
                                          "ignored": 1},
                             "duration_ns": 21500, "cpus": 2}
    assert doc["sort"] == ["comm", "dso", "sym"]
    assert doc["overhead"][0] == {"percent": 25.0, "ns": 5000, "frames": 3, "comm": "swapper/0",
                                  "dso": "[kernel.kallsyms]", "sym": "ixgbe_clean_rx_irq",
                                  "kernel": True}
    assert sum(r["percent"] for r in doc["overhead"]) == pytest.approx(100.0)


def test_latency_drops_and_counters(doc: dict) -> None:
    stages = {s["stage"]: s for s in doc["latency"]["stages"]}
    assert stages["copy"]["wait"] == {"count": 2, "mean": 6500, "max": 9000, "sum": 13000,
                                      "p50": 4000, "p99": 9000, "p999": 9000}
    assert doc["latency"]["end_to_end"]["p99"] == 17800
    assert doc["drops"] == [{"stage": "driver", "reason": "rx_missed_errors", "count": 1},
                            {"stage": "l4", "reason": "SOCKET_RCVBUFF", "count": 1}]
    assert doc["counters"]["softnet_stat"][0]["processed"] == 3


def test_kernel_figures(doc: dict) -> None:
    k = doc["kernel"]
    assert k["napi_poll_work"]["histogram"] == [{"work": 3, "polls": 1}]
    assert k["napi_poll_work"]["whole_weight"] == 0
    assert k["time_squeeze"] == {"budget": 1, "time": 0}
    assert k["gro"] == {"segments": 3, "skbs": 2, "ratio": 1.5}  # p1+p2 merged, p3 alone
    # IRQs at 1500 and 3200; net_rx_action runs start at 2000 and 17500
    assert (k["softirq_raise_to_entry_ns"]["p50"], k["softirq_raise_to_entry_ns"]["max"]) == (
        500, 14300)
    assert k["irq"] == [{"queue": 0, "irqs": 2, "per_second": round(2 / 21500e-9, 1)}]
    assert k["rss"]["cpu_imbalance"] == 1.6  # 16000 / mean(16000, 4000)


def test_flows_have_labels(doc: dict) -> None:
    assert doc["flows"][0]["flow"] == 1 and doc["flows"][0]["dropped"] == 2
    assert doc["flows"][1]["label"] == "10.0.0.1:40000 > 10.0.0.2:27015 udp"


def test_json_with_vs_adds_the_diff(tmp_path: Path) -> None:
    base = small_run(tmp_path / "small")
    new = other_run(tmp_path)
    r = CliRunner().invoke(app, ["report", str(new), "--vs", str(base), "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)["diff"]
    assert d["baseline"]["name"] == "small"
    assert d["counters"] == [{"counter": "softnet_stat.cpu0.time_squeeze", "baseline": 1,
                              "new": 5, "delta": 4}]
    gone = next(r for r in d["overhead"] if r["comm"] == "game" and r["sym"] == "app_work")
    assert (gone["baseline"], gone["new"], gone["delta"], gone["ratio"]) == (15.0, 0.0, -15.0, 0.0)
