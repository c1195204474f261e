"""Run directory → reports: perf-style text, a self-contained HTML page, diffs and exports."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path


def render_stdio(run_dir: Any, **kw: Any) -> str:
    """`replay report RUN --stdio` text (see replay.report.stdio)."""
    from replay.report.stdio import render_stdio as _r

    return _r(run_dir, **kw)


def render_html(run_dir: Any, out_path: Any, **kw: Any) -> Path:
    """Write the self-contained HTML report of a run directory; returns its path."""
    from replay.report.html import render_html as _r

    return _r(run_dir, out_path, **kw)


def cli_report(run_dir: Any, output: Any, stdio: bool, vs: Any, sort: str | None,
               percent_limit: float, show_counts: bool, json_out: bool) -> str:
    """What `replay report` prints (the text itself, or the line naming the HTML file)."""
    from replay.report import aggregate as ag
    from replay.store.rundir import read_run

    run = read_run(run_dir)
    base = read_run(vs) if vs is not None else None
    keys = ag.parse_sort(sort)
    if percent_limit < 0 or percent_limit > 100:
        raise ag.ReportError(f"--percent-limit {percent_limit}: must be between 0 and 100")
    if json_out:
        import json

        from replay.report.jsonout import report_json

        doc = report_json(run, keys, percent_limit, base=base)
        return json.dumps(doc, indent=1) + "\n"
    if stdio:
        if base is not None:
            from replay.report.diff import render_diff_stdio

            return render_diff_stdio(base, run, keys, percent_limit)
        from replay.report.stdio import render_stdio as _r

        return _r(run, keys, percent_limit, show_counts)
    if base is not None:
        from replay.report.diff import render_diff_html

        path = render_diff_html(base, run, output)
    else:
        path = render_html(run, output)
    return f"wrote {path}\n"
