"""Sent capture + receiver records + counters + perf samples → packets, cpu and summary tables.

The real run directory has the model's shape (RUNDIR.md), filled with what was measured:

packets.parquet, one row per packet actually sent (from the capture on the sending veth end):
  t_wire   the send time (the AF_PACKET tap in dev_queue_xmit_nit, just before veth_xmit),
           ns from the first packet sent;
  delivered rows: wait_driver = kernel arrival stamp (SO_TIMESTAMPNS, netif_rx on the peer) -
           t_wire; wait_copy = read time (after recvmsg/recvmmsg returned) - arrival stamp, which
           holds the socket-queue wait and the syscall; wait_app = start of the app's work on
           this message - read (the earlier messages of its recvmmsg batch); cpu_app = end of
           that work - its start; t_done = end of the work. Stages not measured separately
           are null, so t_done - t_wire is the sum of the non-null wait_*/cpu_* as the
           contract requires;
  dropped rows: t_done = t_wire (a veth drop happens synchronously in the sender's call, within
           microseconds; the exact time is not observable without tracing), drop_stage/reason as
           far as the counters decide them (see drop_reasons).
cpu.parquet: perf samples (cpu-clock, fixed period) aggregated per (cpu, 1 ms window, context,
  comm, dso, symbol, stage, category); ns = samples × period; frames = 0 (sampling does not count
  packets).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from replay.model.stages import STAGE_IDS
from replay.real.perfscript import Samples
from replay.store.schema import CPU_SCHEMA, PACKETS_SCHEMA

WINDOW_NS = 1_000_000  # cpu.parquet span: samples grouped per CPU per millisecond


def match_messages(
    sent_tag: np.ndarray, sent_t: np.ndarray, recv_tag: np.ndarray, recv_t: np.ndarray
) -> np.ndarray:
    """For each received message, the index of the sent packet it is (or -1).

    A message is the latest packet sent with its tag at or before its kernel arrival stamp: the
    tap that captured the send runs before veth_xmit on the same CPU (KERNEL.md §3c), so the
    stamp always follows its own send; loops resend a tag only after the whole file.
    """
    out = np.full(len(recv_tag), -1, np.int64)
    ok_s = sent_tag >= 0
    if not ok_s.any() or len(recv_tag) == 0:
        return out
    t0 = int(min(sent_t.min(), recv_t[recv_t > 0].min() if (recv_t > 0).any() else sent_t.min()))
    shift = np.int64(1) << np.int64(37)  # 137 s of relative time per tag block
    idx_s = np.nonzero(ok_s)[0]
    key_s = sent_tag[idx_s].astype(np.int64) * shift + (sent_t[idx_s] - t0)
    order = np.argsort(key_s, kind="stable")
    key_sorted = key_s[order]
    ok_r = (recv_tag >= 0) & (recv_t > 0)
    key_r = recv_tag[ok_r].astype(np.int64) * shift + (recv_t[ok_r] - t0)
    pos = np.searchsorted(key_sorted, key_r, side="right") - 1
    good = pos >= 0
    cand = np.where(good, idx_s[order[np.maximum(pos, 0)]], -1)
    good &= sent_tag[np.maximum(cand, 0)] == recv_tag[ok_r]
    out[np.nonzero(ok_r)[0]] = np.where(good, cand, -1)
    # a sent packet read twice cannot happen; keep the first claim if it ever does
    seen: set[int] = set()
    for i in np.nonzero(out >= 0)[0]:
        if int(out[i]) in seen:
            out[i] = -1
        seen.add(int(out[i]))
    return out


def drop_reasons(counters: dict[str, Any]) -> list[str]:
    """Drop reasons the counters show for UDP to a bound port (KERNEL.md §1, §7)."""
    udp = counters["snmp"]["Udp"]
    reasons = []
    if udp.get("RcvbufErrors", 0) > 0:
        reasons.append("SOCKET_RCVBUFF")
    if sum(r["dropped"] for r in counters["softnet_stat"]) > 0:
        reasons.append("CPU_BACKLOG")
    if udp.get("InCsumErrors", counters.get("snmp_all", {}).get("Udp", {}).get("InCsumErrors", 0)):
        reasons.append("UDP_CSUM")
    return reasons


def packets_table(
    *,
    sent_t: np.ndarray,  # int64 realtime ns, per packet sent
    sent_index: np.ndarray,  # int64: index in the rewritten file
    frame: np.ndarray,  # uint64 per rewritten packet
    proto: np.ndarray,
    sport: np.ndarray,
    dport: np.ndarray,
    frag: np.ndarray,  # per rewritten packet: 0 none, 1 first fragment, 2 later fragment
    n_rewritten: int,
    bound_ports: dict[int, int],  # UDP port -> app index
    match: np.ndarray,  # per received message: sent row or -1
    recv_app: np.ndarray,
    recv_tk: np.ndarray,
    recv_tr: np.ndarray,
    recv_ts: np.ndarray,
    recv_td: np.ndarray,
    rx_cpu: int,
    reasons: list[str],
    t0: int,
) -> pa.Table:
    n = len(sent_t)
    ri = sent_index
    pr, sp, dp = proto[ri], sport[ri], dport[ri]
    # dense flow ids over (proto, sport, dport): every source is the host end's address
    key = (pr.astype(np.int64) << 40) | ((sp.astype(np.int64) & 0xFFFFF) << 20) \
        | (dp.astype(np.int64) & 0xFFFFF)
    _, flow = np.unique(key, return_inverse=True)
    cols: dict[str, Any] = {
        "frame": frame[ri],
        "flow": flow.astype(np.uint32),
        "queue": np.zeros(n, np.uint16),
        "cpu": np.full(n, rx_cpu, np.uint16),
        "loop": (np.arange(n) // max(n_rewritten, 1)).astype(np.uint32),
        "pkt": np.arange(1, n + 1, dtype=np.uint64),
    }
    t_wire = sent_t - t0
    delivered = np.zeros(n, bool)
    app = np.full(n, -1, np.int64)
    t_done = t_wire.copy()
    wait_driver = np.full(n, -1, np.int64)
    wait_copy = np.full(n, -1, np.int64)
    cpu_app = np.full(n, -1, np.int64)
    wait_app = np.full(n, -1, np.int64)
    m = match >= 0
    rows = match[m]
    delivered[rows] = True
    app[rows] = recv_app[m]
    tk = np.where(recv_tk[m] > 0, recv_tk[m], recv_tr[m])
    wait_driver[rows] = np.maximum(tk - sent_t[rows], 0)
    wait_copy[rows] = recv_tr[m] - sent_t[rows] - wait_driver[rows]
    wait_app[rows] = recv_ts[m] - recv_tr[m]
    cpu_app[rows] = recv_td[m] - recv_ts[m]
    t_done[rows] = recv_td[m] - t0

    udp_bound = (pr == 17) & np.isin(dp, np.fromiter(bound_ports, np.int64, len(bound_ports)))
    outcome = np.where(delivered, "delivered", "dropped").astype(object)
    drop_stage = np.full(n, None, object)
    drop_reason = np.full(n, None, object)
    lost = ~delivered
    # UDP to a port nobody bound: NO_SOCKET (udp.c __udp4_lib_rcv); TCP has no connection on
    # the real kernel (a replayed segment meets no socket: NO_SOCKET + RST); ICMP is consumed
    no_sock = lost & (((pr == 17) & ~udp_bound) | (pr == 6)) & (frag[ri] == 0)
    drop_stage[no_sock] = "l4"
    drop_reason[no_sock] = "NO_SOCKET"
    icmp = lost & (pr == 1)
    outcome[icmp] = "consumed"
    drop_stage[icmp] = None
    other = lost & ~np.isin(pr, (1, 6, 17))
    drop_stage[other] = "local"
    drop_reason[other] = "IP_NOPROTO"
    # fragments: ip_defrag (ip_local_deliver) takes them; a reassembled datagram is matched to
    # its first fragment (which carries the tag), every other fragment is consumed there
    fr = frag[ri] > 0
    frag_lost = lost & fr
    outcome[frag_lost] = "consumed"
    drop_stage[frag_lost] = None
    drop_reason[frag_lost] = None
    bound_lost = lost & udp_bound & ~fr
    drop_stage[bound_lost] = "l4"
    if len(reasons) == 1:  # one reason counted: every such drop is it; more: left null
        drop_reason[bound_lost] = reasons[0]
        if reasons[0] == "CPU_BACKLOG":
            drop_stage[bound_lost] = "backlog"

    def opt(a: np.ndarray) -> pa.Array:
        return pa.array(a, pa.int64(), mask=a < 0)

    cols["outcome"] = pa.array(outcome.tolist()).dictionary_encode()
    cols["app"] = pa.array(app, pa.int64(), mask=app < 0).cast(pa.uint16())
    cols["skb"] = cols["frame"]
    cols["t_wire"] = t_wire
    cols["t_irq"] = pa.nulls(n, pa.int64())
    cols["t_poll"] = pa.nulls(n, pa.int64())
    cols["t_done"] = t_done
    for s in STAGE_IDS:
        w = {"driver": wait_driver, "copy": wait_copy, "app": wait_app}.get(s)
        c = cpu_app if s == "app" else None
        cols[f"wait_{s}"] = opt(w) if w is not None else pa.nulls(n, pa.int64())
        cols[f"cpu_{s}"] = opt(c) if c is not None else pa.nulls(n, pa.int64())
    cols["drop_stage"] = pa.array(drop_stage.tolist(), pa.string()).dictionary_encode()
    cols["drop_reason"] = pa.array(drop_reason.tolist(), pa.string()).dictionary_encode()
    return pa.table(cols).cast(PACKETS_SCHEMA)


def keep_samples(s: Samples, pids: set[int], window: tuple[int, int] | None = None) -> np.ndarray:
    """Samples that belong to this run: the harness's processes or the receive path, never idle.

    `window` (perf-clock ns, inclusive) limits them to the traffic: the first packet sent to the
    last message handled, leaving out tcpreplay loading its file and the receivers' start/exit.
    """
    pid = np.asarray(s.pid)
    keep = np.isin(pid, np.fromiter(pids, np.int64, len(pids))) | np.asarray(s.rx_path, bool)
    keep &= ~np.asarray(s.idle, bool)
    if window is not None:
        t = np.asarray(s.time_ns, np.int64)
        keep &= (t >= window[0]) & (t <= window[1])
    return keep


def cpu_table(s: Samples, keep: np.ndarray, t0_mono: int, receiver_pids: set[int]) -> pl.DataFrame:
    """Kept samples → cpu.parquet rows (one per cpu × ms window × symbol)."""
    if not keep.any():
        return pl.DataFrame(schema={f.name: pl.Int64 for f in CPU_SCHEMA})
    idx = np.nonzero(keep)[0]

    def strs(col: list[str | None]) -> pl.Series:
        return pl.Series([col[i] for i in idx], dtype=pl.String)

    df = pl.DataFrame({
        "cpu": np.asarray(s.cpu, np.int64)[idx],
        "t": np.asarray(s.time_ns, np.int64)[idx] - t0_mono,
        "pid": np.asarray(s.pid, np.int64)[idx],
        "context": strs(s.context), "comm": strs(s.comm), "dso": strs(s.dso),
        "symbol": strs(s.symbol), "stage": strs(s.stage), "category": strs(s.category),
        "ns": np.asarray(s.period, np.int64)[idx],
    })
    # user code is on the path only for the receiver ("app"); the sender's own code is not
    rp = list(receiver_pids)
    df = df.with_columns(
        pl.when((pl.col("stage") == "app") & ~pl.col("pid").is_in(rp)).then(None)
        .otherwise(pl.col("stage")).alias("stage"),
        (pl.col("t") // WINDOW_NS * WINDOW_NS).alias("start"),
    )
    g = (
        df.group_by(["cpu", "start", "context", "comm", "dso", "symbol", "stage", "category"])
        .agg(pl.col("ns").sum())
        .with_columns((pl.col("start") + WINDOW_NS).alias("end"), pl.lit(0).alias("frames"))
        .sort(["start", "cpu", "ns"], descending=[False, False, True])
    )
    return g.select([f.name for f in CPU_SCHEMA])


def cpu_arrow(df: pl.DataFrame) -> pa.Table:
    t = df.to_arrow()
    cols = []
    for f in CPU_SCHEMA:
        a = t.column(f.name)
        if pa.types.is_dictionary(f.type):
            a = a.cast(pa.string()).dictionary_encode()
        cols.append(a.cast(f.type))
    return pa.Table.from_arrays(cols, schema=CPU_SCHEMA)


def percentiles(v: np.ndarray) -> dict[str, int]:
    if len(v) == 0:
        return {"count": 0, "mean": 0, "p50": 0, "p90": 0, "p99": 0, "p999": 0, "max": 0}
    q = np.percentile(v, [50, 90, 99, 99.9], method="lower")
    return {"count": len(v), "mean": int(v.mean()), "p50": int(q[0]), "p90": int(q[1]),
            "p99": int(q[2]), "p999": int(q[3]), "max": int(v.max())}


def category_shares(cpu: pl.DataFrame) -> dict[str, float]:
    """Percent of receive-path CPU (rows with a stage) per Cai et al. category."""
    rx = cpu.filter(pl.col("stage").is_not_null())
    tot = rx["ns"].sum() if rx.height else 0
    if not tot:
        return {}
    g = rx.group_by("category").agg(pl.col("ns").sum()).sort("ns", descending=True)
    return {c: round(100.0 * n / tot, 2) for c, n in zip(g["category"], g["ns"], strict=True)}
