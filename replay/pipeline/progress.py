"""Job records as they arrive → a progress bar on a terminal (done, cached, failed, ETA)."""

# In pipes and CI nothing is drawn: the final one-line count is all the output.

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


class Progress:
    """Counts jobs; draws a rich bar only when `stream` is a terminal and `enabled`."""

    def __init__(
        self,
        total: int,
        cached: int,
        failed: int,
        *,
        enabled: bool = True,
        stream: TextIO | None = None,
    ) -> None:
        self.total, self.cached, self.failed, self.done = total, cached, failed, 0
        self._t0 = time.monotonic()
        self._bar: Any = None
        stream = stream or sys.stderr
        if enabled and stream.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                TextColumn("pipeline"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[counts]}"),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=Console(file=stream),
                transient=False,
            )
            self._bar.start()
            self._task = self._bar.add_task(
                "jobs", total=total, completed=cached + failed, counts=self._counts()
            )

    def _counts(self) -> str:
        return f"done {self.done} · cached {self.cached} · failed {self.failed}"

    def update(self, rec: dict[str, Any]) -> None:
        if rec.get("status") == "ok":
            self.done += 1
        else:
            self.failed += 1
        if self._bar is not None:
            self._bar.update(self._task, advance=1, counts=self._counts())

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
