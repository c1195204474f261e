"""Calibration traces → real runs on this machine → a fitted cost profile (TOML).

`replay calibrate -o PROFILE.toml` replays small UDP floods of several datagram sizes through the
real-kernel harness (veth in a namespace, receiver reading one datagram per recvmsg), reads per
packet how much CPU each receive-path stage took from the perf samples (cpu.parquet: ns per stage,
as perf's cpu-clock charged it) and the counters (packets, NET_RX runs), and fits each stage's
`base + per_byte * len` (len = frame bytes) by least squares over the sizes. What veth's path
cannot separate is said in the entry's source:
  - veth has no ring, IRQ or GRO (KERNEL.md §3c): the `driver` stage is veth_xmit's forwarding;
    enqueue_to_backlog + process_backlog (our `backlog` stage) are charged per NET_RX run as
    fixed.napi_poll, and the softirq work outside every stage (net_rx_action, handle_softirqs,
    skb_defer_free_flush) as fixed.net_rx_action: on veth there is one of each per packet;
  - fixed.syscall is separated from stage.copy by a second run reading 8 datagrams per recvmmsg:
    copy per message = copy + syscall / batch;
  - fixed.wakeup is the CPU under sock_def_readable per reader wake-up (one per recv call that
    found the queue empty: paced traces make that one per batch read), taken out of stage.udp;
  - stage.app is the harness receiver's own per-message cost beyond its `work-ns`: a few clock
    reads with the compiled loop (the default, replay/real/fastloop.py), about 5 us with
    `--receiver python`; the profile describes the reader it was measured with.
  - perf's own cost: a reader that is never idle (10 us of work per message) runs with and
    without perf; the share of its cycle perf took (12% at the 50 us period on this VM) is taken
    out of every CPU cost, since perf's cpu-clock charges its handler's time to the code it
    samples next;
  - the wake-up and the idle states: runs WITHOUT perf (perf's timer makes this VM's idle vCPUs
    quicker to wake) of a Poisson stream; their woken messages split by how long the reader had
    idled (latency.wakeup, and [idle]: a vCPU idle for over ~9 us costs ~10 us more to wake).
Entries the runs do not measure are inherited from the default profile (`base` in [profile]).
"""

from __future__ import annotations

import itertools
import json
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import dpkt
import numpy as np
import polars as pl

from replay.model.costs import DEFAULT_PROFILE
from replay.real import hostinfo
from replay.real.harness import RealOptions, run_real
from replay.runner import ReplayOptions

SIZES = (64, 256, 512, 1024, 1400)  # UDP payload bytes
# a flood (tcpreplay -t) of this payload: the reader's per-message cost while it never sleeps
# (warm caches), which a paced run, where it sleeps between messages, overstates
FLOOD = 768
HDR = 14 + 20 + 8  # Ethernet + IPv4 + UDP: frame length = payload + HDR


def write_flood(path: Path, n: int, payload: int, ts: np.ndarray | None = None) -> Path:
    """n UDP datagrams of `payload` bytes to 10.0.0.2:27015 (replay real rewrites the addresses),
    10 us apart or at the times `ts` (seconds)."""
    if ts is None:
        ts = np.arange(n) * 1e-5
    with open(path, "wb") as f:
        w = dpkt.pcap.Writer(f, nano=True)
        for i in range(n):
            u = dpkt.udp.UDP(sport=40000, dport=27015, data=bytes(payload))
            u.ulen = 8 + payload
            ip = dpkt.ip.IP(src=socket.inet_aton("10.0.0.1"), dst=socket.inet_aton("10.0.0.2"),
                            p=17, data=u, id=i & 0xFFFF, ttl=64)
            ip.len = 20 + len(u)
            w.writepkt(bytes(dpkt.ethernet.Ethernet(src=b"\x02" * 6, dst=b"\x04" * 6, data=ip)),
                       ts=float(ts[i]))
    return path


def write_poisson(path: Path, n: int, payload: int, mean_gap_ns: int) -> Path:
    """write_flood with exponential gaps (a Poisson stream, seeded): the reader's idle times
    before its wake-ups then cover every duration from 0 to several times the mean, which the
    idle-state table needs (a paced trace gives one idle time only)."""
    gaps = np.random.default_rng(2026).exponential(mean_gap_ns * 1e-9, n)
    return write_flood(path, n, payload, np.cumsum(gaps))


