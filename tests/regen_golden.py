"""Golden report outputs: the cases, and the one command that rewrites them after a change.

    PYTHONPATH=$PWD python -m tests.regen_golden

tests/test_report_golden.py renders every case and compares it byte for byte with tests/golden/.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from tests.runfixtures import small_run

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
}


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
