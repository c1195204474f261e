"""Frames + resolved config + cost profile + replay options → the run's tables and counters.

Prepares the engine's columns (wire times, RSS queue, packet kind, socket), runs the compiled
engine, and turns its arrays into the run directory's Arrow tables (store/schema.py) and the
kernel-style counters of run.json (DESIGN.md "Run directory").
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from replay.errors import RunError
from replay.model import engine
from replay.model import layout as L  # noqa: N812 (the engine's slot table, read as L.X)
from replay.model.classify import (
    _rows_equal,
    addr16,
    addr_text,
    columns,
    fragments,
    host_view,
    infer_apps,
    inner_view,
    ip_summed,
    kinds,
    sockets,
    tunnels,
)
from replay.model.config import idle_states, kernel_version, tcp_rmem
from replay.model.costs import cost_vectors
from replay.model.drivers import DRIVERS, MOD_ITR, MOD_MLX5_EQE, Driver, parse_speed, rss_table_size
from replay.model.groupby import group_rows
from replay.model.icmp import icmp_counters, icmp_peers, icmp_state
from replay.model.outcols import arrow, dict_array, packet_columns
from replay.model.rss import hash_frames, indirection_table, key_bytes, queue_of
from replay.model.stages import OUTCOMES, STAGE_IDS
from replay.model.state import gather_rows, init_outputs, new_state, set_buffers
from replay.model.wire import schedule
from replay.runner import ReplayOptions
from replay.store.schema import CPU_SCHEMA, EVENTS_SCHEMA, PACKETS_SCHEMA


@dataclass
class SimResult:
    packets: pa.Table
    cpu: pa.Table
    events: pa.Table
    counters: dict[str, Any]
    summary: dict[str, Any]
    host: dict[str, Any]
    apps: list[dict[str, Any]]
    notes: list[str]


def _truesize(driver: Driver, wire_len: np.ndarray, small_head: int = 640) -> np.ndarray:
    """skb->truesize of a received frame as the driver builds it (KERNEL.md §7 modelling tip).

    ixgbe/i40e build_skb around a half page: SKB_TRUESIZE(2048 - 320) = 2304. mlx5 builds a
    linear skb of MLX5_SKB_FRAG_SZ(headroom + len): SKB_DATA_ALIGN(headroom + len) + 256 + 320,
    where the headroom without an XDP program is mlx5e_get_linear_rq_headroom's NET_IP_ALIGN
    (0 on x86) + MLX5_RX_HEADROOM = NET_SKB_PAD = 64 (en/params.c, en.h); 256
    (XDP_PACKET_HEADROOM) only applies with XDP. A 60-byte frame: 128 + 256 + 320 = 704.
    """
    if driver.name == "mlx5":
        return ((64 + wire_len + 63) // 64 * 64 + 256 + 320).astype(np.int64)
    if driver.name == "veth":
        return _veth_truesize(wire_len, small_head)
    return np.full(len(wire_len), 2304, dtype=np.int64)


# kmalloc size classes (mm/slab_common.c kmalloc_info) up to KMALLOC_MAX_CACHE_SIZE (8 KiB)
_KMALLOC = np.array([8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192])


def _veth_truesize(wire_len: np.ndarray, small_head: int = 640) -> np.ndarray:
    """veth keeps the sender's skb (KERNEL.md §3c): here tcpreplay's AF_PACKET one.

    packet_snd allocates LL_RESERVED_SPACE(veth) = 16 B of headroom plus the frame, linear while
    it fits a page (af_packet.c packet_alloc_skb); __alloc_skb takes a head of
    SKB_DATA_ALIGN(size) + SKB_DATA_ALIGN(sizeof(skb_shared_info)) = + 320 from
    skb_small_head_cache when that is at most SKB_SMALL_HEAD_CACHE_SIZE (host.skb-small-head),
    else kmalloc_size_roundup; truesize = head + 256 (SKB_TRUESIZE). On this machine's kernel
    (576): 832 for 64-byte datagrams, 1280 for 256-byte ones, which is what its buffers hold
    (docs/real-kernel.md). Larger frames: a 16 + 14 byte head and the rest in page frags
    (alloc_skb_with_frags charges whole pages)."""
    ln = wire_len.astype(np.int64)
    lin = 16 + ln < 4096
    head = np.where(lin, (16 + ln + 63) // 64 * 64, 64) + 320
    small = head <= small_head
    cls = _KMALLOC[np.minimum(np.searchsorted(_KMALLOC, head), len(_KMALLOC) - 1)]
    head = np.where(small, small_head, cls)
    pages = np.where(lin, 0, (ln - 14 + 4095) // 4096 * 4096)
    return (head + 256 + pages).astype(np.int64)


def _usecs_to_jiffies(us: int, hz: int) -> int:
    return max(1, math.ceil(us * hz / 1_000_000))


def _msecs_to_jiffies(ms: int, hz: int) -> int:
    return max(1, math.ceil(ms * hz / 1000))


def napi_thread_names(driver: str, nq: int) -> list[str]:
    """The threaded-NAPI kthreads' comm, "napi/%s-%d" of dev->name and napi->napi_id
    (net/core/dev.c napi_kthread_create). napi_hash_add numbers NAPIs from MIN_NAPI_ID =
    NR_CPUS + 1 in the order they were added since boot: 8193 upward for the 8192-CPU configs of
    Debian, Ubuntu and Fedora, one NIC whose queues were added in order (ids on a real host depend
    on its boot history)."""
    dev = "veth1" if driver == "veth" else "eth0"
    return [f"napi/{dev}-{8193 + q}" for q in range(nq)]


def base_slice_ns(ncpus: int) -> int:
    """EEVDF sysctl_sched_base_slice 0.75 ms x (1 + ilog2(min(ncpus, 8))) (SCHED_TUNABLESCALING_LOG)."""
    return 750_000 * (1 + int(math.log2(min(ncpus, 8))))


def _skb_hash(nic_hash: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """skb->hash as RPS, RFS and the flow limit read it: the NIC's RSS hash (skb_set_hash);
    where the NIC gives none (non-IP; veth) skb_get_hash computes a software flow hash, never 0
    (__flow_hash_from_keys) — modelled as the flow's Toeplitz hash, or a golden-ratio hash of
    the flow id where that is 0 (deterministic; the kernel's siphash seed is random)."""
    h = nic_hash.astype(np.int64) & 0xFFFFFFFF
    zero = h == 0
    h[zero] = ((flow[zero].astype(np.int64) + 1) * 0x9E3779B1) & 0xFFFFFFFF
    h[h == 0] = 1
    return h


def _sender_cpu(cfg: dict[str, Any], apps: list[dict[str, Any]], ncpu: int) -> int:
    """nic.sender-cpu, or ("auto") the first CPU no [[app]] uses, as `replay real` picks it."""
    sc = cfg["nic"]["sender-cpu"]
    if sc != "auto":
        return int(sc)
    used = {int(a["cpu"]) for a in apps}
    free = [c for c in range(ncpu) if c not in used]
    return free[0] if free else 0


def _pow2(n: int) -> int:
    return 1 << max(0, (int(n) - 1).bit_length())


def _backlog_arrays(cfg: dict[str, Any], P: np.ndarray, nq: int, ncpu: int, n: int,
                    kv: tuple[int, int]) -> dict[str, np.ndarray]:
    """The RPS/RFS tables and per-CPU backlog arrays, and their engine parameters.

    rps_cpus per rx queue (one entry for all); rps_flow_cnt and rps_sock_flow_entries rounded
    up to a power of two as the kernel stores them (net-sysfs.c store_rps_dev_flow_table_cnt,
    sysctl_net_core.c rps_sock_flow_sysctl); rps_cpu_mask = roundup_pow_of_two(nr_cpu_ids) - 1.
    """
    from replay.model.config import parse_cpu_list

    sy, sf = cfg["sysctl"], cfg["sysfs"]
    specs = list(sf["rps_cpus"])
    rmap = np.zeros((nq, 1 + ncpu), np.int64)
    for q in range(nq if specs else 0):
        cpus = parse_cpu_list(specs[q if len(specs) > 1 else 0], ncpu, f"sysfs.rps_cpus[{q}]")
        rmap[q, 0] = len(cpus)
        rmap[q, 1 : 1 + len(cpus)] = cpus
    ents = int(sy["net.core.rps_sock_flow_entries"])
    cnt = int(sf["rps_flow_cnt"])
    rsock = np.full(_pow2(ents) if ents else 1, RPS_NO_CPU, np.int64)
    rflow = np.zeros((nq, _pow2(cnt) if cnt else 1, 2), np.int64)
    rflow[:, :, 0] = RPS_NO_CPU
    P[L.P_RFS_MASK] = _pow2(ents) - 1 if ents else -1
    P[L.P_RFLOW_MASK] = _pow2(cnt) - 1 if cnt else -1
    P[L.P_RPS_CPU_MASK] = _pow2(ncpu) - 1
    # static_branch rps_needed: on once any rx queue has a map or a flow table
    P[L.P_RPS] = 1 if (rmap[:, 0].any() or cnt > 0) else 0
    maxb = int(sy["net.core.netdev_max_backlog"])
    P[L.P_MAXBL] = maxb
    P[L.P_BL_WEIGHT] = int(sy["net.core.dev_weight"])  # dev_rx_weight = dev_weight * rx_bias (1)
    tlen = int(sy["net.core.flow_limit_table_len"])
    log = tlen.bit_length() - 1  # fl->log_buckets = ilog2(netdev_flow_limit_table_len)
    P[L.P_FL_LOG] = log
    # [UNSURE: the release] Dumazet's "net: use hash_32() in skb_flow_limit()" (2024) replaced
    # hash & (num_buckets - 1); taken as 6.10
    P[L.P_FL_HASH32] = 1 if kv >= (6, 10) else 0
    fl_cpus = parse_cpu_list(sy["net.core.flow_limit_cpu_bitmap"], ncpu,
                             "net.core.flow_limit_cpu_bitmap")
    flh = np.zeros((ncpu, 1 + 128 + (1 << log) if fl_cpus else 1), np.int64)
    for c in fl_cpus:
        flh[c, 0] = 1  # this CPU has a flow-limit table (flow_limit_cpu_sysctl)
    # input_pkt_queue holds at most max_backlog + 1 (the drop test is qlen > max_backlog), and
    # process_queue what one splice moved: never more than the packets replayed
    P[L.P_BQCAP] = cap = max(2, min(2 * (maxb + 1) + 2, n + 2))
    bq = np.zeros((ncpu, cap), np.int64)
    return {"bq": bq, "flh": flh, "rmap": rmap, "rsock": rsock, "rflow": rflow}


RPS_NO_CPU = 0xFFFF  # include/net/rps.h


@dataclass
class _Prepared:
    """What the replay keeps of the preparation: the engine's arrays and the per-packet columns
    the tables and counters read. The frame columns and the preparation's temporaries (~400 B per
    frame) are gone once `_prepare` returns, so the engine's per-packet arrays allocated after it
    reuse their memory (first-touched memory is what a large run pays for most)."""

    arrays: dict[str, Any]
    n: int  # received packets
    t_first: int  # when the first received packet is visible to the NIC
    ridx: np.ndarray  # frame index of each received packet, in arrival order
    fidx: np.ndarray  # frame index of each replayed packet
    loop: np.ndarray
    t_wire_all: np.ndarray  # -1 for packets the host does not receive
    rxmask: np.ndarray
    kind0: np.ndarray  # per received packet: its kind before decapsulation (int8)
    v6: np.ndarray  # per received packet: IPv6
    tcp_rst_ok: np.ndarray  # per received packet: TCP without RST (a NO_SOCKET one is reset)
    flow: np.ndarray  # per frame: flow id (uint32)
    csum: np.ndarray | None  # per received packet: ip_summed kind (mlx5's counters)
    nframes: int
    drv: Driver
    ncpu: int
    nq: int
    veth: bool
    apps: list[dict[str, Any]]
    hv: Any


def simulate(frames: pa.Table, cfg: dict[str, Any], profile: dict[str, Any],
             opts: ReplayOptions,
             on_table: Callable[[str, pa.Table], None] | None = None) -> SimResult:
    """Replay the frames through the model. on_table(name, table) is handed each of the
    packets, cpu and events tables as soon as it is built (`replay run` starts writing
    packets.parquet on its other core while the cpu table and the summary are made)."""
    notes: list[str] = []
    note = _driver_defaults_note(cfg)
    if note:
        notes.append(note)
    pre = _prepare(frames, cfg, profile, opts, notes)
    n, arrays, drv, ncpu, nq, veth, apps = pre.n, pre.arrays, pre.drv, pre.ncpu, pre.nq, \
        pre.veth, pre.apps
    ridx, fidx, loop, t_wire_all, rxmask = pre.ridx, pre.fidx, pre.loop, pre.t_wire_all, pre.rxmask
    # the per-packet arrays the engine fills, allocated now that the frame columns are freed
    po = np.empty((n, L.N_PO), dtype=np.int64)
    init_outputs(po, L.O_SKBH, L.O_SKBCNT, L.O_SKBLEN, L.O_SKBTRUE)  # one pass, not five
    # output buffers, grown by doubling when the engine asks: a 64-byte UDP flood makes ~2.1 cpu
    # rows per packet (one recvmsg span per message), a GRO'd TCP download far fewer. They are
    # not zeroed (np.empty), so the part never written costs no memory: room for 4 rows per
    # packet saves the flood a copy and a second buffer to fault in
    cap_rows = 4096 + 4 * n
    cap_ev = 4096 + n // 8
    arrays.update(
        po=po, se=np.full((n, L.N_ST), -1, dtype=np.int64),
        sc=np.zeros((n, L.N_ST), dtype=np.int64),
        rows=np.empty((8, cap_rows), np.int64), ev=np.empty((cap_ev, 7), np.int64),
        tofo=np.full(max(n, 1), -1, np.int64),
        rqf=np.zeros(3 * max(n, 1), np.int64),  # request FIFO (flow, t0, socket): one per SYN at most
    )
    del po
    if n:
        engine.heap_fix(arrays["ht"], arrays["hh"], arrays["hp"], 0, pre.t_first)
    # the compiled engine sees the arrays through one struct (model/state.py); it writes into them
    st = new_state(arrays)
    while engine.run_loop(st) == 1:
        # the engine writes rows/events below its fill counters only: no need to zero them
        old_rows, old_ev = arrays["rows"], arrays["ev"]
        nr, ne = int(arrays["misc"][L.M_NROWS]), int(arrays["misc"][L.M_NEV])
        rows = np.empty((8, old_rows.shape[1] * 2), np.int64)
        rows[:, :nr] = old_rows[:, :nr]
        ev = np.empty((old_ev.shape[0] * 2, 7), np.int64)
        ev[:ne] = old_ev[:ne]
        arrays["rows"], arrays["ev"] = rows, ev
        set_buffers(st, rows, ev)
    engine.frag_expire(st, L.INF)  # reassembly timers still pending fire after the trace
    engine.tcp_delack_flush(st)
    engine.tcp_req_flush(st)
    engine.tcp_ofo_flush(st)
    engine.distribute(st)
    del st
    _misc = arrays["misc"][3:7].tolist()
    S = _views(arrays)
    S.kind0 = pre.kind0
    if n and (S.outc < 0).any():
        bad = int(np.flatnonzero(S.outc < 0)[0])
        raise RunError(
            f"internal: packet of frame {int(ridx[bad]) + 1} has no outcome after the replay "
            "(a model bug: please report it with the trace)"
        )

    names = {
        "irq_symbol": drv.irq_symbol, "poll_symbol": drv.poll_symbol,
        "refill_symbol": f"{drv.name}_alloc_rx_buffers" if drv.name != "mlx5" else "mlx5e_post_rx_wqes",
        "clean_symbol": drv.clean_symbol,
        "tx_symbol": "packet_sendmsg",  # tcpreplay sends through an AF_PACKET socket
    }
    comms = [f"swapper/{c}" for c in range(ncpu)] + [f"ksoftirqd/{c}" for c in range(ncpu)] + [
        str(a["name"]) for a in apps
    ] + ([str(cfg["nic"]["sender"])] if veth else [])
    comms += napi_thread_names(drv.name, nq)  # comm index P_NAPI_COMM0 + q
    counters = _counters(S, cfg, drv, pre, nq, ncpu, _icmp_types(frames, pre.ridx))
    if drv.name == "mlx5":
        # mlx5e_handle_csum's counters, per packet the driver built (ring drops never reach it)
        built = ~((S.dreason == L.R_RING) & (S.dstage == L.S_DRIVER))
        kinds0 = pre.csum[built] & L.CSUM_KIND
        counters["ethtool"].update({
            "rx_csum_complete": int((kinds0 == L.CSUM_COMPLETE).sum()),
            "rx_csum_unnecessary": int((kinds0 == L.CSUM_UNNECESSARY).sum()),
            "rx_csum_none": int((kinds0 == L.CSUM_NONE).sum()),
        })
    # the packet matrix (272 B per packet) is not needed past the counters but for each
    # packet's rx queue: freed, the packets table's columns reuse its memory
    que = S.que.astype(np.uint16)
    _release_packet_arrays(S, arrays, ("pk", *L.PK_FIELDS))
    packets = _packets_table(S, que, pre.flow, fidx, loop, t_wire_all, rxmask, ridx)
    if on_table is not None:
        on_table("packets", packets)
    # the other per-packet engine arrays (~330 B per packet) are in the packets table now: let
    # the cpu table, the summary and the Parquet writer reuse their memory (first-touched memory
    # is what a large run pays for most: benchmarks/bench_run.py)
    _release_packet_arrays(S, arrays, ("po", "se", "sc", "tofo", "rqf", *L.PO_FIELDS))
    cpu = _cpu_table(S, names, comms, apps, ncpu, profile.get("categories", {}))
    events = _events_table(S)
    if on_table is not None:
        on_table("cpu", cpu)
        on_table("events", events)
    summary = _summary(S, packets, pre.nframes, ncpu)
    kinds_ = ("arrival", "irq", "cpu_step", "wakeup")
    counters["model"]["engine_events"] = dict(zip(kinds_, _misc, strict=True))
    host = {"addresses": pre.hv.addresses, "inferred": pre.hv.inferred, "note": pre.hv.note}
    return SimResult(packets, cpu, events, counters, summary, host, apps, notes)


def _vlan_rx(frames: pa.Table, cols: Any, hv: Any, cfg: dict[str, Any],
             notes: list[str]) -> np.ndarray:
    """Per frame, what __netif_receive_skb_core does with its 802.1Q tag (L.VLAN_*).

    With NIC VLAN stripping (rxvlan, on by default) the tag is skb metadata; without it the
    skb_vlan_untag at `another_round:` puts it there: the same path either way (net/core/dev.c).
    vlan_do_receive (net/8021q/vlan_core.c) finds the host's VLAN device for the VID: the skb
    moves to it and `goto another_round` (softnet processed counts twice). No device: a non-zero
    VID is marked PACKET_OTHERHOST (check_vlan_id), which ip_rcv_core drops; VID 0 (a priority
    tag) is untagged and goes on. The host's VLAN devices are host.vlans, by default ("auto")
    the non-zero VIDs of tagged frames to the host's own unicast addresses: the host could not
    hold those addresses on that VLAN without the device."""
    out = np.zeros(cols.n, dtype=np.int8)
    if not cols.n:
        return out
    col = frames["vlan"]
    tagged = np.asarray(col.is_valid())
    if not tagged.any():
        return out
    vid = np.asarray(col.fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64)
    spec = cfg["host"].get("vlans", "auto")
    if spec == "auto":
        own = np.zeros(cols.n, dtype=bool)
        for a in hv.addresses:
            if a.count(":") == 5 and len(a) == 17:
                own |= cols.has_mac & _rows_equal(cols.dst_mac, bytes.fromhex(a.replace(":", "")))
            else:
                own |= (cols.ip_version > 0) & _rows_equal(cols.dst, addr16(a))
        own &= tagged & hv.received & (vid != 0)
        vlans = sorted(int(v) for v in np.unique(vid[own]))
        if vlans:
            notes.append(
                f"host VLAN devices inferred from the capture: {', '.join(map(str, vlans))} (the"
                " VIDs of tagged frames to the host's addresses); set host.vlans to choose"
            )
    else:
        vlans = [int(v) for v in spec]
    dev = tagged & np.isin(vid, np.array(vlans, dtype=np.int64))
    out[dev] = L.VLAN_ROUND
    out[tagged & ~dev & (vid != 0)] = L.VLAN_OTHERHOST
    return out


def _ipv6_ext(frames: pa.Table, cols: Any, v6: np.ndarray) -> np.ndarray:
    """Per frame, the bytes of IPv6 extension headers (ip_hlen counts them and the fragment
    header, 8 bytes); 0 for IPv4 and non-IP frames (a trace without IPv6 skips the arithmetic)."""
    if not v6.any():
        return np.zeros(cols.n, np.int64)
    ext = np.where(v6, np.maximum(cols.ip_hlen - 40 - np.where(cols.frag != 0, 8, 0), 0), 0)
    # ip_hlen is a uint8 that saturates at 255: past that, what an Ethernet frame leaves around
    # the IPv6 header, transport header and payload (the frames table keeps no longer length)
    from replay.model.classify import _l4_header_len

    eth = 14 + np.where(np.asarray(frames["vlan"].is_valid()), 4, 0)
    big_ext = cols.wire_len - eth - 40 - _l4_header_len(cols) - cols.payload_len
    return np.where(v6 & (cols.ip_hlen >= 255) & (frames["linktype"].to_numpy() == 1)
                    & (cols.frag == 0), np.maximum(big_ext, ext), ext)


def _route_ids(cols: Any, v6: np.ndarray) -> np.ndarray:
    """Per frame, the route identity a list-RX route hint compares (engine.py list_core): a
    dense id of the destination address << 8 | the IPv4 tos (ip_can_use_hint: daddr and tos;
    ip6_can_use_hint: daddr alone)."""
    if not cols.n:
        return np.zeros(0, dtype=np.int64)
    # np.unique's inverse over the addresses (IPv4-mapped only: their low half), without sorting
    # every row
    ids = group_rows(cols.dst, 0 if v6.any() else 8)[0]
    return (ids << 8) | np.where(v6, 0, cols.ip_tos.astype(np.int64) & 0xFF)


def _prepare(frames: pa.Table, cfg: dict[str, Any], profile: dict[str, Any], opts: ReplayOptions,
             notes: list[str]) -> _Prepared:
    """Frame columns → the engine's parameters, tables and packet matrix (pk)."""
    cols = columns(frames)
    hv = host_view(cols, list(cfg["host"]["addresses"]))
    if hv.note:
        notes.append(hv.note)
    apps = [dict(a) for a in cfg["app"]]
    if not apps:
        # a decapsulated frame is for its inner packet's port, not the tunnel's
        apps, note = infer_apps(inner_view(cols, cfg), hv.received, cfg["host"]["cpus"])
        notes.append(note)
        for i, a in enumerate(apps):
            a.setdefault("threads", 1)
            a.setdefault("work-ns", 0)
            a.setdefault("reuseport", False)
            a.setdefault("connected", False)
            a.setdefault("udp-gro", False)
            a.setdefault("listen", False)
            a.setdefault("backlog", cfg["sysctl"]["net.core.somaxconn"])  # listen(fd, SOMAXCONN)
            a.setdefault("accept-ns", 0)
            a.setdefault("busy-poll", int(cfg["sysctl"]["net.core.busy_read"]))
            a.setdefault("wait", "recvmsg")
            # tcp_init_sock: sk_rcvbuf = tcp_rmem[1], autotuned (no SO_RCVBUF); UDP: rmem_default
            tcp_app = str(a["match"]).strip().lower().startswith("tcp")
            a.setdefault("rcvbuf", tcp_rmem(cfg)[1] if tcp_app
                         else cfg["sysctl"]["net.core.rmem_default"])
            a.setdefault("rcvbuf-lock", False)
            a.setdefault("name", f"app{i}")

    drv = DRIVERS[cfg["nic"]["driver"]]
    ncpu = int(cfg["host"]["cpus"])
    nq = int(cfg["nic"]["combined"])
    speed = parse_speed(cfg["nic"]["speed"])
    hz = int(cfg["host"]["hz"])
    kv = kernel_version(cfg)

    # ---- RSS: Toeplitz over the 2- or 4-tuple (KERNEL.md §5)
    key = key_bytes(str(cfg["nic"]["hkey"]))
    v6 = cols.ip_version == 6
    ip = cols.ip_version > 0
    fh = cfg["nic"]["rx-flow-hash"]
    l4 = cols.has_ports & (cols.frag == 0)  # fragments hash on the 2-tuple
    if fh == "l3":
        use_ports = np.zeros(cols.n, dtype=bool)
    elif fh == "l4":
        use_ports = l4 & ((cols.proto == 6) | (cols.proto == 17))
    else:
        use_ports = l4 & ((cols.proto == 6) | ((cols.proto == 17) & drv.udp_l4_hash))
    hashes = hash_frames(key, cols.src, cols.dst, cols.sport, cols.dport, v6, use_ports)
    hashes[~ip] = 0  # no hash type for non-IP: queue 0
    indir = indirection_table(rss_table_size(drv, nq), nq)
    fqueue = queue_of(hashes, indir)
    veth = drv.name == "veth"
    if veth:
        fqueue = np.zeros_like(fqueue)  # no RSS: the peer's rx queue is the sender's tx queue
    skb_hash = _skb_hash(hashes, cols.flow)

    fkind = kinds(cols)
    if hv.notlocal is not None:
        # not for our IP: routing drops it, unless ip_rcv_core did first (a bad header)
        fkind[hv.notlocal & (fkind != L.K_BADIP) & (fkind != L.K_TRUNC)] = L.K_NOTLOCAL
    fsock = sockets(cols, apps, int(cfg["host"]["ehash-secret"]))
    frg = fragments(cols, fkind)
    fcsum = ip_summed(cols, drv.rx_csum, bool(cfg["nic"]["rx-checksumming"]))
    conn = np.array([bool(a.get("connected")) for a in apps] + [False], dtype=bool)
    demux = (fkind == L.K_UDP) & (cols.frag == 0) & conn[fsock]  # fsock -1 -> the False pad
    # bit 1 (L.DEMUX_MCAST): UDP to a broadcast or multicast address, which __udp4_lib_rcv hands
    # to __udp4_lib_mcast_deliver (RTCF_BROADCAST | RTCF_MULTICAST; __udp6_lib_rcv likewise)
    from replay.model.classify import _is_multicast

    demux = demux.astype(np.int8)  # the flag columns copied into pk are int8: 7 B per frame less
    demux[(fkind == L.K_UDP) & _is_multicast(cols.dst, cols.ip_version == 4)] |= L.DEMUX_MCAST
    ext = _ipv6_ext(frames, cols, v6)
    fvlan = _vlan_rx(frames, cols, hv, cfg, notes)
    frdst = _route_ids(cols, v6)
    ftun, fikind, fisock, filen = tunnels(cols, fkind, list(cfg.get("tunnel", [])), apps,
                                          int(cfg["host"]["ehash-secret"]))

    # ---- the wire
    if drv.name == "veth":
        # no wire: the capture's times are the tap's, just before veth_xmit (docs/real-kernel.md);
        # the fastest link speed leaves under a nanosecond of serialization
        speed = 800_000_000_000
    fidx, loop, t_wire_all = schedule(cols.ts_ns, cols.wire_len, hv.received, opts, speed)
    rxmask = t_wire_all >= 0
    ridx = fidx[rxmask]  # frame index of each received packet, in arrival order
    n = len(ridx)
    dma = int(cost_vectors(profile, None)[0][L.L_DMA])
    t_wire = t_wire_all[rxmask]

    gro_ok = (cols.proto == 6) & cols.has_ports & (cols.frag == 0) & (
        v6 | ((cols.ip_version == 4) & (cols.ip_hlen == 20))
    ) & (fkind != L.K_BADTCP)  # tcp_gro_receive: `if (thlen < sizeof(*th)) goto out` (flush)
    # UDP_GRO sockets: udp_gro_receive_segment needs a non-zero checksum ("for symmetry with GSO")
    ugro = np.array([bool(a.get("udp-gro")) for a in apps] + [False], dtype=bool)
    gro_ok |= (cols.proto == 17) & cols.has_ports & (cols.frag == 0) & ~cols.csum_zero & (
        v6 | ((cols.ip_version == 4) & (cols.ip_hlen == 20))) & ugro[fsock] & (fkind == L.K_UDP)
    hdr = np.where(v6, 40, cols.ip_hlen) + np.where(cols.proto == 17, 8, cols.tcp_hlen)
    ts = _truesize(drv, cols.wire_len, int(cfg["host"]["skb-small-head"]))

    host_ghz = None if cfg["host"]["ghz"] == "profile" else float(cfg["host"]["ghz"])
    cbase, cpb = cost_vectors(profile, host_ghz)

    # ---- parameters
    P = np.zeros(L.N_P, dtype=np.int64)
    ring = int(cfg["nic"]["rx"])
    P[L.P_NQ] = nq
    P[L.P_NCPU] = ncpu
    P[L.P_RING] = ring
    P[L.P_RING_USABLE] = ring - 1
    P[L.P_REFILL] = drv.refill_batch
    P[L.P_WEIGHT] = 64  # NAPI_POLL_WEIGHT (netdevice.h:2802)
    P[L.P_BUDGET] = cfg["sysctl"]["net.core.netdev_budget"]
    P[L.P_BUDGET_J] = _usecs_to_jiffies(cfg["sysctl"]["net.core.netdev_budget_usecs"], hz)
    # gro_normal_batch and the listified GRO_NORMAL path (napi->rx_list) came with 323ebb61e32b
    # (5.4); before it napi_skb_finish hands each skb to netif_receive_skb_internal at once
    P[L.P_BATCH] = cfg["sysctl"]["net.core.gro_normal_batch"] if kv >= (5, 4) else 1
    P[L.P_GRO] = 1 if cfg["nic"]["gro"] else 0
    P[L.P_TICK] = 1_000_000_000 // hz
    P[L.P_PHASE] = cfg["host"]["tick-phase-ns"]
    P[L.P_MOD] = drv.moderation
    if drv.name == "mlx5" and not cfg["nic"]["rx-cqe-moder"]:
        P[L.P_MOD] = MOD_MLX5_EQE
    P[L.P_USECS] = int(cfg["nic"]["rx-usecs"]) * 1000
    P[L.P_FRAMES] = int(cfg["nic"]["rx-frames"])
    if drv.name == "ixgbe" and (cfg["nic"]["adaptive-rx"] or cfg["nic"]["rx-usecs"] == 1):
        # ixgbe_set_coalesce: rx-usecs 1 selects the dynamic ITR (rx_itr_setting = 1; the driver
        # offers no adaptive-rx flag, nic.adaptive-rx says the same). ixgbe_update_itr scales by
        # 256 at 10G/100M and by 64 at 2.5G/1G/10M.
        P[L.P_AITR] = 1 if parse_speed(cfg["nic"]["speed"]) in (10**10, 10**8) else 2
    elif drv.name == "mlx5" and cfg["nic"]["adaptive-rx"]:
        P[L.P_AITR] = L.AITR_DIM  # net_dim on each RQ (en_main.c mlx5e_dim_rx_change)
    P[L.P_GOTO_START] = 1 if kv >= (6, 4) else 0
    P[L.P_INLINE_ALWAYS] = 1 if kv >= (6, 5) else 0
    P[L.P_UDP618] = 1 if kv >= (6, 18) else 0
    P[L.P_GRO_ID_ANYDF] = 1 if kv >= (6, 18) else 0  # f095a358faf2 (net-next 25 Sep 2025)
    P[L.P_R_PING] = L.R_NOSOCK if kv >= (5, 19) else L.R_NOTSPEC  # b384c95a861e (5.19)
    # ip_list_rcv_finish's route hint: 02b24941619f "ipv4: use dst hint for ipv4 list receive"
    # and 197dbf24e360 (IPv6), both 5.7
    P[L.P_ROUTE_HINT] = 1 if kv >= (5, 7) else 0
    # skb_attempt_defer_free's per-CPU lists and net.core.skb_defer_max came in 5.19 ("net:
    # generalize skb freeing deferral to per-cpu lists"; the 5.17 TCP deferral kept a per-socket
    # list freed by release_sock on the reader's CPU): 0 disables the deferral in the engine
    P[L.P_DEFER_MAX] = int(cfg["sysctl"]["net.core.skb_defer_max"]) if kv >= (5, 19) else 0
    P[L.P_SOFTIRQ_J] = _msecs_to_jiffies(2, hz)  # MAX_SOFTIRQ_TIME (softirq.c:543)
    P[L.P_HZ1000] = 1 if hz >= 1000 else 0
    P[L.P_GRO_MAX] = 65536  # GRO_LEGACY_MAX_SIZE
    nf_drop = bool(cfg["netfilter"]["prerouting-drop"])
    P[L.P_NF_PRE] = max(int(cfg["netfilter"]["prerouting"]), 1 if nf_drop else 0)
    P[L.P_NF_DROP] = 1 if nf_drop else 0
    P[L.P_NF_IN] = cfg["netfilter"]["input"]
    P[L.P_CONNTRACK] = 1 if cfg["netfilter"]["conntrack"] else 0
    P[L.P_SLICE] = base_slice_ns(ncpu)
    # CFS before EEVDF (6.6): sysctl_sched_wakeup_granularity 1 ms scaled like the slice
    # (SCHED_TUNABLESCALING_LOG, kernel/sched/fair.c); EEVDF has no wake-up granularity
    P[L.P_WGRAN] = -1 if kv >= (6, 6) else 1_000_000 * (1 + int(math.log2(min(ncpu, 8))))
    # idle states: the config's numbers, or the profile's [idle] (a measured machine's), written
    # back so that run.json shows what the run used
    idle = profile.get("idle", {})
    for key, pk_ in (("cstate-exit-ns", "exit-ns"), ("cstate-residency-ns", "residency-ns")):
        if cfg["host"][key] == "auto":
            v = idle.get(pk_, 0)
            cfg["host"][key] = [int(x) for x in v] if isinstance(v, list) else int(v)
    states = idle_states(cfg["host"]["cstate-exit-ns"], cfg["host"]["cstate-residency-ns"],
                         "host.cstate-exit-ns", "host.cstate-residency-ns")
    for (ex, res), (pe, pr) in zip(states, ((L.P_CEXIT, L.P_CRES), (L.P_CEXIT2, L.P_CRES2),
                                            (L.P_CEXIT3, L.P_CRES3)), strict=False):
        P[pe], P[pr] = ex, res
    P[L.P_GRO_FT] = int(cfg["sysfs"]["gro_flush_timeout"])
    P[L.P_DEFER] = int(cfg["sysfs"]["napi_defer_hard_irqs"])
    P[L.P_THREADED] = 1 if cfg["sysfs"]["threaded"] else 0
    _hw_aggregation(P, cfg, drv, notes)
    span = int(t_wire[-1]) if n else 0
    P[L.P_SAMPLE_NS] = max(10_000, span // 2000)

    # ---- sockets and threads
    nsock = len(apps)
    thr_app: list[int] = []
    thr_cpu: list[int] = []
    for i, a in enumerate(apps):
        for j in range(int(a.get("threads", 1))):
            thr_app.append(i)
            thr_cpu.append((int(a["cpu"]) + j) % ncpu)
    napp_thr = len(thr_app)
    if veth:
        sender_cpu = _sender_cpu(cfg, apps, ncpu)
        thr_app.append(nsock)  # its comm follows the apps' in the comm table
        thr_cpu.append(sender_cpu)
    nthr = len(thr_app)
    P[L.P_NSOCK] = nsock
    P[L.P_NTHR] = nthr
    # comm table: swapper/*, ksoftirqd/*, the apps (and the veth sender), then napi/<dev>-<id>
    P[L.P_NAPI_COMM0] = 2 * ncpu + nsock + (1 if veth else 0)

    # a decapsulated packet is for its inner socket (the socket queues are sized by this)
    psock = np.where(ftun != L.TUN_NONE, fisock, fsock)[ridx]
    ss = np.zeros((max(nsock, 1), L.N_SS), dtype=np.int64)
    qcaps = []
    for s, a in enumerate(apps):
        mine = psock == s
        mts = int(ts[ridx][mine].min()) if mine.any() else 2304
        cap = int(min(mine.sum() + 2, int(a["rcvbuf"]) // max(256, mts) + 8))
        if str(a["match"]).strip().lower().startswith("tcp"):
            # TCP's queue is not bounded by the frames' truesize: tcp_collapse shrinks queued
            # skbs' truesize below any frame's (a 524-byte segment's share of a collapsed skb
            # is 631 B), and an skb is taken over sk_rcvbuf when the queue is empty
            cap = int(mine.sum() + 2)
        qcaps.append(max(cap, 2))
        ss[s, L.SS_RCVBUF] = int(a["rcvbuf"])
        ss[s, L.SS_PROTO] = 6 if str(a["match"]).strip().lower().startswith("tcp") else 17
        # SOCK_RCVBUF_LOCK: a program that set SO_RCVBUF is never resized (engine.py
        # "Receive-buffer autotuning")
        ss[s, L.SS_AUTOTUNE] = 1 if ss[s, L.SS_PROTO] == 6 and not a.get("rcvbuf-lock") else 0
        if a.get("listen"):
            # __sys_listen: backlog capped at somaxconn (a negative one, as unsigned, too);
            # inet_csk_listen_start: sk_max_ack_backlog = backlog
            bl = int(a.get("backlog", cfg["sysctl"]["net.core.somaxconn"]))
            som = int(cfg["sysctl"]["net.core.somaxconn"])
            ss[s, L.SS_LISTEN] = 1
            ss[s, L.SS_MAXBL] = som if (bl < 0 or bl > som) else bl
        ss[s, L.SS_OVF_T] = -1
        # the busy loop's time: sk_ll_usec for a recvmsg reader; net.core.busy_poll for one in
        # epoll_wait (ep_busy_loop needs net_busy_loop_on(), not sk_ll_usec)
        ss[s, L.SS_LL_USEC] = int(a.get("busy-poll") or 0) if a.get("wait", "recvmsg") == \
            "recvmsg" else int(cfg["sysctl"]["net.core.busy_poll"])
        ss[s, L.SS_CONN] = 1 if a.get("connected") else 0
        # sk_busy_loop: READ_ONCE(sk->sk_busy_poll_budget) ?: BUSY_POLL_BUDGET
        ss[s, L.SS_BP_BUDGET] = int(a.get("busy-poll-budget") or 0) or L.BUSY_POLL_BUDGET
        ss[s, L.SS_PREFER] = 1 if a.get("prefer-busy-poll") else 0  # sk_prefer_busy_poll
    P[L.P_BUSY] = 1 if (ss[:nsock, L.SS_LL_USEC] > 0).any() else 0
    qoff = np.concatenate([[0], np.cumsum(qcaps)]).astype(np.int64) if qcaps else np.zeros(1, np.int64)
    for s in range(nsock):
        ss[s, L.SS_QOFF] = qoff[s]
        ss[s, L.SS_QCAP] = qcaps[s]
    tsa = np.zeros((max(nthr, 1), L.N_TS), dtype=np.int64)
    tsa[:, L.TS_BP_START] = -1
    tsa[:, L.TS_BP_OWN] = -1
    tsa[:, L.TS_BP_Q] = -1
    maxbatch = 1
    for k in range(napp_thr):
        a = apps[thr_app[k]]
        tsa[k, L.TS_CPU] = thr_cpu[k]
        tsa[k, L.TS_SOCK] = thr_app[k]
        tsa[k, L.TS_STATE] = L.T_SLEEP
        tsa[k, L.TS_BATCH] = int(a.get("batch", 1))
        tsa[k, L.TS_WORK] = int(a.get("work-ns", 0))
        tsa[k, L.TS_PHASE] = engine.TP_RETRY
        tsa[k, L.TS_APP] = thr_app[k]
        tsa[k, L.TS_ACCEPT] = int(a.get("accept-ns", 0))
        maxbatch = max(maxbatch, int(a.get("batch", 1)))
    if veth:
        k = nthr - 1
        tsa[k, L.TS_CPU] = thr_cpu[k]
        tsa[k, L.TS_SOCK] = -1
        tsa[k, L.TS_STATE] = L.T_SLEEP
        tsa[k, L.TS_APP] = nsock
        tsa[k, L.TS_KIND] = L.TK_SENDER
        # 1: netif_rx to the backlog; 2: GRO on the peer and a GRO-eligible skb: the ptr_ring
        # and its NAPI (§3c). veth_xmit's use_napi = rq->napi && veth_skb_is_eligible_for_gro:
        # !(dev->features & NETIF_F_ALL_TSO) || (skb->destructor == sock_wfree (an AF_PACKET or
        # socket skb) && rcv->features & (GRO_FRAGLIST | GRO_UDP_FWD)) (drivers/net/veth.c).
        # Measured here: GRO on the peer alone still ran process_backlog, never veth_poll
        n_ = cfg["nic"]
        eligible = (not n_["sender-tso"]) or n_["rx-udp-gro-forwarding"]
        P[L.P_VETH] = 2 if (n_["gro"] and eligible) else 1
        P[L.P_SENDER] = k
        P[L.P_RING_USABLE] = 256  # VETH_RING_SIZE (drivers/net/veth.c)
        P[L.P_REFILL] = 1 << 40  # no descriptors to refill
    wq = np.zeros((max(nsock, 1), max(nthr, 1)), dtype=np.int64)
    for k in range(napp_thr):
        s = thr_app[k]
        wq[s, ss[s, L.SS_WAITER]] = k
        ss[s, L.SS_WAITER] += 1

    # rows nq.. are the per-CPU backlog NAPIs (model/engine.py "RPS / RFS, the backlog, veth")
    qs = np.zeros((nq + ncpu, L.N_QS), dtype=np.int64)
    for c in range(ncpu):
        qs[nq + c, L.QS_CPU] = c
        qs[nq + c, L.QS_IRQ_T] = L.INF
    aff = cfg["irq"]["affinity"]
    for q in range(nq):
        qs[q, L.QS_CPU] = (q % ncpu) if aff == "spread" else int(aff[q])
        qs[q, L.QS_IRQ_EN] = 1
        qs[q, L.QS_IRQ_T] = L.INF
        qs[q, L.QS_LAST_IRQ] = -(10**12)
        usecs = int(cfg["nic"]["rx-usecs"])
        if drv.moderation == MOD_ITR:
            usecs &= ~1  # EITR / ITR registers count in 2 us (ixgbe_write_eitr masks 0xFF8)
        qs[q, L.QS_ITR] = usecs * 1000
        qs[q, L.QS_FRAMES] = int(cfg["nic"]["rx-frames"])
        if P[L.P_AITR] == L.AITR_DIM:
            # DIM starts from profile 1 whatever rx-usecs says (net_dim_get_def_rx_moderation,
            # NET_DIM_DEF_PROFILE_CQE/EQE = 1); struct dim is zeroed: profile_ix 0, parked on top
            eqe = P[L.P_MOD] == MOD_MLX5_EQE
            qs[q, L.QS_ITR] = (L.DIM_RX_EQE_USEC if eqe else L.DIM_RX_CQE_USEC)[1] * 1000
            qs[q, L.QS_FRAMES] = (L.DIM_RX_EQE_PKTS if eqe else L.DIM_RX_CQE_PKTS)[1]
        if P[L.P_AITR] in (1, 2):
            # ixgbe_alloc_q_vector: q_vector->itr = IXGBE_20K_ITR (50 us << 2), both containers
            # at IXGBE_ITR_ADAPTIVE_MAX_USECS | LATENCY; next_update 0 (kzalloc): the first
            # update finds it stale
            qs[q, L.QS_AITR_Q] = 200
            qs[q, L.QS_ITR] = 50_000
            qs[q, L.QS_AITR_RX] = L.AITR_MAX_USECS | L.AITR_LATENCY
            qs[q, L.QS_AITR_TX] = L.AITR_MAX_USECS | L.AITR_LATENCY
            qs[q, L.QS_AITR_NEXT] = -1
    cs = np.zeros((ncpu, L.N_CS), dtype=np.int64)
    cs[:, L.CS_TASK] = -1
    cs[:, L.CS_NEXT] = L.INF
    cs[:, L.CS_POLLQ] = -1
    cs[:, L.CS_KS_SLEEP_T] = -(2**60)  # ksoftirqd has slept since long before the trace

    # arrivals, IRQ timers, CPUs, readers (and the veth sender), NAPI hrtimers, RPS IPIs, the
    # NIC's aggregation timers
    n_ent = 1 + nq + ncpu + nthr + nq + ncpu + nq
    e_irq0, e_cpu0, e_thr0 = 1, 1 + nq, 1 + nq + ncpu
    ht = np.full(n_ent, L.INF, dtype=np.int64)
    hh = np.arange(n_ent, dtype=np.int64)
    hp = np.arange(n_ent, dtype=np.int64)

    t_vis = (t_wire + dma).astype(np.int64)
    if veth:
        # the sender starts a packet's own transmit work (fixed.tx) so that it reaches the tap,
        # where the capture stamped it, at t_wire; no DMA on veth
        t_vis = np.maximum(t_wire - int(cbase[L.C_TX]), 0).astype(np.int64)
    P[L.P_EIRQ0], P[L.P_ECPU0], P[L.P_ETHR0] = e_irq0, e_cpu0, e_thr0
    P[L.P_ETMR0] = e_thr0 + nthr
    P[L.P_EIPI0] = e_thr0 + nthr + nq
    P[L.P_EHW0] = e_thr0 + nthr + nq + ncpu
    qs[:, L.QS_HW_TMR] = L.INF
    qs[:, L.QS_SH_SKB] = -1
    bl = _backlog_arrays(cfg, P, nq, ncpu, n, kv)
    # ICMP replies' destinations (model/icmp.py): a datagram an [[app]] socket takes is never
    # answered, so only the others (and fragments, whose ports are in the first) need a peer
    ipeer, n_ipeer = icmp_peers(cols, fkind, ftun, (fsock >= 0) & (cols.frag == 0))
    pk = np.empty((n, L.N_PK), dtype=np.int64)  # every field is filled just below
    # pk's fields: per-frame columns are gathered by each packet's frame index in one compiled
    # pass (no n-row temporary per field: 140 B per packet of memory to fault in and free);
    # per-packet ones are copied
    by_frame = {
        "que": fqueue, "plen": cols.wire_len, "paylen": cols.payload_len, "kind": fkind,
        "gro_ok": gro_ok, "flowk": cols.flow, "bucket": hashes & 7, "seq": cols.tcp_seq,
        "ack": cols.tcp_ack, "flags": cols.tcp_flags, "opth": cols.tcp_opt_hash, "ttl": cols.ttl,
        "tos": cols.ip_tos, "df": cols.ip_df, "ipid": cols.ip_id, "hdrlen": hdr, "truesize": ts,
        "v6": v6, "hash": skb_hash,
        "fragq": frg.key, "foff": frg.off, "fend": frg.end, "fmf": cols.frag_mf,
        "peer": frg.peer, "csum": fcsum, "demux": demux, "tun": ftun, "ikind": fikind,
        "isock": fisock, "ilen": filen, "ext": ext, "ipeer": ipeer,
        "vlan": fvlan, "rdst": frdst,
    }
    by_packet = {"t_vis": t_vis, "t_wire": t_wire, "sock": psock}
    fj = [j for j, name in enumerate(L.PK_FIELDS) if name not in by_packet]
    pj = [j for j, name in enumerate(L.PK_FIELDS) if name in by_packet]
    gather_rows(pk, tuple(np.ascontiguousarray(by_frame[L.PK_FIELDS[j]]) for j in fj),
                np.array(fj, dtype=np.int64), ridx,
                tuple(np.ascontiguousarray(by_packet[L.PK_FIELDS[j]], dtype=np.int64) for j in pj),
                np.array(pj, dtype=np.int64))
    del by_frame, by_packet
    # fragments among the received packets (pk's fragq >= 0), without a pass over pk
    nfrag = int(np.count_nonzero(frg.key[ridx] >= 0)) if frg.nkeys else 0
    fq, fx = _reassembly_state(P, cfg, frg, nfrag, n, hz)
    misc = np.zeros(L.N_MISC, np.int64)
    fx = icmp_state(P, cfg, hz, kv, n_ipeer, fx, misc)
    tf = np.zeros((int(cols.flow.max()) + 1 if cols.n else 1, L.N_TF), np.int64)
    tf[:, L.TF_QUICK] = -1
    tf[:, L.TF_DELACK] = -1
    tf[:, L.TF_OFO] = -1
    tf[:, L.TF_WND] = -1
    tf[:, L.TF_BLH] = -1
    tf[:, L.TF_BLT] = -1
    _autotune_flows(tf, cols, v6)
    # tcp_add_backlog's limit (engine.py "socket backlog"): c9c3321257e1 (4.10) added the 64 KiB
    # headroom, the signed-overflow fix (6.1) halved sndbuf's share, ec00ed472bdb (6.10) doubled
    # rcvbuf's
    P[L.P_TCP_BL_RULE] = (L.TCPBL_SUM if kv < (4, 10) else L.TCPBL_64K if kv < (6, 1)
                          else L.TCPBL_HALF_SND if kv < (6, 10) else L.TCPBL_TWICE_RCV)
    P[L.P_TCP_ACKS] = 1 if cfg["host"]["tcp-acks"] else 0
    _listen_params(P, cfg, kv)
    _autotune_params(P, cfg, kv)
    P[L.P_ATO] = (hz // 25) * (1_000_000_000 // hz)  # TCP_ATO_MIN = HZ / 25 jiffies
    # the engine rewrites a decapsulated packet's kind to the inner
    kind0 = fkind[ridx]  # pk's kind column, read without a pass over pk (fkind is int8)
    ss[:, L.SS_SOCK_SAMPLE] = -(10**12)
    width = max(3 * (nq + 1) + 3, nthr + ncpu + 1 + nq)  # run queues: readers, ksoftirqd, napi/*
    arrays = dict(
        P=P, cbase=cbase, cpb=cpb, pk=pk, cs=cs, qs=qs, ss=ss, ts=tsa,
        lst=np.zeros((ncpu, L.N_LST, width), np.int64),
        ringbuf=np.zeros((nq, max(ring, 257) if veth else ring), np.int64),
        rxl=np.zeros((nq + ncpu, 2 * 64 + 64 + int(P[L.P_BATCH])), np.int64),
        gh=np.zeros((nq, 64, L.N_GH), np.int64), gbc=np.zeros((nq, 8), np.int64),
        sockq=np.zeros(int(qoff[-1]) + 1, np.int64), wq=wq,
        tmsg=np.zeros((max(nthr, 1), maxbatch), np.int64),
        acc=np.zeros((ncpu, 3, L.N_SLOTS), np.int64), accf=np.zeros((ncpu, 3, L.N_SLOTS), np.int64),
        ht=ht, hh=hh, hp=hp, misc=misc, **bl, fq=fq, fx=fx,
        tf=tf,
        hw=np.zeros((nq, max(int(P[L.P_HW_NSESS]), 1), L.N_HW), np.int64),
    )
    return _Prepared(
        arrays=arrays, n=n, t_first=int(t_vis[0]) if n else 0, ridx=ridx, fidx=fidx, loop=loop,
        t_wire_all=t_wire_all, rxmask=rxmask, kind0=kind0, v6=v6[ridx],
        tcp_rst_ok=(cols.proto[ridx] == 6) & ((cols.tcp_flags[ridx] & 4) == 0),
        flow=cols.flow.astype(np.uint32, copy=False), csum=fcsum[ridx] if drv.name == "mlx5" else None,
        nframes=cols.n, drv=drv, ncpu=ncpu, nq=nq, veth=veth, apps=apps, hv=hv,
    )


def _driver_defaults_note(cfg: dict[str, Any]) -> str | None:
    """The [nic] defaults are one host's (ixgbe's ring, a fixed 50 us ITR: DESIGN.md); a user who
    only switches nic.driver is told where the chosen driver's own probe-time defaults differ
    (KERNEL.md §2 driver table), so the run is not mistaken for an untuned host of that NIC."""
    nic = cfg["nic"]
    own = {
        # en.h:128 MLX5E_PARAMS_DEFAULT_LOG_RQ_SIZE 10; DIM on where the HW supports it
        # (en_main.c mlx5e_build_rq_params / MLX5E_PFLAG_RX_DIM)
        "mlx5": {"rx": 1024, "adaptive-rx": True},
        # i40e_txrx.h I40E_ITR_RX_DEF = I40E_ITR_20K | I40E_ITR_DYNAMIC (not modelled: refused)
        "i40e": {"adaptive-rx": True},
    }.get(str(nic["driver"]), {})
    diff = [f"{k} {v}".replace("True", "on") for k, v in own.items() if nic.get(k) != v]
    if not diff:
        return None
    if nic["driver"] == "i40e":
        return (f"nic.driver i40e: the driver ships with adaptive ITR on (I40E_ITR_DYNAMIC), which "
                f"the model does not implement; this run uses a fixed rx-usecs {nic['rx-usecs']}")
    used = ", ".join(f"{k} {nic[k]}".replace("False", "off").replace("True", "on")
                     for k in ("rx", "rx-usecs", "rx-frames", "adaptive-rx"))
    return (f"nic.driver {nic['driver']}: the driver's own defaults are {', '.join(diff)}; this "
            f"run uses {used} (set nic.* to model it as shipped)")


def _hw_aggregation(P: np.ndarray, cfg: dict[str, Any], drv: Driver, notes: list[str]) -> None:
    """The NIC's receive aggregation (nic.large-receive-offload): kind, timer and limits."""
    P[L.P_HW_NSESS] = 0
    if cfg["nic"]["rx-gro-hw"]:
        # mlx5 SHAMPO: one NIC session per RQ as the CQEs' match bit reports it; the RQ's
        # reservation_timeout is MLX5E_DEFAULT_SHAMPO_TIMEOUT (1024 us, en/params.h) as
        # mlx5e_choose_lro_timeout picks it from the device's periods
        P[L.P_HWAGG] = L.HWA_SHAMPO
        P[L.P_HW_TMO] = 1_024_000
        P[L.P_HW_NSESS] = 1
        return
    if not cfg["nic"]["large-receive-offload"]:
        return
    usecs = int(cfg["nic"]["rx-usecs"])
    if drv.name == "ixgbe":
        if usecs != 1 and usecs <= 24 >> 2:
            # ixgbe_update_rsc: rx-usecs at or below IXGBE_MIN_RSC_ITR >> 2 (6 us) turns RSC off
            notes.append("nic.large-receive-offload: ixgbe turns RSC off at rx-usecs <= 6 "
                         "(\"rx-usecs set too low, disabling RSC\"); replayed without it")
            return
        P[L.P_HWAGG] = L.HWA_RSC
        P[L.P_HW_TMO] = -1  # the queue's ITR interval (82599: RSCs close at EITR expiry)
        P[L.P_HW_MAXSEG] = 1 << 30
        # ixgbe_configure_rscctl: IXGBE_RSCCTL_MAXDESC_16, 16 buffers of IXGBE_RXBUFFER_2K
        P[L.P_HW_MAXLEN] = 16 * 2048
    else:  # mlx5
        P[L.P_HWAGG] = L.HWA_MLX5_LRO
        P[L.P_HW_TMO] = 32_000  # MLX5E_DEFAULT_LRO_TIMEOUT (en/params.c), in us
        P[L.P_HW_MAXSEG] = 255  # lro_num_seg: the CQE's 8-bit count (cqe->srqn >> 24)
        # MLX5E_PARAMS_DEFAULT_LRO_WQE_SZ (64 KiB) less ROUGH_MAX_L2_L3_HDR_SZ (256)
        P[L.P_HW_MAXLEN] = 65536 - 256
    P[L.P_HW_NSESS] = 32  # [ASSUMED] concurrent sessions per queue (docs/model.md)


# ------------------------------------------------------------------------------------- tables


def _autotune_flows(tf: np.ndarray, cols: Any, v6: np.ndarray) -> None:
    """Per-flow receive-buffer autotuning state (engine.py "Receive-buffer autotuning"): no
    rcvq_space / rcv_rtt_est yet, and tp->advmss: dst_metric_advmss of an MTU-1500 route (1460
    over IPv4, 1440 over IPv6) less TCPOLEN_TSTAMP_ALIGNED (12) when the flow's data segments
    carry the timestamp option (a TCP header of 32 bytes or more)."""
    tf[:, L.TF_RQ_T] = -1
    tf[:, L.TF_RTT_T] = -1
    data = (cols.proto == 6) & (cols.payload_len > 0)
    tf[cols.flow[data & (cols.tcp_hlen >= 32)], L.TF_TS] = 1
    base = np.full(tf.shape[0], 1460, np.int64)
    base[cols.flow[v6]] = 1440
    tf[:, L.TF_ADVMSS] = base - 12 * tf[:, L.TF_TS]


def _autotune_params(P: np.ndarray, cfg: dict[str, Any], kv: tuple[int, int]) -> None:
    """The receive-buffer autotuning rule of host.kernel and its sysctls (layout.py DRS_*)."""
    sc = cfg["sysctl"]
    P[L.P_MODRCV] = 1 if sc["net.ipv4.tcp_moderate_rcvbuf"] else 0
    P[L.P_TCP_RMEM2] = tcp_rmem(cfg)[2]
    P[L.P_LOW_RTT] = int(sc["net.ipv4.tcp_rcvbuf_low_rtt"] or 0)
    # MAX_TCP_HEADER: SKB_SMALL_HEAD_CACHE_SIZE is SKB_HEAD_ALIGN(MAX_TCP_HEADER), i.e. it plus
    # the 320 of skb_shared_info (skbuff.c)
    P[L.P_MAX_TCP_HDR] = int(cfg["host"]["skb-small-head"]) - 320
    # sk_sndbuf once the connection is established: tcp_init_transfer -> tcp_init_buffer_space ->
    # tcp_sndbuf_expand (tcp_input.c; SO_SNDBUF not set): per_mss = roundup_pow_of_two(max(
    # mss_clamp, mss_cache) + MAX_TCP_HEADER + 320 (skb_shared_info)) + 256 (sk_buff), sndmem =
    # 2 (cubic has no sndbuf_expand) x max(TCP_INIT_CWND 10, cwnd, reordering + 1) x per_mss,
    # raised from tcp_wmem[1] (16384) up to tcp_wmem[2] (4 MiB). mss_clamp is the peer's MSS: 1460
    # from an Ethernet IPv4 peer (1440 over IPv6 rounds the same): 87040 at MAX_TCP_HEADER 320
    per_mss = 1 << (1460 + int(P[L.P_MAX_TCP_HDR]) + 320 - 1).bit_length()
    P[L.P_TCP_SNDBUF] = max(16384, min(2 * 10 * (per_mss + 256), 4 * 1024 * 1024))
    P[L.P_TCP_FIXUP] = 1 if kv < (4, 20) else 0  # removed by a337531b942b (4.20)
    P[L.P_TCP_ENDSEQ] = 1 if kv >= (6, 17) else 0  # 9ca48d616ed7, 6c758062c64d (6.17)
    P[L.P_DRS] = (L.DRS_STEP_J if kv < (4, 13) else L.DRS_STEP if kv < (4, 16)
                  else L.DRS_GROW_MEM if kv < (6, 6) else L.DRS_GROW_WIN if kv < (6, 16)
                  else L.DRS_SPACE if kv < (6, 18) else L.DRS_SPACE_GROW if kv < (6, 19)
                  else L.DRS_LOW_RTT)


def _listen_params(P: np.ndarray, cfg: dict[str, Any], kv: tuple[int, int]) -> None:
    """The listen-socket and pruning rules that follow the sysctls and host.kernel."""
    sc = cfg["sysctl"]
    P[L.P_SYNCOOKIES] = sc["net.ipv4.tcp_syncookies"]
    P[L.P_MAXSYN] = sc["net.ipv4.tcp_max_syn_backlog"]
    P[L.P_SYNACK_RETRIES] = sc["net.ipv4.tcp_synack_retries"]
    P[L.P_ABORT_OVF] = sc["net.ipv4.tcp_abort_on_overflow"]
    # 3479c7549fb1 "tcp/dccp: allow a connection when sk_max_ack_backlog is zero" (6.13; stable
    # 6.6 and 6.12 updates carry it too): inet_csk_reqsk_queue_is_full compares with > as
    # sk_acceptq_is_full does
    P[L.P_REQQ_GT] = 1 if kv >= (6, 13) else 0
    # "tcp: add four drop reasons to tcp_check_req()" (6.15) named TCP_LISTEN_OVERFLOW; before,
    # tcp_v4_rcv's discard_and_relse freed the ACK as NOT_SPECIFIED. A cookie's ACK refused for
    # a full accept queue: cookie_v4_check's out_drop with NO_SOCKET ([UNSURE: the release]
    # taken as 6.8, when cookie_v4_check took drop reasons; NOT_SPECIFIED before)
    P[L.P_R_LOVF] = L.R_TCP_LISTEN_OVERFLOW if kv >= (6, 15) else L.R_NOTSPEC
    P[L.P_R_CKOVF] = L.R_NOSOCK if kv >= (6, 8) else L.R_NOTSPEC
    # tcp_try_rmem_schedule's trigger: 1d2fbaad7cd8 "tcp: stronger sk_rcvbuf checks" (6.17:
    # rmem + truesize), its fix to skb->len (6.18), and its revert 026dfef287c0 (7.0: back to
    # rmem <= rcvbuf)
    if kv >= (7, 0) or kv < (6, 17):
        P[L.P_RMEM_RULE] = L.RMEM_CLASSIC
    else:
        P[L.P_RMEM_RULE] = L.RMEM_TRUESIZE if kv < (6, 18) else L.RMEM_LEN


def _reassembly_state(P: np.ndarray, cfg: dict[str, Any], frg: Any, nfrag: int, n: int, hz: int
                      ) -> tuple[np.ndarray, np.ndarray]:
    """The reassembly queues (one row per key) and their globals, with the sysctls in P."""
    sc = cfg["sysctl"]
    P[L.P_FRAG_HI4] = sc["net.ipv4.ipfrag_high_thresh"]
    P[L.P_FRAG_HI6] = sc["net.ipv6.ip6frag_high_thresh"]
    P[L.P_FRAG_T4] = sc["net.ipv4.ipfrag_time"] * hz  # proc_dointvec_jiffies: seconds x HZ
    P[L.P_FRAG_T6] = sc["net.ipv6.ip6frag_time"] * hz
    P[L.P_FRAG_DIST] = sc["net.ipv4.ipfrag_max_dist"]
    # f->qsize = sizeof(struct ipq): "A 64K fragment consumes 129736 bytes (44*2944)+200 ...
    # sizeof(struct ipq) == 200" (ip_fragment.c, ipv4_frags_init_net); frag_queue alike
    P[L.P_FRAG_QSIZE] = 200
    P[L.P_FX_FIFO0] = L.FX_PEER0 + frg.npeers
    P[L.P_FX_NEXT0] = P[L.P_FX_FIFO0] + 4 * (nfrag + 1)
    fx = np.zeros(int(P[L.P_FX_NEXT0]) + n, np.int64)
    fx[int(P[L.P_FX_NEXT0]):] = -1
    fq = np.zeros((max(frg.nkeys, 1), L.N_FQ), np.int64)
    fq[:, L.FQ_HEAD] = -1
    fq[:, L.FQ_FIRST] = -1
    fq[: frg.nkeys, L.FQ_V6] = frg.v6_of_key
    return fq, fx


def _views(arrays: dict[str, np.ndarray]) -> Any:
    """The engine's packed arrays as named 1-D views (pk/po columns), for building tables."""
    from types import SimpleNamespace

    v = SimpleNamespace(**arrays)
    for j, name in enumerate(L.PK_FIELDS):
        setattr(v, name, v.pk[:, j])
    for j, name in enumerate(L.PO_FIELDS):
        setattr(v, name, v.po[:, j])
    v.nrows = v.misc[L.M_NROWS : L.M_NROWS + 1]
    v.nev = v.misc[L.M_NEV : L.M_NEV + 1]
    return v


def _release_packet_arrays(S: Any, arrays: dict[str, Any], names: tuple[str, ...]) -> None:
    for name in names:
        if hasattr(S, name):
            delattr(S, name)
        arrays.pop(name, None)


def _packets_table(S: Any, que: np.ndarray, flow: np.ndarray, fidx: np.ndarray, loop: np.ndarray,
                   t_wire_all: np.ndarray, rxmask: np.ndarray, ridx: np.ndarray) -> pa.Table:
    m = len(fidx)
    o = packet_columns(S, que, rxmask, t_wire_all, ridx)
    small, codes, sok, t3, t3ok = o["small"], o["codes"], o["small_ok"], o["t3"], o["t3_ok"]
    rx = rxmask.astype(np.bool_, copy=False)
    cols_out: dict[str, pa.Array] = {
        "frame": arrow((fidx + 1).astype(np.uint64)),
        "flow": arrow(_flows(S, flow, fidx, rxmask, ridx)),
        "queue": arrow(small[0], sok[0]),
        "cpu": arrow(small[1], sok[1]),
        "loop": arrow(loop.astype(np.uint32)),
        "pkt": arrow(np.arange(1, m + 1, dtype=np.uint64)),
        "outcome": dict_array(codes[0], OUTCOMES),
        "app": arrow(small[2], sok[2]),
        "skb": arrow(o["skb"], rx),
        "t_wire": arrow(t3[0], t3ok[0]),
        "t_irq": arrow(t3[1], t3ok[1]),
        "t_poll": arrow(t3[2], t3ok[2]),
        "t_done": arrow(o["t_done"], rx),
        "drop_stage": dict_array(codes[1], STAGE_IDS, sok[4]),
        "drop_reason": dict_array(codes[2], L.DROP_REASONS, sok[5]),
    }
    for st, sid in enumerate(STAGE_IDS):
        cols_out[f"wait_{sid}"] = arrow(o["wait"][st], o["on"][st])
        cols_out[f"cpu_{sid}"] = arrow(o["cpu"][st], o["on"][st])
    return pa.Table.from_arrays([cols_out[f.name] for f in PACKETS_SCHEMA], schema=PACKETS_SCHEMA)


def _flows(S: Any, flows: np.ndarray, fidx: np.ndarray, rxmask: np.ndarray, ridx: np.ndarray
           ) -> np.ndarray:
    """Each packet's flow; a reassembled datagram's is its first fragment's (later ones have no
    ports)."""
    flow = flows[fidx]
    fh = S.fhead
    sel = fh >= 0
    if sel.any():
        frx = flow[rxmask]
        frx[sel] = flows[ridx[fh[sel]]]
        flow[rxmask] = frx
    return flow


def _split_categories(r: np.ndarray, st_idx: np.ndarray, cats: list[str],
                      splits: dict[str, dict[str, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Rows of a stage the profile gives a category split for (a calibrated profile's
    [categories]: the share of each Cai et al. category among the leaf symbols perf sampled in
    that stage) become one row per category, ns shared out exactly (remainder to the largest),
    frames kept on the first. Returns (rows, category index per row)."""
    slot = r[:, 5]
    out_rows: list[np.ndarray] = []
    out_cat: list[np.ndarray] = []
    keep = np.ones(len(r), dtype=bool)
    for sid, shares in splits.items():
        if sid not in STAGE_IDS:
            continue
        tot = sum(float(v) for v in shares.values())
        if tot <= 0:
            continue
        names_ = sorted(shares, key=lambda k: -float(shares[k]))
        for n_ in names_:
            if n_ not in cats:
                cats.append(n_)
        frac = np.array([float(shares[k]) / tot for k in names_])
        m = st_idx[slot] == STAGE_IDS.index(sid) if len(slot) else np.zeros(0, bool)
        if not m.any():
            continue
        keep &= ~m
        sub = r[m]
        parts = np.floor(sub[:, 6:7] * frac[None, :]).astype(np.int64)
        parts[:, 0] += sub[:, 6] - parts.sum(axis=1)
        for j, n_ in enumerate(names_):
            rows = sub.copy()
            rows[:, 6] = parts[:, j]
            if j > 0:
                rows[:, 7] = 0
            nz = rows[:, 6] != 0 if j > 0 else np.ones(len(rows), bool)
            out_rows.append(rows[nz])
            out_cat.append(np.full(int(nz.sum()), cats.index(n_)))
    return (np.concatenate([r[keep], *out_rows]) if out_rows else r,
            np.concatenate([np.full(int(keep.sum()), -1), *out_cat]) if out_rows
            else np.full(len(r), -1))


def _cpu_table(S: Any, names: dict[str, str], comms: list[str], apps: list[dict[str, Any]],
               ncpu: int, splits: dict[str, dict[str, float]] | None = None) -> pa.Table:
    r = S.rows[:, : S.nrows[0]]  # (field, row): each field is a contiguous column
    slots = [(sym.format(recv_symbol="udp_recvmsg", consume_symbol="skb_consume_udp", **names),
              stage, cat) for sym, stage, cat in L.SLOTS]
    # a TCP reader's system call is tcp_recvmsg, and the skb it has read is freed by sk_eat_skb
    # (__kfree_skb); the slot table names the UDP ones (udp_recvmsg, skb_consume_udp)
    tcp_syms = ("tcp_recvmsg", "__kfree_skb")
    sym_names = sorted({s for s, _, _ in slots} | set(tcp_syms))
    sym_idx = np.array([sym_names.index(s) for s, _, _ in slots])
    stage_names = list(STAGE_IDS)
    st_idx = np.array([stage_names.index(st) if st else -1 for _, st, _ in slots])
    cats = sorted({c for _, _, c in slots})
    cat_idx = np.array([cats.index(c) for _, _, c in slots])
    rcat = None
    if splits:
        # calibrated per-stage category splits (replay calibrate) cut rows in row-major form
        rr, rcat = _split_categories(np.ascontiguousarray(r.T), st_idx, cats, splits)
        r = np.ascontiguousarray(rr.T)
    slot = r[5]
    cat_of = cat_idx[slot] if len(slot) else slot
    if rcat is not None:
        cat_of = np.where(rcat >= 0, rcat, cat_of)
    sym_of = sym_idx[slot] if len(slot) else slot
    tcp_apps = [i for i in range(len(apps)) if S.ss[i, L.SS_PROTO] == 6]
    if tcp_apps and len(slot):
        tcp_comm = np.isin(r[4], np.array(tcp_apps) + 2 * ncpu)
        recv = tcp_comm & ((slot == L.Y_RECV) | (slot == L.Y_RECV_IDLE))
        sym_of = np.where(recv, sym_names.index(tcp_syms[0]), sym_of)
        sym_of = np.where(tcp_comm & (slot == L.Y_CONSUME), sym_names.index(tcp_syms[1]), sym_of)
    dsos = ["[kernel.kallsyms]"] + [str(a["name"]) for a in apps]
    is_app = (slot == L.Y_APP) | (slot == L.Y_APP_ACCEPT)
    dso = np.where(is_app, r[4] - 2 * ncpu + 1, 0)
    stv = st_idx[slot] if len(slot) else np.zeros(0, np.int64)
    arrays = [
        arrow(r[0].astype(np.uint16)),
        arrow(r[1]),
        arrow(r[2]),
        dict_array(r[3], L.CTX_NAMES),
        dict_array(r[4], comms),
        dict_array(dso, dsos),
        dict_array(sym_of, sym_names),
        dict_array(np.where(stv >= 0, stv, 0), stage_names, stv >= 0),
        dict_array(cat_of, cats),
        arrow(r[6]),
        arrow(r[7].astype(np.uint32)),
    ]
    return pa.Table.from_arrays(arrays, schema=CPU_SCHEMA)


def _events_table(S: Any) -> pa.Table:
    e = S.ev[: S.nev[0]]
    order = np.lexsort((np.arange(len(e)), e[:, 0]))
    e = e[order]
    endv = e[:, 1] >= 0
    cv = e[:, 2] >= 0
    qv = e[:, 3] >= 0
    arrays = [
        pa.array(e[:, 0]),
        pa.array(np.where(endv, e[:, 1], 0), mask=~endv),
        pa.array(np.where(cv, e[:, 2], 0).astype(np.int16), mask=~cv),
        pa.array(np.where(qv, e[:, 3], 0).astype(np.int16), mask=~qv),
        dict_array(e[:, 4], L.EV_KINDS),
        pa.array(e[:, 5]),
        dict_array(e[:, 6], L.EV_DETAILS, e[:, 6] != L.D_NONE),
    ]
    return pa.Table.from_arrays(arrays, schema=EVENTS_SCHEMA)


def _ethtool(drv: Driver, qs: np.ndarray, nq: int, cs: np.ndarray | None = None,
             hwagg: int = 0, core_dropped: int = 0) -> dict[str, int]:
    """`ethtool -S` with the driver's own names (KERNEL.md §7); the aggregation counters when
    LRO is on (the drivers list them always; the model adds them with the feature).
    core_dropped: the device's core_stats rx_dropped (enqueue_to_backlog and
    __netif_receive_skb_core's no-handler drops, dev_core_stats_rx_dropped_inc)."""
    rx_packets = int(qs[:nq, L.QS_ACCEPTED].sum())
    rx_bytes = int(qs[:nq, L.QS_BYTES].sum())
    missed = int(qs[:nq, L.QS_MISSED_DROP].sum())
    out: dict[str, int]
    if drv.name == "veth":
        # the peer's link statistics, as `replay real` records them: enqueue_to_backlog drops
        # count in rx_dropped (dev_core_stats_rx_dropped_inc)
        dropped = int(cs[:, L.CS_DROPPED].sum()) if cs is not None else 0
        return {"rx_packets": rx_packets, "rx_bytes": rx_bytes, "rx_dropped": dropped}
    if drv.name == "mlx5":
        out = {"rx_packets": rx_packets, "rx_bytes": rx_bytes, "rx_out_of_buffer": missed}
        if hwagg == L.HWA_SHAMPO:
            # mlx5e_shampo_flush_skb: skbs of count > 1, their count, data_len + headlen * count
            out["rx_gro_packets"] = int(qs[:nq, L.QS_HW_AGG].sum())
            out["rx_gro_bytes"] = int(qs[:nq, L.QS_HW_BYTES].sum())
            out["rx_gro_skbs"] = int(qs[:nq, L.QS_HW_FLUSH].sum())
        elif hwagg:
            # mlx5e_build_rx_skb: lro_num_seg > 1 -> lro_packets++, lro_bytes += cqe_bcnt
            out["rx_lro_packets"] = int(qs[:nq, L.QS_HW_FLUSH].sum())
            out["rx_lro_bytes"] = int(qs[:nq, L.QS_HW_BYTES].sum())
        for q in range(nq):
            out[f"rx{q}_packets"] = int(qs[q, L.QS_ACCEPTED])
            out[f"rx{q}_bytes"] = int(qs[q, L.QS_BYTES])
        for q in range(nq):
            out[f"ch{q}_events"] = int(qs[q, L.QS_IRQS])
            out[f"ch{q}_poll"] = int(qs[q, L.QS_POLLS])
            out[f"ch{q}_arm"] = int(qs[q, L.QS_ARMS])
        return out
    if drv.name == "i40e":
        out = {"rx_packets": rx_packets, "rx_bytes": rx_bytes, "rx_missed_errors": missed}
        for q in range(nq):
            out[f"rx-{q}.packets"] = int(qs[q, L.QS_ACCEPTED])
            out[f"rx-{q}.bytes"] = int(qs[q, L.QS_BYTES])
        return out
    # ixgbe's "rx_dropped" is IXGBE_NETDEV_STAT(rx_dropped) of dev_get_stats()
    # (ixgbe_get_ethtool_stats), which adds the core_stats rx_dropped (net/core/dev.c)
    out = {"rx_packets": rx_packets, "rx_bytes": rx_bytes, "rx_dropped": core_dropped,
           "rx_missed_errors": missed, "rx_no_dma_resources": 0}
    if hwagg:
        # ixgbe_update_rsc_stats: rsc_count += append_cnt, rsc_flush++ per RSC skb; ethtool's
        # hw_rsc_aggregated / hw_rsc_flushed (ixgbe_ethtool.c)
        out["hw_rsc_aggregated"] = int(qs[:nq, L.QS_HW_AGG].sum())
        out["hw_rsc_flushed"] = int(qs[:nq, L.QS_HW_FLUSH].sum())
    for q in range(nq):
        out[f"rx_queue_{q}_packets"] = int(qs[q, L.QS_ACCEPTED])
        out[f"rx_queue_{q}_bytes"] = int(qs[q, L.QS_BYTES])
    return out


def _icmp_types(frames: pa.Table, ridx: np.ndarray) -> np.ndarray | None:
    """The ICMP/ICMPv6 type of each received packet (-1: none), from the frames' icmp_type."""
    if "icmp_type" not in frames.column_names:
        return None
    col = frames["icmp_type"].combine_chunks()
    if col.null_count == len(col):
        return None
    t = np.asarray(col.fill_null(255).to_numpy(zero_copy_only=False), np.int16)
    t[np.asarray(col.is_null())] = -1
    # a fragmented message reaches icmp_rcv once, reassembled, with the first fragment's type,
    # whichever fragment completed it: every fragment of the datagram (same addresses, protocol
    # and IP ID: ip4_frag_match / ip6_frag_match) takes the first fragment's type
    proto = np.asarray(frames["proto"].combine_chunks().fill_null(0).to_numpy(zero_copy_only=False))
    frag = np.asarray(frames["frag"].combine_chunks().to_numpy(zero_copy_only=False))
    fi = np.flatnonzero((frag != 0) & ((proto == 1) | (proto == 58)))
    if fi.size:
        src, dst = frames["src"].take(fi).to_pylist(), frames["dst"].take(fi).to_pylist()
        ipid = frames["ip_id"].take(fi).to_pylist()
        keys = [(a, b, int(proto[i]), d) for a, b, i, d in zip(src, dst, fi, ipid, strict=True)]
        first = {k: int(t[i]) for k, i in zip(keys, fi, strict=True) if frag[i] == 1}
        for k, i in zip(keys, fi, strict=True):
            if frag[i] == 2:
                t[i] = first.get(k, -1)
    return t[ridx]


def _icmp_type_counts(S: Any, itype: np.ndarray | None, v6: np.ndarray
                      ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Per IP version, the ICMP messages of each type icmp_rcv / icmpv6_rcv took: GRO heads that
    reached the l4 stage as ICMP (ICMPMSGIN_INC_STATS, ICMP6MSGIN_INC_STATS)."""
    if itype is None:
        return None, None
    cand = np.flatnonzero(itype >= 0)
    k = S.pk[cand, L.F_KIND]
    ok = (S.po[cand, L.O_SKBH] == cand) & (S.se[cand, L.S_L4] >= 0) & (
        (k == L.K_ICMP) | (k == L.K_ICMP_ECHO) | (k == L.K_ICMP_PING))
    sel = cand[ok]
    is6 = v6[sel].astype(bool)
    return (np.bincount(itype[sel[~is6]], minlength=256).astype(np.int64),
            np.bincount(itype[sel[is6]], minlength=256).astype(np.int64))


def _counters(S: Any, cfg: dict[str, Any], drv: Driver, pre: _Prepared, nq: int, ncpu: int,
              itype: np.ndarray | None = None) -> dict[str, Any]:
    cs, qs, fx = S.cs, S.qs, S.fx
    softnet = [
        {"cpu": c, "processed": int(cs[c, L.CS_PROCESSED]), "dropped": int(cs[c, L.CS_DROPPED]),
         "time_squeeze": int(cs[c, L.CS_SQUEEZE]), "received_rps": int(cs[c, L.CS_RPS_RECV]),
         "flow_limit_count": int(cs[c, L.CS_FL_COUNT])}
        for c in range(ncpu)
    ]
    interrupts = {}
    veth = drv.name == "veth"
    for q in range(0 if veth else nq):  # veth raises no interrupt
        row = [0] * ncpu
        row[int(qs[q, L.QS_CPU])] = int(qs[q, L.QS_IRQS])
        interrupts[drv.irq_name.format(q=q)] = row
    napi = [
        {"queue": q, "cpu": int(qs[q, L.QS_CPU]), "irqs": int(qs[q, L.QS_IRQS]),
         "polls": int(qs[q, L.QS_POLLS]), "arms": int(qs[q, L.QS_ARMS]),
         "packets": int(qs[q, L.QS_PKTS]), "budget_exhausted": int(qs[q, L.QS_BEXH]),
         "timers": int(qs[q, L.QS_TIMERS])}
        for q in range(0 if veth and S.P[L.P_VETH] != 2 else nq)  # veth: its NAPI only with GRO
    ]
    # SNMP from the per-skb outcomes, split by IP version as /proc/net/snmp and snmp6 are
    # (one compiled pass over the packets: model/snmpcount.py)
    from replay.model import snmpcount as T  # noqa: N812

    cnt = T.tally(S.pk, S.po, S.se, S.kind0, pre.v6, pre.tcp_rst_ok)

    def c4(k: int) -> int:
        return int(cnt[0, k])

    def c6(k: int) -> int:
        return int(cnt[1, k])

    def both(k: int) -> int:
        return int(cnt[0, k] + cnt[1, k])

    # tcp_v4_send_reset for a segment no socket takes, unless it is a RST itself (OutRsts and
    # OutSegs); ACKs sent on the receive path come from the engine (all IPv4-counted: the snmp6
    # file has no Tcp6 block, TCP counters are shared between v4 and v6 in /proc/net/snmp);
    # a listener's refused cookie ACK is NO_SOCKET without a RST
    tl = S.misc[L.M_TCPL : L.M_TCPL + 16].tolist()
    n_rst = both(T.RST) + int(tl[L.TL_RST])
    # ACKs of the receive path, SYN-ACKs (first and retransmitted), window updates from recvmsg
    outsegs = int(S.misc[L.M_TCPIN + 4]) + int(tl[L.TL_SYNACK]) + int(tl[L.TL_SYNRETR]) \
        + int(tl[L.TL_RBUF_ACK])
    # a decapsulated packet passes ip_rcv and ip_local_deliver twice (outer, inner), and a UDP
    # tunnel's outer datagram counts Udp InDatagrams when encap_rcv takes it
    # (udp_queue_rcv_one_skb: "if (ret <= 0) ... UDP_MIB_INDATAGRAMS"); the inner IP version is
    # taken as the outer's (the frames table does not carry it); an inner ARP never reaches
    # ip_rcv
    snmp = {
        "Ip": {"InReceives": c4(T.AT_IP) + c4(T.DECAP), "InHdrErrors": c4(T.INHDR),
               "InAddrErrors": c4(T.INADDR),
               "InUnknownProtos": c4(T.NOPROTO), "InDelivers": c4(T.DELIV_L4) + c4(T.DECAP),
               "ReasmTimeout": int(fx[L.FX_TMO4]),
               "ReasmReqds": int(fx[L.FX_REQ4]), "ReasmOKs": int(fx[L.FX_OK4]),
               "ReasmFails": int(fx[L.FX_FAIL4])},
        "IpExt": {"InTruncatedPkts": c4(T.TRUNC), "ReasmOverlaps": int(fx[L.FX_OVL4])},
        "Udp": {"InDatagrams": c4(T.READ_UDP) + c4(T.UDP_TUN), "NoPorts": c4(T.NOPORTS),
                "InErrors": c4(T.RCVBUF_UDP), "RcvbufErrors": c4(T.RCVBUF_UDP), "MemErrors": 0,
                "IgnoredMulti": c4(T.IGNORED_MULTI)},
        # TCP_MIB_* are one set for IPv4 and IPv6 (/proc/net/snmp6 has no Tcp6 lines)
        "Tcp": {"InSegs": both(T.TCP_IN), "OutSegs": outsegs + n_rst, "InErrs": both(T.TCP_ERR),
                "OutRsts": n_rst, "RetransSegs": int(tl[L.TL_SYNRETR])},
        "TcpExt": {"DelayedACKs": int(S.misc[L.M_TCPIN + 5]),
                   "TCPRcvQDrop": both(T.PROTOMEM),
                   "TCPOFOQueue": int(S.misc[L.M_TCPX + 0]),
                   "TCPOFODrop": int(S.misc[L.M_TCPX + 1]),
                   "TCPOFOMerge": int(S.misc[L.M_TCPX + 2]),
                   "DelayedACKLost": int(S.misc[L.M_TCPX + 3]),
                   "TCPDSACKOldSent": int(S.misc[L.M_TCPX + 4]),
                   "TCPDSACKOfoSent": int(S.misc[L.M_TCPX + 5]),
                   "TCPZeroWindowDrop": int(S.misc[L.M_TCPX + 6]),
                   "TCPBacklogDrop": int(S.misc[L.M_TCPX + 7]),
                   # listen sockets (tcp_conn_request, tcp_check_req, cookie_v4_check)
                   "ListenOverflows": int(tl[L.TL_OVF]), "ListenDrops": int(tl[L.TL_DROPS]),
                   "SyncookiesSent": int(tl[L.TL_CK_SENT]),
                   "SyncookiesRecv": int(tl[L.TL_CK_RECV]),
                   "SyncookiesFailed": int(tl[L.TL_CK_FAIL]),
                   "TCPReqQFullDoCookies": int(tl[L.TL_QF_COOKIE]),
                   "TCPReqQFullDrop": int(tl[L.TL_QF_DROP]),
                   "TCPSynRetrans": int(tl[L.TL_SYNRETR]), "EmbryonicRsts": int(tl[L.TL_EMBRST]),
                   # tcp_prune_queue, tcp_collapse, tcp_prune_ofo_queue
                   "PruneCalled": int(tl[L.TL_PRUNE]), "RcvPruned": int(tl[L.TL_RCVPRUNED]),
                   "OfoPruned": int(tl[L.TL_OFOPRUNED]),
                   "TCPRcvCollapsed": int(tl[L.TL_COLLAPSED]),
                   # LINUX_MIB_BUSYPOLLRXPACKETS: __napi_busy_loop adds each poll's work
                   "BusyPollRxPackets": int(qs[:nq, L.QS_BPRX].sum())},
    }
    if kernel_version(cfg) >= (6, 17):
        # LINUX_MIB_BEYOND_WINDOW (6c758062c64d, 6.17): tcp_validate_incoming's
        # TCP_INVALID_SEQUENCE and TCP_INVALID_END_SEQUENCE drops
        snmp["TcpExt"]["BeyondWindow"] = int(S.misc[L.M_TCPX + 8])
    # icmp_rcv / icmpv6_rcv count every ICMP message they take (InMsgs, then per type); the
    # replies and errors sent come from the engine's ICMP output (model/icmp.py)
    types4, types6 = _icmp_type_counts(S, itype, pre.v6)
    icmp4, icmpmsg, icmp6 = icmp_counters(S.misc, kernel_version(cfg), c4(T.ICMP_IN),
                                          c6(T.ICMP_IN), c4(T.ECHO_IN), c6(T.ECHO_IN),
                                          types4, types6)
    snmp["Icmp"] = icmp4
    if icmpmsg:
        snmp["IcmpMsg"] = icmpmsg
    snmp6 = {
        "Ip6InReceives": c6(T.AT_IP) + c6(T.DECAP),
        "Ip6InDelivers": c6(T.DELIV_L4) + c6(T.DECAP),
        "Ip6InHdrErrors": c6(T.INHDR), "Ip6InAddrErrors": c6(T.INADDR),
        "Ip6InUnknownProtos": c6(T.NOPROTO),
        "Ip6InTruncatedPkts": c6(T.TRUNC),
        "Ip6ReasmTimeout": int(fx[L.FX_TMO6]), "Ip6ReasmReqds": int(fx[L.FX_REQ6]),
        "Ip6ReasmOKs": int(fx[L.FX_OK6]), "Ip6ReasmFails": int(fx[L.FX_FAIL6]),
        "Udp6InDatagrams": c6(T.READ_UDP) + c6(T.UDP_TUN), "Udp6NoPorts": c6(T.NOPORTS),
        "Udp6InErrors": c6(T.RCVBUF_CSUM_UDP), "Udp6RcvbufErrors": c6(T.RCVBUF_UDP),
        "Udp6InCsumErrors": c6(T.CSUMERR_UDP), "Udp6MemErrors": 0,
        "Udp6IgnoredMulti": c6(T.IGNORED_MULTI),
        **icmp6,
    }
    return {
        "softnet_stat": softnet,
        "softirqs": {"NET_RX": [int(cs[c, L.CS_NETRX]) for c in range(ncpu)]},
        "interrupts": interrupts,
        "ethtool": _ethtool(drv, qs, nq, cs, int(S.P[L.P_HWAGG]),
                            int(cs[:, L.CS_DROPPED].sum())
                            + int(np.count_nonzero(S.po[:, L.O_DREASON] == L.R_UNHANDLED))),
        "napi": napi,
        "snmp": snmp,
        "snmp6": snmp6,
        "model": {
            "time_squeeze_budget": [int(cs[c, L.CS_SQ_BUDGET]) for c in range(ncpu)],
            "time_squeeze_time": [int(cs[c, L.CS_SQ_TIME]) for c in range(ncpu)],
            "ksoftirqd_wakeups": [int(cs[c, L.CS_KS_WAKES]) for c in range(ncpu)],
            # skb_attempt_defer_free: skbs put on each CPU's defer list, IPIs that kicked it
            "skb_deferred": [int(cs[c, L.CS_DEFERRED]) for c in range(ncpu)],
            "skb_defer_kicks": [int(cs[c, L.CS_DEFER_KICKS]) for c in range(ncpu)],
            "gro_skbs": both(T.HEADS),
            "gro_segments": pre.n,
            "socket_max_queue": [int(x) for x in S.ss[:, L.SS_MAXQ]],
            # the backlog NAPI of each CPU (process_backlog): polls and packets
            "backlog_polls": [int(qs[nq + c, L.QS_POLLS]) for c in range(ncpu)],
            "backlog_packets": [int(qs[nq + c, L.QS_PKTS]) for c in range(ncpu)],
        },
    }


def _summary(S: Any, packets: pa.Table, frames: int, ncpu: int) -> dict[str, Any]:
    import polars as pl

    df = pl.from_arrow(packets.select(["outcome", "drop_stage", "drop_reason", "t_wire", "t_done"]))
    assert isinstance(df, pl.DataFrame)
    outc = {o: 0 for o in OUTCOMES}
    for row in df.group_by("outcome").len().iter_rows():
        outc[str(row[0])] = int(row[1])
    drops = (
        df.filter(pl.col("outcome") == "dropped")
        .group_by(["drop_stage", "drop_reason"]).len()
        .sort(["len", "drop_stage", "drop_reason"], descending=[True, False, False])
    )
    lat = df.filter(pl.col("outcome") == "delivered").select(
        (pl.col("t_done") - pl.col("t_wire")).alias("lat"))["lat"]
    if len(lat):
        latency = {
            "count": len(lat), "mean": round(float(lat.mean())),  # type: ignore[arg-type]
            **{k: int(lat.quantile(qv, "nearest")) for k, qv in  # type: ignore[arg-type]
               (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p999", 0.999))},
            "max": int(lat.max()),  # type: ignore[arg-type]
        }
    else:
        latency = {"count": 0, "mean": 0, "p50": 0, "p90": 0, "p99": 0, "p999": 0, "max": 0}
    dur = df.select(pl.col("t_done").max()).item()
    return {
        "frames": frames,
        "packets": packets.num_rows,
        "received": packets.num_rows - outc["ignored"],
        "outcomes": outc,
        "drops": [{"stage": str(s), "reason": str(r), "count": int(c)} for s, r, c in drops.iter_rows()],
        "latency_ns": latency,
        "duration_ns": int(dur or 0),
        "cpu_busy_ns": [int(x) for x in S.cs[:, L.CS_BUSY]],
    }


__all__ = ["SimResult", "addr_text", "simulate"]
