"""Config TOML + `--set` overrides → one resolved, validated config dict.

Knob names are the ones people paste from production: sysctl names in [sysctl], ethtool's in
[nic], sysfs file names in [sysfs]. `--set KEY=VALUE` takes a `section.key` path (`nic.rx=1024`,
`app[0].work-ns=5000`, `app.batch=8` for every app) or a sysctl name as `sysctl -w` takes it
(`net.core.netdev_budget=600`). An unknown key, or a value outside what the kernel accepts, is a
ConfigError naming the key, the rule and the value.
"""

from __future__ import annotations

import copy
import hashlib
import ipaddress
import itertools
import json
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from replay.errors import ConfigError
from replay.model.drivers import DRIVERS, parse_speed

SECTIONS = ("host", "nic", "irq", "sysctl", "sysfs", "netfilter", "app", "costs", "tunnel")
_ARRAYS = ("app", "tunnel")  # arrays of tables ([[app]], [[tunnel]])

# Defaults, each from KERNEL.md §2 (the 6.19 source) unless it is a modelling choice said so.
DEFAULTS: dict[str, Any] = {
    "host": {
        "cpus": 4,
        "ghz": "profile",  # the host's clock; costs scale by profile ghz / this ("profile": no scaling)
        "kernel": "6.12",  # selects the version-dependent rules of KERNEL.md §3b
        "hz": 250,  # CONFIG_HZ; Debian builds 250
        "addresses": [],  # empty: inferred from the capture, and said so
        # VIDs of the host's VLAN devices (ip link add link eth0 ... type vlan id N): a tagged
        # frame for one takes __netif_receive_skb_core's second round, any other non-zero VID is
        # PACKET_OTHERHOST and dropped in ip_rcv. "auto": the VIDs of tagged frames to the
        # host's own addresses (model/simulate.py _vlan_rx)
        "vlans": "auto",
        "tick-phase-ns": 0,  # where in the first jiffy replay time 0 falls (time limits use jiffies)
        # exit latency of the idle state an idle CPU sleeps in, paid before it can take an
        # interrupt or run a woken task (cpuidle: /sys/devices/system/cpu/cpu0/cpuidle/state*/
        # latency, in us there); 0 = the CPU polls in C0. It dominates latency at low packet
        # rates. "auto": the cost profile's [idle] exit-ns (0 in the published profiles;
        # replay calibrate measures it on a VM, where waking a halted vCPU costs ~12 us)
        "cstate-exit-ns": "auto",
        # how long a CPU stays in its idle loop before it is in that state: an interrupt or
        # wake-up sooner pays no exit latency (the cpuidle governor picks a state whose target
        # residency fits the idle time it predicts; a polling state first, as haltpoll does).
        # "auto": the profile's [idle] residency-ns (0: every idle period). Several states:
        # both keys as lists, shallowest first (up to 3), e.g. exit [2000, 10000] after
        # residency [2000, 20000]: an idle CPU pays the deepest state its idle time reached
        "cstate-residency-ns": "auto",
        # the secret of udp_ehashfn / inet_ehashfn, which spreads a SO_REUSEPORT group's flows:
        # the kernel draws it at random at first use (net_get_random_once), so which socket a
        # flow lands on differs per boot; set it to replay one particular spread (0..2^32-1)
        "ehash-secret": 0,
        # the ACKs the host sends for received TCP data (delayed ACK, quickack, one per GRO skb of
        # >= 2 MSS) cost CPU on the receive path and count in Tcp OutSegs; false leaves them out
        "tcp-acks": True,
        # SKB_SMALL_HEAD_CACHE_SIZE: small skb heads come from this slab (skbuff.c); it follows
        # MAX_TCP_HEADER, hence LL_MAX_HEADER: 640 with CONFIG_WLAN/HYPERV_NET and tunnels (a
        # distribution kernel), 576 on minimal configs. Sets the truesize of a sender's skb (veth)
        "skb-small-head": 640,
        # the kernel's get_random_u32 stream where a rule draws from it (icmp_global_consume's
        # 0-2 credits per ICMP message, 5.10+): a run repeats with the same seed; change it to
        # see another draw (0..2^63-1)
        "random-seed": 0,
        # prefix length of the IPv6 route back to the senders: icmpv6_xrlim_allow gives wider
        # prefixes more ICMPv6 errors (net.ipv6.icmp.ratelimit >> ((128 - plen) >> 5)); 64: the
        # senders on the host's own /64, 0: reached by the default route
        "icmp6-route-prefix": 64,
    },
    "nic": {
        "driver": "ixgbe",
        "speed": "10G",
        "combined": 4,
        "rx": 512,  # ixgbe IXGBE_DEFAULT_RXD (ixgbe.h:50-60)
        "rx-usecs": 50,  # ITR 20K ints/s (IXGBE_20K_ITR = 50 us)
        "rx-frames": 0,
        "adaptive-rx": False,
        # mlx5 only (ethtool --set-priv-flags rx_cqe_moder): the period starts at the first
        # completion (CQE mode, the ConnectX-5+ default) or at the last interrupt (EQE mode)
        "rx-cqe-moder": True,
        "gro": True,
        # ethtool -K rx on|off ("rx-checksumming"): off, every skb is CHECKSUM_NONE and the stack
        # computes checksums itself (in GRO, tcp_v4_rcv or the UDP recvmsg copy)
        "rx-checksumming": True,
        "rx-flow-hash": "driver",
        "hkey": "microsoft",
        # nic.driver = "veth" only (KERNEL.md §3c): the CPU the sending task is pinned to
        # ("auto": the first CPU no [[app]] uses, as `replay real` picks it) and its name, the
        # perf Command of the receive path that veth runs in the sender's context
        "sender-cpu": "auto",
        "sender": "tcpreplay",
        # veth only: whether an skb may take the peer's GRO NAPI (veth_skb_is_eligible_for_gro):
        # the sending end's TSO features (ethtool -K tso, on by default) make it ineligible
        # unless the peer has rx-udp-gro-forwarding or rx-gro-list on (both off by default)
        "sender-tso": True,
        "rx-udp-gro-forwarding": False,
        # ethtool -K lro: the NIC merges a TCP flow's segments before the ring (ixgbe RSC,
        # mlx5 LRO); rx-gro-hw: NETIF_F_GRO_HW (bnxt TPA, mlx5 SHAMPO). Off here whatever the
        # driver's own default (ixgbe_sw_init enables RSC on 82599 and later; mlx5 leaves LRO
        # off): see docs/model.md "Hardware receive aggregation"
        "large-receive-offload": False,
        "rx-gro-hw": False,
    },
    "irq": {"affinity": "spread"},
    "sysctl": {
        "net.core.netdev_budget": 300,  # hotdata.c:14
        "net.core.netdev_budget_usecs": None,  # None: 2 jiffies (hotdata.c:15-16), resolved below
        "net.core.dev_weight": 64,  # hotdata.c:22
        "net.core.netdev_max_backlog": 1000,  # hotdata.c:19
        "net.core.gro_normal_batch": 8,  # hotdata.c:12
        "net.core.rmem_default": 212992,  # SK_RMEM_DEFAULT on x86_64 (sock.c:289)
        "net.core.rmem_max": None,  # None: 4 MiB from 6.18, 212992 before (KERNEL.md §3b)
        # TCP buffers (net/ipv4/tcp.c tcp_init, tcp_init_sock): min, default (a new socket's
        # sk_rcvbuf), max (autotuning's cap); "4096 131072 6291456" as sysctl prints it, or a
        # list. None: tcp_rmem[1] 131072 from 4.20 (a337531b942b "tcp: up initial rmem to 128KB
        # and SYN rwin to around 64KB"), 87380 before; tcp_rmem[2] min(32 MiB, memory / 128)
        # from 6.16 (572be9bf9d0d "tcp: increase tcp_rmem[2] to 32 MB"), min(6 MiB, memory /
        # 128) before (b49960a05e32, 2012) -- the caps of a host with 4 GiB or more
        "net.ipv4.tcp_rmem": None,
        # 1: receive-buffer autotuning (tcp_rcv_space_adjust) for sockets without SO_RCVBUF
        "net.ipv4.tcp_moderate_rcvbuf": 1,
        # 6.19+ (Dumazet, "tcp: add net.ipv4.tcp_rcvbuf_low_rtt", Nov 2025 [UNSURE: the release]):
        # below this receiver RTT (us) tcp_rcvbuf_grow grows by rtt / low_rtt; None: 1000 from
        # 6.19, not read before
        "net.ipv4.tcp_rcvbuf_low_rtt": None,
        # per-CPU deferred-free list length (skb_attempt_defer_free, skbuff.c): None: 128 from
        # 6.18, 64 before (hotdata.c; KERNEL.md §3b); the sysctl exists from 5.19 (the per-CPU
        # lists came with it) and is ignored before
        "net.core.skb_defer_max": None,
        "net.core.rps_sock_flow_entries": 0,
        "net.core.flow_limit_cpu_bitmap": "",
        # IP reassembly (net/ipv4/ip_fragment.c ipv4_frags_init_net, net/ipv6/reassembly.c):
        # 4 MiB of fragment truesize, a 30 s (IPv6: 60 s) timer per datagram, 64 fragments from
        # the same source between two of one datagram; low_thresh is unused since 4.17
        # (Documentation/networking/ip-sysctl.rst) but accepted, as sysctl -a prints it
        "net.ipv4.ipfrag_high_thresh": 4194304,
        "net.ipv4.ipfrag_low_thresh": 3145728,
        "net.ipv4.ipfrag_time": 30,  # IP_FRAG_TIME (30 * HZ), seconds as the sysctl shows it
        "net.ipv4.ipfrag_max_dist": 64,
        "net.ipv6.ip6frag_high_thresh": 4194304,
        "net.ipv6.ip6frag_low_thresh": 3145728,
        "net.ipv6.ip6frag_time": 60,  # IPV6_FRAG_TIMEOUT (60 * HZ)
        "net.core.flow_limit_table_len": 4096,  # netdev_flow_limit_table_len (dev.c:5271)
        # listen sockets: listen()'s backlog is capped at somaxconn (__sys_listen); SOMAXCONN is
        # 4096 since 5.4 (19f92a030ca6 "net: increase SOMAXCONN to 4096"), 128 before; None
        # resolves by host.kernel
        "net.core.somaxconn": None,
        # tcp_sk_init: max(128, established-hash buckets / 128): 1024 for the 131072-bucket hash
        # of a 16 GiB host (dmesg "TCP established hash table entries"); only read with
        # tcp_syncookies = 0 (tcp_conn_request keeps its last quarter for proven peers)
        "net.ipv4.tcp_max_syn_backlog": 1024,
        "net.ipv4.tcp_syncookies": 1,  # sysctl_tcp_syncookies default (tcp_ipv4.c tcp_sk_init)
        "net.ipv4.tcp_synack_retries": 5,  # TCP_SYNACK_RETRIES (include/net/tcp.h)
        # 1: a handshake's ACK that meets a full accept queue resets the connection instead of
        # leaving the request for the ACK's retransmission (tcp_check_req)
        "net.ipv4.tcp_abort_on_overflow": 0,
        # sysctl_net_busy_read (net/core/sysctl_net_core.c): a new socket's sk_ll_usec
        # (sock_init_data); 0 = no busy polling in recvmsg (KERNEL.md §2; 50 us recommended)
        "net.core.busy_read": 0,
        # sysctl_net_busy_poll: how long poll/select/epoll_wait busy-poll (ep_busy_loop's
        # busy_loop_timeout); 0 = off. Applies to [[app]]s with wait = "epoll"
        "net.core.busy_poll": 0,
        # ICMP output limits (net/ipv4/icmp.c icmp_sk_init, net/ipv6/icmp.c icmpv6_sysctl_init):
        # ms between ICMP messages to one destination (1 * HZ; 0: no per-destination limit),
        # the ICMP types limited (0x1818: dest unreachable, source quench, time exceeded,
        # parameter problem; echo reply, bit 0, is not), the host-wide token bucket (None: 1000
        # per second with a burst of 50 up to 6.19; 10000 and 10000 in the tree after it, taken
        # as 7.0 [UNSURE: the release of that change]) and the ICMPv6 per-destination ms
        "net.ipv4.icmp_ratelimit": 1000,
        "net.ipv4.icmp_ratemask": 6168,
        "net.ipv4.icmp_msgs_per_sec": None,
        "net.ipv4.icmp_msgs_burst": None,
        "net.ipv6.icmp.ratelimit": 1000,
    },
    "sysfs": {
        "gro_flush_timeout": 0,
        "napi_defer_hard_irqs": 0,
        "threaded": False,
        "rps_cpus": [],
        "rps_flow_cnt": 0,
    },
    # prerouting-drop: the PREROUTING chain ends in DROP (iptables -t raw -A PREROUTING -j DROP),
    # the XDP paper's "Linux" baseline
    "netfilter": {"prerouting": 0, "input": 0, "conntrack": False, "prerouting-drop": False},
    "app": [],
    "costs": {"profile": "default"},
    # [[tunnel]]: tunnel endpoints this host decapsulates (ip link add ... type vxlan|geneve|gre)
    "tunnel": [],
}

