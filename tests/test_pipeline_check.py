"""[check]: a sweep against a baseline summary with thresholds (the CI regression gate)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import polars as pl
import pytest

from replay.errors import PipelineError
from replay.pipeline import load_spec, run_pipeline
from tests.pipeline_support import toy_resolver, toy_run, write_pcap

SPEC = """
traces = ["tr/*.pcap"]
config = "base.toml"
output = "out"
[matrix]
"nic.rx" = [128, 1024]
[check]
baseline = "baseline.csv"
[check.thresholds]
latency_p99_ns = "10%"
dropped = 0
"""


def run(spec: Path, **kw):
    return run_pipeline(
        load_spec(spec), workers=1, job_fn=toy_run, resolver=toy_resolver, progress=False, **kw
    )


@pytest.fixture()
def spec(tmp_path: Path) -> Path:
    (tmp_path / "tr").mkdir()
    write_pcap(tmp_path / "tr" / "a.pcap", 20)
    (tmp_path / "base.toml").write_text("[nic]\nrx-usecs = 50\n")
    (tmp_path / "s.toml").write_text(SPEC)
    return tmp_path / "s.toml"


def test_baseline_round_trip_passes_then_a_slower_config_crosses_the_threshold(spec: Path) -> None:
    r = run(spec, write_baseline=True)
    assert r.check_notes == [f"baseline written to {spec.parent / 'baseline.csv'}"]
    base = pl.read_csv(spec.parent / "baseline.csv")
    assert not [c for c in base.columns if "wall" in c or c in ("key", "run", "cached")]
    assert run(spec).check_failures == []
    (spec.parent / "base.toml").write_text("[nic]\nrx-usecs = 56\n")
    r = run(spec)
    # rx=128: 2 delivered, p99 50100 -> 56100 (+12.0%)
    # rx=1024: 16 delivered, p99 51500 -> 57500 (+11.7%)
    assert r.check_failures == [
        "trace=tr/a.pcap nic.rx=128 seed=0: latency_p99_ns 50100 → 56100 (+12.0%), "
        "allowed increase 10%",
        "trace=tr/a.pcap nic.rx=1024 seed=0: latency_p99_ns 51500 → 57500 (+11.7%), "
        "allowed increase 10%",
    ]
    assert r.line().endswith("check: 2 threshold(s) crossed")
    (spec.parent / "base.toml").write_text("[nic]\nrx-usecs = 54\n")  # +8%: within 10%
    assert run(spec).check_failures == []


def test_new_drops_and_new_failures_cross_and_unmatched_jobs_are_notes(spec: Path) -> None:
    run(spec, write_baseline=True)
    text = spec.read_text().replace('"nic.rx" = [128, 1024]', '"nic.rx" = [128, 1024, 64, 100]')
    spec.write_text(text)
    base = pl.read_csv(spec.parent / "baseline.csv")
    # pretend the baseline had rx=100 working and fewer drops at rx=128
    extra = base.filter(pl.col("nic.rx") == 128).with_columns(pl.lit(100, pl.Int64).alias("nic.rx"))
    base = pl.concat(
        [
            base.with_columns(
                pl.when(pl.col("nic.rx") == 128)
                .then(pl.col("dropped") - 1)
                .otherwise(pl.col("dropped"))
                .alias("dropped")
            ),
            extra,
        ]
    )
    base.write_csv(spec.parent / "baseline.csv")
    r = run(spec)
    assert r.check_failures == [
        "trace=tr/a.pcap nic.rx=128 seed=0: dropped 17 → 18 (+5.9%), allowed increase 0",
        "trace=tr/a.pcap nic.rx=100 seed=0: failed now, succeeded in the baseline",
    ]
    assert r.check_notes == ["trace=tr/a.pcap nic.rx=64 seed=0: not in the baseline"]


def test_a_missing_baseline_or_unknown_column_is_a_clear_error(spec: Path) -> None:
    with pytest.raises(PipelineError, match="no baseline summary; make one with `replay pipeline SPEC --write-baseline`"):
        run(spec)
    run(spec, write_baseline=True)
    s = load_spec(spec)
    bad = dataclasses.replace(
        s, check=dataclasses.replace(s.check, thresholds={"latency_p42_ns": 1})
    )
    with pytest.raises(
        PipelineError, match=r"\[check.thresholds\] latency_p42_ns: the sweep has no such column"
    ):
        run_pipeline(bad, workers=1, job_fn=toy_run, resolver=toy_resolver, progress=False)
