"""Engine speed: the compiled engine vs a SimPy model of the same core loop, and `replay run` 1M vs 4M.

    PYTHONPATH=$PWD python benchmarks/bench_engine.py            # 1M-frame UDP flood + 4M end to end
    PYTHONPATH=$PWD python benchmarks/bench_engine.py --no-e2e   # engine vs SimPy only

Side by side in one run, on one generated trace (`replay synth udp-flood --rate 2Mpps --duration 0.5
--size 64 --flows 64`, 1M frames):

1. the engine alone: user CPU time of the compiled loop `engine.run_loop` (its system time, page
   faults of fresh output buffers, is printed beside it and varies with the VM), excluding
   column preparation and table building, on the default config (4 CPUs, 4 queues, GRO on) and on
   SimPy's shape (`host.cpus=1`, `nic.combined=1`); numba's compile/cache load happens in a warm-up
   on the trace's first 2000 frames first; best of two runs (the first also faults memory in);
2. a SimPy model of the same core loop: one queue, one CPU, the NIC ring (same usable size), IRQ
   moderation by rx-usecs, the hard IRQ, net_rx_action with budget and NAPI weight 64, and fixed
   per-stage costs (the default profile's base costs) fed with the engine's own arrival times
   (descriptor write-back times). Per packet it takes the engine's two steps: driver+GRO, then the
   stack (netif..udp) — one SimPy timeout each. It does less than the engine (no socket, no reader
   thread, no GRO table, no per-stage times), so the ratio is also printed per event;
3. the engine alone on a TCP download (`replay synth https-download --rate 10G --duration 0.3`,
   replayed 3 times): GRO merges, the default config — packets received per CPU second;
4. end to end: `replay run` (read + model + all Parquet) as a child process on 1M and 4M frames;
   cost per million beyond start-up = (T(4M) - T(1M)) / 3, in child CPU seconds (user+sys) and wall
   (benchmarks/bench_run.py does this alone, with --repeat and a per-part breakdown).

The issue's targets: engine ≥ 5 M packets/s, ≥ 100x SimPy, ≤ 0.5 s per million frames end to end.
The machine is shared: CPU time is the figure to read; wall is printed beside it.
"""

from __future__ import annotations

import argparse
import collections
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def synth(out: Path, duration: float) -> None:
    """A UDP flood of 64-byte frames at 2 Mpps over 64 flows (deterministic bytes)."""
    cmd = [sys.executable, "-m", "replay", "synth", "udp-flood", "-o", str(out), "--rate", "2Mpps",
           "--duration", str(duration), "--size", "64", "--flows", "64"]
    subprocess.run(cmd, check=True, cwd=REPO, env=_env(), stdout=subprocess.DEVNULL)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def synth_download(out: Path) -> None:
    """A TLS download seen at the client: 10 Gbit/s for 0.3 s, 365,737 frames (a third are the
    client's own ACKs, which the host does not receive); replayed 3 times with -l 3."""
    cmd = [sys.executable, "-m", "replay", "synth", "https-download", "-o", str(out), "--rate",
           "10G", "--duration", "0.3"]
    subprocess.run(cmd, check=True, cwd=REPO, env=_env(), stdout=subprocess.DEVNULL)


