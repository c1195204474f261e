"""Pipeline overhead per job: the same jobs run directly in a loop in one process, then by
`replay pipeline` with one worker, with N workers, and by a Dask LocalCluster; prints each
one's wall time and the overhead per job.

    PYTHONPATH=$PWD python benchmarks/bench_pipeline.py                      # toy job (machinery)
    PYTHONPATH=$PWD python benchmarks/bench_pipeline.py --real -n 100        # bundled traces
    PYTHONPATH=$PWD python benchmarks/bench_pipeline.py --real --no-job-reports

Overhead per job = (pipeline -j 1 wall - the runs' own time) / jobs, where the runs' time is the
sum of run_wall_s, each job's clock around run_traces: everything the pipeline adds (planning:
hashing traces and resolving configs; starting the worker; pickling; the per-stage aggregate,
job.json and the rename; summary, dataset and sweep report at the end). Measured inside one
pipeline run, so other load on the machine slows both sides alike. The direct loop (the peer:
no pipeline at all) is printed beside it. The issue's budget is 0.5 s per job.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def spec_text(traces: str, n_points: int) -> str:
    # rx-usecs spans the values ethtool accepts; one point per job per trace
    values = [i * 2 for i in range(n_points)]
    return f'traces = ["{traces}"]\noutput = "out"\n[matrix]\n"nic.rx-usecs" = {values}\n'


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", "--jobs", type=int, default=40, help="about this many jobs")
    ap.add_argument("-j", "--workers", type=int, default=2)
    ap.add_argument("--real", action="store_true", help="run_traces on the bundled traces")
    ap.add_argument("--no-dask", action="store_true")
    ap.add_argument("--no-job-reports", action="store_true", help="jobs without their own HTML")
    a = ap.parse_args()

    from replay.pipeline import load_spec, run_pipeline
    from replay.pipeline.executors import DaskExecutor
    from replay.pipeline.jobs import payload
    from replay.pipeline.sweep import plan_spec

    tmp = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    if a.real:
        from replay.runner import run_traces as job_fn

        resolver = None
        traces = sorted(p for p in (REPO / "traces").glob("*.pcap*") if p.is_file())
        if not traces:
            sys.exit("no bundled traces in traces/")
        pattern = str(REPO / "traces" / "*.pcap*")
    else:
        from tests.pipeline_support import toy_resolver as resolver
        from tests.pipeline_support import toy_run as job_fn
        from tests.pipeline_support import write_pcap

        (tmp / "tr").mkdir()
        traces = [write_pcap(tmp / "tr" / f"t{i}.pcap", 2000) for i in range(2)]
        pattern = str(tmp / "tr" / "*.pcap")
    points = max(1, round(a.jobs / len(traces)))
    text = spec_text(pattern, points)
    if a.no_job_reports:
        text = "job_reports = false\n" + text
    (tmp / "s.toml").write_text(text)
    spec = load_spec(tmp / "s.toml")
    n = len(spec.jobs())

    # 1. the runs alone, in this process, one after another (the peer: no pipeline at all)
    planned = plan_spec(spec, resolver)
    (tmp / "direct").mkdir()
    from replay.runner import ReplayOptions

    job_fn([planned[0].job.trace], planned[0].config, ReplayOptions(), tmp / "warm")  # compile once
    t = time.perf_counter()
    for i, pj in enumerate(planned):
        job_fn(
            [pj.job.trace],
            pj.config,
            ReplayOptions(**pj.options),
            tmp / "direct" / str(i),
            seed=pj.seed,
            report=tmp / "direct" / f"{i}.html",
        )
    direct = time.perf_counter() - t
    print(f"{n} jobs ({len(traces)} traces x {points} points), {a.workers} workers")
    print(f"  direct loop, 1 process      {direct:7.2f} s  ({direct / n * 1000:6.1f} ms/job)")
    import dataclasses

    def pipeline(workers: int, out: str) -> tuple[float, float]:
        sp = dataclasses.replace(spec, output=tmp / out)
        r = run_pipeline(sp, workers=workers, job_fn=job_fn, resolver=resolver, progress=False)
        assert r.failed == 0, r.summary.filter(r.summary["status"] != "ok")["error"].to_list()
        runs = float(r.summary["run_wall_s"].sum())  # the replays themselves, by their own clock
        return r.wall_s, runs

    wall1, runs1 = pipeline(1, "j1")
    print(
        f"  pipeline -j 1               {wall1:7.2f} s  "
        f"overhead {(wall1 - runs1) / n * 1000:6.1f} ms/job beyond the runs ({runs1:.2f} s); "
        f"vs the direct loop {(wall1 - direct) / n * 1000:+6.1f} ms/job"
    )
    walln, _ = pipeline(a.workers, "jn")
    print(
        f"  pipeline -j {a.workers}               {walln:7.2f} s  ({walln / n * 1000:6.1f} ms/job;"
        f" speed-up over the direct loop {direct / walln:4.2f}x)"
    )
    t = time.perf_counter()
    r2 = run_pipeline(
        dataclasses.replace(spec, output=tmp / "jn"),
        workers=a.workers,
        job_fn=job_fn,
        resolver=resolver,
        progress=False,
    )
    print(f"  rerun, all {r2.cached} cached          {time.perf_counter() - t:7.2f} s")

    # the same jobs on a Dask LocalCluster (what DESIGN.md first proposed for local runs)
    if not a.no_dask:
        from distributed import LocalCluster

        runs = tmp / "dask" / "runs"
        runs.mkdir(parents=True)
        t = time.perf_counter()
        with LocalCluster(
            n_workers=a.workers, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster:
            planned = plan_spec(spec, resolver)
            DaskExecutor(cluster.scheduler_address).run(
                [payload(pj, runs, "", not a.no_job_reports) for pj in planned],
                job_fn,
                lambda i, rec: None,
            )
        wd = time.perf_counter() - t
        print(
            f"  Dask LocalCluster, {a.workers} workers {wd:7.2f} s  ({wd / n * 1000:6.1f} ms/job)"
        )
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
