"""The HTML report: one self-contained file, plotly.js inlined once, foreign strings escaped."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from replay.cli import app
from replay.report.html import json_block, render_html
from tests.runfixtures import small_run

EVIL = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> str:
    d = tmp_path_factory.mktemp("h")
    out = render_html(small_run(d / "small"), d / "small.html")
    return out.read_text()


def test_plotly_is_inlined_exactly_once(page: str) -> None:
    assert len(re.findall(r"plotly\.js v\d", page)) == 1


def test_page_loads_nothing_from_the_network(page: str) -> None:
    # no external scripts, styles, images or fonts. plotly's own bundle holds URL strings for
    # map tiles it never loads here (tests/test_browser_report.py checks no request is made),
    # so it is cut out before looking at the page's own markup
    from plotly.offline import get_plotlyjs

    bundle = get_plotlyjs()
    assert page.count(bundle) == 1
    page = page.replace(bundle, "")
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page, re.I)
    assert not re.search(r"<link\b", page, re.I)
    assert not re.search(r"@import|url\(\s*['\"]?https?:|https?://", page, re.I)


def test_page_has_every_section(page: str) -> None:
    for anchor in ("replayed", "overhead", "latency", "drops", "flows", "journey"):
        assert f'<section id="{anchor}">' in page
    assert 'id="overhead-table" class="sortable"' in page
    assert 'data-fig="fig-latency-stack"' in page


def test_overhead_rows_carry_exact_numbers(page: str) -> None:
    row = re.search(r"<tr><td class=\"num\" data-v=\"25.0\">25.00%</td>.*?</tr>", page)
    assert row is not None
    assert "[k] ixgbe_clean_rx_irq" in row.group(0) and ">5000<" in row.group(0)


def test_config_differences_are_listed(page: str) -> None:
    assert "host.cpus" in page and "2 (default 4)" in page


def test_strings_from_captures_names_and_config_are_escaped(tmp_path: Path) -> None:
    inputs = [{"path": f"{EVIL}.pcap", "sha256": EVIL, "frames": 5, "linktypes": [1],
               "format": EVIL}]
    run = small_run(tmp_path / EVIL.replace("/", "_"), app_name=EVIL, inputs=inputs,
                    command=f"replay run {EVIL}.pcap",
                    config={"host": {"cpus": 2}, "nic": {"driver": EVIL}})
    html = render_html(run, tmp_path / "evil.html").read_text()
    assert EVIL not in html
    assert "alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.pcap" in html
    for m in re.finditer(r'<script type="application/json" id="[^"]+">(.*?)</script>', html,
                         re.S):
        json.loads(m.group(1))  # data blocks stay valid JSON after escaping


def test_json_block_cannot_close_its_script_tag() -> None:
    s = json_block({"a": "</script><b>&"})
    assert "<" not in s and ">" not in s and "&" not in s
    assert json.loads(s) == {"a": "</script><b>&"}


def test_cli_writes_default_path_under_reports(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    run = small_run(tmp_path / "runs" / "demo")
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(app, ["report", str(run)])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "reports" / "demo.html").stat().st_size > 1_000_000
    assert r.output.strip() == "wrote reports/demo.html"


def test_cli_writes_the_named_file(tmp_path: Path) -> None:
    run = small_run(tmp_path / "small")
    out = tmp_path / "x" / "r.html"
    r = CliRunner().invoke(app, ["report", str(run), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert not list(out.parent.glob(".*partial*"))
