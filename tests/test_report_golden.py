"""--stdio and folded output of the small run match tests/golden/ byte for byte.

After an intended change: PYTHONPATH=$PWD python -m tests.regen_golden (then review the diff).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.regen_golden import CASES, GOLDEN, render_all


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return render_all(tmp_path_factory.mktemp("golden"))


@pytest.mark.parametrize("name", sorted(CASES))
def test_output_matches_golden_file(rendered: dict[str, str], name: str) -> None:
    path = GOLDEN / name
    assert path.exists(), f"missing {path}; run python -m tests.regen_golden"
    assert rendered[name] == path.read_text(), f"{name} differs; regenerate if intended"


def test_every_golden_file_has_a_case() -> None:
    assert {p.name for p in Path(GOLDEN).iterdir() if p.is_file()} == set(CASES)
