"""The MNIST-5k experiments of issue 16 mirror their toy counterparts, on real 28 × 28 MNIST.

The quick runs of the registered (federated) experiments are in ``tests/e2e/test_cli.py``
(``test_every_experiment_runs_quick`` is parametrised over the whole registry); the quick
``fusion-oneshot-mnist`` run is in ``tests/fedot/fusion/test_oneshot.py``. These tests only check
the registrations (no training).
"""

from __future__ import annotations

import pytest

from fedot.config import load_run_config
from fedot.experiments import EXPERIMENTS
from fedot.experiments.fusion import FUSION_EXPERIMENTS
from fedot.learning import build_model


@pytest.mark.parametrize(("name", "toy"), [("otfusion-drift-mnist", "otfusion-drift"),
                                           ("subflot-cnn-mnist", "subflot-paper")])
def test_mnist_experiment_has_the_toy_arms_and_valid_configs(name: str, toy: str) -> None:
    # Prepare
    exp, ref = EXPERIMENTS[name], EXPERIMENTS[toy]
    # Assert: the same arms (labels and overrides) as the toy experiment, three seeds
    assert [(a.label, dict(a.overrides)) for a in exp.arms] == \
        [(a.label, dict(a.overrides)) for a in ref.arms]
    assert tuple(exp.seeds) == (0, 1, 2) and tuple(exp.quick_seeds) == (0,)
    # every arm is a valid run config on mnist-5k, and so is its quick variant
    for arm in exp.arms:
        assert load_run_config({**exp.base, **arm.overrides}).dataset == "mnist-5k"
        load_run_config({**exp.base, **exp.quick, **arm.overrides})


def test_otfusion_drift_mnist_keeps_the_drift_settings() -> None:
    exp, ref = EXPERIMENTS["otfusion-drift-mnist"], EXPERIMENTS["otfusion-drift"]
    assert {k: v for k, v in exp.base.items() if k != "dataset"} == dict(ref.base)
    assert exp.base["local.epochs"] == 20 and exp.base["partition.alpha"] == 0.1


def test_subflot_cnn_mnist_prunes_the_28x28_cnn() -> None:
    exp = EXPERIMENTS["subflot-cnn-mnist"]
    cfg = load_run_config(exp.base)
    assert cfg.model.name == "cnn" and cfg.partition.kind == "dirichlet"
    assert cfg.submodel.rates == "0,0.25,0.5,0.75"
    assert exp.report is not None
    # at 28 × 28 the CNN has a third conv block (64 channels) before the hidden linear layer
    convs = [m for m in build_model("cnn", (1, 28, 28), 10, hidden=cfg.model.hidden).modules()
             if type(m).__name__ == "Conv2d"]
    assert [c.out_channels for c in convs] == [16, 32, 64]


def test_fusion_oneshot_mnist_settings() -> None:
    exp = FUSION_EXPERIMENTS["fusion-oneshot-mnist"]
    assert exp.kind == "oneshot" and tuple(exp.seeds) == (0, 1, 2)
    assert {cfg.dataset for cfg in exp.settings.values()} == {"mnist-5k"}
    assert {cfg.dataset for cfg in exp.quick_settings.values()} == {"mnist-5k"}
    assert {(cfg.model, cfg.parents) for cfg in exp.settings.values()} == {("mlp", 2), ("mlp", 5),
                                                                        ("cnn", 2)}
    # the documented toy experiment keeps its own settings
    assert all(cfg.dataset != "mnist-5k" for cfg in FUSION_EXPERIMENTS["fusion-oneshot"]
               .settings.values())
