"""Issue 6's scale budget: the report of a 1M-frame run in under 60 s and under 8 MB."""

from __future__ import annotations

import time
from pathlib import Path

from replay.report.html import render_html
from tests.runfixtures import synthetic_run


def test_page_size_does_not_grow_with_the_run(tmp_path: Path) -> None:
    small = render_html(synthetic_run(tmp_path / "a", 2_000), tmp_path / "a.html").stat().st_size
    big = render_html(synthetic_run(tmp_path / "b", 100_000), tmp_path / "b.html").stat().st_size
    assert big < small * 1.1  # binned series, quantiles and a bounded packet sample


def test_one_million_frames_under_60_s_and_8_mb(tmp_path: Path) -> None:
    run = synthetic_run(tmp_path / "m", 1_000_000)
    t = time.perf_counter()
    out = render_html(run, tmp_path / "m.html")
    assert time.perf_counter() - t < 60
    assert out.stat().st_size < 8_000_000
