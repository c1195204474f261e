"""`replay export`: folded stacks (golden), speedscope's schema, Chrome trace-event JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from replay.cli import app
from replay.report.export import export_text
from tests.runfixtures import small_run


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_run(tmp_path_factory.mktemp("e") / "small")


def test_folded_weights_sum_to_the_modeled_cpu_time(run: Path) -> None:
    lines = export_text(run, "folded").splitlines()
    total = 0
    for line in lines:
        stack, _, count = line.rpartition(" ")
        assert len(stack.split(";")) == 3 and " " not in stack
        total += int(count)
    assert total == 20000
    assert "swapper/0;softirq;ixgbe_clean_rx_irq 5000" in lines


def test_speedscope_file_follows_its_schema(run: Path) -> None:
    d = json.loads(export_text(run, "speedscope"))
    assert d["$schema"] == "https://www.speedscope.app/file-format-schema.json"
    names = [f["name"] for f in d["shared"]["frames"]]
    assert len(names) == len(set(names))
    assert [p["name"] for p in d["profiles"]] == ["CPU 0", "CPU 1"]
    for p in d["profiles"]:
        assert p["type"] == "sampled" and p["unit"] == "nanoseconds"
        assert len(p["samples"]) == len(p["weights"])
        assert p["endValue"] == sum(p["weights"])
        assert all(0 <= i < len(names) for s in p["samples"] for i in s)
    assert sum(sum(p["weights"]) for p in d["profiles"]) == 20000


def test_perfetto_trace_events(run: Path) -> None:
    d = json.loads(export_text(run, "perfetto"))
    ev = d["traceEvents"]
    spans = [e for e in ev if e["ph"] == "X" and e["pid"] == 0]
    assert sum(e["dur"] for e in spans) == pytest.approx(20.0)  # µs
    # symbols of one span are laid end to end from the span start, inside the span
    cpu0 = sorted((e for e in spans if e["tid"] == 0 and e["cat"] == "softirq"),
                  key=lambda e: e["ts"])
    assert cpu0[0]["ts"] == pytest.approx(2.0)
    assert cpu0[-1]["ts"] + cpu0[-1]["dur"] == pytest.approx(17.5)
    pk = [e for e in ev if e["pid"] == 1 and e["ph"] == "X" and e["tid"] == 1]
    assert pk[0]["name"] == "driver"
    assert pk[-1]["ts"] + pk[-1]["dur"] == pytest.approx(13.6)  # t_done of packet 1
    starts = {e["id"] for e in ev if e["ph"] == "s"}
    assert starts == {e["id"] for e in ev if e["ph"] == "f"}


def test_cli_export_and_bad_format(run: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.folded"
    r = CliRunner().invoke(app, ["export", str(run), "--format", "folded", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert out.read_text() == export_text(run, "folded")
    r = CliRunner().invoke(app, ["export", str(run), "--format", "svg", "-o", str(out)])
    assert r.exit_code == 1 and "unknown; use one of folded" in r.output
    r = CliRunner().invoke(app, ["export", str(tmp_path / "none"), "--format", "folded",
                                 "-o", str(out)])
    assert r.exit_code == 1 and "no such run directory" in r.output
