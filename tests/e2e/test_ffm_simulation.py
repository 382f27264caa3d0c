"""The batched simulation of per-step FFM equals the Flower path, and ffm-2d --quick shows signal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from fedot.config import load_run_config
from fedot.experiments.ffm import BASE_2D, QUICK_2D, SimulatedRun
from fedot.fl.flow_sim import check_simulable, simulate_flow
from fedot.fl.inline import load_apps, run_inline

SMALL = {
    "scheme": "ffm", "clients": 3, "rounds": 6, "ffm.samples": 600, "ffm.eval-samples": 200,
    "ffm.local-steps": 1, "ffm.batch-size": 64, "ffm.hidden": 32, "ffm.layers": 2,
    "ffm.eval-every": 3, "ffm.nfe": "1,10", "ffm.candidates": 32, "ffm.potential-rounds": 3,
    "ffm.split": "dirichlet", "ffm.alpha": 0.5, "data.local-test-fraction": 0.0,
    "fraction-evaluate": 0.0,
}


@pytest.mark.parametrize("coupling", ["vanilla", "lot", "got"])
def test_simulation_reproduces_the_flower_run(tmp_path: Path, coupling: str) -> None:
    # Prepare: the same config through the real ServerApp/ClientApp and through the simulation
    over = {**SMALL, "ffm.coupling": coupling}
    run_inline({**over, "out-dir": str(tmp_path / "flower")}, 3)
    _, _, defaults = load_apps()
    cfg = load_run_config({**defaults, **over, "out-dir": str(tmp_path / "sim")})
    # Execute
    simulate_flow(cfg, tmp_path / "sim")
    # Assert: final arrays to float rounding, every evaluated metric of every evaluation round
    flower = torch.load(tmp_path / "flower" / "checkpoint.pt")["arrays"]
    sim = torch.load(tmp_path / "sim" / "final_arrays.pt")
    assert set(flower) == set(sim)
    for k in sim:
        torch.testing.assert_close(torch.as_tensor(flower[k]), sim[k], rtol=1e-5, atol=1e-6)
    a = json.loads((tmp_path / "flower" / "results.json").read_text())
    b = json.loads((tmp_path / "sim" / "results.json").read_text())
    evaluated = {e["round"]: e["server"] for e in a["rounds"] if e["server"]}
    simulated = {e["round"]: e["server"] for e in b["rounds"]}
    assert sorted(evaluated) == sorted(simulated) == ([0, 6, 9] if coupling == "got" else [0, 3, 6])
    for rnd, metrics in evaluated.items():
        assert metrics == pytest.approx(simulated[rnd], rel=1e-4)
    assert b["engine"]["name"] == "batched-simulation"


def test_non_per_step_runs_are_refused_naming_the_key() -> None:
    _, _, defaults = load_apps()
    cfg = load_run_config({**defaults, **SMALL, "ffm.local-steps": 5, "fraction-train": 0.5})
    with pytest.raises(ValueError, match="ffm.local-steps=5.*fraction-train=0.5"):
        check_simulable(cfg)
    with pytest.raises(ValueError, match="clients=3"):
        check_simulable(load_run_config({**defaults, **SMALL}), reference="torchcfm")


@pytest.mark.parametrize("arm", [
    {"ffm.coupling": "vanilla"},
    {"ffm.coupling": "lot"},
    {"ffm.coupling": "got"},
    {"clients": 1, "ffm.split": "iid", "ffm.batch-size": 256, "ffm.coupling": "lot",
     "reference": "torchcfm"},
])
def test_ffm_2d_quick_moves_w2_well_off_its_initial_value(tmp_path: Path, arm: dict) -> None:
    # Prepare: the quick settings of the ffm-2d experiment
    pytest.importorskip("torchcfm") if "reference" in arm else None
    # Execute
    SimulatedRun()({**BASE_2D, **QUICK_2D, **arm}, tmp_path)
    # Assert: at NFE 100 the samples get far closer to the target than the initial field's
    rounds = json.loads((tmp_path / "results.json").read_text())["rounds"]
    first, last = rounds[0]["server"]["w2-nfe100"], rounds[-1]["server"]["w2-nfe100"]
    assert last < 0.6 * first, (first, last)
