"""Report scale check: a synthetic N-frame run (default 1M) → HTML, --stdio, --json, folded.

    PYTHONPATH=$PWD python benchmarks/bench_report.py [--frames 1000000] [--repeat 2]

Prints wall time and size against issue 6's budget (1M frames: HTML in < 60 s, < 8 MB), as a
ratio of the budget. The run is random but shaped like the engine's output (tests/runfixtures.py
synthetic_run): one packets row per frame, one cpu row per 32 packets per stage symbol.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from replay.report.export import export_text
from replay.report.html import render_html
from replay.report.jsonout import report_json
from replay.report.stdio import render_stdio
from replay.store.rundir import read_run
from tests.runfixtures import synthetic_run


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=2)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        run_dir = synthetic_run(Path(d) / "bench", a.frames)
        print(f"synthetic run of {a.frames:,} frames: {time.perf_counter() - t:.1f} s")
        run = read_run(run_dir)
        steps = {
            "html": lambda: render_html(run, Path(d) / "r.html"),
            "stdio": lambda: render_stdio(run),
            "json": lambda: json.dumps(report_json(run)),
            "folded": lambda: export_text(run, "folded"),
        }
        for name, f in steps.items():
            best = min(_timed(f) for _ in range(a.repeat))
            line = f"{name:7s} best of {a.repeat}: {best:6.2f} s"
            if name == "html":
                size = (Path(d) / "r.html").stat().st_size
                line += (f"  ({best / 60:.3f} of the 60 s budget), {size / 1e6:.2f} MB "
                         f"({size / 8e6:.3f} of the 8 MB budget)")
            print(line)


def _timed(f: object) -> float:
    t = time.perf_counter()
    f()  # type: ignore[operator]
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
