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
#: Every other scheme, at its smallest: the same faults through its own client task and strategy.
OTHER_SCHEMES = {
    "otfusion": {"model.hidden": 16, "local.epochs": 1},
    "subflot": {"model.hidden": 16, "local.epochs": 1},
    "heterofl": {"model.hidden": 16, "local.epochs": 1},
    "fedrolex": {"model.hidden": 16, "local.epochs": 1},
    "irl-barycenter": {"irl.grid-size": 6, "irl.demos": 20, "irl.iterations": 20},
    "irl-average": {"irl.grid-size": 6, "irl.demos": 20, "irl.iterations": 20},
    "ffm": {"ffm.samples": 400, "ffm.eval-samples": 100, "ffm.local-steps": 2,
            "ffm.batch-size": 32, "ffm.hidden": 16, "ffm.layers": 1, "ffm.eval-every": 2,
            "ffm.nfe": "1,2", "ffm.coupling": "got", "ffm.potential-rounds": 1,
            "ffm.candidates": 16},
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


@pytest.mark.parametrize("scheme", list(OTHER_SCHEMES))
@pytest.mark.parametrize("kind", list(REASON))
def test_every_scheme_quarantines_injected_faults(tmp_path: Path, scheme: str, kind: str) -> None:
    # Execute: partition 1 misbehaves every round (ffm: in the potential round and the flow round)
    run_inline({"scheme": scheme, "clients": 3, "rounds": 1 if scheme == "ffm" else 2,
                "out-dir": str(tmp_path), "fault.kind": kind, "fault.partitions": "1",
                **OTHER_SCHEMES[scheme]}, 3)
    res = json.loads((tmp_path / "results.json").read_text())
    # Assert
    assert res["status"] == "completed"
    for entry in res["rounds"][1:]:
        [rejection] = entry["train_rejected"]
        assert REASON[kind] in rejection["reason"]
        assert 1 not in [c["partition_id"] for c in entry.get("clients", [])]
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


def _lose_node_from_round(monkeypatch: pytest.MonkeyPatch, partition: int, first: int) -> None:
    """Disconnect partition ``partition``'s node from round ``first`` on (inline grid)."""
    from fedot.fl import inline

    original = inline.InlineGrid.send_and_receive

    def lossy(self, messages, *args, **kwargs):  # type: ignore[no-untyped-def]
        messages = list(messages)
        rounds = {int(m.content["config"]["server-round"]) for m in messages
                  if "config" in m.content and "server-round" in m.content["config"]}
        if rounds and max(rounds) >= first:
            self.offline = {inline._FIRST_NODE_ID + partition}
        return original(self, messages, *args, **kwargs)

    monkeypatch.setattr(inline.InlineGrid, "send_and_receive", lossy)


def test_node_lost_for_good_does_not_stall_the_run(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare: 3 clients; partition 2 disappears after round 1 (Flower's own wait for
    # min_available_nodes = clients would hang forever here)
    _lose_node_from_round(monkeypatch, 2, 2)
    # Execute
    run_inline({"clients": 3, "rounds": 3, "local.epochs": 1, "out-dir": str(tmp_path)}, 3)
    # Assert: later rounds aggregate the two nodes left
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["status"] == "completed"
    parts = [sorted(c["partition_id"] for c in e["clients"]) for e in res["rounds"][1:]]
    assert parts[0] == [0, 1, 2] and parts[1] == parts[2] == [0, 1]


def test_too_few_nodes_for_the_quorum_times_out_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Prepare: the quorum needs all 3 nodes; one is lost after round 1
    _lose_node_from_round(monkeypatch, 2, 2)
    # Execute / Assert: a bounded wait and a clear error, not a hang
    with pytest.raises(TimeoutError, match="min-replies=3"):
        run_inline({"clients": 3, "rounds": 3, "local.epochs": 1, "min-replies": 3,
                    "wait-timeout": 0.5, "out-dir": str(tmp_path)}, 3)


@pytest.mark.parametrize(("scheme", "extra"), [
    ("fedavg", {}),
    ("fedavot", {"participation.availability": "all"}),
    ("subflot", {"model.hidden": 16}),
])
def test_a_node_lost_mid_round_is_named_for_every_scheme(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scheme: str, extra: dict
) -> None:
    # Prepare: partition 2's node vanishes after round 2's instructions were built
    from fedot.fl import inline

    _lose_node_from_round(monkeypatch, 2, 2)
    # Execute
    run_inline({"scheme": scheme, "clients": 3, "rounds": 2, "local.epochs": 1,
                "out-dir": str(tmp_path), **extra}, 3)
    # Assert: round 1 complete; round 2 names the silent node, whatever configure_train the
    # scheme overrides
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["status"] == "completed"
    assert res["rounds"][1]["train_missing"] == []
    assert res["rounds"][2]["train_missing"] == [inline._FIRST_NODE_ID + 2]
