"""Frames + resolved config + cost profile + replay options → the run's tables and counters.

Prepares the engine's columns (wire times, RSS queue, packet kind, socket), runs the compiled
engine, and turns its arrays into the run directory's Arrow tables (store/schema.py) and the
kernel-style counters of run.json (DESIGN.md "Run directory").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from replay.errors import RunError
from replay.model import engine
from replay.model import layout as L  # noqa: N812 (the engine's slot table, read as L.X)
from replay.model.classify import (
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
from replay.model.config import kernel_version
from replay.model.costs import cost_vectors
from replay.model.drivers import DRIVERS, Driver, parse_speed
from replay.model.rss import hash_frames, indirection_table, key_bytes, queue_of
from replay.model.stages import OUTCOMES, STAGE_IDS
from replay.model.state import new_state, set_buffers
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


def _truesize(driver: Driver, wire_len: np.ndarray) -> np.ndarray:
    """skb->truesize of a received frame as the driver builds it (KERNEL.md §7 modelling tip).

    ixgbe/i40e build_skb around a half page: SKB_TRUESIZE(2048 - 320) = 2304. mlx5 builds a
    linear skb of MLX5_SKB_FRAG_SZ(headroom 256 + len): SKB_DATA_ALIGN(256 + len) + 256 + 320.
    """
    if driver.name == "mlx5":
        return ((256 + wire_len + 63) // 64 * 64 + 256 + 320).astype(np.int64)
    return np.full(len(wire_len), 2304, dtype=np.int64)


def _usecs_to_jiffies(us: int, hz: int) -> int:
    return max(1, math.ceil(us * hz / 1_000_000))


def _msecs_to_jiffies(ms: int, hz: int) -> int:
    return max(1, math.ceil(ms * hz / 1000))


def base_slice_ns(ncpus: int) -> int:
    """EEVDF sysctl_sched_base_slice 0.75 ms x (1 + ilog2(min(ncpus, 8))) (SCHED_TUNABLESCALING_LOG)."""
    return 750_000 * (1 + int(math.log2(min(ncpus, 8))))


def simulate(frames: pa.Table, cfg: dict[str, Any], profile: dict[str, Any],
             opts: ReplayOptions) -> SimResult:
    notes: list[str] = []
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
            a.setdefault("rcvbuf", cfg["sysctl"]["net.core.rmem_default"])
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
    indir = indirection_table(drv.rss_table, nq)
    fqueue = queue_of(hashes, indir)

    fkind = kinds(cols)
    fsock = sockets(cols, apps, int(cfg["host"]["ehash-secret"]))
    frg = fragments(cols, fkind)
    fcsum = ip_summed(cols, drv.rx_csum, bool(cfg["nic"]["rx-checksumming"]))
    conn = np.array([bool(a.get("connected")) for a in apps] + [False], dtype=bool)
    demux = (fkind == L.K_UDP) & (cols.frag == 0) & conn[fsock]  # fsock -1 -> the False pad
    # IPv6 extension-header bytes (ip_hlen counts them and the fragment header, 8 bytes)
    ext = np.where(v6, np.maximum(cols.ip_hlen - 40 - np.where(cols.frag != 0, 8, 0), 0), 0)
    # ip_hlen is a uint8 that saturates at 255: past that, what an Ethernet frame leaves around
    # the IPv6 header, transport header and payload (the frames table keeps no longer length)
    from replay.model.classify import _l4_header_len

    eth = 14 + np.where(np.asarray(frames["vlan"].is_valid()), 4, 0) if cols.n else 0
    big_ext = cols.wire_len - eth - 40 - _l4_header_len(cols) - cols.payload_len
    ext = np.where(v6 & (cols.ip_hlen >= 255) & (frames["linktype"].to_numpy() == 1)
                   & (cols.frag == 0), np.maximum(big_ext, ext), ext)
    ftun, fikind, fisock, filen = tunnels(cols, fkind, list(cfg.get("tunnel", [])), apps,
                                          int(cfg["host"]["ehash-secret"]))

    # ---- the wire
    fidx, loop, t_wire_all = schedule(cols.ts_ns, cols.wire_len, hv.received, opts, speed)
    rxmask = t_wire_all >= 0
    ridx = fidx[rxmask]  # frame index of each received packet, in arrival order
    n = len(ridx)
    dma = int(cost_vectors(profile, None)[0][L.L_DMA])
    t_wire = t_wire_all[rxmask]

    gro_ok = (cols.proto == 6) & cols.has_ports & (cols.frag == 0) & (
        v6 | ((cols.ip_version == 4) & (cols.ip_hlen == 20))
    )
    # UDP_GRO sockets: udp_gro_receive_segment needs a non-zero checksum ("for symmetry with GSO")
    ugro = np.array([bool(a.get("udp-gro")) for a in apps] + [False], dtype=bool)
    gro_ok |= (cols.proto == 17) & cols.has_ports & (cols.frag == 0) & ~cols.csum_zero & (
        v6 | ((cols.ip_version == 4) & (cols.ip_hlen == 20))) & ugro[fsock] & (fkind == L.K_UDP)
    hdr = np.where(v6, 40, cols.ip_hlen) + np.where(cols.proto == 17, 8, cols.tcp_hlen)
    ts = _truesize(drv, cols.wire_len)

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
    P[L.P_BATCH] = cfg["sysctl"]["net.core.gro_normal_batch"]
    P[L.P_GRO] = 1 if cfg["nic"]["gro"] else 0
    P[L.P_TICK] = 1_000_000_000 // hz
    P[L.P_PHASE] = cfg["host"]["tick-phase-ns"]
    P[L.P_MOD] = drv.moderation
    if drv.name == "mlx5" and not cfg["nic"]["rx-cqe-moder"]:
        from replay.model.drivers import MOD_MLX5_EQE

        P[L.P_MOD] = MOD_MLX5_EQE
    P[L.P_USECS] = int(cfg["nic"]["rx-usecs"]) * 1000
    P[L.P_FRAMES] = int(cfg["nic"]["rx-frames"])
    P[L.P_GOTO_START] = 1 if kv >= (6, 4) else 0
    P[L.P_INLINE_ALWAYS] = 1 if kv >= (6, 5) else 0
    P[L.P_UDP618] = 1 if kv >= (6, 18) else 0
    P[L.P_SOFTIRQ_J] = _msecs_to_jiffies(2, hz)  # MAX_SOFTIRQ_TIME (softirq.c:543)
    P[L.P_HZ1000] = 1 if hz >= 1000 else 0
    P[L.P_GRO_MAX] = 65536  # GRO_LEGACY_MAX_SIZE
    nf_drop = bool(cfg["netfilter"]["prerouting-drop"])
    P[L.P_NF_PRE] = max(int(cfg["netfilter"]["prerouting"]), 1 if nf_drop else 0)
    P[L.P_NF_DROP] = 1 if nf_drop else 0
    P[L.P_NF_IN] = cfg["netfilter"]["input"]
    P[L.P_CONNTRACK] = 1 if cfg["netfilter"]["conntrack"] else 0
    P[L.P_SLICE] = base_slice_ns(ncpu)
    P[L.P_CEXIT] = int(cfg["host"]["cstate-exit-ns"])
    P[L.P_GRO_FT] = int(cfg["sysfs"]["gro_flush_timeout"])
    P[L.P_DEFER] = int(cfg["sysfs"]["napi_defer_hard_irqs"])
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
    nthr = len(thr_app)
    P[L.P_NSOCK] = nsock
    P[L.P_NTHR] = nthr

    # a decapsulated packet is for its inner socket (the socket queues are sized by this)
    psock = np.where(ftun != L.TUN_NONE, fisock, fsock)[ridx]
    ss = np.zeros((max(nsock, 1), L.N_SS), dtype=np.int64)
    qcaps = []
    for s, a in enumerate(apps):
        mine = psock == s
        mts = int(ts[ridx][mine].min()) if mine.any() else 2304
        cap = int(min(mine.sum() + 2, int(a["rcvbuf"]) // max(256, mts) + 8))
        qcaps.append(max(cap, 2))
        ss[s, L.SS_RCVBUF] = int(a["rcvbuf"])
        ss[s, L.SS_PROTO] = 6 if str(a["match"]).strip().lower().startswith("tcp") else 17
    qoff = np.concatenate([[0], np.cumsum(qcaps)]).astype(np.int64) if qcaps else np.zeros(1, np.int64)
    for s in range(nsock):
        ss[s, L.SS_QOFF] = qoff[s]
        ss[s, L.SS_QCAP] = qcaps[s]
    tsa = np.zeros((max(nthr, 1), L.N_TS), dtype=np.int64)
    maxbatch = 1
    for k in range(nthr):
        a = apps[thr_app[k]]
        tsa[k, L.TS_CPU] = thr_cpu[k]
        tsa[k, L.TS_SOCK] = thr_app[k]
        tsa[k, L.TS_STATE] = L.T_SLEEP
        tsa[k, L.TS_BATCH] = int(a.get("batch", 1))
        tsa[k, L.TS_WORK] = int(a.get("work-ns", 0))
        tsa[k, L.TS_PHASE] = engine.TP_RETRY
        tsa[k, L.TS_APP] = thr_app[k]
        maxbatch = max(maxbatch, int(a.get("batch", 1)))
    wq = np.zeros((max(nsock, 1), max(nthr, 1)), dtype=np.int64)
    for k in range(nthr):
        s = thr_app[k]
        wq[s, ss[s, L.SS_WAITER]] = k
        ss[s, L.SS_WAITER] += 1

    qs = np.zeros((nq, L.N_QS), dtype=np.int64)
    aff = cfg["irq"]["affinity"]
    for q in range(nq):
        qs[q, L.QS_CPU] = (q % ncpu) if aff == "spread" else int(aff[q])
        qs[q, L.QS_IRQ_EN] = 1
        qs[q, L.QS_IRQ_T] = L.INF
        qs[q, L.QS_LAST_IRQ] = -(10**12)
    cs = np.zeros((ncpu, L.N_CS), dtype=np.int64)
    cs[:, L.CS_TASK] = -1
    cs[:, L.CS_NEXT] = L.INF
    cs[:, L.CS_POLLQ] = -1

    n_ent = 1 + nq + ncpu + nthr + nq  # arrivals, IRQ timers, CPUs, readers, NAPI hrtimers
    e_irq0, e_cpu0, e_thr0 = 1, 1 + nq, 1 + nq + ncpu
    ht = np.full(n_ent, L.INF, dtype=np.int64)
    hh = np.arange(n_ent, dtype=np.int64)
    hp = np.arange(n_ent, dtype=np.int64)

    t_vis = (t_wire + dma).astype(np.int64)
    P[L.P_EIRQ0], P[L.P_ECPU0], P[L.P_ETHR0] = e_irq0, e_cpu0, e_thr0
    P[L.P_ETMR0] = e_thr0 + nthr
    pk = np.zeros((n, L.N_PK), dtype=np.int64)
    cols_in = {
        "t_vis": t_vis, "t_wire": t_wire, "que": fqueue[ridx], "plen": cols.wire_len[ridx],
        "paylen": cols.payload_len[ridx], "kind": fkind[ridx], "sock": psock,
        "gro_ok": gro_ok[ridx], "flowk": cols.flow[ridx], "bucket": hashes[ridx] & 7,
        "seq": cols.tcp_seq[ridx], "ack": cols.tcp_ack[ridx], "flags": cols.tcp_flags[ridx],
        "opth": cols.tcp_opt_hash[ridx], "ttl": cols.ttl[ridx], "tos": cols.ip_tos[ridx],
        "df": cols.ip_df[ridx], "ipid": cols.ip_id[ridx], "hdrlen": hdr[ridx],
        "truesize": ts[ridx], "v6": v6[ridx], "fragq": frg.key[ridx], "foff": frg.off[ridx],
        "fend": frg.end[ridx], "fmf": cols.frag_mf[ridx], "peer": frg.peer[ridx],
        "csum": fcsum[ridx], "demux": demux[ridx],
        "tun": ftun[ridx], "ikind": fikind[ridx], "isock": fisock[ridx], "ilen": filen[ridx],
        "ext": ext[ridx],
    }
    for j, name in enumerate(L.PK_FIELDS):
        pk[:, j] = cols_in[name]
    po = np.full((n, L.N_PO), -1, dtype=np.int64)
    po[:, L.O_SKBH] = np.arange(n)
    po[:, L.O_SKBCNT] = 1
    po[:, L.O_SKBLEN] = 0
    po[:, L.O_SKBTRUE] = 0
    fq, fx = _reassembly_state(P, cfg, frg, pk, hz)
    tf = np.zeros((int(cols.flow.max()) + 1 if cols.n else 1, L.N_TF), np.int64)
    tf[:, L.TF_QUICK] = -1
    tf[:, L.TF_DELACK] = -1
    P[L.P_TCP_ACKS] = 1 if cfg["host"]["tcp-acks"] else 0
    P[L.P_ATO] = (hz // 25) * (1_000_000_000 // hz)  # TCP_ATO_MIN = HZ / 25 jiffies
    kind0 = pk[:, L.F_KIND].copy()  # the engine rewrites a decapsulated packet's kind to the inner
    ss[:, L.SS_SOCK_SAMPLE] = -(10**12)
    width = max(3 * nq + 3, nthr + ncpu + 1)
    cap_rows = 4096 + 8 * n
    cap_ev = 4096 + 4 * n
    arrays = dict(
        P=P, cbase=cbase, cpb=cpb, pk=pk, po=po,
        se=np.full((n, L.N_ST), -1, dtype=np.int64), sc=np.zeros((n, L.N_ST), dtype=np.int64),
        cs=cs, qs=qs, ss=ss, ts=tsa, lst=np.zeros((ncpu, L.N_LST, width), np.int64),
        ringbuf=np.zeros((nq, ring), np.int64),
        rxl=np.zeros((nq, 2 * 64 + 64 + int(P[L.P_BATCH])), np.int64),
        gh=np.zeros((nq, 64, L.N_GH), np.int64), gbc=np.zeros((nq, 8), np.int64),
        sockq=np.zeros(int(qoff[-1]) + 1, np.int64), wq=wq,
        tmsg=np.zeros((max(nthr, 1), maxbatch), np.int64),
        acc=np.zeros((ncpu, 3, L.N_SLOTS), np.int64), accf=np.zeros((ncpu, 3, L.N_SLOTS), np.int64),
        rows=np.zeros((cap_rows, 8), np.int64), ev=np.zeros((cap_ev, 7), np.int64),
        ht=ht, hh=hh, hp=hp, misc=np.zeros(L.N_MISC, np.int64), fq=fq, fx=fx, tf=tf,
    )
    if n:
        engine.heap_fix(ht, hh, hp, 0, int(t_vis[0]))
    # the compiled engine sees the arrays through one struct (model/state.py); it writes into them
    st = new_state(arrays)
    while engine.run_loop(st) == 1:
        old_rows, old_ev = arrays["rows"], arrays["ev"]
        rows = np.zeros((old_rows.shape[0] * 2, 8), np.int64)
        rows[: old_rows.shape[0]] = old_rows
        ev = np.zeros((old_ev.shape[0] * 2, 7), np.int64)
        ev[: old_ev.shape[0]] = old_ev
        arrays["rows"], arrays["ev"] = rows, ev
        set_buffers(st, rows, ev)
    engine.frag_expire(st, L.INF)  # reassembly timers still pending fire after the trace
    engine.tcp_delack_flush(st)
    engine.distribute(st)
    del st
    _misc = arrays["misc"][3:7].tolist()
    S = _views(arrays)
    S.kind0 = kind0
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
    }
    comms = [f"swapper/{c}" for c in range(ncpu)] + [f"ksoftirqd/{c}" for c in range(ncpu)] + [
        str(a["name"]) for a in apps
    ]
    packets = _packets_table(S, cols, fidx, loop, t_wire_all, rxmask, ridx)
    cpu = _cpu_table(S, names, comms, apps, ncpu)
    events = _events_table(S)
    counters = _counters(S, cfg, drv, cols, ridx, nq, ncpu)
    if drv.name == "mlx5":
        # mlx5e_handle_csum's counters, per packet the driver built (ring drops never reach it)
        built = ~((S.dreason == L.R_RING) & (S.dstage == L.S_DRIVER))
        kinds0 = fcsum[ridx][built] & L.CSUM_KIND
        counters["ethtool"].update({
            "rx_csum_complete": int((kinds0 == L.CSUM_COMPLETE).sum()),
            "rx_csum_unnecessary": int((kinds0 == L.CSUM_UNNECESSARY).sum()),
            "rx_csum_none": int((kinds0 == L.CSUM_NONE).sum()),
        })
    summary = _summary(S, packets, cols.n, ncpu)
    kinds_ = ("arrival", "irq", "cpu_step", "wakeup")
    counters["model"]["engine_events"] = dict(zip(kinds_, _misc, strict=True))
    host = {"addresses": hv.addresses, "inferred": hv.inferred, "note": hv.note}
    return SimResult(packets, cpu, events, counters, summary, host, apps, notes)


# ------------------------------------------------------------------------------------- tables


def _reassembly_state(P: np.ndarray, cfg: dict[str, Any], frg: Any, pk: np.ndarray, hz: int
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
    nfrag = int((pk[:, L.F_FRAGQ] >= 0).sum())
    P[L.P_FX_FIFO0] = L.FX_PEER0 + frg.npeers
    P[L.P_FX_NEXT0] = P[L.P_FX_FIFO0] + 4 * (nfrag + 1)
    fx = np.zeros(int(P[L.P_FX_NEXT0]) + len(pk), np.int64)
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


def _dict_array(codes: np.ndarray, names: list[str] | tuple[str, ...], valid: np.ndarray | None = None
                ) -> pa.DictionaryArray:
    idx = pa.array(codes.astype(np.int16), mask=None if valid is None else ~valid)
    return pa.DictionaryArray.from_arrays(idx, pa.array(list(names), pa.string()))


def _packets_table(S: Any, cols: Any, fidx: np.ndarray, loop: np.ndarray, t_wire_all: np.ndarray,
                   rxmask: np.ndarray, ridx: np.ndarray) -> pa.Table:
    m = len(fidx)
    n = len(ridx)
    # per-stage wait = end of S - end of the previous stage on the path - CPU of S
    se, sc = S.se, S.sc
    wait = np.zeros((n, L.N_ST), dtype=np.int64)
    prev = S.t_wire.copy()
    for st in range(L.N_ST):
        on = se[:, st] >= 0
        wait[on, st] = se[on, st] - prev[on] - sc[on, st]
        prev[on] = se[on, st]
    t_done = prev  # the end of the last stage reached: the invariant holds by construction

    def full(vals: np.ndarray, fill: int = 0) -> tuple[np.ndarray, np.ndarray]:
        out = np.full(m, fill, dtype=np.int64)
        out[rxmask] = vals
        return out, rxmask.copy()

    outcome = np.full(m, L.O_IGNORED, dtype=np.int64)
    outcome[rxmask] = S.outc
    cols_out: dict[str, pa.Array] = {}
    cols_out["frame"] = pa.array((fidx + 1).astype(np.uint64))
    flow = cols.flow[fidx].copy()
    if n:
        # a reassembled datagram's flow is its first fragment's (later ones have no ports)
        fh = S.fhead
        sel = fh >= 0
        frx = flow[rxmask]
        frx[sel] = cols.flow[ridx[fh[sel]]]
        flow[rxmask] = frx
    cols_out["flow"] = pa.array(flow.astype(np.uint32))
    q, v = full(S.que)
    cols_out["queue"] = pa.array(q.astype(np.uint16), mask=~v)
    c, v = full(S.pcpu)
    c_valid = v & (c >= 0)
    cols_out["cpu"] = pa.array(np.where(c_valid, c, 0).astype(np.uint16), mask=~c_valid)
    cols_out["loop"] = pa.array(loop.astype(np.uint32))
    cols_out["pkt"] = pa.array(np.arange(1, m + 1, dtype=np.uint64))
    cols_out["outcome"] = _dict_array(outcome, OUTCOMES)
    a, v = full(S.papp, -1)
    av = v & (a >= 0) & (outcome == L.O_DELIVERED)
    cols_out["app"] = pa.array(np.where(av, a, 0).astype(np.uint16), mask=~av)
    skbf = np.zeros(m, dtype=np.uint64)
    if n:
        skbf[rxmask] = (ridx[S.skbh] + 1).astype(np.uint64)
    cols_out["skb"] = pa.array(skbf, mask=~rxmask)
    cols_out["t_wire"] = pa.array(np.where(rxmask, t_wire_all, 0), mask=~rxmask)
    for name, arr in (("t_irq", S.tirq), ("t_poll", S.tpoll)):
        x, v = full(arr, -1)
        ok = v & (x >= 0)
        cols_out[name] = pa.array(np.where(ok, x, 0), mask=~ok)
    x, v = full(t_done)
    cols_out["t_done"] = pa.array(x, mask=~v)
    for st, sid in enumerate(STAGE_IDS):
        on = np.zeros(m, dtype=bool)
        on[rxmask] = se[:, st] >= 0
        w = np.zeros(m, dtype=np.int64)
        w[rxmask] = wait[:, st]
        cc = np.zeros(m, dtype=np.int64)
        cc[rxmask] = sc[:, st]
        cols_out[f"wait_{sid}"] = pa.array(w, mask=~on)
        cols_out[f"cpu_{sid}"] = pa.array(cc, mask=~on)
    ds, v = full(S.dstage, -1)
    dv = v & (ds >= 0)
    cols_out["drop_stage"] = _dict_array(np.where(dv, ds, 0), STAGE_IDS, dv)
    dr, v = full(S.dreason, -1)
    rv = v & (dr >= 0)
    cols_out["drop_reason"] = _dict_array(np.where(rv, dr, 0), L.DROP_REASONS, rv)
    return pa.Table.from_arrays([cols_out[f.name] for f in PACKETS_SCHEMA], schema=PACKETS_SCHEMA)


def _cpu_table(S: Any, names: dict[str, str], comms: list[str], apps: list[dict[str, Any]],
               ncpu: int) -> pa.Table:
    r = S.rows[: S.nrows[0]]
    slots = [(sym.format(recv_symbol="udp_recvmsg", consume_symbol="skb_consume_udp", **names),
              stage, cat) for sym, stage, cat in L.SLOTS]
    sym_names = sorted({s for s, _, _ in slots})
    sym_idx = np.array([sym_names.index(s) for s, _, _ in slots])
    stage_names = list(STAGE_IDS)
    st_idx = np.array([stage_names.index(st) if st else -1 for _, st, _ in slots])
    cats = sorted({c for _, _, c in slots})
    cat_idx = np.array([cats.index(c) for _, _, c in slots])
    slot = r[:, 5]
    dsos = ["[kernel.kallsyms]"] + [str(a["name"]) for a in apps]
    is_app = slot == L.Y_APP
    dso = np.where(is_app, r[:, 4] - 2 * ncpu + 1, 0)
    stv = st_idx[slot] if len(slot) else np.zeros(0, np.int64)
    arrays = [
        pa.array(r[:, 0].astype(np.uint16)),
        pa.array(r[:, 1]),
        pa.array(r[:, 2]),
        _dict_array(r[:, 3], L.CTX_NAMES),
        _dict_array(r[:, 4], comms),
        _dict_array(dso, dsos),
        _dict_array(sym_idx[slot] if len(slot) else slot, sym_names),
        _dict_array(np.where(stv >= 0, stv, 0), stage_names, stv >= 0),
        _dict_array(cat_idx[slot] if len(slot) else slot, cats),
        pa.array(r[:, 6]),
        pa.array(r[:, 7].astype(np.uint32)),
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
        _dict_array(e[:, 4], L.EV_KINDS),
        pa.array(e[:, 5]),
        _dict_array(e[:, 6], L.EV_DETAILS, e[:, 6] != L.D_NONE),
    ]
    return pa.Table.from_arrays(arrays, schema=EVENTS_SCHEMA)


def _ethtool(drv: Driver, qs: np.ndarray, nq: int) -> dict[str, int]:
    """`ethtool -S` with the driver's own names (KERNEL.md §7)."""
    rx_packets = int(qs[:, L.QS_ACCEPTED].sum())
    rx_bytes = int(qs[:, L.QS_BYTES].sum())
    missed = int(qs[:, L.QS_MISSED_DROP].sum())
    out: dict[str, int]
    if drv.name == "mlx5":
        out = {"rx_packets": rx_packets, "rx_bytes": rx_bytes, "rx_out_of_buffer": missed}
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
    out = {"rx_packets": rx_packets, "rx_bytes": rx_bytes, "rx_missed_errors": missed,
           "rx_no_dma_resources": 0}
    for q in range(nq):
        out[f"rx_queue_{q}_packets"] = int(qs[q, L.QS_ACCEPTED])
        out[f"rx_queue_{q}_bytes"] = int(qs[q, L.QS_BYTES])
    return out