def engine_alone(trace: Path, sets: list[str] | None = None, loop: int = 1) -> dict[str, Any]:
    """Run the model in process with run_loop wrapped by a CPU-time clock (best of 2 runs)."""
    from replay.capture import read_captures
    from replay.model import engine
    from replay.model import layout as L  # noqa: N812
    from replay.model import simulate as sm
    from replay.model.config import resolve_config
    from replay.model.costs import load_profile
    from replay.runner import ReplayOptions, keep_freed_memory

    keep_freed_memory()  # as `replay run` does: freed buffers are reused, not faulted in again
    table = read_captures([str(trace)]).table
    cfg = resolve_config(None, list(sets or []))
    profile = load_profile("default")
    orig, orig_new = engine.run_loop, sm.new_state
    seen: dict[str, Any] = {"cpu": 0.0, "sys": 0.0, "wall": 0.0, "calls": 0}

    def timed(S: Any) -> int:
        r0, w0 = resource.getrusage(resource.RUSAGE_THREAD), time.perf_counter()
        r = orig(S)
        r1 = resource.getrusage(resource.RUSAGE_THREAD)
        seen["cpu"] += r1.ru_utime - r0.ru_utime
        seen["sys"] += r1.ru_stime - r0.ru_stime
        seen["wall"] += time.perf_counter() - w0
        seen["calls"] += 1
        return r

    def capture(arrays: dict[str, Any]) -> Any:
        # the engine's input arrays, by name (model/state.py); simulate drops the per-packet
        # ones after building its tables, so the arrival times are copied now
        seen["arrays"] = arrays
        seen["t_vis"] = arrays["pk"][:, L.F_T_VIS].copy()
        return orig_new(arrays)

    engine.run_loop, sm.new_state = timed, capture
    try:
        w0 = time.perf_counter()
        sm.simulate(table.slice(0, 2000), cfg, profile, ReplayOptions())  # compile / cache load
        warm = time.perf_counter() - w0
        best = None
        for _ in range(2):  # the first run also faults in fresh memory; keep the better one
            seen.update(cpu=0.0, sys=0.0, wall=0.0, calls=0)
            res = sm.simulate(table, cfg, profile, ReplayOptions(loop=loop))
            if best is None or seen["cpu"] < best[0]:
                best = (seen["cpu"], seen["sys"], seen["wall"], seen["calls"])
        seen["cpu"], seen["sys"], seen["wall"], seen["calls"] = best
    finally:
        engine.run_loop, sm.new_state = orig, orig_new
    arrays = seen.pop("arrays")
    seen["P"], seen["cbase"] = arrays["P"], arrays["cbase"]
    seen["events"] = int(arrays["misc"][3:7].sum())
    seen["n"] = len(seen["t_vis"])
    seen["warmup_wall"] = warm
    seen["outcomes"] = res.summary["outcomes"]
    seen["received"] = res.summary["received"]
    return seen


def simpy_loop(t_arr: np.ndarray, P: np.ndarray, cbase: np.ndarray) -> dict[str, Any]:
    """One queue, one CPU: ring → moderated IRQ → net_rx_action(budget) → poll(weight) → stack."""
    import simpy

    from replay.model import layout as L  # noqa: N812

    ring_usable = int(P[L.P_RING_USABLE])
    weight = int(P[L.P_WEIGHT])
    budget0 = int(P[L.P_BUDGET])
    usecs = int(P[L.P_USECS])
    c_irq = int(cbase[L.C_HARDIRQ])
    c_nra = int(cbase[L.C_SOFTIRQ] + cbase[L.C_NRA])
    c_poll = int(cbase[L.C_POLL])
    c_drv = int(cbase[L.C_DRIVER] + cbase[L.C_GRO])  # the engine's ST_PKT step
    c_stack = int(sum(cbase[k] for k in (L.C_NETIF, L.C_IP, L.C_ROUTE, L.C_LOCAL, L.C_UDP)))

    env = simpy.Environment()
    ring: collections.deque[int] = collections.deque()
    st = {"irq_en": True, "armed": False, "processed": 0, "missed": 0, "irqs": 0, "polls": 0,
          "events": 0}
    irq = [env.event()]

    def irq_timer() -> Any:
        # rx-usecs after the first completion (ethtool_coalesce); masked until napi_complete_done
        st["events"] += 1
        yield env.timeout(usecs)
        st["armed"] = False
        st["irq_en"] = False
        st["irqs"] += 1
        if not irq[0].triggered:
            irq[0].succeed()

    def nic() -> Any:
        for t in t_arr.tolist():
            if t > env.now:
                st["events"] += 1
                yield env.timeout(t - env.now)
            if len(ring) >= ring_usable:
                st["missed"] += 1
                continue
            ring.append(t)
            if st["irq_en"] and not st["armed"]:
                st["armed"] = True
                env.process(irq_timer())

    def cpu() -> Any:
        while True:
            st["events"] += 1
            yield irq[0]
            irq[0] = env.event()
            st["events"] += 1
            yield env.timeout(c_irq)
            done = False
            while not done:  # net_rx_action; restarted while the NAPI used its whole weight
                budget = budget0
                st["events"] += 1
                yield env.timeout(c_nra)
                while budget > 0:
                    st["polls"] += 1
                    st["events"] += 1
                    yield env.timeout(c_poll)
                    work = 0
                    while work < weight and ring:
                        ring.popleft()
                        st["events"] += 1
                        yield env.timeout(c_drv)
                        st["events"] += 1
                        yield env.timeout(c_stack)
                        work += 1
                    st["processed"] += work
                    budget -= work
                    if work < weight:  # napi_complete_done: re-enable the IRQ
                        st["irq_en"] = True
                        if ring and not st["armed"]:
                            st["armed"] = True
                            env.process(irq_timer())
                        done = True
                        break

    env.process(nic())
    env.process(cpu())
    r0, w0 = resource.getrusage(resource.RUSAGE_THREAD), time.perf_counter()
    env.run()
    st["cpu"] = resource.getrusage(resource.RUSAGE_THREAD).ru_utime - r0.ru_utime
    st["wall"] = time.perf_counter() - w0
    return st


