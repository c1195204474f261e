"""Frames and config → the inputs of the engine's ICMP output limits (inet_peer ids, sysctls).

The engine (engine.py "ICMP replies") sends a port unreachable for a UDP datagram no socket takes
and a reply to an echo request, through net/ipv4/icmp.c's two limits: a host-wide token bucket
and a per-destination one kept in the destination's `inet_peer`. This module gives each frame
the dense id of that destination (its source address; IPv4 and IPv6 peers live in separate
trees, `net->ipv4.peers` / `net->ipv6.peers`) and fills the limits' parameters and state.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from replay.model import layout as L  # noqa: N812 (the engine's slot table, read as L.X)
from replay.model.classify import _is_multicast, _rows_equal
from replay.model.groupby import group_rows


def icmp_peers(cols: Any, fkind: np.ndarray, ftun: np.ndarray,
               taken: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """(per frame: the inet_peer id an ICMP message answering it goes to, or -1; peers).

    Only UDP datagrams, ICMP echo candidates and packets of a protocol no handler takes get one
    (the frames the engine may answer; a UDP first fragment's also stands for its datagram when
    the reassembly timer answers it), and of the unfragmented datagrams only those a socket does
    not take (`taken`: never answered).
    -1: a multicast or broadcast destination (__icmp_send: `pkt_type != PACKET_HOST` and
    `rt_flags & (RTCF_BROADCAST | RTCF_MULTICAST)`; icmp6_send: a multicast destination; the
    echo of a broadcast is ignored by icmp_echo_ignore_broadcasts), an IPv6 source that is
    unspecified or multicast (icmp6_send, RFC 4443 2.4 (e)), and a decapsulated frame, whose
    inner source the frames table does not carry."""
    v4 = cols.ip_version == 4
    udp = fkind == L.K_UDP
    if taken is not None:
        udp &= ~taken
    cand = (udp | (fkind == L.K_ICMP_ECHO) | (fkind == L.K_NOPROTO)) & (cols.ip_version > 0) \
        & (ftun == L.TUN_NONE)
    cand &= ~_is_multicast(cols.dst, v4)
    cand &= v4 | ~(_is_multicast(cols.src, v4) | _rows_equal(cols.src, bytes(16)))
    if not cand.any():
        return np.full(cols.n, -1, np.int64), 0
    # dense ids in the byte order np.unique would give the 17-byte (source, v4) keys, by a
    # compiled hash group-by (model/groupby.py): np.unique's memcmp sort of void keys took 0.3 s
    # per million frames, a polars join 0.05 s
    ids, khi, _, _, _ = group_rows(cols.src, tag=v4, sel=cand)
    return ids, len(khi)


def _ms_to_jiffies(ms: int, hz: int) -> int:
    # msecs_to_jiffies rounds up (proc_dointvec_ms_jiffies stores msecs_to_jiffies(value))
    return -(-ms * hz // 1000)


def icmp_state(P: np.ndarray, cfg: dict[str, Any], hz: int, kv: tuple[int, int],
               npeers: int, fx: np.ndarray, misc: np.ndarray) -> np.ndarray:
    """Fill P's ICMP parameters and the global bucket in misc; return fx with 3 slots per peer
    (made, rate_tokens, rate_last) appended."""
    sc = cfg["sysctl"]
    P[L.P_ICMP_RL] = _ms_to_jiffies(int(sc["net.ipv4.icmp_ratelimit"]), hz)
    P[L.P_ICMP_MASK] = int(sc["net.ipv4.icmp_ratemask"])
    P[L.P_ICMP_PPS] = int(sc["net.ipv4.icmp_msgs_per_sec"])
    P[L.P_ICMP_BURST] = int(sc["net.ipv4.icmp_msgs_burst"])
    # icmpv6_xrlim_allow: "Give more bandwidth to wider prefixes":
    # tmo >>= (128 - plen) >> 5 when the route's plen < 128
    tmo6 = _ms_to_jiffies(int(sc["net.ipv6.icmp.ratelimit"]), hz)
    plen = int(cfg["host"]["icmp6-route-prefix"])
    if plen < 128:
        tmo6 >>= (128 - plen) >> 5
    P[L.P_ICMP6_TMO] = tmo6
    P[L.P_ICMP_ORDER] = (L.ICMP_RL_HOSTFIRST if kv >= (6, 11)
                         else L.ICMP_RL_RAND if kv >= (5, 10) else L.ICMP_RL_ONE)
    P[L.P_ICMP_PEER0] = len(fx)
    # the host has been up long before the trace: the global bucket's stamp is over a second
    # old, so its first use refills it to the burst (icmp_global_allow's delta capped at HZ)
    misc[L.M_ICMP + L.IC_CREDIT] = 0
    misc[L.M_ICMP + L.IC_STAMP] = -10 * hz
    misc[L.M_ICMP + L.IC_RNG] = int(cfg["host"]["random-seed"])
    return np.concatenate([fx, np.zeros(3 * npeers, np.int64)])


# net/ipv4/proc.c icmpmibmap: the Icmp line's In<name>/Out<name> columns, by ICMP type
ICMP_MIB_NAMES = ((3, "DestUnreachs"), (11, "TimeExcds"), (12, "ParmProbs"), (4, "SrcQuenchs"),
                  (5, "Redirects"), (8, "Echos"), (0, "EchoReps"), (13, "Timestamps"),
                  (14, "TimestampReps"), (17, "AddrMasks"), (18, "AddrMaskReps"))
# net/ipv6/proc.c icmp6type2name: the named Icmp6In<name> lines, by ICMPv6 type
ICMP6_MIB_NAMES = ((1, "DestUnreachs"), (2, "PktTooBigs"), (3, "TimeExcds"), (4, "ParmProblems"),
                   (128, "Echos"), (129, "EchoReplies"), (130, "GroupMembQueries"),
                   (131, "GroupMembResponses"), (132, "GroupMembReductions"),
                   (133, "RouterSolicits"), (134, "RouterAdvertisements"),
                   (135, "NeighborSolicits"), (136, "NeighborAdvertisements"), (137, "Redirects"),
                   (143, "MLDv2Reports"))


def icmp_counters(misc: np.ndarray, kv: tuple[int, int], in4: int, in6: int, echo4: int,
                  echo6: int, types4: np.ndarray | None = None, types6: np.ndarray | None = None
                  ) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    """The Icmp and IcmpMsg groups of /proc/net/snmp and the Icmp6 lines of snmp6.

    in4/in6: ICMP messages icmp_rcv / icmpv6_rcv took (InMsgs); echo4/echo6: echo requests among
    them; types4/types6: how many messages of each type (256 counts) icmp_rcv / icmpv6_rcv took
    (ICMPMSGIN_INC_STATS / ICMP6MSGIN_INC_STATS, after the checksum and before the handler), when
    the frames carry the type. Checksum errors are not modelled (the frames table does not say
    whether a checksum is right): InErrors and InCsumErrors stay 0. OutRateLimitGlobal /
    OutRateLimitHost exist from 6.2 (d0941130c935 "icmp: Add counters for rate limits"; 6.1.y
    has them as a backport)."""
    m = L.M_ICMP
    un4, un6 = int(misc[m + L.IC_UNREACH4]), int(misc[m + L.IC_UNREACH6])
    rep4, rep6 = int(misc[m + L.IC_ECHOREP4]), int(misc[m + L.IC_ECHOREP6])
    # the reassembly timer's time exceeded (ip_expire, ip6frag_expire_frag_queue) and ICMPv6's
    # parameter problem for an unknown next header (ip6_protocol_deliver_rcu)
    te4, te6 = int(misc[m + L.IC_TIMEEXC4]), int(misc[m + L.IC_TIMEEXC6])
    pp6 = int(misc[m + L.IC_PARMPROB6])
    t4 = np.zeros(256, np.int64) if types4 is None else types4.copy()
    t6 = np.zeros(256, np.int64) if types6 is None else types6.copy()
    t4[8] = echo4  # the echo requests (the same count when the types are known)
    t6[128] = echo6
    icmp = {"InMsgs": in4, "InErrors": 0, "InCsumErrors": 0}
    # icmp_put prints every In<name> of icmpmibmap from the per-type counters
    icmp |= {f"In{name}": int(t4[ty]) for ty, name in ICMP_MIB_NAMES}
    icmp |= {"OutMsgs": un4 + rep4 + te4, "OutErrors": 0}
    if kv >= (6, 2):
        icmp["OutRateLimitGlobal"] = int(misc[m + L.IC_RL_GLOBAL])
        icmp["OutRateLimitHost"] = int(misc[m + L.IC_RL_HOST4])
    icmp |= {"OutDestUnreachs": un4, "OutTimeExcds": te4, "OutEchoReps": rep4}
    # IcmpMsg: per-type counts, printed by the kernel only for types seen (icmpmsg_put)
    msg = {f"InType{ty}": int(t4[ty]) for ty in range(256) if t4[ty]}
    msg |= {k: v for k, v in (("OutType0", rep4), ("OutType3", un4), ("OutType11", te4)) if v}
    icmp6 = {"Icmp6InMsgs": in6, "Icmp6InErrors": 0, "Icmp6InCsumErrors": 0,
             "Icmp6OutMsgs": un6 + rep6 + te6 + pp6, "Icmp6OutErrors": 0}
    if kv >= (6, 2):
        icmp6["Icmp6OutRateLimitHost"] = int(misc[m + L.IC_RL_HOST6])
    # snmp6_seq_show_icmpv6: every named type's Icmp6In<name>, then Icmp6InType<n> where nonzero
    icmp6 |= {f"Icmp6In{name}": int(t6[ty]) for ty, name in ICMP6_MIB_NAMES}
    icmp6 |= {"Icmp6OutDestUnreachs": un6, "Icmp6OutTimeExcds": te6,
              "Icmp6OutParmProblems": pp6, "Icmp6OutEchoReplies": rep6}
    icmp6 |= {f"Icmp6InType{ty}": int(t6[ty]) for ty in range(256) if t6[ty]}
    if rep6:
        icmp6["Icmp6OutType129"] = rep6
    if un6:
        icmp6["Icmp6OutType1"] = un6
    if te6:
        icmp6["Icmp6OutType3"] = te6
    if pp6:
        icmp6["Icmp6OutType4"] = pp6
    return icmp, msg, icmp6


__all__ = ["icmp_counters", "icmp_peers", "icmp_state"]
