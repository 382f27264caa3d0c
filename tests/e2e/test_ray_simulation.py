"""``flwr run .`` through Ray simulation on fedot's managed local SuperLink (slow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fedot.fl.inline import project_root, run_inline

pytestmark = pytest.mark.slow


CASES = {
    "fedavg": {"rounds": 2},
    "fedavot": {"rounds": 2, "dataset": "synthetic-regression", "model.name": "linear",
                "partition.kind": "natural", "participation.evaluate-split": "train",
                "participation.k": 1},
    # a client that replies NaN: quarantined in Ray simulation exactly as in-process
    "fedavg-fault": {"rounds": 2, "fault.kind": "nan", "fault.partitions": "1"},
}


@pytest.mark.parametrize("scheme", list(CASES))
def test_ray_simulation_completes_and_matches_inline(tmp_path: Path, scheme: str) -> None:
    # Prepare: a test-only SuperLink port, so a user's warm SuperLink is never touched
    env = {**os.environ, "FEDOT_SUPERLINK_PORT": "39391", "FEDOT_CONTROL_PORT": "39393",
           "FLWR_LOG_LEVEL": "WARNING"}
    fedot = str(Path(sys.executable).parent / "fedot")
    overrides = CASES[scheme]
    sets = [arg for k, v in overrides.items() for arg in ("--set", f"{k}={v}")]
    args = ["run", scheme.removesuffix("-fault"), "--backend", "ray", "--clients", "2", *sets]
    # Execute
    proc = subprocess.run([fedot, *args, "--out", str(tmp_path / "ray")], env=env,
                          cwd=project_root(), capture_output=True, text=True, timeout=420)
    # Assert: the run completed through Flower and wrote its results
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ray = json.loads((tmp_path / "ray" / "results.json").read_text())
    assert ray["status"] == "completed" and len(ray["rounds"]) == 3
    # Assert: the managed SuperLink was stopped again
    check = subprocess.run(
        [sys.executable, "-c", "from fedot.fl.runner import local_superlink_pids as p; print(p())"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert check.stdout.strip() == "[]"
    # Assert: same app objects, same seed → the in-process runner gives the same numbers
    if "fault.kind" in overrides:
        for entry in ray["rounds"][1:]:
            assert [r["partition_id"] for r in entry["train_rejected"]] == [1]
    run_inline({"scheme": scheme.removesuffix("-fault"), "clients": 2, **overrides,
                "out-dir": str(tmp_path / "inline")}, 2)
    inline = json.loads((tmp_path / "inline" / "results.json").read_text())
    assert [e["server"] for e in ray["rounds"]] == [e["server"] for e in inline["rounds"]]
