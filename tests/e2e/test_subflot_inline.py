"""SubFLOT, HeteroFL and FedRolex end to end through the real ServerApp/ClientApp (in-process grid)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from fedot.config import load_run_config
from fedot.fl.inline import load_apps, run_inline
from fedot.fl.submodel import assign_rate
from fedot.fl.task import federated_data, global_model
from fedot.subflot import submodel_cost

SMALL = {"clients": 4, "rounds": 2, "local.epochs": 1, "partition.alpha": 0.3,
         "model.hidden": 32, "submodel.rates": "0,0.25,0.5,0.75"}


def _run(tmp: Path, scheme: str, node_config: dict | None = None, **overrides: object) -> dict:
    config = {**SMALL, "scheme": scheme, "out-dir": str(tmp), **overrides}
    run_inline(config, int(config["clients"]), node_config=node_config)
    return json.loads((tmp / "results.json").read_text())


def _arrays(tmp: Path) -> dict[str, torch.Tensor]:
    return torch.load(tmp / "checkpoint.pt")["arrays"]


def test_heterofl_with_every_rate_zero_is_fedavg(tmp_path: Path) -> None:
    # Execute: full-width submodels, position-based averaging = the data-size-weighted mean
    het = _run(tmp_path / "het", "heterofl", **{"submodel.rates": "0"})
    avg = _run(tmp_path / "avg", "fedavg", **{"fraction-evaluate": 0.0})
    # Assert
    a, b = _arrays(tmp_path / "het"), _arrays(tmp_path / "avg")
    for name in b:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6)
    assert het["final"]["accuracy"] == pytest.approx(avg["final"]["accuracy"], abs=1e-9)


def test_subflot_with_every_module_off_is_heterofl(tmp_path: Path) -> None:
    # Execute
    off = {"submodel.otp": False, "submodel.sar": False, "submodel.ota": False}
    sub = _run(tmp_path / "sub", "subflot", **off)
    het = _run(tmp_path / "het", "heterofl")
    # Assert: bit for bit
    a, b = _arrays(tmp_path / "sub"), _arrays(tmp_path / "het")
    for name in b:
        assert torch.equal(a[name], b[name]), name
    assert sub["final"] == het["final"]


@pytest.mark.parametrize("scheme", ["subflot", "heterofl", "fedrolex"])
def test_submodel_run_records_rates_traffic_and_personal_accuracy(tmp_path: Path,
                                                                  scheme: str) -> None:
    # Execute
    res = _run(tmp_path, scheme)
    # Assert: rates are the seeded per-partition draws, every client got its own submodel
    _, _, defaults = load_apps()
    cfg = load_run_config({**defaults, **SMALL, "scheme": scheme})
    rates = {str(p): assign_rate(cfg.submodel.rate_choices, cfg.seed, p) for p in range(4)}
    assert res["setup"]["rates"] == rates
    dataset, _ = federated_data(cfg, 4)
    template = global_model(cfg, dataset)
    for entry in res["rounds"][1:]:
        acc = entry["accounting"]
        assert sorted(acc) == ["0", "1", "2", "3"]
        for pid, row in acc.items():
            cost = submodel_cost(template, rates[pid], tuple(dataset.input_shape))
            assert row["sent"] == row["received"] == cost.payload
            assert row["macs"] == cost.macs and row["train-flops"] > 0
        assert set(entry["personal_accuracy"]) == set(rates)
    final = res["final"]
    assert 0 <= final["personal-accuracy-worst"] <= final["personal-accuracy-mean"] <= 1
    assert final["personal-accuracy-worst"] == pytest.approx(
        min(res["rounds"][-1]["personal_accuracy"].values()))


def test_node_declared_rate_overrides_the_draw(tmp_path: Path) -> None:
    # Execute: partition 2 declares its own rate, as a SuperNode's --node-config would
    res = _run(tmp_path, "subflot", node_config={2: {"submodel-rate": 0.5}},
               **{"submodel.rates": "0"})
    # Assert
    assert res["setup"]["rates"] == {"0": 0.0, "1": 0.0, "2": 0.5, "3": 0.0}
    sizes = {pid: row["sent"] for pid, row in res["rounds"][1]["accounting"].items()}
    assert sizes["2"] < sizes["0"] == sizes["1"] == sizes["3"]


def test_subflot_sends_sar_strength_and_tracks_history(tmp_path: Path) -> None:
    # Execute: round 1 is a cold start (static slices), round 2 extracts by OTP from the history
    res = _run(tmp_path, "subflot", **{"submodel.lam": 0.3})
    # Assert
    assert res["strategy"]["submodel.lam"] == 0.3
    r1, r2 = res["rounds"][1], res["rounds"][2]
    assert all(d["cold_start"] for d in r1["extraction"].values())
    assert not any(d["cold_start"] for d in r2["extraction"].values())
    assert set(r2["aggregation"]["layers"]) == {"1", "3"}


@pytest.mark.parametrize("kind", ["nan", "shape"])
def test_bad_submodel_reply_is_set_aside(tmp_path: Path, kind: str) -> None:
    # Execute
    res = _run(tmp_path, "subflot", **{"fault.kind": kind, "fault.partitions": "1"})
    # Assert: partition 1's replies are rejected with a reason, the others aggregated
    assert res["status"] == "completed"
    for entry in res["rounds"][1:]:
        assert [r["partition_id"] for r in entry["train_rejected"]] == [1]
        assert sorted(entry["accounting"]) == ["0", "2", "3"]
    arrays = _arrays(tmp_path)
    assert all(torch.isfinite(t).all() for t in arrays.values())


def test_submodel_scheme_refuses_a_model_without_hidden_units() -> None:
    _, _, defaults = load_apps()
    with pytest.raises(ValueError, match="model.name must be 'mlp' or 'cnn'"):
        load_run_config({**defaults, "scheme": "subflot", "model.name": "logreg"})
    with pytest.raises(ValueError, match="submodel.rates"):
        load_run_config({**defaults, "scheme": "subflot", "submodel.rates": "0,1"})


@pytest.mark.parametrize("mapping", ["match", "barycentric"])
def test_subflot_runs_a_batch_norm_cnn(tmp_path: Path, mapping: str) -> None:
    # Execute: conv channels and BN statistics are pruned and aligned too
    res = _run(tmp_path, "subflot", **{"model.name": "cnn", "submodel.map": mapping})
    # Assert
    assert res["status"] == "completed"
    assert res["final"]["accuracy"] > 0.1  # above chance (10 classes); not a quality bar
    assert not res["rounds"][2]["train_rejected"]
    assert all(torch.isfinite(t).all() for t in _arrays(tmp_path).values())


def test_mixed_rates_with_a_client_that_skips_a_round(tmp_path: Path, monkeypatch) -> None:
    # Prepare: partition 1 is unreachable during round 2 only (disconnected, no reply)
    from fedot.fl import inline

    original = inline.InlineGrid.send_and_receive

    def flaky(self, messages, *args, **kwargs):  # type: ignore[no-untyped-def]
        messages = list(messages)
        rounds = {int(m.content["config"]["server-round"]) for m in messages
                  if m.metadata.message_type == "train"}
        self.offline = {inline._FIRST_NODE_ID + 1} if rounds == {2} else set()
        return original(self, messages, *args, **kwargs)

    monkeypatch.setattr(inline.InlineGrid, "send_and_receive", flaky)
    # Execute
    res = _run(tmp_path, "subflot", rounds=3)
    # Assert: round 2 aggregates the three others; in round 3 partition 1 is back and its
    # submodel is extracted from its round-1 history (no cold start), at its own rate
    assert res["status"] == "completed"
    assert sorted(res["rounds"][1]["accounting"]) == ["0", "1", "2", "3"]
    assert sorted(res["rounds"][2]["accounting"]) == ["0", "2", "3"]
    assert sorted(res["rounds"][3]["accounting"]) == ["0", "1", "2", "3"]
    assert res["rounds"][3]["extraction"]["1"]["cold_start"] is False
    assert len(set(res["setup"]["rates"].values())) > 1  # mixed rates


def _capture_train(monkeypatch, replies: dict | None = None  # type: ignore[no-untyped-def]
                   ) -> list[tuple[int, int, dict, dict]]:
    """Record (round, node, config, arrays) of every train message the server sends.

    ``replies`` (optional) collects ``(round, node) -> arrays`` of the train replies.
    """
    from fedot.fl import inline

    sent: list[tuple[int, int, dict, dict]] = []
    original = inline.InlineGrid.send_and_receive

    def tensors(record) -> dict:  # type: ignore[no-untyped-def]
        return {k: torch.from_numpy(v.numpy()).clone() for k, v in record.items()}

    def spy(self, messages, *args, **kwargs):  # type: ignore[no-untyped-def]
        messages = list(messages)
        rounds = {}
        for m in messages:
            if m.metadata.message_type == "train":
                config = dict(m.content["config"])
                rounds[m.metadata.dst_node_id] = int(config["server-round"])
                sent.append((int(config["server-round"]), m.metadata.dst_node_id, config,
                             tensors(m.content["arrays"])))
        out = list(original(self, messages, *args, **kwargs))
        if replies is not None:
            for r in out:
                node = r.metadata.src_node_id
                if node in rounds and r.has_content():
                    replies[(rounds[node], node)] = tensors(next(iter(r.content.array_records.values())))
        return out

    monkeypatch.setattr(inline.InlineGrid, "send_and_receive", spy)
    return sent


def test_subflot_default_is_the_papers_algorithm_with_data_size_ota_weights(tmp_path: Path) -> None:
    # Prepare
    _, _, defaults = load_apps()
    cfg = load_run_config({**defaults, "scheme": "subflot"})
    s = cfg.submodel
    assert (s.map, s.method, s.lam, s.alpha, s.otp, s.sar, s.ota) == (
        "barycentric", "exact", 1.0, 0.5, True, True, True)
    # Execute
    res = _run(tmp_path, "subflot")
    # Assert: OTA averages with p_i = n_i / sum n (the clients' training examples)
    examples = {pid: row["train-flops"] / (6 * row["macs"])  # 6 × MACs × examples × 1 epoch
                for pid, row in res["rounds"][2]["accounting"].items()}
    total = sum(examples.values())
    weights = res["rounds"][2]["ota_weights"]
    assert set(weights) == set(examples)
    for pid, w in weights.items():
        assert w == pytest.approx(examples[pid] / total, rel=1e-9), pid
    assert len({round(w, 9) for w in weights.values()}) > 1  # unequal clients: not uniform
    off = res["rounds"][2]["plan_off_identity"]
    assert 0.0 <= off["otp"] <= 1.0 and 0.0 <= off["ota"] <= 1.0


@pytest.mark.parametrize("scheme", ["heterofl", "fedrolex"])
def test_personalise_blends_the_sent_slice_with_the_clients_history(tmp_path: Path, monkeypatch,
                                                                     scheme: str) -> None:
    # Prepare: alpha = 0 sends, at every unit the client held last round, its own last upload
    uploads: dict = {}
    sent = _capture_train(monkeypatch, uploads)
    # Execute
    _run(tmp_path / "p", scheme, **{"submodel.personalise": True, "submodel.alpha": 0.0,
                                    "submodel.rates": "0.5", "rounds": 3})
    # Assert (heterofl): the round-2 message is the round-1 upload, i.e. not the global slice
    r2 = {node: arrays for rnd, node, _, arrays in sent if rnd == 2}
    plain = _capture_train(monkeypatch)
    _run(tmp_path / "q", scheme, **{"submodel.rates": "0.5", "rounds": 3})
    q2 = {node: arrays for rnd, node, _, arrays in plain if rnd == 2}
    assert set(r2) == set(q2)
    for node in r2:
        diff = max(float((r2[node][k] - q2[node][k]).abs().max()) for k in r2[node])
        assert diff > 1e-4, "the blend changed nothing"
    if scheme == "heterofl":  # same units every round: the message is exactly the last upload
        for node in r2:
            for k, v in uploads[(1, node)].items():
                assert torch.equal(r2[node][k], v), (node, k)


def test_personalise_with_alpha_one_is_the_plain_baseline(tmp_path: Path) -> None:
    # Execute
    a = _run(tmp_path / "a", "heterofl", **{"submodel.personalise": True, "submodel.alpha": 1.0})
    b = _run(tmp_path / "b", "heterofl")
    # Assert: bit for bit
    x, y = _arrays(tmp_path / "a"), _arrays(tmp_path / "b")
    for name in y:
        assert torch.equal(x[name], y[name]), name
    assert a["final"] == b["final"]


def test_permuted_clients_are_permuted_once_and_ota_plans_find_it(tmp_path: Path, monkeypatch) -> None:
    # Prepare: full width (rate 0), so OTA's plans are permutations
    sent = _capture_train(monkeypatch)
    over = {"submodel.rates": "0", "rounds": 2}
    # Execute
    permuted = _run(tmp_path / "perm", "subflot", **over, **{"submodel.permute-clients": True})
    seeds = [(rnd, cfg.get("submodel.permute-seed")) for rnd, _, cfg, _ in sent]
    plain = _run(tmp_path / "plain", "subflot", **over)
    # Assert: a seed goes out in round 1 only, a different one per client
    first = [v for rnd, v in seeds if rnd == 1]
    assert len(first) == 4 and None not in first and len(set(first)) == 4
    assert all(v is None for rnd, v in seeds if rnd == 2)
    # round-1 uploads trained from one global model are aligned to it: plans near the identity
    # without the permutation, far from it with (OTA undoes each client's order)
    assert plain["rounds"][1]["plan_off_identity"]["ota"] < 0.2
    assert permuted["rounds"][1]["plan_off_identity"]["ota"] > 0.8


def test_subflot_at_rate_zero_is_fedavg_only_without_the_blend(tmp_path: Path) -> None:
    # Execute: full width everywhere; SubFLOT with alpha = 1 (no history blend) and the default
    over = {"submodel.rates": "0", "rounds": 3}
    avg = _run(tmp_path / "avg", "fedavg", **{"fraction-evaluate": 0.0, "rounds": 3})
    plain = _run(tmp_path / "a1", "subflot", **over, **{"submodel.alpha": 1.0})
    blended = _run(tmp_path / "a05", "subflot", **over)
    # Assert: with identity plans and no blend, OTA's data-size average is FedAvg's; the default
    # alpha = 0.5 makes SubFLOT a personalised method, not FedAvg
    assert all(e["plan_off_identity"]["ota"] == 0.0 for e in plain["rounds"][1:])
    ref = _arrays(tmp_path / "avg")
    a1, a05 = _arrays(tmp_path / "a1"), _arrays(tmp_path / "a05")
    for name in ref:
        torch.testing.assert_close(a1[name], ref[name], rtol=1e-5, atol=1e-6)
    assert max(float((a05[k] - ref[k]).abs().max()) for k in ref) > 1e-3
    assert plain["final"]["accuracy"] == pytest.approx(avg["final"]["accuracy"], abs=1e-9)
    assert blended["final"]["accuracy"] != plain["final"]["accuracy"]
