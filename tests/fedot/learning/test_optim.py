"""Server optimizer (FedOpt-style) and portable optimizer state: independent expectations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fedot.data.toy2d import sample_toy2d
from fedot.learning.flow import VelocityMLP, train_flow
from fedot.learning.optim import ServerOptimizer, load_optimizer_state, optimizer_state_arrays


def _arrays(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"a.w": torch.randn(3, 2, generator=g), "a.b": torch.randn(3, generator=g),
            "other": torch.randn(4, generator=g)}


def test_sgd_server_step_is_theta_minus_lr_g_and_leaves_other_keys_alone() -> None:
    # Prepare
    arrays, grads = _arrays(0), _arrays(1)
    opt = ServerOptimizer("sgd", 0.1, ["a.w", "a.b"])
    # Execute
    new = opt.step(arrays, grads)
    # Assert: by hand
    for k in ("a.w", "a.b"):
        torch.testing.assert_close(new[k], arrays[k] - 0.1 * grads[k], rtol=0, atol=1e-7)
    assert torch.equal(new["other"], arrays["other"])


def test_adam_server_steps_equal_one_persistent_torch_adam() -> None:
    # Prepare: the reference is a single torch Adam stepping one parameter three times
    theta = torch.nn.Parameter(_arrays(0)["a.w"].clone())
    ref = torch.optim.Adam([theta], lr=0.05)
    opt = ServerOptimizer("adam", 0.05, ["a.w"])
    arrays = {"a.w": theta.detach().clone()}
    # Execute
    for seed in (1, 2, 3):
        g = _arrays(seed)["a.w"]
        theta.grad = g.clone()
        ref.step()
        arrays = opt.step(arrays, {"a.w": g})
    # Assert
    torch.testing.assert_close(arrays["a.w"], theta.detach(), rtol=0, atol=1e-7)
    assert opt.steps == 3


def test_server_state_round_trip_continues_identically() -> None:
    # Prepare: two optimizers; the second is restored from the first's state after 2 steps
    a = ServerOptimizer("adam", 0.05, ["a.w", "a.b"])
    arrays = _arrays(0)
    for seed in (1, 2):
        arrays = a.step(arrays, _arrays(seed))
    b = ServerOptimizer("adam", 0.05, ["a.w", "a.b"])
    b.load_state_dict(a.state_dict())
    # Execute
    out_a = a.step(arrays, _arrays(3))
    out_b = b.step(arrays, _arrays(3))
    # Assert: a fresh Adam would differ; the restored one does not
    fresh = ServerOptimizer("adam", 0.05, ["a.w", "a.b"]).step(arrays, _arrays(3))
    for k in out_a:
        assert torch.equal(out_a[k], out_b[k])
    assert not torch.allclose(out_a["a.w"], fresh["a.w"])
    assert b.steps == 3


def test_server_optimizer_refuses_missing_or_misshaped_gradients() -> None:
    opt = ServerOptimizer("sgd", 0.1, ["a.w"])
    with pytest.raises(KeyError, match="a.w"):
        opt.step(_arrays(0), {"a.b": torch.zeros(3)})
    with pytest.raises(ValueError, match="shape"):
        opt.step(_arrays(0), {"a.w": torch.zeros(2, 3)})


def test_train_flow_with_carried_state_equals_one_longer_call() -> None:
    # Prepare: 2 × 5 steps carrying Adam's state vs 10 steps in one call (same generator stream)
    data = torch.from_numpy(sample_toy2d("8gaussians", 400, np.random.default_rng(0))[0])
    one, two = VelocityMLP(2, hidden=16, layers=2, seed=0), VelocityMLP(2, hidden=16, layers=2, seed=0)
    # Execute
    train_flow(one, data, steps=10, batch_size=32, lr=0.01, generator=torch.Generator().manual_seed(5))
    gen = torch.Generator().manual_seed(5)
    state = train_flow(two, data, steps=5, batch_size=32, lr=0.01, generator=gen).optimizer_state
    train_flow(two, data, steps=5, batch_size=32, lr=0.01, generator=gen, optimizer_state=state)
    # Assert
    for p, q in zip(one.parameters(), two.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_optimizer_state_arrays_round_trip_and_shape_check() -> None:
    # Prepare
    p = torch.nn.Parameter(torch.ones(2, 2))
    opt = torch.optim.Adam([p], lr=0.1)
    p.grad = torch.full((2, 2), 0.5)
    opt.step()
    flat = optimizer_state_arrays(opt)
    # Execute
    q = torch.nn.Parameter(torch.ones(2, 2))
    restored = torch.optim.Adam([q], lr=0.1)
    load_optimizer_state(restored, flat)
    # Assert
    assert set(flat) == {"0.step", "0.exp_avg", "0.exp_avg_sq"}
    torch.testing.assert_close(restored.state[q]["exp_avg"], opt.state[p]["exp_avg"])
    with pytest.raises(ValueError, match="shape"):
        load_optimizer_state(torch.optim.Adam([torch.nn.Parameter(torch.ones(3))]), flat)
