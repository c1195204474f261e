"""traces/: every bundled capture is what its README command makes, byte for byte, and small."""

from __future__ import annotations

import re
import shlex
import zlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from replay.cli import app

TRACES = Path(__file__).resolve().parent.parent / "traces"
README = TRACES / "README.md"


def readme_commands() -> dict[str, list[str]]:
    """File name → argv of the `replay synth` command given under its heading."""
    commands: dict[str, list[str]] = {}
    for line in README.read_text().splitlines():
        if line.startswith("replay synth "):
            argv = shlex.split(line)[1:]
            out = Path(argv[argv.index("-o") + 1])
            assert commands.setdefault(out.name, argv) == argv, f"two commands for {out.name}"
    return commands


def bundled() -> list[str]:
    return sorted(p.name for p in TRACES.iterdir() if p.name != "README.md")


def test_every_bundled_trace_has_a_readme_command_and_vice_versa():
    assert bundled() == sorted(readme_commands())
    assert {"https-download.pcap", "game-server.pcap", "gigabit-flood.pcap.gz"} <= set(bundled())


@pytest.mark.parametrize("name", bundled())
def test_readme_command_regenerates_the_trace_byte_for_byte(name, tmp_path):
    argv = readme_commands()[name]
    argv[argv.index("-o") + 1] = str(tmp_path / name)
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output
    from tests._synth_read import raw

    assert raw(tmp_path / name) == raw(TRACES / name), f"{name} differs from its README command"
    assert (tmp_path / name).read_bytes() == (TRACES / name).read_bytes(), (
        f"{name}: same pcap, different gzip stream: this zlib ({zlib.ZLIB_RUNTIME_VERSION})"
        " compresses differently from the one that made the file"
    )


@pytest.mark.parametrize("name", bundled())
def test_bundled_trace_is_under_2_mb(name):
    assert (TRACES / name).stat().st_size < 2_000_000


def test_readme_figures_match_the_files():
    from tests._synth_read import read

    text = README.read_text()
    for name in bundled():
        section = text.split(f"## {name}")[1].split("\n## ")[0]
        frames = int(re.search(r"([\d,]+) frames", section).group(1).replace(",", ""))
        assert len(read(TRACES / name).frames) == frames, name
        size = f"{(TRACES / name).stat().st_size:,} bytes"
        assert size in section, (name, size)