def woken_latencies(msgs: pl.DataFrame) -> np.ndarray:
    """Kernel stamp (netif_rx) -> recvmsg returned, ns, of the messages that found the reader
    idle (its previous message done before this one arrived): the sleeping reader's wake-up
    path."""
    if not {"t_kernel", "t_done"} <= set(msgs.columns) or msgs.height < 2:
        return np.zeros(0)
    m = msgs.sort("t_read")
    idle = m["t_kernel"].to_numpy()[1:] > m["t_done"].to_numpy()[:-1]
    return (m["t_read"] - m["t_kernel"]).to_numpy()[1:][idle].astype(float)


def woken_idle(msgs: pl.DataFrame) -> np.ndarray:
    """For the messages of woken_latencies (same order): how long the reader had been idle, ns
    (from the end of its previous message to this one's kernel stamp)."""
    if not {"t_kernel", "t_done"} <= set(msgs.columns) or msgs.height < 2:
        return np.zeros(0)
    m = msgs.sort("t_read")
    gap = m["t_kernel"].to_numpy()[1:] - m["t_done"].to_numpy()[:-1]
    return gap[gap > 0].astype(float)


# where the idle table may put a state's target residency: 0.5 us steps to 10 us (a vCPU's
# halt, the host's polling), then coarser to 200 us (the host's own idle states)
RESIDENCY_GRID = (*range(500, 10_001, 500), 12_000, 15_000, 20_000, 30_000, 50_000, 75_000,
                  100_000, 150_000, 200_000)


def idle_table(lat: np.ndarray, idle: np.ndarray, states: int = 3, gain: float = 0.07,
               share: float = 0.05) -> tuple[float, list[tuple[int, float]]]:
    """(fast, [(residency, median), ...]): the woken latencies split by the reader's idle time
    into up to `states` + 1 groups, at the residencies (RESIDENCY_GRID) that minimise the total
    absolute deviation from each group's median; fast is the first group's median, then each
    deeper group's residency and median.

    A CPU that has idled only briefly has not reached a deep idle state (the cpuidle governor
    polls first; on a VM the vCPU has not halted, or the host still polls for it): its wake-up
    costs less. A split is kept only if it takes `gain` (7%) off the deviation of the table
    without it and each group holds `share` (5%) of the messages: an idle time that does not
    matter splits noise only, by 1-3%. Groups must wake slower as they idle longer (deeper
    states exit slower); with no split worth having, (median, [])."""
    if len(lat) == 0:
        return float("nan"), []
    o = np.argsort(idle, kind="stable")
    lat, idle = lat[o], idle[o]
    n = len(lat)
    cuts = sorted({int(np.searchsorted(idle, r)) for r in RESIDENCY_GRID} - {0, n})
    at = {int(np.searchsorted(idle, r)): r for r in reversed(RESIDENCY_GRID)}  # smallest r
    memo: dict[tuple[int, int], tuple[float, float]] = {}

    def seg(a: int, b: int) -> tuple[float, float]:  # (median, absolute deviation) of [a, b)
        if (a, b) not in memo:
            m = float(np.median(lat[a:b]))
            memo[a, b] = (m, float(np.abs(lat[a:b] - m).sum()))
        return memo[a, b]

    def cost(bounds: tuple[int, ...]) -> float | None:
        edges = (0, *bounds, n)
        if min(b - a for a, b in itertools.pairwise(edges)) < share * n:
            return None
        meds = [seg(a, b)[0] for a, b in itertools.pairwise(edges)]
        if any(y <= x for x, y in itertools.pairwise(meds)):
            return None
        return sum(seg(a, b)[1] for a, b in itertools.pairwise(edges))

    best: tuple[int, ...] = ()
    best_dev = seg(0, n)[1]
    for k in range(1, states + 1):
        found = None
        for bounds in itertools.combinations(cuts, k):
            dev = cost(bounds)
            if dev is not None and dev < (1 - gain) * best_dev and (found is None or dev < found[0]):
                found = (dev, bounds)
        if found is None:
            break
        best_dev, best = found
    edges = (0, *best, n)
    meds = [seg(a, b)[0] for a, b in itertools.pairwise(edges)]
    return meds[0], [(at[b], m) for b, m in zip(best, meds[1:], strict=True)]


