"""The ``fedot`` CLI: run, compare, experiment (inline backend), and config errors."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from fedot.cli import app

runner = CliRunner()


def test_compare_fedavg_fedavg_two_seeds(tmp_path: Path) -> None:
    # Execute
    result = runner.invoke(app, ["compare", "fedavg", "fedavg", "--seeds", "2", "--set", "rounds=2",
                                 "--set", "clients=3", "--out", str(tmp_path)])
    # Assert
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    rows = summary["results"]
    assert list(rows) == ["fedavg", "fedavg#2"]
    # identical scheme on identical data and seeds → identical numbers (determinism)
    assert rows["fedavg"]["accuracy"] == rows["fedavg#2"]["accuracy"]
    assert rows["fedavg"]["accuracy"]["n"] == 2
    finals = [json.loads((tmp_path / f"fedavg-seed{s}" / "results.json").read_text())["final"]
              for s in (0, 1)]
    assert rows["fedavg"]["accuracy"]["mean"] == sum(f["accuracy"] for f in finals) / 2
    assert (tmp_path / "summary.md").read_text().count("| fedavg") == 2
    assert (tmp_path / "comparison.png").stat().st_size > 0
    assert "fedavg#2" in result.output


def test_run_inline_prints_table(tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", "fedavg", "--backend", "inline", "--clients", "2",
                                 "--set", "rounds=1", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "final accuracy" in result.output
    assert json.loads((tmp_path / "results.json").read_text())["status"] == "completed"


def test_bad_set_exits_2_naming_key_and_value(tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", "--backend", "inline", "--set", "partition.alpha=-1",
                                 "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "'partition.alpha'" in result.output and "-1" in result.output
    assert not tmp_path.joinpath("results.json").exists()


def test_unknown_scheme_exits_2() -> None:
    result = runner.invoke(app, ["run", "foo", "--backend", "inline"])
    assert result.exit_code == 2 and "'scheme'" in result.output


def test_experiment_list_and_quick(tmp_path: Path) -> None:
    # Execute
    listed = runner.invoke(app, ["experiment", "--list"])
    result = runner.invoke(app, ["experiment", "fedavg-digits", "--quick", "--out", str(tmp_path)])
    # Assert
    assert "fedavg-digits" in listed.output
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary["results"]) == {"iid", "dirichlet-1.0", "dirichlet-0.3", "dirichlet-0.1"}
    for row in summary["results"].values():
        assert row["rounds"] == 3 and 0.0 <= row["accuracy"]["mean"] <= 1.0
    assert (tmp_path / "summary.md").exists() and (tmp_path / "comparison.png").exists()
