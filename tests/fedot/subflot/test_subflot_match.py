"""Matched (one-to-one) OTP and OTA: rounding plans to assignments."""

from __future__ import annotations

import pytest
import torch
from subflot_helpers import cnn, gen, mlp, randomize_bn

from fedot.fusion.spec import permute, spec_for
from fedot.subflot import (
    match_units,
    ota_match,
    otp_extract,
    otp_match,
    static_slice,
)


def test_match_units_hand_case() -> None:
    # Prepare: big layer rows (bias 0) 0: (0, 0), 1: (1, 0), 2: (0, 3); small rows (0.9, 0) and
    # (0.6, 2): squared distances [[0.81, 0.01, 9.81], [4.36, 4.16, 1.36]]
    spec = spec_for(torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(),
                                        torch.nn.Linear(3, 1)))
    big = {"0.weight": torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 3.0]]), "0.bias": torch.zeros(3),
           "2.weight": torch.zeros(1, 3), "2.bias": torch.zeros(1)}
    small = {"0.weight": torch.tensor([[0.9, 0.0], [0.6, 2.0]]), "0.bias": torch.zeros(2),
             "2.weight": torch.zeros(1, 2), "2.bias": torch.zeros(1)}
    # Execute
    sigma, diag = match_units(small, big, spec)
    # Assert: the minimum total 0.01 + 1.36 (no other injective map is below 4.17)
    assert sigma["0"].tolist() == [1, 2]
    assert diag[0].cost == pytest.approx((0.01 + 1.36) / 2)
    assert diag[0].off_identity == 1.0


@pytest.mark.parametrize("make", [mlp, cnn])
def test_otp_match_on_a_permuted_full_width_history_is_the_permutation(make) -> None:
    # Prepare
    g = randomize_bn(make(0), 1)
    spec = spec_for(g)
    perms = {grp: torch.randperm(n, generator=gen(5)) for grp, n in spec.sizes(g.state_dict()).items()}
    hist = permute(g, perms)
    # Execute
    matched = otp_match(g, hist, 0.0, alpha=0.5)
    bary = otp_extract(g, hist, 0.0, alpha=0.5)
    # Assert: the same permuted copy as the barycentric map
    for k, v in bary.model.state_dict().items():
        torch.testing.assert_close(matched.model.state_dict()[k], v, rtol=0, atol=1e-6)
    for grp, p in perms.items():
        assert torch.equal(matched.indices[grp], p)


def test_otp_match_keeps_global_units_unmerged() -> None:
    # Prepare: history = half-width static slice of the global model
    g = mlp(0)
    hist = static_slice(g, 0.5).model
    # Execute
    res = otp_match(g, hist, 0.5, alpha=1.0)
    # Assert: every submodel row is an exact global row, from distinct units
    w_sub, w_g = res.model.state_dict()["1.weight"], g.state_dict()["1.weight"]
    idx = res.indices["1"]
    assert len(set(idx.tolist())) == len(idx)
    torch.testing.assert_close(w_sub, w_g[idx], rtol=0, atol=0)


def test_otp_match_cold_start_is_the_static_slice() -> None:
    g = mlp(0)
    res = otp_match(g, None, 0.25)
    assert res.cold_start
    for k, v in static_slice(g, 0.25).model.state_dict().items():
        assert torch.equal(res.model.state_dict()[k], v)


@pytest.mark.parametrize("make", [mlp, cnn])
def test_ota_match_of_untrained_slices_returns_the_global_model(make) -> None:
    # Prepare: clients that did not train (static slices and a permuted full copy)
    g = randomize_bn(make(0), 2)
    spec = spec_for(g)
    perms = {grp: torch.randperm(n, generator=gen(7)) for grp, n in spec.sizes(g.state_dict()).items()}
    clients = [static_slice(g, 0.5).model, static_slice(g, 0.75).model, permute(g, perms)]
    # Execute
    res, indices = ota_match(g, clients, [1.0, 2.0, 3.0])
    # Assert: identical inputs come back unchanged
    for k, v in g.state_dict().items():
        torch.testing.assert_close(res.model.state_dict()[k], v, rtol=0, atol=1e-6)
    assert res.weights == pytest.approx((1 / 6, 2 / 6, 3 / 6))
    for grp, p in perms.items():
        assert torch.equal(indices[2][grp], p)  # client unit k is global unit p[k]


def test_ota_match_averages_only_the_units_a_client_holds() -> None:
    # Prepare: one half-width client whose weights moved by +1 everywhere
    g = mlp(0)
    client = static_slice(g, 0.5).model
    with torch.no_grad():
        for p in client.parameters():
            p.add_(1.0)
    # Execute
    res, _ = ota_match(g, [client])
    # Assert: exactly its matched coordinates change (a single client: to its own values)
    new, old = res.model.state_dict()["3.weight"], g.state_dict()["3.weight"]
    changed = (new != old).sum().item()
    assert changed == client.state_dict()["3.weight"].numel()
