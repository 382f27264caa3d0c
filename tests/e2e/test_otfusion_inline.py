"""OTFusion aggregation end to end through the real ServerApp/ClientApp (in-process grid)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from fedot.fl.inline import run_inline

SMALL = {"clients": 3, "rounds": 2, "local.epochs": 2, "partition.alpha": 0.3,
         "model.hidden": 32}


def _run(tmp: Path, scheme: str, **overrides: object) -> dict:
    config = {**SMALL, "scheme": scheme, "out-dir": str(tmp), **overrides}
    run_inline(config, int(config["clients"]))
    return json.loads((tmp / "results.json").read_text())


def test_weights_metric_from_a_common_init_is_fedavg(tmp_path: Path) -> None:
    # Execute: clients start every round from the same global model, so their neurons are
    # already aligned: the plans must be the identity and the result FedAvg's
    fused = _run(tmp_path / "otf", "otfusion")
    plain = _run(tmp_path / "avg", "fedavg")
    # Assert
    for entry in fused["rounds"][1:]:
        for layer in entry["aggregation"]["layers"].values():
            assert layer["off_identity"] == 0.0
    a = torch.load(tmp_path / "otf" / "checkpoint.pt")["arrays"]
    b = torch.load(tmp_path / "avg" / "checkpoint.pt")["arrays"]
    for name in b:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6)
    assert fused["final"]["accuracy"] == pytest.approx(plain["final"]["accuracy"], abs=1e-9)


@pytest.mark.parametrize(
    "overrides",
    [{"fusion.metric": "activations"}, {"fusion.metric": "activations", "fusion.probe": "noise"},
     {"fusion.method": "sinkhorn", "fusion.reg": 0.001},
     {"fusion.basis": "sae", "fusion.sae-steps": 30}],
)
def test_otfusion_options_run(tmp_path: Path, overrides: dict) -> None:
    # Execute
    res = _run(tmp_path, "otfusion", rounds=1, **overrides)
    # Assert
    assert res["status"] == "completed"
    assert res["final"]["accuracy"] > 0.1  # above chance (10 classes); not a quality bar
    agg = res["rounds"][-1]["aggregation"]
    if overrides.get("fusion.basis") == "sae":
        assert agg["basis"] == "sae"
    else:
        assert set(agg["layers"]) == {"1", "3"}


def test_nan_reply_is_set_aside_before_alignment(tmp_path: Path) -> None:
    # Execute
    res = _run(tmp_path, "otfusion", rounds=1, **{"fault.kind": "nan", "fault.partitions": "1"})
    # Assert
    last = res["rounds"][-1]
    assert [r["partition_id"] for r in last["train_rejected"]] == [1]
    assert res["final"]["accuracy"] > 0.2


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("metric", ["weights", "activations"])
def test_otfusion_aligns_on_the_gpu(
    tmp_path: Path, metric: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Arrange: record the device of every cost matrix the alignment builds
    import fedot.fusion.align as align

    devices: list[str] = []
    original = align.transport_plan

    def spy(cost: torch.Tensor, *args: object, **kwargs: object) -> object:
        devices.append(cost.device.type)
        return original(cost, *args, **kwargs)

    monkeypatch.setattr(align, "transport_plan", spy)
    # Execute
    res = _run(tmp_path, "otfusion", rounds=1, device="cuda", **{"fusion.metric": metric})
    # Assert
    assert res["status"] == "completed" and res["final"]["accuracy"] > 0.1
    assert devices and set(devices) == {"cuda"}
