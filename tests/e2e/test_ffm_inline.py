"""Federated flow matching end to end through the real ServerApp/ClientApp (in-process grid)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fedot.config import load_run_config
from fedot.fl.flow import flow_data, flow_models
from fedot.fl.inline import load_apps, run_inline
from fedot.fl.task import derive_seed
from fedot.learning.flow import (
    FlowTargets,
    IndependentCoupling,
    LinearPath,
    flow_matching_targets,
    per_sample_loss,
    train_flow,
)
from fedot.learning.flow.training import draw_batch, flow_matching_gradient

SMALL = {
    "scheme": "ffm", "clients": 3, "rounds": 4, "ffm.samples": 600, "ffm.eval-samples": 200,
    "ffm.local-steps": 5, "ffm.batch-size": 64, "ffm.hidden": 32, "ffm.layers": 2,
    "ffm.eval-every": 2, "ffm.nfe": "1,3,10", "ffm.candidates": 32, "ffm.potential-rounds": 2,
    "ffm.potential-local-steps": 2,
}


def _run(tmp: Path, **overrides: object) -> dict:
    config = {**SMALL, "out-dir": str(tmp), **overrides}
    run_inline(config, int(config["clients"]))
    return json.loads((tmp / "results.json").read_text())


def _final_state(tmp: Path) -> dict[str, torch.Tensor]:
    return torch.load(tmp / "checkpoint.pt")["arrays"]


@pytest.mark.parametrize("coupling", ["vanilla", "lot", "got"])
def test_ffm_runs_with_each_coupling(tmp_path: Path, coupling: str) -> None:
    # Execute
    res = _run(tmp_path, **{"ffm.coupling": coupling})
    # Assert: metrics at every NFE on evaluation rounds, plots, stages recorded
    assert res["status"] == "completed"
    final = res["final"]
    assert {"w2-nfe1", "w2-nfe3", "w2-nfe10", "straightness", "path-length-ratio"} <= set(final)
    assert all(np.isfinite(v) for v in final.values())
    assert (tmp_path / "flow.png").stat().st_size > 0
    stages = [e.get("stage") for e in res["rounds"][1:]]
    if coupling == "got":
        assert stages == ["potential", "potential", "flow", "flow", "flow", "flow"]
        assert "objective" in res["rounds"][1]["train"]
        assert res["rounds"][1]["server"] == {}  # potential rounds leave the flow unchanged
        assert final["got-source-drift"] > 0
    else:
        assert stages == ["flow"] * 4
        assert res["rounds"][2]["evaluate"]["loss"] > 0  # clients evaluate in eval rounds
    assert res["flow"]["client_sizes"] and sum(res["flow"]["client_sizes"]) == 600


def test_one_client_ffm_vanilla_equals_centralised_icfm(tmp_path: Path) -> None:
    # Prepare: one client holding the whole pool (no local hold-out)
    over = {"clients": 1, "rounds": 3, "data.local-test-fraction": 0.0, "ffm.split": "iid"}
    # Execute: the federated run, and the same training written directly with fedot.learning
    _run(tmp_path, **over)
    _, _, defaults = load_apps()
    cfg = load_run_config({**defaults, **SMALL, **over, "out-dir": str(tmp_path)})
    model, _ = flow_models(cfg)
    data = torch.from_numpy(flow_data(cfg, 1).train)
    state = None  # the client's Adam state carries over from round to round
    for rnd in (1, 2, 3):
        state = train_flow(model, data, steps=5, batch_size=64, lr=cfg.ffm.lr, path=LinearPath(),
                           coupling=IndependentCoupling(), optimizer_state=state,
                           generator=torch.Generator().manual_seed(derive_seed(cfg.seed, rnd, 0, 0))
                           ).optimizer_state
    # Assert: identical weights
    state = _final_state(tmp_path)
    for name, value in model.state_dict().items():
        torch.testing.assert_close(state["velocity." + name], value, rtol=0, atol=0)


def test_per_step_aggregation_is_the_gradient_of_the_weighted_objective(tmp_path: Path) -> None:
    # Prepare: one SGD step per client per round: θ1 = θ0 − lr Σ_i λ_i ∇L_i, λ_i ∝ n_i
    over = {"rounds": 1, "ffm.local-steps": 1, "ffm.optimizer": "sgd", "ffm.lr": 0.05,
            "data.local-test-fraction": 0.0, "ffm.split": "dirichlet", "ffm.alpha": 0.5}
    _run(tmp_path, **over)
    _, _, defaults = load_apps()
    cfg = load_run_config({**defaults, **SMALL, **over, "out-dir": str(tmp_path)})
    data = flow_data(cfg, 3)
    model, _ = flow_models(cfg)
    sizes = np.array([len(p) for p in data.parts], dtype=np.float64)
    lam = sizes / sizes.sum()
    # Execute: each client's gradient with its own draws, combined with λ
    total = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    for pid, idx in enumerate(data.parts):
        gen = torch.Generator().manual_seed(derive_seed(cfg.seed, 1, pid, 0))
        x0, x1 = draw_batch(torch.from_numpy(data.train[np.sort(idx)]), 64, gen)
        grads = flow_matching_gradient(model, x0, x1, path=LinearPath(),
                                       coupling=IndependentCoupling(), generator=gen)
        for n in total:
            total[n] += float(lam[pid]) * grads[n]
    # Assert
    state = _final_state(tmp_path)
    for n, p in model.named_parameters():
        torch.testing.assert_close(state["velocity." + n], p.detach() - 0.05 * total[n],
                                   rtol=1e-5, atol=1e-6)


def _client_targets(cfg, data, server_round: int, batch: int):  # noqa: ANN001, ANN202
    """Each client's regression targets of one round, drawn as its ClientApp draws them."""
    out = []
    for pid, idx in enumerate(data.parts):
        gen = torch.Generator().manual_seed(derive_seed(cfg.seed, server_round, pid, 0))
        x0, x1 = draw_batch(torch.from_numpy(data.train[np.sort(idx)]), batch, gen)
        out.append(flow_matching_targets(x0, x1, path=LinearPath(), coupling=IndependentCoupling(),
                                         generator=gen))
    return out


