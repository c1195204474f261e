"""The harness on this machine's kernel: replay into a veth pair and check the counters agree.

Runs only where root, network namespaces and tcpreplay are available; elsewhere each test skips
saying which is missing. Each run is a fraction of a second of traffic.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import dpkt
import polars as pl
import pytest
from typer.testing import CliRunner

from replay.cli import app
from replay.real import harness
from replay.real.harness import RealOptions, run_real
from replay.real.netns import RealError, netns_available
from replay.runner import ReplayOptions
from replay.store.rundir import read_run

pytestmark = pytest.mark.root


def _why_not() -> str | None:
    if shutil.which("tcpreplay") is None:
        return "tcpreplay is not installed (apt-get install tcpreplay)"
    return netns_available()


_REASON = _why_not()
needs_netns = pytest.mark.skipif(_REASON is not None,
                                 reason=f"real-kernel harness unavailable: {_REASON}")


def _flood(path: Path, n: int, payload: int = 64, dport: int = 27015) -> Path:
    with open(path, "wb") as f:
        w = dpkt.pcap.Writer(f, nano=True)
        for i in range(n):
            u = dpkt.udp.UDP(sport=40000, dport=dport, data=bytes(payload))
            u.ulen = 8 + payload
            ip = dpkt.ip.IP(src=socket.inet_aton("10.0.0.1"), dst=socket.inet_aton("10.0.0.2"),
                            p=17, data=u, id=i & 0xFFFF, ttl=64)
            ip.len = 20 + len(u)
            eth = dpkt.ethernet.Ethernet(src=b"\x02" * 6, dst=b"\x04" * 6, data=ip)
            w.writepkt(bytes(eth), ts=i * 1e-5)
    return path


def _namespaces() -> str:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout


@needs_netns
def test_real_flood_counts_agree_and_the_namespace_is_gone(tmp_path: Path) -> None:
    trace = _flood(tmp_path / "flood.pcap", 3000)
    cfg = tmp_path / "c.toml"
    # a small socket buffer and slow reader so some datagrams meet a full buffer
    cfg.write_text('[[app]]\nmatch = "udp dport 27015"\ncpu = 1\nrcvbuf = 16384\n'
                   'work-ns = 20000\nbatch = 4\n')
    res = run_real([trace], tmp_path / "run", cfg, [], ReplayOptions(topspeed=True),
                   RealOptions(sender_cpu=0, max_seconds=10))
    run = read_run(res.run_dir)
    c = run.counters
    udp = c["snmp"]["Udp"]
    s = run.meta["summary"]
    assert run.meta["real"]["sender"]["packets"] == 3000
    assert s["packets"] == 3000
    # every datagram is read or dropped at the socket (UDP accounting, KERNEL.md §1 row 10u)
    assert udp["InDatagrams"] + udp["RcvbufErrors"] == 3000
    assert s["outcomes"]["delivered"] == udp["InDatagrams"]
    assert s["outcomes"]["dropped"] == udp["RcvbufErrors"] > 0
    assert c["snmp"]["Ip"]["InReceives"] == 3000
    assert c["ethtool"]["rx_packets"] == 3000
    # veth: NET_RX runs on the sending CPU (KERNEL.md §3c); host-wide, so at least
    assert c["softnet_stat"][0]["processed"] >= 3000
    assert c["softirqs"]["NET_RX"][0] >= 3000
    assert run.meta["real"]["apps"][0]["sk_rcvbuf"] == [16384]
    assert run.meta["real"]["hz"] in (100, 250, 300, 1000)
    pk = run.table("packets")
    dl = pk.filter(pl.col("outcome") == "delivered")
    assert dl.height == udp["InDatagrams"]
    assert (dl["cpu_app"] >= 20000).all()  # the configured work per message
    parts = dl["wait_driver"] + dl["wait_copy"] + dl["wait_app"] + dl["cpu_app"]
    assert (dl["t_done"] - dl["t_wire"] == parts).all()
    assert "sr" + str(os.getpid() % 10**7) not in _namespaces()
    if shutil.which("perf"):
        cpu = run.table("cpu")
        rx = cpu.filter(pl.col("comm") == "tcpreplay")["symbol"].cast(pl.String).to_list()
        assert {"__netif_receive_skb_core", "ip_rcv", "__udp4_lib_rcv", "process_backlog",
                "net_rx_action", "ip_rcv_core", "__netif_receive_skb_one_core",
                "__udp_enqueue_schedule_skb", "ip_route_input_slow",
                "enqueue_to_backlog"} & set(rx)


@needs_netns
def test_a_failure_inside_the_namespace_still_removes_it(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(_pair: object) -> None:
        raise RealError("injected failure after the namespace exists")

    monkeypatch.setattr(harness, "_write_counters", boom)
    trace = _flood(tmp_path / "f.pcap", 10)
    with pytest.raises(RealError, match="injected"):
        run_real([trace], tmp_path / "run", None, [], ReplayOptions(),
                 RealOptions(perf=False, max_seconds=5))
    tag = "sr" + str(os.getpid() % 10**7)
    assert tag not in _namespaces()
    assert subprocess.run(["ip", "link", "show", tag + "h"], capture_output=True).returncode != 0
    assert not (tmp_path / "run").exists()


def test_without_root_the_cli_says_so_in_one_line(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    trace = _flood(tmp_path / "f.pcap", 1)
    r = CliRunner().invoke(app, ["real", str(trace), "-o", str(tmp_path / "run")])
    assert r.exit_code == 1
    assert r.output.strip().splitlines() == [
        "replay: replay real needs root to create a network namespace and a veth pair; "
        "run it as root (sudo replay real ...)"]


@needs_netns
def test_a_pause_in_the_trace_does_not_stop_the_receiver(tmp_path: Path) -> None:
    # two bursts 0.8 s apart in capture time, replayed at the capture's pace (-x 1): the
    # receivers must outlast the pause and read both
    path = tmp_path / "gap.pcap"
    _flood(path, 100)
    with open(path, "rb") as f:
        pkts = list(dpkt.pcap.Reader(f))
    with open(path, "wb") as f:
        w = dpkt.pcap.Writer(f, nano=True)
        for i, (_ts, b) in enumerate(pkts):
            w.writepkt(b, ts=(0.0 if i < 50 else 0.8) + i * 1e-5)
    res = run_real([path], tmp_path / "run", None, [], ReplayOptions(multiplier=1.0),
                   RealOptions(perf=False, max_seconds=5))
    s = read_run(res.run_dir).meta["summary"]
    assert s["outcomes"]["delivered"] == 100
    assert s["duration_ns"] > 790_000_000
