"""Run directory → one self-contained HTML page (plotly.js inlined once, no network at view time).

The page is built as text: every string that comes from a capture, a file name or a config goes
through `esc` (html.escape) or into a JSON data block whose `<`, `>` and `&` are \\u-escaped, so a
trace named `<script>…</script>.pcap` shows as text. Figures are plotly JSON specs drawn by the
page's own script (assets/report.js) with the inlined plotly.js; nothing is fetched.
"""

from __future__ import annotations

import json
import os
from html import escape
from importlib import resources
from pathlib import Path
from typing import Any

from replay.report import aggregate as ag
from replay.report import sections
from replay.store.rundir import Run, read_run


def esc(s: object) -> str:
    return escape(str(s), quote=True)


def json_block(obj: Any) -> str:
    """JSON safe to embed in <script type="application/json"> (no '</script>' can appear)."""
    s = json.dumps(obj, separators=(",", ":"), default=_json_default)
    return s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _json_default(o: Any) -> Any:
    if hasattr(o, "tolist"):
        return o.tolist()
    if hasattr(o, "isoformat"):
        return o.isoformat()
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


class Page:
    """Collects sections, figures and data blocks; `html()` assembles the document."""

    def __init__(self, title: str, subtitle: str) -> None:
        self.title = title
        self.subtitle = subtitle
        self.sections: list[tuple[str, str, str]] = []  # (anchor, heading, body html)
        self.blocks: dict[str, str] = {}

    def figure(self, fig_id: str, fig: Any, cls: str = "", height: int | None = None) -> str:
        """Register a plotly figure; returns the div that will show it."""
        spec = fig.to_plotly_json()
        self.blocks[f"fig-{fig_id}"] = json_block({"data": spec["data"], "layout": spec["layout"]})
        style = f' style="height:{height}px"' if height else ""
        return (f'<div class="fig {cls}" id="{fig_id}" data-fig="fig-{fig_id}"{style}>'
                "</div>")

    def data(self, block_id: str, obj: Any) -> None:
        self.blocks[block_id] = json_block(obj)

    def add(self, anchor: str, heading: str, body: str) -> None:
        self.sections.append((anchor, heading, body))

    def html(self) -> str:
        from plotly.offline import get_plotlyjs

        assets = resources.files("replay.report") / "assets"
        css = (assets / "report.css").read_text()
        js = (assets / "report.js").read_text()
        nav = "".join(f'<a href="#{a}">{esc(h)}</a>' for a, h, _ in self.sections)
        body = "".join(
            f'<section id="{a}"><h2>{esc(h)}</h2>{b}</section>' for a, h, b in self.sections
        )
        blocks = "".join(
            f'<script type="application/json" id="{k}">{v}</script>' for k, v in self.blocks.items()
        )
        return (
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{esc(self.title)}</title>"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<style>{css}</style></head><body>"
            f"<header><h1>{esc(self.title)}</h1><div class=\"sub\">{esc(self.subtitle)}</div>"
            f"</header><nav>{nav}</nav><main>{body}</main>{blocks}"
            f'<script type="text/javascript">{get_plotlyjs()}</script>'
            f'<script type="text/javascript">{js}</script></body></html>\n'
        )


def build_page(run: Run, journeys: int = 40) -> Page:
    t = ag.totals(run)
    page = Page(
        f"stack-replay report: {run.path.name}",
        f"{t.frames} frames, {t.packets} packets, {t.cpu_ns} ns of modeled CPU time, "
        f"{t.outcomes['delivered']} delivered, {t.outcomes['dropped']} dropped",
    )
    for build in sections.all_sections():
        build(page, run, t, journeys=journeys)
    return page


def default_report_path(run_dir: str | os.PathLike[str]) -> Path:
    """reports/<run name>.html (DESIGN.md: reports/ is the default output folder)."""
    return Path("reports") / f"{Path(run_dir).resolve().name}.html"


def render_html(
    run_dir: str | os.PathLike[str] | Run,
    out_path: str | os.PathLike[str] | None = None,
    journeys: int = 40,
) -> Path:
    """Write the report page of `run_dir` to `out_path` (atomically); returns the path."""
    run = run_dir if isinstance(run_dir, Run) else read_run(run_dir)
    out = Path(out_path) if out_path is not None else default_report_path(run.path)
    text = build_page(run, journeys).html()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    return out
