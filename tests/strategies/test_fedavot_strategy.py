"""FedAVOT and its baselines at the strategy level (no Flower round loop) and end to end inline."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from fedot.config import load_run_config
from fedot.fl.inline import run_inline
from fedot.ot import MaskedSinkhornWarning
from strategies import FedAvgFull, FedAvgK, FedAvgSubset, FedAVOT


def _strategy(cls, sizes, **overrides):
    cfg = load_run_config({"scheme": cls.scheme, "clients": len(sizes),
                           "participation.importance": "data-size", **overrides})
    strategy = cls.from_config(cfg)
    strategy.configure_clients(np.asarray(sizes))
    return strategy


def _expected_aggregate(strategy, thetas):
    """E_j[Σ_i coef_ij θ_i] by exact enumeration of the solved support."""
    dist = strategy.distribution
    total = np.zeros(thetas.shape[1])
    for members, q in zip(dist.subsets, dist.probs, strict=True):
        coef, _ = strategy.coefficients(0, members.tolist())
        total += q * (coef @ thetas[members])
    return total


def test_fedavot_is_unbiased_in_model_space() -> None:
    # Prepare: 8 clients, all pairs uniformly, data sizes making p feasible (max p < π = 1/4)
    sizes = np.array([5, 9, 12, 7, 10, 6, 11, 8])
    strategy = _strategy(FedAVOT, sizes, **{"participation.k": 2})
    thetas = np.random.default_rng(0).standard_normal((8, 6))
    # Execute
    expected = _expected_aggregate(strategy, thetas)
    # Assert: the mean aggregate is the p-weighted full-participation aggregate
    p = sizes / sizes.sum()
    assert strategy.log.setup["fedavot"]["feasible"] is True
    np.testing.assert_allclose(expected, p @ thetas, atol=1e-10)


def test_subset_fedavg_is_biased_on_the_same_instance() -> None:
    # Prepare
    sizes = np.array([5, 9, 12, 7, 10, 6, 11, 8])
    strategy = _strategy(FedAvgSubset, sizes, **{"participation.k": 2})
    thetas = np.random.default_rng(0).standard_normal((8, 6))
    # Execute
    expected = _expected_aggregate(strategy, thetas)
    # Assert
    assert np.abs(expected - (sizes / sizes.sum()) @ thetas).max() > 1e-3


def test_fedavot_columns_sum_to_one_and_fallback_off_support() -> None:
    # Prepare: restricted availability: clients 0-3 and 4-7 are never available together
    sizes = np.arange(1, 9)  # group {4..7} holds 26/36 of p but is available half the time
    with pytest.warns(MaskedSinkhornWarning):
        strategy = _strategy(FedAVOT, sizes, **{"participation.availability": "restricted",
                                                "participation.groups": 2, "participation.k": 2})
    assert strategy.log.setup["fedavot"]["feasible"] is False
    # Execute
    coefs = [strategy.coefficients(0, m.tolist())[0] for m in strategy.distribution.subsets]
    mixed, diag = strategy.coefficients(0, [0, 7])  # never sampled together
    # Assert
    for c in coefs:
        assert c.sum() == pytest.approx(1.0) and (c >= 0).all()
    assert diag["in_support"] is False
    np.testing.assert_allclose(mixed, np.array([1, 8]) / 9)


def test_fedavg_k_uses_unnormalised_n_over_k_weights() -> None:
    strategy = _strategy(FedAvgK, np.array([1, 1, 2, 4]), **{"participation.k": 2})
    coef, diag = strategy.coefficients(0, [1, 3])
    np.testing.assert_allclose(coef, 4 / 2 * np.array([1, 4]) / 8)
    assert diag["coefficient_sum"] == pytest.approx(1.25)


def test_sampling_is_seeded() -> None:
    a = _strategy(FedAVOT, np.arange(1, 11), **{"participation.k": 3})
    b = _strategy(FedAVOT, np.arange(1, 11), **{"participation.k": 3})
    c = _strategy(FedAVOT, np.arange(1, 11), **{"participation.k": 3, "seed": 1})
    draws = [[s.draw(r) for r in range(20)] for s in (a, b, c)]
    assert draws[0] == draws[1] and draws[0] != draws[2]
    assert all(len(d) == 3 for d in draws[0])


def _gradient_descent(strategy, w, rounds: int, seed: int) -> np.ndarray:
    """One full gradient step per round on f_i(θ) = ½‖θ − w_i‖², aggregated by the strategy."""
    theta = np.zeros(w.shape[1])
    for t in range(rounds):
        subset = strategy.draw(t)
        eta = 1.0 / (t + 20)
        local = theta - eta * (theta - w[subset])
        coef, _ = strategy.coefficients(t, subset)
        theta = coef @ local
    return theta


@pytest.mark.parametrize("seed", [0, 1])
def test_fedavot_converges_to_the_p_optimum_while_fedavg_k_does_not(seed: int) -> None:
    # Prepare: non-IID optima w_i; the p-weighted objective's minimiser is Σ p_i w_i (closed form)
    sizes = np.array([5, 9, 12, 7, 10, 6, 11, 8])
    w = np.random.default_rng(seed).standard_normal((8, 3)) * 3 + 5
    target = (sizes / sizes.sum()) @ w
    over = {"participation.k": 2, "seed": seed}
    # Execute
    fedavot = _gradient_descent(_strategy(FedAVOT, sizes, **over), w, 20000, seed)
    fedavg_k = _gradient_descent(_strategy(FedAvgK, sizes, **over), w, 20000, seed)
    subset = _strategy(FedAvgSubset, sizes, **over)
    surrogate_opt = _expected_aggregate(subset, w)  # fixed point of the biased recursion
    # Assert
    scale = np.linalg.norm(target)
    assert np.linalg.norm(fedavot - target) < 0.05 * scale
    assert np.linalg.norm(fedavg_k - target) > 0.2 * scale
    assert np.linalg.norm(surrogate_opt - target) > 0.01 * scale


def test_fedavg_full_trains_everyone(tmp_path: Path) -> None:
    # Execute
    run_inline({"scheme": "fedavg-full", "clients": 4, "rounds": 2, "out-dir": str(tmp_path),
                "dataset": "synthetic-regression", "model.name": "linear",
                "partition.kind": "natural"}, 4)
    res = json.loads((tmp_path / "results.json").read_text())
    # Assert
    for entry in res["rounds"][1:]:
        assert entry["aggregation"]["subset"] == [0, 1, 2, 3]
        p = np.asarray(res["setup"]["importance"])
        np.testing.assert_allclose(entry["aggregation"]["coefficients"], p)
    assert isinstance(FedAvgFull.from_config(load_run_config({"scheme": "fedavg-full"})),
                      FedAvgFull)


@pytest.mark.parametrize("availability", ["k-of-n", "with-replacement", "bernoulli", "markov",
                                          "restricted", "observed"])
@pytest.mark.filterwarnings("ignore::fedot.ot.MaskedSinkhornWarning")  # restricted is infeasible
def test_fedavot_inline_end_to_end(tmp_path: Path, availability: str) -> None:
    # Execute
    run_inline({"scheme": "fedavot", "clients": 6, "rounds": 4, "out-dir": str(tmp_path),
                "dataset": "synthetic-regression", "model.name": "linear",
                "partition.kind": "natural", "participation.availability": availability,
                "participation.importance": "power", "participation.evaluate-split": "train",
                "participation.mc-samples": 5000, "local.lr": 0.05}, 6)
    res = json.loads((tmp_path / "results.json").read_text())
    # Assert: each round trained exactly the available subset with convex FedAVOT weights
    assert res["status"] == "completed"
    for entry in res["rounds"][1:]:
        agg = entry["aggregation"]
        assert agg["subset"] == entry["available"]
        assert sum(agg["coefficients"]) == pytest.approx(1.0)
        assert min(agg["coefficients"]) >= 0
        assert np.isfinite(entry["evaluate"]["loss_p"])
    if availability == "observed":
        assert res["rounds"][-1]["aggregation"]["n_iter"] >= 0
    else:
        assert "feasible" in res["setup"]["fedavot"]
    if availability == "restricted":
        # group-level infeasible: every user alone fits (singleton nu = 0), a group does not;
        # setup.fedavot leads with max-flow's unmatched mass and names the worst Hall set
        setup = res["setup"]["fedavot"]
        assert list(setup)[:3] == ["unmatched_mass", "hall_violator", "hall_deficiency"]
        assert setup["infeasible_mass"] == 0.0 and setup["unmatched_mass"] > 0.05
        assert len(setup["hall_violator"]) >= 2
        assert setup["hall_deficiency"] == pytest.approx(setup["unmatched_mass"], abs=1e-9)


def test_min_variance_plan_is_unbiased_in_model_space_and_no_noisier() -> None:
    sizes = np.array([5, 9, 12, 7, 10, 6, 11, 8])
    thetas = np.random.default_rng(1).standard_normal((8, 6))
    mv = _strategy(FedAVOT, sizes, **{"participation.k": 3, "fedavot.plan": "min-variance"})
    ipfp = _strategy(FedAVOT, sizes, **{"participation.k": 3})
    p = sizes / sizes.sum()
    np.testing.assert_allclose(_expected_aggregate(mv, thetas), p @ thetas, atol=1e-9)
    mv_setup, ipfp_setup = mv.log.setup["fedavot"], ipfp.log.setup["fedavot"]
    assert (mv_setup["plan"], ipfp_setup["plan"]) == ("min-variance", "ipfp")
    assert mv_setup["second_moment"] <= ipfp_setup["second_moment"] + 1e-12


def test_fedavot_min_variance_on_mnist5k_inline(tmp_path: Path) -> None:
    # `fedot run fedavot --set dataset=mnist-5k --backend inline`, with the min-variance plan
    run_inline({"scheme": "fedavot", "clients": 6, "rounds": 2, "out-dir": str(tmp_path),
                "dataset": "mnist-5k", "model.name": "logreg", "participation.k": 3,
                "participation.importance": "uniform", "fedavot.plan": "min-variance",
                "checkpoint": False}, 6)
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["status"] == "completed" and res["setup"]["fedavot"]["plan"] == "min-variance"
    assert res["setup"]["fedavot"]["converged"]
    last = res["rounds"][-1]
    assert 0.0 <= last["evaluate"]["accuracy_p"] <= 1.0 and np.isfinite(last["evaluate"]["loss_p"])
    assert res["final"]["accuracy"] > 0.3  # 2 rounds of logistic regression on real MNIST


def test_enumerated_support_matches_all_pairs() -> None:
    strategy = _strategy(FedAVOT, np.ones(5, dtype=int), **{"participation.k": 2})
    got = {tuple(m.tolist()) for m in strategy.distribution.subsets}
    assert got == set(itertools.combinations(range(5), 2))


def test_node_lost_mid_round_fedavot_reweights_the_subset_that_replied(tmp_path: Path) -> None:
    from flwr.app import Context, RecordDict

    from fedot.fl import keys
    from fedot.fl.inline import InlineGrid, load_apps

    class LossyGrid(InlineGrid):
        """Partition 0's node stops answering train messages from round 2 on (no reply at all)."""

        def send_and_receive(self, messages, *, timeout=None):  # type: ignore[no-untyped-def]
            kept = []
            for msg in messages:
                ctx = self.contexts.get(msg.metadata.dst_node_id)
                cfg = msg.content.config_records.get(keys.CONFIG)
                late = cfg is not None and int(cfg.get(keys.SERVER_ROUND, 0)) >= 2
                if late and msg.metadata.message_type == "train" and ctx is not None \
                        and ctx.node_config[keys.PARTITION_ID] == 0:
                    continue
                kept.append(msg)
            return super().send_and_receive(kept, timeout=timeout)

    # Prepare: every client is available every round (k = N), so partition 0 is always asked
    server_app, client_app, defaults = load_apps()
    config = {**defaults, "scheme": "fedavot", "clients": 3, "rounds": 3,
              "participation.k": 3, "dataset": "synthetic-regression", "model.name": "linear",
              "partition.kind": "natural", "out-dir": str(tmp_path)}
    grid = LossyGrid(client_app, config, 3)
    # Execute
    server_app(grid, Context(run_id=1, node_id=0, node_config={}, state=RecordDict(),
                             run_config=config))
    res = json.loads((tmp_path / "results.json").read_text())
    # Assert: round 1 used the solved column; later rounds aggregate {1, 2} with p renormalised
    p = np.asarray(res["setup"]["importance"])
    assert res["rounds"][1]["aggregation"]["subset"] == [0, 1, 2]
    for entry in res["rounds"][2:]:
        agg = entry["aggregation"]
        assert entry["available"] == [0, 1, 2] and agg["subset"] == [1, 2]
        assert agg["in_support"] is False
        np.testing.assert_allclose(agg["coefficients"], p[[1, 2]] / p[[1, 2]].sum())
    assert res["status"] == "completed"
