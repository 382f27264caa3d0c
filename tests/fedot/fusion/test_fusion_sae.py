"""SAEs and feature-basis alignment: training, sparsity, exact maps, permutation and rotation."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
import torch
from fusion_helpers import gen, inverse
from torch import nn

from fedot.fusion import fuse
from fedot.fusion.sae import (
    SparseAutoencoder,
    feature_cost,
    fit_feature_map,
    fuse_sae,
    sae_align,
    train_sae,
)
from fedot.fusion.spec import permute
from fedot.learning import build_model

D_IN, N_ATOMS, N = 32, 32, 2048
STEPS = 800






def rel_err(f: nn.Module, ref: nn.Module, x: torch.Tensor) -> float:
    with torch.no_grad():
        y = ref(x)
        return float((f(x) - y).norm() / (y - y.mean(0)).norm())


def seeded(make: Callable[[], nn.Module], seed: int) -> nn.Module:
    """Build a module with a fixed init seed; the global RNG state is restored afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        return make()


@pytest.fixture(scope="module")
def probe() -> torch.Tensor:
    """Inputs that are 2-sparse nonnegative combinations of 32 unit atoms in R^32."""
    g = gen(0)
    atoms = torch.randn(D_IN, N_ATOMS, generator=g)
    atoms /= atoms.norm(dim=0)
    codes = torch.zeros(N, N_ATOMS)
    idx = torch.stack([torch.randperm(N_ATOMS, generator=g)[:2] for _ in range(N)])
    codes.scatter_(1, idx, torch.rand(N, 2, generator=g) + 0.5)
    return codes @ atoms.T


@pytest.fixture(scope="module")
def acts(probe: torch.Tensor) -> torch.Tensor:
    lin = seeded(lambda: nn.Linear(D_IN, 16), 0)
    with torch.no_grad():
        return lin(probe)


def test_training_reduces_reconstruction_error_with_exact_topk_sparsity(acts: torch.Tensor) -> None:
    # Execute
    res = train_sae(acts, features=64, k=2, steps=200, seed=0)
    z = res.sae.encode(acts).detach()
    # Assert
    assert res.history_steps == (0, 100, 200)
    assert res.fvu < 0.5 * res.recon_history[0]
    assert ((z > 0).sum(1) <= 2).all()
    assert 1.5 < res.sparsity <= 2.0
    assert 0.0 <= res.dead_fraction < 0.5
    torch.testing.assert_close(res.sae.W_dec.detach().norm(dim=0), torch.ones(64))


def test_l1_penalty_trades_reconstruction_for_sparsity(acts: torch.Tensor) -> None:
    # Prepare
    scale = float(acts.pow(2).sum(1).mean().sqrt())
    # Execute
    loose = train_sae(acts, features=64, l1=0.0, steps=200, seed=0)
    tight = train_sae(acts, features=64, l1=0.3 * scale, steps=200, seed=0)
    # Assert
    assert loose.fvu < 0.5 * loose.recon_history[0] and tight.fvu < 0.5 * tight.recon_history[0]
    assert tight.sparsity < 0.5 * loose.sparsity
    assert tight.sae.k is None and tight.sae.l1 == pytest.approx(0.3 * scale)


def test_training_is_seeded_and_leaves_the_global_rng_alone(acts: torch.Tensor) -> None:
    # Prepare
    state = torch.random.get_rng_state()
    # Execute
    r1 = train_sae(acts, features=32, k=2, steps=50, seed=4)
    r2 = train_sae(acts, features=32, k=2, steps=50, seed=4)
    r3 = train_sae(acts, features=32, k=2, steps=50, seed=5)
    # Assert
    assert torch.equal(r1.sae.W_dec, r2.sae.W_dec) and not torch.equal(r1.sae.W_dec, r3.sae.W_dec)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_feature_cost_hand_cases() -> None:
    # Prepare: column 0 equal, column 1 anti-correlated, column 2 constant (dead)
    z = torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [2.0, 0.0, 0.0]])
    w = torch.tensor([[3.0, 3.0, 1.0], [0.0, 0.0, 1.0], [6.0, 6.0, 1.0]])
    # Execute
    c = feature_cost(z, w)
    # Assert
    assert c[0, 0] == pytest.approx(0.0, abs=1e-6)
    assert c[1, 1] == pytest.approx(1.0 + 3**0.5 / 2, abs=1e-6)  # corr = -sqrt(3)/2
    assert c[2, 2] == pytest.approx(1.0) and c[0, 2] == pytest.approx(1.0)


