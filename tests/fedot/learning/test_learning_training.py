from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from fedot.learning import EvalResult, TrainResult, build_model, evaluate, train

Digits = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _tiny_data(n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 6)).astype(np.float32), rng.integers(0, 3, size=n)


def test_mlp_learns_digits(digits_split: Digits) -> None:
    xtr, ytr, xte, yte = digits_split
    model = build_model("mlp", (1, 8, 8), 10, hidden=64, seed=0)
    before = evaluate(model, xte, yte)
    res = train(model, xtr, ytr, epochs=8, batch_size=32, lr=0.1, momentum=0.9, seed=0)
    after = evaluate(model, xte, yte)
    assert isinstance(res, TrainResult) and isinstance(after, EvalResult)
    assert res.num_examples == len(xtr)
    assert res.num_steps == 8 * math.ceil(len(xtr) / 32)
    assert res.accuracy is not None and res.accuracy > 0.9
    assert after.num_examples == len(xte)
    assert after.accuracy is not None and after.accuracy > 0.85
    assert after.loss < before.loss
    assert not model.training


def test_cnn_with_batchnorm_learns_digits(digits_split: Digits) -> None:
    xtr, ytr, xte, yte = digits_split
    model = build_model("cnn", (1, 8, 8), 10, hidden=32, seed=1)
    res = train(model, xtr, ytr, epochs=2, lr=0.05, momentum=0.9, seed=1)
    bn = next(m for m in model if isinstance(m, nn.BatchNorm2d))
    assert int(bn.num_batches_tracked) == res.num_steps  # BN ran in train mode
    after = evaluate(model, xte, yte)
    assert not model.training
    assert after.accuracy is not None and after.accuracy > 0.8


def test_logreg_with_adam_learns_digits(digits_split: Digits) -> None:
    xtr, ytr, xte, yte = digits_split
    model = build_model("logreg", (1, 8, 8), 10, seed=2)
    train(model, xtr, ytr, epochs=5, lr=0.01, optimizer="adam", seed=2)
    after = evaluate(model, xte, yte)
    assert after.accuracy is not None and after.accuracy > 0.85


def test_training_is_deterministic(digits_split: Digits) -> None:
    xtr, ytr, _, _ = digits_split
    xtr, ytr = xtr[:300], ytr[:300]
    states, results = [], []
    for seed in (5, 5, 6):
        model = build_model("cnn", (1, 8, 8), 10, hidden=16, seed=0)
        results.append(train(model, xtr, ytr, epochs=2, momentum=0.5, seed=seed))
        states.append(model.state_dict())
    assert results[0] == results[1]
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    # a different seed reshuffles the batches, so the weights differ
    assert not all(torch.equal(states[0][k], states[2][k]) for k in states[0])


def test_train_leaves_global_rng_untouched() -> None:
    x, y = _tiny_data()
    torch.manual_seed(11)
    expected = torch.rand(4)
    torch.manual_seed(11)
    train(build_model("mlp", (6,), 3, hidden=8), x, y, epochs=2, seed=3)
    assert torch.equal(torch.rand(4), expected)


def test_linear_regression_recovers_weights(
    linear_problem: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    x, y, w = linear_problem
    model = build_model("linear", (5,), 1, seed=0)
    res = train(model, x, y, task="regression", epochs=40, batch_size=16, lr=0.05, seed=0)
    assert res.accuracy is None
    layer = model[1]
    np.testing.assert_allclose(layer.weight.detach().numpy().ravel(), w, atol=0.05)
    assert abs(layer.bias.item()) < 0.05
    ev = evaluate(model, x, y, task="regression")
    assert ev.accuracy is None and ev.loss < 1e-3


def test_evaluate_matches_manual_computation() -> None:
    x, y = _tiny_data(50)
    model = build_model("logreg", (6,), 3, seed=4)
    w = model[1].weight.detach().numpy().astype(np.float64)
    b = model[1].bias.detach().numpy().astype(np.float64)
    logits = x.astype(np.float64) @ w.T + b
    log_z = np.log(np.exp(logits).sum(axis=1))
    expected_loss = float(np.mean(log_z - logits[np.arange(len(y)), y]))
    expected_acc = float(np.mean(logits.argmax(axis=1) == y))
    for batch_size in (7, 256):
        res = evaluate(model, x, y, batch_size=batch_size)
        assert res.loss == pytest.approx(expected_loss, rel=1e-5)
        assert res.accuracy == pytest.approx(expected_acc)
        assert res.num_examples == 50


def test_evaluate_regression_is_mse() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(30, 4)).astype(np.float32)
    y = rng.normal(size=30).astype(np.float32)
    model = build_model("linear", (4,), 1, seed=0)
    pred = x @ model[1].weight.detach().numpy().ravel() + model[1].bias.item()
    res = evaluate(model, x, y, task="regression", batch_size=8)
    assert res.accuracy is None
    assert res.loss == pytest.approx(float(np.mean((pred - y) ** 2)), rel=1e-5)


