"""Frame bytes → header columns: every link type, VLAN/MPLS, IP options/extensions, tunnels."""

from __future__ import annotations

import ipaddress
import struct
from pathlib import Path
from typing import Any

import pytest

from replay.capture import read_captures
from tests import capbuild as cb

MAC_A = bytes.fromhex("020000000001")
MAC_B = bytes.fromhex("020000000002")


def eth(payload: bytes, etype: int = 0x0800, dst: bytes = MAC_B, src: bytes = MAC_A) -> bytes:
    return dst + src + struct.pack(">H", etype) + payload


def vlan(vid: int, etype: int) -> bytes:
    return struct.pack(">HH", vid, etype)


def ipv4(payload: bytes, proto: int = 17, src: str = "10.0.0.1", dst: str = "10.0.0.2", *,
         opts: bytes = b"", ff: int = 0x4000, ident: int = 7, ttl: int = 64, tos: int = 0,
         total: int | None = None) -> bytes:  # fmt: skip
    ihl = 5 + len(opts) // 4
    tot = 4 * ihl + len(payload) if total is None else total
    a, b = ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed
    hdr = struct.pack(">BBHHHBBH4s4s", 0x40 | ihl, tos, tot, ident, ff, ttl, proto, 0, a, b)
    return hdr + opts + payload


def ipv6(payload: bytes, nh: int = 17, src: str = "2001:db8::1", dst: str = "2001:db8::2",
         hop: int = 60, tc: int = 0) -> bytes:  # fmt: skip
    first = (6 << 28) | (tc << 20)
    a, b = ipaddress.IPv6Address(src).packed, ipaddress.IPv6Address(dst).packed
    return struct.pack(">IHBB", first, len(payload), nh, hop) + a + b + payload


def udp(payload: bytes = b"hello", sport: int = 1111, dport: int = 2222, csum: int = 0xBEEF) -> bytes:
    return struct.pack(">HHHH", sport, dport, 8 + len(payload), csum) + payload


def tcp(payload: bytes = b"", sport: int = 80, dport: int = 5555, seq: int = 1000, ack: int = 2000,
        flags: int = 0x18, opts: bytes = b"") -> bytes:  # fmt: skip
    off = (20 + len(opts)) // 4
    hdr = struct.pack(">HHIIHHHH", sport, dport, seq, ack, (off << 12) | flags, 65535, 0x1234, 0)
    return hdr + opts + payload


def decode(tmp_path: Path, frame: bytes, linktype: int = 1) -> dict[str, Any]:
    p = tmp_path / "f.pcap"
    p.write_bytes(cb.pcap([(1, 0, frame)], linktype=linktype))
    row = read_captures([p]).table.to_pylist()[0]
    for k in ("src", "dst"):
        if row[k] is not None:
            a = ipaddress.IPv6Address(row[k])
            row[k] = str(a.ipv4_mapped or a)
    for k in ("dst_mac", "src_mac"):
        if row[k] is not None:
            row[k] = row[k].hex()
    return row


def sub(row: dict[str, Any], keys: str) -> dict[str, Any]:
    return {k: row[k] for k in keys.split()}


def test_ethernet_ipv4_udp(tmp_path: Path) -> None:
    r = decode(tmp_path, eth(ipv4(udp(b"x" * 11, csum=0), ttl=9, tos=0x10)))
    assert sub(r, "dst_mac src_mac ethertype ip_version src dst proto sport dport payload_len") == {
        "dst_mac": "020000000002", "src_mac": "020000000001", "ethertype": 0x0800, "ip_version": 4,
        "src": "10.0.0.1", "dst": "10.0.0.2", "proto": 17, "sport": 1111, "dport": 2222,
        "payload_len": 11,
    }  # fmt: skip
    assert sub(r, "ttl ip_tos ip_df ip_id ip_hlen l4_csum_zero frag tcp_flags error") == {
        "ttl": 9, "ip_tos": 0x10, "ip_df": True, "ip_id": 7, "ip_hlen": 20, "l4_csum_zero": True,
        "frag": 0, "tcp_flags": None, "error": None,
    }  # fmt: skip


