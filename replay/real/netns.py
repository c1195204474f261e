"""A name → a private network namespace with a veth pair into it, torn down on every exit path.

Layout (KERNEL.md §3c): the host side `<name>h` stays in the caller's namespace and is where the
sender (tcpreplay) writes; the peer `<name>n` lives in namespace `<name>` with the receiver's
address. Addresses come from 198.18.0.0/15 (RFC 2544 benchmarking range), so the harness never
sends to an address anything else on the machine uses.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from types import TracebackType

from replay.errors import ReplayError


class RealError(ReplayError):
    """The real-kernel harness cannot run here (no root, no netns, a tool missing or failing)."""


def run_cmd(args: list[str], what: str, timeout: float = 20.0) -> str:
    """Run a setup command; a failure is one RealError line naming the command and its stderr."""
    try:
        p = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise RealError(f"{what}: {args[0]} is not installed; install it (apt-get install "
                        f"{_PACKAGE.get(args[0], args[0])})") from None
    except subprocess.TimeoutExpired:
        raise RealError(f"{what}: `{' '.join(args)}` did not finish in {timeout:.0f} s") from None
    if p.returncode != 0:
        err = (p.stderr or p.stdout).strip().splitlines()
        raise RealError(f"{what}: `{' '.join(args)}` failed: {err[-1] if err else p.returncode}")
    return p.stdout


_PACKAGE = {"ip": "iproute2", "tcpreplay": "tcpreplay", "perf": "linux-perf",
            "dumpcap": "wireshark-common", "taskset": "util-linux"}


def check_root() -> None:
    """Root (CAP_NET_ADMIN and CAP_SYS_ADMIN for `ip netns`) is needed; say so in one line."""
    if os.geteuid() != 0:
        raise RealError("replay real needs root to create a network namespace and a veth pair; "
                        "run it as root (sudo replay real ...)")


@dataclass
class VethPair:
    """The namespace, both veth ends, their MACs and addresses."""

    name: str
    host_if: str
    ns_if: str
    host_ip: str
    ns_ip: str
    host_mac: str = ""
    ns_mac: str = ""
    mtu: int = 1500
    _up: bool = field(default=False, repr=False)

    def ns_exec(self, *args: str) -> list[str]:
        """The argv that runs `args` inside the namespace."""
        return ["ip", "netns", "exec", self.name, *args]


def pair_for(pid: int) -> VethPair:
    """Names and addresses unique to one harness process (so parallel runs do not collide)."""
    # interface names are at most 15 bytes (IFNAMSIZ 16 with the NUL)
    tag = f"sr{pid % 10**7}"
    # a /30 per pid inside 198.18.0.0/15: 2^15 subnets
    k = pid % (1 << 15)
    base = (198 << 24) | (18 << 16) | (k << 2)

    def ip(v: int) -> str:
        return ".".join(str((v >> s) & 255) for s in (24, 16, 8, 0))

    return VethPair(tag, f"{tag}h", f"{tag}n", ip(base + 1), ip(base + 2))


class Namespace:
    """Context manager: create the namespace and veth pair; delete both on exit, also on error."""

    def __init__(self, pair: VethPair, mtu: int = 1500, host_mac: str = "",
                 ns_mac: str = "") -> None:
        self.pair = pair
        self.pair.mtu = mtu
        self.macs = (host_mac, ns_mac)

    def __enter__(self) -> VethPair:
        check_root()
        p = self.pair
        self._cleanup()  # a leftover of a killed earlier run with the same pid
        try:
            run_cmd(["ip", "netns", "add", p.name], "creating the network namespace")
            p._up = True
            hm = ["address", self.macs[0]] if self.macs[0] else []
            nm = ["address", self.macs[1]] if self.macs[1] else []
            run_cmd(["ip", "link", "add", p.host_if, *hm, "mtu", str(p.mtu), "type", "veth",
                     "peer", "name", p.ns_if, *nm, "mtu", str(p.mtu), "netns", p.name],
                    "creating the veth pair")
            # IPv6 off on both ends: no router solicitations or DAD frames mixed into the
            # capture of what was sent, and nothing but the replayed frames reaches the peer
            for cmd in (
                ["sysctl", "-qw", f"net.ipv6.conf.{p.host_if}.disable_ipv6=1"],
                p.ns_exec("sysctl", "-qw", f"net.ipv6.conf.{p.ns_if}.disable_ipv6=1"),
                # rp_filter off: replayed sources need no route back (new namespaces inherit
                # the init namespace's conf/default, which Debian sets to 2)
                p.ns_exec("sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0"),
                p.ns_exec("sysctl", "-qw", f"net.ipv4.conf.{p.ns_if}.rp_filter=0"),
                ["ip", "addr", "add", f"{p.host_ip}/30", "dev", p.host_if],
                p.ns_exec("ip", "addr", "add", f"{p.ns_ip}/30", "dev", p.ns_if),
                ["ip", "link", "set", p.host_if, "up"],
                p.ns_exec("ip", "link", "set", p.ns_if, "up"),
                p.ns_exec("ip", "link", "set", "lo", "up"),
            ):
                run_cmd(cmd, "configuring the veth pair")
            p.host_mac = _read(f"/sys/class/net/{p.host_if}/address")
            p.ns_mac = run_cmd(p.ns_exec("cat", f"/sys/class/net/{p.ns_if}/address"),
                               "reading the peer's MAC").strip()
            # a static neighbour entry: the namespace never needs to ARP for the sender
            run_cmd(p.ns_exec("ip", "neigh", "replace", p.host_ip, "lladdr", p.host_mac,
                              "dev", p.ns_if, "nud", "permanent"), "adding the neighbour entry")
        except BaseException:
            self._cleanup()
            raise
        return p

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._cleanup()

    def _cleanup(self) -> None:
        p = self.pair
        # deleting the namespace destroys its veth end, and with it the host end
        subprocess.run(["ip", "netns", "del", p.name], capture_output=True, check=False)
        subprocess.run(["ip", "link", "del", p.host_if], capture_output=True, check=False)
        p._up = False


def _read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def netns_available() -> str | None:
    """None when root, `ip netns` and veth work here; otherwise the reason, in one line."""
    if os.geteuid() != 0:
        return "needs root (network namespaces and veth pairs)"
    try:
        with Namespace(pair_for(os.getpid() + 77)):
            pass
    except RealError as e:
        return str(e)
    return None


# ETHTOOL_GGRO through SIOCETHTOOL (include/uapi/linux/ethtool.h: ETHTOOL_GGRO 0x2b,
# struct ethtool_value {u32 cmd; u32 data}; include/uapi/linux/sockios.h: SIOCETHTOOL 0x8946),
# run inside the namespace: whether the peer has GRO on, which decides veth's path (KERNEL.md
# §3c: with GRO the skb goes through a ptr_ring and a NAPI; without, straight to the backlog)
_GGRO = (
    "import array,fcntl,socket,struct,sys;"
    "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);"
    "v=array.array('I',[0x2b,0]);"
    "r=struct.pack('16sP',sys.argv[1].encode(),v.buffer_info()[0])+bytes(16);"
    "fcntl.ioctl(s.fileno(),0x8946,r);print(v[1])"
)


def peer_gro(pair: VethPair, python: str, set_to: bool | None = None) -> bool:
    """GRO state of the namespace's veth end (ETHTOOL_GGRO), after setting it (ETHTOOL_SGRO)."""
    if set_to is not None:
        code = _GGRO.replace("[0x2b,0]", f"[0x2c,{int(set_to)}]")
        run_cmd(pair.ns_exec(python, "-c", code, pair.ns_if), "setting the peer's GRO")
    out = run_cmd(pair.ns_exec(python, "-c", _GGRO, pair.ns_if), "reading the peer's GRO state")
    return out.strip() == "1"
