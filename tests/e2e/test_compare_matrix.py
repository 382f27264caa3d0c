"""`fedot compare` works for every set of schemes that share a client task (issue 18, item 1).

The groups come from the ClientApp's task table, so a new scheme is covered when it is added.
One compare per group runs all its schemes side by side, i.e. every pair of that group.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest
from typer.testing import CliRunner

from clients.client_app import TASKS
from fedot.cli import app

runner = CliRunner()


def _groups() -> dict[str, list[str]]:
    groups: dict[str, list[str]] = defaultdict(list)
    for scheme, task in TASKS.items():
        groups[task.__name__.rsplit(".", 1)[-1]].append(scheme)
    # a task with one scheme is compared with itself (two arms, the same numbers)
    return {task: schemes if len(schemes) > 1 else schemes * 2 for task, schemes in groups.items()}


GROUPS = _groups()
#: Extra quick settings per task (FFM's evaluation samples and solves W2 at every NFE).
QUICK = {"ffm": ["ffm.nfe=1,10", "ffm.eval-samples=200", "ffm.local-steps=5"]}


def test_the_matrix_covers_every_scheme() -> None:
    assert {s for schemes in GROUPS.values() for s in schemes} == set(TASKS)


@pytest.mark.slow
@pytest.mark.parametrize("task", sorted(GROUPS))
def test_compare_runs_every_scheme_of_a_task(tmp_path: Path, task: str) -> None:
    schemes = GROUPS[task]
    # Execute: quick settings, one seed
    sets = [arg for kv in ["rounds=2", "clients=4", *QUICK.get(task, [])] for arg in ("--set", kv)]
    result = runner.invoke(app, ["compare", *schemes, "--seeds", "1", *sets, "--out", str(tmp_path)])
    # Assert
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    rows = summary["results"]
    assert len(rows) == len(schemes)
    assert (tmp_path / "comparison.png").stat().st_size > 0
    table = (tmp_path / "summary.md").read_text()
    # every metric of the summary is shown, for the arms that have it and as "–" for the others
    metrics = summary["metrics"]
    assert metrics
    for label, row in rows.items():
        line = next(x for x in table.splitlines() if x.startswith(f"| {label} |"))
        cells = [c.strip() for c in line.split("|")[2:-1]][: len(metrics)]
        assert [c == "–" for c in cells] == [m not in row for m in metrics], line
    for metric in metrics:
        assert any(metric in row for row in rows.values()), f"{metric} is in no arm"
    if task == "classifier":  # only the partial-participation schemes record F_p
        assert "loss_p" in rows["fedavot"] and "loss_p" not in rows["fedavg"]
