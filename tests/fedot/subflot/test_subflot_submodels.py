"""Widths, static/rolling slices, submodel architectures and position-based aggregation."""

from __future__ import annotations

import copy

import pytest
import torch
from subflot_helpers import IMG, MODELS, batch, cnn, mlp
from torch import nn

from fedot.fusion.spec import spec_for
from fedot.subflot import (
    build_submodel,
    positional_aggregate,
    rolling_indices,
    rolling_slice,
    slice_model,
    static_slice,
    submodel_width,
    submodel_widths,
)

RATES = [0.0, 0.25, 0.5, 0.75]


def _mlp_shapes(h: int) -> dict[str, tuple[int, ...]]:
    return {"1.weight": (h, 12), "1.bias": (h,), "3.weight": (h, h), "3.bias": (h,),
            "5.weight": (3, h), "5.bias": (3,)}


def _cnn_shapes(c1: int, c2: int, h: int) -> dict[str, tuple[int, ...]]:
    return {"0.weight": (c1, 1, 3, 3), "0.bias": (c1,), "1.weight": (c1,), "1.running_var": (c1,),
            "3.weight": (c2, c1, 3, 3), "4.bias": (c2,), "4.running_mean": (c2,),
            "8.weight": (h, c2 * 16), "8.bias": (h,), "10.weight": (3, h), "10.bias": (3,)}


def test_submodel_width_formula_and_errors() -> None:
    # Prepare / Execute / Assert
    assert [submodel_width(64, r) for r in RATES] == [64, 48, 32, 16]
    assert submodel_width(3, 0.75) == 1 and submodel_width(1, 0.9) == 1
    assert submodel_width(10, 0.75) == 2  # round half to even: 2.5 -> 2
    for bad in (-0.25, 1.0, 2.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="rate"):
            submodel_width(16, bad)
    with pytest.raises(ValueError, match="n must"):
        submodel_width(0, 0.5)


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("kind", sorted(MODELS))
def test_submodel_shapes_match_the_rate(kind: str, rate: float) -> None:
    # Prepare
    make, shape = MODELS[kind]
    keep = 1.0 - rate
    if kind == "mlp":
        expected = _mlp_shapes(round(16 * keep))
        built = build_submodel("mlp", (12,), 3, rate=rate, hidden=16)
    else:
        expected = _cnn_shapes(round(16 * keep), round(32 * keep), round(16 * keep))
        built = build_submodel("cnn", IMG, 3, rate=rate, hidden=16)
    # Execute
    sliced = static_slice(make(0), rate).model
    # Assert: parameters, BN statistics and module attributes are consistent; the forward works
    for model in (sliced, built):
        state = model.state_dict()
        for key, value in expected.items():
            assert tuple(state[key].shape) == value, (key, rate)
        with torch.no_grad():
            assert model.eval()(batch(shape)).shape == (16, 3)
    for m in sliced.modules():
        if isinstance(m, nn.Linear):
            assert (m.out_features, m.in_features) == tuple(m.weight.shape)
        if isinstance(m, nn.Conv2d):
            assert (m.out_channels, m.in_channels) == tuple(m.weight.shape[:2])
        if isinstance(m, nn.BatchNorm2d):
            assert m.num_features == m.running_mean.shape[0]


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_static_slice_at_rate_zero_is_the_identity(kind: str) -> None:
    # Prepare
    make, shape = MODELS[kind]
    global_model = make(0)
    # Execute
    res = static_slice(global_model, 0.0)
    # Assert
    ref = global_model.state_dict()
    assert all(torch.equal(v, ref[k]) for k, v in res.model.state_dict().items())
    assert res.model is not global_model
    assert res.model.training == global_model.training


def test_static_slice_keeps_the_leading_units_everywhere() -> None:
    # Prepare
    global_model = cnn(0)
    # Execute
    state = static_slice(global_model, 0.5).model.state_dict()
    # Assert: leading channels incl. BN statistics, and leading flatten blocks of the linear layer
    ref = global_model.state_dict()
    assert torch.equal(state["3.weight"], ref["3.weight"][:16, :8])
    assert torch.equal(state["4.running_var"], ref["4.running_var"][:16])
    assert torch.equal(state["8.weight"], ref["8.weight"][:8, : 16 * 16])
    assert torch.equal(state["10.weight"], ref["10.weight"][:, :8])
    assert torch.equal(state["10.bias"], ref["10.bias"])


def test_rolling_windows_wrap_around() -> None:
    # Prepare
    global_model = cnn(0)
    # Execute
    idx = rolling_indices({"a": 16, "b": 32}, 0.5, 12)
    res = rolling_slice(global_model, 0.5, 28)
    # Assert
    assert idx["a"].tolist() == [12, 13, 14, 15, 0, 1, 2, 3]
    assert idx["b"].tolist() == list(range(12, 28))
    ref = global_model.state_dict()
    window = (28 + torch.arange(16)) % 32
    assert res.indices["3"].tolist() == window.tolist()
    assert torch.equal(res.model.state_dict()["4.running_mean"], ref["4.running_mean"][window])
    blocks = ref["8.weight"].unflatten(1, (32, 16))[:, window].flatten(1)
    assert torch.equal(res.model.state_dict()["8.weight"], blocks[res.indices["8"]])
    zero = rolling_slice(global_model, 0.5, 0).model.state_dict()
    static = static_slice(global_model, 0.5).model.state_dict()
    assert all(torch.equal(v, static[k]) for k, v in zero.items())


