"""[[app]] match strings → which frames each socket receives (a small tcpdump-like grammar).

    match = "udp dport 27015"
    match = "tcp port 443 and host 192.168.1.100"
    match = "udp portrange 5000-5009"

Primitives: a protocol (`udp`, `tcp`), `port N`, `sport N`, `dport N`, `portrange A-B`,
`host ADDR`, `src host ADDR`, `dst host ADDR`, joined by `and` (or nothing). A socket is bound to
the local side, so `dport`/`dst host` are what a bound socket matches; `port` matches either.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import numpy as np

from replay.errors import ConfigError

PROTOS = {"udp": 17, "tcp": 6}


@dataclass(frozen=True)
class Match:
    proto: int | None = None
    dport: tuple[int, int] | None = None
    sport: tuple[int, int] | None = None
    port: tuple[int, int] | None = None
    host: bytes | None = None  # 16-byte (IPv4-mapped) address
    src: bytes | None = None
    dst: bytes | None = None


def _addr16(text: str, where: str) -> bytes:
    try:
        a = ipaddress.ip_address(text)
    except ValueError:
        raise ConfigError(f"{where}: {text!r} is not an IP address") from None
    if isinstance(a, ipaddress.IPv4Address):
        return b"\x00" * 10 + b"\xff\xff" + a.packed
    return a.packed


def _port(text: str, where: str) -> tuple[int, int]:
    try:
        if "-" in text:
            a, b = (int(x) for x in text.split("-", 1))
        else:
            a = b = int(text)
    except ValueError:
        raise ConfigError(f"{where}: {text!r} is not a port or a range like 5000-5009") from None
    if not (0 <= a <= b <= 65535):
        raise ConfigError(f"{where}: port range {text!r} is outside 0-65535")
    return a, b


def parse_match(text: str, where: str = "match") -> Match:
    toks = text.replace(",", " ").split()
    fields: dict[str, object] = {}
    i = 0
    if not toks:
        raise ConfigError(f"{where}: empty; say what the socket receives, e.g. \"udp dport 27015\"")
    while i < len(toks):
        t = toks[i].lower()
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        if t == "and":
            i += 1
            continue
        if t in PROTOS:
            fields["proto"] = PROTOS[t]
            i += 1
        elif t in ("port", "sport", "dport", "portrange") and nxt is not None:
            key = "port" if t == "portrange" else t
            fields[key] = _port(nxt, where)
            i += 2
        elif t == "host" and nxt is not None:
            fields["host"] = _addr16(nxt, where)
            i += 2
        elif t in ("src", "dst") and nxt == "host" and i + 2 < len(toks):
            fields[t] = _addr16(toks[i + 2], where)
            i += 3
        elif t in ("src", "dst") and nxt is not None:
            fields[t] = _addr16(nxt, where)
            i += 2
        else:
            raise ConfigError(
                f"{where}: cannot read {toks[i]!r} in {text!r}; use udp/tcp, port/sport/dport N,"
                " portrange A-B, host/src host/dst host ADDR"
            )
    return Match(**fields)  # type: ignore[arg-type]


def _in_range(col: np.ndarray, valid: np.ndarray, r: tuple[int, int]) -> np.ndarray:
    return valid & (col >= r[0]) & (col <= r[1])


def match_mask(
    m: Match,
    proto: np.ndarray,
    sport: np.ndarray,
    dport: np.ndarray,
    has_ports: np.ndarray,
    src: np.ndarray,
    dst: np.ndarray,
) -> np.ndarray:
    """Boolean mask of the frames `m` matches. src/dst are (n, 16) uint8 arrays."""
    ok = np.ones(len(proto), dtype=bool)
    if m.proto is not None:
        ok &= proto == m.proto
    if m.dport is not None:
        ok &= _in_range(dport, has_ports, m.dport)
    if m.sport is not None:
        ok &= _in_range(sport, has_ports, m.sport)
    if m.port is not None:
        ok &= _in_range(dport, has_ports, m.port) | _in_range(sport, has_ports, m.port)
    for field, col in (("src", src), ("dst", dst)):
        addr = getattr(m, field)
        if addr is not None:
            ok &= (col == np.frombuffer(addr, dtype=np.uint8)).all(axis=1)
    if m.host is not None:
        a = np.frombuffer(m.host, dtype=np.uint8)
        ok &= (src == a).all(axis=1) | (dst == a).all(axis=1)
    return ok
