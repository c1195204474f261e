"""Pipeline overhead per job: the same jobs run directly in a loop, by `replay pipeline`'s local
process pool, and by a Dask LocalCluster, side by side; prints each one's overhead per job.

    PYTHONPATH=$PWD python benchmarks/bench_pipeline.py                 # toy job (machinery only)
    PYTHONPATH=$PWD python benchmarks/bench_pipeline.py --real -n 100   # run_traces, bundled traces

Overhead per job = (wall of the executor - wall of the direct loop / workers) / jobs, i.e. what
the pipeline adds beyond the runs themselves: planning (hashing traces, resolving configs),
process start-up, pickling, the per-stage aggregate, job.json, the rename, and the summary,
dataset and report at the end. The issue's budget is 0.5 s per job.
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
    a = ap.parse_args()

    from replay.pipeline import load_spec, run_pipeline
    from replay.pipeline.executors import DaskExecutor, LocalExecutor
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
    (tmp / "s.toml").write_text(spec_text(pattern, points))
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
    ideal = direct / a.workers

    def report(name: str, wall: float) -> None:
        over = (wall - ideal) / n
        print(
            f"  {name:27s} {wall:7.2f} s  overhead {over * 1000:6.1f} ms/job  "
            f"(ratio to ideal {wall / ideal:4.2f}x)"
        )

    # 2. replay pipeline, local processes
    r = run_pipeline(spec, workers=a.workers, job_fn=job_fn, resolver=resolver, progress=False)
    assert r.failed == 0 or a.real, r.summary
    report("pipeline, local processes", r.wall_s)
    t = time.perf_counter()
    r2 = run_pipeline(spec, workers=a.workers, job_fn=job_fn, resolver=resolver, progress=False)
    print(f"  rerun, all {r2.cached} cached          {time.perf_counter() - t:7.2f} s")

    # 3. the same payloads on a Dask LocalCluster (what DESIGN.md first proposed)
    if not a.no_dask:
        from distributed import LocalCluster

        shutil.rmtree(spec.output / "runs")
        (spec.output / "runs").mkdir()
        t = time.perf_counter()
        with LocalCluster(
            n_workers=a.workers, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster:
            planned = plan_spec(spec, resolver)
            DaskExecutor(cluster.scheduler_address).run(
                [payload(pj, spec.output / "runs") for pj in planned], job_fn, lambda i, rec: None
            )
        report("Dask LocalCluster", time.perf_counter() - t)
        shutil.rmtree(spec.output / "runs")
        (spec.output / "runs").mkdir()
        t = time.perf_counter()
        LocalExecutor(a.workers).run(
            [payload(pj, spec.output / "runs") for pj in planned], job_fn, lambda i, rec: None
        )
        report("process pool (same payloads)", time.perf_counter() - t)
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
