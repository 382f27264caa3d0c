"""The ``fedot`` CLI: run, compare, experiment (inline backend), and config errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fedot.cli import app
from fedot.experiments import EXPERIMENTS

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


def test_an_experiment_with_its_own_engine_refuses_another_backend() -> None:
    result = runner.invoke(app, ["experiment", "ffm-2d", "--quick", "--backend", "ray"])
    assert result.exit_code == 2 and "own engine" in result.output


def test_experiment_list() -> None:
    listed = runner.invoke(app, ["experiment", "--list"])
    assert listed.exit_code == 0
    for name in EXPERIMENTS:
        assert name in listed.output


@pytest.mark.filterwarnings("ignore::fedot.ot.MaskedSinkhornWarning")  # the 'paper' setting
@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_every_experiment_runs_quick(tmp_path: Path, name: str) -> None:
    # Execute
    result = runner.invoke(app, ["experiment", name, "--quick", "--out", str(tmp_path)])
    # Assert: every arm ran with the quick settings and the summary files exist
    assert result.exit_code == 0, result.output
    exp = EXPERIMENTS[name]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert list(summary["results"]) == [a.label for a in exp.arms]
    assert summary["seeds"] == list(exp.quick_seeds)
    for label, row in summary["results"].items():
        overrides = exp.arms[[a.label for a in exp.arms].index(label)].overrides
        assert row["rounds"] == overrides.get("rounds", exp.quick.get("rounds", exp.base.get("rounds")))
        assert set(summary["metrics"]) & set(row)  # each arm reports the experiment's metrics
    assert (tmp_path / "summary.md").exists() and (tmp_path / "comparison.png").exists()
    if exp.report is not None and name.startswith("irl-"):
        assert (tmp_path / "irl.md").stat().st_size > 0 and (tmp_path / "irl.png").exists()


def test_parallel_jobs_give_the_numbers_of_sequential_runs(tmp_path: Path) -> None:
    # Prepare: two arms × two seeds; workers run with cpu_count // 2 threads, so the sequential
    # reference uses the same thread count
    import os

    import torch

    from fedot.cli import make_runner
    from fedot.experiments import Arm, compare

    arms = [Arm("a", {"partition.alpha": 0.5}), Arm("b", {"partition.alpha": 1.0})]
    base = {"scheme": "fedavg", "clients": 3, "rounds": 2, "checkpoint": False}
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // 2))
    try:
        seq = compare(arms, seeds=[0, 1], run=make_runner("inline"), out_dir=tmp_path / "seq",
                      base=base)
    finally:
        torch.set_num_threads(threads)
    # Execute
    par = compare(arms, seeds=[0, 1], run=make_runner("inline"), out_dir=tmp_path / "par",
                  base=base, jobs=2)
    # Assert: every run done, same per-arm numbers in the same order
    assert par["metrics"] == seq["metrics"] and "accuracy" in seq["metrics"]
    for arm in ("a", "b"):
        for metric in seq["metrics"]:
            assert par["results"][arm][metric] == seq["results"][arm][metric]
    for arm in ("a", "b"):
        for seed in (0, 1):
            res = json.loads((tmp_path / "par" / f"{arm}-seed{seed}" / "results.json").read_text())
            assert res["status"] == "completed"


def test_jobs_needs_the_inline_backend() -> None:
    result = CliRunner().invoke(app, ["experiment", "fedavg-digits", "--jobs", "2",
                                      "--backend", "ray"])
    assert result.exit_code == 2
    assert "--jobs > 1 needs --backend inline" in result.output


def test_ray_check_refuses_an_unknown_arm(tmp_path: Path) -> None:
    result = runner.invoke(app, ["experiment", "fedavot-showcase", "--quick", "--ray-check", "nope",
                                 "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "drift/fedavot" in result.output and not (tmp_path / "summary.json").exists()


@pytest.mark.slow
def test_showcase_quick_with_ray_check(tmp_path: Path) -> None:
    # make run's command in quick mode: the inline experiment, its paired report, then the Ray
    # re-run of one arm, which must reproduce the in-process numbers exactly
    result = runner.invoke(app, ["experiment", "fedavot-showcase", "--quick", "--ray-check",
                                 "drift/fedavot", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "FedAVOT ahead on loss_p" in result.output
    assert "largest difference from the in-process run 0.00e+00" in result.output
    report = json.loads((tmp_path / "report.json").read_text())
    assert set(report) == {"drift", "mnist-5k"}
    assert report["drift"]["accuracy_p_gap"] is None
    assert len(report["mnist-5k"]["accuracy_p_gap"]) == 1
    ray = json.loads((tmp_path / "ray-check" / "results.json").read_text())
    assert ray["status"] == "completed" and ray["config"]["dataset"] == "synthetic-regression"


def _failing_runner(exc: Exception):  # noqa: ANN202 - a stand-in for make_runner
    def make(*args: object, **kwargs: object):  # noqa: ANN202
        def run(overrides: object, out_dir: object) -> None:
            raise exc
        return run
    return make


def test_a_failed_run_is_one_line_with_exit_1(monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare: the run itself fails (not its configuration)
    import fedot.cli

    monkeypatch.setattr(fedot.cli, "make_runner", _failing_runner(ValueError("boom\nsecond line")))
    # Execute
    result = runner.invoke(app, ["run", "fedavg", "--backend", "inline"])
    # Assert: exit 1, one line naming the command, the error and where the traceback is
    assert result.exit_code == 1
    lines = [x for x in result.output.splitlines() if x.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output
    assert lines[0].startswith("error: fedot run: run failed: ValueError: boom (")
    assert "--debug" in lines[0]
    assert "ValueError: boom" in fedot.cli.ERROR_LOG.read_text()  # the traceback was kept


def test_debug_shows_the_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    import fedot.cli

    monkeypatch.setattr(fedot.cli, "make_runner", _failing_runner(ValueError("boom")))
    result = runner.invoke(app, ["--debug", "run", "fedavg", "--backend", "inline"])
    assert isinstance(result.exception, ValueError)  # propagated: the caller sees the traceback


def test_a_config_error_during_a_command_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    import fedot.cli
    from fedot.config import ConfigError

    monkeypatch.setattr(fedot.cli, "make_runner", _failing_runner(ConfigError("bad key 'x'")))
    result = runner.invoke(app, ["compare", "fedavg", "fedavg", "--seeds", "1"])
    assert result.exit_code == 2
    assert "error: fedot compare: bad input: ConfigError: bad key 'x'" in result.output
