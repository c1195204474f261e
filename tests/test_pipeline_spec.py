"""Pipeline specs: expansion order, paired values, and one clear error per mistake."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replay.errors import PipelineError
from replay.pipeline.spec import parse_spec


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    (tmp_path / "tr").mkdir()
    for n in ("a.pcap", "b.pcap", "c.pcapng"):
        (tmp_path / "tr" / n).write_bytes(b"x")
    (tmp_path / "base.toml").write_text("[nic]\nrx = 1024\n")
    return tmp_path


def spec(folder: Path, body: str):
    return parse_spec(body, folder / "s.toml")


def test_matrix_is_a_full_product_crossed_with_zip_pairs_traces_outermost(folder: Path) -> None:
    s = spec(
        folder,
        """
traces = ["tr/*.pcap"]
[matrix]
"net.core.netdev_budget" = [64, 300, 600]
"nic.rx-usecs" = [0, 50]
[zip]
"nic.rx" = [256, 1024]
"nic.combined" = [1, 4]
""",
    )
    jobs = s.jobs()
    assert len(jobs) == 2 * 3 * 2 * 2
    assert [j.trace_label for j in jobs[:12]] == ["tr/a.pcap"] * 12
    assert jobs[0].knobs == {
        "net.core.netdev_budget": 64,
        "nic.rx-usecs": 0,
        "nic.rx": 256,
        "nic.combined": 1,
    }
    assert jobs[1].knobs == {
        "net.core.netdev_budget": 64,
        "nic.rx-usecs": 0,
        "nic.rx": 1024,
        "nic.combined": 4,
    }
    assert jobs[2].knobs["nic.rx-usecs"] == 50
    assert jobs[11].knobs == {
        "net.core.netdev_budget": 600,
        "nic.rx-usecs": 50,
        "nic.rx": 1024,
        "nic.combined": 4,
    }
    assert s.knob_names == ("net.core.netdev_budget", "nic.rx-usecs", "nic.rx", "nic.combined")
    assert [j.index for j in jobs] == list(range(24))


def test_named_zip_groups_are_crossed_with_each_other(folder: Path) -> None:
    s = spec(
        folder,
        """
traces = "tr/a.pcap"
[zip.ring]
"nic.rx" = [256, 1024]
"nic.combined" = [1, 4]
[zip.coal]
"nic.rx-usecs" = [0, 50, 100]
"nic.rx-frames" = [1, 0, 0]
""",
    )
    assert len(s.jobs()) == 6
    assert s.jobs()[5].knobs == {
        "nic.rx": 1024,
        "nic.combined": 4,
        "nic.rx-usecs": 100,
        "nic.rx-frames": 0,
    }


def test_no_sweep_is_one_job_per_trace_and_paths_are_relative_to_the_spec(folder: Path) -> None:
    s = spec(folder, 'traces = ["tr/*.pcap*", "tr/a.pcap"]\nconfig = "base.toml"\noutput = "o"\n')
    assert [j.trace_label for j in s.jobs()] == ["tr/a.pcap", "tr/b.pcap", "tr/c.pcapng"]
    assert s.config == (folder / "base.toml").resolve()
    assert s.output == (folder / "o").resolve()
    assert s.name == "s"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            'traces = ["tr/*.pcap"]\n[zip]\n"nic.rx" = [1, 2]\n"nic.combined" = [1]\n',
            "[zip] lists are advanced together so must have equal lengths "
            "(nic.rx: 2, nic.combined: 1)",
        ),
        ('traces = ["nope/*.pcap"]\n', "traces: 'nope/*.pcap' matches no file"),
        ('name = "x"\n', "no traces"),
        ('traces = ["tr/*.pcap"]\nmatrx = 1\n', "unknown key(s) matrx"),
        (
            'traces = ["tr/*.pcap"]\n[matrix]\n"nic.rx" = 256\n',
            "[matrix] 'nic.rx' must be a non-empty list",
        ),
        (
            'traces = ["tr/*.pcap"]\n[matrix]\n"nic.rx" = [1]\n[zip]\n"nic.rx" = [2]\n',
            "knob 'nic.rx' is swept twice",
        ),
        ('traces = ["tr/*.pcap"]\n[replay]\nspeed = 2\n', "[replay] unknown option(s) speed"),
        ('traces = ["tr/*.pcap"]\n[matrix]\ntrace = ["a"]\n', "[matrix] 'trace' is not a knob"),
        (
            'traces = ["tr/*.pcap"]\n[matrix]\n"replay.speed" = [2]\n',
            "'replay.speed': unknown replay option",
        ),
        ('traces = ["tr/*.pcap"]\nconfig = "missing.toml"\n', "config 'missing.toml' not found"),
        ('traces = ["tr/*.pcap"\n', "not valid TOML"),
        ('traces = ["tr/*.pcap"]\n[check]\nbaseline = "b.csv"\n', "[check.thresholds] must map"),
        (
            'traces = ["tr/*.pcap"]\n[check]\nbaseline = "b.csv"\n[check.thresholds]\nx = "ten"\n',
            "x = 'ten'",
        ),
    ],
)
def test_mistakes_are_one_pipeline_error_naming_the_spec(
    folder: Path, body: str, message: str
) -> None:
    with pytest.raises(PipelineError) as e:
        spec(folder, body)
    assert message in str(e.value)
    assert str(e.value).startswith(str((folder / "s.toml").resolve()))
    assert "\n" not in str(e.value)


@settings(deadline=None)  # file-system work per example; timing varies with machine load
@given(
    st.lists(st.lists(st.integers(0, 9), min_size=1, max_size=4), min_size=0, max_size=3),
    st.integers(1, 4),
)
def test_job_count_is_the_product_of_axes(axes: list[list[int]], zip_len: int) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        (folder / "t.pcap").write_bytes(b"x")
        body = 'traces = "t.pcap"\n[matrix]\n' + "".join(
            f'"k{i}" = {a}\n' for i, a in enumerate(axes)
        )
        body += f'[zip]\n"z1" = {list(range(zip_len))}\n"z2" = {list(range(zip_len))}\n'
        s = parse_spec(body, folder / "s.toml")
        n = zip_len
        for a in axes:
            n *= len(a)
        jobs = s.jobs()
        assert len(jobs) == n
        assert all(j.knobs["z1"] == j.knobs["z2"] for j in jobs)
        assert len({tuple(sorted(j.knobs.items())) for j in jobs}) == len(
            {tuple(sorted(p.items())) for p in s.points()}
        )
