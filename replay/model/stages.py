"""The kernel receive path as a table: one row per stage, top to bottom like the call chain.

The engine, the Parquet schemas and the reports are all generated from these rows, so adding a
stage is one row here plus its cost in the profile. Stage ids are a contract (../DESIGN.md,
packets.parquet); the symbol is what `perf report` shows for the stage's work (the driver stage's
symbol comes from the driver model, see drivers.py). Categories follow the Cai et al. (SIGCOMM 2021)
symbol mapping quoted in KERNEL.md §6.4.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Stage:
    id: str
    symbol: str  # perf's symbol for the work of this stage (the common case)
    category: str  # data_copy | netdev | tcp/ip | skb | mm | lock | sched | etc | app
    source: str  # where the kernel does it (KERNEL.md §1)


STAGES: tuple[Stage, ...] = (
    # KERNEL.md §1 row 3: the driver walks completed descriptors and builds skbs
    Stage("driver", "{driver_clean}", "netdev", "driver ->poll(): RX clean + build_skb"),
    # §1 row 4, §4: napi_gro_receive -> dev_gro_receive -> inet_gro_receive -> tcp4_gro_receive
    Stage("gro", "dev_gro_receive", "netdev", "net/core/gro.c: dev_gro_receive"),
    # §1 row 6: softnet processed++, taps, protocol demux
    Stage("netif", "__netif_receive_skb_core", "netdev", "net/core/dev.c: __netif_receive_skb_core"),
    # §1 rows 5a/5b: RPS enqueue_to_backlog + process_backlog on the target CPU
    Stage("backlog", "process_backlog", "netdev", "net/core/dev.c: enqueue_to_backlog, process_backlog"),
    # §1 row 7: ip_rcv_core sanity checks + PREROUTING
    Stage("ip", "ip_rcv", "tcp/ip", "net/ipv4/ip_input.c: ip_rcv / ip_list_rcv"),
    # §1 row 8: early demux or FIB lookup
    Stage("route", "ip_route_input_noref", "tcp/ip", "net/ipv4/ip_input.c: ip_rcv_finish_core"),
    # §1 row 9: defrag, LOCAL_IN, protocol dispatch
    Stage("local", "ip_local_deliver", "tcp/ip", "net/ipv4/ip_input.c: ip_local_deliver"),
    # §1 rows 10u/10t: socket lookup and enqueue
    Stage("l4", "{l4}", "tcp/ip", "net/ipv4/udp.c: __udp4_lib_rcv; net/ipv4/tcp_ipv4.c: tcp_v4_rcv"),
    # §1 rows 12u/12t: recvmsg copy to user space; wait_copy is the time in the socket queue
    Stage("copy", "skb_copy_datagram_iter", "data_copy", "net/core/datagram.c: skb_copy_datagram_iter"),
    # the application's own work per message
    Stage("app", "[app]", "app", "the [[app]] work-ns per message"),
)

STAGE_IDS: tuple[str, ...] = tuple(s.id for s in STAGES)
STAGE_INDEX: dict[str, int] = {s: i for i, s in enumerate(STAGE_IDS)}
N_STAGES = len(STAGES)

# Outcomes (contract, packets.parquet `outcome`).
OUTCOMES: tuple[str, ...] = ("delivered", "dropped", "consumed", "ignored")
DELIVERED, DROPPED, CONSUMED, IGNORED = range(4)
