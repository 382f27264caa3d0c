"""Experiment tracking: what TensorBoard and MLflow hold equals results.json, round by round.

Inline runs through the project's ServerApp and ClientApps (the same recorder as Ray and
deployment); the logged values are read back with each tool's own reader (TensorBoard's
``EventAccumulator``, MLflow's ``MlflowClient``) and compared with ``results.json``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from fedot.config import ConfigError, load_run_config
from fedot.fl.inline import run_inline
from fedot.fl.results import RESULTS_FILE, ResultsRecorder
from fedot.fl.tracking import round_scalars

mlflow = pytest.importorskip("mlflow", reason="the mlflow extra is not installed")
from mlflow.tracking import MlflowClient  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import (  # noqa: E402
    EventAccumulator,
)

RUN = {"scheme": "fedavg", "rounds": 3, "clients": 3, "local.epochs": 1}


def _expected(results: dict[str, Any]) -> dict[str, dict[int, float]]:
    """Per tag, step → value, computed from results.json independently of the tracker."""
    out: dict[str, dict[int, float]] = {}
    for entry in results["rounds"]:
        for section in ("server", "train", "evaluate"):
            for name, value in entry[section].items():
                if isinstance(value, float | int) and value is not None and math.isfinite(value):
                    out.setdefault(f"{section}/{name}", {})[entry["round"]] = float(value)
        out.setdefault("time/round_s", {})[entry["round"]] = float(entry["time_s"])
    return out


def _tensorboard(log_dir: Path) -> dict[str, dict[int, float]]:
    acc = EventAccumulator(str(log_dir))
    acc.Reload()
    return {tag: {e.step: e.value for e in acc.Scalars(tag)} for tag in acc.Tags()["scalars"]}


def _mlflow(uri: str, run_id: str, tags: list[str]) -> dict[str, dict[int, float]]:
    client = MlflowClient(tracking_uri=uri)
    return {tag: {m.step: m.value for m in client.get_metric_history(run_id, tag)} for tag in tags}


def _assert_same(logged: dict[str, dict[int, float]], expected: dict[str, dict[int, float]],
                 rel: float) -> None:
    for tag, values in expected.items():
        assert set(logged[tag]) == set(values), tag
        for step, value in values.items():
            assert logged[tag][step] == pytest.approx(value, rel=rel, abs=1e-7), (tag, step)


def test_tensorboard_and_mlflow_hold_the_results_json_values(tmp_path: Path) -> None:
    # Act
    run_inline({**RUN, "out-dir": str(tmp_path), "tracking": "tensorboard,mlflow"}, 3)

    # Assert: every finite metric of every round (0..3) in both stores, TensorBoard in float32
    results = json.loads((tmp_path / RESULTS_FILE).read_text())
    expected = _expected(results)
    assert set(expected["server/accuracy"]) == {0, 1, 2, 3}
    assert "train/loss" in expected
    info = results["tracking"]
    assert Path(info["tensorboard_dir"]) == tmp_path / "tensorboard"
    _assert_same(_tensorboard(tmp_path / "tensorboard"), expected, rel=1e-6)
    assert info["mlflow_uri"] == f"sqlite:///{(tmp_path / 'mlflow.db').resolve()}"
    _assert_same(_mlflow(info["mlflow_uri"], info["mlflow_run_id"], list(expected)), expected,
                 rel=1e-12)
    run = MlflowClient(tracking_uri=info["mlflow_uri"]).get_run(info["mlflow_run_id"])
    assert run.info.status == "FINISHED"
    assert run.info.run_name == tmp_path.name
    assert run.data.params["local.lr"] == str(results["config"]["local"]["lr"])
    assert run.data.params["scheme"] == "fedavg"


def test_mlflow_tracking_uri_and_experiment_are_used(tmp_path: Path) -> None:
    # Arrange: one shared store outside the run directories, two runs in it
    uri = f"sqlite:///{tmp_path / 'shared.db'}"
    for name in ("a", "b"):
        run_inline({**RUN, "rounds": 1, "out-dir": str(tmp_path / name), "tracking": "mlflow",
                    "tracking-uri": uri, "tracking-experiment": "sweep"}, 3)

    # Assert: both runs in experiment "sweep" of that store, none in the run directories
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("sweep")
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.info.run_name for r in runs) == ["a", "b"]
    assert not (tmp_path / "a" / "mlflow.db").exists()
    for run in runs:
        final = json.loads((tmp_path / run.info.run_name / RESULTS_FILE).read_text())["final"]
        assert run.data.metrics["server/accuracy"] == pytest.approx(final["accuracy"], rel=1e-12)


class Killed(BaseException):
    """Stands for the process dying."""


def test_resumed_run_continues_the_same_mlflow_run(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # Arrange: killed right after round 1's checkpoint
    original = ResultsRecorder._save_checkpoint

    def save(self: ResultsRecorder, server_round: int, arrays: Any) -> None:
        original(self, server_round, arrays)
        if server_round == 1:
            raise Killed

    config = {**RUN, "tracking": "mlflow,tensorboard"}
    with monkeypatch.context() as patch:
        patch.setattr(ResultsRecorder, "_save_checkpoint", save)
        with pytest.raises(Killed):
            run_inline({**config, "out-dir": str(tmp_path)}, 3)
    first = json.loads((tmp_path / RESULTS_FILE).read_text())["tracking"]

    # Act
    run_inline({**config, "resume": str(tmp_path)}, 3)

    # Assert: one MLflow run with rounds 0..3 once each, equal to results.json; TensorBoard too
    results = json.loads((tmp_path / RESULTS_FILE).read_text())
    assert results["tracking"]["mlflow_run_id"] == first["mlflow_run_id"]
    client = MlflowClient(tracking_uri=first["mlflow_uri"])
    assert len(client.search_runs([client.get_experiment_by_name("fedot").experiment_id])) == 1
    assert client.get_run(first["mlflow_run_id"]).info.status == "FINISHED"
    expected = _expected(results)
    _assert_same(_mlflow(first["mlflow_uri"], first["mlflow_run_id"], list(expected)), expected,
                 rel=1e-12)
    _assert_same(_tensorboard(tmp_path / "tensorboard"), expected, rel=1e-6)


def test_round_scalars_keeps_finite_numbers_only() -> None:
    entry = {"round": 2, "time_s": 0.5, "aggregation": {"time_s": 0.01},
             "server": {"accuracy": 0.75, "loss": float("nan")},
             "train": {"loss": 1, "flag": True, "per-client": [0.1, 0.2]},
             "evaluate": {"accuracy": float("inf")}}
    assert round_scalars(entry) == {"server/accuracy": 0.75, "train/loss": 1.0,
                                    "time/round_s": 0.5, "time/aggregation_s": 0.01}


@pytest.mark.parametrize("value", ["tensorbord", "tensorboard,tensorboard", "", "none,mlflow"])
def test_bad_tracking_value_names_the_key(value: str) -> None:
    with pytest.raises(ConfigError, match="tracking"):
        load_run_config({"tracking": value})


def test_tracking_values_normalised() -> None:
    assert load_run_config({"tracking": " mlflow , tensorboard"}).tracking == "mlflow,tensorboard"
    assert load_run_config({}).tracking == "none"
