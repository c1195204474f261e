"""The errors a user can act on.

    ReplayError                 one line for the user: what, where, what to do
     ├── TraceError             a capture file cannot be read (names the file and byte offset)
     ├── ConfigError            a config key or value is wrong (names the key, the rule, the value)
     ├── RunError               a run directory is missing or incomplete
     └── PipelineError          a pipeline spec is wrong

The CLI turns any ReplayError into one red line on stderr and exit status 1; anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations


class ReplayError(Exception):
    """Base of every error the user can act on."""


class TraceError(ReplayError):
    """A capture file cannot be read, or not past some byte offset."""

    def __init__(self, path: str, message: str, offset: int | None = None) -> None:
        self.path = path
        self.offset = offset
        where = f"{path}" if offset is None else f"{path} at byte {offset}"
        super().__init__(f"{where}: {message}")


class ConfigError(ReplayError):
    """A config key is unknown or its value breaks the kernel's rule."""


class RunError(ReplayError):
    """A run directory is missing, incomplete or of another format."""


class PipelineError(ReplayError):
    """A pipeline spec is malformed."""