def test_one_sgd_round_equals_one_centralised_sgd_step_on_the_union_batch(tmp_path: Path) -> None:
    # Prepare: 3 equal clients (IID, 600 points), one local step each, server SGD
    over = {"rounds": 1, "ffm.local-steps": 1, "ffm.optimizer": "sgd", "ffm.lr": 0.05,
            "data.local-test-fraction": 0.0, "ffm.split": "iid"}
    _run(tmp_path, **over)
    _, _, defaults = load_apps()
    cfg = load_run_config({**defaults, **SMALL, **over, "out-dir": str(tmp_path)})
    data = flow_data(cfg, 3)
    assert len({len(p) for p in data.parts}) == 1
    # Execute: the union of the clients' batches as ONE centralised batch, one plain SGD step
    model, _ = flow_models(cfg)
    parts = _client_targets(cfg, data, 1, 64)
    union = FlowTargets(torch.cat([p.t for p in parts]), torch.cat([p.x_t for p in parts]),
                        torch.cat([p.u_t for p in parts]), float("nan"))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    per_sample_loss(model, union).mean().backward()
    opt.step()
    # Assert
    state = _final_state(tmp_path)
    for n, p in model.named_parameters():
        torch.testing.assert_close(state["velocity." + n], p.detach(), rtol=1e-5, atol=1e-6)


