"""Run tables → Parquet files (store/rundir.py) → the same tables, whichever writer wrote them.

frames, packets and cpu go through the project's own encoder (capture/pqwrite.py), events (int16
columns) through pyarrow's; every reader must get back exactly the tables that went in.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from replay.capture import read_captures
from replay.errors import RunError
from replay.model.config import resolve_config
from replay.model.costs import load_profile
from replay.model.simulate import simulate
from replay.runner import ReplayOptions
from replay.store.rundir import RunWriter, write_run
from replay.store.schema import CPU_SCHEMA, EVENTS_SCHEMA, PACKETS_SCHEMA
from tests.runfixtures import small_tables

REPO = Path(__file__).resolve().parents[1]


def _read_back(run: Path, tables: dict[str, pa.Table]) -> None:
    for name, table in tables.items():
        path = run / f"{name}.parquet"
        back = pq.read_table(path)
        assert back.schema.metadata is not None and b"stack_replay.run" in back.schema.metadata
        assert back.replace_schema_metadata(None).equals(table.replace_schema_metadata(None)), name
        # polars reads the same rows (dictionaries come back as categoricals)
        assert pl.read_parquet(path).height == table.num_rows
        own = pq.ParquetFile(path).metadata.created_by.startswith("stack-replay")
        assert own == (name != "events"), name


def test_hand_made_tables_round_trip(tmp_path: Path) -> None:
    """Null dictionary entries (drop_stage of a delivered packet), null times, uint16 columns."""
    tables = small_tables()
    run = write_run(tmp_path / "run", {"config": {}, "seed": 0}, tables)
    _read_back(run, tables)


def test_replayed_trace_round_trip(tmp_path: Path) -> None:
    """A real replay's four tables, the frames table in its five decoder batches (row groups)."""
    cfg = resolve_config(None, [])
    frames = read_captures([str(REPO / "traces" / "game-server.pcap")]).table
    res = simulate(frames, cfg, load_profile("default"), ReplayOptions())
    tables = {"frames": frames, "packets": res.packets, "cpu": res.cpu, "events": res.events}
    run = write_run(tmp_path / "run", {"config": cfg, "seed": 0}, tables)
    _read_back(run, tables)
    # as `replay run` writes it: frames handed over before the replay, the others by simulate
    # as each is built; the same bytes
    handed: list[str] = []
    with RunWriter(tmp_path / "run2") as w:
        w.add("frames", frames)

        def add(name: str, table: pa.Table) -> None:
            handed.append(name)
            w.add(name, table)

        again = simulate(frames, cfg, load_profile("default"), ReplayOptions(), on_table=add)
        run2 = w.finish({"config": cfg, "seed": 0})
    assert handed == ["packets", "cpu", "events"]
    assert again.packets.equals(res.packets)
    for name in tables:
        assert (run2 / f"{name}.parquet").read_bytes() == (run / f"{name}.parquet").read_bytes()
    assert pq.ParquetFile(run / "frames.parquet").metadata.num_row_groups == frames[
        "frame"].num_chunks


@pytest.mark.parametrize("schema", [PACKETS_SCHEMA, CPU_SCHEMA, EVENTS_SCHEMA])
def test_empty_tables(tmp_path: Path, schema: pa.Schema) -> None:
    name = {PACKETS_SCHEMA: "packets", CPU_SCHEMA: "cpu", EVENTS_SCHEMA: "events"}[schema]
    run = write_run(tmp_path / "run", {"config": {}, "seed": 0}, {name: schema.empty_table()})
    back = pq.read_table(run / f"{name}.parquet")
    assert back.num_rows == 0
    assert back.schema.remove_metadata().equals(schema)
    assert pl.scan_parquet(run / f"{name}.parquet").select(pl.len()).collect().item() == 0


