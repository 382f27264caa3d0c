from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from fedot.learning.flow import METHODS, SampleResult, integrate, nfe_to_steps


def _identity_field(t: Tensor, x: Tensor) -> Tensor:
    return x


def _x0() -> Tensor:
    return torch.tensor([[1.0, -2.0], [0.5, 3.0]], dtype=torch.float64)


@pytest.mark.parametrize("method", ["euler", "midpoint", "rk4"])
def test_constant_field_is_integrated_exactly(method: str) -> None:
    # dx/dt = c  =>  x(1) = x0 + c, for any consistent one-step method and any step count
    c = torch.tensor([0.3, -1.2], dtype=torch.float64)
    res = integrate(lambda t, x: c.expand_as(x), _x0(), method=method, steps=3)
    assert torch.allclose(res.x, _x0() + c, atol=1e-12)


def test_euler_on_linear_field_matches_hand_computed_product() -> None:
    # Euler on dx/dt = x with h = 1/4 multiplies by (1 + 1/4) per step
    res = integrate(_identity_field, _x0(), method="euler", steps=4)
    assert torch.allclose(res.x, _x0() * 1.25**4, atol=1e-12)


def test_time_dependent_field_uses_the_step_start_time_in_euler() -> None:
    # dx/dt = t: Euler with 2 steps gives 0*1/2 + 1/2*1/2 = 1/4 (the exact value is 1/2)
    res = integrate(lambda t, x: t[:, None].expand_as(x), torch.zeros(3, 1), method="euler", steps=2)
    assert torch.allclose(res.x, torch.full((3, 1), 0.25))


def test_rk4_on_exponential_growth_is_accurate() -> None:
    res = integrate(_identity_field, _x0(), method="rk4", steps=10)
    rel = ((res.x - math.e * _x0()).abs() / (math.e * _x0().abs())).max()
    assert rel < 1e-6


def test_midpoint_is_second_order() -> None:
    exact = math.e * _x0()
    errs = [
        float((integrate(_identity_field, _x0(), method="midpoint", steps=n).x - exact).abs().max())
        for n in (8, 16, 32)
    ]
    ratios = [errs[0] / errs[1], errs[1] / errs[2]]
    assert all(3.6 < r < 4.4 for r in ratios)


@pytest.mark.parametrize(("method", "stages"), [("euler", 1), ("midpoint", 2), ("rk4", 4)])
def test_fixed_step_nfe_equals_steps_times_stages(method: str, stages: int) -> None:
    res = integrate(_identity_field, _x0(), method=method, steps=7)
    assert isinstance(res, SampleResult)
    assert (res.nfe, res.steps, res.trajectory) == (7 * stages, 7, None)


def test_dopri5_meets_the_tolerance_and_counts_evaluations() -> None:
    calls = 0

    def field(t: Tensor, x: Tensor) -> Tensor:
        nonlocal calls
        calls += 1
        return x

    res = integrate(field, _x0(), method="dopri5", rtol=1e-6, atol=1e-8)
    rel = ((res.x - math.e * _x0()).abs() / (math.e * _x0().abs())).max()
    assert rel < 1e-5
    assert res.nfe == calls == 2 + 6 * (res.steps + res.rejected_steps)
    assert res.steps >= 2


def test_dopri5_tighter_tolerance_costs_more_and_is_more_accurate() -> None:
    loose = integrate(_identity_field, _x0(), method="dopri5", rtol=1e-3, atol=1e-3)
    tight = integrate(_identity_field, _x0(), method="dopri5", rtol=1e-9, atol=1e-9)
    err = [float((r.x - math.e * _x0()).abs().max()) for r in (loose, tight)]
    assert tight.nfe > loose.nfe
    assert err[1] < err[0] and err[1] < 1e-7


def test_trajectory_has_every_step_boundary_and_keeps_dtype() -> None:
    x0 = torch.randn(5, 2, generator=torch.Generator().manual_seed(0))
    res = integrate(_identity_field, x0, method="rk4", steps=4, return_trajectory=True)
    assert res.trajectory is not None and len(res.trajectory) == 5
    assert torch.equal(res.trajectory[0], x0) and torch.equal(res.trajectory[-1], res.x)
    assert res.times == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert res.x.dtype == torch.float32


def test_backward_integration_inverts_forward() -> None:
    fwd = integrate(_identity_field, _x0(), method="dopri5", rtol=1e-10, atol=1e-10)
    back = integrate(_identity_field, fwd.x, method="dopri5", rtol=1e-10, atol=1e-10, t0=1.0, t1=0.0)
    assert torch.allclose(back.x, _x0(), atol=1e-8)


def test_integrate_runs_without_building_a_graph() -> None:
    lin = torch.nn.Linear(2, 2)
    res = integrate(
        lambda t, x: lin(x),
        torch.randn(3, 2, generator=torch.Generator().manual_seed(0)),
        method="euler",
        steps=2,
    )
    assert not res.x.requires_grad


@pytest.mark.parametrize(
    ("method", "nfe", "steps"), [("euler", 1, 1), ("euler", 3, 3), ("midpoint", 10, 5), ("rk4", 20, 5)]
)
def test_nfe_to_steps(method: str, nfe: int, steps: int) -> None:
    assert nfe_to_steps(method, nfe) == steps
    assert integrate(_identity_field, _x0(), method=method, steps=steps).nfe == nfe


@pytest.mark.parametrize(("method", "nfe"), [("midpoint", 3), ("rk4", 10), ("dopri5", 10), ("euler", 0)])
def test_nfe_to_steps_rejects_impossible_requests(method: str, nfe: int) -> None:
    with pytest.raises(ValueError):
        nfe_to_steps(method, nfe)


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="steps"):
        integrate(_identity_field, _x0(), method="euler")
    with pytest.raises(ValueError, match="unknown method"):
        integrate(_identity_field, _x0(), method="heun", steps=2)  # type: ignore[arg-type]
    with pytest.raises(FloatingPointError):
        integrate(lambda t, x: x * float("nan"), _x0(), method="euler", steps=1)
    assert METHODS == ("euler", "midpoint", "rk4", "dopri5")