# The UDP ports the kernel's drivers listen on by default: IANA_VXLAN_UDP_PORT 4789
# (drivers/net/vxlan), GENEVE_UDP_PORT 6081 (drivers/net/geneve.c); GRE is IP protocol 47.
TUNNEL_TYPES = {"vxlan": 4789, "geneve": 6081, "gre": 0}
TUNNEL_DEFAULTS: dict[str, Any] = {"type": None, "port": None}

APP_DEFAULTS: dict[str, Any] = {
    "name": None,  # perf Command of the app; default "app<i>"
    "match": None,
    "cpu": 0,
    "threads": 1,
    # sk_rcvbuf (2 x SO_RCVBUF); None: a TCP socket starts at net.ipv4.tcp_rmem[1] and
    # autotuning grows it (tcp_init_sock, tcp_rcv_space_adjust), any other at rmem_default
    "rcvbuf": None,
    # SOCK_RCVBUF_LOCK (set by SO_RCVBUF): the kernel never resizes the buffer (no autotuning, no
    # tcp_clamp_window). None: true when rcvbuf is given, false when it is not
    "rcvbuf-lock": None,
    "work-ns": 0,
    "batch": 1,
    "reuseport": False,
    # connect()ed UDP socket: udp_v4_early_demux finds it and skips the FIB; a connected member of
    # a reuseport group is passed over by the group's hash
    "connected": False,
    # setsockopt(UDP_GRO): udp_gro_receive_segment aggregates the socket's datagrams in GRO and
    # recvmsg returns the whole train (work-ns is then per train)
    "udp-gro": False,
    # a TCP listener (listen()): connections whose SYN is in the trace go through its SYN queue
    # and accept queue; the app accept()s each one before reading (accept-ns of its own work)
    "listen": False,
    "backlog": None,  # listen()'s backlog; None: SOMAXCONN (capped at net.core.somaxconn anyway)
    "accept-ns": 0,
    # setsockopt(SO_BUSY_POLL) in us: sk_ll_usec, the time recvmsg busy-polls the socket's NAPI
    # before it sleeps; None: net.core.busy_read (include/net/busy_poll.h, net/core/sock.c)
    "busy-poll": None,
    # setsockopt(SO_BUSY_POLL_BUDGET, 5.11+): packets per napi->poll of the busy loop
    # (sk_busy_poll_budget; 0: BUSY_POLL_BUDGET = 8). With wait = "epoll" it is the epoll
    # instance's busy_poll_budget (ioctl EPIOCSPARAMS, 6.9+)
    "busy-poll-budget": 0,
    # setsockopt(SO_PREFER_BUSY_POLL, 5.11+; CAP_NET_ADMIN): with sysfs napi_defer_hard_irqs and
    # gro_flush_timeout set, the softirq leaves a busy-polled NAPI to the poller and the IRQ
    # stays masked after the loop (net/core/dev.c, "net: Introduce preferred busy-polling").
    # With wait = "epoll" it is the epoll instance's prefer_busy_poll (EPIOCSPARAMS, 6.9+)
    "prefer-busy-poll": False,
    # how the reader waits for data: "recvmsg" (a blocking recvmsg; busy polling per busy-poll /
    # net.core.busy_read) or "epoll" (epoll_wait on the socket, then recvmsg; busy polling per
    # net.core.busy_poll, ep_busy_loop)
    "wait": "recvmsg",
}