def test_tcp_fields_and_option_hash(tmp_path: Path) -> None:
    opts = bytes.fromhex("020405b4") + bytes.fromhex("0101080a0000000100000002")  # MSS, TS
    r = decode(tmp_path, eth(ipv4(tcp(b"p" * 100, seq=0xFFFFFFFF, ack=5, flags=0x1D2, opts=opts), proto=6)))
    assert sub(r, "sport dport tcp_seq tcp_ack tcp_flags tcp_hlen payload_len l4_csum_zero") == {
        "sport": 80, "dport": 5555, "tcp_seq": 0xFFFFFFFF, "tcp_ack": 5, "tcp_flags": 0x1D2,
        "tcp_hlen": 36, "payload_len": 100, "l4_csum_zero": False,
    }  # fmt: skip
    # FNV-1a (32-bit) over the 16 option bytes.
    h = 2166136261
    for b in opts:
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    assert r["tcp_opt_hash"] == h
    assert decode(tmp_path, eth(ipv4(tcp(), proto=6)))["tcp_opt_hash"] == 0


def test_vlan_qinq_and_mpls(tmp_path: Path) -> None:
    q = decode(tmp_path, eth(vlan(100, 0x8100) + vlan(200, 0x0800) + ipv4(udp()), etype=0x88A8))
    assert sub(q, "vlan ethertype src sport tunnel") == {
        "vlan": 100,
        "ethertype": 0x0800,
        "src": "10.0.0.1",
        "sport": 1111,
        "tunnel": None,
    }
    labels = struct.pack(">II", (16 << 12) | 64, (17 << 12) | 0x100 | 64)  # two labels, BoS on 2nd
    m = decode(tmp_path, eth(vlan(5, 0x8847) + labels + ipv6(udp()), etype=0x8100))
    assert sub(m, "vlan ethertype ip_version src tunnel") == {
        "vlan": 5,
        "ethertype": 0x86DD,
        "ip_version": 6,
        "src": "2001:db8::1",
        "tunnel": "mpls",
    }


def test_ipv4_options_and_fragments(tmp_path: Path) -> None:
    r = decode(tmp_path, eth(ipv4(udp(), opts=b"\x01\x01\x01\x00")))
    assert sub(r, "ip_hlen sport frag") == {"ip_hlen": 24, "sport": 1111, "frag": 0}
    first = decode(tmp_path, eth(ipv4(udp(b"a" * 40), ff=0x2000, ident=99)))
    assert sub(first, "frag sport ip_id ip_df payload_len") == {
        "frag": 1,
        "sport": 1111,
        "ip_id": 99,
        "ip_df": False,
        "payload_len": 40,
    }
    later = decode(tmp_path, eth(ipv4(b"b" * 24, ff=0x0003)))
    assert sub(later, "frag sport dport payload_len proto") == {
        "frag": 2,
        "sport": None,
        "dport": None,
        "payload_len": 24,
        "proto": 17,
    }


def test_ipv6_extension_headers(tmp_path: Path) -> None:
    hbh = bytes([43, 0]) + b"\x01\x04\0\0\0\0"  # → routing
    rth = bytes([60, 2]) + b"\0" * 6 + b"\0" * 16  # → destination opts, 24 bytes
    dst = bytes([51, 0]) + b"\x01\x04\0\0\0\0"  # → AH
    ah = bytes([44, 4]) + b"\0" * 22  # (4+2)*4 = 24 bytes → fragment
    frag = bytes([6, 0]) + struct.pack(">HI", 1, 0xABCDEF01)  # offset 0, M=1 → TCP
    payload = hbh + rth + dst + ah + frag + tcp(b"z" * 10)
    r = decode(tmp_path, eth(ipv6(payload, nh=0, tc=0xB8, hop=7), etype=0x86DD))
    assert sub(r, "ip_version proto ip_hlen frag ip_id ip_df sport payload_len ttl ip_tos") == {
        "ip_version": 6, "proto": 6, "ip_hlen": 40 + 8 + 24 + 8 + 24 + 8, "frag": 1,
        "ip_id": 0xABCDEF01, "ip_df": None, "sport": 80, "payload_len": 10, "ttl": 7,
        "ip_tos": 0xB8,
    }  # fmt: skip
    later = bytes([17, 0]) + struct.pack(">HI", 8 << 3, 1) + b"q" * 16
    r2 = decode(tmp_path, eth(ipv6(later, nh=44), etype=0x86DD))
    assert sub(r2, "proto frag sport payload_len") == {
        "proto": 17,
        "frag": 2,
        "sport": None,
        "payload_len": 16,
    }


