"""The end-to-end benchmarks: the bare Flower baseline app, peak-memory sampling, scale runs."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

from fedot.bench.e2e import (
    BARE_SERVERAPP,
    PeakMemory,
    _inline_scale,
    bench_ray_overhead,
)
from fedot.fl.inline import project_root
from fedot.fl.runner import stage_app


def test_staged_app_differs_only_in_its_serverapp() -> None:
    # Execute
    root = project_root()
    with stage_app(root) as plain, stage_app(root, serverapp=BARE_SERVERAPP) as bare:
        files = sorted(p.relative_to(plain).as_posix() for p in plain.rglob("*") if p.is_file())
        bare_files = sorted(p.relative_to(bare).as_posix() for p in bare.rglob("*") if p.is_file())
        ours = (plain / "pyproject.toml").read_text().splitlines()
        theirs = (bare / "pyproject.toml").read_text().splitlines()
    # Assert: the same files; only the ServerApp line changed; the app code, not the venv
    assert files == bare_files and "strategies/server_app.py" in files
    assert "fedot/fl/runner.py" in files and not any(f.startswith((".venv", "docs", ".flwr"))
                                                     for f in files)
    assert ours == (root / "pyproject.toml").read_text().splitlines()
    changed = [(a, b) for a, b in zip(ours, theirs, strict=True) if a != b]
    assert changed == [('serverapp = "strategies.server_app:app"', f'serverapp = "{BARE_SERVERAPP}"')]


def test_peak_memory_sees_a_child_process_allocation() -> None:
    # Execute: a child that holds ~200 MiB for a while
    code = "import numpy as np, time; a = np.ones(200 * 2**20 // 8); a += 1; time.sleep(1.5)"
    with PeakMemory(interval=0.1) as mem:
        subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    # Assert: measured independently of the child (PSS from /proc)
    assert 180 < mem.peak / 2**20 < 400 and mem.processes >= 1


@pytest.mark.slow
def test_inline_scale_run_reports_rounds_and_memory(tmp_path: Path) -> None:
    # Execute
    row = _inline_scale(50, 2, tmp_path / "inline")
    # Assert
    assert row["clients"] == 50 and len(row["round_s"]) == 2
    assert all(t > 0 for t in row["round_s"]) and row["peak_mib"] > 50


@pytest.mark.slow
def test_ray_overhead_runs_both_apps_through_flwr(monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare: test-only SuperLink ports (a user's warm SuperLink is never touched)
    monkeypatch.setenv("FEDOT_SUPERLINK_PORT", "39591")
    monkeypatch.setenv("FEDOT_CONTROL_PORT", "39593")
    monkeypatch.setenv("FLWR_LOG_LEVEL", "WARNING")
    # Execute
    res = bench_ray_overhead(rounds=3, clients=2, repeats=1)
    # Assert: both apps completed their rounds on the same task and learned
    assert math.isfinite(res["ratio"]) and res["ratio"] > 0
    acc = res["final_accuracy"]
    assert set(acc) == {"fedot", "flower", "inline"}
    assert all(a > 0.3 for a in acc.values())  # 10 classes: well above chance after 3 rounds
    assert acc["fedot"] == acc["inline"]  # same app objects, same seeds
    # Flower's FedAvg trains the same clients from the same start: the same model up to float
    # rounding in the average
    assert abs(acc["flower"] - acc["fedot"]) < 0.02
