"""`replay pipeline` as a process: JSON counts, dry run, exit status, and kill -9 then resume.

The process is the real CLI entry point (replay.cli.main) with the toy job and resolver patched
in (tests/pipeline_support.py), so these tests exercise the machinery, not the model.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl

from tests.pipeline_support import write_pcap

REPO = Path(__file__).resolve().parents[1]
DRIVER = (
    "import sys, tests.pipeline_support as p; p.patch_for_cli(); from replay.cli import main; "
    "sys.argv = ['replay', *sys.argv[1:]]; main()"
)


def replay(*args: str, env: dict[str, str] | None = None, **kw) -> subprocess.Popen[str]:
    e = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-c", DRIVER, *args],
        env=e,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kw,
    )


def finish(p: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = p.communicate(timeout=120)
    return p.returncode, out, err


def make(tmp: Path, n_traces: int = 2, broken: bool = True) -> Path:
    (tmp / "tr").mkdir()
    for i in range(n_traces):
        write_pcap(tmp / "tr" / f"t{i}.pcap", 10 + i)
    if broken:
        (tmp / "tr" / "zz-broken.pcap").write_bytes(b"\x00" * 40)
    (tmp / "s.toml").write_text(
        'traces = ["tr/*.pcap"]\noutput = "out"\n[matrix]\n"nic.rx" = [64, 128, 256, 512]\n'
        '"net.core.netdev_budget" = [1, 2]\n'
    )
    return tmp / "s.toml"


def test_json_counts_and_exit_status_1_when_a_job_failed(tmp_path: Path) -> None:
    spec = make(tmp_path)
    code, out, err = finish(replay("pipeline", str(spec), "-j", "2", "--json"))
    assert code == 1, err
    assert json.loads(out) == {
        "jobs": 24,
        "done": 16,
        "cached": 0,
        "failed": 8,
        "output": str(tmp_path / "out"),
    }
    assert "Traceback" not in err
    code, out, err = finish(replay("pipeline", str(spec), "-j", "1"))
    assert code == 1
    assert out == f"24 jobs: 0 done, 16 cached, 8 failed → {tmp_path / 'out'}\n"


def test_all_good_exits_0_and_dry_run_lists_jobs_with_their_state(tmp_path: Path) -> None:
    spec = make(tmp_path, n_traces=1, broken=False)
    code, out, _ = finish(replay("pipeline", str(spec), "--dry-run"))
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "   0  to run   tr/t0.pcap  nic.rx=64 net.core.netdev_budget=1"
    assert lines[-1] == f"8 jobs → {tmp_path / 'out'}"
    assert not (tmp_path / "out").exists()  # a dry run writes nothing
    code, out, err = finish(replay("pipeline", str(spec), "-j", "2"))
    assert (code, err) == (0, "")  # quiet in a pipe: only the count line
    assert out == f"8 jobs: 8 done, 0 cached, 0 failed → {tmp_path / 'out'}\n"
    code, out, _ = finish(replay("pipeline", str(spec), "--dry-run", "--json"))
    assert [j["state"] for j in json.loads(out)["jobs"]] == ["cached"] * 8


def test_a_bad_spec_is_one_line_and_exit_1(tmp_path: Path) -> None:
    (tmp_path / "s.toml").write_text('traces = ["nothing/*.pcap"]\n')
    code, out, err = finish(replay("pipeline", str(tmp_path / "s.toml")))
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "matches no file" in err


def _children(pid: int) -> list[int]:
    kids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(d.name))
    return kids


def test_kill_9_in_the_middle_then_resume_redoes_nothing_finished(tmp_path: Path) -> None:
    spec = make(tmp_path, n_traces=3, broken=False)  # 24 jobs of >= 0.4 s each on 2 workers
    runs = tmp_path / "out" / "runs"
    p = replay("pipeline", str(spec), "-j", "2", env={"TOY_SLEEP": "0.4"})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(runs.glob("*/job.json"))) < 3:
        time.sleep(0.05)
    workers = _children(p.pid)
    p.send_signal(signal.SIGKILL)
    p.wait()
    time.sleep(0.5)
    assert not [
        w
        for w in workers
        if Path(f"/proc/{w}").exists() and "Z" not in Path(f"/proc/{w}/stat").read_text().split()[2]
    ]
    finished = {d.name for d in runs.iterdir() if (d / "job.json").exists()}
    assert 3 <= len(finished) < 24
    # nothing half-written looks finished: every non-temporary folder is complete
    assert all((d / "job.json").exists() for d in runs.iterdir() if not d.name.startswith("."))
    assert not (tmp_path / "out" / "summary.parquet").exists()
    stamps = {k: (runs / k / "job.json").stat().st_mtime_ns for k in finished}

    code, out, err = finish(replay("pipeline", str(spec), "-j", "2", "--json"))
    assert code == 0, err
    counts = json.loads(out)
    assert (counts["cached"], counts["done"], counts["failed"]) == (
        len(finished),
        24 - len(finished),
        0,
    )
    assert {k: (runs / k / "job.json").stat().st_mtime_ns for k in finished} == stamps
    assert not [d for d in runs.iterdir() if d.name.startswith(".")]

    resumed = pl.read_parquet(tmp_path / "out" / "summary.parquet").drop(
        "cached", "wall_s", "run_wall_s"
    )
    code, _, _ = finish(
        replay("pipeline", str(spec), "-j", "2", "--force", "-o", str(tmp_path / "fresh"))
    )
    fresh = pl.read_parquet(tmp_path / "fresh" / "summary.parquet").drop(
        "cached", "wall_s", "run_wall_s"
    )
    assert code == 0
    assert resumed.drop("run", "report").equals(fresh.drop("run", "report"))


def test_ctrl_c_stops_the_workers_and_the_next_run_resumes(tmp_path: Path) -> None:
    spec = make(tmp_path, n_traces=2, broken=False)
    runs = tmp_path / "out" / "runs"
    p = replay("pipeline", str(spec), "-j", "2", env={"TOY_SLEEP": "0.4"})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(runs.glob("*/job.json"))) < 2:
        time.sleep(0.05)
    workers = _children(p.pid)
    p.send_signal(signal.SIGINT)
    code, _, err = finish(p)
    assert code in (1, 130) and "Traceback" not in err
    time.sleep(0.3)
    alive = [w for w in workers if Path(f"/proc/{w}").exists()]
    assert not [w for w in alive if Path(f"/proc/{w}/stat").read_text().split()[2] != "Z"]
    n = len(list(runs.glob("*/job.json")))
    assert 2 <= n < 16 and not (tmp_path / "out" / "summary.parquet").exists()  # it did stop
    code, out, _ = finish(replay("pipeline", str(spec), "-j", "2", "--json"))
    assert code == 0 and json.loads(out)["cached"] == n
