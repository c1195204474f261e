"""A trace + config → a real run on this kernel (netns + veth + tcpreplay + perf) → a run directory.

The sequence (every step bounded in time; the namespace is removed on every exit path):
  1. rewrite the trace onto the veth pair (rewrite.py) and size the MTU to its largest packet;
  2. create the namespace and pair (netns.py); apply the config's namespaced sysctls inside it;
  3. start one receiver per [[app]] inside the namespace, pinned (receiver.py); wait until bound;
  4. start dumpcap on the sending end (what was actually sent, with send times), snapshot the
     counters, start `perf record -a -g` (when perf is installed);
  5. run tcpreplay pinned to the sender CPU with the replay options, bounded by -L and --duration;
  6. wait for the receivers to drain and exit, stop perf and dumpcap, snapshot the counters;
  7. assemble the run directory (assemble.py) in the format of `replay run`.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from replay.model.config import load_file, parse_overrides, resolve_config
from replay.model.match import match_mask, parse_match
from replay.real import counters, hostinfo
from replay.real.finish import finish as _finish
from replay.real.netns import (
    Namespace,
    RealError,
    VethPair,
    check_root,
    pair_for,
    peer_gro,
    run_cmd,
)
from replay.real.pcapraw import read_records
from replay.real.rewrite import Rewritten, rewrite
from replay.runner import ReplayOptions, RunResult

HOST_MAC = "02:73:72:00:00:01"  # locally administered ("sr"): known before the pair exists
NS_MAC = "02:73:72:00:00:02"
NAMESPACED_OK = ("net.core.rmem_default", "net.core.rmem_max")


@dataclass(frozen=True)
class RealOptions:
    """How the harness runs, beyond the config and the replay options."""

    sender_cpu: int | None = None  # None: the first CPU no [[app]] uses
    perf: bool = True  # record perf samples when perf is installed
    perf_period_ns: int = 100_000  # cpu-clock period: 10 kHz per CPU
    capture: bool = True  # capture what was sent (needs dumpcap)
    host_sysctl: bool = False  # also set host-wide net.core knobs (restored afterwards)
    max_seconds: float = 30.0  # bound on the replay
    max_packets: int = 2_000_000  # bound on packets sent
    idle_s: float = 0.2  # once sending has ended, a receiver stops this long after its last message
    # The model has no other tenants on the CPUs; on a shared machine other tasks take the
    # sender's and receivers' CPUs and spread the results. "fifo" (SCHED_FIFO 50) keeps them
    # off: measured here with two other test suites loading both CPUs, a 40 kpps flood into a
    # reader with 20 us of work per message was 100% delivered in 3 of 3 runs with fifo, and
    # 16-32% with nice -20 or normal priority (CFS weights only compete inside one cgroup, and
    # the other tenants sit in their own). RT throttling (kernel.sched_rt_runtime_us, 95%)
    # still leaves the CPU to others for 50 ms a second; runs are bounded to seconds.
    priority: str = "fifo"
    # the receivers' loop: "compiled" (replay/real/fastloop.py: the app does what its [[app]]
    # says and little else) or "python" (about 5 us of its own per message on this VM)
    receiver: str = "compiled"


def _write_counters(pair: VethPair) -> dict[str, Any]:
    """One snapshot: host-wide softnet/softirqs, the namespace's snmp files and link stats."""
    snap: dict[str, Any] = {
        "softnet_stat": counters.parse_softnet_stat(Path("/proc/net/softnet_stat").read_text()),
        "softirqs": counters.parse_softirqs(Path("/proc/softirqs").read_text()),
    }
    sep = "@@sr@@"
    text = run_cmd(pair.ns_exec("sh", "-c",
                                f"cat /proc/net/snmp; echo {sep}; cat /proc/net/netstat; "
                                f"echo {sep}; cat /proc/net/snmp6; echo {sep}; "
                                f"cd /sys/class/net/{pair.ns_if}/statistics && grep . *"),
                   "reading the namespace's counters")
    snmp, netstat, snmp6, link = text.split(sep + "\n")
    snap["snmp"] = counters.parse_snmp(snmp)
    snap["netstat"] = counters.parse_snmp(netstat)
    snap["snmp6"] = counters.parse_snmp6(snmp6)
    snap["link"] = {k: int(v) for k, _, v in (ln.partition(":") for ln in link.split()) if v}
    return snap


