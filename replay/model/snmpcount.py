"""Engine per-packet arrays → the per-skb tallies behind /proc/net/snmp and snmp6, in one pass.

The counters block (simulate._counters) counts skbs by what happened to them: reached ip_rcv,
delivered to L4, read by the app, dropped for a reason, decapsulated. Done with numpy masks over
the engine's row-major packet arrays, each of the ~25 masks read a strided column (one cache
line per packet) and cost ~10 ms per million packets: 0.16-0.19 s per million in all
(benchmarks/bench_run.py --sections). One compiled pass reads each packet's row once.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from replay.model import layout as L  # noqa: N812

# tallies, each kept per IP version (row 0: IPv4, row 1: IPv6)
(AT_IP, DELIV_L4, READ_UDP, RCVBUF_UDP, NOPORTS, CSUMERR_UDP, RCVBUF_CSUM_UDP, RST, DECAP,
 UDP_TUN, INHDR, TRUNC, NOPROTO, TCP_IN, PROTOMEM, HEADS, ICMP_IN, ECHO_IN,
 IGNORED_MULTI, TCP_ERR, INADDR) = range(21)
N_TALLY = 21


@njit(cache=True)
def _tally(pk, po, se, kind0, v6, tcp_rst_ok, out):  # pragma: no cover - numba
    n = pk.shape[0]
    for i in range(n):
        if po[i, L.O_SKBH] != i:
            continue  # a GRO segment merged into an earlier packet's skb: counted with that one
        r = 1 if v6[i] else 0
        out[r, HEADS] += 1
        kind = pk[i, L.F_KIND]
        reason = po[i, L.O_DREASON]
        udp = kind == L.K_UDP
        tcp = kind == L.K_TCP or kind == L.K_TCP_CTRL or kind == L.K_BADTCP
        l4 = se[i, L.S_L4] >= 0
        # ip_rcv_core frees a PACKET_OTHERHOST skb before IPSTATS_MIB_IN (a VLAN without device)
        if se[i, L.S_IP] >= 0 and kind0[i] != L.K_ARP and reason != L.R_OTHERHOST:
            out[r, AT_IP] += 1
        if l4:
            out[r, DELIV_L4] += 1
            if tcp:
                out[r, TCP_IN] += 1
            # icmp_rcv / icmpv6_rcv count every ICMP message they take (InMsgs, per type)
            if kind == L.K_ICMP or kind == L.K_ICMP_ECHO or kind == L.K_ICMP_PING:
                out[r, ICMP_IN] += 1
            if kind == L.K_ICMP_ECHO:
                out[r, ECHO_IN] += 1
        if udp and se[i, L.S_COPY] >= 0:
            out[r, READ_UDP] += 1
        if udp and reason == L.R_RCVBUF:
            out[r, RCVBUF_UDP] += 1
        if udp and reason == L.R_NOSOCK:
            out[r, NOPORTS] += 1
        if udp and reason == L.R_NOTSPEC and po[i, L.O_DSTAGE] == L.S_L4:
            out[r, IGNORED_MULTI] += 1  # __udp4_lib_mcast_deliver found no socket
        if udp and reason == L.R_UDP_CSUM:
            out[r, CSUMERR_UDP] += 1
        if udp and (reason == L.R_RCVBUF or reason == L.R_UDP_CSUM):
            out[r, RCVBUF_CSUM_UDP] += 1
        if reason == L.R_NOSOCK and tcp_rst_ok[i] and pk[i, L.F_SOCK] < 0:
            out[r, RST] += 1
        tun = pk[i, L.F_TUN]
        if tun != L.TUN_NONE and l4:
            if pk[i, L.F_IKIND] != L.K_ARP:
                out[r, DECAP] += 1
            if tun != L.TUN_GRE:
                out[r, UDP_TUN] += 1
        if reason == L.R_INHDR:
            out[r, INHDR] += 1
        elif reason == L.R_TOOSMALL and po[i, L.O_DSTAGE] == L.S_IP:
            out[r, TRUNC] += 1  # ip_rcv_core's InTruncatedPkts
        elif reason == L.R_TOOSMALL and kind == L.K_BADTCP:
            out[r, TCP_ERR] += 1  # tcp_v4_rcv's bad_packet: TCP_MIB_INERRS
        elif reason == L.R_INADDR:
            out[r, INADDR] += 1  # ip_error / ip6_forward: IPSTATS_MIB_INADDRERRORS
        elif reason == L.R_NOPROTO:
            out[r, NOPROTO] += 1
        elif reason == L.R_PROTOMEM:
            out[r, PROTOMEM] += 1


def tally(pk: np.ndarray, po: np.ndarray, se: np.ndarray, kind0: np.ndarray, v6: np.ndarray,
          tcp_rst_ok: np.ndarray) -> np.ndarray:
    """(2, N_TALLY) int64: per IP version (0: v4, 1: v6), the skbs (GRO heads) of each tally.

    kind0: each packet's kind before decapsulation; v6: IPv6; tcp_rst_ok: a TCP segment that
    is not a RST itself (one no socket takes is answered with a RST)."""
    out = np.zeros((2, N_TALLY), np.int64)
    _tally(pk, po, se, kind0, v6, tcp_rst_ok, out)
    return out
