"""Measured pieces of a real run → run.json + packets/cpu/events Parquet (`replay run` format)."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from replay import __version__
from replay.real import assemble, hostinfo
from replay.real.netns import VethPair
from replay.real.perfscript import parse_leaves, parse_perf_script
from replay.real.rewrite import Rewritten
from replay.real.rundir_extra import write_run
from replay.runner import ReplayOptions, RunResult
from replay.store.schema import EVENTS_SCHEMA

HOST_WIDE_NOTE = ("softnet_stat and softirqs are host-wide (the kernel does not count them per "
                  "namespace): they hold whatever else ran on this machine during the run, so "
                  "compare them only from runs on an otherwise idle machine")


def _frames(traces: list[str | Path]) -> tuple[pa.Table, list[dict[str, Any]]]:
    """The inputs' frames table and run.json inputs, from the project's bulk reader."""
    from replay.capture import read_captures

    cap = read_captures([str(t) for t in traces], sha256="background")
    inputs = [{"path": i.path, "sha256": i.sha256, "frames": i.frames,
               "linktypes": i.linktypes, "format": i.format} for i in cap.inputs]
    return cap.table, inputs


def finish(
    *,
    traces: list[str | Path],
    run_dir: Path,
    cfg: dict[str, Any],
    effective: dict[str, Any],
    rw: Rewritten,
    pair: VethPair,
    ro: ReplayOptions,
    opts: Any,
    notes: list[str],
    hz: int,
    hz_src: str,
    sender_cpu: int,
    sender_stats: dict[str, Any],
    snd_argv: list[str],
    cap_err: str,
    perf_err: str,
    cblock: dict[str, Any],
    samples_txt: tuple[str, str] | None,
    off_real_mono: int,
    recs: list[tuple[int, dict[str, Any], list[int], dict[str, np.ndarray]]],
    recv_pids: set[int],
    sender_pid: int,
    sent: tuple[np.ndarray, np.ndarray] | None,
    sent_path: Path | None,
    command: str,
    sender_comm: str,
) -> RunResult:
    notes = [*notes, HOST_WIDE_NOTE]
    # per-message records of every receiver, with the app index
    app_idx = np.concatenate([np.full(len(r["tag"]), i, np.int64) for i, _a, _p, r in recs]) \
        if recs else np.zeros(0, np.int64)

    def cat(k: str) -> np.ndarray:
        return np.concatenate([r[k] for *_x, r in recs]) if recs else np.zeros(0, np.int64)

    r_tag, r_tk, r_tr, r_td = cat("tag"), cat("t_kernel"), cat("t_read"), cat("t_done")
    r_ts = cat("t_start")
    bound = {int(p): i for i, _a, pl_, _r in recs for p in pl_}
    frames_table, inputs = _frames(traces)
    tables: dict[str, pa.Table] = {"frames": frames_table}
    t0 = int(sent[0].min()) if sent is not None and len(sent[0]) else \
        int(r_tk[r_tk > 0].min()) if (r_tk > 0).any() else off_real_mono
    summary_extra: dict[str, Any] = {}
    packets_n = 0
    if sent is not None:
        s_t, s_tag = sent
        n_rw = len(rw.frame)
        # tcpreplay sends the file in order, loop after loop: the k-th capture is file packet
        # k mod n (the capture filter keeps only the frames tcpreplay sent to the peer)
        s_idx = np.arange(len(s_t)) % max(n_rw, 1)
        mism = int(((s_tag >= 0) & (s_tag != s_idx)).sum())
        if mism:
            notes.append(f"{mism} captured packets are out of file order (the capture dropped "
                         "some): their tags place them")
            s_idx = np.where(s_tag >= 0, np.minimum(s_tag, n_rw - 1), s_idx)
        match = assemble.match_messages(s_tag, s_t, r_tag, np.where(r_tk > 0, r_tk, r_tr))
        unmatched = int((match < 0).sum())
        if unmatched:
            notes.append(f"{unmatched} messages read could not be matched to a packet sent")
        reasons = assemble.drop_reasons(cblock)
        tables["packets"] = assemble.packets_table(
            sent_t=s_t, sent_index=s_idx, frame=rw.frame, proto=rw.proto, sport=rw.sport,
            dport=rw.dport, frag=rw.frag, n_rewritten=n_rw, bound_ports=bound, match=match,
            recv_app=app_idx,
            recv_tk=r_tk, recv_tr=r_tr, recv_ts=r_ts, recv_td=r_td, rx_cpu=sender_cpu,
            reasons=reasons, t0=t0)
        packets_n = len(s_t)
        pk = pl.from_arrow(tables["packets"])
        assert isinstance(pk, pl.DataFrame)
        dl = pk.filter(pl.col("outcome") == "delivered")
        lat = (dl["t_done"] - dl["t_wire"]).to_numpy()
        read_lat = (dl["wait_driver"] + dl["wait_copy"]).to_numpy()
        outcomes = {o: int((pk["outcome"] == o).sum()) for o in
                    ("delivered", "dropped", "consumed", "ignored")}
        drops = (pk.filter(pl.col("outcome") == "dropped")
                 .group_by(["drop_stage", "drop_reason"]).len().sort("len", descending=True))
        summary_extra = {
            "received": packets_n,
            "outcomes": outcomes,
            "drops": [{"stage": s, "reason": r, "count": int(c)} for s, r, c in drops.iter_rows()],
            "latency_ns": assemble.percentiles(lat),
            "read_latency_ns": assemble.percentiles(read_lat),
            "duration_ns": int(max(pk["t_done"].max() or 0, pk["t_wire"].max() or 0)),
        }
    perf_info: dict[str, Any] = {"recorded": samples_txt is not None,
                                 "stderr": perf_err.strip()[-500:]}
    m = re.search(r"lost (\d+) chunks", perf_err) or re.search(r"(\d+) lost samples", perf_err)
    if m:
        notes.append(f"perf lost samples ({m[0]}): CPU shares undercount the busiest CPU")
    m = re.search(r"received/dropped on interface '[^']+': (\d+)/(\d+)", cap_err)
    if m and int(m[2]):
        notes.append(f"the capture of what was sent dropped {m[2]} packets: those have no "
                     "row in packets.parquet (the counters still count them)")
    cpu_busy = [0] * hostinfo.ncpus()
    if samples_txt is not None:
        chains, leaves = samples_txt
        s = parse_perf_script(chains.splitlines(), parse_leaves(leaves.splitlines()))
        t0_mono = t0 - off_real_mono
        # the traffic window, plus one sampling period either side
        span = int(summary_extra.get("duration_ns", 0)) or None
        win = (t0_mono - opts.perf_period_ns, t0_mono + span + opts.perf_period_ns) \
            if span else None
        keep = assemble.keep_samples(s, recv_pids | {sender_pid}, win)
        cpu = assemble.cpu_table(s, keep, t0_mono, recv_pids)
        tables["cpu"] = assemble.cpu_arrow(cpu)
        idle = np.asarray(s.idle, bool)
        wake = keep & np.asarray(s.wakeup, bool)
        for c, n in cpu.group_by("cpu").agg(pl.col("ns").sum()).iter_rows():
            if c < len(cpu_busy):
                cpu_busy[c] = int(n)
        perf_info.update(
            event="cpu-clock", period_ns=opts.perf_period_ns, samples=len(s),
            kept=int(keep.sum()), idle=int(idle.sum()),
            other=int((~keep & ~idle).sum()),
            categories_rx=assemble.category_shares(cpu),
            # CPU under sock_def_readable (waking the reader), inside stage l4's figure
            wakeup_ns=int(np.asarray(s.period, np.int64)[wake].sum()),
            window_ns=[0, span] if span else None,
            note="kept: samples of the sender and receivers, and any sample whose callchain "
                 "is on the receive path, between the first packet sent and the last message "
                 "handled; idle and other processes' samples are left out",
        )
    tables["events"] = EVENTS_SCHEMA.empty_table()
    notes.append("events.parquet is empty: a real run records no per-poll events "
                 "(no tracepoints are enabled)")

    run_cfg = copy.deepcopy(cfg)
    run_cfg["host"]["addresses"] = [pair.ns_ip]
    run_cfg["nic"]["driver"] = "veth"
    run_cfg["nic"]["combined"] = 1
    # where the sender ran and its name: veth runs the receive path in its context (§3c)
    run_cfg["nic"]["sender-cpu"] = sender_cpu
    run_cfg["nic"]["sender"] = sender_comm[:15]
    small_head = hostinfo.skb_small_head()
    if small_head:
        run_cfg["host"]["skb-small-head"] = small_head
    # what the peer really had: GRO decides veth's path (KERNEL.md §3c)
    run_cfg["nic"]["gro"] = bool(effective.pop("nic.gro", False))
    run_cfg["sysctl"].update(effective)
    apps_info = []
    for i, a, pl_, r in recs:
        apps_info.append({"app": i, "name": a["name"], "ports": pl_, "cpu": a["cpu"],
                          "batch": a["batch"], "work-ns": a["work-ns"],
                          "rcvbuf_requested": a["rcvbuf"],
                          "sk_rcvbuf": [int(x) for x in r["sk_rcvbuf"]],
                          "messages": len(r["tag"]),
                          "recv_call": "recvmsg" if a["batch"] == 1 else "recvmmsg"})
    summary = {
        "frames": rw.frames_total,
        "packets": packets_n,
        "received": packets_n,
        "outcomes": {"delivered": len(r_tag), "dropped": 0, "consumed": 0, "ignored": 0},
        "drops": [],
        "latency_ns": assemble.percentiles(np.zeros(0)),
        "duration_ns": 0,
        **summary_extra,
        "cpu_busy_ns": cpu_busy,
    }
    run_json = {
        "tool": {"name": "stack-replay", "version": __version__},
        "command": command,
        "inputs": inputs,
        "config": run_cfg,
        "costs": {"name": "real-kernel", "note": "measured on this machine; no cost profile"},
        "replay": ro.to_dict(),
        "seed": 0,
        "host": {"addresses": [pair.ns_ip], "inferred": rw.inferred,
                 "note": f"the trace's host {rw.host_ip} was rewritten to {pair.ns_ip}"},
        "summary": summary,
        "counters": cblock,
        "real": {
            "kernel": hostinfo.kernel_release(), "hz": hz, "hz_source": hz_src,
            "cpu": hostinfo.cpu_model(), "cpus": hostinfo.ncpus(),
            "priority": opts.priority, "receiver": opts.receiver, "netns": pair.name,
            "veth": {"host": pair.host_if, "peer": pair.ns_if, "mtu": pair.mtu,
                     "host_ip": pair.host_ip, "ns_ip": pair.ns_ip},
            "sender": {"cpu": sender_cpu, "comm": sender_comm, "argv": snd_argv,
                       **sender_stats},
            "capture": {"tool": "dumpcap", "stderr": cap_err.strip()[-500:]},
            "apps": apps_info, "perf": perf_info, "notes": notes,
        },
    }
    # the raw measurements beside the tables: what tcpreplay was given, what the capture saw
    # leave (the model replays these true send times), and every message the receivers read
    extra = {"send.pcap": rw.path}
    if sent_path is not None and sent_path.exists():
        extra["sent.pcapng"] = sent_path
    run_json["real"]["files"] = {
        "send.pcap": "the rewritten trace handed to tcpreplay",
        "sent.pcapng": "what left the sending veth end, with send times (dumpcap)",
        "messages.parquet": "one row per message read: app, port, tag, len, t_kernel "
                            "(SO_TIMESTAMPNS), t_read, t_start, t_done (CLOCK_REALTIME ns)",
    }
    msgs = pa.table({
        "app": pa.array(app_idx, pa.uint16()), "port": pa.array(cat("port"), pa.int32()),
        "tag": pa.array(r_tag, pa.int64()), "len": pa.array(cat("len"), pa.int32()),
        "t_kernel": pa.array(r_tk, pa.int64()), "t_read": pa.array(r_tr, pa.int64()),
        "t_start": pa.array(r_ts, pa.int64()), "t_done": pa.array(r_td, pa.int64()),
    })
    write_run(run_dir, run_json, tables, extra_files=extra,
              extra_tables={"messages": msgs})
    return RunResult(run_dir, summary, notes)
