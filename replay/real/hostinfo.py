"""This machine → kernel version, CONFIG_HZ, CPU model, tools: what a real run records."""

from __future__ import annotations

import gzip
import os
import platform
import re
import shutil
import time
from pathlib import Path

HZ_VALUES = (100, 250, 300, 1000)


def kernel_release() -> str:
    return platform.release()


def kernel_version() -> str:
    """major.minor of the running kernel, as config host.kernel takes it ("6.18")."""
    m = re.match(r"(\d+)\.(\d+)", kernel_release())
    return f"{m[1]}.{m[2]}" if m else "0.0"


def _hz_from_config(text: str) -> int | None:
    m = re.search(r"^CONFIG_HZ=(\d+)$", text, re.M)
    return int(m[1]) if m else None


def config_hz() -> tuple[int, str]:
    """CONFIG_HZ and where it came from: /proc/config.gz, /boot/config-*, or measured jiffies."""
    p = Path("/proc/config.gz")
    if p.exists():
        try:
            hz = _hz_from_config(gzip.decompress(p.read_bytes()).decode(errors="replace"))
            if hz:
                return hz, "/proc/config.gz"
        except OSError:
            pass
    b = Path(f"/boot/config-{kernel_release()}")
    if b.exists():
        hz = _hz_from_config(b.read_text(errors="replace"))
        if hz:
            return hz, str(b)
    return measure_hz(), "measured (jiffies in /proc/timer_list over 0.5 s)"


def skb_small_head() -> int | None:
    """SKB_SMALL_HEAD_CACHE_SIZE of the running kernel, from its config (include/linux/skbuff.h,
    netdevice.h): SKB_HEAD_ALIGN(MAX_TCP_HEADER), + L1_CACHE_BYTES if that is a power of two;
    MAX_TCP_HEADER = L1_CACHE_ALIGN(128 + MAX_HEADER), MAX_HEADER = LL_MAX_HEADER (+ 48 with IP
    tunnels), LL_MAX_HEADER = 128 (HYPERV_NET, or WLAN/AX25 with MAC80211_MESH), 96 (WLAN or
    AX25), else 32. None when the config is not readable."""
    text = ""
    p = Path("/proc/config.gz")
    try:
        if p.exists():
            text = gzip.decompress(p.read_bytes()).decode(errors="replace")
        elif Path(f"/boot/config-{kernel_release()}").exists():
            text = Path(f"/boot/config-{kernel_release()}").read_text(errors="replace")
    except OSError:
        return None
    if not text:
        return None
    on = {ln.split("=")[0][7:] for ln in text.splitlines()
          if ln.startswith("CONFIG_") and ln.endswith(("=y", "=m"))}
    if "HYPERV_NET" in on:
        ll = 128
    elif "WLAN" in on or "AX25" in on:
        ll = 128 if "MAC80211_MESH" in on else 96
    else:
        ll = 32
    mh = ll + (48 if on & {"NET_IPIP", "NET_IPGRE", "IPV6_SIT", "IPV6_TUNNEL"} else 0)
    mth = (128 + mh + 63) // 64 * 64
    small = mth + 320  # SKB_DATA_ALIGN(sizeof(struct skb_shared_info)) on x86_64
    return small + 64 if small & (small - 1) == 0 else small


def _jiffies() -> int | None:
    try:
        with open("/proc/timer_list") as f:
            for line in f:
                if line.startswith("jiffies:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def measure_hz() -> int:
    """Count jiffies over 0.5 s of wall time and round to the nearest CONFIG_HZ choice."""
    j0, t0 = _jiffies(), time.monotonic()
    time.sleep(0.5)
    j1, t1 = _jiffies(), time.monotonic()
    if j0 is None or j1 is None:
        return 250  # Debian's choice; the run.json says the value was not measured
    rate = (j1 - j0) / (t1 - t0)
    return min(HZ_VALUES, key=lambda h: abs(h - rate))


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def ncpus() -> int:
    return os.cpu_count() or 1


def tool(name: str) -> str | None:
    return shutil.which(name)
