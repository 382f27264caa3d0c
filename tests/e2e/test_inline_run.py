"""End-to-end runs of the real ServerApp/ClientApp through the in-process InlineGrid."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from flwr.app import Context, Message, RecordDict

from fedot.config import ConfigError, load_run_config
from fedot.fl import keys
from fedot.fl.inline import InlineGrid, load_apps, run_inline
from fedot.fl.task import federated_data, global_model
from fedot.learning import evaluate

QUICK = {"rounds": 3, "clients": 4}


def _run(tmp: Path, **overrides: object) -> dict:
    run_inline({**QUICK, "out-dir": str(tmp), **overrides}, int(overrides.get("clients", 4)))
    return json.loads((tmp / "results.json").read_text())


def test_fedavg_inline_writes_results_and_beats_chance(tmp_path: Path) -> None:
    # Execute
    res = _run(tmp_path)
    # Assert: files
    for name in ("config.json", "results.json", "metrics.csv", "metrics.png",
                 "checkpoint.pt", "label_distribution.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    # Assert: schema
    assert res["scheme"] == "fedavg" and res["status"] == "completed"
    assert [e["round"] for e in res["rounds"]] == [0, 1, 2, 3]
    for entry in res["rounds"][1:]:
        assert {"round", "server", "train", "evaluate", "time_s", "aggregation"} <= set(entry)
        assert entry["train"]["accuracy"] > 0 and entry["train_rejected"] == []
        assert len(entry["clients"]) == 4
    assert res["final"] == res["rounds"][-1]["server"]
    # Assert: learning happened (10 classes → chance is 0.1)
    assert res["final"]["accuracy"] > 0.5
    assert res["final"]["accuracy"] > res["rounds"][0]["server"]["accuracy"] + 0.3
    # Assert: metrics.csv has one row per round
    assert len((tmp_path / "metrics.csv").read_text().strip().splitlines()) == 1 + 4


def test_checkpoint_holds_the_final_global_model(tmp_path: Path) -> None:
    # Prepare
    res = _run(tmp_path)
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    cfg = load_run_config({**QUICK, "out-dir": str(tmp_path)})
    dataset, _ = federated_data(cfg, cfg.clients)
    model = global_model(cfg, dataset)
    # Execute: evaluate the checkpointed arrays independently of the run
    model.load_state_dict(ckpt["arrays"])
    acc = evaluate(model, dataset.test.x, dataset.test.y).accuracy
    # Assert
    assert ckpt["round"] == 3
    assert acc == pytest.approx(res["final"]["accuracy"], abs=1e-12)


def test_same_seed_same_run_other_seed_other_run(tmp_path: Path) -> None:
    # Execute
    a = _run(tmp_path / "a", seed=7)
    b = _run(tmp_path / "b", seed=7)
    c = _run(tmp_path / "c", seed=8)
    # Assert
    server = [[e["server"] for e in r["rounds"]] for r in (a, b, c)]
    assert server[0] == server[1]
    assert server[0] != server[2]


class _Faulty:
    """Wraps the real ClientApp: partition 1 replies NaN weights, partition 2 raises."""

    def __init__(self, app: object) -> None:
        self.app = app

    def __call__(self, msg: Message, context: Context) -> Message:
        pid = context.node_config[keys.PARTITION_ID]
        if pid == 2 and msg.metadata.message_type == "train":
            raise RuntimeError("simulated client crash")
        out = self.app(msg, context)  # type: ignore[operator]
        if pid == 1 and msg.metadata.message_type == "train":
            arrays = out.content[keys.ARRAYS]
            name = next(iter(arrays))
            bad = arrays[name].numpy().copy()
            bad[...] = np.nan
            arrays[name] = type(arrays[name])(bad)
        return out


def test_bad_replies_are_set_aside_and_the_run_goes_on(tmp_path: Path) -> None:
    # Prepare
    server_app, client_app, defaults = load_apps()
    config = {**defaults, **QUICK, "out-dir": str(tmp_path)}
    grid = InlineGrid(_Faulty(client_app), config, 4)
    ctx = Context(run_id=1, node_id=0, node_config={}, state=RecordDict(), run_config=config)
    # Execute
    server_app(grid, ctx)
    res = json.loads((tmp_path / "results.json").read_text())
    # Assert: every round set aside exactly partitions 1 (NaN) and 2 (crash), with reasons
    for entry in res["rounds"][1:]:
        reasons = {r["partition_id"]: r["reason"] for r in entry["train_rejected"]}
        assert len(entry["train_rejected"]) == 2
        assert "non-finite" in reasons[1]
        assert "simulated client crash" in reasons[None]
        assert sorted(c["partition_id"] for c in entry["clients"]) == [0, 3]
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert all(torch.isfinite(t).all() for t in ckpt["arrays"].values() if t.is_floating_point())
    assert math.isfinite(res["final"]["loss"]) and res["final"]["accuracy"] > 0.3


def test_bad_config_fails_before_training(tmp_path: Path) -> None:
    # Execute
    with pytest.raises(ConfigError, match="'rounds'"):
        run_inline({"rounds": 0, "out-dir": str(tmp_path / "x")}, 2)
    # Assert: nothing was written
    assert not (tmp_path / "x").exists()


def test_too_few_nodes_times_out_with_a_clear_message(tmp_path: Path) -> None:
    with pytest.raises(TimeoutError, match="clients=5"):
        run_inline({**QUICK, "clients": 5, "wait-timeout": 0.5, "out-dir": str(tmp_path)}, 4)


@pytest.mark.parametrize(
    "overrides",
    [
        {"model.name": "cnn", "dataset": "digits"},
        {"model.name": "logreg", "dataset": "wine", "partition.kind": "iid"},
        {"model.name": "mlp", "dataset": "breast-cancer", "partition.kind": "pathological",
         "partition.classes-per-client": 1},
        {"model.name": "mlp", "dataset": "mnist1d", "partition.kind": "shard"},
        {"model.name": "linear", "dataset": "synthetic-regression", "partition.kind": "natural",
         "local.lr": 0.05},
    ],
    ids=lambda o: f"{o['model.name']}-{o['dataset']}",
)
def test_every_model_and_offline_dataset_runs(tmp_path: Path, overrides: dict) -> None:
    # Execute
    res = _run(tmp_path, rounds=2, clients=3, **overrides)
    # Assert: completed, finite, and the loss went down from the initial model
    losses = [e["server"]["loss"] for e in res["rounds"]]
    assert res["status"] == "completed"
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < losses[0]
    if overrides["dataset"] == "synthetic-regression":
        assert "accuracy" not in res["final"]
    else:
        assert 0.0 <= res["final"]["accuracy"] <= 1.0
