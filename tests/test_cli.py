"""The command line as a user meets it: exit codes, one-line errors, and `replay run` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from replay.cli import app

ROOT = Path(__file__).resolve().parent.parent
TRACES = ROOT / "traces"
runner = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    r = runner.invoke(app, list(args))
    return r.exit_code, r.stdout, r.stderr


@pytest.fixture(scope="module")
def junk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("junk") / "notes.txt"
    p.write_text("this is not a capture\n" * 20)
    return p


@pytest.mark.parametrize("cmd", ["inspect", "ingest", "run"])
def test_missing_file_is_one_line_and_exit_1(cmd: str, tmp_path: Path) -> None:
    extra = ["-o", str(tmp_path / "out")] if cmd != "inspect" else []
    code, out, err = invoke(cmd, str(tmp_path / "nope.pcap"), *extra)
    assert code == 1
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and "nope.pcap" in lines[0]
    assert "Traceback" not in out + err


@pytest.mark.parametrize("cmd", ["inspect", "ingest", "run"])
def test_non_capture_is_one_line_and_exit_1(cmd: str, junk: Path, tmp_path: Path) -> None:
    extra = ["-o", str(tmp_path / "out")] if cmd != "inspect" else []
    code, _out, err = invoke(cmd, str(junk), *extra)
    assert code == 1
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and "not a pcap or pcapng file" in lines[0]


@pytest.mark.parametrize("path_kind", ["missing", "file"])
def test_report_of_a_non_run_is_one_line(path_kind: str, junk: Path, tmp_path: Path) -> None:
    target = tmp_path / "nothing" if path_kind == "missing" else junk
    code, _, err = invoke("report", str(target), "--stdio")
    assert code == 1
    assert len([x for x in err.splitlines() if x.strip()]) == 1


def test_config_rejects_out_of_range_values_by_name() -> None:
    code, _, err = invoke("config", "--set", "net.core.netdev_budget_usecs=10")
    assert code == 1
    assert "net.core.netdev_budget_usecs" in err and "2 jiffies" in err
    code, _, err = invoke("config", "--set", "nic.nonsense=1")
    assert code == 1 and "nic.nonsense" in err


def test_config_round_trips_through_toml(tmp_path: Path) -> None:
    code, out, _ = invoke("config", "--set", "net.core.netdev_budget=600", "--set", "nic.rx=1024")
    assert code == 0
    f = tmp_path / "c.toml"
    f.write_text(out)
    code, out2, _ = invoke("config", "-c", str(f))
    assert code == 0 and out2 == out
    assert '"net.core.netdev_budget" = 600' in out and "rx = 1024" in out


@pytest.mark.parametrize("cmd", ["inspect", "ingest", "run", "report", "synth", "config", "export"])
def test_help_has_an_example(cmd: str) -> None:
    code, out, _ = invoke(cmd, "--help")
    assert code == 0 and "Example" in out


def test_run_writes_the_run_directory_and_report(tmp_path: Path) -> None:
    out = tmp_path / "run"
    html = tmp_path / "r.html"
    code, stdout, err = invoke("run", str(TRACES / "https-download.pcap"), "-o", str(out),
                               "--report", str(html))
    assert code == 0, err
    for f in ("run.json", "frames.parquet", "packets.parquet", "cpu.parquet", "events.parquet"):
        assert (out / f).exists(), f
    meta = json.loads((out / "run.json").read_text())
    s = meta["summary"]
    assert s["frames"] == 1225
    # captured at the client: its own 416 ACKs/requests are not received
    assert s["outcomes"]["ignored"] == 416
    assert meta["host"]["inferred"] and meta["host"]["addresses"][0] == "192.168.1.100"
    assert "inferred" in err
    p = pl.read_parquet(out / "packets.parquet")
    assert len(p) == 1225
    assert html.exists() and html.stat().st_size > 100_000
    assert "delivered" in stdout


def test_replay_options_change_the_wire(tmp_path: Path) -> None:
    base = tmp_path / "base"
    fast = tmp_path / "fast"
    trace = str(TRACES / "game-server.pcap")
    assert invoke("run", trace, "-o", str(base), "-L", "500")[0] == 0
    assert invoke("run", trace, "-o", str(fast), "-L", "500", "-x", "4")[0] == 0
    a = pl.read_parquet(base / "packets.parquet")["t_wire"].max()
    b = pl.read_parquet(fast / "packets.parquet")["t_wire"].max()
    assert len(pl.read_parquet(base / "packets.parquet")) == 500
    assert b < a  # four times faster


def test_loop_replays_every_frame_again(tmp_path: Path) -> None:
    out = tmp_path / "loop"
    assert invoke("run", str(TRACES / "https-download.pcap"), "-o", str(out), "-l", "2")[0] == 0
    p = pl.read_parquet(out / "packets.parquet")
    assert len(p) == 2 * 1225
    assert p.filter(pl.col("loop") == 1)["frame"].to_list() == list(range(1, 1226))


def test_run_never_replaces_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    precious = tmp_path / "notes"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    code, _, err = invoke("run", str(TRACES / "https-download.pcap"), "-o", str(precious))
    assert code == 1 and "not a run directory" in err
    assert (precious / "thesis.tex").read_text() == "years of work"