def queued_cycle(msgs: pl.DataFrame) -> float:
    """The reader's mean read-to-read time over the messages that were already queued when it
    finished the one before (it never slept between them): its whole per-message cycle, as
    the receiver's own clock saw it, perf's sampling attribution aside; NaN without any."""
    if {"t_kernel", "t_done"} <= set(msgs.columns) and msgs.height > 1:
        m = msgs.sort("t_read")
        queued = m["t_kernel"].to_numpy()[1:] <= m["t_done"].to_numpy()[:-1]
        gaps = np.diff(m["t_read"].to_numpy())[queued]
        if len(gaps):
            return float(gaps.mean())
    return float("nan")


def run_figures(run_dir: Path) -> dict[str, float]:
    """Per-packet / per-run / per-message CPU ns of one real run, from its run directory."""
    meta = json.loads((run_dir / "run.json").read_text())
    c = meta["counters"]
    scpu = meta["real"]["sender"]["cpu"]
    packets = c["snmp"]["Ip"]["InReceives"] or 1
    runs = c["softirqs"]["NET_RX"][scpu] or 1
    msgs = pl.read_parquet(run_dir / "messages.parquet")
    n_msg = msgs.height or 1
    # kernel stamp (netif_rx) -> recvmsg returned, for messages that found the reader idle (its
    # previous message done before this one arrived): the sleeping reader's wake-up path
    lat = woken_latencies(msgs)
    woke = float(np.median(lat)) if len(lat) else float("nan")
    cycle = queued_cycle(msgs)
    calls = msgs["t_read"].n_unique() or 1
    cpu = pl.read_parquet(run_dir / "cpu.parquet").with_columns(
        pl.col(pl.Categorical).cast(pl.String))
    by = dict(cpu.filter(pl.col("stage").is_not_null()).group_by("stage")
              .agg(pl.col("ns").sum()).iter_rows())
    per_run = cpu.filter(pl.col("stage").is_null() & (pl.col("context") == "softirq")
                         & (pl.col("cpu") == scpu))["ns"].sum()
    # process_backlog's own samples (no stage: per poll, as the model's fixed.backlog_poll)
    bl_poll = cpu.filter(pl.col("stage").is_null() & (pl.col("symbol") == "process_backlog")
                         & (pl.col("cpu") == scpu))["ns"].sum()
    # the sender's kernel transmit path outside the receive path (sendmsg on AF_PACKET up to
    # veth_xmit): fixed.tx; its user-space loop (tcpreplay's timing spin) is left out
    comm = meta["real"]["sender"].get("comm", "tcpreplay")
    tx = cpu.filter(pl.col("stage").is_null() & (pl.col("context") == "task")
                    & (pl.col("comm") == comm) & (pl.col("dso") == "[kernel.kallsyms]")
                    )["ns"].sum()
    wake = meta["real"]["perf"].get("wakeup_ns", 0)
    return {
        "driver": by.get("driver", 0) / packets,
        # veth: __netif_receive_skb_core runs under process_backlog (stage backlog); the
        # enqueue (netif_rx -> enqueue_to_backlog) is stage netif (categories.stage_of)
        "netif": by.get("backlog", 0) / packets,
        "backlog": by.get("netif", 0) / packets,
        "tx": tx / packets,
        "ip": by.get("ip", 0) / packets,
        "route": by.get("route", 0) / packets,
        "local": by.get("local", 0) / packets,
        "udp": (by.get("l4", 0) - wake) / packets,
        "copy": by.get("copy", 0) / n_msg,
        "app": by.get("app", 0) / n_msg,
        "backlog_poll": bl_poll / runs,
        "net_rx_action": (per_run - bl_poll) / runs,
        "wakeup": wake / calls,
        "woke": woke,
        "cycle": cycle,
        "packets": packets, "runs": runs, "messages": n_msg, "calls": calls,
    }


def category_splits(run_dirs: list[Path]) -> dict[str, dict[str, float]]:
    """Per receive-path stage, the share of each Cai et al. category among the leaf symbols
    perf sampled in it, pooled over the runs: the model charges a stage's cost to its own symbol,
    while perf splits it among the leaves below (locks, allocator, scheduler, ...), so the
    profile carries the split and replay run shares the stage's CPU out the same way
    (simulate._split_categories). The application's own stage is left whole."""
    frames = []
    for rd in run_dirs:
        p = rd / "cpu.parquet"
        if p.exists():
            frames.append(pl.read_parquet(p, columns=["stage", "category", "ns"]).with_columns(
                pl.col(pl.Categorical).cast(pl.String)))
    if not frames:
        return {}
    df = pl.concat(frames).filter(pl.col("stage").is_not_null() & (pl.col("stage") != "app"))
    out: dict[str, dict[str, float]] = {}
    for (stage,), g in df.group_by(["stage"]):
        by = g.group_by("category").agg(pl.col("ns").sum())
        tot = by["ns"].sum()
        if not tot:
            continue
        out[str(stage)] = {str(c): round(n / tot, 4) for c, n in by.sort("ns", descending=True)
                           .iter_rows() if n / tot >= 0.001}
    return dict(sorted(out.items()))


