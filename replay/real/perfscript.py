"""`perf script` text (samples with -g callchains) → sample columns with stage, context, category.

Input: the output of
    perf script -F comm,pid,tid,cpu,time,period,event,ip,sym,dso
on a `perf record -a -g -e cpu-clock -c PERIOD -k mono` file: one header line per sample
    tcpreplay  7071/7071  [000]  512.77:     100000 cpu-clock:
then its callchain, leaf first, one frame per line
    ffffffff81b06831 __udp4_lib_rcv ([kernel.kallsyms])
and a blank line. The Overhead row of a sample is its leaf (comm, Shared Object, symbol), as
`perf report --no-children` shows it; the Shared Object is the dso's base name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from replay.real.categories import (
    IDLE_FRAMES,
    RX_PATH_FRAMES,
    category,
    context_of,
    stage_of,
)

_HEAD = re.compile(
    r"^(?P<comm>.+?)\s+(?P<pid>-?\d+)/(?P<tid>-?\d+)\s+\[(?P<cpu>\d+)\]\s+"
    r"(?P<sec>\d+)\.(?P<frac>\d+):\s+(?P<period>\d+)\s+(?P<event>\S+?):?\s*$"
)
_FRAME = re.compile(r"^\s+(?P<ip>[0-9a-f]+)\s+(?P<sym>.+?)\s+\((?P<dso>.*)\)\s*$")


@dataclass
class Samples:
    """Column lists, one entry per sample."""

    comm: list[str] = field(default_factory=list)
    pid: list[int] = field(default_factory=list)
    tid: list[int] = field(default_factory=list)
    cpu: list[int] = field(default_factory=list)
    time_ns: list[int] = field(default_factory=list)
    period: list[int] = field(default_factory=list)
    dso: list[str] = field(default_factory=list)
    symbol: list[str] = field(default_factory=list)
    stage: list[str | None] = field(default_factory=list)
    context: list[str] = field(default_factory=list)
    category: list[str] = field(default_factory=list)
    rx_path: list[bool] = field(default_factory=list)
    idle: list[bool] = field(default_factory=list)
    wakeup: list[bool] = field(default_factory=list)  # under sock_def_readable (a reader's wake-up)

    def __len__(self) -> int:
        return len(self.comm)


def _dso_name(dso: str) -> str:
    if dso.startswith("["):
        return dso
    return PurePosixPath(dso).name or dso


def _time_ns(sec: str, frac: str) -> int:
    return int(sec) * 1_000_000_000 + int((frac + "000000000")[:9])


def parse_perf_script(lines: Iterable[str]) -> Samples:
    """Parse perf script text; lines that are neither a header nor a frame are skipped."""
    out = Samples()
    head: re.Match[str] | None = None
    chain: list[tuple[str, str]] = []

    def flush() -> None:
        if head is None:
            return
        comm = head["comm"].strip()
        syms = [s for s, _ in chain]
        leaf_sym, leaf_dso = chain[0] if chain else ("[unknown]", "[unknown]")
        out.comm.append(comm)
        out.pid.append(int(head["pid"]))
        out.tid.append(int(head["tid"]))
        out.cpu.append(int(head["cpu"]))
        out.time_ns.append(_time_ns(head["sec"], head["frac"]))
        out.period.append(int(head["period"]))
        out.dso.append(leaf_dso)
        out.symbol.append(leaf_sym)
        st = stage_of(syms)
        kernel_leaf = leaf_dso.startswith("[kernel")
        if st is None and not kernel_leaf and leaf_dso != "[unknown]":
            st = "app"  # user code; the harness keeps it only for the receiver's processes
        out.stage.append(st)
        out.context.append(context_of(syms, comm))
        out.category.append(category(leaf_sym, leaf_dso))
        bases = {s.split(".", 1)[0] for s in syms}
        out.rx_path.append(bool(bases & RX_PATH_FRAMES))
        out.idle.append(bool(bases & IDLE_FRAMES) and comm.startswith("swapper"))
        out.wakeup.append("sock_def_readable" in bases)

    for line in lines:
        line = line.rstrip("\n")
        if not line.strip():
            continue
        if line[0] not in " \t":
            m = _HEAD.match(line)
            if m is not None:
                flush()
                head, chain = m, []
            continue
        f = _FRAME.match(line)
        if f is not None and head is not None:
            sym = f["sym"]
            if "+0x" in sym:
                sym = sym.split("+0x", 1)[0]
            chain.append((sym, _dso_name(f["dso"])))
    flush()
    return out
