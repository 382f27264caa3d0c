"""Experiment tracking: each round's metrics also go to TensorBoard and/or MLflow.

:class:`Tracker` is driven by :class:`~fedot.fl.results.ResultsRecorder` on the server, once per
recorded round, with the same entry that goes into ``results.json``; ``results.json`` stays the
record, the trackers are views of it. Every finite scalar of the round is logged at step = round:

* ``server/<name>`` — the global model on the server's held-out set (round 0 included);
* ``train/<name>`` and ``evaluate/<name>`` — the clients' weighted metrics;
* ``time/round_s`` and, where recorded, ``time/aggregation_s``.

Backends (the run-config key ``tracking``, comma-separated):

``tensorboard``
    Event files in ``<run dir>/tensorboard`` (``torch.utils.tensorboard.SummaryWriter``) and the
    run config as a text summary; view with ``tensorboard --logdir <run dir or its parent>``.
``mlflow``
    One MLflow run per fedot run (name = the run directory's name) in experiment
    ``tracking-experiment``, with the flattened run config as parameters and the run's status at
    the end. The store is ``tracking-uri``, or by default an SQLite file ``<run dir>/mlflow.db``
    (MLflow 3 refuses its plain file store); view with
    ``mlflow ui --backend-store-uri sqlite:///<run dir>/mlflow.db``. A resumed run continues the same
    MLflow run (its id is kept in ``results.json`` under ``tracking``).

Non-finite values are not logged (``results.json`` writes them as ``null``).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

__all__ = ["MLflowTracker", "TensorBoardTracker", "Tracker", "round_scalars"]

#: Folder of the TensorBoard event files inside the run directory.
TENSORBOARD_DIR = "tensorboard"
#: Default MLflow store inside the run directory.
MLFLOW_DB = "mlflow.db"
#: MLflow's limits: parameter values are cut to this length, and a batch holds this many items.
_MLFLOW_PARAM_LEN = 6000
_MLFLOW_BATCH = 100


def round_scalars(entry: Mapping[str, Any]) -> dict[str, float]:
    """Return the finite scalars of one ``results.json`` round entry, keyed by tracking tag.

    Parameters
    ----------
    entry : Mapping[str, Any]
        A round of ``results.json``: ``server``, ``train``, ``evaluate`` metric dicts, ``time_s``
        and optionally ``aggregation.time_s``.

    Returns
    -------
    dict[str, float]
        ``{"server/accuracy": ..., "train/loss": ..., "time/round_s": ..., ...}``; lists, strings,
        booleans and non-finite values are left out.
    """
    out: dict[str, float] = {}
    for section in ("server", "train", "evaluate"):
        for name, value in entry.get(section, {}).items():
            if _finite_number(value):
                out[f"{section}/{name}"] = float(value)
    if _finite_number(entry.get("time_s")):
        out["time/round_s"] = float(entry["time_s"])
    aggregation = entry.get("aggregation")
    if isinstance(aggregation, Mapping) and _finite_number(aggregation.get("time_s")):
        out["time/aggregation_s"] = float(aggregation["time_s"])
    return out


def _finite_number(value: Any) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(float(value)))


def _flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = str(value)
    return flat


class _Backend(Protocol):
    def log(self, step: int, scalars: Mapping[str, float]) -> None: ...

    def close(self, status: str) -> None: ...


class TensorBoardTracker:
    """Scalars as TensorBoard event files in ``<out_dir>/tensorboard``.

    Parameters
    ----------
    out_dir : Path
        The run directory.
    config : Mapping[str, Any]
        The run config, written once as the text summary ``config`` (a new run only).
    resumed : bool
        True when the run continues a checkpoint (the config summary is already there).
    """

    def __init__(self, out_dir: Path, config: Mapping[str, Any], *, resumed: bool = False) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.log_dir = Path(out_dir) / TENSORBOARD_DIR
        self._writer = SummaryWriter(log_dir=str(self.log_dir))
        if not resumed:
            self._writer.add_text("config", "```\n" + json.dumps(dict(config), indent=2) + "\n```")

    def log(self, step: int, scalars: Mapping[str, float]) -> None:
        """Add every scalar at ``step`` and flush (a reader sees the round at once)."""
        for tag, value in scalars.items():
            self._writer.add_scalar(tag, value, global_step=step)
        self._writer.flush()

    def close(self, status: str) -> None:
        """Close the event file."""
        self._writer.close()


class MLflowTracker:
    """Scalars, parameters and status in one MLflow run.

    Parameters
    ----------
    out_dir : Path
        The run directory (its name is the MLflow run name; the default store lies in it).
    config : Mapping[str, Any]
        The run config, logged flattened (``local.lr``, ...) as the run's parameters.
    uri : str
        Tracking URI; empty: ``sqlite:///<out_dir>/mlflow.db``.
    experiment : str
        MLflow experiment name (created when missing).
    run_id : str, optional
        An existing MLflow run to continue (a resumed fedot run); no parameters are logged again.
    """

    def __init__(self, out_dir: Path, config: Mapping[str, Any], *, uri: str, experiment: str,
                 run_id: str | None = None) -> None:
        from mlflow.tracking import MlflowClient

        self.uri = uri or f"sqlite:///{(Path(out_dir) / MLFLOW_DB).resolve()}"
        self._client = MlflowClient(tracking_uri=self.uri)
        if run_id is not None:
            self.run_id = run_id
            self._client.update_run(run_id, status="RUNNING")
            return
        found = self._client.get_experiment_by_name(experiment)
        experiment_id = (found.experiment_id if found is not None
                         else self._client.create_experiment(experiment))
        run = self._client.create_run(experiment_id, run_name=Path(out_dir).name,
                                      tags={"fedot.run_dir": str(Path(out_dir).resolve())})
        self.run_id = run.info.run_id
        from mlflow.entities import Param

        params = [Param(k, v[:_MLFLOW_PARAM_LEN]) for k, v in _flatten(config).items()]
        for i in range(0, len(params), _MLFLOW_BATCH):
            self._client.log_batch(self.run_id, params=params[i:i + _MLFLOW_BATCH])

    def log(self, step: int, scalars: Mapping[str, float]) -> None:
        """Log every scalar at ``step`` in one batch."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(tag, value, now, step) for tag, value in scalars.items()]
        for i in range(0, len(metrics), _MLFLOW_BATCH):
            self._client.log_batch(self.run_id, metrics=metrics[i:i + _MLFLOW_BATCH])

    def close(self, status: str) -> None:
        """End the MLflow run: FINISHED for a completed fedot run, FAILED otherwise."""
        self._client.set_terminated(self.run_id,
                                    status="FINISHED" if status == "completed" else "FAILED")