def fit(lengths: np.ndarray, ns: np.ndarray) -> tuple[float, float, float]:
    """Least squares ns = base + per_byte * len; (base, per_byte, RMS residual / mean)."""
    a = np.column_stack([np.ones_like(lengths, dtype=float), lengths.astype(float)])
    (base, per_byte), *_ = np.linalg.lstsq(a, ns, rcond=None)
    if per_byte < 0:  # a cost cannot fall with size: a constant is the honest fit
        base, per_byte = float(ns.mean()), 0.0
    if base < 0:
        base = 0.0
        per_byte = max(0.0, float((ns * lengths).sum() / (lengths * lengths).sum()))
    resid = ns - (base + per_byte * lengths)
    rel = float(np.sqrt((resid**2).mean()) / ns.mean()) if ns.mean() > 0 else 0.0
    return float(base), float(per_byte), rel


# Sampling: a stage of ~30 ns/packet needs ~100 samples for a ~10% figure, so the runs sample
# every 50 us (20 kHz per CPU) and send 100,000 datagrams at up to 100 kpps (tcpreplay reaches
# ~30 kpps here with the capture and perf on its CPU; the Python reader keeps up). Sampling
# faster inflates every figure: at 20 us the reader's per-message CPU came out 5x its unsampled
# read-to-read time, perf's own work being charged to the sampled code.
PERF_PERIOD_NS = 50_000
# the never-idle reader that measures perf's own share of the CPU (calibrate, "perf's cost")
BUSY_WORK_NS = 10_000
BUSY_PACKETS = 20_000
# the perf-less runs that measure the wake-up path and the idle states (calibrate, "idle")
WAKE_PACKETS = 20_000
WAKE_PAYLOAD = 256
WAKE_GAP_NS = 40_000


