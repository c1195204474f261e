"""ICMP the receive path sends: port unreachable for UDP to a closed port, its two rate limits.

net/ipv4/udp.c __udp4_lib_rcv (no socket): Udp NoPorts, icmp_send(ICMP_DEST_UNREACH,
ICMP_PORT_UNREACH), drop NO_SOCKET. net/ipv4/icmp.c __icmp_send: icmpv4_global_allow
(icmp_global_allow's host-wide bucket: icmp_msgs_per_sec 1000, icmp_msgs_burst 50, refilled by
per_sec * min(delta, HZ) / HZ once at least HZ/50 jiffies passed) then icmpv4_xrlim_allow
(inet_peer_xrlim_allow: a new peer gets 6 * icmp_ratelimit tokens, one per jiffy after, a
message costs icmp_ratelimit = HZ tokens). HZ = 250 here (the model's default), so a jiffy is
4 ms and the per-host interval 250 jiffies. Costs (round-costs with fixed.icmp_reply = 1000):
stage.udp 100, fixed.drop 10, stage.route 100 (a host-limited message's icmp_route_lookup).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from replay.errors import ConfigError
from replay.model.config import resolve_config
from tests.test_model_independent import pk, profile_with, run

APP = ['app[0].match="udp dport 9000"', "app[0].cpu=1"]  # nobody listens on 9999
BASE = ("host.cpus=2", "nic.combined=1", *APP)


def _prof(tmp_path: Path) -> str:
    return profile_with(tmp_path, "icmp-costs", {"fixed.icmp_reply": 1000})


def _icmp(r: Any) -> dict[str, int]:
    return dict(r.counters["snmp"]["Icmp"])


def _closed(n: int, gap_ns: int, *, src: Any = None, t0: int = 0, **kw: Any) -> list[dict[str, Any]]:
    rows = []
    for k in range(n):
        row = {"ts_ns": t0 + k * gap_ns, "dport": 9999, **kw}
        if src is not None:
            row["src"] = src(k) if callable(src) else src
        rows.append(row)
    return rows


@pytest.mark.parametrize("kernel", ["5.4", "6.1", "6.12"])
def test_per_host_limit_one_source(tmp_path: Path, kernel: str) -> None:
    # One source, a datagram every 100 ms (25 jiffies) for 3 s. The peer starts with
    # min(60 * HZ, 6 * 250) = 1500 tokens: sends at k = 0..5 leave 1250, 1025, 800, 575, 350,
    # 125; then +25 per datagram: 150, 175, 200, 225 are short of 250, k = 10 has 250 -> sent
    # (0 left); again at k = 20. 8 sent, 22 host-limited; the global bucket (50) never runs dry.
    r = run(_closed(30, 100_000_000), *BASE, f'host.kernel="{kernel}"', profile=_prof(tmp_path))
    ic = _icmp(r)
    sent = [0, 1, 2, 3, 4, 5, 10, 20]
    assert (ic["OutMsgs"], ic["OutDestUnreachs"], ic["InMsgs"]) == (8, 8, 0)
    assert r.counters["snmp"]["IcmpMsg"] == {"OutType3": 8}
    assert r.counters["snmp"]["Udp"]["NoPorts"] == 30
    if kernel == "5.4":  # the rate-limit counters came in 6.2 (6.1.y: a backport)
        assert "OutRateLimitHost" not in ic and "OutRateLimitGlobal" not in ic
    elif kernel == "6.12":
        assert (ic["OutRateLimitHost"], ic["OutRateLimitGlobal"]) == (22, 0)
    df = pk(r).sort("frame")
    assert set(df["drop_reason"].to_list()) == {"NO_SOCKET"}
    # __udp4_lib_rcv 100 + kfree_skb 10, + icmp_send 1000 when it left, + the route lookup 100
    # when the peer's bucket refused it
    want = [1110 if k in sent else 210 for k in range(30)]
    assert df["cpu_l4"].to_list() == want


def test_ratelimit_zero_sends_every_one(tmp_path: Path) -> None:
    # icmp_ratelimit = 0: inet_peer_xrlim_allow's token >= 0 always holds; the global bucket
    # (refilled 1000/s * 25 jiffies / 250 = 100, capped at 50) keeps up with 10 per second
    r = run(_closed(30, 100_000_000), *BASE, "net.ipv4.icmp_ratelimit=0", profile=_prof(tmp_path))
    assert (_icmp(r)["OutDestUnreachs"], _icmp(r)["OutRateLimitHost"]) == (30, 0)


def test_ratemask_without_dest_unreach_sends_every_one(tmp_path: Path) -> None:
    # icmpv4_mask_allow: type 3 not in icmp_ratemask -> neither limit applies
    r = run(_closed(30, 100_000_000), *BASE, "net.ipv4.icmp_ratemask=0", profile=_prof(tmp_path))
    assert (_icmp(r)["OutDestUnreachs"], _icmp(r)["OutRateLimitHost"]) == (30, 0)


def _spoofed(k: int) -> str:
    return f"10.{1 + k // 250}.{k % 250}.1"


def test_global_limit_before_5_10_takes_one_credit(tmp_path: Path) -> None:
    # 4.9-5.9 icmp_global_allow: credit refilled to min(0 + 1000 * 250 / 250, 50) = 50 at the
    # first message, one taken per message. 200 sources (each a new peer: host check passes)
    # within the first 2 ms (one jiffy): 50 sent, then the bucket is empty and delta = 0 < HZ/50.
    # 100 ms later (25 jiffies): + 1000 * 25 / 250 = 100, capped at 50: 50 more.
    rows = _closed(200, 10_000, src=_spoofed) + _closed(200, 10_000, src=_spoofed, t0=100_000_000)
    r = run(rows, *BASE, 'host.kernel="5.4"', profile=_prof(tmp_path))
    assert _icmp(r)["OutDestUnreachs"] == 100
    cpu = pk(r).sort("frame")["cpu_l4"].to_list()
    # a globally limited message stops before any work of note: 110
    assert cpu == ([1110] * 50 + [110] * 150) * 2


def _rand3_stream(seed: int, n: int) -> list[int]:
    """get_random_u32_below(3) as the model draws it: splitmix64 from host.random-seed, the top
    32 bits times 3, >> 32 (written out again here, not imported)."""
    m = (1 << 64) - 1
    z0 = seed
    out = []
    for _ in range(n):
        z0 = (z0 + 0x9E3779B97F4A7C15) & m
        z = z0
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & m
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & m
        z ^= z >> 31
        out.append(((z >> 32) * 3) >> 32)
    return out


@pytest.mark.parametrize("seed", [0, 7])
def test_global_limit_6_11_consumes_after_the_host_check(tmp_path: Path, seed: int) -> None:
    # 6.11+: icmp_global_allow lets a message through while credit > 0 and takes nothing;
    # icmp_global_consume takes 0-2 (get_random_u32_below(3)) once the peer check passed.
    # Credit 50 at the first message: messages go while the draws so far sum to < 50, plus the
    # one that takes it to <= 0... i.e. the first n with sum(draws[:n]) >= 50 is the last sent.
    rows = _closed(200, 10_000, src=_spoofed)
    r = run(rows, *BASE, 'host.kernel="6.12"', f"host.random-seed={seed}", profile=_prof(tmp_path))
    draws = _rand3_stream(seed, 200)
    total, sent = 0, 0
    while total < 50:
        total += draws[sent]
        sent += 1
    ic = _icmp(r)
    assert (ic["OutDestUnreachs"], ic["OutRateLimitGlobal"], ic["OutRateLimitHost"]) == \
        (sent, 200 - sent, 0)
    assert 20 <= sent <= 80  # about one credit per message on average


def test_global_limit_5_10_draws_before_the_host_check(tmp_path: Path) -> None:
    # 5.10-6.10: credit = max(credit - draw, 0) inside icmp_global_allow, which succeeds while
    # the credit before the draw is > 0; the first message sees 50 after the refill
    rows = _closed(200, 10_000, src=_spoofed)
    r = run(rows, *BASE, 'host.kernel="6.6"', profile=_prof(tmp_path))
    draws = _rand3_stream(0, 200)
    credit, sent = 50, 0
    while credit > 0:
        credit = max(credit - draws[sent], 0)
        sent += 1
    ic = _icmp(r)
    assert (ic["OutDestUnreachs"], ic["OutRateLimitGlobal"]) == (sent, 200 - sent)


def test_ipv6_port_unreachable_scaled_interval(tmp_path: Path) -> None:
    # icmpv6_xrlim_allow: tmo = 250 jiffies >> ((128 - 64) >> 5) = 62 for a /64 route; a new
    # peer starts with 6 * 62 = 372 tokens. Every 100 ms (+25): sent while >= 62:
    # 372->310, 335->273, 298->236, 261->199, 224->162, 187->125, 150->88, 113->51, 76->14,
    # 39 no, 64->2, 27 no: 10 sent, 2 limited (Icmp6OutRateLimitHost)
    v6 = {"ip_version": 6, "ethertype": 0x86DD, "src": "2001:db8::2", "dst": "2001:db8::1"}
    r = run(_closed(12, 100_000_000, **v6), *BASE, profile=_prof(tmp_path))
    s6 = r.counters["snmp6"]
    assert (s6["Udp6NoPorts"], s6["Icmp6OutDestUnreachs"], s6["Icmp6OutMsgs"]) == (12, 10, 10)
    assert (s6["Icmp6OutRateLimitHost"], s6["Icmp6OutType1"]) == (2, 10)
    assert _icmp(r)["OutMsgs"] == 0
    # reached by the default route (plen 0): 250 >> 4 = 15 jiffies, less than the 25 between
    # datagrams: every one is sent
    r = run(_closed(12, 100_000_000, **v6), *BASE, "host.icmp6-route-prefix=0",
            profile=_prof(tmp_path))
    assert r.counters["snmp6"]["Icmp6OutDestUnreachs"] == 12


def test_no_reply_to_a_multicast_destination(tmp_path: Path) -> None:
    # __icmp_send: no ICMP for a datagram to a multicast/broadcast address (RTCF_MULTICAST)
    rows = _closed(3, 1_000_000, dst="239.1.1.1")
    r = run(rows, *BASE, 'host.addresses=["10.0.0.1"]', profile=_prof(tmp_path))
    assert _icmp(r)["OutMsgs"] == 0


def test_icmp_in_counts_messages_taken() -> None:
    # icmp_rcv: InMsgs for each ICMP message delivered (type unknown to the model: no InEchos)
    rows = [{"ts_ns": k * 10_000, "proto": 1, "sport": None, "dport": None} for k in range(4)]
    r = run(rows, *BASE)
    assert _icmp(r)["InMsgs"] == 4
    assert set(pk(r)["outcome"].to_list()) == {"consumed"}


def test_icmp_sysctls_follow_the_kernel() -> None:
    cfg = resolve_config(None, ['host.kernel="6.12"'])
    assert (cfg["sysctl"]["net.ipv4.icmp_msgs_per_sec"], cfg["sysctl"]["net.ipv4.icmp_msgs_burst"]) \
        == (1000, 50)
    cfg = resolve_config(None, ['host.kernel="7.0"'])
    assert (cfg["sysctl"]["net.ipv4.icmp_msgs_per_sec"], cfg["sysctl"]["net.ipv4.icmp_msgs_burst"]) \
        == (10000, 10000)
    with pytest.raises(ConfigError, match="icmp_ratelimit"):
        resolve_config(None, ["net.ipv4.icmp_ratelimit=-1"])


def _echo_table(rows: list[dict[str, Any]], types: list[int]) -> Any:
    """A frames table whose icmp_type column (as the decoder writes it) holds `types`."""
    from tests.framegen import frames

    return frames([{**row, "icmp_type": t} for row, t in zip(rows, types, strict=True)])


def _run_table(table: Any, *sets: str, profile: str) -> Any:
    from replay.model.costs import load_profile
    from replay.model.simulate import simulate
    from replay.runner import ReplayOptions

    cfg = resolve_config(None, [f'costs.profile="{profile}"', *sets])
    return simulate(table, cfg, load_profile(profile), ReplayOptions())


ICMP_ROW = {"proto": 1, "sport": None, "dport": None, "payload_len": 56, "wire_len": 98,
            "cap_len": 98}


def test_echo_requests_get_replies_unlimited(tmp_path: Path) -> None:
    # icmp_rcv: InMsgs, InType8; icmp_echo -> icmp_reply: echo reply (type 0) is not in the
    # default ratemask 0x1818, so icmpv4_global_allow and icmpv4_xrlim_allow let all through:
    # OutMsgs, OutEchoReps, OutType0. The l4 stage: icmp_rcv 100 (stage.udp's cost) + the reply
    # 1000; the request is consumed.
    rows = [{"ts_ns": k * 100_000_000, **ICMP_ROW} for k in range(10)]
    r = _run_table(_echo_table(rows, [8] * 10), *BASE, profile=_prof(tmp_path))
    ic = _icmp(r)
    assert (ic["InMsgs"], ic["InEchos"], ic["OutMsgs"], ic["OutEchoReps"]) == (10, 10, 10, 10)
    assert ic["OutRateLimitHost"] == 0
    assert r.counters["snmp"]["IcmpMsg"] == {"InType8": 10, "OutType0": 10}
    df = pk(r)
    assert set(df["outcome"].to_list()) == {"consumed"}
    assert df["cpu_l4"].to_list() == [1100] * 10
    # an echo reply (type 0) received is taken by icmp_rcv and answered by nothing
    r = _run_table(_echo_table(rows, [0] * 10), *BASE, profile=_prof(tmp_path))
    assert (_icmp(r)["InMsgs"], _icmp(r)["InEchos"], _icmp(r)["OutMsgs"]) == (10, 0, 0)


def test_echo_replies_limited_when_the_ratemask_says_so(tmp_path: Path) -> None:
    # icmp_ratemask 0x1819 adds echo reply: the per-host bucket as for port unreachables
    # (6 at once, then one per 250 jiffies = 1 s): requests every 100 ms for 1 s -> 6 replies
    rows = [{"ts_ns": k * 100_000_000, **ICMP_ROW} for k in range(10)]
    r = _run_table(_echo_table(rows, [8] * 10), *BASE, "net.ipv4.icmp_ratemask=6169",
                   profile=_prof(tmp_path))
    ic = _icmp(r)
    assert (ic["InEchos"], ic["OutEchoReps"], ic["OutRateLimitHost"]) == (10, 6, 4)
    assert pk(r)["cpu_l4"].to_list() == [1100] * 6 + [100] * 4


def test_icmpv6_echo_requests_get_replies(tmp_path: Path) -> None:
    v6 = {**ICMP_ROW, "proto": 58, "ip_version": 6, "ethertype": 0x86DD, "src": "2001:db8::2",
          "dst": "2001:db8::1"}
    rows = [{"ts_ns": k * 1_000_000, **v6} for k in range(3)]
    r = _run_table(_echo_table(rows, [128] * 3), *BASE, profile=_prof(tmp_path))
    s6 = r.counters["snmp6"]
    assert (s6["Icmp6InMsgs"], s6["Icmp6InEchos"], s6["Icmp6OutEchoReplies"]) == (3, 3, 3)
    assert (s6["Icmp6InType128"], s6["Icmp6OutType129"], s6["Icmp6OutMsgs"]) == (3, 3, 3)
    assert _icmp(r)["InMsgs"] == 0
