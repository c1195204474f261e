"""`replay run` end to end: the marginal cost per million frames, T(4M) − T(1M) over 3.

    PYTHONPATH=$PWD python benchmarks/bench_run.py                 # UDP flood, 1M and 4M frames
    PYTHONPATH=$PWD python benchmarks/bench_run.py --repeat 3 --keep /tmp/bench-run
    PYTHONPATH=$PWD python benchmarks/bench_run.py --sections      # where one 1M run spends its time

Traces: `replay synth udp-flood --rate 2Mpps --size 64 --flows 64` for 0.5 s and 2 s (1M and 4M
frames, evenly spaced, so the model's work per frame is the same in both). Each `replay run` is a
child process (read + model + all four Parquet files + run.json); its start-up (imports, numba
cache load) is the same for both sizes, so (T(4M) − T(1M)) / 3 is what a million more frames cost.
Reported in child CPU seconds (user + sys: what the work costs on a shared machine; user alone
beside it, since the system part is mostly page faults whose cost depends on the VM's memory
state), in wall seconds, and as the child's peak RSS (the steadiest of the four: the same run's
system time varied 2x from one run to the next here); with --repeat the minimum of each is taken.
The issue's target: ≤ 0.5 s per million.

--sections runs the 1M trace in this process and prints wall and CPU time of each part: reading,
column preparation, the compiled engine, table building, summary/counters, Parquet writing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def synth(out: Path, duration: float) -> None:
    cmd = [sys.executable, "-m", "replay", "synth", "udp-flood", "-o", str(out), "--rate", "2Mpps",
           "--duration", str(duration), "--size", "64", "--flows", "64"]
    subprocess.run(cmd, check=True, cwd=REPO, env=_env(), stdout=subprocess.DEVNULL)


def replay_run(trace: Path, out: Path) -> tuple[float, float, float, float]:
    """(CPU seconds, wall seconds, user seconds, peak RSS in MB) of one `replay run` process."""
    if out.exists():
        shutil.rmtree(out)
    w0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "replay", "run", str(trace), "-o", str(out)],
                         cwd=REPO, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         text=True)
    assert p.stderr is not None
    err = p.stderr.read()
    # wait4: this child's own rusage (RUSAGE_CHILDREN's ru_maxrss is the largest of all children)
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - w0
    if p.returncode != 0:
        raise SystemExit(f"replay run {trace} failed:\n{err}")
    return ru.ru_utime + ru.ru_stime, wall, ru.ru_utime, ru.ru_maxrss / 1024


def sections(trace: Path, out: Path) -> None:
    """Time each part of one run in this process (after a warm-up that loads numba's cache)."""
    from replay.capture import read_captures
    from replay.model import engine, outcols
    from replay.model import simulate as sm
    from replay.model.config import resolve_config
    from replay.model.costs import load_profile
    from replay.runner import ReplayOptions, keep_freed_memory
    from replay.store.rundir import write_run

    keep_freed_memory()
    cfg = resolve_config(None, [])
    profile = load_profile("default")
    spent: dict[str, list[float]] = {}

    def clock(name: str, fn):  # type: ignore[no-untyped-def]
        def wrapped(*a, **k):  # type: ignore[no-untyped-def]
            c0, w0 = time.process_time(), time.perf_counter()
            r = fn(*a, **k)
            s = spent.setdefault(name, [0.0, 0.0])
            s[0] += time.perf_counter() - w0
            s[1] += time.process_time() - c0
            return r
        return wrapped

    c0, w0 = time.process_time(), time.perf_counter()
    table = read_captures([str(trace)]).table
    read = (time.perf_counter() - w0, time.process_time() - c0)
    sm.simulate(table.slice(0, 2000), cfg, profile, ReplayOptions())  # numba cache load
    patched = {(engine, "run_loop"): "engine run_loop", (sm, "_packets_table"): "packets table",
               (sm, "_cpu_table"): "cpu table", (sm, "_events_table"): "events table",
               (sm, "_counters"): "counters", (sm, "_summary"): "summary"}
    orig = {k: getattr(*k) for k in patched}
    for (mod, attr), name in patched.items():
        setattr(mod, attr, clock(name, getattr(mod, attr)))
    try:
        c0, w0 = time.process_time(), time.perf_counter()
        res = sm.simulate(table, cfg, profile, ReplayOptions())
        sim = (time.perf_counter() - w0, time.process_time() - c0)
    finally:
        for (mod, attr), fn in orig.items():
            setattr(mod, attr, fn)
    c0, w0 = time.process_time(), time.perf_counter()
    if out.exists():
        shutil.rmtree(out)
    write_run(out, {"config": cfg, "seed": 0},
              {"frames": table, "packets": res.packets, "cpu": res.cpu, "events": res.events})
    wr = (time.perf_counter() - w0, time.process_time() - c0)
    inner = [sum(v[i] for v in spent.values()) for i in (0, 1)]
    print(f"{'1M-frame run, in process':30}{'wall s':>9}{'CPU s':>9}")
    print(f"{'read (capture → frames)':30}{read[0]:9.3f}{read[1]:9.3f}")
    print(f"{'simulate: preparation':30}{sim[0] - inner[0]:9.3f}{sim[1] - inner[1]:9.3f}")
    for name, (w, c) in spent.items():
        print(f"{'simulate: ' + name:30}{w:9.3f}{c:9.3f}")
    print(f"{'write_run (4 Parquet + json)':30}{wr[0]:9.3f}{wr[1]:9.3f}")
    print(f"rows: packets {res.packets.num_rows}, cpu {res.cpu.num_rows}, events {res.events.num_rows}"
          f"  ({outcols.__name__} builds the packet columns)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=1, help="runs per size; the minimum is kept")
    ap.add_argument("--keep", type=Path, help="keep the traces (and reuse them) in this folder")
    ap.add_argument("--sections", action="store_true", help="time the parts of one 1M run")
    a = ap.parse_args()
    tmp = a.keep or Path(tempfile.mkdtemp(prefix="bench-run-"))
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        t1, t4 = tmp / "flood1m.pcap", tmp / "flood4m.pcap"
        if not t1.exists():
            synth(t1, 0.5)
        if a.sections:
            sections(t1, tmp / "run-sections")
            return
        if not t4.exists():
            synth(t4, 2.0)
        load0 = os.getloadavg()[0]
        replay_run(t1, tmp / "run-warm")  # numba cache, page cache
        r1 = [replay_run(t1, tmp / "run1m") for _ in range(a.repeat)]
        r4 = [replay_run(t4, tmp / "run4m") for _ in range(a.repeat)]
        c1, w1, u1, m1 = (min(r[i] for r in r1) for i in range(4))
        c4, w4, u4, m4 = (min(r[i] for r in r4) for i in range(4))
        print(f"{'replay run (udp-flood 64 B)':30}{'CPU s':>9}{'user s':>9}{'wall s':>9}{'peak MB':>9}")
        print(f"{'1M frames':30}{c1:9.2f}{u1:9.2f}{w1:9.2f}{m1:9.0f}")
        print(f"{'4M frames':30}{c4:9.2f}{u4:9.2f}{w4:9.2f}{m4:9.0f}")
        print(f"per million beyond start-up: {(c4 - c1) / 3:.2f} s CPU ({(u4 - u1) / 3:.2f} user), "
              f"{(w4 - w1) / 3:.2f} s wall, {(m4 - m1) / 3:.0f} MB of peak RSS   (target <= 0.5 s; "
              f"load average {load0:.1f} -> {os.getloadavg()[0]:.1f}; system time is mostly "
              "first-touched memory)")
    finally:
        if a.keep is None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