def test_constant_penalty_changes_objective_not_reported_loss() -> None:
    x, y = _tiny_data()
    plain = build_model("mlp", (6,), 3, hidden=8, seed=0)
    with_pen = build_model("mlp", (6,), 3, hidden=8, seed=0)

    def constant(model: nn.Module) -> torch.Tensor:
        return 0.0 * sum(p.sum() for p in model.parameters()) + 1000.0

    r1 = train(plain, x, y, epochs=2, seed=0)
    r2 = train(with_pen, x, y, epochs=2, seed=0, penalty=constant)
    assert r1.loss == r2.loss < 100.0
    assert all(
        torch.equal(a, b) for a, b in zip(plain.parameters(), with_pen.parameters(), strict=True)
    )


def test_penalty_gradient_is_applied() -> None:
    x, y = _tiny_data()
    model = build_model("logreg", (6,), 3, seed=0)

    def pull_to_zero(m: nn.Module) -> torch.Tensor:
        return 100.0 * sum((p**2).sum() for p in m.parameters())

    train(model, x, y, epochs=3, lr=0.004, seed=0, penalty=pull_to_zero)
    norm = sum((p**2).sum().item() for p in model.parameters())
    assert norm < 1e-3


def test_diverging_learning_rate_raises(
    linear_problem: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    x, y, _ = linear_problem
    model = build_model("linear", (5,), 1)
    with pytest.raises(FloatingPointError, match=r"epoch 1/3, step \d+"):
        train(model, x, y, task="regression", epochs=3, lr=1e30)


def test_infinite_input_raises() -> None:
    x, y = _tiny_data()
    x[5, 2] = np.inf
    model = build_model("mlp", (6,), 3, hidden=8)
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(FloatingPointError, match="non-finite"):
        train(model, x, y, batch_size=len(x))
    # the bad step was never applied
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_input_labels_are_not_modified() -> None:
    x, y = _tiny_data()
    x_copy, y_copy = x.copy(), y.copy()
    train(build_model("mlp", (6,), 3, hidden=8), x, y, epochs=2)
    np.testing.assert_array_equal(x, x_copy)
    np.testing.assert_array_equal(y, y_copy)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"task": "ranking"}, "task"),
        ({"optimizer": "lbfgs"}, "optimizer"),
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"lr": 0.0}, "lr"),
        ({"momentum": -0.1}, "momentum"),
        ({"device": "npu"}, "device"),
    ],
)
def test_train_rejects_bad_arguments(kwargs: dict[str, Any], match: str) -> None:
    x, y = _tiny_data()
    with pytest.raises(ValueError, match=match):
        train(build_model("mlp", (6,), 3, hidden=8), x, y, **kwargs)


@pytest.mark.parametrize("fn", [train, evaluate])
def test_bad_data_raises(fn: Any) -> None:
    model = build_model("mlp", (6,), 3, hidden=8)
    x, y = _tiny_data()
    with pytest.raises(ValueError, match="empty"):
        fn(model, x[:0], y[:0])
    with pytest.raises(ValueError, match="number of examples"):
        fn(model, x, y[:-1])
    with pytest.raises(ValueError, match="integers"):
        fn(model, x, y + 0.5)
    with pytest.raises(ValueError, match="task"):
        fn(model, x, y, task="ranking")


def test_regression_output_width_mismatch_raises() -> None:
    x, _ = _tiny_data()
    y = np.zeros(len(x), dtype=np.float32)
    with pytest.raises(ValueError, match="one output"):
        evaluate(build_model("linear", (6,), 2), x, y, task="regression")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_train_and_evaluate_on_cuda(digits_split: Digits) -> None:
    xtr, ytr, xte, yte = digits_split
    model = build_model("cnn", (1, 8, 8), 10, hidden=32, seed=0)
    res = train(model, xtr, ytr, epochs=2, momentum=0.9, lr=0.05, device="cuda")
    assert all(p.device.type == "cuda" for p in model.parameters())
    assert res.num_steps > 0
    after = evaluate(model, xte, yte, device="cuda")
    assert after.accuracy is not None and after.accuracy > 0.8
