"""Hand-made tables → small run directories whose report numbers can be computed by hand.

`small_run` is the canonical fixture of the report tests (its numbers are written out below so a
reader can check every percentage and percentile in tests/golden/). `synthetic_run` builds a large
random run of the same shape for the scale checks (1M frames in a few seconds, all columnar).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from replay.capture.schema import FRAMES_SCHEMA
from replay.model.stages import STAGE_IDS
from replay.store.rundir import write_run
from replay.store.schema import CPU_SCHEMA, EVENTS_SCHEMA, PACKETS_SCHEMA


def _ip16(a: str) -> bytes:
    ip = ipaddress.ip_address(a)
    if ip.version == 4:
        return b"\x00" * 10 + b"\xff\xff" + ip.packed
    return ip.packed


def _table(schema: pa.Schema, rows: list[dict[str, Any]]) -> pa.Table:
    cols = {f.name: [r.get(f.name) for r in rows] for f in schema}
    arrays = []
    for f in schema:
        vals = cols[f.name]
        if pa.types.is_dictionary(f.type):
            arrays.append(pa.array(vals, pa.string()).dictionary_encode().cast(f.type))
        else:
            arrays.append(pa.array(vals, f.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def frames_rows(specs: list[tuple[str, str, int, int, int, int]]) -> list[dict[str, Any]]:
    """(src, dst, proto, sport, dport, flow) per frame → frames rows (ts 1 µs apart)."""
    rows = []
    for i, (src, dst, proto, sport, dport, flow) in enumerate(specs):
        rows.append(
            {
                "frame": i + 1, "ts_ns": 1_700_000_000_000_000_000 + i * 1000,
                "wire_len": 128, "cap_len": 128, "iface": 0, "linktype": 1,
                "ip_version": 4, "src": _ip16(src), "dst": _ip16(dst), "proto": proto,
                "sport": sport, "dport": dport, "payload_len": 86, "frag": 0, "flow": flow,
            }
        )
    return rows


def packet_row(frame: int, flow: int, outcome: str, **kw: Any) -> dict[str, Any]:
    """A packets.parquet row; stage values as wait=dict(stage=ns), cpu_ns=dict(stage=ns)."""
    wait: dict[str, int] = kw.pop("wait", {})
    cpu: dict[str, int] = kw.pop("cpu_ns", {})
    row: dict[str, Any] = {"frame": frame, "flow": flow, "loop": 0, "pkt": frame,
                           "outcome": outcome}
    row.update(kw)
    for s in STAGE_IDS:
        row[f"wait_{s}"] = wait.get(s)
        row[f"cpu_{s}"] = cpu.get(s)
    if row.get("t_wire") is not None and "t_done" not in kw:
        row["t_done"] = row["t_wire"] + sum(wait.values()) + sum(cpu.values())
    return row


def counters_block(ncpu: int = 2) -> dict[str, Any]:
    """The counters the small run's packets imply (DESIGN.md "Run directory", KERNEL.md §7)."""
    return {
        "softnet_stat": [
            {"cpu": 0, "processed": 3, "dropped": 0, "time_squeeze": 1, "received_rps": 0,
             "flow_limit_count": 0},
            {"cpu": 1, "processed": 0, "dropped": 0, "time_squeeze": 0, "received_rps": 0,
             "flow_limit_count": 0},
        ][:ncpu],
        "softirqs": {"NET_RX": [2, 0]},
        "interrupts": {"eth0-TxRx-0": [2, 0], "eth0-TxRx-1": [0, 0]},
        "ethtool": {"rx_packets": 3, "rx_bytes": 384, "rx_missed_errors": 1,
                    "rx_queue_0_packets": 3, "rx_queue_0_bytes": 384,
                    "rx_queue_1_packets": 0, "rx_queue_1_bytes": 0},
        "napi": [
            {"queue": 0, "cpu": 0, "irqs": 2, "polls": 2, "arms": 2, "packets": 3,
             "budget_exhausted": 0},
            {"queue": 1, "cpu": 1, "irqs": 0, "polls": 0, "arms": 0, "packets": 0,
             "budget_exhausted": 0},
        ],
        "snmp": {"Ip": {"InReceives": 3, "InDelivers": 3, "ReasmReqds": 0, "ReasmOKs": 0,
                        "ReasmFails": 0},
                 "Udp": {"InDatagrams": 2, "NoPorts": 0, "InErrors": 1, "RcvbufErrors": 1},
                 "Tcp": {"InSegs": 0, "OutSegs": 0},
                 "TcpExt": {"TCPBacklogDrop": 0, "TCPRcvQDrop": 0}},
        "snmp6": {"Udp6InDatagrams": 0, "Udp6RcvbufErrors": 0, "Ip6ReasmOKs": 0},
    }


