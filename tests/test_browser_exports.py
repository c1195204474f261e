"""The speedscope, folded and perfetto (trace-event JSON) exports open in speedscope itself (the
npm package's offline build, served from file:// in headless Chromium with the network blocked).

Needs Debian's Chromium and speedscope's release build:
    npm install --prefix .cache/speedscope speedscope@1.25.0
(or STACK_REPLAY_SPEEDSCOPE=<dir holding index.html>); skips with that message otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from replay.report.export import export_run
from tests.runfixtures import small_run
from tests.test_browser_report import CHROMIUM

ROOT = Path(__file__).resolve().parents[1]
SPEEDSCOPE = Path(os.environ.get(
    "STACK_REPLAY_SPEEDSCOPE",
    ROOT / ".cache" / "speedscope" / "node_modules" / "speedscope" / "dist" / "release"))

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason=f"{CHROMIUM} not found: apt-get install -y chromium"),
    pytest.mark.skipif(not (SPEEDSCOPE / "index.html").exists(),
                       reason="speedscope not found: npm install --prefix .cache/speedscope "
                              "speedscope@1.25.0"),
]



def open_in_speedscope(browser: Any, file: Path) -> tuple[Any, list[str], list[str]]:
    page = browser.new_page(viewport={"width": 1200, "height": 800})
    errors: list[str] = []
    foreign: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    def route(r: Any) -> None:
        if r.request.url.startswith(("file://", "data:", "blob:")):
            r.continue_()
        else:
            foreign.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.goto((SPEEDSCOPE / "index.html").as_uri())
    page.wait_for_selector("#file", state="attached")
    page.set_input_files("#file", str(file))
    return page, errors, foreign


def test_speedscope_file_opens_with_one_profile_per_cpu(browser: Any, tmp_path: Path) -> None:
    run = small_run(tmp_path / "small")
    out = export_run(run, "speedscope", tmp_path / "small.speedscope.json")
    page, errors, foreign = open_in_speedscope(browser, out)
    page.wait_for_function("() => document.title.startsWith('small - speedscope')")
    page.wait_for_function("() => document.body.innerText.includes('CPU 0 (1/2)')")
    body = page.inner_text("body")
    assert "ixgbe_clean_rx_irq" in body or page.query_selector("canvas") is not None
    assert errors == [] and foreign == []
    page.close()


def test_folded_file_opens_as_collapsed_stacks(browser: Any, tmp_path: Path) -> None:
    run = small_run(tmp_path / "small")
    out = export_run(run, "folded", tmp_path / "small.folded")
    page, errors, foreign = open_in_speedscope(browser, out)
    page.wait_for_function("() => document.title.startsWith('small.folded - speedscope')")
    assert page.query_selector("canvas") is not None
    assert errors == [] and foreign == []
    page.close()


def test_perfetto_trace_events_open_in_speedscopes_chrome_importer(browser: Any,
                                                                   tmp_path: Path) -> None:
    # Perfetto's UI is online only; speedscope's importer for Chrome's trace-event JSON (the
    # format Perfetto and chrome://tracing read) parses the same file offline: one timeline per
    # (pid, tid) holding complete ("X") events
    import json

    run = small_run(tmp_path / "small")
    out = export_run(run, "perfetto", tmp_path / "small.json")
    ev = json.loads(out.read_text())["traceEvents"]
    threads = {(e["pid"], e["tid"]) for e in ev if e["ph"] == "X"}
    page, errors, foreign = open_in_speedscope(browser, out)
    page.wait_for_function("() => document.title.startsWith('small.json - speedscope')")
    page.wait_for_function(
        f"() => document.body.innerText.includes('CPU 0 (tid 0) (1/{len(threads)})')")
    assert page.query_selector("canvas") is not None
    assert errors == [] and foreign == []
    page.close()
