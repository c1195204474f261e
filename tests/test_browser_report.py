"""The HTML report in a real browser: Debian's headless Chromium driven by Playwright, the page
loaded from file:// with every non-file request aborted. Needs /usr/bin/chromium
(`apt-get install -y chromium`); never `playwright install`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from replay.report.html import render_html
from tests.runfixtures import small_run, synthetic_run

CHROMIUM = os.environ.get("STACK_REPLAY_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason=f"{CHROMIUM} not found: apt-get install -y chromium"),
]



class Loaded:
    def __init__(self, page: Any, errors: list[str], foreign: list[str]) -> None:
        self.page, self.errors, self.foreign = page, errors, foreign


def open_report(browser: Any, html: Path) -> Loaded:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    foreign: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    def route(r: Any) -> None:
        if r.request.url.startswith("file://"):
            r.continue_()
        else:
            foreign.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.goto(html.as_uri(), wait_until="load")
    page.wait_for_function(
        "() => [...document.querySelectorAll('div.fig')]"
        ".every(d => d.querySelector('svg.main-svg g.trace'))",
        timeout=30_000,
    )
    return Loaded(page, errors, foreign)


@pytest.fixture(scope="module")
def small(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    d = tmp_path_factory.mktemp("b")
    loaded = open_report(browser, render_html(small_run(d / "small"), d / "small.html"))
    yield loaded
    loaded.page.close()


def test_no_console_errors_and_no_network(small: Loaded) -> None:
    assert small.errors == []
    assert small.foreign == []


def test_every_figure_is_rendered(small: Loaded) -> None:
    figs = small.page.eval_on_selector_all(
        "div.fig", "ds => ds.map(d => [d.id, d.querySelectorAll('svg.main-svg g.trace').length])")
    assert {f[0] for f in figs} >= {"latency-stack", "latency-cdf", "flame-icicle",
                                    "cpu-timeline", "occupancy", "drops-bar", "poll-work"}
    assert all(n > 0 for _, n in figs), figs


def _column(page: Any, table: str, col: int) -> list[str]:
    return page.eval_on_selector_all(
        f"#{table} tbody tr", f"rs => rs.filter(r => r.style.display !== 'none')"
                              f".map(r => r.cells[{col}].textContent)")


def test_overhead_table_sorts_by_clicked_column(small: Loaded) -> None:
    p = small.page
    assert _column(p, "overhead-table", 0)[0] == "25.00%"
    p.click("#overhead-table thead th:nth-child(2)")  # ns, ascending
    assert p.get_attribute("#overhead-table thead th:nth-child(2)", "aria-sort") == "ascending"
    ns = [int(v) for v in _column(p, "overhead-table", 1)]
    assert ns == sorted(ns) and ns[0] == 500
    p.click("#overhead-table thead th:nth-child(2)")
    ns = [int(v) for v in _column(p, "overhead-table", 1)]
    assert ns == sorted(ns, reverse=True) and ns[0] == 5000
    p.click("#overhead-table thead th:nth-child(6)")  # Symbol, text order
    syms = _column(p, "overhead-table", 5)
    assert syms == sorted(syms, key=str.lower)


def test_overhead_filter_hides_other_rows(small: Loaded) -> None:
    p = small.page
    p.fill("#overhead-filter", "ip_")
    assert sorted(_column(p, "overhead-table", 5)) == [
        "[k] ip_local_deliver", "[k] ip_rcv", "[k] ip_route_input_noref"]
    p.fill("#overhead-filter", "")
    assert len(_column(p, "overhead-table", 5)) == 11


def test_packet_selector_shows_the_journey(small: Loaded) -> None:
    p = small.page
    labels = p.eval_on_selector_all("#pkt-select option", "os => os.map(o => o.textContent)")
    assert len(labels) == 5 and labels[0].startswith("#1 delivered 12600 ns")
    first = _column(p, "journey-table", 1)
    assert first == ["wire", "irq", "poll", "driver", "gro", "netif", "ip", "route", "local",
                     "l4", "copy", "app"]
    assert _column(p, "journey-table", 0)[-1] == "13600"  # t_done of packet 1
    p.select_option("#pkt-select", index=2)  # packet 3, dropped at l4
    notes = _column(p, "journey-table", 5)
    assert notes[-1] == "drop: SOCKET_RCVBUFF"
    assert _column(p, "journey-table", 1)[-1] == "l4"


def test_a_larger_run_renders_without_errors(browser: Any, tmp_path: Path) -> None:
    html = render_html(synthetic_run(tmp_path / "syn", 20_000), tmp_path / "syn.html")
    loaded = open_report(browser, html)
    assert loaded.errors == [] and loaded.foreign == []
    n = loaded.page.eval_on_selector_all("#pkt-select option", "os => os.length")
    assert 40 <= n <= 200
    loaded.page.close()


def test_diff_page_renders(browser: Any, tmp_path: Path) -> None:
    from replay.report.diff import render_diff_html
    from replay.store.rundir import read_run
    from tests.regen_golden import other_run

    base = read_run(small_run(tmp_path / "small"))
    new = read_run(other_run(tmp_path))
    loaded = open_report(browser, render_diff_html(base, new, tmp_path / "diff.html"))
    assert loaded.errors == [] and loaded.foreign == []
    p = loaded.page
    p.click("#overhead-table thead th:nth-child(3)")  # Delta, ascending
    deltas = _column(p, "overhead-table", 2)
    assert deltas[0] == "-15.00%" and deltas[-1] == "+15.00%"
    p.close()


def test_report_of_a_real_run_renders(browser: Any, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from replay.cli import app
    from tests.test_report_realruns import TRACES, _has_run_command

    if not _has_run_command():
        pytest.skip("`replay run` is not on this branch yet")
    out = tmp_path / "game"
    r = CliRunner().invoke(app, ["run", str(TRACES / "game-server.pcap"), "-L", "2000", "-o",
                                 str(out), "--report", str(tmp_path / "game.html")])
    assert r.exit_code == 0, r.output
    loaded = open_report(browser, tmp_path / "game.html")
    assert loaded.errors == [] and loaded.foreign == []
    p = loaded.page
    assert p.eval_on_selector_all("#pkt-select option", "os => os.length") >= 40
    p.select_option("#pkt-select", index=1)
    stages = _column(p, "journey-table", 1)
    assert stages[:3] == ["wire", "irq", "poll"] and "driver" in stages
    p.close()


def test_markup_in_names_is_shown_as_text_in_figures(browser: Any, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc

    from replay.store.rundir import read_run, write_run
    from replay.store.schema import CPU_SCHEMA
    from tests.runfixtures import run_json, small_tables

    evil = "<b>bold</b><a href='javascript:alert(1)'>x</a>"
    t = small_tables()
    sym = pc.replace_substring(t["cpu"]["symbol"].cast(pa.string()), "app_work", evil)
    t["cpu"] = t["cpu"].set_column(CPU_SCHEMA.get_field_index("symbol"), "symbol",
                                   sym.dictionary_encode().cast(CPU_SCHEMA.field("symbol").type))
    run = write_run(tmp_path / "evil", run_json("evil", 5, 5), t)
    assert evil in read_run(run).table("cpu")["symbol"].cast(str).to_list()
    loaded = open_report(browser, render_html(run, tmp_path / "evil.html"))
    assert loaded.errors == [] and loaded.foreign == []
    texts = loaded.page.eval_on_selector_all(
        "#flame-icicle svg text", "ts => ts.map(t => t.textContent)")
    assert any("<b>bold</b>" in t for t in texts), texts
    assert loaded.page.query_selector_all("#flame-icicle svg a") == []
    loaded.page.close()