def run_json(name: str, frames: int, packets: int, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "tool": {"name": "stack-replay", "version": "0.1.0"},
        "command": f"replay run traces/{name}.pcap -o runs/{name}",
        "inputs": [{"path": f"traces/{name}.pcap", "sha256": "0" * 64, "frames": frames,
                    "linktypes": [1], "format": "pcap"}],
        "config": {"host": {"cpus": 2, "kernel": "6.12", "hz": 250},
                   "nic": {"driver": "ixgbe", "combined": 2, "rx": 512, "rx-usecs": 50},
                   "sysctl": {"net.core.netdev_budget": 300}},
        "costs": {"name": "default"},
        "replay": {"multiplier": 1.0},
        "seed": 1,
        "host": {"addresses": ["10.0.0.2"], "inferred": False, "note": ""},
        "summary": {},
        "counters": counters_block(),
    }
    body.update(over)
    return body


# The small run, in numbers (ns). Two CPUs; queue 0 -> CPU 0 runs the stack; the app "game"
# reads on CPU 1.
#   p1 delivered  t_wire 1000   wait driver 2000, copy 4000            cpu total 6600  e2e 12600
#   p2 delivered  t_wire 2000   wait driver 1200, gro 300, netif 100,
#                               copy 9000, app 500                     cpu total 6700  e2e 17800
#   p3 dropped at l4 (SOCKET_RCVBUFF)  t_wire 3000  wait driver 800    cpu total 5200  e2e 6000
#   p4 dropped at the ring (driver, rx_missed_errors)  t_wire 3500 = t_done
#   p5 ignored (not for this host)
# cpu.parquet sums to 20000 ns, so each 1000 ns is 5.00% of Overhead. Spans: the IRQ [1500, 2000)
# and one net_rx_action [2000, 17500) on CPU 0 (15500 ns of symbols), the app's recvmsg + work
# [17500, 21500) on CPU 1 (4000 ns). The model's timeline is coarser than these numbers imply;
# the report never cross-checks spans against packet times.
SMALL_CPU = {  # stage -> per-packet cpu ns of p1, p2, p3
    "driver": (1500, 1500, 2000),
    "gro": (600, 600, 800),
    "netif": (1000, 1000, 1000),
    "ip": (500, 500, 500),
    "route": (100, 200, 200),
    "local": (200, 200, 100),
    "l4": (700, 700, 600),
    "copy": (500, 500, None),
    "app": (1500, 1500, None),
}
SMALL_SYMBOL = {"driver": "ixgbe_clean_rx_irq", "gro": "dev_gro_receive",
                "netif": "__netif_receive_skb_core", "ip": "ip_rcv",
                "route": "ip_route_input_noref", "local": "ip_local_deliver", "l4": "udp_rcv",
                "copy": "skb_copy_datagram_iter", "app": "app_work"}


