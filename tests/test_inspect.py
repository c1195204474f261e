"""`replay inspect` and `replay ingest`: capinfos agreement, golden text, JSON, errors."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from blake3 import blake3
from typer.testing import CliRunner

from replay.capture import FRAMES_SCHEMA, read_captures
from replay.capture.summary import linktype_name, linktype_short
from replay.cli import app
from replay.errors import TraceError
from tests import capbuild as cb
from tests.oracle import corpus_dir, tshark_status

CORPUS = corpus_dir()
GOLDEN = Path(__file__).parent / "golden" / "inspect"
runner = CliRunner()


def _sample(tmp_path: Path) -> Path:
    """Two interfaces, four frames, one ARP: a capture whose summary is worked out by hand."""
    arp = bytes.fromhex("ffffffffffff0200000000010806") + b"\0" * 28
    data = b"".join([
        cb.shb(), cb.idb(1, tsresol=9), cb.idb(1),
        cb.epb(0, 1_000_000_000_000_000_000, cb.udp4()),
        cb.epb(1, 1_000_000_000_500_000, cb.udp4(sport=5, payload=b"z" * 100)),
        cb.epb(0, 1_000_000_002_000_000_000, cb.udp4()),
        cb.epb(1, 1_000_000_002_000_000, arp),
    ])  # fmt: skip
    p = tmp_path / "sample.pcapng"
    p.write_bytes(data)
    return p


def _golden(name: str, text: str, tmp_path: Path) -> None:
    """Compare with tests/golden/inspect/NAME. Regenerate after an intended change with
    UPDATE_GOLDEN=1 pytest tests/test_inspect.py"""
    text = text.replace(str(tmp_path), "<tmp>")
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


def test_inspect_text_golden(tmp_path: Path) -> None:
    r = runner.invoke(app, ["inspect", str(_sample(tmp_path))])
    assert r.exit_code == 0, r.output
    _golden("sample.txt", r.output, tmp_path)


def test_inspect_json_numbers(tmp_path: Path) -> None:
    r = runner.invoke(app, ["inspect", "--json", str(_sample(tmp_path))])
    assert r.exit_code == 0, r.output
    s = json.loads(r.output)["inputs"][0]
    u = len(cb.udp4())
    assert (s["frames"], s["duration_ns"], s["encapsulation"]) == (4, 2_000_000_000, "ether")
    assert s["data_size"] == 2 * u + len(cb.udp4(payload=b"z" * 100)) + 42
    assert s["linktypes_in_use"] == {"1": 4}
    assert [(p["protocol"], p["frames"]) for p in s["protocols"]] == [("IPv4/UDP", 3), ("ARP", 1)]
    assert s["flows"] == 3
    assert (s["interfaces"], s["sections"], s["untimed_frames"]) == (2, 1, 0)


def test_inspect_frame_layers(tmp_path: Path) -> None:
    r = runner.invoke(app, ["inspect", "--frame", "2", str(_sample(tmp_path))])
    assert r.exit_code == 0, r.output
    _golden("frame2.txt", r.output, tmp_path)
    r = runner.invoke(app, ["inspect", "--frame", "9", str(_sample(tmp_path))])
    assert r.exit_code == 1
    assert "there is no frame 9 (the input has 4 frames)" in r.output


def test_errors_are_one_line_and_exit_1(tmp_path: Path) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("not a capture\n")
    for args in (["inspect", str(bad)], ["ingest", str(bad), "-o", str(tmp_path / "o.parquet")]):
        r = runner.invoke(app, args)
        assert r.exit_code == 1
        assert r.output.strip() == f"replay: {bad}: not a pcap or pcapng file"
    assert not (tmp_path / "o.parquet").exists()


def test_ingest_writes_the_frames_table(tmp_path: Path) -> None:
    src = _sample(tmp_path)
    out = tmp_path / "frames.parquet"
    r = runner.invoke(app, ["ingest", str(src), str(src), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert r.output == f"{out}: 8 frames from 2 input(s)\n"
    t = pq.read_table(out)
    assert t.schema.remove_metadata() == FRAMES_SCHEMA
    assert t.equals(read_captures([src, src]).table)
    inputs = json.loads(pq.read_metadata(out).metadata[b"replay.inputs"])
    assert [i["frames"] for i in inputs] == [4, 4]
    digest = blake3(src.read_bytes()).hexdigest()  # what `b3sum` prints
    assert [i["blake3"] for i in inputs] == [digest, digest]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


def test_ingest_warns_about_a_cut_short_file_and_keeps_its_frames(tmp_path: Path) -> None:
    data = cb.pcap([(1, 0, cb.udp4()), (2, 0, cb.udp4())])
    src = tmp_path / "cut.pcap"
    src.write_bytes(data[:-3])
    out = tmp_path / "f.parquet"
    r = runner.invoke(app, ["ingest", str(src), "-o", str(out)])
    assert r.exit_code == 0
    assert "replay: warning:" in r.output and "cut short at byte" in r.output
    assert pq.read_table(out).num_rows == 1


# -- agreement with capinfos on the real corpus ----------------------------------------------

# Kept differences (docs/reader.md): ts_usec ≥ 1e6 in this file; capinfos takes usec = 2^31 as
# 0 (32-bit overflow), we carry it into the seconds.
CAPINFOS_KEPT = {"tcpdump__timestamp_invalid_micro.pcap": "duration"}


def _capinfos(path: Path) -> dict[str, object] | None:
    p = subprocess.run(["capinfos", "-M", "-E", "-c", "-u", str(path)], capture_output=True,
                       text=True)  # fmt: skip
    if p.returncode != 0:
        return None
    out: dict[str, object] = {"in_use": set()}
    in_use = False
    for line in p.stdout.splitlines():
        if line.startswith("File encapsulation:"):
            out["encap"] = line.split(":", 1)[1].strip()
        elif line.startswith("Encapsulation in use by packets"):
            in_use = True
            continue
        elif line.startswith("Number of packets:"):
            out["frames"] = int(line.split(":", 1)[1])
        elif line.startswith("Capture duration:"):
            v = line.split(":", 1)[1].strip().split()[0]
            out["duration"] = None if v == "n/a" else v
        if in_use and line.startswith(" "):
            out["in_use"].add(re.sub(r" \(\d+\)$", "", line.strip()))  # type: ignore[union-attr]
        elif not line.startswith(" "):
            in_use = line.startswith("Encapsulation in use")
    return out


def _corpus() -> list[str]:
    if not (CORPUS / "oracle" / "TSHARK_STATUS.tsv").is_file():
        return []
    return sorted(tshark_status(CORPUS))


@pytest.mark.corpus
@pytest.mark.skipif(shutil.which("capinfos") is None, reason="capinfos (wireshark-common) absent")
@pytest.mark.parametrize("name", _corpus())
def test_inspect_agrees_with_capinfos(name: str) -> None:
    from replay.capture.summary import summarize

    path = CORPUS / name
    ci = _capinfos(path)
    if ci is None:  # capinfos refuses it: we refuse it too, or read it with a warning
        try:
            cap = read_captures([path])
        except TraceError:
            return
        assert cap.inputs[0].warnings
        return
    cap = read_captures([path])
    s = summarize(cap.table, cap.inputs[0])
    assert s["frames"] == ci["frames"]
    assert s["encapsulation"] == ci["encap"]
    if ci["in_use"]:
        assert {linktype_name(int(k)) for k in s["linktypes_in_use"]} == ci["in_use"]
    else:
        assert {linktype_short(int(k)) for k in s["linktypes_in_use"]} <= {ci["encap"]}
    if CAPINFOS_KEPT.get(name) == "duration":
        return
    if ci.get("duration") is None:  # "n/a", or no line at all (frames without timestamps)
        assert s["duration_ns"] is None
    else:
        digits = len(str(ci["duration"]).partition(".")[2])
        want = round(float(str(ci["duration"])) * 10**digits)
        assert round(s["duration_ns"] / 10 ** (9 - digits)) == want


@pytest.mark.corpus
@pytest.mark.parametrize(
    "name", ["pcapplusplus__many-protocols.pcap", "pcapparser__wireshark_samples-test.pcapng"]
)
def test_streamed_summary_equals_the_whole_table_summary(name: str) -> None:
    """`replay inspect` folds batches into running totals: any batching gives the summary of
    the whole table (flows keep their first frame's addresses, counts add up)."""
    from replay.capture.summary import Summary, summarize

    path = CORPUS / name if CORPUS is not None else None
    if path is None or not path.exists():
        pytest.skip(f"{name} absent (set STACK_REPLAY_SHARED to the shared folder)")
    cap = read_captures([path])
    whole = summarize(cap.table, cap.inputs[0])
    for step in (1, 97, 1000):
        s = Summary()
        for start in range(0, cap.table.num_rows, step):
            s.add(cap.table.slice(start, step))
        assert s.result(cap.inputs[0]) == whole
    assert whole["frames"] == cap.table.num_rows and whole["flows"] > 10