@pytest.mark.parametrize("kind", ["lstsq", "orthogonal", "permutation"])
def test_fit_feature_map_is_exact_for_corresponding_features(kind: str) -> None:
    # Prepare: B's feature vectors are L applied to A's, matched one to one (and shuffled)
    g = gen(1)
    u_a = torch.randn(8, 20, generator=g, dtype=torch.float64)
    if kind == "lstsq":
        truth = torch.randn(8, 8, generator=g, dtype=torch.float64)
    elif kind == "orthogonal":
        truth = torch.linalg.qr(torch.randn(8, 8, generator=g, dtype=torch.float64))[0]
    else:
        truth = torch.eye(8, dtype=torch.float64)[torch.randperm(8, generator=g)]
    shuffle = torch.randperm(20, generator=g)
    u_b = (truth @ u_a)[:, shuffle]
    weights = torch.eye(20, dtype=torch.float64)[:, shuffle]  # pair (p, q) with shuffle[q] = p
    # Execute
    m = fit_feature_map(u_a, u_b, weights, kind, ridge=0.0)
    # Assert
    torch.testing.assert_close(m, truth, rtol=1e-9, atol=1e-9)


def test_sae_alignment_recovers_a_permutation(probe: torch.Tensor) -> None:
    # Prepare: B = A with the ReLU layer's units permuted
    a = seeded(lambda: nn.Sequential(nn.Linear(D_IN, 16), nn.ReLU(), nn.Linear(16, 3)), 0)
    perm = torch.randperm(16, generator=gen(3))
    b = permute(a, {"0": perm})
    # Execute
    res = sae_align(b, a, layer="0", probe=probe, features=64, k=2, steps=300, map="permutation")
    saes = [res.sae_target, res.sae_model]
    fused = fuse_sae([a, b], layer="0", probe=probe, saes=saes, map="permutation")
    # Assert
    assert torch.equal(res.permutation, inverse(perm))
    assert res.map_error < 1e-6
    assert rel_err(res.model, a, probe) < 1e-6
    assert rel_err(fused, a, probe) < 1e-6
    assert res.diagnostics[0].method == "sae" and res.diagnostics[0].off_identity > 0.5


def test_sae_alignment_recovers_a_rotation_that_neuron_ot_cannot(probe: torch.Tensor) -> None:
    # Prepare: a linear bottleneck h = W0 x + b0 followed by Linear-ReLU-Linear; B = A with the
    # bottleneck rotated (W0' = R W0, b0' = R b0, W1' = W1 R^T) and the ReLU layer permuted
    def bottleneck_net() -> nn.Module:
        return nn.Sequential(nn.Linear(D_IN, 16), nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 3))

    a = seeded(bottleneck_net, seed=0)
    rot = torch.linalg.qr(torch.randn(16, 16, generator=gen(1)))[0]
    b = copy.deepcopy(a)
    with torch.no_grad():
        b[0].weight.copy_(rot @ a[0].weight)
        b[0].bias.copy_(rot @ a[0].bias)
        b[1].weight.copy_(a[1].weight @ rot.T)
    b = permute(b, {"1": torch.randperm(32, generator=gen(2))})
    assert rel_err(b, a, probe) < 1e-5  # same function
    # Execute
    res = sae_align(b, a, layer="0", probe=probe, features=64, k=2, steps=STEPS, map="orthogonal")
    fused_sae = fuse_sae([a, b], layer="0", probe=probe, saes=[res.sae_target, res.sae_model])
    fused_w = fuse([a, b])
    fused_act = fuse([a, b], metric="activations", probe=probe)
    map_err = float((res.map - rot.T).norm() / rot.norm())
    # Assert: the SAE map is close to R^T (B -> A); neuron OT can only permute and fails
    assert map_err < 0.1
    assert res.map_error < 0.1
    assert rel_err(res.model, a, probe) < 1e-4  # an orthogonal map is an exact reparametrisation
    assert rel_err(fused_sae, a, probe) < 0.01
    assert rel_err(fused_w, a, probe) > 0.3 and rel_err(fused_act, a, probe) > 0.3


def test_non_permutation_map_is_refused_on_a_normalised_group(probe: torch.Tensor) -> None:
    cnn = build_model("cnn", (1, 8, 8), 3, hidden=16)
    with pytest.raises(ValueError, match="map='permutation'"):
        sae_align(cnn, cnn, layer="0", probe=torch.zeros(2, 1, 8, 8), map="orthogonal")


def test_sae_argument_checks() -> None:
    with pytest.raises(ValueError, match="at most one"):
        SparseAutoencoder(4, 8, k=2, l1=0.1)
    with pytest.raises(ValueError, match="k must"):
        SparseAutoencoder(4, 8, k=9)
    with pytest.raises(ValueError, match="acts"):
        train_sae(torch.zeros(5))
    with pytest.raises(ValueError, match="unknown layer"):
        mlp = build_model("mlp", (4,), 2)
        sae_align(mlp, mlp, layer="9", probe=torch.zeros(2, 4))