def _app_ports(cfg: dict[str, Any], rw: Rewritten, nsb16: bytes) -> list[list[int]]:
    """The UDP destination ports each [[app]] receives, from its match string."""
    n = len(rw.proto)
    has = rw.dport >= 0
    src = np.zeros((n, 16), np.uint8)
    dst = np.tile(np.frombuffer(nsb16, np.uint8), (n, 1))
    out = []
    for i, a in enumerate(cfg["app"]):
        m = match_mask(parse_match(a["match"], f"app[{i}].match"), rw.proto.astype(np.int64),
                       rw.sport.astype(np.int64), rw.dport.astype(np.int64), has, src, dst)
        ports = sorted({int(p) for p in rw.dport[m & (rw.proto == 17)]})
        out.append(ports[:64])
    return out


def _infer_apps(rw: Rewritten, cpus: int) -> list[dict[str, Any]]:
    """No [[app]]: one consumer of every UDP port the trace sends to, on the last CPU."""
    ports = sorted({int(p) for p in rw.dport[(rw.proto == 17) & (rw.dport >= 0)]})
    if not ports:
        return []
    lo, hi = ports[0], ports[-1]
    return [{"name": "app0", "match": f"udp dport {lo}" if lo == hi else f"udp portrange {lo}-{hi}",
             "cpu": cpus - 1, "threads": 1, "rcvbuf": None, "work-ns": 0, "batch": 1,
             "reuseport": False}]