def test_positional_aggregate_of_identical_full_copies_returns_the_global() -> None:
    # Prepare
    global_model = cnn(0)
    spec = spec_for(global_model)
    state = global_model.state_dict()
    full = static_slice(global_model, 0.0)
    contributions = [(copy.deepcopy(full.model).state_dict(), full.indices, w) for w in (1.0, 2.0, 0.5)]
    # Execute
    out = positional_aggregate(state, contributions, spec=spec)
    # Assert
    assert all(torch.allclose(v, state[k], atol=1e-6) for k, v in out.items())


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_positional_aggregate_of_slices_of_the_global_returns_the_global(kind: str) -> None:
    # Prepare: static and wrapping rolling slices; uncovered coordinates keep the global value
    make, _ = MODELS[kind]
    global_model = make(0)
    spec = spec_for(global_model)
    parts = [static_slice(global_model, 0.75), rolling_slice(global_model, 0.5, 11),
             rolling_slice(global_model, 0.25, 5)]
    contributions = [(p.model.state_dict(), p.indices, float(k + 1)) for k, p in enumerate(parts)]
    # Execute
    out = positional_aggregate(global_model.state_dict(), contributions, spec=spec)
    # Assert
    ref = global_model.state_dict()
    assert all(torch.allclose(v, ref[k], atol=1e-6, rtol=0) for k, v in out.items())


def test_positional_aggregate_hand_computed() -> None:
    # Prepare: 2 -> 4 -> 1 MLP; client A holds units {0, 1} (all ones, weight 1), client B the
    # wrapping window {3, 0} (all threes, weight 3); unit 2 is held by nobody
    global_model = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1))
    with torch.no_grad():
        for p in global_model.parameters():
            p.fill_(-1.0)
    spec = spec_for(global_model)
    a = static_slice(global_model, 0.5)
    b = rolling_slice(global_model, 0.5, 3)
    ones = {k: torch.ones_like(v) for k, v in a.model.state_dict().items()}
    threes = {k: torch.full_like(v, 3.0) for k, v in b.model.state_dict().items()}
    # Execute
    contributions = [(ones, a.indices, 1.0), (threes, b.indices, 3.0)]
    out = positional_aggregate(global_model.state_dict(), contributions, spec=spec)
    # Assert
    assert b.indices["0"].tolist() == [3, 0]
    assert out["0.bias"].tolist() == [2.5, 1.0, -1.0, 3.0]
    assert out["0.weight"].tolist() == [[2.5, 2.5], [1.0, 1.0], [-1.0, -1.0], [3.0, 3.0]]
    assert out["2.weight"].tolist() == [[2.5, 1.0, -1.0, 3.0]]
    assert out["2.bias"].tolist() == [2.5]


def test_positional_aggregate_rejects_bad_contributions() -> None:
    # Prepare
    global_model = mlp(0)
    spec = spec_for(global_model)
    state = global_model.state_dict()
    half = static_slice(global_model, 0.5)
    sub = half.model.state_dict()
    # Execute / Assert
    with pytest.raises(ValueError, match="weight"):
        positional_aggregate(state, [(sub, half.indices, -1.0)], spec=spec)
    with pytest.raises(ValueError, match="shape"):
        wrong = {"1": torch.arange(4), "3": torch.arange(8)}
        positional_aggregate(state, [(sub, wrong, 1.0)], spec=spec)
    with pytest.raises(ValueError, match="distinct"):
        positional_aggregate(state, [(sub, {"1": torch.zeros(8, dtype=torch.long)}, 1.0)], spec=spec)
    with pytest.raises(ValueError, match="range"):
        positional_aggregate(state, [(sub, {"1": torch.arange(9, 17)}, 1.0)], spec=spec)
    with pytest.raises(ValueError, match="lacks"):
        positional_aggregate(state, [({}, half.indices, 1.0)], spec=spec)


def test_slicing_keeps_dtype_and_rejects_unknown_groups() -> None:
    # Prepare
    global_model = cnn(0).double()
    # Execute
    sub = static_slice(global_model, 0.25).model
    widths = submodel_widths(global_model, 0.25)
    # Assert
    assert all(t.dtype == torch.float64 for t in sub.state_dict().values() if t.is_floating_point())
    assert widths == {"0": 12, "3": 24, "8": 12}
    with pytest.raises(ValueError, match="unknown group"):
        slice_model(global_model, {"nope": torch.arange(2)})
    with pytest.raises(ValueError, match="rate"):
        static_slice(global_model, 1.0)