def _counters(S: Any, cfg: dict[str, Any], drv: Driver, cols: Any, ridx: np.ndarray, nq: int,
              ncpu: int) -> dict[str, Any]:
    cs, qs, fx = S.cs, S.qs, S.fx
    softnet = [
        {"cpu": c, "processed": int(cs[c, L.CS_PROCESSED]), "dropped": int(cs[c, L.CS_DROPPED]),
         "time_squeeze": int(cs[c, L.CS_SQUEEZE]), "received_rps": 0, "flow_limit_count": 0}
        for c in range(ncpu)
    ]
    interrupts = {}
    for q in range(nq):
        row = [0] * ncpu
        row[int(qs[q, L.QS_CPU])] = int(qs[q, L.QS_IRQS])
        interrupts[drv.irq_name.format(q=q)] = row
    napi = [
        {"queue": q, "cpu": int(qs[q, L.QS_CPU]), "irqs": int(qs[q, L.QS_IRQS]),
         "polls": int(qs[q, L.QS_POLLS]), "arms": int(qs[q, L.QS_ARMS]),
         "packets": int(qs[q, L.QS_PKTS]), "budget_exhausted": int(qs[q, L.QS_BEXH]),
         "timers": int(qs[q, L.QS_TIMERS])}
        for q in range(nq)
    ]
    # SNMP from the per-skb outcomes, split by IP version as /proc/net/snmp and snmp6 are
    v6 = (cols.ip_version[ridx] == 6)
    head = S.skbh == np.arange(len(ridx))
    se = S.se
    kind = S.kind
    reason = S.dreason
    at_ip = head & (se[:, L.S_IP] >= 0) & (S.kind0 != L.K_ARP)
    deliv_l4 = head & (se[:, L.S_L4] >= 0)
    udp = kind == L.K_UDP
    tcp = (kind == L.K_TCP) | (kind == L.K_TCP_CTRL)
    read = head & (se[:, L.S_COPY] >= 0)
    rcvbuf = head & (reason == L.R_RCVBUF)
    noports = head & (reason == L.R_NOSOCK) & udp
    csumerr = head & (reason == L.R_UDP_CSUM)
    # tcp_v4_send_reset for a segment no socket takes, unless it is a RST itself (OutRsts and
    # OutSegs); ACKs sent on the receive path come from the engine (all IPv4-counted: the snmp6
    # file has no Tcp6 block, TCP counters are shared between v4 and v6 in /proc/net/snmp)
    flags0 = cols.tcp_flags[ridx]
    rst = head & (reason == L.R_NOSOCK) & (cols.proto[ridx] == 6) & ((flags0 & 4) == 0)
    n_rst = int(rst.sum())
    outsegs = int(S.misc[L.M_TCPIN + 4])
    # a decapsulated packet passes ip_rcv and ip_local_deliver twice (outer, inner), and a UDP
    # tunnel's outer datagram counts Udp InDatagrams when encap_rcv takes it
    # (udp_queue_rcv_one_skb: "if (ret <= 0) ... UDP_MIB_INDATAGRAMS"); the inner IP version is
    # taken as the outer's (the frames table does not carry it)
    decap_all = head & (S.tun != L.TUN_NONE) & (se[:, L.S_L4] >= 0)
    udp_tun = decap_all & (S.tun != L.TUN_GRE)
    decap = decap_all & (S.ikind != L.K_ARP)  # an inner ARP never reaches ip_rcv

    def c4(mask: np.ndarray) -> int:
        return int((mask & ~v6).sum())

    def c6(mask: np.ndarray) -> int:
        return int((mask & v6).sum())

    inhdr = head & (reason == L.R_INHDR)
    trunc = head & (reason == L.R_TOOSMALL)
    noproto = head & (reason == L.R_NOPROTO)
    snmp = {
        "Ip": {"InReceives": c4(at_ip) + c4(decap), "InHdrErrors": c4(inhdr),
               "InUnknownProtos": c4(noproto), "InDelivers": c4(deliv_l4) + c4(decap),
               "ReasmTimeout": int(fx[L.FX_TMO4]),
               "ReasmReqds": int(fx[L.FX_REQ4]), "ReasmOKs": int(fx[L.FX_OK4]),
               "ReasmFails": int(fx[L.FX_FAIL4])},
        "IpExt": {"InTruncatedPkts": c4(trunc), "ReasmOverlaps": int(fx[L.FX_OVL4])},
        "Udp": {"InDatagrams": c4(read & udp) + c4(udp_tun), "NoPorts": c4(noports),
                "InErrors": c4(rcvbuf & udp), "RcvbufErrors": c4(rcvbuf & udp), "MemErrors": 0},
        # TCP_MIB_* are one set for IPv4 and IPv6 (/proc/net/snmp6 has no Tcp6 lines)
        "Tcp": {"InSegs": int((deliv_l4 & tcp).sum()), "OutSegs": outsegs + n_rst, "InErrs": 0,
                "OutRsts": n_rst},
        "TcpExt": {"DelayedACKs": int(S.misc[L.M_TCPIN + 5]), "TCPBacklogDrop": 0,
                   "TCPRcvQDrop": int((head & (reason == L.R_PROTOMEM)).sum()),
                   "TCPOFOQueue": 0, "TCPOFODrop": 0},
    }
    snmp6 = {
        "Ip6InReceives": c6(at_ip) + c6(decap), "Ip6InDelivers": c6(deliv_l4) + c6(decap),
        "Ip6InHdrErrors": c6(inhdr), "Ip6InUnknownProtos": c6(noproto),
        "Ip6InTruncatedPkts": c6(trunc),
        "Ip6ReasmTimeout": int(fx[L.FX_TMO6]), "Ip6ReasmReqds": int(fx[L.FX_REQ6]),
        "Ip6ReasmOKs": int(fx[L.FX_OK6]), "Ip6ReasmFails": int(fx[L.FX_FAIL6]),
        "Udp6InDatagrams": c6(read & udp) + c6(udp_tun), "Udp6NoPorts": c6(noports),
        "Udp6InErrors": c6((rcvbuf | csumerr) & udp), "Udp6RcvbufErrors": c6(rcvbuf & udp),
        "Udp6InCsumErrors": c6(csumerr & udp), "Udp6MemErrors": 0,
    }
    return {
        "softnet_stat": softnet,
        "softirqs": {"NET_RX": [int(cs[c, L.CS_NETRX]) for c in range(ncpu)]},
        "interrupts": interrupts,
        "ethtool": _ethtool(drv, qs, nq),
        "napi": napi,
        "snmp": snmp,
        "snmp6": snmp6,
        "model": {
            "time_squeeze_budget": [int(cs[c, L.CS_SQ_BUDGET]) for c in range(ncpu)],
            "time_squeeze_time": [int(cs[c, L.CS_SQ_TIME]) for c in range(ncpu)],
            "ksoftirqd_wakeups": [int(cs[c, L.CS_KS_WAKES]) for c in range(ncpu)],
            "gro_skbs": int(head.sum()),
            "gro_segments": len(ridx),
            "socket_max_queue": [int(x) for x in S.ss[:, L.SS_MAXQ]],
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