# When a config has no [[app]], replay still needs a consumer for the traffic it carries:
# runner.infer_apps() adds one per destination port found, and says so.

_SYSCTL_RE = re.compile(r"^(net|kernel|vm)\.[a-z0-9_.]+$")
_APP_KEY_RE = re.compile(r"^app(?:\[(\d+)\])?\.([a-z0-9_-]+)$")
_TUNNEL_KEY_RE = re.compile(r"^tunnel\[(\d+)\]\.([a-z0-9_-]+)$")


def kernel_version(cfg: Mapping[str, Any]) -> tuple[int, int]:
    major, minor = str(cfg["host"]["kernel"]).split(".")[:2]
    return int(major), int(minor)


def default_config() -> dict[str, Any]:
    return copy.deepcopy(DEFAULTS)


def _parse_value(text: str) -> Any:
    """A --set value as TOML would read it (`600`, `true`, `[1, 2]`, `"x"`), else a bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _set_key(cfg: dict[str, Any], key: str, value: Any) -> None:
    if _SYSCTL_RE.match(key):
        cfg["sysctl"][key] = value
        return
    m = _TUNNEL_KEY_RE.match(key)
    if m:
        i, field = int(m.group(1)), m.group(2)
        if field not in TUNNEL_DEFAULTS:
            raise ConfigError(f"{key}: unknown [[tunnel]] key {field!r}; known: type, port")
        while len(cfg["tunnel"]) <= i:
            cfg["tunnel"].append({})
        cfg["tunnel"][i][field] = value
        return
    m = _APP_KEY_RE.match(key)
    if m:
        idx, field = m.group(1), m.group(2)
        if field not in APP_DEFAULTS:
            raise ConfigError(f"{key}: unknown [[app]] key {field!r}; known: {', '.join(APP_DEFAULTS)}")
        apps = cfg["app"]
        if idx is None:
            if not apps:
                apps.append({})
            for a in apps:
                a[field] = value
        else:
            i = int(idx)
            while len(apps) <= i:
                apps.append({})
            apps[i][field] = value
        return
    section, _, name = key.partition(".")
    if section == "sysctl" and name:
        cfg["sysctl"][name] = value
        return
    if section not in SECTIONS or not name or section in _ARRAYS:
        raise ConfigError(
            f"{key}: unknown key; use section.key ({', '.join(s for s in SECTIONS if s != 'app')}),"
            " app[N].key, or a sysctl name like net.core.netdev_budget"
        )
    if name not in DEFAULTS[section]:
        raise ConfigError(
            f"{key}: unknown key in [{section}]; known: {', '.join(DEFAULTS[section])}"
        )
    cfg[section][name] = value


def apply_overrides(cfg: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Return a validated copy of `cfg` with `{key: value}` applied (pipeline matrices use this)."""
    out = copy.deepcopy(dict(cfg))
    for k, v in overrides.items():
        _set_key(out, k, v)
    return validate(out)


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, eq, text = item.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set nic.rx=1024")
        out[key.strip()] = _parse_value(text.strip())
    return out


