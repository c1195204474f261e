"""Running pipelines: cache, resume, failure isolation, summary, dataset and report (toy job)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import polars as pl
import pytest

from replay.errors import PipelineError
from replay.pipeline import load_spec, run_pipeline
from replay.pipeline.jobs import PARTIAL_PREFIX, TraceHashes, job_key
from replay.pipeline.sweep import output_lock
from tests.pipeline_support import DEFAULTS, expected, toy_resolver, toy_run, write_pcap

SPEC = """
name = "toy"
traces = ["tr/*.pcap"]
output = "out"
seed = 3
[matrix]
"net.core.netdev_budget" = [2, 300]
[zip]
"nic.rx" = [128, 1024, 100]
"nic.rx-usecs" = [0, 10, 20]
"""


@pytest.fixture()
def sweep(tmp_path: Path) -> Path:
    (tmp_path / "tr").mkdir()
    write_pcap(tmp_path / "tr" / "a.pcap", 20)
    write_pcap(tmp_path / "tr" / "b.pcap", 5)
    (tmp_path / "tr" / "broken.pcap").write_bytes(b"not a capture at all")
    (tmp_path / "s.toml").write_text(SPEC)
    return tmp_path / "s.toml"


def run(spec: Path, **kw):
    kw.setdefault("workers", 2)
    return run_pipeline(
        load_spec(spec), job_fn=toy_run, resolver=toy_resolver, progress=False, **kw
    )


def test_broken_trace_and_invalid_config_fail_only_their_own_jobs(sweep: Path) -> None:
    r = run(sweep)
    # 3 traces x 2 budgets x 3 ring points; rx=100 is invalid (6 jobs),
    # broken.pcap fails its 4 valid ones
    assert (r.jobs, r.done, r.cached, r.failed) == (18, 8, 0, 10)
    df = pl.read_parquet(sweep.parent / "out" / "summary.parquet")
    assert df.columns[:5] == ["job", "trace", "net.core.netdev_budget", "nic.rx", "nic.rx-usecs"]
    assert df["job"].to_list() == list(range(18))
    bad_cfg = df.filter(pl.col("nic.rx") == 100)
    assert bad_cfg["status"].unique().to_list() == ["failed"]
    assert bad_cfg["error"].unique().to_list() == [
        "nic.rx must be a power of two between 64 and 8192, got 100"
    ]
    broken = df.filter((pl.col("trace") == "tr/broken.pcap") & (pl.col("nic.rx") != 100))
    assert broken.height == 4
    assert all(
        e.endswith("broken.pcap at byte 0: not a little-endian pcap file (bad magic)")
        for e in broken["error"]
    )
    assert all("\n" not in e for e in df["error"].drop_nulls())


def test_summary_rows_carry_the_run_summary_exactly(sweep: Path) -> None:
    run(sweep)
    df = pl.read_parquet(sweep.parent / "out" / "summary.parquet")
    row = df.filter(
        (pl.col("trace") == "tr/a.pcap")
        & (pl.col("nic.rx") == 128)
        & (pl.col("net.core.netdev_budget") == 300)
    ).row(0, named=True)
    cfg = {**DEFAULTS, "nic": {"rx": 128, "rx-usecs": 0}, "sysctl": {"net.core.netdev_budget": 300}}
    delivered, dropped, lat = expected(20, cfg, seed=3)
    assert (delivered, dropped) == (2, 18)
    assert row["frames"] == 20 and row["delivered"] == 2 and row["dropped"] == 18
    assert row["drops_rx_missed_errors"] == 18
    assert row["latency_p50_ns"] == 103 and row["latency_max_ns"] == 103 and lat == [3, 103]
    assert (
        row["status"] == "ok"
        and row["cached"] is False
        and row["error"] is None
        and row["seed"] == 3
    )
    assert (
        row["run"] == f"runs/{row['key'][:16]}"
        and row["report"] == f"runs/{row['key'][:16]}/report.html"
    )
    assert [c for c in df.columns if "wall" in c] == ["wall_s", "run_wall_s"]
    # b.pcap never drops at rx=1024: a drop column is 0 for jobs without that drop, null for failed
    b = df.filter((pl.col("trace") == "tr/b.pcap") & (pl.col("nic.rx") == 1024))
    assert b["drops_rx_missed_errors"].to_list() == [0, 0]
    assert df.filter(pl.col("status") == "failed")["drops_rx_missed_errors"].null_count() == 10


def test_second_run_takes_every_finished_job_from_the_cache(sweep: Path) -> None:
    r1 = run(sweep)
    out = sweep.parent / "out"
    stamps = {p.name: (p / "job.json").stat().st_mtime_ns for p in (out / "runs").iterdir()}
    r2 = run(sweep)
    assert (r2.done, r2.cached, r2.failed) == (0, 8, 10)
    assert {p.name: (p / "job.json").stat().st_mtime_ns for p in (out / "runs").iterdir()} == stamps
    df1 = r1.summary.drop("cached", "wall_s", "run_wall_s")
    df2 = pl.read_parquet(out / "summary.parquet")
    assert df2["cached"].sum() == 8
    assert df2.drop("cached", "wall_s", "run_wall_s").equals(df1)
    r3 = run(sweep, force=True)
    assert (r3.done, r3.cached, r3.failed) == (8, 0, 10)


def test_changing_a_trace_reruns_only_its_jobs(sweep: Path) -> None:
    run(sweep)
    write_pcap(sweep.parent / "tr" / "b.pcap", 6)
    r = run(sweep)
    assert (r.done, r.cached) == (4, 4)
    df = pl.read_parquet(sweep.parent / "out" / "summary.parquet")
    assert df.filter(pl.col("trace") == "tr/b.pcap")["frames"].drop_nulls().to_list() == [
        6,
        6,
        6,
        6,
    ]


def test_half_written_job_folders_never_count_as_finished(sweep: Path) -> None:
    r = run(sweep)
    out = sweep.parent / "out" / "runs"
    keys = sorted(p.name for p in out.iterdir())
    # a folder without job.json (killed before the rename's last step) and a leftover temporary one
    victim = out / keys[0]
    (victim / "job.json").unlink()
    (out / f"{PARTIAL_PREFIX}{keys[1]}-123-abcdef01").mkdir()
    (out / f"{PARTIAL_PREFIX}{keys[1]}-123-abcdef01.report.html").write_text("<html>half")
    r = run(sweep)
    assert (r.done, r.cached) == (1, 7)
    assert (victim / "job.json").is_file()
    assert not [p for p in out.iterdir() if p.name.startswith(PARTIAL_PREFIX)]


def test_dataset_is_hive_partitioned_by_trace_with_one_row_per_stage(sweep: Path) -> None:
    run(sweep)
    ds = pl.scan_parquet(
        str(sweep.parent / "out" / "dataset" / "**" / "*.parquet"), hive_partitioning=True
    ).collect()
    assert ds.height == 8 * 10
    assert sorted(ds["trace"].unique().to_list()) == ["tr/a.pcap", "tr/b.pcap"]
    d = ds.filter(
        (pl.col("trace") == "tr/a.pcap")
        & (pl.col("nic.rx") == 128)
        & (pl.col("net.core.netdev_budget") == 2)
    )
    drv = d.filter(pl.col("stage") == "driver").row(0, named=True)
    # delivered frames 0,1: latency 0*1000 + (i % 2)*100 + 3 -> wait 3 and 103; 18 ring drops.
    # polars' "nearest" quantile takes index round(q * (n - 1)): round(0.5) = 1 -> 103
    assert (drv["packets"], drv["wait_p50_ns"], drv["wait_p99_ns"], drv["drops"]) == (
        2,
        103,
        103,
        18,
    )
    assert d.filter(pl.col("stage") == "gro")["packets"].to_list() == [0]


def test_report_is_self_contained_marks_the_best_and_escapes_names(tmp_path: Path) -> None:
    (tmp_path / "tr").mkdir()
    write_pcap(tmp_path / "tr" / "x<script>alert(1)&<b>.pcap", 30)
    (tmp_path / "s.toml").write_text(
        'traces = ["tr/*.pcap"]\noutput = "o"\n[matrix]\n"nic.rx" = [128, 2048]\n'
    )
    run(tmp_path / "s.toml")
    page = (tmp_path / "o" / "report.html").read_text()
    assert "<script>alert" not in page and "<b>.pcap" not in page
    assert "x&lt;script&gt;alert(1)&amp;&lt;b&gt;.pcap" in page  # in the page
    assert (
        "x\\u003cscript\\u003ealert(1)\\u0026\\u003cb\\u003e.pcap" not in page
    )  # figure JSON holds only knobs
    assert "Plotly.newPlot" in page and page.count("<script") >= 2
    assert '<tr class="best">' in page and "★ best" in page
    df = pl.read_parquet(tmp_path / "o" / "summary.parquet")
    best = df.sort("dropped").row(0, named=True)
    assert best["nic.rx"] == 2048
    assert f'href="runs/{best["key"][:16]}/report.html"' in page
    assert "<script src" not in page


def test_job_key_changes_with_every_input_and_nothing_else(tmp_path: Path) -> None:
    cfg, prof = toy_resolver(None, {})
    k = job_key("ab" * 32, cfg, prof, {"loop": 1}, 0)
    assert k == job_key(
        "ab" * 32, json.loads(json.dumps(cfg, sort_keys=True)), dict(prof), {"loop": 1}, 0
    )
    others = [
        job_key("cd" * 32, cfg, prof, {"loop": 1}, 0),
        job_key("ab" * 32, toy_resolver(None, {"nic.rx": 1024})[0], prof, {"loop": 1}, 0),
        job_key("ab" * 32, cfg, {**prof, "driver_ns": 101}, {"loop": 1}, 0),
        job_key("ab" * 32, cfg, prof, {"loop": 2}, 0),
        job_key("ab" * 32, cfg, prof, {"loop": 1}, 1),
    ]
    assert len({k, *others}) == 6 and len(k) == 64


def test_job_key_includes_the_tool_version(monkeypatch: pytest.MonkeyPatch) -> None:
    import replay.pipeline.jobs as jobs

    cfg, prof = toy_resolver(None, {})
    k = job_key("ab" * 32, cfg, prof, {}, 0)
    monkeypatch.setattr(jobs, "__version__", "9.9.9")
    assert job_key("ab" * 32, cfg, prof, {}, 0) != k


def test_trace_hashes_are_remembered_and_refreshed_on_change(tmp_path: Path) -> None:
    t = write_pcap(tmp_path / "t.pcap", 3)
    h = TraceHashes(tmp_path / "h.json")
    first = h.sha256(t)
    h.save()
    assert TraceHashes(tmp_path / "h.json").known[str(t)][2] == first
    write_pcap(t, 4)
    os.utime(t, ns=(1, 1))
    assert TraceHashes(tmp_path / "h.json").sha256(t) != first


def test_a_second_pipeline_on_the_same_output_is_refused(tmp_path: Path) -> None:
    with (
        output_lock(tmp_path / "o"),
        pytest.raises(PipelineError, match=r"another pipeline \(pid \d+\)"),
        output_lock(tmp_path / "o"),
    ):
        pass


def test_swept_seed_and_replay_options_reach_the_job(tmp_path: Path) -> None:
    (tmp_path / "tr").mkdir()
    write_pcap(tmp_path / "tr" / "a.pcap", 4)
    (tmp_path / "s.toml").write_text(
        'traces = "tr/a.pcap"\noutput = "o"\n[matrix]\nseed = [0, 7]\n"replay.loop" = [1, 3]\n'
    )
    r = run(tmp_path / "s.toml", workers=1)
    df = r.summary
    assert df.columns[:4] == ["job", "trace", "replay.loop", "seed"]
    assert df.select("seed", "replay.loop", "packets", "latency_p50_ns").rows() == [
        # latencies 50000 + 100 i + seed; toy p50 is the sorted list's element int(0.5 n)
        (0, 1, 4, 50200),
        (0, 3, 12, 50400),
        (7, 1, 4, 50207),
        (7, 3, 12, 50407),
    ]


def test_a_worker_killed_mid_job_fails_only_that_job_and_bugs_keep_their_traceback(
    tmp_path: Path,
) -> None:
    (tmp_path / "tr").mkdir()
    for n, name in enumerate(("a.pcap", "crash.pcap", "bug.pcap", "b.pcap")):
        write_pcap(tmp_path / "tr" / name, 5 + n)  # different bytes: different job keys
    (tmp_path / "s.toml").write_text(
        'traces = ["tr/*.pcap"]\noutput = "o"\n[matrix]\n"nic.rx" = [64, 128]\n'
    )
    r = run(tmp_path / "s.toml")
    df = r.summary.select("trace", "status", "error")
    assert (r.done, r.failed) == (4, 4)
    assert (
        df.filter(pl.col("status") == "ok")["trace"].to_list()
        == ["tr/a.pcap"] * 2 + ["tr/b.pcap"] * 2
    )
    crash = df.filter(pl.col("trace") == "tr/crash.pcap")["error"].to_list()
    assert crash == ["the worker process died while running this job (it did so twice, alone)"] * 2
    assert (
        df.filter(pl.col("trace") == "tr/bug.pcap")["error"].to_list()
        == ["ZeroDivisionError: division by zero"] * 2
    )
    failed = [
        json.loads(line) for line in (tmp_path / "o" / "failed.jsonl").read_text().splitlines()
    ]
    assert [f["trace"] for f in failed] == ["tr/bug.pcap"] * 2 + ["tr/crash.pcap"] * 2
    assert "raise ZeroDivisionError" in failed[0]["traceback"] and failed[0]["knobs"] == {
        "nic.rx": 64
    }


def test_jobs_with_the_same_key_run_once(tmp_path: Path) -> None:
    (tmp_path / "tr").mkdir()
    write_pcap(tmp_path / "tr" / "a.pcap", 5)
    write_pcap(tmp_path / "tr" / "copy-of-a.pcap", 5)
    (tmp_path / "s.toml").write_text('traces = ["tr/*.pcap"]\noutput = "o"\n')
    r = run(tmp_path / "s.toml")
    assert (r.done, r.failed) == (2, 0)
    assert r.summary["key"].n_unique() == 1 and len(list((tmp_path / "o" / "runs").iterdir())) == 1


def test_job_reports_can_be_turned_off(tmp_path: Path) -> None:
    (tmp_path / "tr").mkdir()
    write_pcap(tmp_path / "tr" / "a.pcap", 5)
    (tmp_path / "s.toml").write_text('traces = "tr/a.pcap"\noutput = "o"\njob_reports = false\n')
    r = run(tmp_path / "s.toml", workers=1)
    row = r.summary.row(0, named=True)
    assert row["status"] == "ok" and row["report"] is None
    assert not (tmp_path / "o" / row["run"] / "report.html").exists()
    assert f'href="{row["run"]}/">run</a>' in (tmp_path / "o" / "report.html").read_text()


def test_a_killed_runs_temporaries_are_cleaned_also_write_runs_own(tmp_path: Path) -> None:
    from replay.pipeline.jobs import clean_partials

    runs = tmp_path / "runs"
    staging = runs / f"{PARTIAL_PREFIX}job-1-123-abcd"
    inner = runs / f".{staging.name}.partial-123"  # write_run's temporary, killed before its rename
    done = runs / "job-2"
    for d in (staging, inner, done):
        d.mkdir(parents=True)
    (runs / f"{PARTIAL_PREFIX}old-job-3-ef01").write_text("x")  # a stray file of the old-swap
    assert clean_partials(runs) == 3
    assert [d.name for d in runs.iterdir()] == ["job-2"]
