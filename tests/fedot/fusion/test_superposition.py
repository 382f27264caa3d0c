"""Superposition benchmark: planted rotations, teacher family, ground-truth maps, quick experiment."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from fusion_helpers import gen

from fedot.fusion import align
from fedot.fusion.superposition import (
    HIDDEN_GROUP,
    PAIR_METHODS,
    SuperpositionConfig,
    activation_map_align,
    make_teacher,
    neuron_purity,
    planar_rotation,
    sample_inputs,
)

CFG = SuperpositionConfig()


@pytest.mark.parametrize("angle", [0.0, math.pi / 8, math.pi / 2, 2.0])
@pytest.mark.parametrize("d", [16, 7])
def test_planar_rotation_is_a_rotation_with_cos_angle_on_every_axis(angle: float, d: int) -> None:
    r = planar_rotation(d, angle, gen(1))
    assert torch.allclose(r.T @ r, torch.eye(d, dtype=r.dtype), atol=1e-12)
    assert float(torch.linalg.det(r)) == pytest.approx(1.0)
    if d % 2 == 0:  # every axis is rotated by exactly `angle` (e_j^T R e_j = cos angle)
        assert torch.allclose(torch.diagonal(r), torch.full((d,), math.cos(angle), dtype=r.dtype),
                              atol=1e-12)
    if angle == 0.0:
        assert torch.allclose(r, torch.eye(d, dtype=r.dtype), atol=1e-12)


def test_angle_zero_puts_features_on_neurons_and_rotation_spreads_them() -> None:
    teacher = make_teacher(CFG, 0)
    e = teacher.e.double()
    assert torch.equal(e, torch.eye(CFG.hidden, dtype=e.dtype))
    assert neuron_purity(planar_rotation(CFG.hidden, 0.0, gen(0)) @ e) == pytest.approx(1.0)
    rotated = planar_rotation(CFG.hidden, math.pi / 2, gen(0)) @ e
    # planted directions stay orthonormal, but no feature sits on a neuron any more
    assert torch.allclose(rotated.T @ rotated, torch.eye(CFG.hidden, dtype=e.dtype), atol=1e-10)
    assert neuron_purity(rotated) < 0.8
    assert float(torch.diagonal(rotated).abs().max()) < 1e-10  # orthogonal to "its own" neuron


def test_superposition_plants_more_unit_features_than_neurons() -> None:
    cfg = CFG.with_(features_per_neuron=4)
    teacher = make_teacher(cfg, 0)
    assert teacher.e.shape == (cfg.hidden, 4 * cfg.hidden)
    assert torch.allclose(teacher.e.norm(dim=0), torch.ones(4 * cfg.hidden), atol=1e-6)
    assert neuron_purity(teacher.e) < 0.9


def test_features_are_sparse_with_unit_second_moment() -> None:
    teacher = make_teacher(CFG, 0)
    f = teacher.features(sample_inputs(20000, CFG.input_dim, gen(2)))
    assert float((f > 0).double().mean()) == pytest.approx(CFG.active_prob, abs=0.01)
    assert float(f.pow(2).mean()) == pytest.approx(1.0, rel=0.1)


def test_teacher_family_shares_the_function_and_plants_the_rotation() -> None:
    teacher = make_teacher(CFG, 0)
    rots = [planar_rotation(CFG.hidden, math.pi / 3, gen(k)) for k in range(2)]
    nets = [teacher.network(r) for r in rots]
    x = sample_inputs(512, CFG.input_dim, gen(3))
    with torch.no_grad():
        y = [n(x) for n in nets]
        h = [n[2](n[1](n[0](x))) for n in nets]
    assert torch.allclose(y[0], y[1], atol=1e-4)
    f = teacher.features(x)
    assert torch.allclose(h[0].double(), f @ (rots[0] @ teacher.e.double()).T, atol=1e-4)


def test_ground_truth_map_is_recovered_by_activations_but_not_by_neuron_ot() -> None:
    teacher = make_teacher(CFG, 0)
    ra, rb = (planar_rotation(CFG.hidden, math.pi / 2, gen(k)) for k in range(2))
    a, b = teacher.network(ra), teacher.network(rb)
    probe = sample_inputs(2048, CFG.input_dim, gen(4))
    x = sample_inputs(512, CFG.input_dim, gen(5))
    aligned, m_map = activation_map_align(b, a, layer=HIDDEN_GROUP, probe=probe)
    truth = ra @ rb.T
    assert float((m_map.double() - truth).norm() / truth.norm()) < 1e-3

    def hidden(n: torch.nn.Module) -> torch.Tensor:
        with torch.no_grad():
            return n[2](n[1](n[0](x)))

    ha = hidden(a)
    scale = float((ha - ha.mean(0)).norm())
    assert float((hidden(aligned) - ha).norm()) / scale < 1e-3
    neuron = align(b, a, metric="activations", probe=probe).model  # permutations only
    assert float((hidden(neuron) - ha).norm()) / scale > 0.5


def test_quick_superposition_experiment_writes_its_outputs(tmp_path: Path) -> None:
    from fedot.experiments.fusion import run_fusion_experiment

    summary = run_fusion_experiment("fusion-superposition", out_dir=tmp_path, quick=True)
    for name in ("summary.json", "summary.md", "superposition.png"):
        assert (tmp_path / name).is_file()
    for setting in summary["settings"].values():
        table = setting["table"]
        assert set(PAIR_METHODS) | {"ensemble"} <= set(table)
        for method in PAIR_METHODS:
            assert math.isfinite(table[method]["nmse_teacher"]["mean"])
        assert table["ensemble"]["agree_ensemble"]["mean"] == 1.0
    flat = summary["settings"]["angle=0pi"]
    assert flat["purity"]["mean"] == pytest.approx(1.0)
    # at angle 0 the planted map is the identity, which plain averaging uses
    assert flat["table"]["average"]["map_error"]["mean"] == pytest.approx(0.0)
