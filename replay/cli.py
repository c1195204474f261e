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


def main() -> None:
    """Entry point. ReplayErrors are turned into one line by `command`; usage errors exit 2."""
    app()
