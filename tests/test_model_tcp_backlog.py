"""The TCP socket backlog → segments that arrive while the reader owns the socket.

tcp_recvmsg holds lock_sock over its copies; tcp_v4_rcv then takes tcp_add_backlog instead of
tcp_v4_do_rcv (net/ipv4/tcp_ipv4.c), bounded by sk_backlog.len + sk_rmem_alloc against a limit
that changed with the kernel, and release_sock -> __release_sock runs the queued segments'
tcp_v4_do_rcv in the reader's context (net/core/sock.c). Round-number costs
(tests/data/round-costs.toml) so every figure follows by hand.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from tests.test_model_independent import pk, profile_with, run, stream
from tests.test_model_independent2 import cpu_df, l4_end

SLOW = {"fixed.tcp_add_backlog": 50, "stage.tcp": 200}
READER = ['app[0].match="tcp dport 5000"', "app[0].cpu=1", "host.cpus=2", "nic.combined=1",
          "nic.gro=false"]  # fmt: skip


def _slow_copy(tmp_path: Path, per_byte: int = 100) -> str:
    # the copy costs 100 ns per byte by default: 144.8 us for a 1448-byte segment
    prof = profile_with(tmp_path, f"slowcopy{per_byte}", SLOW)
    Path(prof).write_text(Path(prof).read_text()
                          + f'[stage.copy]\nbase = 0\nper_byte = {per_byte}.0\nsource = "test"\n')
    return prof


def test_backlogged_segment_is_processed_at_release_sock_in_the_readers_context(
        tmp_path: Path) -> None:
    # Segment 1 at t=0 is copied on CPU 1 for 144.8 us; segment 2 at 50 us finds the socket
    # owned: the softirq on CPU 0 pays tcp_add_backlog (50 ns) instead of stage.tcp, and the
    # reader pays stage.tcp (200 ns, tcp_v4_do_rcv) right after segment 1's copy (no ACKs: no
    # window update in between), so segment 2's l4 stage ends 200 ns after that copy.
    rows = stream(2)
    for k, row in enumerate(rows):
        row["ts_ns"] = 50_000 * k
        row["tcp_flags"] = 0x18
    r = run(rows, *READER, "host.tcp-acks=false", profile=_slow_copy(tmp_path))
    df = pk(r).sort("frame")
    assert df["outcome"].to_list() == ["delivered", "delivered"]
    # segment 1: stage.tcp + the wake-up of the sleeping reader (fixed.wakeup 200); segment 2:
    # tcp_add_backlog in the softirq + tcp_v4_do_rcv at release_sock (the reader is running)
    assert df["cpu_l4"].to_list() == [400, 250]
    copy1_end = int(l4_end(df)[0] + df["wait_copy"][0] + df["cpu_copy"][0])
    # the copy + fixed.consume (100) less fixed.skb_free (40): skb_attempt_defer_free hands the
    # free to CPU 0, which built the skb
    assert int(df["cpu_copy"][0]) == 144_800 + 100 - 40
    assert int(l4_end(df)[1]) == copy1_end + 200
    cpu = cpu_df(r)
    bl = cpu.filter(pl.col("symbol") == "tcp_add_backlog")
    assert bl["ns"].sum() == 50 and set(bl["context"]) == {"softirq"} and set(bl["cpu"]) == {0}
    do = cpu.filter(pl.col("symbol") == "tcp_v4_do_rcv")
    assert do["ns"].sum() == 200 and set(do["context"]) == {"task"} and set(do["cpu"]) == {1}
    assert set(do["comm"]) == {"app0"}
    assert r.counters["snmp"]["TcpExt"]["TCPBacklogDrop"] == 0


@pytest.mark.parametrize(("kernel", "accepted"), [
    # sk_rcvbuf 4608; sk_sndbuf 87040: tcp_init_buffer_space -> tcp_sndbuf_expand raised
    # tcp_wmem[1] when the connection was established (2 x 10 x (roundup_pow_of_two(1460 + 320 +
    # 320) + 256)). Segment 1 (truesize 2304, ixgbe's half page) is being copied, so
    # sk_rmem_alloc = 2304 while the burst arrives. sk_add_backlog refuses when sk_backlog.len +
    # sk_rmem_alloc > limit, this skb not counted: the k-th backlogged skb (k from 0) needs
    # k * 2304 + 2304 <= limit, so floor(limit / 2304) are taken.
    ("4.9", 91648 // 2304),  # rcvbuf + sndbuf = 91648: 39
    ("5.15", 157184 // 2304),  # + 64 KiB (4.10, c9c3321257e1) = 157184: 68
    ("6.6", 113664 // 2304),  # rcvbuf + sndbuf / 2 + 64 KiB (6.1) = 113664: 49
    ("6.12", 118272 // 2304),  # 2 * rcvbuf + sndbuf / 2 + 64 KiB (6.10, ec00ed472bdb): 51
])  # fmt: skip
def test_backlog_limit_by_kernel(tmp_path: Path, kernel: str, accepted: int) -> None:
    # 80 segments in one burst at 50 us (on the wire until ~146 us), while segment 1 (t=0) is
    # being copied until ~436 us (300 ns per byte): the NAPI polls each into the backlog.
    rows = stream(81)
    for k, row in enumerate(rows):
        row["ts_ns"] = 0 if k == 0 else 50_000
        row["tcp_flags"] = 0x18
    r = run(rows, *READER, f'host.kernel="{kernel}"', "app[0].rcvbuf=4608",
            profile=_slow_copy(tmp_path, 300))  # fmt: skip
    df = pk(r).sort("frame")
    dropped = df.filter(pl.col("drop_reason") == "SOCKET_BACKLOG")
    assert dropped.height == 80 - accepted
    assert set(dropped["drop_stage"]) <= {"l4"}
    assert dropped["frame"].to_list() == list(range(2 + accepted, 82))
    assert r.counters["snmp"]["TcpExt"]["TCPBacklogDrop"] == 80 - accepted


def test_busy_polling_download_keeps_every_segment() -> None:
    # A segment whose stack step began while the reader owned the socket, and whose
    # tcp_v4_rcv came after the reader released it (busy polling makes the reader's copies and
    # the softirq interleave finely), is processed at once instead of waiting in a backlog no
    # release_sock would drain: the bundled download with net.core.busy_read = 50 once left a
    # segment without an outcome.
    from replay.capture import read_captures
    from replay.model.config import resolve_config
    from replay.model.costs import load_profile
    from replay.model.simulate import simulate
    from replay.runner import ReplayOptions

    repo = Path(__file__).resolve().parents[1]
    table = read_captures([str(repo / "traces" / "https-download.pcap")]).table
    cfg = resolve_config(None, ["net.core.busy_read=50"])
    r = simulate(table, cfg, load_profile("default"), ReplayOptions())
    df = pk(r)
    assert df["outcome"].null_count() == 0
    assert df.filter(pl.col("outcome") == "delivered").height == 808