def small_tables(app_name: str = "game") -> dict[str, pa.Table]:
    def cpu_of(i: int) -> dict[str, int]:
        return {s: v[i] for s, v in SMALL_CPU.items() if v[i] is not None}

    common = {"queue": 0, "cpu": 0, "t_irq": 1500, "t_poll": 2000}
    packets = [
        packet_row(1, 0, "delivered", app=0, skb=1, t_wire=1000, **common,
                   wait={"driver": 2000, "gro": 0, "netif": 0, "ip": 0, "route": 0, "local": 0,
                         "l4": 0, "copy": 4000, "app": 0}, cpu_ns=cpu_of(0)),
        packet_row(2, 0, "delivered", app=0, skb=1, t_wire=2000, **common,
                   wait={"driver": 1200, "gro": 300, "netif": 100, "ip": 0, "route": 0,
                         "local": 0, "l4": 0, "copy": 9000, "app": 500}, cpu_ns=cpu_of(1)),
        packet_row(3, 1, "dropped", skb=3, t_wire=3000, **common,
                   wait={"driver": 800, "gro": 0, "netif": 0, "ip": 0, "route": 0, "local": 0,
                         "l4": 0}, cpu_ns=cpu_of(2), drop_stage="l4", drop_reason="SOCKET_RCVBUFF"),
        packet_row(4, 1, "dropped", queue=0, cpu=0, t_wire=3500, t_done=3500,
                   drop_stage="driver", drop_reason="rx_missed_errors"),
        packet_row(5, 2, "ignored"),
    ]
    k = "[kernel.kallsyms]"
    cpu_rows = []
    for stage, vals in SMALL_CPU.items():
        ns = sum(v for v in vals if v is not None)
        n = sum(1 for v in vals if v is not None)
        if stage in ("copy", "app"):
            cpu_rows.append({"cpu": 1, "start": 17500, "end": 21500, "context": "task",
                             "comm": app_name, "dso": app_name if stage == "app" else k,
                             "symbol": SMALL_SYMBOL[stage], "stage": stage,
                             "category": "app" if stage == "app" else "data_copy",
                             "ns": ns, "frames": n})
        else:
            cpu_rows.append({"cpu": 0, "start": 2000, "end": 17500, "context": "softirq",
                             "comm": "swapper/0", "dso": k, "symbol": SMALL_SYMBOL[stage],
                             "stage": stage, "category": "netdev", "ns": ns, "frames": n})
    cpu_rows.append({"cpu": 0, "start": 2000, "end": 17500, "context": "softirq",
                     "comm": "swapper/0", "dso": k, "symbol": "net_rx_action", "stage": None,
                     "category": "netdev", "ns": 1000, "frames": 0})
    cpu_rows.append({"cpu": 0, "start": 1500, "end": 2000, "context": "hardirq",
                     "comm": "swapper/0", "dso": k, "symbol": "ixgbe_msix_clean_rings",
                     "stage": None, "category": "etc", "ns": 500, "frames": 0})
    events = [
        {"t": 1500, "end": 2000, "cpu": 0, "queue": 0, "kind": "irq", "value": 1},
        {"t": 2000, "end": 17500, "cpu": 0, "queue": None, "kind": "net_rx", "value": 1,
         "detail": "softirq"},
        {"t": 2000, "end": 17500, "cpu": 0, "queue": 0, "kind": "poll", "value": 3,
         "detail": "complete"},
        {"t": 3200, "end": 3300, "cpu": 0, "queue": 0, "kind": "irq", "value": 2},
        {"t": 17500, "end": 17600, "cpu": 0, "queue": None, "kind": "net_rx", "value": 0,
         "detail": "softirq"},
        {"t": 8000, "cpu": 0, "kind": "squeeze", "detail": "budget"},
        {"t": 1000, "cpu": 0, "queue": 0, "kind": "ring", "value": 1},
        {"t": 3500, "cpu": 0, "queue": 0, "kind": "ring", "value": 512},
        {"t": 3500, "cpu": 0, "queue": 0, "kind": "drop", "value": 4,
         "detail": "rx_missed_errors"},
        {"t": 9000, "cpu": 0, "queue": 0, "kind": "drop", "value": 3, "detail": "SOCKET_RCVBUFF"},
        {"t": 8500, "cpu": 1, "queue": 0, "kind": "sock", "value": 4096},
    ]
    frames = frames_rows([
        ("10.0.0.1", "10.0.0.2", 17, 40000, 27015, 0),
        ("10.0.0.1", "10.0.0.2", 17, 40000, 27015, 0),
        ("10.0.0.3", "10.0.0.2", 17, 40001, 27015, 1),
        ("10.0.0.3", "10.0.0.2", 17, 40001, 27015, 1),
        ("10.0.0.9", "10.0.0.7", 6, 443, 51000, 2),
    ])
    return {
        "frames": _table(FRAMES_SCHEMA, frames),
        "packets": _table(PACKETS_SCHEMA, packets),
        "cpu": _table(CPU_SCHEMA, cpu_rows),
        "events": _table(EVENTS_SCHEMA, events),
    }


def small_run(run_dir: Path, name: str = "small", app_name: str = "game", **over: Any) -> Path:
    """Write the small run (numbers above) into run_dir."""
    summary = {
        "frames": 5, "packets": 5, "received": 4,
        "outcomes": {"delivered": 2, "dropped": 2, "consumed": 0, "ignored": 1},
        "drops": [{"stage": "driver", "reason": "rx_missed_errors", "count": 1},
                  {"stage": "l4", "reason": "SOCKET_RCVBUFF", "count": 1}],
        "latency_ns": {"count": 2, "mean": 15200, "p50": 12600, "p90": 17800, "p99": 17800,
                       "p999": 17800, "max": 17800},
        "duration_ns": 21500,
        "cpu_busy_ns": [16000, 4000],
    }
    meta = run_json(name, 5, 5, summary=summary, **over)
    return write_run(run_dir, meta, small_tables(app_name))


