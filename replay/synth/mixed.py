"""`mixed` options → a LAN segment as one host's mirror port sees it (dpkt).

The host is 192.168.1.100 (3c:22:fb:12:34:56) behind the gateway 192.168.1.1. The capture holds
what decides a frame's fate before any socket does (DESIGN.md, "Which frames are received"):
ARP (the host resolving its gateway; other hosts' broadcasts), ICMP echo (a neighbour pinging the
host, and the host's replies), DNS (the host's query and the answer), a TLS download to the host
(the same model as `https-download`, at --rate), and --clients other hosts' traffic: unicast
QUIC-sized UDP between them and the gateway (frames for other MACs, as a mirror port or a
flooding switch shows them), their ARP broadcasts and mDNS multicast, and the gateway's SSDP.
"""

from __future__ import annotations

import dpkt
import numpy as np

from replay.synth.options import Options
from replay.synth.packets import ether, ip4, mac
from replay.synth.scenario import DPKT_MAX_FRAMES, Scenario, check_frames
from replay.synth.tcpflow import FlowSpec, data_segments, download
from replay.synth.writer import Capture, merge

HOST_IP, HOST_MAC = ip4("192.168.1.100"), mac("3c:22:fb:12:34:56")
GW_IP, GW_MAC = ip4("192.168.1.1"), mac("00:1a:2b:3c:4d:5e")
BCAST = b"\xff" * 6
SERVER = ip4("93.184.215.14")  # www.example.com
PINGER_IP, PINGER_MAC = ip4("192.168.1.50"), mac("58:ef:68:00:00:32")
DOWNLOAD_START_NS = 14_000_000


def _arp(op: int, sha: bytes, spa: bytes, tha: bytes, tpa: bytes, dst: bytes) -> bytes:
    arp = dpkt.arp.ARP(op=op, sha=sha, spa=spa, tha=tha, tpa=tpa)
    return ether(dst, sha, arp, dpkt.ethernet.ETH_TYPE_ARP)


def _ip(
    src_mac: bytes,
    dst_mac: bytes,
    src: bytes,
    dst: bytes,
    l4: dpkt.Packet,
    proto: int,
    ip_id: int,
    ttl: int = 64,
    df: int = 1,
) -> bytes:
    if isinstance(l4, dpkt.udp.UDP):
        l4.ulen = len(l4)
    ip = dpkt.ip.IP(src=src, dst=dst, p=proto, ttl=ttl, id=ip_id & 0xFFFF, df=df, data=l4)
    return ether(dst_mac, src_mac, ip, dpkt.ethernet.ETH_TYPE_IP)


def _quic(rng: np.random.Generator, dcid: bytes) -> bytes:
    # A QUIC 1-RTT packet (RFC 9000 §17.3): short header (form 0, fixed bit 1), the peer's
    # 8-byte connection ID, then protected bytes; 1252 bytes like Chrome's full-size packets.
    return bytes([0x40 | int(rng.integers(0, 64))]) + dcid + rng.bytes(1252 - 9)


def _mcast_mac(group: bytes) -> bytes:
    # RFC 1112 §6.4: 01:00:5e + the low 23 bits of the group address.
    return b"\x01\x00\x5e" + bytes([group[1] & 0x7F, group[2], group[3]])