def load_file(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such config file") from None
    except OSError as e:
        raise ConfigError(f"{p}: cannot read config ({e.strerror})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p}: not valid TOML ({e})") from None
    return data


def merge_file(cfg: dict[str, Any], data: Mapping[str, Any], origin: str) -> dict[str, Any]:
    out = copy.deepcopy(cfg)
    for section, body in data.items():
        if section not in SECTIONS:
            raise ConfigError(f"{origin}: unknown section [{section}]; known: {', '.join(SECTIONS)}")
        if section in _ARRAYS:
            if not isinstance(body, list):
                raise ConfigError(f"{origin}: {section} must be an array of tables ([[{section}]])")
            out[section] = [dict(a) for a in body]
            continue
        if not isinstance(body, dict):
            raise ConfigError(f"{origin}: [{section}] must be a table")
        for k, v in body.items():
            if section == "sysctl":
                out["sysctl"][k] = v
            elif k not in DEFAULTS[section]:
                raise ConfigError(
                    f"{origin}: unknown key {section}.{k}; known: {', '.join(DEFAULTS[section])}"
                )
            else:
                out[section][k] = v
    return out


def resolve_config(
    config_path: str | Path | None = None, overrides: Iterable[str] | Mapping[str, Any] = ()
) -> dict[str, Any]:
    """Defaults + the -c file + --set overrides, validated and with derived defaults filled in."""
    cfg = default_config()
    if config_path is not None:
        cfg = merge_file(cfg, load_file(config_path), str(config_path))
    ov = dict(overrides) if isinstance(overrides, Mapping) else parse_overrides(overrides)
    for k, v in ov.items():
        _set_key(cfg, k, v)
    return validate(cfg)


def config_hash(cfg: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(cfg, sort_keys=True, default=str).encode()).hexdigest()


# ---------------------------------------------------------------------------------- validation


def _int(cfg: dict[str, Any], section: str, key: str, lo: int, hi: int, rule: str) -> int:
    v = cfg[section][key]
    name = key if section == "sysctl" else f"{section}.{key}"
    if isinstance(v, bool) or not isinstance(v, int):
        raise ConfigError(f"{name} must be an integer ({rule}), got {v!r}")
    if not lo <= v <= hi:
        raise ConfigError(f"{name} must be {rule}, got {v}")
    return v


MAX_IDLE_STATES = 3  # the engine's slots: P_CEXIT/P_CRES, P_CEXIT2/P_CRES2, P_CEXIT3/P_CRES3


def idle_states(exit_ns: Any, residency_ns: Any, exit_name: str = "exit-ns",
                residency_name: str = "residency-ns") -> list[tuple[int, int]]:
    """(exit latency, target residency) per idle state, shallowest first, from two ints (one
    state) or two lists of the same length (up to MAX_IDLE_STATES), as cpuidle's
    /sys/devices/system/cpu/cpuN/cpuidle/stateK/{latency,residency} list a CPU's states
    (there in us): each deeper state needs a longer residency."""
    one = not isinstance(exit_ns, list) and not isinstance(residency_ns, list)
    xs = [exit_ns] if one else exit_ns
    rs = [residency_ns] if one else residency_ns
    rule = "ns between 0 and 1 s"
    if not isinstance(xs, list) or not isinstance(rs, list) or len(xs) != len(rs) \
            or not 1 <= len(xs) <= MAX_IDLE_STATES:
        raise ConfigError(f"{exit_name} and {residency_name} must be two integers or two lists of "
                          f"1 to {MAX_IDLE_STATES} integers of the same length (one per idle "
                          f"state), got {exit_ns!r} and {residency_ns!r}")
    for name, vs in ((exit_name, xs), (residency_name, rs)):
        for v in vs:
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 10**9:
                raise ConfigError(f"{name} must be {rule} (or a list of them), got {v!r}")
    if any(b <= a for a, b in itertools.pairwise(rs)):
        raise ConfigError(f"{residency_name} must increase from one idle state to the next "
                          f"(a deeper state needs a longer residency), got {rs}")
    return list(zip(xs, rs, strict=True))


def _bool(cfg: dict[str, Any], section: str, key: str) -> bool:
    v = cfg[section][key]
    if not isinstance(v, bool):
        raise ConfigError(f"{section}.{key} must be true or false, got {v!r}")
    return v


def tcp_rmem(cfg: Mapping[str, Any]) -> list[int]:
    """A resolved config's net.ipv4.tcp_rmem as [min, default, max]."""
    return [int(x) for x in str(cfg["sysctl"]["net.ipv4.tcp_rmem"]).split()]


def _tcp_rmem(v: Any, kv: tuple[int, int]) -> str:
    """net.ipv4.tcp_rmem resolved to the text sysctl prints and `sysctl -w` takes ("4096 131072
    6291456"), from that text or a list of three ints; None: the kernel's default (DEFAULTS).
    Each must be 1..INT_MAX (proc_dointvec_minmax, extra1 = SYSCTL_ONE)."""
    if v is None:
        v = [4096, 131072 if kv >= (4, 20) else 87380, 33554432 if kv >= (6, 16) else 6291456]
    parts = v.split() if isinstance(v, str) else v
    try:
        vals = [int(x) for x in parts] if isinstance(parts, list) else []
    except (TypeError, ValueError):
        vals = []
    if len(vals) != 3 or any(isinstance(x, bool) or not 1 <= x <= 2**31 - 1 for x in vals):
        raise ConfigError(
            f"net.ipv4.tcp_rmem must be three integers between 1 and INT_MAX (min default max, "
            f"e.g. \"4096 131072 6291456\"), got {v!r}")
    return " ".join(str(x) for x in vals)


def _is_hex_mask(text: str) -> bool:
    """Whether a CPU set is written as the kernel's hex mask rather than a cpulist.

    rps_cpus and flow_limit_cpu_bitmap are masks to the kernel (bitmap_parse, cpumask_parse)
    and `cat`/`sysctl` print them with "%*pb": zero-padded hex, comma-separated 32-bit groups on
    hosts of more than 32 CPUs ("00000000,0000000f"). The config's documented form is a cpulist
    ("0-3,6"), so a bare decimal number ("1", "2") stays a cpulist; a "0x" prefix, a hex letter,
    a leading zero ("02", "00000002") or 8-digit comma groups mark a mask."""
    if re.fullmatch(r"0[xX][0-9a-fA-F]+", text):
        return True
    if re.fullmatch(r"[0-9a-fA-F]{8}(,[0-9a-fA-F]{8})+", text):
        return True
    if not re.fullmatch(r"[0-9a-fA-F]+", text):
        return False
    return not re.fullmatch(r"\d+", text) or (len(text) > 1 and text[0] == "0")


def parse_cpu_list(text: str, ncpus: int, key: str) -> list[int]:
    """A cpulist as sysfs writes it ("0-3,6"), or a hex mask as rps_cpus prints it ("f",
    "00000002"; see _is_hex_mask)."""
    text = str(text).strip()
    cpus: set[int] = set()
    if not text:
        return []
    if _is_hex_mask(text):
        mask = int(text.replace(",", ""), 16)
        cpus = {i for i in range(mask.bit_length()) if mask >> i & 1}
    else:
        for part in text.split(","):
            m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+))?\s*", part)
            if not m:
                raise ConfigError(f"{key}: {text!r} is not a CPU list like '0-3,6'")
            a = int(m.group(1))
            b = int(m.group(2)) if m.group(2) else a
            if b < a:
                raise ConfigError(f"{key}: range {part.strip()!r} runs backwards")
            cpus.update(range(a, b + 1))
    bad = [c for c in cpus if c >= ncpus]
    if bad:
        raise ConfigError(f"{key}: CPU {min(bad)} does not exist (host.cpus = {ncpus})")
    return sorted(cpus)