def replay_run(trace: Path, out: Path) -> tuple[float, float]:
    """(child CPU seconds, wall seconds) of one `replay run` process."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    w0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "replay", "run", str(trace), "-o", str(out)],
                       cwd=REPO, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       text=True)
    if p.returncode != 0:
        raise SystemExit(f"replay run {trace} failed:\n{p.stderr}")
    wall = time.perf_counter() - w0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime), wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--no-e2e", action="store_true", help="skip the 1M vs 4M `replay run`")
    ap.add_argument("--keep", type=Path, help="keep the traces and runs in this folder")
    a = ap.parse_args()
    tmp = a.keep or Path(tempfile.mkdtemp(prefix="bench-engine-"))
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        t1 = tmp / "flood1m.pcap"
        if not t1.exists():
            synth(t1, 0.5)
        load0 = os.getloadavg()[0]
        e = engine_alone(t1)
        e1 = engine_alone(t1, ["host.cpus=1", "nic.combined=1"])  # SimPy's shape: one queue, one CPU
        s = simpy_loop(e1["t_vis"], e1["P"], e1["cbase"])
        n = e["n"]
        eng_pps = n / e["cpu"]
        eng1_pps = n / e1["cpu"]
        sim_pps = n / s["cpu"]
        print(f"trace: {t1.name}, {n} frames; warm-up (compile or cache load) {e['warmup_wall']:.1f} s wall")
        print(f"{'':34}{'user s':>9}{'sys s':>9}{'wall s':>9}{'M pkt/s (user)':>15}{'events':>10}")
        print(f"{'engine.run_loop (4 CPU, GRO on)':34}{e['cpu']:9.3f}{e['sys']:9.3f}{e['wall']:9.3f}"
              f"{eng_pps / 1e6:15.3f}{e['events']:10}")
        print(f"{'engine.run_loop (1 CPU, 1 queue)':34}{e1['cpu']:9.3f}{e1['sys']:9.3f}"
              f"{e1['wall']:9.3f}{eng1_pps / 1e6:15.3f}{e1['events']:10}")
        print(f"{'SimPy core loop (1 CPU, 1 queue)':34}{s['cpu']:9.3f}{'':9}{s['wall']:9.3f}"
              f"{sim_pps / 1e6:15.3f}{s['events']:10}")
        print(f"engine / SimPy, same trace and shape: {eng1_pps / sim_pps:.1f}x per packet, "
              f"{(e1['events'] / e1['cpu']) / (s['events'] / s['cpu']):.1f}x per event"
              f"   (targets: engine >= 5 M pkt/s, >= 100x SimPy)")
        print(f"engine outcomes 4 CPU {e['outcomes']}, 1 CPU {e1['outcomes']}; SimPy processed "
              f"{s['processed']} missed {s['missed']} irqs {s['irqs']} polls {s['polls']}")
        td = tmp / "download.pcap"
        if not td.exists():
            synth_download(td)
        d = engine_alone(td, loop=3)
        print(f"TCP download ({td.name} x3, GRO on, 4 CPU): {d['n']} packets received "
              f"({d['outcomes']}), run_loop {d['cpu']:.3f} s user CPU = "
              f"{d['n'] / d['cpu'] / 1e6:.2f} M received pkt/s, {d['events']} events")
        print(f"load average {load0:.1f} -> {os.getloadavg()[0]:.1f}")
        if not a.no_e2e:
            t4 = tmp / "flood4m.pcap"
            if not t4.exists():
                synth(t4, 2.0)
            c1, w1 = replay_run(t1, tmp / "run1m")
            c4, w4 = replay_run(t4, tmp / "run4m")
            print(f"{'replay run':34}{'CPU s':>9}{'wall s':>9}")
            print(f"{'1M frames':34}{c1:9.2f}{w1:9.2f}")
            print(f"{'4M frames':34}{c4:9.2f}{w4:9.2f}")
            print(f"per million beyond start-up: {(c4 - c1) / 3:.2f} s CPU, {(w4 - w1) / 3:.2f} s wall"
                  "   (target <= 0.5 s)")
    finally:
        if a.keep is None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
