"""`replay run`'s reading and writing: in series around the replay vs beside it, side by side.

Both ways run in this process on the same 1M-frame UDP flood (made once with `replay synth
udp-flood --rate 2Mpps --size 64 --flows 64 --duration 0.5`, or --trace), alternating, after a
warm-up that loads numba's caches:

  serial    read_captures(sha256="background"), simulate, then write_run with all four
            tables: the order `replay run` had before RunWriter
  overlap   what replay/runner.py does now: RunWriter opened first, frames.parquet handed over
            right after the reading (encoded while the model replays), the sha256 started after
            the reading, packets/cpu/events handed over by simulate(on_table=) as each is built,
            then RunWriter.finish

It prints wall and CPU seconds of each step (CPU counts every thread of the process, so the
overlapped encodes show up in the simulate step's CPU) and the wall time left after simulate
returns, which is what the overlap removes. Only wall time can improve: the work is the same,
and on a loaded machine the second core may not be free (the load average is printed).

    PYTHONPATH=$PWD python benchmarks/bench_overlap.py [--trace T] [--repeat 3]
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
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


class _Clock:
    def __init__(self) -> None:
        self.steps: list[tuple[str, float, float]] = []
        self.w, self.c = time.perf_counter(), time.process_time()

    def step(self, name: str) -> None:
        w, c = time.perf_counter(), time.process_time()
        self.steps.append((name, w - self.w, c - self.c))
        self.w, self.c = w, c


def serial(trace: Path, out: Path, cfg: dict[str, Any], profile: dict[str, Any]) -> _Clock:
    from replay.capture import read_captures
    from replay.model.simulate import simulate
    from replay.runner import ReplayOptions
    from replay.store.rundir import write_run

    clock = _Clock()
    cap = read_captures([str(trace)], sha256="background")
    clock.step("read")
    sim = simulate(cap.table, cfg, profile, ReplayOptions())
    clock.step("simulate")
    run_json = {"config": cfg, "seed": 0, "inputs": [i.sha256 for i in cap.inputs]}
    write_run(out, run_json, {"frames": cap.table, "packets": sim.packets, "cpu": sim.cpu,
                              "events": sim.events})  # fmt: skip
    clock.step("after simulate: sha256, write_run")
    return clock


def overlap(trace: Path, out: Path, cfg: dict[str, Any], profile: dict[str, Any]) -> _Clock:
    from replay.capture import read_captures
    from replay.model.simulate import simulate
    from replay.runner import ReplayOptions
    from replay.store.rundir import RunWriter

    clock = _Clock()
    with RunWriter(out) as writer:
        cap = read_captures([str(trace)])
        writer.add("frames", cap.table)
        for inp in cap.inputs:
            inp.start_hash()
        clock.step("read")
        simulate(cap.table, cfg, profile, ReplayOptions(), on_table=writer.add)
        clock.step("simulate (+ encodes beside it)")
        writer.finish({"config": cfg, "seed": 0, "inputs": [i.sha256 for i in cap.inputs]})
        clock.step("after simulate: sha256, finish")
    return clock


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trace", type=Path, help="capture to use (default: a generated 1M flood)")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each way; the minimum is kept")
    a = ap.parse_args()
    from replay.capture import read_captures
    from replay.model.config import resolve_config
    from replay.model.costs import load_profile
    from replay.model.simulate import simulate
    from replay.runner import ReplayOptions, keep_freed_memory

    keep_freed_memory()
    tmp = Path(tempfile.mkdtemp(prefix="bench-overlap-"))
    try:
        trace = a.trace
        if trace is None:
            trace = tmp / "flood1m.pcap"
            subprocess.run([sys.executable, "-m", "replay", "synth", "udp-flood", "-o", str(trace),
                            "--rate", "2Mpps", "--duration", "0.5", "--size", "64", "--flows",
                            "64"], check=True, cwd=REPO, stdout=subprocess.DEVNULL)  # fmt: skip
        cfg = resolve_config(None, [])
        profile = load_profile("default")
        warm = read_captures([str(REPO / "traces" / "game-server.pcap")]).table
        simulate(warm, cfg, profile, ReplayOptions())  # numba caches
        load0 = os.getloadavg()[0]
        best: dict[str, dict[str, tuple[float, float]]] = {}
        totals: dict[str, list[float]] = {}
        for _ in range(a.repeat):
            for name, fn in (("serial", serial), ("overlap", overlap)):
                out = tmp / f"run-{name}"
                shutil.rmtree(out, ignore_errors=True)
                clock = fn(trace, out, cfg, profile)
                steps = best.setdefault(name, {})
                for step, w, c in clock.steps:
                    old = steps.get(step, (1e9, 1e9))
                    steps[step] = (min(old[0], w), min(old[1], c))
                totals.setdefault(name, []).append(sum(w for _, w, _ in clock.steps))
        print(f"{trace.name}, min of {a.repeat}{'':10}{'wall s':>9}{'CPU s':>9}")
        for name, steps in best.items():
            for step, (w, c) in steps.items():
                print(f"{name + ': ' + step:44}{w:9.3f}{c:9.3f}")
            print(f"{name + ': total (min of the sums)':44}{min(totals[name]):9.3f}")
        tail = {n: next(w for s, (w, _) in best[n].items() if s.startswith("after")) for n in best}
        print(f"wall left after the replay: serial {tail['serial']:.3f} s, overlap "
              f"{tail['overlap']:.3f} s ({tail['serial'] / max(tail['overlap'], 1e-9):.1f}x); "
              f"total {min(totals['serial']):.3f} → {min(totals['overlap']):.3f} s "
              f"(load average {load0:.1f} → {os.getloadavg()[0]:.1f})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
