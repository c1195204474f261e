"""Captures made by Wireshark's own tools read like tshark reads them (run when installed).

randpkt writes random packets of many protocols (and link types: Token Ring, FDDI, ...);
editcap converts real captures to pcapng, to the old pcap variants, and cuts them to a snaplen.
Each result is compared with `tshark -T fields` on the same file, field by field (tests/oracle.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from replay.capture import read_captures
from tests.oracle import compare, corpus_dir, read_oracle

TOOLS = all(shutil.which(t) for t in ("tshark", "editcap", "randpkt"))
pytestmark = pytest.mark.skipif(not TOOLS, reason="tshark/editcap/randpkt (Debian: tshark) absent")

FIELDS = ["frame.number", "frame.time_epoch", "frame.len", "frame.cap_len", "eth.type", "vlan.id",
          "ip.version", "ip.src", "ip.dst", "ipv6.src", "ipv6.dst", "ip.proto", "ipv6.nxt",
          "tcp.srcport", "tcp.dstport", "udp.srcport", "udp.dstport"]  # fmt: skip


def _tshark(path: Path) -> list[dict[str, str]]:
    cmd = ["tshark", "-n", "-r", str(path), "-T", "fields", "-E", "header=y", "-E", "separator=/t"]
    for f in FIELDS:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, check=True).stdout
    tsv = path.with_suffix(path.suffix + ".tsv")
    tsv.write_bytes(out)
    return read_oracle(tsv)


RANDPKT = Path(__file__).parent / "data" / "randpkt"


@pytest.mark.parametrize("kind", ["tcp", "ip", "ipv6", "fddi", "udp"])
def test_randpkt_saved(tmp_path: Path, kind: str) -> None:
    """randpkt output saved once (randpkt has no seed), compared with tshark on every run."""
    p = tmp_path / f"{kind}.pcap"
    p.write_bytes((RANDPKT / f"{kind}.pcap").read_bytes())
    assert compare(read_captures([p]).table, _tshark(p)) == []


@pytest.mark.skipif(not os.environ.get("STACK_REPLAY_RANDPKT"),
                    reason="fresh random packets each run; set STACK_REPLAY_RANDPKT=1 to fuzz")
@pytest.mark.parametrize("kind", ["tcp", "ip", "ipv6", "fddi", "udp"])
def test_randpkt_fresh(tmp_path: Path, kind: str) -> None:
    """New random packets: a differential fuzz against tshark, on demand (a failure keeps its
    capture in pytest's tmp_path to reproduce)."""
    p = tmp_path / f"{kind}.pcap"
    subprocess.run(["randpkt", "-b", "300", "-c", "60", "-t", kind, str(p)], check=True,
                   capture_output=True)  # fmt: skip
    assert compare(read_captures([p]).table, _tshark(p)) == []


SOURCES = ["zeek__geneve.pcap", "tcpdump__802.1ad_QinQ.pcap", "pcapplusplus__ip6_fragments.pcap",
           "zeek__pcapng-multi-interface.pcapng", "pcapplusplus__sll2.pcap"]  # fmt: skip


@pytest.mark.corpus
@pytest.mark.parametrize("name", SOURCES)
@pytest.mark.parametrize("args", [["-F", "pcapng"], ["-s", "60"], ["-F", "nokiapcap"], ["-F", "nsecpcap"]])
def test_editcap_conversions(tmp_path: Path, name: str, args: list[str]) -> None:
    src = corpus_dir() / name
    if not src.is_file():
        pytest.skip(f"{src} absent")
    out = tmp_path / "converted"
    r = subprocess.run(["editcap", *args, str(src), str(out)], capture_output=True)
    if r.returncode != 0:  # e.g. nokiapcap cannot hold a pcapng's several link types
        pytest.skip(r.stderr.decode().strip())
    assert compare(read_captures([out]).table, _tshark(out)) == []
