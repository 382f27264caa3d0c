"""fedot.bench.kernels on tiny sizes: rows, times, the markdown section, exact plans vs ot.emd."""

from __future__ import annotations

import json
import math

import numpy as np
import ot
import pytest
import torch

from fedot.bench.kernels import _timed, bench_kernels, kernel_lines
from fedot.bench.timing import sync_device
from fedot.ot import pairwise_sq_dists, transport_plan


@pytest.fixture(scope="module")
def result() -> dict:
    # reg 0.01 still takes the log domain (ptp(C)/reg > 30) in fewer iterations than 0.005
    return bench_kernels(repeats=2, exact_sizes=(32, 48), sinkhorn_sizes=(32,),
                         sinkhorn_regs=(0.05, 0.01), batch_sizes=(16,), dims=(2,))


def test_rows_and_times(result: dict) -> None:
    assert result["device"] == "cpu"
    assert [r["n"] for r in result["exact"]] == [32, 48]
    assert [(r["n"], r["reg"]) for r in result["sinkhorn"]] == [(32, 0.05), (32, 0.01)]
    assert [(r["dim"], r["batch"]) for r in result["coupling"]] == [(2, 16)]
    assert len(result["load_start"]) == 3 and len(result["load_end"]) == 3
    assert result["repeats"] == 2
    for section in ("exact", "sinkhorn", "coupling"):
        for row in result[section]:
            times = {k: v for k, v in row.items() if k.endswith("_s") and k != "pot_emd_probe_s"}
            assert times
            for key, value in times.items():
                assert value is not None and math.isfinite(value) and value > 0, (section, key)
    json.dumps(result, allow_nan=False)  # strict JSON


def test_exact_rows_agree(result: dict) -> None:
    for row in result["exact"]:
        assert row["fedot_method"] == "lsa"
        assert row["pot_emd_converged"] is True
        assert row["fedot_plan_cost"] == pytest.approx(row["pot_emd_plan_cost"], rel=1e-5)
        assert row["lsa_plan_cost"] == pytest.approx(row["pot_emd_plan_cost"], rel=1e-9)


def test_sinkhorn_rows(result: dict) -> None:
    small, large = result["sinkhorn"][1], result["sinkhorn"][0]
    assert large["fedot_method"] == "sinkhorn"
    assert small["fedot_method"] == "sinkhorn_log"  # ptp(C)/reg > 30 on the normalised cost
    for row in result["sinkhorn"]:
        assert row["fedot_converged"]
        assert row["marginal_error"] < 1e-3
        assert row["pot_log_marginal_error"] < 1e-3
        assert row["fedot_iterations"] >= 1


def test_coupling_rows(result: dict) -> None:
    row = result["coupling"][0]
    assert row["exact_vs_step"] == pytest.approx(row["exact_s"] / row["step_s"])
    assert row["entropic_marginal_error"] < 1e-3


def test_kernel_lines(result: dict) -> None:
    lines = kernel_lines(result)
    assert lines[0] == "## OT kernels"
    tables: list[list[str]] = []
    previous = ""
    for line in lines:
        if line.startswith("|"):
            if not previous.startswith("|"):
                tables.append([])
            tables[-1].append(line)
        previous = line
    assert len(tables) == 3
    for table, section in zip(tables, ("exact", "sinkhorn", "coupling"), strict=True):
        body = table[2:]  # header and separator
        assert table[1].startswith("|---")
        assert len(body) == len(result[section])
        width = table[0].count("|")
        assert all(line.count("|") == width for line in table)


def test_kernel_lines_skipped_emd(result: dict) -> None:
    skipped = {**result, "exact": [{**result["exact"][0], "pot_emd_s": None,
                                    "pot_emd_vs_lsa": None}]}
    row = [line for line in kernel_lines(skipped) if line.startswith("| 32 |")][0]
    assert "–" in row
    over = {**result, "coupling": [{**result["coupling"][0], "repeats": 1}]}
    assert any(line.startswith("| 2 | 16 † |") for line in kernel_lines(over))


def test_timed_budget() -> None:
    calls = {"a": 0, "b": 0}

    def arm(name: str) -> None:
        calls[name] += 1

    med, rounds = _timed({"a": lambda: arm("a"), "b": lambda: arm("b")}, 3, budget_s=60.0)
    assert rounds == 3 and calls == {"a": 4, "b": 4}  # warm-up + 3 rounds
    assert set(med) == {"a", "b"} and all(v >= 0 for v in med.values())
    med, rounds = _timed({"a": lambda: arm("a")}, 3, budget_s=0.0)
    assert rounds == 1 and calls["a"] == 5  # over budget: the warm-up round only


def test_fedot_exact_cost_matches_emd() -> None:
    """Independent check: the assignment plan's cost is the optimal cost of the network simplex."""
    rng = np.random.default_rng(5)
    for n in (20, 33):
        x = torch.as_tensor(rng.standard_normal((n, 64), dtype=np.float32))
        y = torch.as_tensor(rng.standard_normal((n, 64), dtype=np.float32))
        cost = pairwise_sq_dists(x, y)
        res = transport_plan(cost, method="exact")
        plan = res.plan.double().numpy()
        c64 = cost.double().numpy()
        fedot_cost = float(np.sum(plan * c64))
        emd_cost = float(np.sum(ot.emd(ot.unif(n), ot.unif(n), c64) * c64))
        assert fedot_cost == pytest.approx(emd_cost, rel=1e-6)
        assert np.allclose(plan.sum(0), 1.0 / n) and np.allclose(plan.sum(1), 1.0 / n)


def test_sync_is_noop_on_cpu() -> None:
    sync_device(torch.device("cpu"))