def _check_address(a: Any) -> str:
    s = str(a).strip()
    if re.fullmatch(r"([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}", s):
        return s.lower().replace("-", ":")
    try:
        return str(ipaddress.ip_address(s))
    except ValueError:
        raise ConfigError(
            f"host.addresses: {s!r} is neither an IP address nor a MAC like 02:00:00:00:00:01"
        ) from None


def validate(cfg: dict[str, Any]) -> dict[str, Any]:
    """Check every value against the kernel's rule; fill derived defaults. Returns cfg."""
    h = cfg["host"]
    ncpus = _int(cfg, "host", "cpus", 1, 4096, "between 1 and 4096")
    if h["ghz"] != "profile":
        g = h["ghz"]
        if not isinstance(g, int | float) or isinstance(g, bool) or not 0.1 <= g <= 10:
            raise ConfigError(f"host.ghz must be \"profile\" or a clock between 0.1 and 10 GHz, got {g!r}")
        h["ghz"] = float(g)
    if not re.fullmatch(r"\d+\.\d+", str(h["kernel"])):
        raise ConfigError(f"host.kernel must be a version like \"6.12\", got {h['kernel']!r}")
    h["kernel"] = str(h["kernel"])
    if kernel_version(cfg) < (4, 9):
        raise ConfigError(f"host.kernel must be 4.9 or newer (the rules modelled), got {h['kernel']}")
    hz = _int(cfg, "host", "hz", 100, 1000, "one of 100, 250, 300, 1000 (CONFIG_HZ)")
    if hz not in (100, 250, 300, 1000):
        raise ConfigError(f"host.hz must be one of 100, 250, 300, 1000 (CONFIG_HZ), got {hz}")
    tick = 1_000_000_000 // hz
    _int(cfg, "host", "tick-phase-ns", 0, tick - 1, f"between 0 and one jiffy ({tick - 1} ns)")
    ex, res = h["cstate-exit-ns"], h["cstate-residency-ns"]
    if (ex == "auto") != (res == "auto") and isinstance(ex if res == "auto" else res, list):
        raise ConfigError("host.cstate-exit-ns and host.cstate-residency-ns: a list of idle "
                          "states needs both as lists of the same length")
    if ex != "auto" and res != "auto":
        idle_states(ex, res, "host.cstate-exit-ns", "host.cstate-residency-ns")
    else:
        for key in ("cstate-exit-ns", "cstate-residency-ns"):
            if cfg["host"][key] != "auto":
                _int(cfg, "host", key, 0, 10**9, '"auto" or ns between 0 and 1 s')
    _int(cfg, "host", "ehash-secret", 0, 2**32 - 1, "a u32 between 0 and 4294967295")
    _bool(cfg, "host", "tcp-acks")
    _int(cfg, "host", "skb-small-head", 384, 4096, "bytes between 384 and 4096")
    _int(cfg, "host", "random-seed", 0, 2**63 - 1, "an integer between 0 and 2^63-1")
    _int(cfg, "host", "icmp6-route-prefix", 0, 128, "a prefix length between 0 and 128")
    if not isinstance(h["addresses"], list):
        raise ConfigError("host.addresses must be a list of IP or MAC addresses")
    h["addresses"] = [_check_address(a) for a in h["addresses"]]
    v = h["vlans"]
    # vlan_check_real_dev / vlan_newlink: a VID below VLAN_VID_MASK (4095)
    if v != "auto" and not (isinstance(v, list) and all(
            isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= 4094 for x in v)):
        raise ConfigError(f"host.vlans must be \"auto\" or a list of VLAN ids 0..4094, got {v!r}")

    n = cfg["nic"]
    drv = DRIVERS.get(str(n["driver"]))
    if drv is None:
        raise ConfigError(f"nic.driver must be one of {', '.join(DRIVERS)}, got {n['driver']!r}")
    try:
        parse_speed(n["speed"])
    except ValueError as e:
        raise ConfigError(f"nic.speed: {e}") from None
    _int(cfg, "nic", "combined", 1, drv.max_queues, f"between 1 and {drv.max_queues} for {drv.name}")
    rx = _int(cfg, "nic", "rx", drv.ring_min, drv.ring_max,
              f"between {drv.ring_min} and {drv.ring_max} for {drv.name} (ethtool -G)")
    n["rx"] = drv.round_ring(rx)
    _int(cfg, "nic", "rx-usecs", 0, drv.max_usecs, f"between 0 and {drv.max_usecs} for {drv.name}")
    _int(cfg, "nic", "rx-frames", 0, 65535, "between 0 and 65535")
    if n["rx-frames"] > 1 and drv.name in ("ixgbe", "i40e"):
        # their ethtool_ops.supported_coalesce_params has no ETHTOOL_COALESCE_RX_MAX_FRAMES, so
        # the ethtool core refuses it (-EOPNOTSUPP): Intel's ITR is a minimum gap (rx-usecs).
        # 0 and 1 (an interrupt per frame, the generic "no coalescing" pair with rx-usecs 0)
        # change nothing and stay accepted; a count that would batch frames would be ignored.
        raise ConfigError(
            f"nic.rx-frames: {drv.name} has no frame-count moderation (ethtool -C rx-frames is "
            f"refused as unsupported), got {n['rx-frames']}; set it 0 and use nic.rx-usecs"
        )
    _bool(cfg, "nic", "adaptive-rx")
    if n["adaptive-rx"] and drv.name not in ("ixgbe", "mlx5"):
        raise ConfigError(
            f"nic.adaptive-rx: ixgbe's dynamic ITR and mlx5's net_dim are modelled, not "
            f"{drv.name}'s algorithm; set it false (the model then uses the fixed rx-usecs/rx-frames)"
        )
    _bool(cfg, "nic", "rx-cqe-moder")
    if not n["rx-cqe-moder"] and drv.name != "mlx5":
        raise ConfigError(f"nic.rx-cqe-moder is an mlx5 private flag; nic.driver is {drv.name}")
    _bool(cfg, "nic", "gro")
    _bool(cfg, "nic", "rx-checksumming")
    _bool(cfg, "nic", "sender-tso")
    _bool(cfg, "nic", "rx-udp-gro-forwarding")
    _bool(cfg, "nic", "large-receive-offload")
    _bool(cfg, "nic", "rx-gro-hw")
    if n["large-receive-offload"] and not drv.lro:
        raise ConfigError(
            f"nic.large-receive-offload: {drv.name} has no LRO (ethtool -k shows "
            "large-receive-offload: off [fixed]); ixgbe (RSC) and mlx5 offer it")
    if n["rx-gro-hw"]:
        if drv.name != "mlx5":
            raise ConfigError(
                f"nic.rx-gro-hw: {drv.name}: it has no NETIF_F_GRO_HW (rx-gro-hw: off [fixed]); "
                "mlx5 offers it (SHAMPO), ixgbe and mlx5 offer nic.large-receive-offload")
        if n["large-receive-offload"]:
            raise ConfigError(
                "nic.rx-gro-hw: mlx5 merges packets one way at a time (params->packet_merge.type "
                "is LRO or SHAMPO); set nic.large-receive-offload = false")
        if not n["gro"]:
            raise ConfigError(
                "nic.rx-gro-hw needs nic.gro = true (netdev_fix_features drops NETIF_F_GRO_HW "
                "without NETIF_F_GRO)")
    sc = n["sender-cpu"]
    if sc != "auto" and (isinstance(sc, bool) or not isinstance(sc, int) or not 0 <= sc < ncpus):
        raise ConfigError(
            f"nic.sender-cpu must be \"auto\" or a CPU between 0 and {ncpus - 1}, got {sc!r}")
    if not isinstance(n["sender"], str) or not 0 < len(n["sender"]) <= 15:
        raise ConfigError(
            f"nic.sender must be a task name of 1-15 characters (TASK_COMM_LEN), got {n['sender']!r}")
    if n["rx-flow-hash"] not in ("l3", "l4", "driver"):
        raise ConfigError(f"nic.rx-flow-hash must be l3, l4 or driver, got {n['rx-flow-hash']!r}")
    hk = str(n["hkey"])
    if hk not in ("microsoft", "random"):
        hexs = hk.replace(":", "")
        if not re.fullmatch(r"[0-9a-fA-F]+", hexs) or len(hexs) not in (80, 104):
            raise ConfigError(
                f"nic.hkey must be microsoft, random, or a 40- or 52-byte hex key, got {hk!r}"
            )

    aff = cfg["irq"]["affinity"]
    if aff != "spread":
        if not isinstance(aff, list) or len(aff) != n["combined"]:
            raise ConfigError(
                f"irq.affinity must be \"spread\" or one CPU per queue ({n['combined']}), got {aff!r}"
            )
        for c in aff:
            if isinstance(c, bool) or not isinstance(c, int) or not 0 <= c < ncpus:
                raise ConfigError(f"irq.affinity: CPU {c!r} does not exist (host.cpus = {ncpus})")

    s = cfg["sysctl"]
    known = set(DEFAULTS["sysctl"])
    for k in list(s):
        if k not in known:
            raise ConfigError(f"{k}: not a sysctl this model knows; known: {', '.join(sorted(known))}")
    if s["net.core.netdev_budget_usecs"] is None:
        s["net.core.netdev_budget_usecs"] = 2 * 1_000_000 // hz  # hotdata.c:15-16
    if s["net.core.rmem_max"] is None:
        s["net.core.rmem_max"] = 4194304 if kernel_version(cfg) >= (6, 18) else 212992
    if s["net.core.skb_defer_max"] is None:
        s["net.core.skb_defer_max"] = 128 if kernel_version(cfg) >= (6, 18) else 64
    # sysctl_net_core.c: proc_dointvec_minmax, extra1 = SYSCTL_ZERO (0 disables the deferral)
    _int(cfg, "sysctl", "net.core.skb_defer_max", 0, 2**31 - 1, "non-negative (0 disables deferred freeing)")
    _int(cfg, "sysctl", "net.core.netdev_budget", 1, 2**31 - 1, "at least 1")
    # sysctl_net_core.c:38: min_netdev_budget_usecs = 2 * USEC_PER_SEC / HZ
    min_us = 2 * 1_000_000 // hz
    _int(cfg, "sysctl", "net.core.netdev_budget_usecs", min_us, 2**31 - 1,
         f"at least 2 jiffies ({min_us} us at HZ={hz}), as sysctl_net_core.c refuses less")
    _int(cfg, "sysctl", "net.core.dev_weight", 1, 2**31 - 1, "at least 1 (proc_do_dev_weight)")
    _int(cfg, "sysctl", "net.core.netdev_max_backlog", 0, 2**31 - 1, "non-negative")
    _int(cfg, "sysctl", "net.core.gro_normal_batch", 1, 2**31 - 1, "at least 1 (SYSCTL_ONE)")
    # SOCK_MIN_RCVBUF = 2 * SKB_TRUESIZE(256) = 2304 on x86_64 (sock.h)
    _int(cfg, "sysctl", "net.core.rmem_default", 2304, 2**31 - 1, "at least 2304 (SOCK_MIN_RCVBUF)")
    _int(cfg, "sysctl", "net.core.rmem_max", 2304, 2**31 - 1, "at least 2304 (SOCK_MIN_RCVBUF)")
    _int(cfg, "sysctl", "net.core.rps_sock_flow_entries", 0, 2**29, "between 0 and 2^29")
    s["net.ipv4.tcp_rmem"] = _tcp_rmem(s["net.ipv4.tcp_rmem"], kernel_version(cfg))
    # proc_dou8vec_minmax without bounds: any u8, non-zero enables
    _int(cfg, "sysctl", "net.ipv4.tcp_moderate_rcvbuf", 0, 255, "between 0 and 255 (0: off)")
    if s["net.ipv4.tcp_rcvbuf_low_rtt"] is None:
        s["net.ipv4.tcp_rcvbuf_low_rtt"] = 1000 if kernel_version(cfg) >= (6, 19) else 0
    # proc_dointvec_minmax, extra1 = SYSCTL_ZERO, extra2 = SYSCTL_INT_MAX
    _int(cfg, "sysctl", "net.ipv4.tcp_rcvbuf_low_rtt", 0, 2**31 - 1, "us between 0 and INT_MAX")
    parse_cpu_list(s["net.core.flow_limit_cpu_bitmap"], ncpus, "net.core.flow_limit_cpu_bitmap")
    for v, pre in (("ipv4", "ip"), ("ipv6", "ip6")):
        low, high = f"net.{v}.{pre}frag_low_thresh", f"net.{v}.{pre}frag_high_thresh"
        _int(cfg, "sysctl", high, 0, 2**62, "bytes, non-negative")
        _int(cfg, "sysctl", low, 0, int(s[high]),
             f"bytes, at most {high} (proc_doulongvec_minmax extra2)")
        # proc_dointvec_jiffies: seconds up to INT_MAX / HZ
        _int(cfg, "sysctl", f"net.{v}.{pre}frag_time", 0, (2**31 - 1) // hz, "seconds, non-negative")
    _int(cfg, "sysctl", "net.ipv4.ipfrag_max_dist", 0, 2**31 - 1, "non-negative (dist_min 0)")
    # flow_limit_table_len_sysctl accepts any positive int; the table takes ilog2 of it
    _int(cfg, "sysctl", "net.core.flow_limit_table_len", 1, 2**30, "between 1 and 2^30")
    if s["net.core.somaxconn"] is None:
        s["net.core.somaxconn"] = 4096 if kernel_version(cfg) >= (5, 4) else 128
    _int(cfg, "sysctl", "net.core.somaxconn", 0, 2**31 - 1, "between 0 and INT_MAX")
    _int(cfg, "sysctl", "net.ipv4.tcp_max_syn_backlog", 0, 2**31 - 1, "between 0 and INT_MAX")
    _int(cfg, "sysctl", "net.ipv4.tcp_syncookies", 0, 2, "0, 1 or 2 (proc_dou8vec_minmax 0..2)")
    _int(cfg, "sysctl", "net.ipv4.tcp_synack_retries", 0, 127, "between 0 and 127 (MAX_TCP_SYNCNT)")
    _int(cfg, "sysctl", "net.ipv4.tcp_abort_on_overflow", 0, 1, "0 or 1")
    # proc_dointvec_minmax, extra1 = SYSCTL_ZERO
    _int(cfg, "sysctl", "net.core.busy_read", 0, 2**31 - 1, "us between 0 and 2^31-1")
    _int(cfg, "sysctl", "net.core.busy_poll", 0, 2**31 - 1, "us between 0 and 2^31-1")
    new_icmp = kernel_version(cfg) >= (7, 0)
    if s["net.ipv4.icmp_msgs_per_sec"] is None:
        s["net.ipv4.icmp_msgs_per_sec"] = 10000 if new_icmp else 1000
    if s["net.ipv4.icmp_msgs_burst"] is None:
        s["net.ipv4.icmp_msgs_burst"] = 10000 if new_icmp else 50
    # sysctl_net_ipv4.c: icmp_ratelimit / icmpv6 ratelimit are proc_dointvec_ms_jiffies (any
    # int, negative taken as 0 here as it disables the limit); icmp_msgs_per_sec and _burst
    # proc_dointvec_minmax with extra1 = SYSCTL_ZERO
    _int(cfg, "sysctl", "net.ipv4.icmp_ratelimit", 0, 2**31 - 1, "ms, non-negative (0: no limit)")
    _int(cfg, "sysctl", "net.ipv6.icmp.ratelimit", 0, 2**31 - 1, "ms, non-negative (0: no limit)")
    _int(cfg, "sysctl", "net.ipv4.icmp_ratemask", 0, 2**31 - 1,
         "a non-negative bit mask of ICMP types (6168 = 0x1818)")
    _int(cfg, "sysctl", "net.ipv4.icmp_msgs_per_sec", 0, 2**31 - 1, "non-negative")
    _int(cfg, "sysctl", "net.ipv4.icmp_msgs_burst", 0, 2**31 - 1, "non-negative")

    f = cfg["sysfs"]
    _int(cfg, "sysfs", "gro_flush_timeout", 0, 2**32 - 1, "ns between 0 and 2^32-1")
    _int(cfg, "sysfs", "napi_defer_hard_irqs", 0, 2**31 - 1, "between 0 and 2^31-1 (S32_MAX)")
    _bool(cfg, "sysfs", "threaded")
    if not isinstance(f["rps_cpus"], list):
        raise ConfigError("sysfs.rps_cpus must be a list, one CPU list per RX queue, e.g. [\"0-3\"]")
    if f["rps_cpus"] and len(f["rps_cpus"]) not in (1, n["combined"]):
        raise ConfigError(
            f"sysfs.rps_cpus must have one entry per RX queue ({n['combined']}) or one for all,"
            f" got {len(f['rps_cpus'])}"
        )
    for i, spec in enumerate(f["rps_cpus"]):
        parse_cpu_list(spec, ncpus, f"sysfs.rps_cpus[{i}]")
    _int(cfg, "sysfs", "rps_flow_cnt", 0, 2**29, "between 0 and 2^29")

    _int(cfg, "netfilter", "prerouting", 0, 100000, "a rule count between 0 and 100000")
    _int(cfg, "netfilter", "input", 0, 100000, "a rule count between 0 and 100000")
    _bool(cfg, "netfilter", "conntrack")
    _bool(cfg, "netfilter", "prerouting-drop")

    from replay.model.match import parse_match  # the [[app]] match grammar

    apps = []
    for i, a in enumerate(cfg["app"]):
        unknown = set(a) - set(APP_DEFAULTS)
        if unknown:
            raise ConfigError(
                f"app[{i}]: unknown key {sorted(unknown)[0]!r}; known: {', '.join(APP_DEFAULTS)}"
            )
        full = {**APP_DEFAULTS, **a}
        if full["match"] is None:
            raise ConfigError(f"app[{i}].match is required, e.g. match = \"udp dport 27015\"")
        parse_match(str(full["match"]), f"app[{i}].match")
        if full["name"] is None:
            full["name"] = f"app{i}"
        full["name"] = str(full["name"])
        if full["rcvbuf-lock"] is None:
            full["rcvbuf-lock"] = full["rcvbuf"] is not None
        if full["rcvbuf"] is None:
            # tcp_init_sock: sk_rcvbuf = tcp_rmem[1]; sock_init_data: rmem_default (KERNEL.md §2)
            tcp_app = str(full["match"]).strip().lower().startswith("tcp")
            full["rcvbuf"] = tcp_rmem(cfg)[1] if tcp_app else s["net.core.rmem_default"]
        tmp = {"app": full}
        _int(tmp, "app", "cpu", 0, ncpus - 1, f"a CPU between 0 and {ncpus - 1}")
        _int(tmp, "app", "threads", 1, 1024, "between 1 and 1024")
        _int(tmp, "app", "rcvbuf", 2304, 2**31 - 1, "at least 2304 (SOCK_MIN_RCVBUF)")
        _int(tmp, "app", "work-ns", 0, 10**12, "non-negative ns")
        # UIO_MAXIOV = 1024 caps a recvmmsg vector
        _int(tmp, "app", "batch", 1, 1024, "between 1 and 1024 (UIO_MAXIOV)")
        _bool(tmp, "app", "reuseport")
        _bool(tmp, "app", "rcvbuf-lock")
        _bool(tmp, "app", "connected")
        _bool(tmp, "app", "udp-gro")
        _bool(tmp, "app", "listen")
        _int(tmp, "app", "accept-ns", 0, 10**12, "non-negative ns")
        if full["listen"] and not str(full["match"]).strip().lower().startswith("tcp"):
            raise ConfigError(f"app[{i}].listen needs a TCP socket: its match must start with tcp, "
                              f"got {full['match']!r}")
        if full["backlog"] is None:
            full["backlog"] = s["net.core.somaxconn"]
        _int(tmp, "app", "backlog", -(2**31), 2**31 - 1, "an int as listen() takes it")
        if full["busy-poll"] is None:
            full["busy-poll"] = s["net.core.busy_read"]
        # sk_setsockopt SO_BUSY_POLL: a negative value is -EINVAL; the value is an int
        _int(tmp, "app", "busy-poll", 0, 2**31 - 1, "us between 0 and 2^31-1 (SO_BUSY_POLL)")
        # sk_setsockopt SO_BUSY_POLL_BUDGET: val < 0 || val > U16_MAX -> -EINVAL (raising it
        # needs CAP_NET_ADMIN, taken as held); EPIOCSPARAMS: above NAPI_POLL_WEIGHT needs it too
        _int(tmp, "app", "busy-poll-budget", 0, 65535, "packets between 0 and 65535 (U16_MAX)")
        if full["busy-poll-budget"] and kernel_version(cfg) < ((6, 9) if full["wait"] == "epoll"
                                                               else (5, 11)):
            raise ConfigError(
                f"app[{i}].busy-poll-budget needs kernel 5.11+ (SO_BUSY_POLL_BUDGET; 6.9+ for "
                f"wait = \"epoll\", EPIOCSPARAMS), host.kernel is {cfg['host']['kernel']}")
        _bool(tmp, "app", "prefer-busy-poll")
        if full["prefer-busy-poll"] and kernel_version(cfg) < ((6, 9) if full["wait"] == "epoll"
                                                               else (5, 11)):
            raise ConfigError(
                f"app[{i}].prefer-busy-poll needs kernel 5.11+ (SO_PREFER_BUSY_POLL; 6.9+ for "
                f"wait = \"epoll\", EPIOCSPARAMS), host.kernel is {cfg['host']['kernel']}")
        if full["wait"] not in ("recvmsg", "epoll"):
            raise ConfigError(
                f"app[{i}].wait must be \"recvmsg\" or \"epoll\", got {full['wait']!r}")
        busy = full["busy-poll"] if full["wait"] == "recvmsg" else s["net.core.busy_poll"]
        if busy > 0 and drv.name == "veth":
            raise ConfigError(
                f"app[{i}]: busy polling is modelled for a NIC queue's NAPI; with nic.driver = "
                "\"veth\" set busy-poll, net.core.busy_read and net.core.busy_poll to 0")
        apps.append(full)
    cfg["app"] = apps
    tunnels = []
    for i, tn in enumerate(cfg.get("tunnel", [])):
        unknown = set(tn) - set(TUNNEL_DEFAULTS)
        if unknown:
            raise ConfigError(f"tunnel[{i}]: unknown key {sorted(unknown)[0]!r}; known: type, port")
        full = {**TUNNEL_DEFAULTS, **tn}
        if full["type"] not in TUNNEL_TYPES:
            raise ConfigError(
                f"tunnel[{i}].type must be one of {', '.join(TUNNEL_TYPES)}, got {full['type']!r}"
            )
        if full["type"] == "gre":
            if full["port"] is not None:
                raise ConfigError(f"tunnel[{i}]: a gre tunnel has no port (IP protocol 47)")
        else:
            if full["port"] is None:
                full["port"] = TUNNEL_TYPES[full["type"]]
            _int({"tunnel": full}, "tunnel", "port", 1, 65535, "a UDP port between 1 and 65535")
        tunnels.append(full)
    cfg["tunnel"] = tunnels

    prof = cfg["costs"]["profile"]
    if not isinstance(prof, str) or not prof:
        raise ConfigError(f"costs.profile must be a profile name or a path, got {prof!r}")
    return cfg


# ---------------------------------------------------------------------------------- TOML out


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if v is None:
        return '""'
    raise TypeError(f"cannot write {type(v).__name__} as TOML")


def _toml_key(k: str) -> str:
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k)


def dump_toml(cfg: Mapping[str, Any]) -> str:
    """The resolved config as TOML that `-c` reads back to the same config."""
    lines: list[str] = []
    for section in SECTIONS:
        if section in _ARRAYS:
            continue
        lines.append(f"[{section}]")
        for k, v in cfg[section].items():
            lines.append(f"{_toml_key(k)} = {_toml_value(v)}")
        lines.append("")
    for section in _ARRAYS:
        for a in cfg.get(section, []):
            lines.append(f"[[{section}]]")
            for k, v in a.items():
                if v is not None:
                    lines.append(f"{_toml_key(k)} = {_toml_value(v)}")
            lines.append("")
    return "\n".join(lines)