def test_per_step_adam_lives_on_the_server_and_persists_across_rounds(tmp_path: Path) -> None:
    # Prepare: 3 rounds of one local step with Adam; unequal clients (Dirichlet)
    over = {"rounds": 3, "ffm.local-steps": 1, "ffm.optimizer": "adam", "ffm.lr": 0.01,
            "data.local-test-fraction": 0.0, "ffm.split": "dirichlet", "ffm.alpha": 0.5}
    res = _run(tmp_path, **over)
    _, _, defaults = load_apps()
    cfg = load_run_config({**defaults, **SMALL, **over, "out-dir": str(tmp_path)})
    data = flow_data(cfg, 3)
    lam = np.array([len(p) for p in data.parts], dtype=np.float64)
    lam /= lam.sum()
    # Execute: ONE torch Adam, three steps on the weighted objective Σ λ_i L_i
    model, _ = flow_models(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for rnd in (1, 2, 3):
        parts = _client_targets(cfg, data, rnd, 64)
        loss = sum(float(lam[i]) * per_sample_loss(model, p).mean() for i, p in enumerate(parts))
        opt.zero_grad()
        loss.backward()
        opt.step()
    # Assert: same weights (a fresh Adam per round would give ≈ lr·sign(g) steps instead), and
    # the checkpoint holds the server's Adam state after 3 steps
    state = _final_state(tmp_path)
    for n, p in model.named_parameters():
        torch.testing.assert_close(state["velocity." + n], p.detach(), rtol=1e-4, atol=1e-6)
    ckpt = torch.load(tmp_path / "checkpoint.pt")["strategy_state"]["ffm.server-optimizers"]
    assert ckpt["velocity."]["steps"] == 3
    assert res["rounds"][-1]["aggregation"]["update"] == "server-optimizer"


def test_digits_ffm_reports_sliced_w2_and_frechet_distance(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare: the feature classifier is cached under FEDOT_CACHE_DIR
    monkeypatch.setenv("FEDOT_CACHE_DIR", str(tmp_path / "cache"))
    # Execute
    res = _run(tmp_path / "run", rounds=2, **{"ffm.data": "digits", "ffm.channels": 8,
                                             "ffm.split": "dirichlet", "ffm.alpha": 0.3})
    # Assert
    assert {"swd-nfe10", "fd-nfe10"} <= set(res["final"])
    assert list((tmp_path / "cache").glob("digits-features-*.pkl"))
    assert res["flow"]["sample_shape"] == [1, 8, 8]


def test_bad_ffm_values_are_named() -> None:
    with pytest.raises(Exception, match="ffm.nfe"):
        load_run_config({"scheme": "ffm", "ffm.nfe": "1,x"})
    with pytest.raises(Exception, match="ffm.coupling"):
        load_run_config({"scheme": "ffm", "ffm.coupling": "sinkhorn"})


def test_region_split_gives_each_client_its_own_sector_of_the_plane() -> None:
    # Prepare: 8 gaussians cut into 4 quadrant-sized sectors (boundaries through 4 of the centres)
    _, _, defaults = load_apps()
    cfg = load_run_config({**defaults, **SMALL, "clients": 4, "ffm.split": "region"})
    # Execute
    data = flow_data(cfg, 4)
    # Assert: disjoint, complete, and client c's points have angles in [c π/2, (c+1) π/2)
    idx = np.concatenate(data.parts)
    assert sorted(idx.tolist()) == list(range(len(data.train)))
    for c, part in enumerate(data.parts):
        angle = np.mod(np.arctan2(data.train[part, 1], data.train[part, 0]), 2 * np.pi)
        assert len(part) > 0
        assert np.all((angle >= c * np.pi / 2 - 1e-6) & (angle < (c + 1) * np.pi / 2 + 1e-6))


def test_region_split_is_refused_for_digits() -> None:
    _, _, defaults = load_apps()
    with pytest.raises(ValueError, match="ffm.split='region'"):
        load_run_config({**defaults, "scheme": "ffm", "ffm.data": "digits", "ffm.split": "region"})


def test_mnist_ffm_learns_28x28_digits_end_to_end(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare: a tiny 28×28 run; the FD feature classifier is cached under FEDOT_CACHE_DIR
    monkeypatch.setenv("FEDOT_CACHE_DIR", str(tmp_path / "cache"))
    # Execute
    res = _run(tmp_path / "run", **{
        "clients": 2, "rounds": 3, "ffm.data": "mnist-5k", "ffm.split": "dirichlet",
        "ffm.alpha": 0.3, "ffm.coupling": "lot", "ffm.channels": 8, "ffm.local-steps": 5,
        "ffm.batch-size": 32, "ffm.lr": 5e-3, "ffm.eval-every": 3, "ffm.eval-samples": 100,
        "ffm.nfe": "1,10", "data.local-test-fraction": 0.0, "fraction-evaluate": 0.0})
    # Assert: finite metrics, and the flow moved the noise towards the digits
    assert res["status"] == "completed"
    final = res["final"]
    assert {"swd-nfe1", "fd-nfe1", "swd-nfe10", "fd-nfe10", "straightness"} <= set(final)
    assert all(np.isfinite(v) for v in final.values())
    start = res["rounds"][0]["server"]
    assert final["fd-nfe10"] < 0.8 * start["fd-nfe10"]
    assert final["swd-nfe10"] < start["swd-nfe10"]
    flow = res["flow"]
    assert flow["sample_shape"] == [1, 28, 28] and flow["held_out"] == 100
    # the real-vs-real floor is measured in the same feature space, far below untrained noise
    assert 0 < flow["fd_real_train_vs_test"] < 0.2 * start["fd-nfe10"]
    assert flow["feature_classifier_test_accuracy"] > 0.9
    assert list((tmp_path / "cache").glob("mnist5k-features-cnn-seed0-*.pt"))
