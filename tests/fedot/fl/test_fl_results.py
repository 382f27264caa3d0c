"""The results recorder: incremental ``results.json`` and the background writer."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord

from fedot.fl import results as R


class _Log:
    setup: dict[str, Any] = {}

    def pop(self, server_round: int) -> dict[str, Any]:
        return {"train_metrics": {"loss": 1.0 / (server_round + 1)}, "train_missing": []}


class _Strategy:
    log = _Log()

    def hyperparameters(self) -> dict[str, Any]:
        return {"scheme": "fake"}

    def state_dict(self) -> dict[str, Any]:
        return {}


def _recorder(tmp_path: Path, metrics: list[dict[str, float]]) -> R.ResultsRecorder:
    return R.ResultsRecorder(
        tmp_path, scheme="fake", config={"rounds": len(metrics) - 1}, strategy=_Strategy(),  # type: ignore[arg-type]
        server_eval=lambda r, arrays: metrics[r], checkpoint=True,
    )


def test_incremental_results_json_equals_a_full_dump(tmp_path: Path) -> None:
    metrics = [{"accuracy": 0.1}, {"accuracy": math.nan}, {"accuracy": 0.5}, {"accuracy": 0.7}]
    rec = _recorder(tmp_path, metrics)
    arrays = ArrayRecord({"w": Array(np.ones(3, dtype=np.float32))})
    for server_round in range(len(metrics)):
        rec.evaluate_fn(server_round, arrays)
        # the cached encoding of finished rounds must equal encoding everything again
        assert rec._results_json() == R._dump(rec.results)
    rec.finish()
    written = json.loads((tmp_path / R.RESULTS_FILE).read_text())
    assert [e["round"] for e in written["rounds"]] == [0, 1, 2, 3]
    assert written["rounds"][1]["server"]["accuracy"] is None  # NaN written as null
    assert written["status"] == "completed"
    assert R.read_checkpoint(tmp_path)["round"] == 3  # finish waited for the writer


def test_write_errors_are_raised_not_lost(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rec = _recorder(tmp_path, [{"accuracy": 0.1}, {"accuracy": 0.2}, {"accuracy": 0.3}])
    arrays = ArrayRecord({"w": Array(np.ones(3, dtype=np.float32))})

    def broken(path: Path, data: bytes) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(R, "atomic_write", broken)
    with pytest.raises(OSError, match="disk full"):  # at a later submit, or at the latest on flush
        rec.evaluate_fn(0, arrays)
        rec.evaluate_fn(1, arrays)
        rec._writer.flush()


def test_finish_stops_the_writer_thread_and_later_writes_still_land(tmp_path: Path) -> None:
    rec = _recorder(tmp_path, [{"accuracy": 0.1}, {"accuracy": 0.2}])
    arrays = ArrayRecord({"w": Array(np.ones(3, dtype=np.float32))})
    rec.evaluate_fn(0, arrays)
    rec.evaluate_fn(1, arrays)
    rec.finish()
    with pytest.raises(RuntimeError, match="shutdown"):  # the writer's pool is shut down
        rec._writer._pool.submit(print)
    rec.finish("failed")  # a second call writes synchronously
    assert json.loads((tmp_path / R.RESULTS_FILE).read_text())["status"] == "failed"


def test_nothing_queued_after_a_failed_write_lands(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # Arrange: results.json fails once the checkpoint is queued behind it
    import threading

    original = R.atomic_write
    queued = threading.Event()

    def failing(path: Path, data: bytes) -> None:
        if path.name == R.RESULTS_FILE:
            assert queued.wait(30)
            raise OSError("disk full")
        original(path, data)

    monkeypatch.setattr(R, "atomic_write", failing)
    writer = R._FileWriter()
    # Execute
    writer.submit(tmp_path / R.RESULTS_FILE, b"{}")
    writer.submit(tmp_path / R.CHECKPOINT_FILE, lambda: b"state")
    queued.set()
    with pytest.raises(OSError, match="disk full"):
        writer.flush()
    # Assert: the checkpoint behind the failed write was not written
    assert not (tmp_path / R.CHECKPOINT_FILE).exists()
    writer.close()
