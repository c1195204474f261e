"""Arrow schemas of the run directory's Parquet files (contract, ../DESIGN.md "Run directory").

packets.parquet is generated from the stage table, so a new stage adds its two columns here
without a second edit.
"""

from __future__ import annotations

import pyarrow as pa

from replay.model.stages import STAGE_IDS

_dict = pa.dictionary(pa.int16(), pa.string())

PACKETS_SCHEMA = pa.schema(
    [
        pa.field("frame", pa.uint64(), nullable=False),
        pa.field("flow", pa.uint32(), nullable=False),
        pa.field("queue", pa.uint16()),
        pa.field("cpu", pa.uint16()),  # CPU that ran the stack for it (after RPS)
        pa.field("loop", pa.uint32(), nullable=False),
        pa.field("pkt", pa.uint64(), nullable=False),  # 1-based replayed packet number
        pa.field("outcome", _dict, nullable=False),
        pa.field("app", pa.uint16()),
        pa.field("skb", pa.uint64()),  # frame whose skb it travelled in after GRO
        pa.field("t_wire", pa.int64()),  # ns from replay start, last bit at the NIC
        pa.field("t_irq", pa.int64()),
        pa.field("t_poll", pa.int64()),
        pa.field("t_done", pa.int64()),
        *(
            f
            for s in STAGE_IDS
            for f in (pa.field(f"wait_{s}", pa.int64()), pa.field(f"cpu_{s}", pa.int64()))
        ),
        pa.field("drop_stage", _dict),
        pa.field("drop_reason", _dict),
    ]
)

CPU_SCHEMA = pa.schema(
    [
        pa.field("cpu", pa.uint16(), nullable=False),
        pa.field("start", pa.int64(), nullable=False),  # the span: one poll, IRQ, syscall or batch
        pa.field("end", pa.int64(), nullable=False),
        pa.field("context", _dict, nullable=False),  # hardirq | softirq | ksoftirqd | task
        pa.field("comm", _dict, nullable=False),  # perf's Command
        pa.field("dso", _dict, nullable=False),  # perf's Shared Object
        pa.field("symbol", _dict, nullable=False),
        pa.field("stage", _dict),  # the packet stage this CPU time belongs to; null for overheads
        pa.field("category", _dict, nullable=False),  # Cai et al. cost category
        pa.field("ns", pa.int64(), nullable=False),  # CPU time of this symbol inside the span
        pa.field("frames", pa.uint32(), nullable=False),
    ]
)

EVENTS_SCHEMA = pa.schema(
    [
        pa.field("t", pa.int64(), nullable=False),
        pa.field("end", pa.int64()),
        pa.field("cpu", pa.int16()),
        pa.field("queue", pa.int16()),
        pa.field("kind", _dict, nullable=False),
        pa.field("value", pa.int64()),
        pa.field("detail", _dict),
    ]
)

# events.kind values and what `value` / `detail` hold
EVENT_KINDS = {
    "irq": "hard IRQ raised for `queue` on `cpu`; value = ring occupancy at the time",
    "poll": "one napi_poll [t, end); value = packets done; detail = exit (complete|weight|budget|time)",
    "net_rx": "one net_rx_action run [t, end); value = polls; detail = softirq|ksoftirqd|bh_enable",
    "squeeze": "time_squeeze; detail = budget|time",
    "ksoftirqd_wake": "softirq work handed to ksoftirqd on `cpu`",
    "ring": "ring occupancy sample of `queue`: value = descriptors holding packets",
    "backlog": "input_pkt_queue length sample on `cpu`",
    "sock": "socket receive memory sample: value = rmem_alloc bytes; queue = app index",
    "drop": "a drop; value = frame; detail = reason",
    "rcvbuf": "a TCP connection's sk_rcvbuf changed: value = the new size; queue = app index; "
              "detail = the kernel function (tcp_rcv_space_adjust, tcp_data_queue_ofo, "
              "tcp_fixup_rcvbuf, tcp_clamp_window)",
}
