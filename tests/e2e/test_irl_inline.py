"""Federated MaxEnt IRL end to end through the real ServerApp/ClientApp (in-process grid)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fedot.fl.inline import run_inline

SMALL = {"clients": 4, "rounds": 2, "irl.grid-size": 8, "irl.demos": 30, "irl.iterations": 60}


def _run(tmp: Path, scheme: str, **overrides: object) -> dict:
    config = {**SMALL, "scheme": scheme, "out-dir": str(tmp), **overrides}
    run_inline(config, int(config["clients"]))
    return json.loads((tmp / "results.json").read_text())


@pytest.mark.parametrize("scheme", ["irl-barycenter", "irl-average"])
def test_irl_scheme_runs_and_records_metrics(tmp_path: Path, scheme: str) -> None:
    # Execute
    res = _run(tmp_path, scheme)
    # Assert: files, rounds, metrics and client evaluation on held-out demonstrations
    assert res["status"] == "completed" and [e["round"] for e in res["rounds"]] == [0, 1, 2]
    for name in ("results.json", "metrics.csv", "metrics.png", "rewards.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    final = res["final"]
    assert {"pearson", "spearman", "epic", "evd", "success"} <= set(final)
    assert final["pearson"] > (0.5 if scheme == "irl-barycenter" else 0.0)
    assert final["evd"] >= -1e-9
    assert res["rounds"][0]["server"]["pearson"] == 0.0  # the initial reward is all zeros
    last = res["rounds"][-1]
    assert last["evaluate"]["loss"] > 0
    assert [c["weight"] for c in last["clients"]] == [30.0] * 4
    assert res["environment"]["states"] == 64 and res["environment"]["sources"] == 4
    if scheme == "irl-barycenter":
        bary = last["aggregation"]["barycenter"]
        assert bary["method"] == "convolutional" and bary["converged"]


def test_barycenter_beats_averaging_under_goal_shift(tmp_path: Path) -> None:
    # Execute: same clients, same demonstrations, one-shot; only the fusion differs
    bary = _run(tmp_path / "b", "irl-barycenter", rounds=1, **{"irl.strength": 2.5})["final"]
    avg = _run(tmp_path / "a", "irl-average", rounds=1, **{"irl.strength": 2.5})["final"]
    # Assert
    assert bary["pearson"] > avg["pearson"] + 0.2
    assert bary["epic"] < avg["epic"]
    assert bary["evd"] < avg["evd"]


def test_without_heterogeneity_both_fusions_agree(tmp_path: Path) -> None:
    # Execute
    over = {"rounds": 1, "irl.heterogeneity": "none"}
    bary = _run(tmp_path / "b", "irl-barycenter", **over)["final"]
    avg = _run(tmp_path / "a", "irl-average", **over)["final"]
    # Assert
    assert abs(bary["pearson"] - avg["pearson"]) < 0.1
    assert bary["success"] > 0.9 and avg["success"] > 0.9


def test_centralised_single_client_holds_every_source(tmp_path: Path) -> None:
    # Execute: one client with all four sources = centralised MaxEnt IRL on pooled demos
    res = _run(tmp_path, "irl-average", clients=1, rounds=1, **{"irl.sources": 4})
    # Assert
    assert res["rounds"][-1]["clients"][0]["weight"] == 120.0
    assert res["environment"]["sources"] == 4


@pytest.mark.parametrize("kind", ["nan", "inf", "shape"])
def test_bad_reward_reply_is_quarantined_before_the_barycenter(tmp_path: Path, kind: str) -> None:
    # Execute
    res = _run(tmp_path, "irl-barycenter", rounds=1,
               **{"fault.kind": kind, "fault.partitions": "2"})
    # Assert: the round used the other three clients and the global reward is finite
    last = res["rounds"][-1]
    assert res["status"] == "completed"
    assert [r["partition_id"] for r in last["train_rejected"]] == [2]
    assert sorted(c["partition_id"] for c in last["clients"]) == [0, 1, 3]
    assert np.isfinite(res["final"]["pearson"]) and res["final"]["pearson"] > 0.3


def test_uniform_weights_and_multi_round_prior(tmp_path: Path) -> None:
    # Execute
    res = _run(tmp_path, "irl-barycenter", rounds=2, **{
        "irl.weights": "uniform", "irl.heterogeneity": "demos", "irl.prior-weight": 0.5})
    # Assert: unequal demo counts are recorded as weights, but the fusion used uniform ones
    last = res["rounds"][-1]
    assert len({c["weight"] for c in last["clients"]}) == 4
    assert last["aggregation"]["weights"] == pytest.approx([0.25] * 4)