def calibrate(out: Path, repeat: int = 3, packets: int = 100_000, pps: int = 100_000,
              keep: Path | None = None, reuse: bool = False,
              receiver: str = "compiled") -> dict[str, Any]:
    """Run the calibration set on this machine and write the profile to `out`.

    With `reuse`, runs already complete in `keep` (a run.json there) are fitted again instead
    of being repeated: a changed fit needs no new real runs."""
    work = keep or Path(tempfile.mkdtemp(prefix="replay-calibrate-"))
    work.mkdir(parents=True, exist_ok=True)
    cpus = hostinfo.ncpus()
    app_cpu = cpus - 1
    rows: list[dict[str, Any]] = []
    run_dirs: list[Path] = []
    run_plan: list[tuple[int, int]] = []
    plan = [(s, 1) for s in SIZES] + [(512, 8), (FLOOD, 1)]
    for size, batch in plan:
        trace = work / f"udp{size}.pcap"
        if not (reuse and trace.exists()):
            write_flood(trace, packets, size)
        cfg = work / f"b{batch}.toml"
        cfg.write_text(f'[[app]]\nname = "calib"\nmatch = "udp dport 27015"\ncpu = {app_cpu}\n'
                       f"batch = {batch}\nwork-ns = 0\n")
        for r in range(repeat):
            rd = work / f"udp{size}-b{batch}-{r}"
            ro = ReplayOptions(topspeed=True) if size == FLOOD else ReplayOptions(pps=pps)
            if not (reuse and (rd / "run.json").exists()):
                run_real([trace], rd, cfg, [], ro,
                         RealOptions(max_seconds=10, perf_period_ns=PERF_PERIOD_NS,
                                     receiver=receiver),
                         command="replay calibrate")
            rows.append({"size": size, "batch": batch, "repeat": r, **run_figures(rd)})
            run_dirs.append(rd)
            run_plan.append((size, batch))
    # perf's cost. A cpu-clock sample costs this VM ~10 us (the hrtimer's VM exits, the
    # callchain), charged by the next sample to whatever ran, so every figure above is inflated
    # by the share of the CPU perf took. Measured on a reader that is never idle (a flood into
    # 10 us of work per message: its cycle is that work and a little more, steady), with and
    # without perf: the ratio of its mean cycles
    busy = work / "b1-busy.toml"
    busy.write_text(f'[[app]]\nname = "calib"\nmatch = "udp dport 27015"\ncpu = {app_cpu}\n'
                    f"batch = 1\nwork-ns = {BUSY_WORK_NS}\nrcvbuf = 4194304\n")
    busy_trace = work / "udp256-busy.pcap"
    if not (reuse and busy_trace.exists()):
        write_flood(busy_trace, BUSY_PACKETS, 256)
    cyc_perf, noperf = [], []
    for r in range(repeat):
        for with_perf, into in ((True, cyc_perf), (False, noperf)):
            rd = work / f"busy-{'perf' if with_perf else 'noperf'}-{r}"
            if not (reuse and (rd / "run.json").exists()):
                run_real([busy_trace], rd, busy, [], ReplayOptions(topspeed=True),
                         RealOptions(max_seconds=10, perf=with_perf,
                                     perf_period_ns=PERF_PERIOD_NS, receiver=receiver),
                         command="replay calibrate")
            into.append(queued_cycle(pl.read_parquet(rd / "messages.parquet")))
    # the wake-up path and the idle states, from runs WITHOUT perf: perf's sampling changes how
    # fast this VM wakes an idle vCPU (a reader woken after under 2 us of idle: 4-5 us from the
    # kernel stamp to recvmsg's return with perf at 50 us, 14-16 us without, in the same flood),
    # and what the model predicts is a host nobody profiles. A Poisson stream gives every idle
    # time from 0 to a few hundred us in one run
    wake_trace = work / f"udp{WAKE_PAYLOAD}-poisson.pcap"
    if not (reuse and wake_trace.exists()):
        write_poisson(wake_trace, WAKE_PACKETS, WAKE_PAYLOAD, WAKE_GAP_NS)
    wake_dirs = []
    for r in range(repeat):
        rd = work / f"wake-noperf-{r}"
        if not (reuse and (rd / "run.json").exists()):
            run_real([wake_trace], rd, work / "b1.toml", [], ReplayOptions(),
                     RealOptions(max_seconds=10, perf=False, receiver=receiver),
                     command="replay calibrate")
        wake_dirs.append(rd)
    # the reader the runs were made with (kept runs from before the compiled loop: python)
    receiver = json.loads((run_dirs[0] / "run.json").read_text())["real"].get("receiver", "python")
    df = pl.DataFrame(rows)
    med = df.group_by(["size", "batch"]).median().sort(["batch", "size"])
    fl = med.filter(pl.col("size") == FLOOD)
    med = med.filter(pl.col("size") != FLOOD)
    busy_np, busy_p = float(np.nanmedian(noperf)), float(np.nanmedian(cyc_perf))
    perf_share = 0.0
    if np.isfinite(busy_np) and np.isfinite(busy_p) and busy_p > 0:
        perf_share = min(max(1.0 - busy_np / busy_p, 0.0), 0.5)
    deflate = 1.0 - perf_share
    b1 = med.filter(pl.col("batch") == 1)
    lengths = (b1["size"] + HDR).to_numpy()
    b8 = med.filter(pl.col("batch") == 8)
    c1 = float(b1.filter(pl.col("size") == 512)["copy"][0])
    c8 = float(b8["copy"][0])
    syscall = max(0.0, (c1 - c8) * 8 / 7)
    entries: dict[str, dict[str, Any]] = {}
    summary_fit = {}
    when = time.strftime("%Y-%m-%d", time.gmtime())
    what = (f"replay calibrate on {hostinfo.cpu_model()}, Linux {hostinfo.kernel_release()}, "
            f"{when}: {packets} UDP datagrams per run at {pps} pps into veth, payload "
            f"{'/'.join(map(str, SIZES))} B, median of {repeat} runs, perf cpu-clock samples")
    copy_fit = (0.0, 0.0)
    for key, section, col in (("driver", "stage", "driver"), ("netif", "stage", "netif"),
                              ("ip", "stage", "ip"), ("route", "stage", "route"),
                              ("local", "stage", "local"), ("udp", "stage", "udp"),
                              ("copy", "stage", "copy"), ("app", "stage", "app"),
                              ("backlog", "stage", "backlog")):
        ns = b1[col].to_numpy().astype(float)
        if key == "copy":
            ns = np.maximum(ns - syscall, 0.0)
        base, pb, rel = fit(lengths, ns)
        if key == "copy":
            copy_fit = (base, pb)
        if key == "app" and fl.height and receiver == "python":
            # The reader that never sleeps, at the flood: its mean read-to-read time (its own
            # clock) less what the profile charges it in the kernel per message (the syscall
            # and the copy above) is its own part; the size dependence from the paced fit.
            # Splitting perf's samples between the Python reader and recvmsg instead moved
            # ~1 us per message between the two from run to run (copy 621-2505 ns at 768 B in
            # three runs) while their sum, and the read-to-read time, held.
            cyc = float(fl["cycle"][0])
            if np.isfinite(cyc):
                own = cyc - syscall - (copy_fit[0] + copy_fit[1] * (FLOOD + HDR))
            else:  # runs without the receiver's timestamps: perf's own figure
                own = float(fl[col][0])
            base = max(own - pb * (FLOOD + HDR), 0.0)
        summary_fit[key] = round(rel, 3)
        entries[f"{section}.{key}"] = {
            "base": round(base, 1), "per_byte": round(pb, 4),
            "source": f"{what}; fit residual {100 * rel:.1f}% RMS"
            + ("; without fixed.syscall" if key == "copy" else "")
            + (f"; base from a {FLOOD} B flood: the reader's mean read-to-read time less "
               "fixed.syscall and stage.copy" if key == "app" and fl.height
               and receiver == "python" else "")
            + (f"; the harness's {receiver} reader's own work per message (replay real"
               f" --receiver {receiver})" if key == "app" else "")
            + ("; veth_xmit forwarding (no ring, no IRQ)" if key == "driver" else "")
            + ("; without sock_def_readable (fixed.wakeup)" if key == "udp" else "")
            + ("; netif_rx -> enqueue_to_backlog" if key == "backlog" else "")
            + ("; __netif_receive_skb_core under process_backlog" if key == "netif" else ""),
        }
    for key, col, note in (
        ("backlog_poll", "backlog_poll", "process_backlog's own work per NET_RX run (veth)"),
        ("net_rx_action", "net_rx_action",
         "softirq work outside every stage and process_backlog per NET_RX run"),
        ("tx", "tx", "the sender's kernel transmit path (AF_PACKET sendmsg to veth_xmit) per packet"),
        ("wakeup", "wakeup", "CPU under sock_def_readable per reader wake-up"),
    ):
        v = float(b1[col].median())
        entries[f"fixed.{key}"] = {"base": round(max(v, 0.0), 1),
                                   "source": f"{what}; {note}"}
    entries["fixed.syscall"] = {
        "base": round(syscall, 1),
        "source": f"{what}; (copy per message at batch 1 - at batch 8) x 8/7, 512 B",
    }
    # skb_consume_udp runs inside recvmsg, which stage.copy measured whole
    entries["fixed.consume"] = {"base": 0.0, "source": f"{what}; included in stage.copy"}
    # latency.wakeup: what the model does not put as CPU on a sleeping reader's path from the
    # kernel stamp to recvmsg's return (the rest of the softirq path, the wake-up call, the
    # context switch, the copy): on a VM the idle vCPU's exit from halt dominates it. Each woken
    # message of the perf-less runs less the model's CPU on that path at its size (the stages'
    # perf figures x deflate, as the profile will hold them)
    from replay.model.costs import load_profile

    ctx = float(load_profile(DEFAULT_PROFILE)["fixed"]["ctx_switch"]["base"])
    b1w = b1.filter(pl.col("size") == WAKE_PAYLOAD)
    path = float((b1w["netif"] + b1w["ip"] + b1w["route"] + b1w["local"] + b1w["udp"]
                  + b1w["wakeup"] + b1w["copy"])[0]) * deflate + ctx
    pooled, idles = [], []
    for rd in wake_dirs:
        msgs = pl.read_parquet(rd / "messages.parquet")
        pooled.append(woken_latencies(msgs) - path)
        idles.append(woken_idle(msgs))
    allv = np.concatenate(pooled) if pooled else np.zeros(0)
    alli = np.concatenate(idles) if idles else np.zeros(0)
    fast, deeper = idle_table(allv, alli)
    if np.isfinite(fast):
        first = deeper[0][0] if deeper else None
        entries["latency.wakeup"] = {
            "base": round(max(fast, 0.0), 1),
            "source": f"{what}; median over the {int((alli < first).sum()) if first else len(allv)}"
                      f" woken messages of {len(wake_dirs)} runs without perf ({WAKE_PACKETS}"
                      f" datagrams of {WAKE_PAYLOAD} B, Poisson, mean gap {WAKE_GAP_NS} ns)"
                      " that found the reader asleep"
                      + (f" for less than {first} ns" if first else "")
                      + f" of (kernel stamp -> recvmsg return) less the model's CPU on that path"
                      f" ({path:.0f} ns with fixed.ctx_switch {ctx:.0f} ns)"}
        if deeper:
            bounds = [r for r, _ in deeper] + [None]
            groups = "; ".join(
                f"idle {r} ns{f' to {nxt} ns' if nxt else ' or more'}: "
                f"{int(((alli >= r) & (alli < (nxt or np.inf))).sum())} woke in a median {m:.0f} ns"
                for (r, m), nxt in zip(deeper, bounds[1:], strict=True))
            ex = [round(max(m - fast, 0.0)) for _, m in deeper]
            rs = [r for r, _ in deeper]
            entries["idle"] = {
                "exit-ns": ex[0] if len(ex) == 1 else ex,
                "residency-ns": rs[0] if len(rs) == 1 else rs,
                "source": f"{what}; the woken messages of the runs without perf split by how "
                          "long the reader had idled (least absolute deviation, calibrate."
                          f"idle_table): below {rs[0]} ns {int((alli < rs[0]).sum())} woke in a "
                          f"median {fast:.0f} ns; {groups} (the vCPU halted, and the host's "
                          "wake-up of it: each state's exit is its median less the first)"}
    if perf_share > 0:
        for name, e in entries.items():
            if name.split(".")[0] in ("stage", "fixed") and e.get("base"):
                e["base"] = round(e["base"] * deflate, 1)
                if e.get("per_byte"):
                    e["per_byte"] = round(e["per_byte"] * deflate, 4)
                e["source"] += (f"; x {deflate:.3f}: perf's own share of the CPU at a"
                                f" {PERF_PERIOD_NS // 1000} us sampling period (a reader with"
                                f" {BUSY_WORK_NS} ns of work per message, never idle: a cycle"
                                f" of {busy_np:.0f} ns without perf, {busy_p:.0f} ns with it)")
    for stage, shares in category_splits(run_dirs).items():
        entries[f"categories.{stage}"] = shares
    hz, _src = hostinfo.config_hz()
    ghz = _ghz()
    text = _toml(entries, {
        "name": out.stem, "cpu": hostinfo.cpu_model(), "ghz": ghz,
        "kernel": hostinfo.kernel_release(), "hz": hz, "nic": "veth (network namespace)",
        "base": DEFAULT_PROFILE,
        "summary": f"{what}. Fit residuals (RMS / mean): "
                   + ", ".join(f"{k} {100 * v:.1f}%" for k, v in summary_fit.items())
                   + (f". CPU costs x {deflate:.3f}, perf's own share of the CPU taken out"
                      if perf_share > 0 else "")
                   + ". Entries not listed are inherited from " + DEFAULT_PROFILE + ".",
        "traces": [f"udp{s}.pcap" for s in SIZES],
    })
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    med.write_csv(work / "calibration-medians.csv")
    return {"profile": str(out), "runs": len(rows), "residuals": summary_fit, "work": str(work)}


def _ghz() -> float:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("cpu MHz"):
                return round(float(line.split(":")[1]) / 1000, 2)
    except (OSError, ValueError):
        pass
    return 3.0


def _q(v: Any) -> str:
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(_q(x) for x in v) + "]"
    return repr(v) if isinstance(v, float) else str(v)


def _key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else json.dumps(k)


def _toml(entries: dict[str, dict[str, Any]], profile: dict[str, Any]) -> str:
    lines = ["# Cost profile measured on this machine by `replay calibrate`"
             " (replay/real/calibrate.py).", "", "[profile]"]
    lines += [f"{k} = {_q(v)}" for k, v in profile.items()]
    for name, e in entries.items():
        lines += ["", f"[{name}]"] + [f"{_key(k)} = {_q(v)}" for k, v in e.items()]
    return "\n".join(lines) + "\n"