def synthetic_run(run_dir: Path, n: int, ncpu: int = 4, seed: int = 7) -> Path:
    """A large random run of the same shape (columnar; for scale and timing checks only)."""
    rng = np.random.default_rng(seed)
    flows = rng.integers(0, 5000, n).astype(np.uint32)
    queue = (flows % ncpu).astype(np.uint16)
    t_wire = np.cumsum(rng.integers(200, 2000, n)).astype(np.int64)
    outcome = np.where(rng.random(n) < 0.02, "dropped", "delivered")
    dropped = outcome == "dropped"
    cols: dict[str, Any] = {
        "frame": np.arange(1, n + 1, dtype=np.uint64), "flow": flows, "queue": queue,
        "cpu": queue, "loop": np.zeros(n, np.uint32), "pkt": np.arange(1, n + 1, dtype=np.uint64),
        "outcome": outcome, "app": np.where(dropped, None, 0).tolist(),
        "skb": np.arange(1, n + 1, dtype=np.uint64), "t_wire": t_wire,
        "t_irq": t_wire, "t_poll": t_wire,
    }
    total = np.zeros(n, np.int64)
    for s in STAGE_IDS:
        w = rng.exponential(800, n).astype(np.int64)
        c = rng.integers(50, 1500, n).astype(np.int64)
        late = s in ("copy", "app")
        mask = (dropped & late) | (s == "backlog")
        total += np.where(mask, 0, w + c)
        cols[f"wait_{s}"] = pa.array(w, pa.int64(), mask=mask)
        cols[f"cpu_{s}"] = pa.array(c, pa.int64(), mask=mask)
    cols["t_done"] = t_wire + total
    cols["drop_stage"] = np.where(dropped, "l4", None).tolist()
    cols["drop_reason"] = np.where(dropped, "SOCKET_RCVBUFF", None).tolist()
    arrays = []
    for f in PACKETS_SCHEMA:
        v = cols[f.name]
        if pa.types.is_dictionary(f.type):
            arrays.append(pa.array(v, pa.string()).dictionary_encode().cast(f.type))
        elif isinstance(v, pa.Array):
            arrays.append(v)
        else:
            arrays.append(pa.array(v, f.type))
    packets = pa.Table.from_arrays(arrays, schema=PACKETS_SCHEMA)
    # cpu: one span per 32 packets per stage symbol, on the queue's CPU
    spans = n // 32 + 1
    k = "[kernel.kallsyms]"
    crow: dict[str, list[Any]] = {c: [] for c in CPU_SCHEMA.names}
    starts = np.sort(rng.integers(0, int(t_wire[-1]), spans)).astype(np.int64)
    span_cpu = rng.integers(0, ncpu, spans).astype(np.uint16)
    for s in STAGE_IDS:
        if s == "backlog":
            continue
        ctx = "task" if s in ("copy", "app") else "softirq"
        crow["cpu"].append(span_cpu)
        crow["start"].append(starts)
        crow["end"].append(starts + 20_000)
        crow["context"].append(np.full(spans, ctx))
        crow["comm"].append(np.array(["server" if ctx == "task" else f"swapper/{c}"
                                      for c in span_cpu]))
        crow["dso"].append(np.full(spans, "server" if s == "app" else k))
        crow["symbol"].append(np.full(spans, SMALL_SYMBOL.get(s, s)))
        crow["stage"].append(np.full(spans, s))
        crow["category"].append(np.full(spans, "netdev"))
        crow["ns"].append(rng.integers(1000, 40000, spans).astype(np.int64))
        crow["frames"].append(np.full(spans, 32, np.uint32))
    carr = []
    for f in CPU_SCHEMA:
        v = np.concatenate(crow[f.name])
        if pa.types.is_dictionary(f.type):
            carr.append(pa.array(v.astype(str)).dictionary_encode().cast(f.type))
        else:
            carr.append(pa.array(v, f.type))
    cpu = pa.Table.from_arrays(carr, schema=CPU_SCHEMA)
    m = n // 4
    et = np.sort(rng.integers(0, int(t_wire[-1]), m)).astype(np.int64)
    kinds = rng.choice(np.array(["irq", "poll", "ring", "sock", "backlog", "squeeze"]), m)
    ev = {
        "t": pa.array(et), "end": pa.array(et + 5000), "cpu": pa.array(rng.integers(0, ncpu, m),
                                                                     pa.int16()),
        "queue": pa.array(rng.integers(0, ncpu, m), pa.int16()),
        "kind": pa.array(kinds).dictionary_encode().cast(EVENTS_SCHEMA.field("kind").type),
        "value": pa.array(rng.integers(0, 64, m), pa.int64()),
        "detail": pa.array(np.where(kinds == "poll", "complete",
                                    np.where(kinds == "squeeze", "budget", None)).tolist(),
                           pa.string()).dictionary_encode().cast(
                                    EVENTS_SCHEMA.field("detail").type),
    }
    events = pa.Table.from_arrays([ev[c] for c in EVENTS_SCHEMA.names], schema=EVENTS_SCHEMA)
    summary = {"frames": n, "packets": n, "received": n,
               "outcomes": {"delivered": int((~dropped).sum()), "dropped": int(dropped.sum()),
                            "consumed": 0, "ignored": 0},
               "duration_ns": int(cols["t_done"].max()), "cpu_busy_ns": [0] * ncpu}
    meta = run_json("synthetic", n, n, summary=summary)
    return write_run(run_dir, meta, {"packets": packets, "cpu": cpu, "events": events})
