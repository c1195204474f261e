"""run.json counters → the text the kernel prints (softnet_stat, interrupts, ethtool -S, nstat).

Formats follow KERNEL.md §7 and the printing code it cites:
- /proc/net/softnet_stat: net/core/net-procfs.c softnet_seq_show, 6.19 layout, 15 `%08x` columns.
- /proc/interrupts: kernel/irq/proc.c show_interrupts: `CPU%-8d` headers, `%*d:` IRQ number,
  `%10u ` per CPU, chip name, hwirq-edge, action name.
- /proc/softirqs: fs/proc/softirqs.c: `%12s:` row name, ` %10u` per CPU.
- ethtool -S: `NIC statistics:` then `     name: value` (net/ethtool/ioctl.c via ethtool(8)).
- nstat: iproute2 misc/nstat.c dump_kern_db: `%-32s%-16llu%6.1f`, zero counters hidden.
"""

from __future__ import annotations

from typing import Any

from replay.store.rundir import Run

# The model assigns IRQ numbers (a real host's come from the MSI-X allocator); 128 upward keeps
# them in the range where x86 hosts usually put NIC vectors.
FIRST_IRQ = 128


def softnet_stat_lines(counters: dict[str, Any]) -> list[str]:
    out = []
    for row in counters.get("softnet_stat", []):
        input_qlen = int(row.get("input_qlen", 0))
        process_qlen = int(row.get("process_qlen", 0))
        cols = [
            row.get("processed", 0), row.get("dropped", 0), row.get("time_squeeze", 0),
            0, 0, 0, 0, 0,  # "was fastroute"
            0,  # "was cpu_collision"
            row.get("received_rps", 0), row.get("flow_limit_count", 0),
            input_qlen + process_qlen, row.get("cpu", 0), input_qlen, process_qlen,
        ]
        out.append(" ".join(f"{int(v) & 0xFFFFFFFF:08x}" for v in cols))
    return out


def _ncpu(counters: dict[str, Any]) -> int:
    n = len(counters.get("softnet_stat", []))
    for grid in (counters.get("interrupts", {}), counters.get("softirqs", {})):
        for v in grid.values():
            n = max(n, len(v))
    return n


def interrupts_lines(counters: dict[str, Any]) -> list[str]:
    irqs = counters.get("interrupts", {})
    ncpu = _ncpu(counters)
    prec = len(str(FIRST_IRQ + max(len(irqs), 1)))
    out = [" " * (prec + 8) + "".join(f"CPU{j:<8d}" for j in range(ncpu)).rstrip()]
    for i, (name, per_cpu) in enumerate(irqs.items()):
        vals = list(per_cpu) + [0] * (ncpu - len(per_cpu))
        counts = "".join(f" {int(v):10d}" for v in vals)
        out.append(f"{FIRST_IRQ + i:>{prec}d}:{counts} {'IR-PCI-MSIX':>8s}  {i}-edge      {name}")
    return out


def softirqs_lines(counters: dict[str, Any]) -> list[str]:
    ncpu = _ncpu(counters)
    out = [" " * 20 + "".join(f"CPU{j:<8d}" for j in range(ncpu)).rstrip()]
    for name, per_cpu in counters.get("softirqs", {}).items():
        out.append(f"{name:>12s}:" + "".join(f" {int(v):10d}" for v in per_cpu))
    return out


def ethtool_lines(counters: dict[str, Any]) -> list[str]:
    return ["NIC statistics:"] + [
        f"     {k}: {int(v)}" for k, v in counters.get("ethtool", {}).items()
    ]


def nstat_items(counters: dict[str, Any]) -> list[tuple[str, int]]:
    """nstat's names: MIB section + field (IpInReceives, TcpExtTCPBacklogDrop, Udp6InDatagrams)."""
    items = []
    for section, fields in counters.get("snmp", {}).items():
        items += [(f"{section}{k}", int(v)) for k, v in fields.items()]
    items += [(k, int(v)) for k, v in counters.get("snmp6", {}).items()]
    return items


def nstat_lines(counters: dict[str, Any], duration_ns: int) -> list[str]:
    # nstat's third column is a rate per second; a replay has no wall clock, so it is the
    # average over the modeled duration of the run.
    secs = duration_ns / 1e9 if duration_ns else 0.0
    out = ["#kernel"]
    for name, v in nstat_items(counters):
        if v:
            out.append(f"{name:<32s}{v:<16d}{(v / secs if secs else 0.0):6.1f}")
    return out


def napi_lines(counters: dict[str, Any]) -> list[str]:
    from replay.report.stdio import table

    keys = ("queue", "cpu", "irqs", "polls", "arms", "packets", "budget_exhausted")
    rows = [[str(r.get(k, 0)) for k in keys] for r in counters.get("napi", [])]
    return table(["Queue", "CPU", "IRQs", "Polls", "Arms", "Packets", "Whole-weight polls"],
                 rows, [True] * len(keys))


def counter_lines(run: Run) -> list[str]:
    """All counter blocks, each under a `#` title naming the file or tool it imitates."""
    c = run.counters
    if not c:
        return ["#", "# Counters: none in run.json"]
    from replay.report.aggregate import totals

    dur = totals(run).duration_ns
    out: list[str] = []
    blocks = [
        ("cat /proc/net/softnet_stat", softnet_stat_lines(c)),
        ("cat /proc/interrupts (NIC vectors)", interrupts_lines(c)),
        ("cat /proc/softirqs (NET_RX)", softirqs_lines(c)),
        ("ethtool -S eth0", ethtool_lines(c)),
        ("nstat -a (rate: per second of modeled time)", nstat_lines(c, dur)),
    ]
    for title, lines in blocks:
        out += ["#", f"# {title}", "#", *lines]
    out += ["#", "# NAPI per queue (model)", "#", *napi_lines(c)]
    return out
