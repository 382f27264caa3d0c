"""OTA: round trips with OTP, function-preserving expansion, hand-computed split, weights, errors."""

from __future__ import annotations

import pytest
import torch
from subflot_helpers import MODELS, batch, duplicated_pair, mlp, perturb, random_perms
from torch import nn

from fedot.fusion import fuse
from fedot.fusion.spec import permute
from fedot.subflot import ota_aggregate, otp_extract, static_slice


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_round_trip_at_rate_zero_returns_the_global_model(kind: str) -> None:
    # Prepare: three full-width clients whose histories are permuted copies of the global model
    make, shape = MODELS[kind]
    global_model = make(0)
    histories = [permute(global_model, random_perms(global_model, seed=10 * k)).eval() for k in range(3)]
    x = batch(shape)
    # Execute: OTP to every client, no training, OTA back
    subs = [otp_extract(global_model, h, 0.0, alpha=0.5).model for h in histories]
    res = ota_aggregate(global_model, subs, [1.0, 2.0, 5.0])
    # Assert: the global function and, up to rounding, the global state
    with torch.no_grad():
        assert torch.allclose(res.model.eval()(x), global_model(x), atol=1e-5)
    ref = global_model.state_dict()
    for key, value in res.model.state_dict().items():
        if value.is_floating_point():
            assert torch.allclose(value, ref[key], atol=1e-6, rtol=0), key
    assert res.weights == pytest.approx((0.125, 0.25, 0.625))
    # (float32 costs: the zero distance of a matched unit comes back as sqrt(rounding) ~ 1e-4)
    assert all(d.method == "lsa" and d.cost < 1e-2 for diags in res.diagnostics for d in diags)


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_round_trip_on_duplicated_neurons_returns_the_global_function(kind: str) -> None:
    # Prepare: a global model with duplicated units and a half-width client history
    base, global_model = duplicated_pair(kind)
    base, global_model = base.double().eval(), global_model.double().eval()
    history = perturb(permute(base, random_perms(base, seed=4)), 1e-3, seed=2).eval()
    x = batch(MODELS[kind][1]).double()
    # Execute
    sub = otp_extract(global_model, history, 0.5, alpha=1.0).model
    res = ota_aggregate(global_model, [sub], [1.0])
    # Assert
    with torch.no_grad():
        ref = global_model(x)
        assert torch.allclose(res.model.eval()(x), ref, atol=1e-10 * ref.abs().max(), rtol=0)


@pytest.mark.parametrize("rate", [0.5, 0.75])
@pytest.mark.parametrize("kind", sorted(MODELS))
def test_single_client_expansion_preserves_its_function(kind: str, rate: float) -> None:
    # Prepare: an arbitrary (trained-looking) client whose widths divide the global widths
    make, shape = MODELS[kind]
    global_model = make(0).double()
    client = perturb(static_slice(make(1).double(), rate).model, 0.1, seed=3).eval()
    x = batch(shape).double()
    # Execute
    res = ota_aggregate(global_model, [client], None)
    averaged = fuse([client], target=global_model, input_side="average").eval()
    # Assert: split plans + divided outgoing weights keep the client's logits; averaging the input
    # side instead multiplies the pre-activations by n/m
    with torch.no_grad():
        ref = client(x)
        assert torch.allclose(res.model.eval()(x), ref, atol=1e-10 * ref.abs().max(), rtol=0)
        assert not torch.allclose(averaged(x), ref, atol=1e-2)
    assert all(d.n_model < d.n_target for d in res.diagnostics[0])


def test_hand_computed_one_unit_to_two() -> None:
    # Prepare: a 1-unit client into a 2-unit global model; the only plan is [[1/2, 1/2]]
    glob = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
    client = nn.Sequential(nn.Linear(2, 1), nn.ReLU(), nn.Linear(1, 1))
    with torch.no_grad():
        client[0].weight.copy_(torch.tensor([[1.0, 2.0]]))
        client[0].bias.copy_(torch.tensor([3.0]))
        client[2].weight.copy_(torch.tensor([[4.0]]))
        client[2].bias.copy_(torch.tensor([5.0]))
    # Execute
    state = ota_aggregate(glob, [client], [1.0]).model.state_dict()
    # Assert: the unit is copied into both global units, its outgoing weight halved
    assert torch.equal(state["0.weight"], torch.tensor([[1.0, 2.0], [1.0, 2.0]]))
    assert torch.equal(state["0.bias"], torch.tensor([3.0, 3.0]))
    assert torch.equal(state["2.weight"], torch.tensor([[2.0, 2.0]]))
    assert torch.equal(state["2.bias"], torch.tensor([5.0]))


def test_weighted_average_of_identical_clients_and_dtype() -> None:
    # Prepare: float64 global, float32 clients that are permuted copies of it
    global_model = mlp(0).double()
    clients = [permute(mlp(0), random_perms(global_model, seed=s)) for s in (1, 2)]
    # Execute
    res = ota_aggregate(global_model, clients, torch.tensor([3.0, 1.0]))
    # Assert
    assert all(p.dtype == torch.float64 for p in res.model.parameters())
    ref = global_model.state_dict()
    assert all(torch.allclose(v, ref[k], atol=1e-6) for k, v in res.model.state_dict().items())
    assert res.weights == (0.75, 0.25)


def test_invalid_inputs_raise() -> None:
    # Prepare
    global_model = mlp(0)
    client = static_slice(global_model, 0.5).model
    # Execute / Assert
    with pytest.raises(ValueError, match="empty"):
        ota_aggregate(global_model, [], None)
    with pytest.raises(ValueError, match="entries"):
        ota_aggregate(global_model, [client], [1.0, 2.0])
    with pytest.raises(ValueError, match="nonnegative"):
        ota_aggregate(global_model, [client], [-1.0])
    with pytest.raises(ValueError, match="client model 0"):
        ota_aggregate(global_model, [nn.Sequential(nn.Linear(12, 3))], None)
