"""Progress display: runs done/total, running runs' round and metric, ETA; silent when disabled."""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fedot.cli import app
from fedot.experiments.progress import ProgressDisplay, format_seconds
from fedot.fl.results import PROGRESS_FILE


def _write(run_dir: Path, round_: int, total: int, **server: float) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / PROGRESS_FILE).write_text(json.dumps(
        {"round": round_, "total": total, "server": server, "status": "running"}))


def test_snapshot_counts_finished_runs_and_the_rounds_of_running_ones(tmp_path: Path) -> None:
    # Prepare: 2 runs; the first is at round 5 of 10
    tasks = [("a seed=0", tmp_path / "a"), ("b seed=0", tmp_path / "b")]
    display = ProgressDisplay(tasks, stream=io.StringIO())
    _write(tmp_path / "a", 5, 10, loss=0.5, accuracy=0.8123)
    # Execute / Assert: half of one run of two is a quarter of the work
    snap = display.snapshot()
    assert snap.done == 0 and snap.fraction == pytest.approx(0.25)
    assert snap.running == ("a seed=0: round 5/10 accuracy=0.8123",)  # accuracy is preferred
    assert snap.eta_s == pytest.approx(3 * snap.elapsed_s)
    display.task_done(1)
    snap = display.snapshot()
    assert snap.done == 1 and snap.fraction == pytest.approx(0.75)


def test_a_progress_file_from_an_earlier_run_is_ignored(tmp_path: Path) -> None:
    _write(tmp_path / "a", 10, 10, accuracy=0.9)
    old = time.time() - 3600
    os.utime(tmp_path / "a" / PROGRESS_FILE, (old, old))
    display = ProgressDisplay([("a", tmp_path / "a")], stream=io.StringIO())
    assert display.snapshot().running == () and display.snapshot().fraction == 0.0


def test_off_a_terminal_each_finished_run_is_one_line(tmp_path: Path) -> None:
    # Prepare
    stream = io.StringIO()
    tasks = [("a", tmp_path / "a"), ("b", tmp_path / "b")]
    # Execute
    with ProgressDisplay(tasks, stream=stream, interval=0.01) as display:
        _write(tmp_path / "a", 3, 3, accuracy=0.5)
        display.task_done(0)
        _write(tmp_path / "b", 1, 3, accuracy=0.25)
        display.task_done(1)
    # Assert
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("[1/2 runs] done a: round 3/3 accuracy=0.5 · starting · elapsed ")
    assert lines[1].startswith("[2/2 runs] done b: round 1/3 accuracy=0.25 · elapsed ")
    assert "ETA 0s" in lines[1] and len(lines) == 2


def test_disabled_shows_nothing(tmp_path: Path) -> None:
    stream = io.StringIO()
    with ProgressDisplay([("a", tmp_path / "a")], stream=stream, enabled=False) as display:
        display.task_done(0)
    assert stream.getvalue() == ""


def test_format_seconds() -> None:
    assert [format_seconds(x) for x in (None, 5.4, 75.2, 3725)] == ["?", "5s", "1m15s", "1h02m"]


def test_fedot_run_shows_progress_and_quiet_hides_it(tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["run", "fedavg", "--backend", "inline", "--set", "rounds=2", "--clients", "3"]
    shown = runner.invoke(app, [*args, "--out", str(tmp_path / "a")])
    quiet = runner.invoke(app, [*args, "--quiet", "--out", str(tmp_path / "b")])
    assert shown.exit_code == 0 and quiet.exit_code == 0, shown.output + quiet.output
    assert "[1/1 runs] done fedavg: round 2/2 accuracy=" in shown.output
    assert "runs]" not in quiet.output
    progress = json.loads((tmp_path / "a" / PROGRESS_FILE).read_text())
    assert progress["round"] == 2 and progress["total"] == 2 and progress["status"] == "completed"


def _fake_runs(arms: int, seeds: int) -> dict[str, list[dict[str, object]]]:
    return {f"arm{a}": [{"final": {"accuracy": 0.5, "loss": 0.2},
                         "rounds": [{"round": r, "server": {"accuracy": 0.1 * r + 0.01 * a + s,
                                                            "loss": 1.0 / (r + 1)}}
                                    for r in range(6)]} for s in range(seeds)]
            for a in range(arms)}


def test_comparison_plot_styles_each_arm_apart_with_the_legend_outside() -> None:
    import matplotlib.pyplot as plt
    from matplotlib.collections import PolyCollection

    from fedot.experiments.compare import comparison_figure

    # Execute
    fig = comparison_figure(_fake_runs(arms=5, seeds=1), title="t")
    try:
        # Assert: one figure legend with every arm, none inside a panel
        assert [len(leg.get_texts()) for leg in fig.legends] == [5]
        assert all(ax.get_legend() is None for ax in fig.axes)
        styles = {(ln.get_color(), ln.get_linestyle(), ln.get_marker())
                  for ln in fig.axes[0].get_lines()}
        assert len(styles) == 5 and len({ls for _, ls, _ in styles}) == 4
        # one seed: no spread band, and the title says so
        assert not any(isinstance(c, PolyCollection) for ax in fig.axes for c in ax.collections)
        assert fig._suptitle.get_text() == "t (one seed)"
    finally:
        plt.close(fig)
    fig = comparison_figure(_fake_runs(arms=2, seeds=2), title="t")
    try:
        assert any(isinstance(c, PolyCollection) for ax in fig.axes for c in ax.collections)
    finally:
        plt.close(fig)