def _sysctl_plan(cfg: dict[str, Any], pair: VethPair, opts: RealOptions,
                 notes: list[str]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Apply [sysctl] in the namespace where namespaced; return the effective values + restores."""
    effective: dict[str, Any] = {}
    restore: list[tuple[str, str]] = []
    for key, want in cfg["sysctl"].items():
        if want in (None, ""):
            continue
        ns = subprocess.run(pair.ns_exec("sysctl", "-n", key), capture_output=True, text=True,
                            check=False)
        if ns.returncode == 0:
            if str(want) != ns.stdout.strip():
                run_cmd(pair.ns_exec("sysctl", "-qw", f"{key}={want}"), f"setting {key}")
            effective[key] = int(want) if isinstance(want, int) else want
            continue
        host = subprocess.run(["sysctl", "-n", key], capture_output=True, text=True, check=False)
        if host.returncode != 0:
            notes.append(f"{key}: not present on this kernel; the run used the kernel's behaviour")
            continue
        cur = host.stdout.strip()
        if str(want) != cur and opts.host_sysctl:
            run_cmd(["sysctl", "-qw", f"{key}={want}"], f"setting {key} host-wide")
            restore.append((key, cur))
            effective[key] = want
            notes.append(f"{key} is host-wide (not per namespace): set to {want} for the run "
                         f"and restored to {cur}")
        else:
            if str(want) != cur:
                notes.append(f"{key} is host-wide (not per namespace): the run used the host's "
                             f"{cur}, not {want}; pass --host-sysctl to set it for the run")
            effective[key] = int(cur) if cur.lstrip("-").isdigit() else cur
    return effective, restore


def _stop(p: subprocess.Popen[Any] | None, sig: int = signal.SIGINT, wait: float = 10.0) -> None:
    """Stop one process this harness started: `sig`, then SIGKILL after `wait` seconds."""
    if p is None or p.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        p.send_signal(sig)
    try:
        p.wait(wait)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            p.kill()
        p.wait(5)


def _tcpreplay_argv(iface: str, pcap: Path, ro: ReplayOptions, opts: RealOptions,
                    cpu: int) -> list[str]:
    prio = {"nice": ["nice", "-n", "-20"], "fifo": ["chrt", "-f", "50"]}.get(opts.priority, [])
    argv = [*prio, "taskset", "-c", str(cpu), "tcpreplay", "-i", iface, "-K"]
    if ro.topspeed:
        argv.append("-t")
    elif ro.pps:
        argv += ["-p", str(ro.pps)]
    elif ro.mbps:
        argv += ["-M", str(ro.mbps)]
    elif ro.multiplier:
        argv += ["-x", str(ro.multiplier)]
    if ro.loop and ro.loop > 1:
        argv += ["-l", str(ro.loop)]
    limit = min(ro.limit or opts.max_packets, opts.max_packets)
    argv += ["-L", str(limit)]
    dur = min(ro.duration or opts.max_seconds, opts.max_seconds)
    argv += ["--duration", str(max(1, int(np.ceil(dur))))]
    return [*argv, str(pcap)]


def _parse_tcpreplay(text: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    m = re.search(r"Actual: (\d+) packets \((\d+) bytes\) sent in ([\d.]+) seconds", text)
    if m:
        out.update(packets=int(m[1]), bytes=int(m[2]), seconds=float(m[3]))
    m = re.search(r"Rated: ([\d.]+) Bps, ([\d.]+) Mbps, ([\d.]+) pps", text)
    if m:
        out.update(mbps=float(m[2]), pps=float(m[3]))
    for k in ("Failed packets", "Truncated packets"):
        m = re.search(rf"{k}:\s+(\d+)", text)
        if m:
            out[k.lower().replace(" ", "_")] = int(m[1])
    return out


def run_real(
    traces: list[str | Path],
    run_dir: str | Path,
    config_path: str | Path | None = None,
    overrides: list[str] | None = None,
    replay: ReplayOptions | None = None,
    opts: RealOptions | None = None,
    command: str = "replay real",
) -> RunResult:
    """Replay `traces` into a veth pair on this kernel and write a run directory."""
    check_root()
    ro = replay or ReplayOptions()
    opts = opts or RealOptions()
    if hostinfo.tool("tcpreplay") is None:
        raise RealError("tcpreplay is not installed; install it (apt-get install tcpreplay)")
    have_perf = opts.perf and hostinfo.tool("perf") is not None
    have_cap = opts.capture and hostinfo.tool("dumpcap") is not None
    ncpu = hostinfo.ncpus()
    hz, hz_src = hostinfo.config_hz()
    ov = parse_overrides(overrides or [])
    ov.update({"host.cpus": ncpu, "host.kernel": hostinfo.kernel_version(), "host.hz": hz})
    cfg = resolve_config(config_path, ov)
    gro_explicit = "nic.gro" in ov or (
        config_path is not None and "gro" in load_file(config_path).get("nic", {}))
    notes: list[str] = []
    if not have_perf:
        notes.append("perf is not installed (apt-get install linux-perf): no cpu.parquet samples")
    if not have_cap:
        notes.append("dumpcap is not installed (apt-get install tshark): send times unknown, "
                     "no packets.parquet")

    pair = pair_for(os.getpid())
    with tempfile.TemporaryDirectory(prefix="replay-real-") as tmpd:
        work = Path(tmpd)
        rw = rewrite(list(traces), work / "send.pcap", ns_ip=pair.ns_ip, host_ip=pair.host_ip,
                     ns_mac=NS_MAC, host_mac=HOST_MAC, addresses=cfg["host"]["addresses"])
        notes += rw.notes
        if not cfg["app"]:
            cfg["app"] = _infer_apps(rw, ncpu)
            if cfg["app"]:
                notes.append(f"no [[app]] in the config: one consumer of {cfg['app'][0]['match']}"
                             f" on CPU {ncpu - 1}")
        for a in cfg["app"]:
            if a["rcvbuf"] is None:
                a["rcvbuf"] = cfg["sysctl"]["net.core.rmem_default"]
            if a["threads"] != 1:
                raise RealError(f"app {a['name']}: threads = {a['threads']}; the real harness "
                                "runs one receiving thread per [[app]] (write one [[app]] each)")
        nsb16 = b"\x00" * 10 + b"\xff\xff" + bytes(int(x) for x in pair.ns_ip.split("."))
        ports = _app_ports(cfg, rw, nsb16)
        app_cpus = {a["cpu"] for a in cfg["app"]}
        sender_cpu = opts.sender_cpu
        if sender_cpu is None:
            free = [c for c in range(ncpu) if c not in app_cpus]
            sender_cpu = free[0] if free else 0
        if not 0 <= sender_cpu < ncpu:
            raise RealError(f"--sender-cpu {sender_cpu}: this machine has CPUs 0-{ncpu - 1}")
        mtu = max(1500, rw.max_ip_len)
        pair.host_mac, pair.ns_mac = HOST_MAC, NS_MAC
        procs: list[subprocess.Popen[Any]] = []
        restore: list[tuple[str, str]] = []
        try:
            with Namespace(pair, mtu=mtu, host_mac=HOST_MAC, ns_mac=NS_MAC):
                effective, restore = _sysctl_plan(cfg, pair, opts, notes)
                # nic.gro applies to the peer only when the config says so: the config's
                # default (true) describes NICs, while veth's own default is off (§3c)
                effective["nic.gro"] = peer_gro(pair, sys.executable,
                                                cfg["nic"]["gro"] if gro_explicit else None)
                rmem_default = int(effective.get("net.core.rmem_default", 212992))
                rmem_max = int(effective.get("net.core.rmem_max", 4194304))
                env = dict(os.environ)
                root = str(Path(__file__).resolve().parents[2])
                env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
                receivers = []
                bufsize = max(2048, rw.max_ip_len)
                for i, (a, pl_) in enumerate(zip(cfg["app"], ports, strict=True)):
                    if not pl_:
                        notes.append(f"app {a['name']} ({a['match']}) matches no UDP packet sent;"
                                     " not started")
                        continue
                    ready, out = work / f"ready{i}", work / f"app{i}.npz"
                    argv = pair.ns_exec(
                        sys.executable, "-m", "replay.real.receiver", "--addr", pair.ns_ip,
                        "--ports", ",".join(map(str, pl_)), "--name", a["name"][:15],
                        "--cpu", str(a["cpu"]), "--rcvbuf", str(a["rcvbuf"]),
                        "--rmem-default", str(rmem_default), "--rmem-max", str(rmem_max),
                        "--work-ns", str(a["work-ns"]), "--batch", str(a["batch"]),
                        "--bufsize", str(bufsize), "--max-messages", str(opts.max_packets),
                        "--deadline", str(opts.max_seconds + 10), "--idle", str(opts.idle_s),
                        "--priority", opts.priority, "--loop", opts.receiver,
                        "--stop-file", str(work / "sent-done"),
                        "--ready", str(ready), "--out", str(out))
                    with open(work / f"app{i}.err", "w") as errf:
                        p = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                                             stderr=errf)
                    procs.append(p)
                    receivers.append((i, a, pl_, p, ready, out))
                deadline = time.monotonic() + 15
                for i, a, _pl, p, ready, _out in receivers:
                    while not ready.exists():
                        if p.poll() is not None or time.monotonic() > deadline:
                            err = (work / f"app{i}.err").read_text().strip().splitlines()
                            raise RealError(f"receiver for app {a['name']} did not start: "
                                            f"{err[-1] if err else 'timed out'}")
                        time.sleep(0.02)
                # the measuring tools above the measured ones: a FIFO sender spinning on its CPU
                # would otherwise starve dumpcap (capture drops, measured: 5% at 1400 B) and
                # perf (lost samples); both sleep until their buffers need draining
                tool_prio = ["chrt", "-f", "60"] if opts.priority == "fifo" else []
                cap = None
                if have_cap:
                    cap = subprocess.Popen(
                        [*tool_prio, "taskset", "-c", str(sender_cpu), "dumpcap", "-i",
                         pair.host_if, "-q", "-B", "256", "-f",
                         f"ether src {HOST_MAC} and ether dst {NS_MAC}",
                         "-w", str(work / "sent.pcapng")],
                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                    procs.append(cap)
                    _wait_capturing(cap, work / "sent.pcapng")
                before = _write_counters(pair)
                perf = None
                if have_perf:
                    with open(work / "perf.err", "w") as errf:
                        perf = subprocess.Popen(
                            # kernel callchains only: unwinding the user stacks (the
                            # Python reader's are deep) at every sample costs the sampled
                            # task time that perf then charges to it; the leaf user symbol
                            # still comes from the sample's IP
                            # on the sender's CPU like dumpcap: the model is fed the
                            # captured send times, so work there moves nothing it predicts,
                            # while perf draining its buffers on a reader's CPU (FIFO 60)
                            # would stall the reader; -a still samples every CPU
                            [*tool_prio, "taskset", "-c", str(sender_cpu), "perf", "record",
                             "-a", "-g", "--kernel-callchains",
                             "-e", "cpu-clock", "-c",
                             str(opts.perf_period_ns), "-k", "mono", "-o",
                             str(work / "perf.data")],
                            stdout=subprocess.DEVNULL, stderr=errf)
                    procs.append(perf)
                    time.sleep(0.5)  # perf has opened its events once it has mmapped them
                off_real_mono = time.time_ns() - time.monotonic_ns()
                snd_argv = _tcpreplay_argv(pair.host_if, rw.path, ro, opts, sender_cpu)
                snd = subprocess.Popen(snd_argv, stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT, text=True)
                procs.append(snd)
                try:
                    snd_out, _ = snd.communicate(timeout=opts.max_seconds + 15)
                except subprocess.TimeoutExpired:
                    raise RealError(f"tcpreplay did not finish within {opts.max_seconds + 15:.0f}"
                                    " s") from None
                if snd.returncode != 0:
                    last = snd_out.strip().splitlines()
                    raise RealError(f"tcpreplay failed: {last[-1] if last else snd.returncode}")
                sender_stats = _parse_tcpreplay(snd_out)
                (work / "sent-done").touch()
                for _i, _a, _pl, p, _r, _o in receivers:
                    try:
                        p.wait(opts.idle_s + 5)
                    except subprocess.TimeoutExpired:
                        _stop(p, signal.SIGTERM)
                _stop(perf)
                time.sleep(0.1)
                _stop(cap)
                cap_err = cap.stderr.read() if cap is not None and cap.stderr else ""
                after = _write_counters(pair)
                # `ip netns exec` and `taskset` exec their command: the pids are the programs'
                recv_pids = {p.pid for *_x, p, _r, _o in receivers}
                d = counters.diff(before, after)
                cblock = counters.counters_block(d, d["link"])
                samples_txt = None
                perf_err = (work / "perf.err").read_text() if perf is not None else ""
                if perf is not None and (work / "perf.data").exists():
                    fields = ["-F", "comm,pid,tid,cpu,time,period,event,ip,sym,dso"]
                    pdata = ["perf", "script", "-i", str(work / "perf.data")]
                    samples_txt = subprocess.run(
                        [*pdata, *fields], capture_output=True, text=True, check=False,
                        timeout=300).stdout
                    leaves_txt = subprocess.run(
                        [*pdata, "-G", *fields], capture_output=True, text=True, check=False,
                        timeout=300).stdout
                    samples_txt = (samples_txt, leaves_txt)
                recs = []
                for i, a, pl_, _p, _r, out in receivers:
                    if not out.exists():
                        raise RealError(f"receiver for app {a['name']} wrote no records: "
                                        f"{(work / f'app{i}.err').read_text().strip()[-200:]}")
                    recs.append((i, a, pl_, dict(np.load(out))))
                sent = _read_sent(work / "sent.pcapng") if have_cap else None
                return _finish(
                    traces=traces, run_dir=Path(run_dir), cfg=cfg, effective=effective, rw=rw,
                    pair=pair, ro=ro, opts=opts, notes=notes, hz=hz, hz_src=hz_src,
                    sender_cpu=sender_cpu, sender_stats=sender_stats, snd_argv=snd_argv,
                    cap_err=cap_err, perf_err=perf_err, cblock=cblock, samples_txt=samples_txt,
                    off_real_mono=off_real_mono, recs=recs, recv_pids=recv_pids,
                    sender_pid=snd.pid, sent=sent,
                    sent_path=(work / "sent.pcapng") if have_cap else None,
                    command=command, sender_comm="tcpreplay",
                )
        finally:
            for p in procs:
                _stop(p, signal.SIGTERM, wait=3)
            for key, val in restore:
                subprocess.run(["sysctl", "-qw", f"{key}={val}"], capture_output=True, check=False)


def _wait_capturing(cap: subprocess.Popen[str], path: Path) -> None:
    """dumpcap is ready once it has written its file header (bounded: 10 s)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if cap.poll() is not None:
            err = cap.stderr.read() if cap.stderr else ""
            raise RealError(f"dumpcap could not capture on the sending end: {err.strip()[-200:]}")
        if path.exists() and path.stat().st_size > 0:
            time.sleep(0.1)
            return
        time.sleep(0.02)
    raise RealError("dumpcap did not start capturing within 10 s")


def _read_sent(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Sent capture → (send time ns realtime, tag or -1) per packet."""
    ts, tags = [], []
    for r in read_records(path):
        d = r.data
        tag = -1
        if len(d) >= 34 and d[12:14] == b"\x08\x00" and d[23] == 17:
            ihl = (d[14] & 0x0F) * 4
            frag = int.from_bytes(d[20:22], "big")
            ulen = int.from_bytes(d[14 + ihl + 4 : 14 + ihl + 6], "big")
            if frag & 0x1FFF == 0 and ulen >= 12 and len(d) >= 14 + ihl + 12:
                tag = int.from_bytes(d[14 + ihl + 8 : 14 + ihl + 12], "big")
        ts.append(r.ts_ns)
        tags.append(tag)
    return np.asarray(ts, np.int64), np.asarray(tags, np.int64)

