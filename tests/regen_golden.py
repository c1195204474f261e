"""Golden report outputs: the cases, and the one command that rewrites them after a change.

    PYTHONPATH=$PWD python -m tests.regen_golden

tests/test_report_golden.py renders every case and compares it byte for byte with tests/golden/.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from tests.runfixtures import counters_block, small_run

GOLDEN = Path(__file__).parent / "golden"


def _stdio(**kw: object) -> Callable[[Path], str]:
    def render(run_dir: Path) -> str:
        from replay.report.stdio import render_stdio

        return render_stdio(run_dir, **kw)  # type: ignore[arg-type]

    return render


def _export(fmt: str) -> Callable[[Path], str]:
    def render(run_dir: Path) -> str:
        from replay.report.export import export_text

        return export_text(run_dir, fmt)

    return render


# golden file name -> renderer of the small run (tests/runfixtures.py)
CASES: dict[str, Callable[[Path], str]] = {
    "small.stdio.txt": _stdio(),
    "small.sort-cpu-sym.n.limit5.stdio.txt": _stdio(sort="cpu,sym", show_counts=True,
                                                     percent_limit=5.0, counters=False),
    "small.sort-flow-stage.stdio.txt": _stdio(sort="flow,stage", counters=False),
    "small.folded": _export("folded"),
    "other-vs-small.diff.stdio.txt": lambda run_dir: _diff(run_dir),
}


def other_run(parent: Path) -> Path:
    """The small run with the app renamed "server" and four more time squeezes on CPU 0."""
    c = counters_block()
    c["softnet_stat"][0]["time_squeeze"] = 5
    return small_run(parent / "other", name="other", app_name="server", counters=c)


def _diff(run_dir: Path) -> str:
    from replay.report.diff import render_diff_stdio
    from replay.store.rundir import read_run

    return render_diff_stdio(read_run(run_dir), read_run(other_run(run_dir.parent)))


def render_all(tmp: Path) -> dict[str, str]:
    run_dir = small_run(tmp / "small")
    return {name: f(run_dir) for name, f in CASES.items()}


def main() -> int:
    with tempfile.TemporaryDirectory() as d:
        outs = render_all(Path(d))
    GOLDEN.mkdir(exist_ok=True)
    for name, text in outs.items():
        (GOLDEN / name).write_text(text)
        print(f"wrote {GOLDEN / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
