"""The `replay` command: a thin typer layer over the library.

Each command parses its options, calls one library function and prints. Any ReplayError becomes
one line on stderr and exit status 1 (no traceback unless --debug); usage errors exit 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
import functools
from collections.abc import Callable
from typing import Annotated, Any, NoReturn, Optional

import typer

from replay.errors import ReplayError

app = typer.Typer(
    name="replay",
    help="Replay packet captures through a model of the Linux receive path.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_DEBUG = False


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    global _DEBUG
    _DEBUG = debug


def _fail(message: str) -> NoReturn:
    typer.secho(f"replay: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


def command(*args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """app.command() whose function turns a ReplayError into one red line and exit 1."""

    def deco(f: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(f)
        def wrapped(*a: Any, **kw: Any) -> Any:
            try:
                return f(*a, **kw)
            except ReplayError as e:
                if _DEBUG:
                    raise
                _fail(str(e))
            except BrokenPipeError:  # `replay report --stdio | head`
                sys.stderr.close()
                raise typer.Exit(0) from None

        app.command(*args, **kwargs)(wrapped)
        return f

    return deco


SetOpt = Annotated[
    Optional[list[str]],  # noqa: UP045 (typer needs Optional here)
    typer.Option("--set", help="Override a key: section.key=VALUE or a sysctl name=VALUE."),
]
ConfigOpt = Annotated[
    Optional[Path],  # noqa: UP045
    typer.Option("-c", "--config", help="Config TOML file (kernel names: sysctl, ethtool, sysfs)."),
]


@command()
def config(config: ConfigOpt = None, set_: SetOpt = None) -> None:
    """Print the resolved config (defaults + -c file + --set overrides) as TOML.

    Example: replay config --set net.core.netdev_budget=600 --set nic.rx=1024
    """
    from replay.model.config import dump_toml, resolve_config

    cfg = resolve_config(config, set_ or [])
    typer.echo(dump_toml(cfg), nl=False)


@command()
def real(
    traces: Annotated[list[Path], typer.Argument(help="Capture files (pcap, pcapng, compressed).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Run directory to write.")],
    config: ConfigOpt = None,
    set_: SetOpt = None,
    multiplier: Annotated[Optional[float], typer.Option("-x", "--multiplier")] = None,  # noqa: UP045
    pps: Annotated[Optional[float], typer.Option("-p", "--pps")] = None,  # noqa: UP045
    mbps: Annotated[Optional[float], typer.Option("-M", "--mbps")] = None,  # noqa: UP045
    topspeed: Annotated[bool, typer.Option("-t", "--topspeed")] = False,
    loop: Annotated[int, typer.Option("-l", "--loop", min=1)] = 1,
    limit: Annotated[Optional[int], typer.Option("-L", "--limit", min=1)] = None,  # noqa: UP045
    duration: Annotated[Optional[float], typer.Option("--duration")] = None,  # noqa: UP045
    sender_cpu: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option("--sender-cpu", help="CPU for tcpreplay (default: one no [[app]] uses)."),
    ] = None,
    no_perf: Annotated[bool, typer.Option("--no-perf", help="Do not run perf record.")] = False,
    host_sysctl: Annotated[
        bool, typer.Option("--host-sysctl", help="Also set host-wide net.core knobs (restored).")
    ] = False,
    max_seconds: Annotated[float, typer.Option("--max-seconds", help="Replay time bound.")] = 30.0,
    priority: Annotated[
        str, typer.Option("--priority", help="Sender/receiver priority: fifo, nice (-20), normal.")
    ] = "fifo",
) -> None:
    """Replay TRACE into a veth pair in a private network namespace on this kernel (root).

    Receivers behave as the config's [[app]] says; tcpreplay sends; perf samples. The run
    directory has the format of `replay run`, so `replay report REAL --vs MODEL` compares them.
    Example: replay real flood.pcap -c game.toml -t -o runs/real-flood
    """
    from replay.real.harness import RealOptions, run_real
    from replay.runner import ReplayOptions

    ro = ReplayOptions(multiplier=multiplier, pps=pps, mbps=mbps, topspeed=topspeed, loop=loop,
                       limit=limit, duration=duration)
    if priority not in ("nice", "fifo", "normal"):
        raise typer.BadParameter("--priority must be nice, fifo or normal")
    opts = RealOptions(sender_cpu=sender_cpu, perf=not no_perf, host_sysctl=host_sysctl,
                       max_seconds=max_seconds, priority=priority)
    res = run_real([str(t) for t in traces], output, config, set_ or [], ro, opts,
                   command="replay " + " ".join(sys.argv[1:]))
    s = res.summary
    o = s["outcomes"]
    typer.echo(f"{output}: {s['packets']} packets sent, {o['delivered']} delivered, "
               f"{o['dropped']} dropped; RcvbufErrors "
               f"{res_counter(res.run_dir, 'RcvbufErrors')}")
    for n in res.notes:
        typer.echo(f"note: {n}", err=True)


def res_counter(run_dir: Path, name: str) -> int:
    from replay.store.rundir import read_run

    return int(read_run(run_dir).counters.get("snmp", {}).get("Udp", {}).get(name, 0))


def main() -> None:
    """Entry point. ReplayErrors are turned into one line by `command`; usage errors exit 2."""
    app()
