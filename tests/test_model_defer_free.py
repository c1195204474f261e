"""skb_attempt_defer_free → the allocating CPU's defer list, its IPI kick and NET_RX flush.

net/core/skbuff.c skb_attempt_defer_free (5.19+; TCP's tcp_eat_recv_skb from 5.19, UDP's
skb_consume_udp from 6.18, KERNEL.md §3b): a consumed skb whose alloc_cpu (the CPU that ran the
driver) is not the reader's goes on that CPU's defer list; when defer_count before the add is
skb_defer_max >> 1 an IPI (kick_defer_list_purge -> trigger_rx_softirq) raises NET_RX there,
and net_rx_action frees the list (skb_defer_free_flush at the top of every loop turn). Costs
from tests/data/round-costs.toml: fixed.consume 100, fixed.skb_free 40, fixed.ipi_send 300,
fixed.ipi_irq 500. Scenario (the same as tests/test_model_independent.py's 6.18 test): 200 UDP
frames at t=0 on queue 0 (CPU 0), the reader on CPU 1 works 100 µs per datagram. CPU 0 polls
them in 4 NET_RX runs (64, 64, 64, 8) ending at ~135 µs; the reader has read 2 datagrams by the
last loop turn (at ~10 and ~110 µs), which that turn's flush frees. The other 198 reads come
one per ~100 µs with CPU 0 idle: the list only empties by a kick.
"""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from replay.errors import ConfigError
from replay.model.config import resolve_config
from tests.test_model_independent import TOP, run, stream

UDP = ['app[0].match="udp dport 9000"', "app[0].cpu=1", "app[0].work-ns=100000",
       "app[0].rcvbuf=1000000000"]  # fmt: skip


def _ns(r: Any) -> dict[tuple[int, str], int]:
    cpu = pl.from_arrow(r.cpu)
    assert isinstance(cpu, pl.DataFrame)
    g = cpu.group_by("cpu", pl.col("symbol").cast(pl.Utf8)).agg(pl.col("ns").sum())
    return {(int(c), str(s)): int(n) for c, s, n in g.iter_rows()}


def _udp(kernel: str, *sets: str) -> Any:
    rows = [{"ts_ns": 0} for _ in range(200)]
    return run(rows, "host.cpus=2", "nic.combined=1", f'host.kernel="{kernel}"', *UDP, *sets, opts=TOP)


def test_udp_618_defers_every_read_and_kicks_three_times() -> None:
    # skb_defer_max 128 on 6.18: a kick when 64 are listed, at the 65th since the last flush.
    # 198 later reads: kicks at the 65th, 130th, 195th; each NET_RX frees its 65 (the kick's
    # skb is listed before the IPI leaves); 3 are still listed at the end.
    r = _udp("6.18")
    c = r.counters
    assert c["model"]["skb_deferred"] == [200, 0]
    assert c["model"]["skb_defer_kicks"] == [3, 0]
    assert c["softirqs"]["NET_RX"] == [7, 0]
    ns = _ns(r)
    assert ns[(1, "skb_consume_udp")] == 200 * (100 - 40)  # the free left the reader's CPU
    assert ns[(1, "kick_defer_list_purge")] == 3 * 300
    assert ns[(0, "trigger_rx_softirq")] == 3 * 500
    assert ns[(0, "skb_defer_free_flush")] == (2 + 3 * 65) * 40
    ev = pl.from_arrow(r.events)
    assert isinstance(ev, pl.DataFrame)
    runs = ev.filter(pl.col("kind").cast(pl.Utf8) == "net_rx").sort("t")
    assert runs["value"].to_list() == [1, 1, 1, 1, 0, 0, 0]  # the kicked runs poll nothing


@pytest.mark.parametrize(("kernel", "sets", "net_rx", "deferred", "kicks"), [
    ("6.12", (), 4, 0, 0),  # UDP frees in skb_consume_udp before 6.18
    ("6.18", ("net.core.skb_defer_max=0",), 4, 0, 0),  # 0: defer_count >= 0 -> nodefer
    # 40: a kick at the 21st since the flush; 198 later reads -> 9 kicks (21 x 9 = 189)
    ("6.18", ("net.core.skb_defer_max=40",), 4 + 9, 200, 9),
])  # fmt: skip
def test_udp_defer_rules(kernel: str, sets: tuple[str, ...], net_rx: int, deferred: int,
                         kicks: int) -> None:  # fmt: skip
    r = _udp(kernel, *sets)
    c = r.counters
    assert c["softirqs"]["NET_RX"] == [net_rx, 0]
    assert c["model"]["skb_deferred"] == [deferred, 0]
    assert c["model"]["skb_defer_kicks"] == [kicks, 0]
    ns = _ns(r)
    assert ns[(1, "skb_consume_udp")] == 200 * 100 - deferred * 40
    assert ns.get((0, "skb_defer_free_flush"), 0) == ((2 + 21 * 9) * 40 if deferred else 0)


def test_reader_on_the_irq_cpu_frees_in_place() -> None:
    # skb->alloc_cpu == raw_smp_processor_id(): kfree_skb_napi_cache at once, nothing listed
    rows = [{"ts_ns": 0} for _ in range(200)]
    r = run(rows, "host.cpus=2", "nic.combined=1", 'host.kernel="6.18"', *UDP, "app[0].cpu=0",
            opts=TOP)  # fmt: skip
    assert r.counters["model"]["skb_deferred"] == [0, 0]
    assert _ns(r)[(0, "skb_consume_udp")] == 200 * 100


@pytest.mark.parametrize(("kernel", "net_rx", "deferred", "kicks"),
                         [("6.12", 8, 150, 4), ("5.15", 5, 0, 0)])  # fmt: skip
def test_tcp_defers_from_519(kernel: str, net_rx: int, deferred: int, kicks: int) -> None:
    # 150 segments with PSH each (one skb each) to a reader on CPU 1 working 100 µs per read.
    # 6.12 (skb_defer_max 64: a kick at the 33rd listed): CPU 0's 4 NET_RX runs (6.4+ polls a
    # rescheduled NAPI in the same run) end at ~228 µs with 3 reads freed by their loop turns;
    # 147 later reads -> kicks at the 33rd, 66th, 99th, 132nd: 4 more runs, 15 left listed.
    # 5.15: no per-CPU defer lists (5.19), 5 NET_RX runs (no goto start before 6.4).
    r = run(stream(150, psh_every=1), "host.cpus=2", "nic.combined=1", f'host.kernel="{kernel}"',
            'app[0].match="tcp dport 5000"', "app[0].cpu=1", "app[0].rcvbuf=100000000",
            "app[0].work-ns=100000", opts=TOP)  # fmt: skip
    c = r.counters
    assert c["softirqs"]["NET_RX"] == [net_rx, 0]
    assert c["model"]["skb_deferred"] == [deferred, 0]
    assert c["model"]["skb_defer_kicks"] == [kicks, 0]
    assert _ns(r).get((0, "skb_defer_free_flush"), 0) == ((3 + 4 * 33) * 40 if deferred else 0)


@pytest.mark.parametrize(("kernel", "value"), [("6.18", 128), ("6.17", 64), ("5.19", 64)])
def test_skb_defer_max_default(kernel: str, value: int) -> None:
    cfg = resolve_config(None, [f'host.kernel="{kernel}"'])
    assert cfg["sysctl"]["net.core.skb_defer_max"] == value


def test_skb_defer_max_must_be_non_negative() -> None:
    with pytest.raises(ConfigError, match=r"net.core.skb_defer_max must be non-negative"):
        resolve_config(None, ["net.core.skb_defer_max=-1"])
