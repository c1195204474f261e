"""The progress bar: counts and ETA on a terminal, nothing at all in a pipe."""

from __future__ import annotations

import io

from replay.pipeline.progress import Progress


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_shows_done_cached_failed_and_eta() -> None:
    out = Tty()
    p = Progress(5, cached=2, failed=1, stream=out)
    p.update({"status": "ok"})
    p.update({"status": "failed"})
    p.close()
    text = out.getvalue()
    assert "5/5" in text
    assert "done 1 · cached 2 · failed 2" in text
    assert "ETA" in text


def test_pipe_gets_nothing() -> None:
    out = io.StringIO()
    p = Progress(3, cached=0, failed=0, stream=out)
    p.update({"status": "ok"})
    p.close()
    assert out.getvalue() == ""
    assert (p.done, p.failed) == (1, 0)


def test_disabled_on_a_terminal_gets_nothing() -> None:
    out = Tty()
    Progress(3, cached=0, failed=0, stream=out, enabled=False).close()
    assert out.getvalue() == ""