class Tracker:
    """The tracking backends of one run (none, TensorBoard, MLflow or both).

    Parameters
    ----------
    backends : str
        The validated ``tracking`` key: ``"none"`` or comma-separated backend names.
    out_dir : Path
        The run directory.
    config : Mapping[str, Any]
        The run config (logged once).
    uri : str
        MLflow tracking URI (empty: the run directory's SQLite store).
    experiment : str
        MLflow experiment name.
    resume : Mapping[str, Any], optional
        ``results.json``'s ``tracking`` entry of the run being resumed.
    """

    def __init__(self, backends: str, out_dir: Path, config: Mapping[str, Any], *, uri: str = "",
                 experiment: str = "fedot", resume: Mapping[str, Any] | None = None) -> None:
        names = [] if backends == "none" else backends.split(",")
        self._backends: dict[str, _Backend] = {}
        #: What ``results.json`` records under ``tracking`` (where to find the logged values).
        self.info: dict[str, Any] = {}
        resume = resume or {}
        if "tensorboard" in names:
            tb = TensorBoardTracker(out_dir, config, resumed=bool(resume))
            self._backends["tensorboard"] = tb
            self.info["tensorboard_dir"] = str(tb.log_dir)
        if "mlflow" in names:
            ml = MLflowTracker(out_dir, config, uri=uri, experiment=experiment,
                               run_id=resume.get("mlflow_run_id"))
            self._backends["mlflow"] = ml
            self.info.update(mlflow_uri=ml.uri, mlflow_run_id=ml.run_id,
                             mlflow_experiment=experiment)

    def __bool__(self) -> bool:
        return bool(self._backends)

    def log_round(self, entry: Mapping[str, Any]) -> None:
        """Log one ``results.json`` round entry (its finite scalars, step = its round)."""
        scalars = round_scalars(entry)
        for backend in self._backends.values():
            backend.log(int(entry["round"]), scalars)

    def close(self, status: str) -> None:
        """Close every backend with the run's final status."""
        for backend in self._backends.values():
            backend.close(status)
