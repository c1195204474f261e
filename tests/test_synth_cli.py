"""`replay synth`: help with an example, --list, .gz output, one-line errors with exit 1."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from typer.testing import CliRunner

from replay.cli import app
from replay.synth import SCENARIOS, SynthError, synthesize
from replay.synth.options import parse_rate

runner = CliRunner()


def test_help_shows_an_example():
    r = runner.invoke(app, ["synth", "--help"])
    assert r.exit_code == 0
    assert "replay synth https-download -o traces/https-download.pcap" in r.output


@pytest.mark.parametrize("argv", [["synth", "--list"], ["synth", "list"]])
def test_list_names_every_scenario_on_one_line(argv):
    r = runner.invoke(app, argv)
    lines = r.output.splitlines()
    assert r.exit_code == 0 and len(lines) == len(SCENARIOS) == 11
    assert [line.split()[0] for line in lines] == list(SCENARIOS)
    assert all("[defaults: --duration" in line for line in lines)


def test_gz_output_is_gzip_and_deterministic(tmp_path):
    a, b = tmp_path / "a.pcap.gz", tmp_path / "b.pcap.gz"
    for out in (a, b):
        r = runner.invoke(app, ["synth", "syn-flood", "-o", str(out), "--duration", "0.001"])
        assert r.exit_code == 0, r.output
        assert "500 frames" in r.output
    assert a.read_bytes() == b.read_bytes()
    assert gzip.decompress(a.read_bytes())[:4] == bytes.fromhex("4d3cb2a1")  # ns pcap, LE


def test_plain_output_is_not_compressed(tmp_path):
    out = tmp_path / "x.pcap"
    synthesize("syn-flood", out, duration=0.001)
    assert out.read_bytes()[:4] == bytes.fromhex("4d3cb2a1")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["nope"], "unknown scenario 'nope'; choose one of: https-download"),
        (["https-download", "--clients", "3"], "scenario https-download does not take --clients"),
        (["https-download", "--rate", "fast"], "--rate 'fast' is not a rate in bit/s"),
        (["game-server", "--rate", "64pps"], "--rate '64pps' is not a rate in Hz"),
        (["game-server", "--duration", "0"], "--duration must be more than 0"),
        (["game-server", "--clients", "0"], "--clients must be between 1 and 100000, got 0"),
        (["udp-flood", "--size", "63"], "--size must be between 64 and 1518"),
        (["gigabit-flood", "--duration", "5", "--rate", "100G"], "the limit is 5,000,000"),
        (["https-download", "--duration", "60", "--rate", "10G"], "the limit is 500,000"),
        (["vxlan", "--flows", "30001"], "--flows must be between 1 and 30000"),
        (["syn-flood", "--seed", "-1"], "--seed must be between 0 and 4294967295"),
    ],
)
def test_bad_options_exit_1_with_one_line(argv, message, tmp_path):
    out = tmp_path / "x.pcap"
    r = runner.invoke(app, ["synth", *argv, "-o", str(out)])
    assert r.exit_code == 1
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], r.output
    assert not out.exists() and not list(tmp_path.iterdir())


def test_missing_out_or_scenario_is_one_line():
    r = runner.invoke(app, ["synth", "mixed"])
    assert r.exit_code == 1 and "-o OUT.pcap" in r.output
    r = runner.invoke(app, ["synth"])
    assert r.exit_code == 1 and "replay synth --list" in r.output


def test_missing_directory_is_one_line(tmp_path):
    with pytest.raises(SynthError, match="does not exist; create it first"):
        synthesize("syn-flood", tmp_path / "no" / "x.pcap", duration=0.001)


@pytest.mark.parametrize(
    ("text", "unit", "value"),
    [
        ("100M", "bit/s", 100e6),
        ("1Gbit", "bit/s", 1e9),
        ("2.5gbps", "bit/s", 2.5e9),
        ("1.5Mpps", "pps", 1.5e6),
        ("500k", "pps", 5e5),
        ("64", "Hz", 64.0),
        ("128Hz", "Hz", 128.0),
        (1e3, "pps", 1e3),
    ],
)
def test_parse_rate(text, unit, value):
    assert parse_rate(text, unit) == value


def test_list_matches_golden_file():
    # Regenerate after an intended change:
    #   PYTHONPATH=. python -m replay synth --list > tests/golden/synth/list.txt
    golden = Path(__file__).parent / "golden" / "synth" / "list.txt"
    assert runner.invoke(app, ["synth", "--list"]).output == golden.read_text()