def test_large_cpu_table_in_row_groups(tmp_path: Path) -> None:
    """Over a million rows: one row group per 2^20 rows, values unchanged."""
    n = (1 << 20) + 1000
    rng = np.random.default_rng(3)
    start = np.cumsum(rng.integers(0, 5000, n))

    def dic(codes: np.ndarray, names: list[str]) -> pa.DictionaryArray:
        return pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int16)), names)

    stage = rng.integers(0, 10, n)
    cpu = pa.Table.from_arrays([
        pa.array(rng.integers(0, 4, n).astype(np.uint16)),
        pa.array(start), pa.array(start + 700),
        dic(rng.integers(0, 4, n), ["hardirq", "softirq", "ksoftirqd", "task"]),
        dic(rng.integers(0, 3, n), ["swapper/0", "ksoftirqd/0", "app"]),
        dic(np.zeros(n), ["[kernel.kallsyms]"]),
        dic(rng.integers(0, 2, n), ["udp_recvmsg", "net_rx_action"]),
        pa.DictionaryArray.from_arrays(pa.array(stage.astype(np.int16), mask=stage == 0),
                                       [f"s{i}" for i in range(10)]),
        dic(rng.integers(0, 2, n), ["netdev", "etc"]),
        pa.array(rng.integers(0, 10_000, n)), pa.array(rng.integers(0, 64, n).astype(np.uint32)),
    ], schema=CPU_SCHEMA)
    run = write_run(tmp_path / "run", {"config": {}, "seed": 0}, {"cpu": cpu})
    assert pq.ParquetFile(run / "cpu.parquet").metadata.num_row_groups == 2
    _read_back(run, {"cpu": cpu})


def test_run_process_without_huge_pages() -> None:
    """keep_freed_memory turns transparent huge pages off for the process (PR_SET_THP_DISABLE):
    on the development VM a huge-page fault cost twice the system time of 4 KB ones."""
    status = Path("/proc/self/status")
    if not sys.platform.startswith("linux") or "THP_enabled" not in status.read_text():
        pytest.skip("needs Linux >= 5.0 (/proc/<pid>/status THP_enabled)")
    code = ("from replay.runner import keep_freed_memory; keep_freed_memory(); "
            "print([l for l in open('/proc/self/status') if l.startswith('THP_enabled')][0])")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         check=True, env={"PYTHONPATH": str(REPO)}).stdout
    assert out.split() == ["THP_enabled:", "0"]


def test_run_writer_metadata_given_at_finish(tmp_path: Path) -> None:
    """Tables handed over before the config is known (frames.parquet during the replay) end up
    with the run's metadata in the Arrow schema and in the file's key-value metadata, exactly
    as when the metadata is there from the start."""
    tables = small_tables()
    run_json = {"config": {"host": {"cpus": 2}}, "seed": 5}
    with RunWriter(tmp_path / "run") as w:
        for name, table in tables.items():
            w.add(name, table)
        run = w.finish(run_json)
    _read_back(run, tables)
    meta = pq.read_metadata(run / "packets.parquet").metadata
    want = b'{"config": {"host": {"cpus": 2}}, "format": "stack-replay-run/1", "seed": 5}'
    assert meta[b"stack_replay.run"] == want
    assert pq.read_table(run / "packets.parquet").schema.metadata[b"stack_replay.run"] == want


def test_run_writer_error_leaves_nothing(tmp_path: Path) -> None:
    """An error between opening and finishing (a replay that fails) removes the partial folder
    and leaves an earlier finished run where it was, untouched."""
    tables = small_tables()
    old = write_run(tmp_path / "run", {"config": {}, "seed": 1}, tables)
    before = sorted((p.name, p.stat().st_size) for p in old.iterdir())
    with pytest.raises(RuntimeError, match="replay failed"), RunWriter(tmp_path / "run") as w:
        w.add("packets", tables["packets"])
        raise RuntimeError("replay failed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert sorted((p.name, p.stat().st_size) for p in old.iterdir()) == before


def test_run_writer_refuses_a_folder_before_any_work(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "keep.txt").write_text("mine")
    with pytest.raises(RunError, match="exists and is not a run directory"):
        RunWriter(tmp_path / "data")
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_run_writer_rejects_unknown_or_repeated_tables(tmp_path: Path) -> None:
    tables = small_tables()
    with RunWriter(tmp_path / "run") as w:
        w.add("packets", tables["packets"])
        with pytest.raises(ValueError, match="added twice"):
            w.add("packets", tables["packets"])
        with pytest.raises(ValueError, match="not one of"):
            w.add("flows", tables["packets"])
        w.finish({"config": {}, "seed": 0})
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["packets.parquet", "run.json"]
