"""Fault injection through real inline runs: bad replies are set aside, the run completes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from fedot.fl.inline import run_inline

REASON = {"nan": "non-finite", "inf": "non-finite", "shape": "shape",
          "huge-weight": "exceeds", "crash": "injected crash"}
SCHEMES = {
    "fedavg": {},
    "fedavot": {"participation.k": 4, "participation.availability": "k-of-n"},
}


@pytest.mark.filterwarnings("ignore::fedot.ot.MaskedSinkhornWarning")
@pytest.mark.parametrize("scheme", list(SCHEMES))
@pytest.mark.parametrize("kind", list(REASON))
def test_injected_fault_is_quarantined(tmp_path: Path, scheme: str, kind: str) -> None:
    # Execute: partition 1 misbehaves every round
    run_inline({"scheme": scheme, "clients": 4, "rounds": 2, "out-dir": str(tmp_path),
                "fault.kind": kind, "fault.partitions": "1", **SCHEMES[scheme]}, 4)
    res = json.loads((tmp_path / "results.json").read_text())
    # Assert: completed, the faulty reply set aside with the right reason, the model finite
    assert res["status"] == "completed"
    for entry in res["rounds"][1:]:
        [rejection] = entry["train_rejected"]
        assert REASON[kind] in rejection["reason"]
        assert rejection["partition_id"] in (1, None)  # a crashed client sends no identity
        assert 1 not in [c["partition_id"] for c in entry["clients"]]
    assert all(math.isfinite(v) for v in res["final"].values())


def test_quorum_skips_the_round_and_keeps_the_model(tmp_path: Path) -> None:
    # Execute: 3 of 4 clients crash; min-replies=2 → every round skipped
    run_inline({"clients": 4, "rounds": 2, "min-replies": 2, "out-dir": str(tmp_path),
                "fault.kind": "crash", "fault.partitions": "0,1,2"}, 4)
    res = json.loads((tmp_path / "results.json").read_text())
    # Assert
    for entry in res["rounds"][1:]:
        assert "min-replies=2" in entry["skipped"]
        assert entry["server"] == res["rounds"][0]["server"]  # global model unchanged
    assert res["status"] == "completed"


def test_fault_injection_is_off_by_default(tmp_path: Path) -> None:
    run_inline({"clients": 2, "rounds": 1, "out-dir": str(tmp_path)}, 2)
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["config"]["fault"]["kind"] == "none"
    assert res["rounds"][1]["train_rejected"] == []


def test_quorum_counts_only_finite_replies(tmp_path: Path) -> None:
    # Execute: 2 clients, partition 1 replies NaN (found only after aggregation), min-replies=2
    run_inline({"clients": 2, "rounds": 1, "min-replies": 2, "out-dir": str(tmp_path),
                "fault.kind": "nan", "fault.partitions": "1"}, 2)
    res = json.loads((tmp_path / "results.json").read_text())
    entry = res["rounds"][1]
    # Assert: the NaN reply is set aside, then the quorum fails: skipped, model kept
    assert [r["partition_id"] for r in entry["train_rejected"]] == [1]
    assert "min-replies=2" in entry["skipped"]
    assert entry["server"] == res["rounds"][0]["server"]
