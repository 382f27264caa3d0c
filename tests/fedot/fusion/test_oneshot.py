"""One-shot fusion pipeline, `fedot fuse` on saved models, and the quick fusion-oneshot experiment."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from fusion_helpers import gen, randomize_bn
from torch import nn

from fedot.data import load_dataset
from fedot.fusion.oneshot import (
    METHODS,
    OneShotConfig,
    PredictionEnsemble,
    average_models,
    build_from_state,
    fuse_method,
    fuse_saved,
    infer_architecture,
    load_state,
    make_shards,
)
from fedot.fusion.spec import permute
from fedot.learning import build_model, evaluate, train

TINY = OneShotConfig(dataset="digits", parents=2, hidden=16, epochs=2, sae_steps=50, probe_size=64)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0)


@pytest.fixture(scope="module")
def trained_mlp(digits) -> nn.Module:
    model = build_model("mlp", digits.input_shape, 10, hidden=16, seed=3)
    train(model, digits.train.x, digits.train.y, epochs=3, lr=1e-2, optimizer="adam", seed=0)
    return model.eval()


def _out(model: nn.Module, x: np.ndarray) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(torch.as_tensor(x[:128], dtype=torch.float32))


def test_ensemble_of_identical_parents_is_the_parent(digits, trained_mlp) -> None:
    ens = PredictionEnsemble([copy.deepcopy(trained_mlp) for _ in range(3)])
    out, ref = _out(ens, digits.test.x), _out(trained_mlp, digits.test.x)
    # log of the mean softmax of identical members = the member's log-softmax
    assert torch.allclose(out, torch.log_softmax(ref, -1), atol=1e-5)
    assert evaluate(ens, digits.test.x, digits.test.y).accuracy == pytest.approx(
        evaluate(trained_mlp, digits.test.x, digits.test.y).accuracy)


def test_ensemble_weights_and_mixture() -> None:
    a, b = nn.Linear(3, 4), nn.Linear(3, 4)
    x = torch.randn(5, 3, generator=gen(0))
    out = PredictionEnsemble([a, b], weights=[3.0, 1.0])(x)
    expected = (0.75 * torch.softmax(a(x), -1) + 0.25 * torch.softmax(b(x), -1)).log()
    assert torch.allclose(out, expected, atol=1e-6)


@pytest.mark.parametrize("method", METHODS)
def test_fusing_identical_parents_keeps_the_parent(digits, trained_mlp, method: str) -> None:
    parents = [copy.deepcopy(trained_mlp) for _ in range(3)]
    probe = torch.as_tensor(digits.train.x[:128], dtype=torch.float32)
    fused = fuse_method(method, parents, probe=probe, cfg=TINY.with_(sae_steps=200), seed=0)
    acc = evaluate(fused, digits.test.x, digits.test.y).accuracy
    assert acc == pytest.approx(evaluate(trained_mlp, digits.test.x, digits.test.y).accuracy)
    if method != "sae-ot":  # SAE-matched permutations of identical models: function kept, checked above
        assert torch.allclose(_out(fused, digits.test.x), _out(trained_mlp, digits.test.x), atol=1e-5)


@pytest.mark.parametrize("method", ["ot-weights", "ot-activations", "rebasin"])
def test_permuted_parents_are_realigned_but_not_averaged(digits, trained_mlp, method: str) -> None:
    perms = [{"1": torch.randperm(16, generator=gen(k)), "3": torch.randperm(16, generator=gen(9 + k))}
             for k in range(2)]
    parents = [trained_mlp] + [permute(trained_mlp, p) for p in perms]
    probe = torch.as_tensor(digits.train.x[:128], dtype=torch.float32)
    ref = _out(trained_mlp, digits.test.x)
    fused = fuse_method(method, parents, probe=probe, cfg=TINY, seed=0)
    assert torch.allclose(_out(fused, digits.test.x), ref, atol=1e-5)
    avg = fuse_method("average", parents, probe=probe, cfg=TINY)
    assert float((_out(avg, digits.test.x) - ref).norm() / ref.norm()) > 0.1


def test_average_models_averages_bn_buffers_and_keeps_int_buffers() -> None:
    a = randomize_bn(build_model("cnn", (1, 8, 8), 10, hidden=8, seed=0), 1)
    b = randomize_bn(build_model("cnn", (1, 8, 8), 10, hidden=8, seed=1), 2)
    avg = average_models([a, b], weights=[1.0, 3.0]).state_dict()
    sa, sb = a.state_dict(), b.state_dict()
    assert torch.allclose(avg["1.running_var"], 0.25 * sa["1.running_var"] + 0.75 * sb["1.running_var"])
    assert torch.equal(avg["1.num_batches_tracked"], sa["1.num_batches_tracked"])


def test_dirichlet_shards_are_disjoint_and_cover_the_pool() -> None:
    data, parts = make_shards(TINY.with_(parents=5), seed=1)
    union = np.concatenate(parts)
    assert len(parts) == 5
    assert len(np.unique(union)) == len(union) == len(data.train)


def test_config_rejects_unknown_methods() -> None:
    with pytest.raises(ValueError, match="unknown methods"):
        OneShotConfig(methods=("average", "magic"))


# ----------------------------------------------------------------------------- saved models


def test_load_state_reads_files_checkpoints_and_run_dirs(tmp_path: Path, trained_mlp) -> None:
    state = trained_mlp.state_dict()
    torch.save(state, tmp_path / "plain.pt")
    torch.save({"state_dict": state}, tmp_path / "wrapped.pt")
    run = tmp_path / "run"
    run.mkdir()
    torch.save({"version": 2, "arrays": {k: v.clone() for k, v in state.items()}}, run / "checkpoint.pt")
    (run / "config.json").write_text(json.dumps({"dataset": "digits", "seed": 0,
                                                 "model": {"name": "mlp", "hidden": 16}}))
    for path in (tmp_path / "plain.pt", tmp_path / "wrapped.pt", run):
        loaded, config = load_state(path)
        assert all(torch.equal(loaded[k], v) for k, v in state.items())
    assert config is not None and config["model"]["hidden"] == 16
    with pytest.raises(FileNotFoundError):
        load_state(tmp_path)  # a directory without checkpoint.pt


def test_architecture_is_inferred_from_state_dicts() -> None:
    assert infer_architecture(build_model("mlp", (40,), 10, hidden=24).state_dict()) == ("mlp", 24, 10)
    assert infer_architecture(build_model("cnn", (1, 8, 8), 7, hidden=12).state_dict()) == ("cnn", 12, 7)
    net = build_from_state(build_model("mlp", (1, 8, 8), 10, hidden=24, seed=2).state_dict())
    assert net(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    with pytest.raises(ValueError, match="input shape"):
        build_from_state(build_model("cnn", (1, 8, 8), 7, hidden=12).state_dict())


def test_fuse_saved_restores_a_permuted_copy(tmp_path: Path, digits, trained_mlp) -> None:
    perm = {"1": torch.randperm(16, generator=gen(5)), "3": torch.randperm(16, generator=gen(6))}
    torch.save(trained_mlp.state_dict(), tmp_path / "a.pt")
    torch.save(permute(trained_mlp, perm).state_dict(), tmp_path / "b.pt")
    for metric in ("weights", "activations"):
        res = fuse_saved([tmp_path / "a.pt", tmp_path / "b.pt"], dataset="digits", metric=metric)
        ref = _out(trained_mlp, digits.test.x)
        assert torch.allclose(_out(res.model, digits.test.x), ref, atol=1e-5)
    with pytest.raises(ValueError, match="needs a dataset"):
        fuse_saved([tmp_path / "a.pt"], metric="activations")


def test_cli_fuse_writes_the_fused_model(tmp_path: Path, trained_mlp) -> None:
    from typer.testing import CliRunner

    from fedot.cli import app

    other = build_model("mlp", (1, 8, 8), 10, hidden=16, seed=8)
    torch.save(trained_mlp.state_dict(), tmp_path / "a.pt")
    torch.save(other.state_dict(), tmp_path / "b.pt")
    out = tmp_path / "fused.pt"
    result = CliRunner().invoke(app, ["fuse", str(tmp_path / "a.pt"), str(tmp_path / "b.pt"),
                                      "--out", str(out), "--eval", "digits", "--weights", "3,1",
                                      "--metric", "activations"])
    assert result.exit_code == 0, result.output
    assert "fused test accuracy (digits)" in result.output
    fused = torch.load(out, weights_only=True)
    assert set(fused) == set(trained_mlp.state_dict())
    bad = CliRunner().invoke(app, ["fuse", str(tmp_path / "a.pt"), "--weights", "1,2"])
    assert bad.exit_code == 2
    clash = CliRunner().invoke(app, ["fuse", str(tmp_path / "a.pt"), str(tmp_path / "b.pt"),
                                     "--dataset", "digits", "--eval", "mnist1d"])
    assert clash.exit_code == 2 and "--eval mnist1d differs from --dataset digits" in clash.output


# ----------------------------------------------------------------------------- experiment


def test_quick_oneshot_experiment_writes_its_outputs(tmp_path: Path) -> None:
    from fedot.experiments.fusion import run_fusion_experiment

    summary = run_fusion_experiment("fusion-oneshot", out_dir=tmp_path, quick=True)
    for name in ("summary.json", "summary.md", "oneshot-digits-mlp-k2.png", "oneshot-digits-cnn-k2.png"):
        assert (tmp_path / name).is_file()
    table = summary["settings"]["digits-mlp-k2"]["table"]
    assert set(METHODS) | {"ensemble", "parents (mean)"} <= set(table)
    for row in table.values():
        assert 0.0 <= row["accuracy"]["mean"] <= 1.0
        assert 0.0 <= row["finetuned_accuracy"]["mean"] <= 1.0
    assert table["ensemble"]["agreement"]["mean"] == 1.0
    assert "| ot-weights |" in (tmp_path / "summary.md").read_text()
    json.loads((tmp_path / "summary.json").read_text())


def test_quick_oneshot_mnist_experiment_writes_its_outputs(tmp_path: Path) -> None:
    from fedot.experiments.fusion import run_fusion_experiment

    # Execute: the quick variant of the MNIST-5k (28 × 28) one-shot experiment
    summary = run_fusion_experiment("fusion-oneshot-mnist", out_dir=tmp_path, quick=True)
    # Assert: outputs written, every method ran, the ensemble is above chance on 10 classes
    for name in ("summary.json", "summary.md", "oneshot-mnist5k-mlp-k2.png"):
        assert (tmp_path / name).is_file()
    setting = summary["settings"]["mnist5k-mlp-k2"]
    assert setting["config"]["dataset"] == "mnist-5k"
    table = setting["table"]
    assert set(METHODS) | {"ensemble", "parents (mean)"} <= set(table)
    assert table["ensemble"]["accuracy"]["mean"] > 0.3
    assert "## mnist5k-mlp-k2" in (tmp_path / "summary.md").read_text()
