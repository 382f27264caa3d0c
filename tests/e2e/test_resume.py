"""Exact resume: a run killed at any point and resumed equals the uninterrupted run (inline).

Kill points: right after round k's checkpoint, during the write of ``results.json`` or of the
checkpoint (a partial temporary file is left behind), between the two writes, after the last
round but before the run was finished, twice in one run, and a real SIGKILL of a subprocess at a
seeded random moment. Compared with the uninterrupted run: the final global arrays byte for byte
and every recorded value of every round, except wall-clock times.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from fedot.cli import app
from fedot.fl import results as results_module
from fedot.fl.inline import run_inline
from fedot.fl.results import CHECKPOINT_FILE, RESULTS_FILE, ResultsRecorder
from fedot.fl.server import ResumeError

CONFIGS: dict[str, dict[str, Any]] = {
    # node sampling (fraction < 1) is seeded by the true round
    "fedavg": {"scheme": "fedavg", "rounds": 4, "clients": 4, "fraction-train": 0.5,
               "fraction-evaluate": 0.75},
    # availability RNG and the Markov chain's on/off state
    "fedavot": {"scheme": "fedavot", "rounds": 5, "clients": 4,
                "participation.availability": "markov"},
    # GOT: 2 potential rounds, then 3 flow rounds; the server evaluates by round number
    "ffm-got": {"scheme": "ffm", "clients": 3, "rounds": 3, "ffm.coupling": "got",
                "ffm.potential-rounds": 2, "ffm.samples": 600, "ffm.eval-samples": 200,
                "ffm.local-steps": 5, "ffm.batch-size": 64, "ffm.hidden": 32, "ffm.layers": 2,
                "ffm.eval-every": 2, "ffm.nfe": "1,3,10", "ffm.candidates": 32,
                "ffm.potential-local-steps": 2},
    # per-step GOT: the server's Adam moments (potential, then velocity) live in the checkpoint
    "ffm-step": {"scheme": "ffm", "clients": 3, "rounds": 3, "ffm.coupling": "got",
                 "ffm.potential-rounds": 2, "ffm.samples": 600, "ffm.eval-samples": 200,
                 "ffm.local-steps": 1, "ffm.batch-size": 64, "ffm.hidden": 32, "ffm.layers": 2,
                 "ffm.eval-every": 2, "ffm.nfe": "1,3", "ffm.candidates": 32},
    # per-client histories (OTP) keyed by partition, mixed rates
    "subflot": {"scheme": "subflot", "rounds": 4, "clients": 4, "model.hidden": 16,
                "local.epochs": 1},
}
# two train replies a round, each >= 0.1 s: rounds 3..5 last >= 0.6 s (a window for SIGKILL)
CONFIGS["fedavot-slow"] = {**CONFIGS["fedavot"], "fault.kind": "slow", "fault.partitions": "0,1,2,3",
                           "fault.slow-seconds": 0.1}
TOTAL = {"fedavg": 4, "fedavot": 5, "ffm-got": 5, "ffm-step": 5, "fedavot-slow": 5, "subflot": 4}
#: Wall-clock values: the only ones allowed to differ.
WALL_CLOCK = {"time_s", "elapsed_s", "train-time"}

runner = CliRunner()


class Killed(BaseException):
    """Stands for the process dying (not an Exception: nothing may handle it)."""


def _run(name: str, out: Path, **extra: Any) -> None:
    config = CONFIGS[name]
    run_inline({**config, "out-dir": str(out), **extra}, config["clients"])


def _resume(name: str, out: Path) -> None:
    config = CONFIGS[name]
    run_inline({**config, "resume": str(out)}, config["clients"])


def _without_wall_clock(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_wall_clock(v) for k, v in value.items() if k not in WALL_CLOCK}
    if isinstance(value, list):
        return [_without_wall_clock(v) for v in value]
    return value


def _csv_without_time(path: Path) -> list[dict[str, str]]:
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    return [{k: v for k, v in row.items() if "time" not in k} for row in rows]


def assert_same_run(resumed: Path, reference: Path) -> None:
    """Same final arrays (bytes), same per-round records (but wall clock), completed."""
    a = torch.load(resumed / CHECKPOINT_FILE, weights_only=True)
    b = torch.load(reference / CHECKPOINT_FILE, weights_only=True)
    assert a["round"] == b["round"]
    assert list(a["arrays"]) == list(b["arrays"])
    for key, value in b["arrays"].items():
        assert a["arrays"][key].dtype == value.dtype
        assert np.array_equal(a["arrays"][key].numpy(), value.numpy()), key
    res = json.loads((resumed / RESULTS_FILE).read_text())
    ref = json.loads((reference / RESULTS_FILE).read_text())
    assert res["status"] == "completed"
    assert [e["round"] for e in res["rounds"]] == list(range(b["round"] + 1))  # none lost/repeated
    for got, want in zip(res["rounds"], ref["rounds"], strict=True):
        assert _without_wall_clock(got) == _without_wall_clock(want), f"round {want['round']}"
    assert res["final"] == ref["final"]
    assert res.get("setup") == ref.get("setup")
    assert _csv_without_time(resumed / "metrics.csv") == _csv_without_time(reference / "metrics.csv")
    assert json.loads((resumed / "config.json").read_text()) == {
        **json.loads((reference / "config.json").read_text()), "out-dir": str(resumed)}
    assert not list(resumed.glob(".*.tmp"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One uninterrupted run per config."""
    out = {}
    for name in CONFIGS:
        out[name] = tmp_path_factory.mktemp(f"ref-{name}")
        _run(name, out[name])
    return out


