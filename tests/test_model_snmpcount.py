"""Engine per-packet arrays → SNMP tallies (model/snmpcount.py), on packets built by hand.

Each packet below exercises one rule of simulate._counters' tallies; the expected counts are
written out per IP version.
"""

from __future__ import annotations

import numpy as np

from replay.model import layout as L  # noqa: N812
from replay.model import snmpcount as T  # noqa: N812


def _packets(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pk = np.zeros((n, L.N_PK), np.int64)
    po = np.full((n, L.N_PO), -1, np.int64)
    po[:, L.O_SKBH] = np.arange(n)
    se = np.full((n, L.N_ST), -1, np.int64)
    pk[:, L.F_TUN] = L.TUN_NONE
    pk[:, L.F_SOCK] = 0
    return pk, po, se


def test_tallies_by_rule() -> None:
    pk, po, se = _packets(9)
    kind0 = np.zeros(9, np.int8)
    v6 = np.zeros(9, bool)
    rst_ok = np.zeros(9, bool)
    # 0: IPv4 UDP read by the app
    pk[0, L.F_KIND] = L.K_UDP
    se[0, [L.S_IP, L.S_L4, L.S_COPY]] = 10
    # 1: a GRO segment of packet 0's skb: counted with its head, not on its own
    pk[1, L.F_KIND] = L.K_UDP
    po[1, L.O_SKBH] = 0
    se[1, [L.S_IP, L.S_L4, L.S_COPY]] = 10
    # 2: IPv6 UDP dropped at a full socket (RcvbufErrors and InErrors)
    pk[2, L.F_KIND] = L.K_UDP
    v6[2] = True
    se[2, [L.S_IP, L.S_L4]] = 10
    po[2, L.O_DREASON] = L.R_RCVBUF
    # 3: IPv4 pure ACK nobody takes: NO_SOCKET, answered with a RST
    pk[3, L.F_KIND] = L.K_TCP_CTRL
    pk[3, L.F_SOCK] = -1
    rst_ok[3] = True
    se[3, L.S_IP] = 10
    po[3, L.O_DREASON] = L.R_NOSOCK
    # 4: ARP: passes the stack's early stages but never ip_rcv
    kind0[4] = L.K_ARP
    pk[4, L.F_KIND] = L.K_ARP
    se[4, L.S_IP] = 10
    # 5: IPv4 VXLAN datagram decapsulated to an inner UDP packet
    pk[5, L.F_KIND] = L.K_UDP
    pk[5, L.F_TUN] = L.TUN_VXLAN
    pk[5, L.F_IKIND] = L.K_UDP
    se[5, [L.S_IP, L.S_L4]] = 10
    # 6: IPv6 UDP with a bad checksum
    pk[6, L.F_KIND] = L.K_UDP
    v6[6] = True
    se[6, L.S_IP] = 10
    po[6, L.O_DREASON] = L.R_UDP_CSUM
    # 7: IPv4 UDP to a closed port
    pk[7, L.F_KIND] = L.K_UDP
    se[7, L.S_IP] = 10
    po[7, L.O_DREASON] = L.R_NOSOCK
    # 8: IPv4 TCP segment with data, delivered; then dropped for protocol memory
    pk[8, L.F_KIND] = L.K_TCP
    se[8, [L.S_IP, L.S_L4]] = 10
    po[8, L.O_DREASON] = L.R_PROTOMEM
    got = T.tally(pk, po, se, kind0, v6, rst_ok)
    want = np.zeros((2, T.N_TALLY), np.int64)
    want[0, T.HEADS] = 6  # 0, 3, 4, 5, 7, 8
    want[1, T.HEADS] = 2  # 2, 6
    want[0, T.AT_IP] = 5  # 0, 3, 5, 7, 8 (not the ARP)
    want[1, T.AT_IP] = 2
    want[0, T.DELIV_L4] = 3  # 0, 5, 8
    want[1, T.DELIV_L4] = 1  # 2
    want[0, T.READ_UDP] = 1
    want[1, T.RCVBUF_UDP] = 1
    want[1, T.RCVBUF_CSUM_UDP] = 2  # 2 and 6
    want[1, T.CSUMERR_UDP] = 1
    want[0, T.RST] = 1
    want[0, T.NOPORTS] = 1  # 7 (3 is TCP)
    want[0, T.DECAP] = 1
    want[0, T.UDP_TUN] = 1
    want[0, T.TCP_IN] = 1
    want[0, T.PROTOMEM] = 1
    np.testing.assert_array_equal(got, want)


def test_gre_inner_arp_and_listener_refusal() -> None:
    """A GRE packet counts as decapsulated but not as a UDP tunnel datagram; an inner ARP is not
    decapsulated to ip_rcv; a NO_SOCKET segment a listener refused (sock >= 0) gets no RST."""
    pk, po, se = _packets(3)
    pk[:, L.F_KIND] = [L.K_NOPROTO, L.K_UDP, L.K_TCP_CTRL]
    pk[0, L.F_TUN] = L.TUN_GRE
    pk[0, L.F_IKIND] = L.K_TCP
    pk[1, L.F_TUN] = L.TUN_GENEVE
    pk[1, L.F_IKIND] = L.K_ARP
    se[:2, L.S_L4] = 5
    po[2, L.O_DREASON] = L.R_NOSOCK
    pk[2, L.F_SOCK] = 4
    got = T.tally(pk, po, se, np.zeros(3, np.int8), np.zeros(3, bool), np.ones(3, bool))
    assert got[0, T.DECAP] == 1 and got[0, T.UDP_TUN] == 1 and got[0, T.RST] == 0
    assert got[1].sum() == 0