def build(o: Options) -> Capture:
    rng = np.random.default_rng(o.seed)
    D = o.duration_ns
    ev: list[tuple[int, bytes]] = []
    UDP, ICMP = dpkt.ip.IP_PROTO_UDP, dpkt.ip.IP_PROTO_ICMP
    # The host resolves its gateway, then www.example.com.
    ev.append((0, _arp(dpkt.arp.ARP_OP_REQUEST, HOST_MAC, HOST_IP, bytes(6), GW_IP, BCAST)))
    ev.append((400_000, _arp(dpkt.arp.ARP_OP_REPLY, GW_MAC, GW_IP, HOST_MAC, HOST_IP, HOST_MAC)))
    q = dpkt.dns.DNS(
        id=int(rng.integers(0, 1 << 16)),
        op=dpkt.dns.DNS_RD,
        qd=[dpkt.dns.DNS.Q(name="www.example.com", type=dpkt.dns.DNS_A)],
    )
    sport = int(rng.integers(32768, 61000))
    ev.append(
        (
            1_000_000,
            _ip(
                HOST_MAC,
                GW_MAC,
                HOST_IP,
                GW_IP,
                dpkt.udp.UDP(sport=sport, dport=53, data=bytes(q)),
                UDP,
                1,
            ),
        )
    )
    ans = dpkt.dns.DNS(bytes(q))
    ans.op = dpkt.dns.DNS_QR | dpkt.dns.DNS_RD | dpkt.dns.DNS_RA
    ans.an = [dpkt.dns.DNS.RR(name="www.example.com", type=dpkt.dns.DNS_A, ttl=300, rdata=SERVER)]
    ev.append(
        (
            13_000_000,
            _ip(
                GW_MAC,
                HOST_MAC,
                GW_IP,
                HOST_IP,
                dpkt.udp.UDP(sport=53, dport=sport, data=bytes(ans)),
                UDP,
                7,
            ),
        )
    )
    # A neighbour pings the host every 100 ms; the host answers 25 µs later.
    for k, t in enumerate(range(5_000_000, D, 100_000_000)):
        echo = dpkt.icmp.ICMP.Echo(id=0x1C2D, seq=k + 1, data=rng.bytes(56))
        req = dpkt.icmp.ICMP(type=dpkt.icmp.ICMP_ECHO, data=echo)
        rep = dpkt.icmp.ICMP(type=dpkt.icmp.ICMP_ECHOREPLY, data=echo)
        ev.append((t, _ip(PINGER_MAC, HOST_MAC, PINGER_IP, HOST_IP, req, ICMP, 100 + k)))
        ev.append(
            (t + 25_000, _ip(HOST_MAC, PINGER_MAC, HOST_IP, PINGER_IP, rep, ICMP, 2000 + k, df=0))
        )
    # Other hosts on the segment.
    for h in range(o.clients):
        hmac = mac(f"58:ef:68:00:01:{h % 256:02x}")
        hip = ip4(f"192.168.1.{20 + h % 70}")
        ev.append(
            (
                int(rng.integers(0, D)),
                _arp(dpkt.arp.ARP_OP_REQUEST, hmac, hip, bytes(6), GW_IP, BCAST),
            )
        )
        group = ip4("224.0.0.251")
        mdns = dpkt.dns.DNS(
            id=0, qd=[dpkt.dns.DNS.Q(name="_googlecast._tcp.local", type=dpkt.dns.DNS_PTR)]
        )
        ev.append(
            (
                int(rng.integers(0, D)),
                _ip(
                    hmac,
                    _mcast_mac(group),
                    hip,
                    group,
                    dpkt.udp.UDP(sport=5353, dport=5353, data=bytes(mdns)),
                    UDP,
                    0,
                    ttl=255,
                ),
            )
        )
        quic_port = int(rng.integers(32768, 61000))
        remote = ip4(f"142.250.{h % 256}.{100 + h % 100}")
        cid_up, cid_down = rng.bytes(8), rng.bytes(8)
        for j, t in enumerate(range(int(rng.integers(0, 20_000_000)), D, 20_000_000)):
            up = dpkt.udp.UDP(sport=quic_port, dport=443, data=_quic(rng, cid_up))
            down = dpkt.udp.UDP(sport=443, dport=quic_port, data=_quic(rng, cid_down))
            ev.append((t, _ip(hmac, GW_MAC, hip, remote, up, UDP, j)))
            ev.append((t + 9_000_000, _ip(GW_MAC, hmac, remote, hip, down, UDP, 0, ttl=57)))
    ssdp = (
        b"NOTIFY * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nNT: upnp:rootdevice\r\n"
        b"NTS: ssdp:alive\r\nLOCATION: http://192.168.1.1:5000/rootDesc.xml\r\n\r\n"
    )
    group = ip4("239.255.255.250")
    ev.append(
        (
            int(rng.integers(0, D)),
            _ip(
                GW_MAC,
                _mcast_mac(group),
                GW_IP,
                group,
                dpkt.udp.UDP(sport=1900, dport=1900, data=ssdp),
                UDP,
                0,
                ttl=4,
            ),
        )
    )
    ev = [e for e in ev if e[0] < D]
    spec = FlowSpec(
        version=4,
        server_ip=SERVER,
        client_ip=HOST_IP,
        server_port=443,
        client_port=sport + 1,
        gw_mac=GW_MAC,
        client_mac=HOST_MAC,
        mss=1460,
        server_ttl=52,
    )
    data_ns = max(1_000_000, (D - DOWNLOAD_START_NS) // 4)
    check_frames(len(ev) + 2 * data_segments(spec, o.rate, data_ns), SCENARIO.name, DPKT_MAX_FRAMES)
    dl = download(spec, o.rate, data_ns, o.seed + 1)
    dl.ts_ns = dl.ts_ns + DOWNLOAD_START_NS
    ev.sort(key=lambda e: e[0])  # stable: ties keep the order they were made in
    rest = Capture(np.asarray([t for t, _ in ev], dtype=np.int64), [f for _, f in ev], nano=False)
    return merge([rest, dl], nano=False)


SCENARIO = Scenario(
    name="mixed",
    summary="a LAN mirror port: ARP, ICMP echo, DNS, a TLS download to 192.168.1.100 (--rate"
    " bit/s) and --clients other hosts' traffic",
    build=build,
    defaults={"duration": 0.5, "rate": 50e6, "clients": 4},
    rate_unit="bit/s",
    limits={"clients": (0, 250)},
)
