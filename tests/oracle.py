"""tshark oracle TSV + our frames table → the list of disagreements (shared by tests and docs).

Compared per frame: timestamp, frame.len, frame.cap_len, the outermost IP source and destination
and the outer transport's ports, as ../shared/traces-real/README.md describes the oracle.
"""

from __future__ import annotations

import csv
import ipaddress
import os
from pathlib import Path

import pyarrow as pa

REPO = Path(__file__).resolve().parent.parent


def corpus_dir() -> Path:
    """STACK_REPLAY_SHARED (default: <repo>/../shared) / traces-real; a git worktree also looks
    beside its main checkout."""
    env = os.environ.get("STACK_REPLAY_SHARED")
    if env:
        return Path(env) / "traces-real"
    candidates = [REPO.parent / "shared"]
    git = REPO / ".git"
    if git.is_file():  # worktree: "gitdir: <main>/.git/worktrees/<name>"
        gitdir = Path(git.read_text().split(":", 1)[1].strip())
        candidates.append(gitdir.parent.parent.parent.parent / "shared")
    for c in candidates:
        if (c / "traces-real").is_dir():
            return c / "traces-real"
    return candidates[0] / "traces-real"


def read_oracle(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def tshark_status(corpus: Path) -> dict[str, int]:
    rows = read_oracle(corpus / "oracle" / "TSHARK_STATUS.tsv")
    return {r["file"]: int(r["tshark_rc"]) for r in rows}


def _ts_ns(s: str) -> int | None:
    """tshark epoch string → ns; None when absent or un-normalised (fraction ≥ 1 s)."""
    if not s:
        return None
    sec, _, frac = s.partition(".")
    if len(frac) > 9:
        return None
    return int(sec) * 1_000_000_000 + int(frac.ljust(9, "0"))


def _first(s: str) -> str:
    return s.split(",")[0] if s else ""


def _addr(b: bytes | None, version: int) -> str:
    if b is None:
        return ""
    a = ipaddress.IPv6Address(b)
    if version == 4 and a.ipv4_mapped is not None:
        return str(a.ipv4_mapped)
    return str(a)


def align(ours: list[dict], rows: list[dict[str, str]]) -> list[tuple[dict, dict[str, str]]]:
    """Pair our frames with tshark rows. tshark shows pcapng custom blocks as extra rows; when it
    has more rows than we have frames, match ours in order on (frame.len, frame.cap_len)."""
    if len(rows) <= len(ours):
        return list(zip(ours, rows, strict=False))
    pairs = []
    j = 0
    for f in ours:
        while j < len(rows) and (
            rows[j]["frame.len"] != str(f["wire_len"]) or rows[j]["frame.cap_len"] != str(f["cap_len"])
        ):
            j += 1
        if j == len(rows):
            break
        pairs.append((f, rows[j]))
        j += 1
    return pairs


def compare(table: pa.Table, rows: list[dict[str, str]]) -> list[str]:
    """Human-readable disagreements between our frames and tshark's rows."""
    cols = ["frame", "ts_ns", "wire_len", "cap_len", "ip_version", "src", "dst", "proto",
            "sport", "dport", "frag"]  # fmt: skip
    ours = table.select(cols).to_pylist()
    out: list[str] = []
    pairs = align(ours, rows)
    if len(pairs) != len(ours):
        out.append(f"frame count: ours {len(ours)}, tshark {len(rows)} rows")
    for f, r in pairs:
        n = f["frame"]
        t = _ts_ns(r["frame.time_epoch"])
        if t is not None and t != f["ts_ns"]:
            out.append(f"frame {n}: ts_ns {f['ts_ns']} != tshark {t}")
        if r["frame.len"] != str(f["wire_len"]):
            out.append(f"frame {n}: wire_len {f['wire_len']} != tshark {r['frame.len']}")
        if r["frame.cap_len"] != str(f["cap_len"]):
            out.append(f"frame {n}: cap_len {f['cap_len']} != tshark {r['frame.cap_len']}")
        v = f["ip_version"]
        if v == 4:
            ts_src, ts_dst = _first(r["ip.src"]), _first(r["ip.dst"])
        elif v == 6:
            ts_src, ts_dst = _first(r["ipv6.src"]), _first(r["ipv6.dst"])
        else:
            ts_src = _first(r["ip.src"]) or _first(r["ipv6.src"])
            ts_dst = _first(r["ip.dst"]) or _first(r["ipv6.dst"])
        src, dst = _addr(f["src"], v), _addr(f["dst"], v)
        if (src, dst) != (ts_src, ts_dst):
            out.append(f"frame {n}: src/dst {src}/{dst} != tshark {ts_src}/{ts_dst}")
        # Ports of the outer IP's own transport header. tshark reassembles IP fragments (ports
        # on the last fragment, none on the first): per-frame headers differ by design there.
        if f["frag"] == 0 and f["proto"] in (6, 17):
            key = "tcp" if f["proto"] == 6 else "udp"
            sp, dp = _first(r[f"{key}.srcport"]), _first(r[f"{key}.dstport"])
            mine = ("" if f["sport"] is None else str(f["sport"]),
                    "" if f["dport"] is None else str(f["dport"]))  # fmt: skip
            if mine != (sp, dp):
                out.append(f"frame {n}: {key} ports {mine} != tshark {(sp, dp)}")
    return out
