"""Cost profile TOML → the engine's cost vector (ns, scaled to the host's clock).

A profile is data: one file per source machine, each entry `base` ns (+ `per_byte` ns/B) with a
`source`. `base = "other"` in [profile] inherits every entry the file does not set. Names are
looked up in replay/model/profiles/ unless they are a path to a .toml file.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from replay.errors import ConfigError
from replay.model.config import idle_states

PROFILE_DIR = Path(__file__).parent / "profiles"
DEFAULT_PROFILE = "e5-1650v4"  # the XDP paper's machine: the only one with whole-path figures

# Engine cost slots: (section, name). The engine indexes C_* below; keep in this order.
COST_KEYS: tuple[tuple[str, str], ...] = (
    ("stage", "driver"),
    ("stage", "gro"),
    ("stage", "gro_merge"),
    ("stage", "netif"),
    ("stage", "ip"),
    ("stage", "route"),
    ("stage", "early_demux"),
    ("stage", "local"),
    ("stage", "udp"),
    ("stage", "tcp"),
    ("stage", "copy"),
    ("stage", "app"),
    ("fixed", "hardirq"),
    ("fixed", "softirq"),
    ("fixed", "net_rx_action"),
    ("fixed", "napi_poll"),
    ("fixed", "refill"),
    ("fixed", "drop"),
    ("fixed", "netfilter_rule"),
    ("fixed", "conntrack"),
    ("fixed", "icmp_reply"),
    ("fixed", "syscall"),
    ("fixed", "consume"),
    ("fixed", "wakeup"),
    ("fixed", "ctx_switch"),
    ("fixed", "tcp_ack"),
    ("latency", "dma"),
    ("latency", "wakeup"),
    ("latency", "ipi"),
    # RPS / backlog / veth, appended so the engine's earlier slots keep their numbers
    ("stage", "backlog"),
    ("fixed", "backlog_poll"),
    ("fixed", "ipi_send"),
    ("fixed", "ipi_irq"),
    ("fixed", "tx"),
    ("fixed", "ip_defrag"),
    ("fixed", "ip_frag_reasm"),
    ("stage", "csum"),
    ("fixed", "tunnel_decap"),
    ("stage", "ipv6_exthdr"),
    # listen sockets and receive-queue collapsing (model/engine.py "Listen sockets", "Pruning")
    ("fixed", "tcp_conn_request"),
    ("fixed", "tcp_child_sock"),
    ("fixed", "accept"),
    ("stage", "tcp_collapse"),
    ("fixed", "busy_loop"),
    ("fixed", "skb_free"),
    ("fixed", "tcp_add_backlog"),
    ("fixed", "route_hint"),
)
COST_INDEX = {f"{s}.{n}": i for i, (s, n) in enumerate(COST_KEYS)}
N_COSTS = len(COST_KEYS)


def _load_raw(name: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    p = Path(name)
    path = p if p.suffix == ".toml" or "/" in name else PROFILE_DIR / f"{name}.toml"
    if not path.exists():
        known = ", ".join(sorted(x.stem for x in PROFILE_DIR.glob("*.toml")))
        raise ConfigError(
            f"costs.profile: no profile {name!r} (known: default, {known}; or a path to a .toml)"
        )
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"{path}: cannot read cost profile ({e})") from None
    prof = data.get("profile", {})
    base = prof.get("base")
    if base:
        if base in seen:
            raise ConfigError(f"{path}: profile inheritance loops through {base!r}")
        # a relative path names a file beside this one, wherever the command runs
        bp = Path(str(base))
        if (bp.suffix == ".toml" or "/" in str(base)) and not bp.is_absolute():
            base = str(path.parent / bp)
        parent = _load_raw(str(base), (*seen, name))
        merged: dict[str, Any] = {k: dict(v) if isinstance(v, dict) else v for k, v in parent.items()}
        for section, body in data.items():
            if section == "profile":
                merged["profile"] = {**parent.get("profile", {}), **body, "base": base}
            elif isinstance(body, dict):
                merged.setdefault(section, {}).update(body)
        data = merged
    data.setdefault("profile", {})["path"] = str(path)
    return data


def load_profile(name: str) -> dict[str, Any]:
    """The profile as a dict: [profile] facts plus every cost entry, each checked for a source."""
    if name == "default":
        name = DEFAULT_PROFILE
    data = _load_raw(name)
    for section, key in COST_KEYS:
        entry = data.get(section, {}).get(key)
        where = f"{data['profile']['path']}: [{section}.{key}]"
        if not isinstance(entry, dict) or "base" not in entry:
            raise ConfigError(f"{where} is missing (every cost needs base and source)")
        if not entry.get("source"):
            raise ConfigError(f"{where} has no source; every number must say where it comes from")
        if not isinstance(entry["base"], int | float) or entry["base"] < 0:
            raise ConfigError(f"{where}.base must be a non-negative number of ns, got {entry['base']!r}")
    idle = data.get("idle")
    if idle is not None:
        where = f"{data['profile']['path']}: [idle]"
        if not idle.get("source"):
            raise ConfigError(f"{where} has no source; every number must say where it comes from")
        idle_states(idle.get("exit-ns"), idle.get("residency-ns"), f"{where} exit-ns",
                    f"{where} residency-ns")
    if not isinstance(data["profile"].get("ghz"), int | float):
        raise ConfigError(
            f"{data['profile']['path']}: [profile] ghz is required (the clock the numbers were measured at)"
        )
    return data


def cost_vectors(profile: Mapping[str, Any], host_ghz: float | None) -> tuple[np.ndarray, np.ndarray]:
    """(base_ns int64[N_COSTS], per_byte_ns float64[N_COSTS]) scaled to the host clock.

    CPU costs scale by profile ghz / host ghz (same microarchitecture assumed); latencies do not.
    """
    scale = 1.0 if not host_ghz else float(profile["profile"]["ghz"]) / float(host_ghz)
    base = np.zeros(N_COSTS, dtype=np.int64)
    per_byte = np.zeros(N_COSTS, dtype=np.float64)
    for i, (section, key) in enumerate(COST_KEYS):
        e = profile[section][key]
        s = 1.0 if section == "latency" else scale
        base[i] = round(float(e["base"]) * s)
        per_byte[i] = float(e.get("per_byte", 0.0)) * s
    return base, per_byte
