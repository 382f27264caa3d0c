"""A real local deployment (flower-superlink + 2 flower-supernode processes on 127.0.0.1) (slow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fedot.fl.inline import project_root, run_inline

pytestmark = pytest.mark.slow


def test_local_cluster_runs_the_app_and_matches_inline(tmp_path: Path) -> None:
    # Prepare: test-only Flower home and ports on loopback, so a user's cluster is never touched
    env = {**os.environ, "FEDOT_FLWR_HOME": str(tmp_path / "flwr"), "FLWR_LOG_LEVEL": "WARNING"}
    fedot = str(Path(sys.executable).parent / "fedot")

    def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run([fedot, *args], env=env, cwd=project_root(), capture_output=True,
                              text=True, timeout=timeout)

    up = cli("cluster", "up", "--nodes", "2", "--port", "19390", "--node-port", "19394")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        # Execute
        run = cli("run", "fedavg", "--backend", "fedot-local", "--clients", "2",
                  "--set", "rounds=1", "--out", str(tmp_path / "dep"), timeout=420)
    finally:
        down = cli("cluster", "down")
    # Assert: completed through the deployment stack, everything stopped again
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "supernode-1" in down.stdout
    dep = json.loads((tmp_path / "dep" / "results.json").read_text())
    assert dep["status"] == "completed"
    config = (tmp_path / "flwr" / "config.toml").read_text()
    assert '[superlink.fedot-local]' in config and "127.0.0.1:19390" in config
    # Assert: same partitions (partition-id via --node-config), same numbers as in-process
    run_inline({"clients": 2, "rounds": 1, "out-dir": str(tmp_path / "inline")}, 2)
    inline = json.loads((tmp_path / "inline" / "results.json").read_text())
    assert [e["server"] for e in dep["rounds"]] == [e["server"] for e in inline["rounds"]]
