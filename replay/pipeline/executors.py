"""Job payloads → job records, on local worker processes or on a running Dask cluster.

Both executors run the first job alone before fanning out: the engine is numba code compiled
with cache=True, and a worker that finds the compiled artifacts on disk loads them in
milliseconds instead of compiling for seconds; warming once means N workers do not all compile
at the same time (on 2 cores that doubles the first jobs' time for nothing).
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from replay.errors import PipelineError
from replay.pipeline.jobs import JobFn, execute_job

OnDone = Callable[[int, dict[str, Any]], None]  # (payload index, record)


def _worker_init() -> None:
    """Die with the pipeline: a worker orphaned by kill -9 of its parent would keep writing."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG (prctl(2))
        except OSError:
            pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle


def _died(i: int, what: str) -> dict[str, Any]:
    return {
        "status": "failed",
        "error": f"the worker process died while running this job ({what})",
        "wall_s": 0.0,
    }


def _kill_workers(pool: ProcessPoolExecutor) -> None:
    # the pool has no public way to stop running work; its worker handles are the processes we
    # started, and their temporary job folders are cleaned by the next pipeline run
    for p in list((getattr(pool, "_processes", None) or {}).values()):
        p.kill()


class LocalExecutor:
    """N worker processes (spawned: forking a parent that has started polars' thread pool can
    deadlock). At most N jobs are in flight, so when a worker dies (segfault, OOM kill) the
    suspects are exactly the running jobs; each is retried alone, and only the one that kills
    its worker again is marked failed."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise PipelineError(f"-j must be at least 1, got {workers}")
        self.workers = workers
        self._ctx = multiprocessing.get_context("spawn")

    def run(self, payloads: Sequence[dict[str, Any]], job_fn: JobFn, on_done: OnDone) -> None:
        todo = list(range(len(payloads)))
        if not todo:
            return
        pool = ProcessPoolExecutor(self.workers, mp_context=self._ctx, initializer=_worker_init)
        try:
            # warm the compile cache with the first job, alone
            suspects = self._drain(pool, payloads, job_fn, todo[:1], 1, on_done)
            rest = todo[1:]
            while True:
                if suspects:
                    pool.shutdown(wait=False, cancel_futures=True)
                    pool = ProcessPoolExecutor(
                        self.workers, mp_context=self._ctx, initializer=_worker_init
                    )
                    for i in suspects:
                        single = ProcessPoolExecutor(
                            1, mp_context=self._ctx, initializer=_worker_init
                        )
                        try:
                            if self._drain(single, payloads, job_fn, [i], 1, on_done):
                                on_done(i, _died(i, "it did so twice, alone"))
                        finally:
                            single.shutdown(wait=False, cancel_futures=True)
                if not rest:
                    break
                suspects, rest = self._run_window(pool, payloads, job_fn, rest, on_done)
        except BaseException:  # Ctrl-C or a bug here: do not wait for the running jobs
            _kill_workers(pool)
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _drain(
        self,
        pool: ProcessPoolExecutor,
        payloads: Sequence[dict[str, Any]],
        job_fn: JobFn,
        idx: list[int],
        window: int,
        on_done: OnDone,
    ) -> list[int]:
        suspects, rest = self._run_window(pool, payloads, job_fn, idx, on_done, window)
        return suspects + rest

    def _run_window(
        self,
        pool: ProcessPoolExecutor,
        payloads: Sequence[dict[str, Any]],
        job_fn: JobFn,
        idx: list[int],
        on_done: OnDone,
        window: int | None = None,
    ) -> tuple[list[int], list[int]]:
        """Run idx, `window` jobs in flight; on a pool break return (in flight, not started)."""
        window = window or self.workers
        queue = list(reversed(idx))
        running: dict[Future[dict[str, Any]], int] = {}
        while queue or running:
            while queue and len(running) < window:
                i = queue.pop()
                try:
                    running[pool.submit(execute_job, payloads[i], job_fn)] = i
                except BrokenProcessPool:
                    queue.append(i)
                    return list(running.values()), list(reversed(queue))
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            broken = []
            for fut in done:
                i = running.pop(fut)
                try:
                    on_done(i, fut.result())
                except BrokenProcessPool:
                    broken.append(i)
            if broken:
                return broken + list(running.values()), list(reversed(queue))
        return [], []


class DaskExecutor:
    """The same jobs on a running Dask cluster (`dask scheduler` + `dask worker`).

    Workers must import `replay` and see the trace and output paths at the same place (a shared
    filesystem): they write the job folders themselves, as local workers do.
    """

    def __init__(
        self, address: str, connect_timeout: float = 10.0, workers_timeout: float = 60.0
    ) -> None:
        self.address = address
        self.connect_timeout = connect_timeout
        self.workers_timeout = workers_timeout

    def run(self, payloads: Sequence[dict[str, Any]], job_fn: JobFn, on_done: OnDone) -> None:
        if not payloads:
            return
        from distributed import Client, as_completed

        try:
            client = Client(self.address, timeout=self.connect_timeout)
        except (OSError, TimeoutError) as e:
            raise PipelineError(
                f"cannot reach the Dask scheduler at {self.address} ({e}); start one with "
                "`dask scheduler` and at least one `dask worker ADDRESS`"
            ) from None
        try:
            try:
                client.wait_for_workers(1, timeout=self.workers_timeout)
            except TimeoutError:
                raise PipelineError(
                    f"the Dask scheduler at {self.address} has no workers after "
                    f"{self.workers_timeout:.0f} s; "
                    f"start one with `dask worker {self.address}`"
                ) from None

            def submit(i: int) -> Any:
                return client.submit(
                    execute_job,
                    payloads[i],
                    job_fn,
                    pure=False,
                    key=f"replay-job-{payloads[i]['dir']}-{os.getpid()}-{i}",
                )

            first = submit(0)
            self._collect(as_completed([first]), {first.key: 0}, on_done)
            rest = [submit(i) for i in range(1, len(payloads))]
            self._collect(as_completed(rest), {f.key: i for i, f in enumerate(rest, 1)}, on_done)
        finally:
            client.close()

    @staticmethod
    def _collect(it: Any, index: dict[str, int], on_done: OnDone) -> None:
        for fut in it:
            i = index[fut.key]
            try:
                rec = fut.result()
            except Exception as e:  # KilledWorker, a worker that cannot import replay, …
                rec = {"status": "failed", "error": f"Dask: {type(e).__name__}: {e}", "wall_s": 0.0}
            on_done(i, rec)


def default_workers() -> int:
    """-j default: the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)
