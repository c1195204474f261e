"""One TCP+TLS bulk download, as captured on the client → frames (both directions).

Shared by `https-download` (IPv4) and `tcp-ipv6`. What it reproduces, and why it matters to the
model's GRO (KERNEL.md §4):

- the 3-way handshake with Linux's SYN options (MSS, SACK_PERM, TS, NOP, WS), then a TLS 1.3
  handshake, then the response as 16 KiB TLS records;
- the sender segments the byte stream at the MSS minus the 12-byte timestamp option (1448 bytes
  for MSS 1460: a full 1514-byte frame at MTU 1500) and sets PSH only on the segment holding the
  last byte of each write (one TLS record per write: `tcp_push()` after each `sendmsg`);
- TCP timestamps (RFC 7323) on every segment; TSval from a 1 kHz clock on each host (Linux
  `tcp_time_stamp_ts`, ms granularity), so segments sent within one ms carry identical options
  and may merge, and a tick ends a GRO train; TSecr echoes TS.Recent, which the receiver updates
  only from the segment at its last ACK's edge (`tcp_replace_ts_recent`: `!after(seq, rcv_wup)`);
- IPv4: DF set, IP ID from a random per-socket start +1 per segment (`ip_select_ident_segs`),
  except the SYN-ACK, which Linux sends with ID 0 (`ip_build_and_send_pkt`, since commit
  970a5a3ea86d "ipv4: tcp: send zero IPID in SYNACK messages", 2022); constant TTL/TOS.
  IPv6: constant flow label and hop limit;
- the client ACKs the first 16 data segments at once (quick-ACK mode, TCP_MAX_QUICKACKS in
  include/net/tcp.h), then every second full segment (`__tcp_ack_snd_check`: more than one
  rcv_mss unacknowledged), and a short segment once the application has read it
  (ICSK_ACK_PUSHED, `tcp_cleanup_rbuf`); its advertised window grows as autotuning does;
- data arrives paced by the bottleneck: each frame takes (len + 24 bytes of FCS, preamble and
  inter-frame gap) × 8 / rate on the wire. The congestion window is taken as already open (a
  transfer past slow start); the handshake takes real round trips.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import dpkt
import numpy as np

from replay.synth.packets import ETH_HLEN, WIRE_EXTRA, ether
from replay.synth.writer import Capture

RTT_NS = 8_000_000  # client ↔ server round trip: a nearby CDN edge (typical 5-15 ms in Europe)
TS_OPT_LEN = 12  # NOP NOP TS(10): the option block Linux puts on every established segment
TLS_HDR = 5  # RFC 8446 §5.1: type, legacy version, length
TLS_RECORD = TLS_HDR + 16384 + 1 + 16  # max plaintext + inner content type + AES-GCM tag (§5.2)
QUICKACKS = 16  # TCP_MAX_QUICKACKS (include/net/tcp.h)
ACK_DELAY_NS = 12_000  # data arrival → the client's ACK on the wire (softirq processing)
APP_READ_NS = 40_000  # data arrival → the application has read it (wake-up + recvmsg)
SERVER_THINK_NS = 300_000  # request → first response byte leaves the server
CLIENT_WSCALE = 7  # Linux picks 7 for tcp_rmem[2] = 6 MiB (tcp_select_initial_window)
SERVER_WSCALE = 8
CLIENT_RCVBUF_MAX = 3 * 1024 * 1024  # half of tcp_rmem[2]: the rest is overhead (tcp_adv_win_scale)
SERVER_WIN_FIELD = 1050  # ≈ 268 kB scaled: the server receives almost nothing


@dataclass(frozen=True)
class FlowSpec:
    """Who talks to whom, and the per-host constants a real capture shows."""

    version: int  # 4 or 6
    server_ip: bytes
    client_ip: bytes
    server_port: int
    client_port: int
    gw_mac: bytes  # the router: source of the server's frames as the client's NIC sees them
    client_mac: bytes
    mss: int  # advertised in the SYNs: 1460 (IPv4) / 1440 (IPv6) at MTU 1500
    server_ttl: int
    client_ttl: int = 64

    @property
    def seg_payload(self) -> int:
        return self.mss - TS_OPT_LEN

    @property
    def full_frame(self) -> int:
        ip_hlen = 20 if self.version == 4 else 40
        return ETH_HLEN + ip_hlen + 20 + TS_OPT_LEN + self.seg_payload


def data_plan(spec: FlowSpec, rate_bps: float, duration_ns: int) -> int:
    """How many 16 KiB TLS records fit in `duration_ns` of data at `rate_bps` (at least 1)."""
    full_bits = (spec.full_frame + WIRE_EXTRA) * 8
    segments = int(duration_ns * rate_bps // (full_bits * 1e9))
    return max(1, segments * spec.seg_payload // TLS_RECORD)


def data_segments(spec: FlowSpec, rate_bps: float, duration_ns: int) -> int:
    """The number of response data segments `download` writes (for callers' size limits)."""
    return -(-data_plan(spec, rate_bps, duration_ns) * TLS_RECORD // spec.seg_payload)


@dataclass
class _Conn:
    spec: FlowSpec
    rng: np.random.Generator
    times: list[int] = field(default_factory=list)
    frames: list[bytes] = field(default_factory=list)
    c_ts_times: list[int] = field(default_factory=list)  # client sends: time, TSval (for TSecr)
    c_ts_vals: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        r = self.rng
        self.c_isn, self.s_isn = (int(x) for x in r.integers(0, 2**32, 2))
        self.c_id, self.s_id = (int(x) for x in r.integers(0, 2**16, 2))
        self.c_tsbase, self.s_tsbase = (int(x) for x in r.integers(0, 2**31, 2))
        # Where in its millisecond each host's clock sits at t=0.
        self.c_phase, self.s_phase = (int(x) for x in r.integers(0, 1_000_000, 2))
        self.flowlabel = int(r.integers(1, 2**20))
        self.c_nxt = self.c_isn  # next client sequence number
        self.c_rcv_nxt = 0  # what the client has received in order (its ACK number)
        self.c_rcv_wup = 0  # the ACK number of the client's last segment
        self.c_ts_recent = 0
        self.c_received = 0
        self.s_nxt = self.s_isn

    # 1 kHz timestamp clocks (RFC 7323 §5.4: 1 ms to 1 s per tick; Linux uses 1 ms).
    def c_tsval(self, t: int) -> int:
        return (self.c_tsbase + (t + self.c_phase) // 1_000_000) & 0xFFFFFFFF

    def s_tsval(self, t_send: int) -> int:
        return (self.s_tsbase + (t_send + self.s_phase + RTT_NS) // 1_000_000) & 0xFFFFFFFF

    def _frame(
        self,
        from_server: bool,
        seq: int,
        ack: int,
        flags: int,
        win: int,
        opts: bytes,
        payload: bytes,
        ip_id: int,
    ) -> bytes:
        s = self.spec
        tcp = dpkt.tcp.TCP(
            sport=s.server_port if from_server else s.client_port,
            dport=s.client_port if from_server else s.server_port,
            seq=seq & 0xFFFFFFFF,
            ack=ack & 0xFFFFFFFF,
            flags=flags,
            win=win,
            opts=opts,
            data=payload,
        )
        tcp.off = (20 + len(opts)) // 4
        src, dst = (s.server_ip, s.client_ip) if from_server else (s.client_ip, s.server_ip)
        ttl = s.server_ttl if from_server else s.client_ttl
        if s.version == 4:
            ip: dpkt.Packet = dpkt.ip.IP(
                src=src, dst=dst, p=dpkt.ip.IP_PROTO_TCP, ttl=ttl, id=ip_id & 0xFFFF, df=1, data=tcp
            )
            etype = dpkt.ethernet.ETH_TYPE_IP
        else:
            ip = dpkt.ip6.IP6(src=src, dst=dst, nxt=dpkt.ip.IP_PROTO_TCP, hlim=ttl, data=tcp)
            ip.plen = len(tcp)
            ip.flow = self.flowlabel
            etype = dpkt.ethernet.ETH_TYPE_IP6
        if from_server:
            return ether(s.client_mac, s.gw_mac, ip, etype)
        return ether(s.gw_mac, s.client_mac, ip, etype)

    def client_send(self, t: int, flags: int, payload: bytes = b"", syn_opts: bytes = b"") -> int:
        """The client transmits at `t` (after its previous packet); returns the time used."""
        if self.c_ts_times:
            t = max(t, self.c_ts_times[-1] + 1_000)  # one NIC, one packet at a time
        tsval = self.c_tsval(t)
        ts = b"\x08\x0a" + tsval.to_bytes(4, "big") + self.c_ts_recent.to_bytes(4, "big")
        if flags & dpkt.tcp.TH_SYN:
            opts = syn_opts.replace(b"TSOPTION!!", ts)
            win = 64240  # Linux SYN window for tcp_rmem[1] = 131072
        else:
            opts = b"\x01\x01" + ts
            wnd = min(CLIENT_RCVBUF_MAX, 64256 + 2 * self.c_received)  # autotuning: ~2x data
            win = wnd >> CLIENT_WSCALE
        ack = self.c_rcv_nxt if flags & dpkt.tcp.TH_ACK else 0
        self.times.append(t)
        self.frames.append(
            self._frame(False, self.c_nxt, ack, flags, win, opts, payload, self.c_id)
        )
        self.c_id += 1
        self.c_nxt += len(payload) + (1 if flags & dpkt.tcp.TH_SYN else 0)
        self.c_rcv_wup = self.c_rcv_nxt
        self.c_ts_times.append(t)
        self.c_ts_vals.append(tsval)
        return t

    def server_arrives(
        self,
        t: int,
        flags: int,
        payload: bytes = b"",
        syn_opts: bytes = b"",
        ip_id: int | None = None,
    ) -> None:
        """A server segment reaches the client's NIC at `t` (sent one-way delay earlier)."""
        t_send = t - RTT_NS // 2
        tsval = self.s_tsval(t_send)
        # TS.Recent at the server: the newest client TSval that reached it before it sent.
        k = bisect.bisect_right(self.c_ts_times, t_send - RTT_NS // 2)
        tsecr = self.c_ts_vals[k - 1] if k else 0
        ts = b"\x08\x0a" + tsval.to_bytes(4, "big") + tsecr.to_bytes(4, "big")
        if flags & dpkt.tcp.TH_SYN:
            opts, win = syn_opts.replace(b"TSOPTION!!", ts), 65535
        else:
            opts, win = b"\x01\x01" + ts, SERVER_WIN_FIELD
        seq = self.s_nxt
        self.times.append(t)
        self.frames.append(
            self._frame(
                True,
                seq,
                self.c_nxt,
                flags,
                win,
                opts,
                payload,
                self.s_id if ip_id is None else ip_id,
            )
        )
        if ip_id is None:
            self.s_id += 1
        self.s_nxt += len(payload) + (1 if flags & dpkt.tcp.TH_SYN else 0)
        # The client's side of it: TS.Recent comes from the SYN-ACK, then only from a segment
        # at the edge of the client's last ACK (!after(seq, rcv_wup)).
        if flags & dpkt.tcp.TH_SYN or seq <= self.c_rcv_wup:
            self.c_ts_recent = tsval
        self.c_rcv_nxt = self.s_nxt
        self.c_received += len(payload)


def _syn_opts(mss: int, wscale: int) -> bytes:
    # Linux's SYN option order (tcp_options_write): MSS, SACK_PERM, TS, NOP, WS.
    return (
        b"\x02\x04"
        + mss.to_bytes(2, "big")
        + b"\x04\x02"
        + b"TSOPTION!!"
        + b"\x01\x03\x03"
        + bytes([wscale])
    )


def _segments(writes: list[int], seg: int) -> list[tuple[int, int, bool]]:
    """Write sizes → (stream offset, length, PSH) per segment: PSH where a write ends."""
    ends = np.cumsum(writes)
    total = int(ends[-1])
    out = []
    for off in range(0, total, seg):
        length = min(seg, total - off)
        i = int(np.searchsorted(ends, off, side="right"))
        psh = i < len(ends) and int(ends[i]) <= off + length
        out.append((off, length, bool(psh)))
    return out


def _tls_record(rng: np.random.Generator, ctype: int, body_len: int, minor: int = 3) -> bytes:
    # Ciphertext is indistinguishable from random bytes: random bodies behind real headers.
    # legacy_record_version is 3,3 except 3,1 on a ClientHello (RFC 8446 §5.1).
    return bytes([ctype, 3, minor]) + body_len.to_bytes(2, "big") + rng.bytes(body_len)


def download(spec: FlowSpec, rate_bps: float, duration_ns: int, seed: int) -> Capture:
    """The whole connection as the client's tcpdump records it (microsecond timestamps)."""
    rng = np.random.default_rng(seed)
    c = _Conn(spec, rng)
    TH = dpkt.tcp
    rtt = RTT_NS
    seg = spec.seg_payload
    quick = QUICKACKS
    unacked = 0

    def wire_ns(frame_len: int) -> float:
        return (frame_len + WIRE_EXTRA) * 8 * 1e9 / rate_bps

    def receive(stream: bytes, writes: list[int], t_first: int, flags: int = TH.TH_ACK) -> int:
        """Server segments of `stream`, paced at the bottleneck from `t_first`; client ACKs."""
        nonlocal quick, unacked
        hdr = spec.full_frame - seg
        t = float(t_first)
        for off, length, psh in _segments(writes, seg):
            t += wire_ns(hdr + length)
            ta = int(t)
            c.server_arrives(ta, flags | (TH.TH_PUSH if psh else 0), stream[off : off + length])
            unacked += length
            jitter = int(rng.integers(0, 6_000))
            if quick > 0 or unacked > seg:
                quick = max(0, quick - 1)
                c.client_send(ta + ACK_DELAY_NS + jitter, TH.TH_ACK)
                unacked = 0
            elif length < seg:  # ICSK_ACK_PUSHED: ACK once the application has read it
                c.client_send(ta + APP_READ_NS + jitter, TH.TH_ACK)
                unacked = 0
        return int(t)

    # 3-way handshake. The SYN-ACK leaves with IP ID 0 (ip_build_and_send_pkt sets it for DF).
    c.client_send(0, TH.TH_SYN, syn_opts=_syn_opts(spec.mss, CLIENT_WSCALE))
    c.server_arrives(
        rtt, TH.TH_SYN | TH.TH_ACK, syn_opts=_syn_opts(spec.mss, SERVER_WSCALE), ip_id=0
    )
    t = c.client_send(rtt + ACK_DELAY_NS, TH.TH_ACK)
    # TLS 1.3 (RFC 8446 §2): ClientHello; ServerHello + ChangeCipherSpec + the encrypted flight
    # (EncryptedExtensions, Certificate chain, CertificateVerify, Finished: ~4 kB for an ECDSA
    # chain); the client's CCS + Finished + the HTTP request.
    hello = _tls_record(rng, 0x16, 512, minor=1)
    t = c.client_send(t + 50_000, TH.TH_PUSH | TH.TH_ACK, hello)
    flight = [
        _tls_record(rng, 0x16, 122),
        bytes([0x14, 3, 3, 0, 1, 1]),
        _tls_record(rng, 0x17, 4000),
    ]
    t_flight = receive(b"".join(flight), [sum(len(r) for r in flight)], t + rtt + SERVER_THINK_NS)
    finished = (
        bytes([0x14, 3, 3, 0, 1, 1]) + _tls_record(rng, 0x17, 53) + _tls_record(rng, 0x17, 160)
    )
    t = c.client_send(t_flight + 200_000, TH.TH_PUSH | TH.TH_ACK, finished)
    # The response: one TLS record per write.
    n_records = data_plan(spec, rate_bps, duration_ns)
    body = rng.bytes(n_records * (TLS_RECORD - TLS_HDR))
    hdr = bytes([0x17, 3, 3]) + (TLS_RECORD - TLS_HDR).to_bytes(2, "big")
    step = TLS_RECORD - TLS_HDR
    stream = b"".join(hdr + body[i * step : (i + 1) * step] for i in range(n_records))
    receive(stream, [TLS_RECORD] * n_records, t + rtt + SERVER_THINK_NS)
    order = np.argsort(np.asarray(c.times, dtype=np.int64), kind="stable")
    return Capture(
        np.asarray(c.times, dtype=np.int64)[order], [c.frames[i] for i in order], nano=False
    )
