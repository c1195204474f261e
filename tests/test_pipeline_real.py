"""`replay pipeline` end to end with the real engine: bundled traces, a broken file, the shared
real-capture corpus, the example specs, and kill -9 of a real run then resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

import replay.runner

REPO = Path(__file__).resolve().parents[1]
BUNDLED = sorted(p for p in (REPO / "traces").glob("*.pcap*") if p.is_file())
SHARED = Path(os.environ.get("STACK_REPLAY_SHARED", REPO.parent / "shared")) / "traces-real"
WALL = ["cached", "wall_s", "run_wall_s"]

pytestmark = [
    pytest.mark.skipif(
        not hasattr(replay.runner, "run_traces"),
        reason="replay.runner.run_traces is not merged yet",
    ),
    pytest.mark.skipif(not BUNDLED, reason="no bundled traces in traces/ yet"),
]


def replay_cli(*args: str, **kw) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "replay", *args],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kw,
    )


def finish(p: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = p.communicate(timeout=900)
    return p.returncode, out, err


def spec_file(tmp: Path, traces: list[str], matrix: str = '"nic.rx" = [256, 1024]') -> Path:
    (tmp / "broken.pcap").write_bytes(b"\xd4\xc3\xb2\xa1" + b"\x02\x00\x04\x00" + b"\xff" * 40)
    listed = json.dumps([*traces, str(tmp / "broken.pcap")])
    body = f'traces = {listed}\noutput = "out"\n[matrix]\n{matrix}\n'
    (tmp / "s.toml").write_text(body)
    return tmp / "s.toml"


def test_bundled_traces_with_a_broken_file_run_twice(tmp_path: Path) -> None:
    spec = spec_file(tmp_path, [str(REPO / "traces" / "*.pcap*")])
    n = len(BUNDLED)
    code, out, err = finish(replay_cli("pipeline", str(spec), "-j", "2", "--json"))
    assert code == 1, err
    assert json.loads(out) == {
        "jobs": 2 * n + 2,
        "done": 2 * n,
        "cached": 0,
        "failed": 2,
        "output": str(tmp_path / "out"),
    }
    df = pl.read_parquet(tmp_path / "out" / "summary.parquet")
    ok = df.filter(pl.col("status") == "ok")
    assert ok.height == 2 * n and (ok["frames"] > 0).all()
    assert (ok["delivered"] + ok["dropped"] + ok["consumed"] + ok["ignored"] == ok["packets"]).all()
    bad = df.filter(pl.col("status") == "failed")
    assert bad["trace"].unique().to_list() == ["broken.pcap"]  # relative to the spec
    assert all(e.startswith(str(tmp_path / "broken.pcap")) and "\n" not in e for e in bad["error"])
    for r in ok["report"]:
        assert (tmp_path / "out" / r).is_file()
    code, out, _ = finish(replay_cli("pipeline", str(spec), "-j", "2", "--json"))
    assert json.loads(out)["cached"] == 2 * n and json.loads(out)["done"] == 0
    again = pl.read_parquet(tmp_path / "out" / "summary.parquet")
    assert again.drop(WALL).equals(df.drop(WALL))


@pytest.mark.corpus
@pytest.mark.skipif(
    not SHARED.is_dir(), reason=f"no real-capture corpus at {SHARED} (set STACK_REPLAY_SHARED)"
)
def test_real_corpus_sweep_fails_only_the_unreadable_captures(tmp_path: Path) -> None:
    spec = spec_file(
        tmp_path, [str(SHARED / "*.pcap"), str(SHARED / "*.pcapng")], '"nic.rx" = [512]'
    )
    code, out, _ = finish(replay_cli("pipeline", str(spec), "-j", "2", "--json"))
    counts = json.loads(out)
    df = pl.read_parquet(tmp_path / "out" / "summary.parquet")
    assert counts["failed"] >= 1 and counts["done"] >= 10, df.select("trace", "error")
    assert code == 1
    failed = df.filter(pl.col("status") == "failed")
    assert all(e and "\n" not in e and "Error:" not in e.split(":")[0] for e in failed["error"]), (
        failed["error"].to_list()
    )
    assert "broken.pcap" in failed["trace"].to_list()


@pytest.mark.parametrize("name", ["napi-budget", "ring-coalescing", "regression"])
def test_example_specs_list_their_jobs(name: str) -> None:
    code, out, err = finish(
        replay_cli("pipeline", str(REPO / "pipelines" / f"{name}.toml"), "--dry-run", "--json")
    )
    assert code == 0, err
    jobs = json.loads(out)["jobs"]
    assert {j["trace"] for j in jobs} == {f"../traces/{p.name}" for p in BUNDLED}
    assert not [j for j in jobs if j["state"] == "invalid"]


def test_regression_example_passes_against_its_committed_baseline(tmp_path: Path) -> None:
    code, out, err = finish(
        replay_cli(
            "pipeline",
            str(REPO / "pipelines" / "regression.toml"),
            "-j",
            "2",
            "--json",
            "-o",
            str(tmp_path / "o"),
        )
    )
    assert code == 0, err
    assert json.loads(out)["check"]["failures"] == []


@pytest.mark.slow
def test_kill_9_a_real_pipeline_then_resume(tmp_path: Path) -> None:
    spec = spec_file(
        tmp_path, [str(REPO / "traces" / "*.pcap*")], '"nic.rx" = [128, 256, 512, 1024, 2048, 4096]'
    )
    runs = tmp_path / "out" / "runs"
    p = replay_cli("pipeline", str(spec), "-j", "2")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and len(list(runs.glob("*/job.json"))) < 2:
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.wait()
    time.sleep(0.5)
    finished = {
        d.name: (d / "job.json").stat().st_mtime_ns
        for d in runs.iterdir()
        if (d / "job.json").exists()
    }
    assert all((d / "job.json").exists() for d in runs.iterdir() if not d.name.startswith("."))
    total = 6 * len(BUNDLED)
    assert 2 <= len(finished) < total
    _, out, err = finish(replay_cli("pipeline", str(spec), "-j", "2", "--json"))
    c = json.loads(out)
    assert (c["cached"], c["done"], c["failed"]) == (len(finished), total - len(finished), 6), err
    assert {k: (runs / k / "job.json").stat().st_mtime_ns for k in finished} == finished
