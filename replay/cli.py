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


def main() -> None:
    """Entry point. ReplayErrors are turned into one line by `command`; usage errors exit 2."""
    app()
