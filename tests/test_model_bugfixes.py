"""Model fixes of the second independent review → expected outcomes and counters.

The lost RPS packet (a hard IRQ left waiting when the CPU switched to a ksoftirqd with nothing
to do), mlx5's RSS table size, VLAN-tagged frames (another_round, PACKET_OTHERHOST) and the
list-RX route hint; tests/test_model_independent2.py holds the reviewers' own scenarios, these
cover the rest of each rule. Costs are tests/data/round-costs.toml.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from replay.errors import ConfigError
from replay.model.drivers import DRIVERS, rss_table_size
from tests.test_model_independent import pk, profile_with, run, src_for_queue


def _route(r: object) -> pl.DataFrame:
    df = pl.from_arrow(r.cpu)  # type: ignore[attr-defined]
    assert isinstance(df, pl.DataFrame)
    df = df.with_columns(pl.col(c).cast(pl.Utf8) for c in ("symbol", "stage"))
    return df.filter(pl.col("stage") == "route")


# ---- 1. the lost RPS packet -------------------------------------------------------------------


# The shape that lost packets: two bursts alternating over two queues, queue 0 steered to CPU 1
# (queue 1's IRQ CPU), queue 1 to the reader's CPU 3; a small dev_weight makes many backlog
# polls and softirq restarts, so ksoftirqd is woken on CPU 3 and an inline softirq (6.5+) has
# often done its work by the time it is switched in: an RPS IPI that came during that switch
# was never taken. The kernel delivers every frame (huge rcvbuf, ring and max_backlog never
# reached): processed = delivered = backlog packets. Before the fix 10 of the 54 points of
# this grid (weights 3, 4) lost packets; the sampled examples below include failing ones
# (checked against the unfixed engine: RunError, frame 65).
@settings(max_examples=30, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
@given(
    n1=st.sampled_from([40, 63, 90]),
    t2=st.sampled_from(list(range(0, 20_001, 2_500))),
    weight=st.sampled_from([2, 3, 4, 5]),
    kernel=st.sampled_from(["6.5", "6.12", "6.18"]),
    defer=st.sampled_from([(0, 0), (2, 20_000)]),
)
def test_rps_to_the_readers_cpu_loses_nothing(n1: int, t2: int, weight: int, kernel: str,
                                              defer: tuple[int, int]) -> None:  # fmt: skip
    q0, q1 = src_for_queue(0, 2), src_for_queue(1, 2)
    rows = [{"ts_ns": 0, "src": q0 if k % 2 else q1} for k in range(n1)]
    rows += [{"ts_ns": t2, "src": q1 if k % 2 else q0} for k in range(78)]
    r = run(rows, "host.cpus=4", "nic.combined=2", "nic.rx=1024", 'sysfs.rps_cpus=["1","3"]',
            "net.core.netdev_max_backlog=1000", f"net.core.dev_weight={weight}",
            f'host.kernel="{kernel}"', 'app[0].match="udp dport 9000"', "app[0].cpu=3",
            "app[0].rcvbuf=1000000000", f"sysfs.napi_defer_hard_irqs={defer[0]}",
            f"sysfs.gro_flush_timeout={defer[1]}")  # fmt: skip
    assert (pk(r)["outcome"] == "delivered").all()
    sn = r.counters["softnet_stat"]
    assert sum(s["processed"] for s in sn) == len(rows)
    assert sum(r.counters["model"]["backlog_packets"]) == len(rows)


# ---- 2. mlx5's RSS indirection table ----------------------------------------------------------


@pytest.mark.parametrize(("nch", "size"), [(1, 256), (3, 256), (128, 256), (129, 512),
                                           (160, 512), (256, 512), (257, 1024)])  # fmt: skip
def test_mlx5_rqt_size(nch: int, size: int) -> None:
    # mlx5e_rqt_size: max(256, roundup_pow_of_two(nch x 2)) (en/rqt.c)
    assert rss_table_size(DRIVERS["mlx5"], nch) == size


def test_other_drivers_keep_their_table() -> None:
    # ixgbe's RETA is 128 entries (ixgbe_main.c), i40e's HLUT 512, whatever the queue count
    assert rss_table_size(DRIVERS["ixgbe"], 63) == 128
    assert rss_table_size(DRIVERS["i40e"], 300) == 512


# ---- 3. VLAN-tagged frames ----------------------------------------------------------------------


def _vlan_rows(vids: list[int | None]) -> list[dict[str, object]]:
    return [{"ts_ns": 10_000 * k, "vlan": v, "wire_len": 64, "cap_len": 64}
            for k, v in enumerate(vids)]  # fmt: skip


APP1 = ('app[0].match="udp dport 9000"', "app[0].cpu=1", "host.cpus=2", "nic.combined=1",
        'host.addresses=["10.0.0.1"]')  # fmt: skip


def test_vlan_without_device_is_otherhost() -> None:
    # host.vlans = [100]: VID 100 takes another round (processed 2); VID 200 has no device:
    # PACKET_OTHERHOST, ip_rcv_core drops it before Ip InReceives; VID 0 is a priority tag
    # (untagged, once); an untagged frame once.
    r = run(_vlan_rows([100, 200, 0, None]), *APP1, "host.vlans=[100]")
    df = pk(r).sort("frame")
    assert df["outcome"].to_list() == ["delivered", "dropped", "delivered", "delivered"]
    assert df["drop_stage"].to_list()[1] == "ip"
    assert df["drop_reason"].to_list()[1] == "OTHERHOST"
    assert r.counters["softnet_stat"][0]["processed"] == 2 + 1 + 1 + 1
    assert r.counters["snmp"]["Ip"]["InReceives"] == 3


def test_vlans_auto_from_frames_to_the_host() -> None:
    # auto: VID 100 carries frames to the host's address 10.0.0.1, so the host has eth0.100;
    # VID 300 only carries a frame to a multicast group (received: the host takes multicast
    # IP) and no device is inferred for it: OTHERHOST
    rows = _vlan_rows([100, 100])
    rows.append({"ts_ns": 30_000, "vlan": 300, "dst": "239.1.1.1", "wire_len": 64,
                 "cap_len": 64})  # fmt: skip
    r = run(rows, *APP1)
    df = pk(r).sort("frame")
    assert df["outcome"].to_list()[:2] == ["delivered", "delivered"]
    assert df["drop_reason"].to_list()[2] == "OTHERHOST"
    assert r.counters["softnet_stat"][0]["processed"] == 2 + 2 + 1


@pytest.mark.parametrize("bad", ["[5000]", '"all"', "[true]", "100"])
def test_vlans_config_is_checked(bad: str) -> None:
    with pytest.raises(ConfigError, match=r"host\.vlans"):
        run(_vlan_rows([100]), *APP1, f"host.vlans={bad}")


# ---- 4. the list-RX route hint --------------------------------------------------------------------


def test_route_hint_follows_daddr_and_tos(tmp_path: Path) -> None:
    # One batch of 8 (gro_normal_batch) UDP datagrams to the host, daddr/tos as below. The hint
    # is the skb that started the current dst run (curr_dst changes with daddr only); an skb
    # uses it when daddr and tos equal the hint's (ip_can_use_hint):
    #   a/0 full (hint a/0) | a/0 hint | a/4 full (same dst: hint stays a/0) | a/4 full |
    #   b/0 full (hint b/0) | b/0 hint | a/0 full (hint a/0) | a/0 hint   -> 5 full, 3 hinted
    prof = profile_with(tmp_path, "slowirq", {"fixed.hardirq": 1_000_000})
    spec = [("10.0.0.1", 0), ("10.0.0.1", 0), ("10.0.0.1", 4), ("10.0.0.1", 4),
            ("10.0.0.9", 0), ("10.0.0.9", 0), ("10.0.0.1", 0), ("10.0.0.1", 0)]  # fmt: skip
    rows = [{"ts_ns": 0, "dst": d, "ip_tos": tos} for d, tos in spec]
    r = run(rows, *APP1[:-1], 'host.addresses=["10.0.0.1","10.0.0.9"]', profile=prof)
    route = _route(r)
    hinted = route.filter(pl.col("symbol") == "ip_route_use_hint")
    assert hinted["frames"].sum() == 3
    assert hinted["ns"].sum() == 3 * 20  # fixed.route_hint in round-costs
    assert route["frames"].sum() == 8
    df = pk(r).sort("frame")
    assert df["cpu_route"].to_list() == [100, 20, 100, 100, 100, 20, 100, 20]


def test_route_hint_ipv6_and_not_on_the_backlog(tmp_path: Path) -> None:
    # IPv6: ip6_can_use_hint compares daddr alone (the traffic class does not matter): 1 full
    # lookup + 7 hinted. With RPS the skbs reach the stack one by one through process_backlog
    # (__netif_receive_skb, no list): no hint, 8 full lookups.
    prof = profile_with(tmp_path, "slowirq", {"fixed.hardirq": 1_000_000})
    rows = [{"ts_ns": 0, "ip_version": 6, "ethertype": 0x86DD, "src": "2001:db8::2",
             "dst": "2001:db8::1", "ip_hlen": 40, "ip_tos": 4 * (k % 2), "wire_len": 80,
             "cap_len": 80} for k in range(8)]
    r = run(rows, *APP1[:-1], 'host.addresses=["2001:db8::1"]', profile=prof)
    assert pk(r)["cpu_route"].to_list() == [100] + [20] * 7
    r = run(rows, *APP1[:-1], 'host.addresses=["2001:db8::1"]', 'sysfs.rps_cpus=["1"]',
            profile=prof)  # fmt: skip
    assert (pk(r)["cpu_route"] == 100).all()
