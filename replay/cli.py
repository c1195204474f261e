"""The `replay` command: a thin typer layer over the library.

Each command parses its options, calls one library function and prints. Any ReplayError becomes
one line on stderr and exit status 1 (no traceback unless --debug); usage errors exit 2.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn, Optional

import typer

from replay.errors import ReplayError
from replay.runner import ReplayOptions

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


def _replay_options(
    multiplier: float | None, pps: float | None, mbps: float | None, topspeed: bool,
    loop: int, limit: int | None, duration: float | None,
) -> ReplayOptions:
    return ReplayOptions(multiplier=multiplier, pps=pps, mbps=mbps, topspeed=topspeed, loop=loop,
                         limit=limit, duration=duration)


@command()
def inspect(
    traces: TracesArg,
    json_: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    frame: Annotated[
        Optional[int],  # noqa: UP045 (typer needs Optional here)
        typer.Option("--frame", min=1, help="Print the layers of frame N (1-based, all inputs)."),
    ] = None,
) -> None:
    """Summarise captures like capinfos: format, link types, frames, duration, rates, flows.

    Example: replay inspect capture.pcapng --json
    """
    from replay.capture.inspect import inspect_frame, inspect_traces

    if frame is not None:
        typer.echo(inspect_frame(traces, frame, as_json=json_), nl=False)
    else:
        typer.echo(inspect_traces(traces, as_json=json_), nl=False)


@command()
def ingest(
    traces: TracesArg,
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Frames table to write (Parquet).")
    ],
) -> None:
    """Read captures into the frames table (Parquet, written in row groups as it reads).

    Example: replay ingest a.pcapng b.pcap.gz -o frames.parquet
    """
    from replay.capture.ingest import ingest as run_ingest

    def warn(message: str) -> None:
        typer.secho(f"replay: warning: {message}", fg=typer.colors.YELLOW, err=True)

    inputs = run_ingest(traces, output, on_warning=warn)
    frames = sum(i.frames for i in inputs)
    typer.echo(f"{output}: {frames} frames from {len(inputs)} input(s)")


@command()
def run(
    traces: TracesArg,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    local: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option("--local", help="The host's own IP or MAC (repeat); frames to others are ignored."),
    ] = None,
    multiplier: Annotated[
        Optional[float],  # noqa: UP045
        typer.Option("-x", "--multiplier", help="Replay at N times the captured speed."),
    ] = None,
    pps: Annotated[Optional[float], typer.Option("-p", "--pps", help="Replay at N packets/s.")] = None,  # noqa: UP045
    mbps: Annotated[Optional[float], typer.Option("-M", "--mbps", help="Replay at N Mbit/s.")] = None,  # noqa: UP045
    topspeed: Annotated[
        bool, typer.Option("-t", "--topspeed", help="Replay back to back at link speed.")
    ] = False,
    loop: Annotated[int, typer.Option("-l", "--loop", help="Replay the capture N times.")] = 1,
    limit: Annotated[Optional[int], typer.Option("-L", "--limit", help="Stop after N packets.")] = None,  # noqa: UP045
    duration: Annotated[
        Optional[float],  # noqa: UP045
        typer.Option("--duration", help="Stop after N seconds of replay."),
    ] = None,
    out: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("-o", "--out", help="Run directory to write (default runs/<trace name>)."),
    ] = None,
    report: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--report", help="Also write the HTML report here."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed (random RSS key, tie-breaking).")] = 0,
) -> None:
    """Replay captures through the modeled Linux receive path and write a run directory.

    \b
    Example:
      replay run traces/game-server.pcap --set nic.rx=256 -o runs/game --report reports/game.html
      replay run flood.pcap.gz -x 2 --set net.core.netdev_budget=600 --local 10.0.0.10
    """
    from replay.model.config import resolve_config
    from replay.runner import run_traces

    overrides = list(set_ or [])
    if local:
        overrides.append("host.addresses=" + "[" + ", ".join(f'"{a}"' for a in local) + "]")
    cfg = resolve_config(config, overrides)
    opts = _replay_options(multiplier, pps, mbps, topspeed, loop, limit, duration)
    if out is None:
        first = Path(traces[0]).name if traces[0] != "-" else "stdin"
        out = Path("runs") / first.split(".")[0]
    cmd = "replay run " + " ".join(sys.argv[2:]) if len(sys.argv) > 2 else "replay run"

    def warn(msg: str) -> None:
        typer.secho(f"replay: warning: {msg}", fg=typer.colors.YELLOW, err=True)

    res = run_traces(traces, cfg, opts, out, seed=seed, report=report, command=cmd, on_warning=warn)
    for note in res.notes:
        typer.echo(f"note: {note}", err=True)
    s = res.summary
    o = s["outcomes"]
    lat = s["latency_ns"]
    typer.echo(
        f"{res.run_dir}: {s['packets']:,} packets, {o['delivered']:,} delivered, "
        f"{o['dropped']:,} dropped, {o['consumed']:,} consumed, {o['ignored']:,} ignored; "
        f"latency p50 {lat['p50'] / 1000:.1f} us, p99 {lat['p99'] / 1000:.1f} us"
    )
    for d in s["drops"][:5]:
        typer.echo(f"  drop {d['stage']}/{d['reason']}: {d['count']:,}")
    if report is not None:
        typer.echo(f"report: {report}")


@command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="Run directory written by `replay run -o`.")],
    output: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("-o", "--output", help="HTML file (default reports/<run name>.html)."),
    ] = None,
    stdio: Annotated[bool, typer.Option("--stdio", help="perf report --stdio text.")] = False,
    vs: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--vs", help="Baseline run directory to diff against (perf diff)."),
    ] = None,
    sort: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("-s", "--sort", help="Keys: comm,dso,sym,cpu,stage,flow,queue,context."),
    ] = None,
    percent_limit: Annotated[
        float, typer.Option("--percent-limit", help="Hide Overhead rows below PCT.")
    ] = 0.0,
    show_counts: Annotated[
        bool, typer.Option("-n", "--show-nr-samples", help="Show frame counts per row.")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Every number as JSON.")] = False,
) -> None:
    """Report a run like perf report: HTML page (default), --stdio text, or --json.

    Example: replay report runs/demo --stdio --sort cpu,sym --percent-limit 1
    """
    from replay.report import cli_report

    text = cli_report(run_dir, output, stdio, vs, sort, percent_limit, show_counts, json_out)
    typer.echo(text, nl=False)


@command()
def export(
    run_dir: Annotated[Path, typer.Argument(help="Run directory written by `replay run -o`.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="folded | speedscope | perfetto")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Output file.")],
) -> None:
    """Export CPU time for other tools: FlameGraph folded stacks, speedscope, Perfetto JSON.

    Example: replay export runs/demo --format folded -o demo.folded
    """
    from replay.report.export import export_run

    path = export_run(run_dir, fmt, output)
    typer.echo(f"wrote {path}")


@command()
def pipeline(
    spec: Annotated[Path, typer.Argument(help="Pipeline spec TOML (traces, matrix, zip, ...).")],
    workers: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option("-j", "--workers", help="Local worker processes (default: cores)."),
    ] = None,
    scheduler: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--scheduler", help="Run the jobs on a running Dask cluster, e.g. tcp://host:8786."),
    ] = None,
    output: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("-o", "--output", help="Output folder (default: the spec's `output`)."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Rerun finished jobs too.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List the jobs and whether each is cached.")
    ] = False,
    json_: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
    write_baseline: Annotated[
        bool, typer.Option("--write-baseline", help="Save this sweep as the [check] baseline.")
    ] = False,
) -> None:
    """Run a sweep: every trace × every knob combination, cached and resumable.

    Example: replay pipeline pipelines/napi-budget.toml -j 2
    """
    import dataclasses
    import json

    from replay.errors import PipelineError
    from replay.pipeline import load_spec, plan_spec, run_pipeline
    from replay.pipeline.executors import default_workers

    s = load_spec(spec)
    if output is not None:
        s = dataclasses.replace(s, output=output.resolve())
    if write_baseline and s.check is None:
        raise PipelineError(f"{spec}: --write-baseline needs a [check] table with a baseline path")
    if dry_run:
        jobs = [
            {
                "job": pj.job.index,
                "trace": pj.job.trace_label,
                "knobs": pj.job.knobs,
                "seed": pj.seed,
                "key": pj.key,
                "state": "invalid"
                if pj.error
                else ("cached" if pj.cached and not force else "to run"),
                "error": pj.error,
            }
            for pj in plan_spec(s)
        ]
        if json_:
            typer.echo(json.dumps({"jobs": jobs, "output": str(s.output)}, default=str))
            return
        for j in jobs:
            knobs = " ".join(f"{k}={v}" for k, v in j["knobs"].items())
            tail = f": {j['error']}" if j["error"] else ""
            typer.echo(f"{j['job']:4d}  {j['state']:7s}  {j['trace']}  {knobs}{tail}")
        typer.echo(f"{len(jobs)} jobs → {s.output}")
        return
    res = run_pipeline(
        s,
        workers=workers or default_workers(),
        scheduler=scheduler,
        force=force,
        progress=not json_,
        write_baseline=write_baseline,
    )
    typer.echo(json.dumps(res.counts()) if json_ else res.line())
    for f in res.check_failures:
        typer.echo(f"check: {f}", err=True)
    if res.failed or res.check_failures:
        raise typer.Exit(1)


@command()
def synth(
    scenario: Annotated[
        Optional[str],  # noqa: UP045
        typer.Argument(help="Scenario name (or `list`).", show_default=False),
    ] = None,
    out: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("-o", "--out", help="Output capture; .gz compresses it.", dir_okay=False),
    ] = None,
    duration: Annotated[
        Optional[float],  # noqa: UP045
        typer.Option("--duration", help="Seconds of traffic (scenario default)."),
    ] = None,
    rate: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--rate", help="bit/s, packets/s or Hz as the scenario says: 100M, 1.5Mpps."),
    ] = None,
    clients: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option("--clients", help="Number of clients or hosts."),
    ] = None,
    flows: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option("--flows", help="Number of flows (sockets / source ports)."),
    ] = None,
    size: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option("--size", help="Bytes; what it sizes is in the scenario's --list line."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed: same options, same bytes.")] = 1,
    list_: Annotated[bool, typer.Option("--list", help="List the scenarios and exit.")] = False,
) -> None:
    """Write a synthetic capture of a named scenario (deterministic: same options, same bytes).

    \b
    Example:
      replay synth https-download -o traces/https-download.pcap --duration 0.1 --rate 100M
      replay synth gigabit-flood -o flood.pcap.gz --duration 0.05
      replay synth --list
    """
    from replay.synth import SynthError, build, describe, resolve
    from replay.synth.writer import write_capture

    if list_ or scenario == "list":
        typer.echo("\n".join(describe()))
        return
    if scenario is None:
        raise SynthError("give a SCENARIO to synthesize; `replay synth --list` shows them")
    if out is None:
        raise SynthError(f"say where to write {scenario}: -o OUT.pcap (or OUT.pcap.gz)")
    options = {"duration": duration, "rate": rate, "clients": clients, "flows": flows,
               "size": size, "seed": seed}
    resolve(scenario, **options)  # every option checked before any work or output
    cap = build(scenario, **options)
    path = write_capture(cap, out)
    typer.echo(f"{path}: {len(cap):,} frames, {path.stat().st_size:,} bytes")


TracesArg = Annotated[
    list[str],
    typer.Argument(help="Capture files (pcap, pcapng; gzip/zstd/xz/bzip2 or not); - for stdin."),
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
    receiver: Annotated[
        str, typer.Option("--receiver", help="Receiver loop: compiled (numba, a few clock reads"
                          " of its own per message) or python (about 5 us per message).")
    ] = "compiled",
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
    if receiver not in ("compiled", "python"):
        raise typer.BadParameter("--receiver must be compiled or python")
    opts = RealOptions(sender_cpu=sender_cpu, perf=not no_perf, host_sysctl=host_sysctl,
                       max_seconds=max_seconds, priority=priority, receiver=receiver)
    res = run_real([str(t) for t in traces], output, config, set_ or [], ro, opts,
                   command="replay " + " ".join(sys.argv[1:]))
    s = res.summary
    o = s["outcomes"]
    typer.echo(f"{output}: {s['packets']} packets sent, {o['delivered']} delivered, "
               f"{o['dropped']} dropped; RcvbufErrors "
               f"{res_counter(res.run_dir, 'RcvbufErrors')}")
    for n in res.notes:
        typer.echo(f"note: {n}", err=True)


@command()
def calibrate(
    output: Annotated[Path, typer.Option("-o", "--output", help="Profile TOML to write.")],
    repeat: Annotated[int, typer.Option("--repeat", min=1, help="Runs per trace.")] = 3,
    keep: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--keep", help="Keep the calibration runs in this folder."),
    ] = None,
    reuse: Annotated[
        bool,
        typer.Option("--reuse", help="Fit again from the runs already complete in --keep."),
    ] = False,
    receiver: Annotated[
        str, typer.Option("--receiver", help="The harness's receiver loop: compiled or python.")
    ] = "compiled",
) -> None:
    """Fit a cost profile to this machine from real runs (root): replay calibrate -o me.toml

    Select it with costs.profile = "me.toml". See docs/real-kernel.md.
    """
    from replay.real.calibrate import calibrate as run_calibration

    if reuse and keep is None:
        raise ReplayError("calibrate --reuse needs --keep DIR (the folder of the kept runs); add --keep")
    if receiver not in ("compiled", "python"):
        raise typer.BadParameter("--receiver must be compiled or python")
    res = run_calibration(output, repeat=repeat, keep=keep, reuse=reuse, receiver=receiver)
    fits = ", ".join(f"{k} {100 * v:.1f}%" for k, v in res["residuals"].items())
    typer.echo(f"{output}: {res['runs']} runs; fit residuals {fits}")


def res_counter(run_dir: Path, name: str) -> int:
    from replay.store.rundir import read_run

    return int(read_run(run_dir).counters.get("snmp", {}).get("Udp", {}).get(name, 0))


def main() -> None:
    """Entry point. ReplayErrors are turned into one line by `command`; usage errors exit 2."""
    app()
