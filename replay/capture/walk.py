"""Container bytes → record index (offset, cap_len, wire_len, ts_ns, iface), for pcap and pcapng.

Both walkers are compiled loops over one buffer that holds a window of the decompressed stream.
They stop at the first record that is not wholly in the buffer (status NEED, with the bytes that
record needs) so the caller can read more and resume at the returned position; nothing here ever
allocates by a length read from the file: a record or block claiming more than MAX_RECORD bytes
stops the walk (status TOO_BIG) instead.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from replay.capture.binary import u16, u32

# Largest record or block we are willing to buffer. Wireshark's largest per-encapsulation limits
# (wiretap/wtap.h: D-Bus 128 MiB, USBPcap 128 MiB) are rare; ordinary link types stop at 262144
# (WTAP_MAX_PACKET_SIZE_STANDARD). 64 MiB keeps every real capture and bounds memory.
MAX_RECORD = 64 << 20

# Walk status codes.
FULL = 0  # max_rec records produced; call again from pos
NEED = 1  # the record at pos is incomplete: `info` bytes from pos are needed
TOO_BIG = 2  # the record at pos claims `info` bytes (> MAX_RECORD)
CORRUPT = 3  # the block at pos is malformed (`info` = reason code below)
SHB_VERSION = 4  # pcapng section header at pos has an unsupported version (`info` = major<<16|minor)
GROW = 5  # pcapng: interface table full; grow it and call again
BAD_IFACE = 6  # pcapng: packet names interface `info` that the section has not described
FRAMED = -1  # internal: a block's framing checked out (never returned by a walk)

# CORRUPT reasons (pcapng).
BAD_BLOCK_LEN = 1  # block total length < 12 or not a multiple of 4
BAD_TRAILER = 2  # trailing block length differs from the leading one
BAD_BOM = 3  # section header byte-order magic is neither 1A2B3C4D nor 4D3C2B1A
SHORT_BLOCK = 4  # block too short for its fixed fields
CAPLEN_OVER_BLOCK = 5  # packet's captured length runs past its block

CORRUPT_REASONS = {
    BAD_BLOCK_LEN: "block length is below 12 or not a multiple of 4",
    BAD_TRAILER: "trailing block length differs from the leading one",
    BAD_BOM: "section header byte-order magic is not 1A2B3C4D",
    SHORT_BLOCK: "block is too short for its fixed fields",
    CAPLEN_OVER_BLOCK: "packet's captured length runs past the end of its block",
}

NO_TS = np.iinfo(np.int64).min  # a Simple Packet Block before any timestamped packet


@njit(cache=True, nogil=True)
def walk_pcap(buf, pos, be, hdr_len, frac_ns, max_rec, off, cap, wire, ts):
    """Index classic pcap records from buf[pos:]; returns (n, pos, status, info).

    frac_ns is the nanoseconds per unit of the record's fraction field (1000 for µs, 1 for ns).
    A fraction ≥ 1 s carries into the seconds, as libpcap's consumers do (tcpdump's
    timestamp_invalid_micro test).
    """
    n = 0
    end = buf.shape[0]
    while n < max_rec:
        if pos + hdr_len > end:
            return n, pos, NEED, hdr_len
        sec = u32(buf, pos, be)
        frac = u32(buf, pos + 4, be)
        incl = u32(buf, pos + 8, be)
        orig = u32(buf, pos + 12, be)
        if incl > MAX_RECORD:
            return n, pos, TOO_BIG, incl
        if pos + hdr_len + incl > end:
            return n, pos, NEED, hdr_len + incl
        off[n] = pos + hdr_len
        cap[n] = incl
        wire[n] = orig
        ts[n] = sec * 1_000_000_000 + frac * frac_ns
        n += 1
        pos += hdr_len + incl
    return n, pos, FULL, 0


# pcapng walker state (an int64 array the caller keeps between calls).
ST_BE = 0  # current section is big-endian
ST_NIF_SECTION = 1  # interfaces described so far in this section
ST_IF_BASE = 2  # global index of this section's interface 0
ST_NIF = 3  # interfaces described so far in the file
ST_LAST_TS = 4  # last timestamp, for Simple Packet Blocks
ST_SECTIONS = 5
ST_UNTIMED = 6  # packets without a timestamp (SPBs)
ST_SKIPPED = 7  # blocks skipped (statistics, name resolution, custom, unknown)
ST_SIZE = 8


@njit(cache=True, nogil=True)
def _tick_to_ns(raw, tsk, tsoff):
    """if_tsresol ticks (+ if_tsoffset seconds) → ns since the epoch (pcapng §4.2 if_tsresol)."""
    if tsk & 0x80:
        k = tsk & 0x7F
        if k == 0:
            ns = raw * 1_000_000_000
        elif k <= 30:
            ns = (raw >> k) * 1_000_000_000 + (((raw & ((1 << k) - 1)) * 1_000_000_000) >> k)
        else:
            ns = np.int64(float(raw) * 1e9 / float(2.0**k))
    else:
        k = tsk
        if k <= 9:
            m = 1
            for _ in range(9 - k):
                m *= 10
            ns = raw * m
        else:
            d = 1
            for _ in range(min(k - 9, 18)):
                d *= 10
            ns = raw // d
    return ns + tsoff * 1_000_000_000


@njit(cache=True, nogil=True, inline="always")
def _check_block(buf, pos, end, be, blen, minimum):
    """(status, detail) of a pcapng block's framing: its total length (at least `minimum`, a
    multiple of 4, within MAX_RECORD), whether it is all in the buffer, and the trailing copy."""
    if blen < minimum or blen % 4 != 0:
        return CORRUPT, BAD_BLOCK_LEN
    if blen > MAX_RECORD:
        return TOO_BIG, blen
    if pos + blen > end:
        return NEED, blen
    if u32(buf, pos + blen - 4, be) != blen:
        return CORRUPT, BAD_TRAILER
    return FRAMED, 0


@njit(cache=True, nogil=True)
def walk_pcapng(buf, pos, st, if_lt, if_snap, if_tsk, if_tsoff, max_rec, off, cap, wire, ts, ifc):
    """Index pcapng packets (EPB, SPB, obsolete PB) from buf[pos:]; returns (n, pos, status, info).

    Section headers switch the byte order and start a new interface numbering; interface blocks
    append to the if_* tables (global index = section base + local id). Every other block type
    (statistics, name resolution, decryption secrets, custom, unknown) is skipped by its length.
    """
    n = 0
    end = buf.shape[0]
    while n < max_rec:
        if pos + 12 > end:
            return n, pos, NEED, 12
        be = st[ST_BE] != 0
        btype = u32(buf, pos, be)
        if btype == 0x0A0D0D0A:  # SHB: its own byte-order magic decides how to read it
            if pos + 16 > end:
                return n, pos, NEED, 16
            b0 = buf[pos + 8]
            if b0 == 0x4D and buf[pos + 9] == 0x3C and buf[pos + 10] == 0x2B and buf[pos + 11] == 0x1A:
                be = False
            elif b0 == 0x1A and buf[pos + 9] == 0x2B and buf[pos + 10] == 0x3C and buf[pos + 11] == 0x4D:
                be = True
            else:
                return n, pos, CORRUPT, BAD_BOM
            blen = u32(buf, pos + 4, be)
            status, detail = _check_block(buf, pos, end, be, blen, 28)
            if status != FRAMED:
                return n, pos, status, detail
            major = u16(buf, pos + 12, be)
            minor = u16(buf, pos + 14, be)
            # wiretap/pcapng.c accepts 1.0 and 1.2 (1.2 was written by some early tools).
            if not (major == 1 and (minor == 0 or minor == 2)):
                return n, pos, SHB_VERSION, (major << 16) | minor
            st[ST_BE] = 1 if be else 0
            st[ST_NIF_SECTION] = 0
            st[ST_IF_BASE] = st[ST_NIF]
            st[ST_SECTIONS] += 1
            pos += blen
            continue
        blen = u32(buf, pos + 4, be)
        status, detail = _check_block(buf, pos, end, be, blen, 12)
        if status != FRAMED:
            return n, pos, status, detail
        if btype == 1:  # Interface Description Block
            if blen < 20:
                return n, pos, CORRUPT, SHORT_BLOCK
            k = st[ST_NIF]
            if k >= if_lt.shape[0]:
                return n, pos, GROW, 0
            tsk = 6  # default if_tsresol: microseconds
            tsoff = 0
            p = pos + 16
            oend = pos + blen - 4
            while p + 4 <= oend:
                code = u16(buf, p, be)
                olen = u16(buf, p + 2, be)
                if code == 0 or p + 4 + olen > oend:
                    break
                if code == 9 and olen >= 1:
                    tsk = np.int64(buf[p + 4])
                elif code == 14 and olen >= 8:
                    if be:
                        v = (u32(buf, p + 4, be) << 32) | u32(buf, p + 8, be)
                    else:
                        v = (u32(buf, p + 8, be) << 32) | u32(buf, p + 4, be)
                    tsoff = v  # signed 64-bit seconds (int64 wraps the same way)
                p += 4 + ((olen + 3) & ~3)
            if_lt[k] = u16(buf, pos + 8, be)
            if_snap[k] = u32(buf, pos + 12, be)
            if_tsk[k] = tsk
            if_tsoff[k] = tsoff
            st[ST_NIF] = k + 1
            st[ST_NIF_SECTION] += 1
        elif btype == 6 or btype == 2:  # Enhanced Packet Block / obsolete Packet Block
            if blen < 32:
                return n, pos, CORRUPT, SHORT_BLOCK
            ifid = u32(buf, pos + 8, be) if btype == 6 else u16(buf, pos + 8, be)
            if ifid >= st[ST_NIF_SECTION]:
                return n, pos, BAD_IFACE, ifid
            g = st[ST_IF_BASE] + ifid
            incl = u32(buf, pos + 20, be)
            if incl > blen - 32:
                return n, pos, CORRUPT, CAPLEN_OVER_BLOCK
            raw = (u32(buf, pos + 12, be) << 32) | u32(buf, pos + 16, be)
            t = _tick_to_ns(raw, if_tsk[g], if_tsoff[g])
            off[n] = pos + 28
            cap[n] = incl
            wire[n] = u32(buf, pos + 24, be)
            ts[n] = t
            ifc[n] = g
            st[ST_LAST_TS] = t
            n += 1
        elif btype == 3:  # Simple Packet Block: interface 0, no timestamp, snaplen rule
            if blen < 16:
                return n, pos, CORRUPT, SHORT_BLOCK
            if st[ST_NIF_SECTION] == 0:
                return n, pos, BAD_IFACE, 0
            g = st[ST_IF_BASE]
            orig = u32(buf, pos + 8, be)
            incl = orig
            snap = if_snap[g]
            if snap > 0 and incl > snap:
                incl = snap
            if incl > blen - 16:
                incl = blen - 16
            off[n] = pos + 12
            cap[n] = incl
            wire[n] = orig
            ts[n] = st[ST_LAST_TS]
            ifc[n] = g
            st[ST_UNTIMED] += 1
            n += 1
        else:
            st[ST_SKIPPED] += 1
        pos += blen
    return n, pos, FULL, 0