def _kill_after_checkpoint(monkeypatch: pytest.MonkeyPatch, rounds: set[int]) -> None:
    """Die right after the checkpoint of any round in ``rounds`` is written (once each)."""
    original = ResultsRecorder._save_checkpoint
    pending = set(rounds)

    def save(self: ResultsRecorder, server_round: int, arrays: Any) -> None:
        original(self, server_round, arrays)
        if server_round in pending:
            pending.discard(server_round)
            raise Killed(f"after round {server_round}")

    monkeypatch.setattr(ResultsRecorder, "_save_checkpoint", save)


def _kill_during_write(monkeypatch: pytest.MonkeyPatch, file: str, server_round: int,
                       partial: bool) -> None:
    """Die while writing ``file`` for ``server_round``: half a temporary file, or nothing."""
    original = results_module.atomic_write
    count = {"n": 0}

    def write(path: Path, data: bytes) -> None:
        if path.name == file:
            count["n"] += 1
            if count["n"] == server_round + 1:  # rounds 0, 1, ... each write the file once
                if partial:
                    path.with_name(f".{path.name}.{os.getpid()}.tmp").write_bytes(
                        data[: len(data) // 2])
                raise Killed(f"writing {file} of round {server_round}")
        original(path, data)

    monkeypatch.setattr(results_module, "atomic_write", write)


KILLS = ["after-0", "after-2", "results-write-3", "checkpoint-write-2", "between-writes-1",
         "after-last"]
CASES = [
    *[("fedavot", kill) for kill in KILLS],
    *[("fedavg", kill) for kill in ("after-2", "checkpoint-write-2", "between-writes-1",
                                    "after-last")],
    # after-2: the last potential round; checkpoint-write-3: the first flow round; after-4: round 5
    # needs the clients' Adam state of round 4, which only the disk mirror carries over a resume
    *[("ffm-got", kill) for kill in ("after-2", "checkpoint-write-3", "after-4", "after-last")],
    *[("ffm-step", kill) for kill in ("after-1", "after-3")],
    *[("subflot", kill) for kill in ("after-1", "checkpoint-write-2")],
]


@pytest.mark.parametrize(("name", "kill"), CASES)
def test_resume_after_kill_equals_uninterrupted_run(
    name: str, kill: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    reference: dict[str, Path],
) -> None:
    # Prepare: a run that dies at the kill point
    what, _, at = kill.rpartition("-")
    k = TOTAL[name] if at == "last" else int(at)
    with monkeypatch.context() as patch:
        if what == "after":
            _kill_after_checkpoint(patch, {k})
        elif what == "results-write":
            _kill_during_write(patch, RESULTS_FILE, k, partial=True)
        elif what == "checkpoint-write":
            _kill_during_write(patch, CHECKPOINT_FILE, k, partial=True)
        else:  # results.json of round k written, its checkpoint not
            _kill_during_write(patch, CHECKPOINT_FILE, k, partial=False)
        with pytest.raises(Killed):
            _run(name, tmp_path)
    # Execute
    _resume(name, tmp_path)
    # Assert
    assert_same_run(tmp_path, reference[name])
    resumed = json.loads((tmp_path / RESULTS_FILE).read_text())["resumed"]
    expected = k if what == "after" else k - 1
    assert [r["after_round"] for r in resumed] == [expected]


def test_resume_twice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                      reference: dict[str, Path]) -> None:
    # Prepare: killed after round 1, resumed and killed after round 3
    with monkeypatch.context() as patch:
        _kill_after_checkpoint(patch, {1, 3})
        with pytest.raises(Killed):
            _run("fedavot", tmp_path)
        with pytest.raises(Killed):
            _resume("fedavot", tmp_path)
    # Execute
    _resume("fedavot", tmp_path)
    # Assert
    assert_same_run(tmp_path, reference["fedavot"])
    resumed = json.loads((tmp_path / RESULTS_FILE).read_text())["resumed"]
    assert [r["after_round"] for r in resumed] == [1, 3]


def _rounds_done(out: Path) -> int:
    try:
        return len(json.loads((out / RESULTS_FILE).read_text())["rounds"])
    except FileNotFoundError:
        return 0


_CHILD = """
import json, sys
from fedot.fl.inline import run_inline
config = json.loads(sys.argv[1])
run_inline(config, config["clients"])
"""


@pytest.mark.slow  # a subprocess; ~10-20 s on 2 shared cores
def test_sigkill_at_a_random_moment_then_cli_resume(tmp_path: Path,
                                                    reference: dict[str, Path]) -> None:
    # Prepare: the run in a subprocess, SIGKILLed at a seeded random moment of rounds 3..5
    # (any moment, a checkpoint write included: os.replace keeps the previous one whole)
    delay = random.Random(20260101).uniform(0.0, 0.6)
    # the child must use this process's thread count: float reductions depend on it
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads()),
           "FLWR_LOG_LEVEL": "ERROR"}
    config = {**CONFIGS["fedavot-slow"], "out-dir": str(tmp_path)}
    child = subprocess.Popen([sys.executable, "-c", _CHILD, json.dumps(config)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while _rounds_done(tmp_path) < 3 and child.poll() is None:  # round 2 done: the child is warm
        assert time.monotonic() < deadline, "the child run never finished round 2"
        time.sleep(0.002)
    time.sleep(delay)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert json.loads((tmp_path / RESULTS_FILE).read_text())["status"] == "running"
    # Execute
    result = runner.invoke(app, ["run", "--resume", str(tmp_path), "--backend", "inline"])
    # Assert
    assert result.exit_code == 0, result.output
    assert "final accuracy" in result.output
    assert_same_run(tmp_path, reference["fedavot-slow"])


def test_refuses_a_complete_run_another_config_and_no_checkpoint(
    tmp_path: Path, reference: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
) -> None:
    # complete
    with pytest.raises(ResumeError, match="nothing to resume"):
        _resume("fedavg", reference["fedavg"])
    result = runner.invoke(app, ["run", "--resume", str(reference["fedavg"]), "--backend", "inline"])
    assert result.exit_code == 1 and "nothing to resume" in result.output
    # another config (every differing key is named)
    with monkeypatch.context() as patch:
        _kill_after_checkpoint(patch, {1})
        with pytest.raises(Killed):
            _run("fedavg", tmp_path / "killed")
    config = {**CONFIGS["fedavg"], "resume": str(tmp_path / "killed"), "local.lr": 0.5, "seed": 3}
    with pytest.raises(ResumeError, match=r"local\.lr: checkpoint .*requested 0\.5.*; seed"):
        run_inline(config, 4)
    # out-dir elsewhere
    with pytest.raises(ResumeError, match="its own directory"):
        _run("fedavg", tmp_path / "elsewhere", resume=str(tmp_path / "killed"))
    # no checkpoint (checkpoint = false, or not a run directory)
    _run("fedavg", tmp_path / "nockpt", checkpoint=False, rounds=1)
    with pytest.raises(ResumeError, match="no checkpoint.pt"):
        run_inline({**CONFIGS["fedavg"], "rounds": 1, "checkpoint": False,
                    "resume": str(tmp_path / "nockpt")}, 4)
    # the refusals left the interrupted run resumable
    _resume("fedavg", tmp_path / "killed")
    assert_same_run(tmp_path / "killed", reference["fedavg"])
