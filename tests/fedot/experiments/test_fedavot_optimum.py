"""The true optimum F_p* used to report FedAVOT's gaps: checked against independent solvers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fedot.config import load_run_config
from fedot.experiments.fedavot import _client_train_sets, optimum_of_fp
from fedot.fl.inline import load_apps


def _cfg(**over: object):  # type: ignore[no-untyped-def]
    _, _, defaults = load_apps()
    return load_run_config({**defaults, "scheme": "fedavot", "clients": 8,
                            "data.local-test-fraction": 0.2, **over})


def _fp(sets, p, loss) -> float:  # type: ignore[no-untyped-def]
    return float(sum(pi * loss(x, y) for pi, (x, y) in zip(p, sets, strict=True)) / p.sum())


def test_linreg_optimum_matches_weighted_lstsq_and_is_a_minimum() -> None:
    # Prepare
    cfg = _cfg(dataset="synthetic-regression", **{"model.name": "linear",
                                                   "partition.kind": "natural"})
    p = np.random.default_rng(0).dirichlet(np.ones(8))
    _, sets = _client_train_sets(cfg)
    # Execute
    res = optimum_of_fp(cfg, p)
    # Assert: numpy's least squares on rows scaled by sqrt(p_i / n_i) gives the same minimum
    xa = np.concatenate([np.c_[x.reshape(len(x), -1), np.ones(len(x))] for x, _ in sets])
    y = np.concatenate([y.reshape(len(y), -1) for _, y in sets])
    w = np.concatenate([np.full(len(x), pi / len(x)) for (x, _), pi in zip(sets, p, strict=True)])
    theta, *_ = np.linalg.lstsq(xa * np.sqrt(w)[:, None], y * np.sqrt(w)[:, None], rcond=None)

    def mse(theta_):  # type: ignore[no-untyped-def]
        return _fp(sets, p, lambda x, y_: float(np.mean(
            (np.c_[x.reshape(len(x), -1), np.ones(len(x))] @ theta_ - y_.reshape(len(y_), -1)) ** 2)))

    assert res["method"] == "normal equations"
    assert res["value"] == pytest.approx(mse(theta), rel=1e-10)
    rng = np.random.default_rng(1)
    for _ in range(5):  # any perturbation is worse
        assert mse(theta + 1e-3 * rng.standard_normal(theta.shape)) > res["value"]
    assert res["value_float32"] == pytest.approx(res["value"], rel=1e-5)


def test_logreg_optimum_has_zero_gradient_and_beats_gradient_descent() -> None:
    # Prepare
    cfg = _cfg(dataset="wine", **{"model.name": "logreg", "partition.kind": "dirichlet",
                                     "partition.alpha": 0.3, "partition.min-size": 3})
    p = np.random.default_rng(2).dirichlet(np.ones(8))
    _, sets = _client_train_sets(cfg)
    # Execute
    res = optimum_of_fp(cfg, p)
    # Assert: converged (tiny gradient); 2,000 full-batch GD steps from zero end above it
    assert res["method"] == "L-BFGS" and res["grad_norm"] < 1e-6
    xs = [torch.as_tensor(x, dtype=torch.float64).reshape(len(x), -1) for x, _ in sets]
    ys = [torch.as_tensor(y, dtype=torch.long) for _, y in sets]
    lin = torch.nn.Linear(xs[0].shape[1], 3).double()
    torch.nn.init.zeros_(lin.weight)
    torch.nn.init.zeros_(lin.bias)
    opt = torch.optim.SGD(lin.parameters(), lr=0.5)
    for _ in range(2000):
        opt.zero_grad()
        loss = sum(pi * torch.nn.functional.cross_entropy(lin(x), y)
                   for pi, x, y in zip(p, xs, ys, strict=True)) / p.sum()
        loss.backward()
        opt.step()
    assert res["value"] <= float(loss) + 1e-9
    assert float(loss) - res["value"] < 0.05  # and GD is approaching it
