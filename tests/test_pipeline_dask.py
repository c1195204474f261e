"""--scheduler: the same jobs on a real Dask cluster (`dask scheduler` + `dask worker` processes
on loopback) give the same summary as local workers."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from replay.errors import PipelineError
from replay.pipeline import load_spec, run_pipeline
from tests.pipeline_support import toy_resolver, toy_run, write_pcap

REPO = Path(__file__).resolve().parents[1]
DASK = shutil.which("dask", path=str(Path(os.sys.executable).parent)) or shutil.which("dask")
WALL = ["cached", "wall_s", "run_wall_s"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    if DASK is None:
        pytest.skip("the `dask` command is not installed (pip install 'dask[distributed]')")
    port = _free_port()
    addr = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    ]
    procs.append(
        subprocess.Popen(
            [
                DASK,
                "worker",
                addr,
                "--nworkers",
                "2",
                "--nthreads",
                "1",
                "--no-dashboard",
                "--host",
                "127.0.0.1",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    )
    try:
        yield addr
    finally:
        for p in reversed(procs):
            os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)


def test_cluster_results_equal_local_results(cluster: str, tmp_path: Path) -> None:
    (tmp_path / "tr").mkdir()
    write_pcap(tmp_path / "tr" / "a.pcap", 12)
    write_pcap(tmp_path / "tr" / "b.pcap", 7)
    (tmp_path / "tr" / "broken.pcap").write_bytes(b"junk")
    (tmp_path / "s.toml").write_text(
        'traces = ["tr/*.pcap"]\noutput = "local"\n[matrix]\n"nic.rx" = [64, 256, 100]\n[zip]\n'
        '"nic.rx-usecs" = [0, 8]\n"net.core.netdev_budget" = [1, 3]\n'
    )
    spec = load_spec(tmp_path / "s.toml")
    local = run_pipeline(spec, workers=2, job_fn=toy_run, resolver=toy_resolver, progress=False)
    from dataclasses import replace

    remote = run_pipeline(
        replace(spec, output=tmp_path / "dask"),
        workers=2,
        scheduler=cluster,
        job_fn=toy_run,
        resolver=toy_resolver,
        progress=False,
    )
    assert (
        (remote.done, remote.cached, remote.failed)
        == (local.done, local.cached, local.failed)
        == (8, 0, 10)
    )
    a = pl.read_parquet(tmp_path / "local" / "summary.parquet").drop(WALL)
    b = pl.read_parquet(tmp_path / "dask" / "summary.parquet").drop(WALL)
    assert a.equals(b)
    # the jobs really ran in the cluster's worker processes, not in this one
    workers = {
        (tmp_path / "dask" / r / "job.json").read_text().split('"worker": "')[1].split('"')[0]
        for r in b["run"].drop_nulls()
    }
    assert all(not w.endswith(f":{os.getpid()}") for w in workers)
    # and a second pass on the cluster takes everything from the cache
    again = run_pipeline(
        replace(spec, output=tmp_path / "dask"),
        workers=2,
        scheduler=cluster,
        job_fn=toy_run,
        resolver=toy_resolver,
        progress=False,
    )
    assert (again.done, again.cached) == (0, 8)


def test_unreachable_scheduler_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "tr").mkdir()
    write_pcap(tmp_path / "tr" / "a.pcap", 3)
    (tmp_path / "s.toml").write_text('traces = ["tr/*.pcap"]\noutput = "o"\n')
    addr = f"tcp://127.0.0.1:{_free_port()}"
    from replay.pipeline.executors import DaskExecutor

    with pytest.raises(
        PipelineError,
        match=r"cannot reach the Dask scheduler at tcp://127\.0\.0\.1:\d+ .*dask scheduler",
    ):
        DaskExecutor(addr, connect_timeout=2).run([{"dir": "x"}], toy_run, lambda i, r: None)


def test_replay_pipeline_scheduler_flag_equals_local(cluster: str, tmp_path: Path) -> None:
    import json

    from tests.test_pipeline_cli import finish, make, replay

    spec = make(tmp_path, n_traces=2, broken=True)
    code, out, err = finish(
        replay("pipeline", str(spec), "--scheduler", cluster, "--json", "-o", str(tmp_path / "d"))
    )
    assert code == 1, err  # the broken trace's jobs failed, the rest ran on the cluster
    assert json.loads(out) == {
        "jobs": 24,
        "done": 16,
        "cached": 0,
        "failed": 8,
        "output": str(tmp_path / "d"),
    }
    code, out, err = finish(
        replay("pipeline", str(spec), "-j", "2", "--json", "-o", str(tmp_path / "l"))
    )
    a = pl.read_parquet(tmp_path / "d" / "summary.parquet").drop(WALL)
    b = pl.read_parquet(tmp_path / "l" / "summary.parquet").drop(WALL)
    assert a.equals(b)