def _tunnel(r: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    return sub(r, "tunnel src dst proto sport dport error") | {"inner": r["inner_flow"] is not None}


def test_gre_vxlan_geneve_ipip_6in4(tmp_path: Path) -> None:
    inner = ipv4(tcp(), proto=6, src="192.168.0.1", dst="192.168.0.2")
    gre = decode(tmp_path, eth(ipv4(struct.pack(">HH", 0x2000, 0x0800) + b"KEY!" + inner, proto=47)))
    assert _tunnel(gre, tmp_path) == {
        "tunnel": "gre", "src": "10.0.0.1", "dst": "10.0.0.2", "proto": 47, "sport": None,
        "dport": None, "error": None, "inner": True,
    }  # fmt: skip
    teb = decode(tmp_path, eth(ipv4(struct.pack(">HH", 0, 0x6558) + eth(inner), proto=47)))
    assert (teb["tunnel"], teb["inner_flow"]) == ("gre", 0)
    # PPTP: enhanced GRE v1 with key, sequence; PPP with address/control then protocol 0x0021.
    pptp = struct.pack(">HHHHI", 0x3001, 0x880B, len(inner) + 4, 7, 1) + b"\xff\x03\x00\x21" + inner
    assert decode(tmp_path, eth(ipv4(pptp, proto=47)))["inner_flow"] == 0
    vx = decode(tmp_path, eth(ipv4(udp(b"\x08\0\0\0\0\0\x01\0" + eth(inner), dport=4789))))
    assert _tunnel(vx, tmp_path) == {
        "tunnel": "vxlan", "src": "10.0.0.1", "dst": "10.0.0.2", "proto": 17, "sport": 1111,
        "dport": 4789, "error": None, "inner": True,
    }  # fmt: skip
    gen_hdr = struct.pack(">BBHI", 1, 0, 0x6558, 0x000100) + b"\x01\x02\x03\x04"  # 4-byte option
    gv = decode(tmp_path, eth(ipv4(udp(gen_hdr + eth(inner), dport=6081))))
    assert (gv["tunnel"], gv["inner_flow"], gv["error"]) == ("geneve", 0, None)
    ipip = decode(tmp_path, eth(ipv4(inner, proto=4)))
    assert (ipip["tunnel"], ipip["inner_flow"], ipip["src"]) == ("ipip", 0, "10.0.0.1")
    six = decode(tmp_path, eth(ipv4(ipv6(udp()), proto=41)))
    assert (six["tunnel"], six["inner_flow"]) == ("6in4", 0)


def test_inner_flow_ids_are_dense_and_shared_by_equal_inner_tuples(tmp_path: Path) -> None:
    a = ipv4(tcp(sport=1), proto=6, src="192.168.0.1")
    b = ipv4(tcp(sport=2), proto=6, src="192.168.0.1")
    frames = [eth(ipv4(x, proto=4)) for x in (a, b, a)] + [eth(ipv4(udp()))]
    p = tmp_path / "t.pcap"
    p.write_bytes(cb.pcap([(1, 0, f) for f in frames]))
    t = read_captures([p]).table
    assert t.column("inner_flow").to_pylist() == [0, 1, 0, None]
    assert t.column("flow").to_pylist() == [0, 0, 0, 1]


@pytest.mark.parametrize(
    ("linktype", "frame", "expect"),
    [
        (113, struct.pack(">HHH8sH", 0, 1, 6, MAC_A + b"\0\0", 0x0800) + ipv4(udp()),
         {"src_mac": "020000000001", "dst_mac": None, "ethertype": 0x0800, "sport": 1111}),
        (276, struct.pack(">HHIHBB8s", 0x86DD, 0, 3, 1, 0, 6, MAC_A + b"\0\0") + ipv6(udp()),
         {"src_mac": "020000000001", "dst_mac": None, "ethertype": 0x86DD, "sport": 1111}),
        (101, ipv6(udp()), {"ip_version": 6, "src_mac": None, "sport": 1111}),
        (12, ipv4(udp()), {"ip_version": 4, "sport": 1111}),
        (14, ipv4(udp()), {"ip_version": 4, "sport": 1111}),
        (228, ipv4(udp()), {"ip_version": 4, "sport": 1111}),
        (229, ipv6(udp()), {"ip_version": 6, "sport": 1111}),
        (0, struct.pack("<I", 2) + ipv4(udp()), {"ip_version": 4, "sport": 1111}),
        (0, struct.pack(">I", 30) + ipv6(udp()), {"ip_version": 6, "sport": 1111}),
        (108, struct.pack(">I", 24) + ipv6(udp()), {"ip_version": 6, "sport": 1111}),
        (107, b"\x18\x41\x03\xcc" + ipv4(udp()), {"ip_version": 4, "sport": 1111}),
        (6, b"\x10\x40" + MAC_B + bytes([0x82]) + MAC_A[1:] + b"\x02\x00"
         + b"\xaa\xaa\x03\0\0\0\x08\x00" + ipv4(udp()),
         {"dst_mac": "020000000002", "src_mac": "020000000001", "sport": 1111}),
        (10, b"\x50" + MAC_B + MAC_A + b"\xaa\xaa\x03\0\0\0\x86\xdd" + ipv6(udp()),
         {"src_mac": "020000000001", "ip_version": 6, "sport": 1111}),
        (1, eth(ipv6(udp()), etype=0x0800), {"ip_version": 6, "ethertype": 0x0800, "sport": 1111}),
        (147, ipv4(udp()), {"ip_version": 0, "error": "unsupported-linktype:147"}),
    ],
)  # fmt: skip
def test_link_types(tmp_path: Path, linktype: int, frame: bytes, expect: dict[str, Any]) -> None:
    r = decode(tmp_path, frame, linktype)
    assert sub(r, " ".join(expect)) == expect
    assert r["linktype"] == linktype
    if "error" not in expect:
        assert r["error"] is None


def _wlan_data(tods: int, fromds: int, qos: bool) -> bytes:
    fc0 = 0x08 | (0x80 if qos else 0)  # type 2 data, subtype 0 or 8 (QoS)
    a1, a2, a3 = b"\x11" * 6, b"\x22" * 6, b"\x33" * 6
    hdr = bytes([fc0, tods | (fromds << 1)]) + b"\0\0" + a1 + a2 + a3 + b"\0\0"
    if tods and fromds:
        hdr += b"\x44" * 6
    if qos:
        hdr += b"\0\0"
    return hdr + b"\xaa\xaa\x03\0\0\0\x08\x00" + ipv4(udp())


@pytest.mark.parametrize(
    ("tods", "fromds", "qos", "dst", "src"),
    [(0, 0, False, "11", "22"), (1, 0, True, "33", "22"), (0, 1, False, "11", "33"),
     (1, 1, True, "33", "44")],
)  # fmt: skip
def test_802_11_data_frames(tmp_path: Path, tods: int, fromds: int, qos: bool, dst: str, src: str) -> None:
    frame = _wlan_data(tods, fromds, qos)
    for lt, prefix in ((105, b""), (127, b"\0\0\x08\0\0\0\0\0")):  # radiotap: 8-byte header
        r = decode(tmp_path, prefix + frame, lt)
        assert sub(r, "dst_mac src_mac ethertype sport") == {
            "dst_mac": dst * 6,
            "src_mac": src * 6,
            "ethertype": 0x0800,
            "sport": 1111,
        }


def test_802_11_beacon_is_not_ip_and_not_an_error(tmp_path: Path) -> None:
    beacon = bytes([0x80, 0]) + b"\0\0" + b"\xff" * 6 + b"\x22" * 6 + b"\x22" * 6 + b"\0\0" + b"\0" * 12
    r = decode(tmp_path, beacon, 105)
    assert sub(r, "ip_version error dst_mac src_mac") == {
        "ip_version": 0,
        "error": None,
        "dst_mac": "ff" * 6,
        "src_mac": "22" * 6,
    }


@pytest.mark.parametrize(
    ("oui", "is_ip"),
    [("000000", True), ("0000f8", True), ("080007", True), ("00000c", False), ("090000", False)],
)
def test_llc_snap_carries_an_ethertype_only_under_the_encapsulation_ouis(
        tmp_path: Path, oui: str, is_ip: bool) -> None:  # fmt: skip
    # 802.3 length field, then LLC AA AA 03 + SNAP (OUI, PID 0x0800); tshark (dissect_snap) reads
    # the PID as an ethertype only for RFC 1042, 802.1H and AppleTalk's OUI (a mutated OUI from
    # `editcap -E` turned an IP packet into "Data" for tshark)
    body = bytes.fromhex("aaaa03" + oui) + b"\x08\x00" + ipv4(udp())
    r = decode(tmp_path, eth(body, etype=len(body)))
    assert sub(r, "ip_version src error") == (
        {"ip_version": 4, "src": "10.0.0.1", "error": None} if is_ip
        else {"ip_version": 0, "src": None, "error": None})


@pytest.mark.parametrize(
    ("frame", "error", "fields"),
    [
        (eth(b"")[:10], "truncated:ethernet", {"dst_mac": None}),
        # cut after the source address: as tshark, the version and source are kept
        (eth(ipv4(udp()))[:30], "truncated:ipv4", {"ip_version": 4, "src": "10.0.0.1", "dst": None}),
        (eth(b"\x45" + b"\0" * 5, etype=0x0800)[:18], "truncated:ipv4", {}),
        (eth(ipv4(udp(), opts=b"")[:0] + bytes([0x43]) + b"\0" * 19), "bad-ihl", {"ip_version": 4}),
        (eth(ipv4(tcp(), proto=6))[:14 + 20 + 10], "truncated:tcp", {"sport": 80}),
        (eth(ipv4(udp()))[:14 + 20 + 6], "truncated:udp", {"sport": 1111}),
        (eth(ipv6(udp()), etype=0x86DD)[:50], "truncated:ipv6",
         {"ip_version": 6, "src": "2001:db8::1", "dst": None, "proto": 17}),
        (eth(ipv6(udp()), etype=0x86DD)[:30], "truncated:ipv6",
         {"ip_version": 6, "src": None, "dst": None, "proto": 17}),
        (eth(vlan(1, 0x0800), etype=0x8100)[:16], "truncated:vlan", {}),
        (eth(ipv4(udp(b"\x08\0\0\0", dport=4789))), "truncated:vxlan", {"tunnel": "vxlan"}),
    ],
)  # fmt: skip
def test_broken_frames_are_rows_with_an_error(
    tmp_path: Path, frame: bytes, error: str, fields: dict[str, Any]
) -> None:
    r = decode(tmp_path, frame)
    assert r["error"] == error
    assert sub(r, " ".join(fields)) == fields if fields else True


def _ipv4_opts(opts: bytes, ncap: int, tot: int | None = None) -> bytes:
    ihl = 5 + len(opts) // 4
    hdr = struct.pack(">BBHHHBBH4s4s", 0x40 | ihl, 0, 4 * ihl + 8 if tot is None else tot, 1,
                      0x4000, 64, 17, 0, bytes([1, 2, 3, 4]), bytes([5, 6, 7, 8]))  # fmt: skip
    return eth((hdr + opts + udp(b""))[:ncap])


LSRR = bytes([0x83, 11, 4, 9, 9, 9, 9, 10, 10, 10, 10, 0])  # two hops, then End of List


@pytest.mark.parametrize(
    ("opts", "ncap", "tot", "src", "dst"),
    [
        # what tshark 4.x shows for each (crafted, then read with `tshark -T fields -e ip.dst`)
        (LSRR, 100, None, "1.2.3.4", "10.10.10.10"),  # the route's last hop is ip.dst
        (bytes([1, 1]) + LSRR[:10], 100, None, "1.2.3.4", "5.6.7.8"),  # route past the header
        (LSRR, 31, None, "1.2.3.4", None),  # the walk reaches byte 31, not captured
        (LSRR, 22, None, "1.2.3.4", None),
        (bytes([0x44, 0x44, 0, 0]), 21, None, "1.2.3.4", None),  # the option's length is cut
        (bytes([0x44, 0x44, 0, 0]), 22, None, "1.2.3.4", "5.6.7.8"),  # length 68: past the end
        (bytes([1, 1, 1, 1]), 23, None, "1.2.3.4", None),
        (bytes([1, 1, 1, 1]), 24, None, "1.2.3.4", "5.6.7.8"),
        (bytes([0, 1, 1, 1]), 21, None, "1.2.3.4", "5.6.7.8"),  # End of List stops the walk
        (bytes([0x44, 1, 1, 1]), 22, None, "1.2.3.4", "5.6.7.8"),  # a length below 2 too
        (bytes([0x44, 4, 0, 0, 1, 1, 1, 1]), 27, None, "1.2.3.4", None),
        (bytes([1, 1, 1, 1]), 100, 20, None, None),  # total length below the header: bogus
    ],
)  # fmt: skip
def test_ipv4_destination_as_tshark_finds_it(
        tmp_path: Path, opts: bytes, ncap: int, tot: int | None, src: str | None,
        dst: str | None) -> None:  # fmt: skip
    r = decode(tmp_path, _ipv4_opts(opts, ncap, tot))
    assert (r["ip_version"], r["src"], r["dst"]) == (4, src, dst)


@pytest.mark.parametrize(("proto", "l4len", "ports"), [(17, 2, None), (17, 4, 1111), (6, 3, None),
                                                       (6, 4, 80)])  # fmt: skip
def test_transport_header_ends_where_the_ip_length_says(
        tmp_path: Path, proto: int, l4len: int, ports: int | None) -> None:  # fmt: skip
    # the rest of the frame is there (padding or a mutated length): tshark's transport tvb and
    # the kernel's trimmed skb both end at the IP total length (an `editcap -E` frame: tshark
    # showed no ports for IP length 22 over a full UDP header)
    seg = udp() if proto == 17 else tcp()
    r = decode(tmp_path, eth(ipv4(seg, proto=proto, total=20 + l4len)))
    assert (r["sport"], r["error"]) == (ports, "truncated:udp" if proto == 17 else "truncated:tcp")
