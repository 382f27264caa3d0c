"""fedot's strategies used as a library: plain keyword arguments, a plain Flower ClientApp."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from fedot.strategies import FedAvg, FedAVOT, HeteroFL, OTFusion, SubFLOT
from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp.strategy import FedAvg as FlowerFedAvg

from fedot.availability import WithReplacementDrop
from fedot.config import ConfigError
from fedot.fl.client import describe_partition
from fedot.fl.inline import InlineGrid, run_inline
from fedot.fl.submodel import receive_submodel

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "flower-app"


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))


def _client_data(pid: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(100 + pid)
    x = torch.randn(20 + 10 * pid, 4, generator=gen)
    return x, (x[:, 0] > 0.3 * pid).long() + (x[:, 1] > 0).long()


def _plain_app(*, query: bool = False, echo: bool = False) -> ClientApp:
    """A ClientApp written against Flower only (no fedot record keys, no identity record)."""
    app = ClientApp()

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        model = _model()
        model.load_state_dict(msg.content["arrays"].to_torch_state_dict())
        x, y = _client_data(int(context.node_config["partition-id"]))
        if not echo:
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            for _ in range(5):
                opt.zero_grad()
                torch.nn.functional.cross_entropy(model(x), y).backward()
                opt.step()
        content = RecordDict({"arrays": ArrayRecord(model.state_dict()),
                              "metrics": MetricRecord({"num-examples": len(x)})})
        return Message(content, reply_to=msg)

    @app.evaluate()
    def evaluate(msg: Message, context: Context) -> Message:
        model = _model()
        model.load_state_dict(msg.content["arrays"].to_torch_state_dict())
        x, y = _client_data(int(context.node_config["partition-id"]))
        with torch.no_grad():
            loss = float(torch.nn.functional.cross_entropy(model(x), y))
        return Message(RecordDict({"metrics": MetricRecord({"loss": loss, "num-examples": len(x)})}),
                       reply_to=msg)

    if query:
        @app.query()
        def answer(msg: Message, context: Context) -> Message:
            x, _ = _client_data(int(context.node_config["partition-id"]))
            return describe_partition(msg, context, num_examples=len(x))

    return app


def _arrays(record: ArrayRecord) -> dict[str, np.ndarray]:
    return {k: v.numpy() for k, v in record.to_torch_state_dict().items()}


def test_fedot_fedavg_with_a_plain_client_equals_flowers_fedavg() -> None:
    # Prepare: the same plain ClientApp and nodes for Flower's FedAvg and fedot's
    initial = ArrayRecord(_model().state_dict())
    runs = {}
    # Execute
    for name, strategy in (("flower", FlowerFedAvg()), ("fedot", FedAvg())):
        grid = InlineGrid(_plain_app(), {}, num_nodes=4)
        runs[name] = strategy.start(grid=grid, initial_arrays=initial, num_rounds=3).arrays
    # Assert: fedot's screened FedAvg aggregates exactly as Flower's (the degenerate case)
    flower, fedot = _arrays(runs["flower"]), _arrays(runs["fedot"])
    assert flower.keys() == fedot.keys()
    for key in flower:
        np.testing.assert_allclose(fedot[key], flower[key], rtol=1e-6, atol=1e-7)
    assert not np.allclose(fedot["0.weight"], _arrays(initial)["0.weight"])  # it trained


def test_fedavot_weights_are_unbiased_for_the_given_importance() -> None:
    # Prepare: p and the availability model given directly, as a library user would
    p = np.array([0.4, 0.3, 0.2, 0.1])
    strategy = FedAVOT(importance=p * 10, availability=WithReplacementDrop([1, 1, 1, 1], k=2),
                       partitions="node-order")
    # Execute: what discovery does once 4 nodes are connected
    strategy.configure_clients(np.zeros(4, dtype=np.int64))
    # Assert: E_j[Y_ij] = Σ_j q_j Y_ij = p_i for every client (FedAVOT's unbiasedness)
    dist = strategy.distribution
    expected = np.zeros(4)
    for members, q in zip(dist.subsets, dist.probs, strict=True):
        column = strategy.columns[frozenset(int(i) for i in members)]
        for i in members:
            expected[i] += q * column[int(i)]
    np.testing.assert_allclose(expected, p, atol=1e-8)
    np.testing.assert_allclose(strategy.importance, p)


def test_fedavot_with_plain_clients_by_node_order_aggregates_the_drawn_partitions() -> None:
    # Prepare
    grid = InlineGrid(_plain_app(), {}, num_nodes=5)
    strategy = FedAVOT(importance="uniform", availability="k-of-n", participation={"k": 2},
                       partitions="node-order", seed=3)
    # Execute
    result = strategy.start(grid=grid, initial_arrays=ArrayRecord(_model().state_dict()),
                            num_rounds=4)
    # Assert: node i (sorted ids) is partition i; each round aggregated exactly the drawn subset
    assert strategy.nodes == {i: 1001 + i for i in range(5)}
    for r in range(1, 5):
        entry = strategy.log.rounds[r]
        assert entry["aggregation"]["subset"] == entry["available"]
        assert len(entry["available"]) == 2 and entry["train_rejected"] == []
        np.testing.assert_allclose(sum(entry["aggregation"]["coefficients"]), 1.0)
    # the p-weighted objective is reported from the plain evaluate replies, every client covered
    assert result.evaluate_metrics_clientapp[4]["importance_covered"] == pytest.approx(1.0)
    assert np.isfinite(result.evaluate_metrics_clientapp[4]["loss_p"])
    assert strategy.rounds == 4  # taken from num_rounds: the last round was evaluated


def test_fedavot_query_mode_learns_data_sizes_from_a_plain_query_handler() -> None:
    # Prepare: a plain ClientApp that answers discovery with describe_partition
    grid = InlineGrid(_plain_app(query=True), {}, num_nodes=3)
    strategy = FedAVOT(availability="all", participation={"importance": "data-size"})
    # Execute
    strategy.start(grid=grid, initial_arrays=ArrayRecord(_model().state_dict()), num_rounds=1)
    # Assert: sizes 20, 30, 40 → p ∝ n_i, and every partition's reply was stamped and aggregated
    np.testing.assert_allclose(strategy.importance, np.array([20, 30, 40]) / 90)
    assert strategy.log.rounds[1]["aggregation"]["subset"] == [0, 1, 2]


def test_otfusion_returns_identical_replies_unchanged() -> None:
    # Prepare: every client echoes the global model (identical inputs)
    initial = ArrayRecord(_model().state_dict())
    grid = InlineGrid(_plain_app(echo=True), {}, num_nodes=3)
    strategy = OTFusion(model=_model())
    # Execute
    out = strategy.start(grid=grid, initial_arrays=initial, num_rounds=2).arrays
    # Assert
    for key, value in _arrays(initial).items():
        np.testing.assert_allclose(_arrays(out)[key], value, atol=1e-6)


def test_library_arguments_fail_early_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"'fedavot.plan' = 'exact'"):
        FedAVOT(fedavot={"plan": "exact"})
    with pytest.raises(ConfigError, match=r"unknown config key 'participation.kk'"):
        FedAVOT(participation={"kk": 2})
    with pytest.raises(ValueError, match="data-size"):
        FedAVOT(partitions="node-order")  # data sizes are unknown by node order
    with pytest.raises(ValueError, match="importance must be"):
        FedAVOT(importance=[0.5, -0.5, 1.0])
    with pytest.raises(ValueError, match="pass probe"):
        OTFusion(model=_model(), fusion={"metric": "activations"})
    with pytest.raises(ConfigError, match=r"'local.lr'"):
        FedAvg(local={"lr": -1.0})


def test_example_flower_app_runs_fedavot_on_mnist5k(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare: the example app is a separate project; import it from its folder
    monkeypatch.syspath_prepend(str(EXAMPLE))
    out = tmp_path / "result.json"
    # Execute: its own pyproject's ServerApp and ClientApp, in-process, 10 nodes
    run_inline({"num-server-rounds": 12, "out": str(out)}, num_nodes=10, root=EXAMPLE)
    # Assert: trained well above chance on real MNIST; FedAVOT reported its objective F_p
    history = json.loads(out.read_text())
    first, last = history["server"]["0"], history["server"]["12"]
    assert first["test-accuracy"] < 0.2
    assert last["test-accuracy"] > 0.6
    assert np.isfinite(history["evaluate"]["12"]["loss_p"])


def test_example_client_app_is_plain_flower() -> None:
    # The ClientApp a user writes needs no fedot at all (the server side imports the strategy).
    tree = ast.parse((EXAMPLE / "flower_app" / "client_app.py").read_text())
    modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    modules |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not any(m == "fedot" or m.startswith("fedot.") for m in modules if m)
    assert len((EXAMPLE / "flower_app" / "client_app.py").read_text().splitlines()) <= 50


def _submodel_app() -> ClientApp:
    """A user's own ClientApp for the submodel schemes: own model and loop, fedot's decoder."""
    app = ClientApp()

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        received = receive_submodel(msg, _model())
        model = received.model
        x, y = _client_data(int(context.node_config["partition-id"]))
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        for _ in range(5):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            if received.penalty is not None:
                loss = loss + received.penalty(model)
            loss.backward()
            opt.step()
        content = RecordDict({"arrays": ArrayRecord(model.state_dict()),
                              "metrics": MetricRecord({"num-examples": len(x)})})
        return Message(content, reply_to=msg)

    return app


def test_heterofl_at_full_width_with_plain_clients_equals_fedavg() -> None:
    # Prepare: rates all 0 — every client trains the full model, position-based averaging
    initial = ArrayRecord(_model().state_dict())
    heterofl = HeteroFL(model=_model(), input_shape=(4,), submodel={"rates": "0"},
                        partitions="node-order")
    # Execute
    out = heterofl.start(grid=InlineGrid(_submodel_app(), {}, num_nodes=3), initial_arrays=initial,
                         num_rounds=2).arrays
    ref = FedAvg().start(grid=InlineGrid(_plain_app(), {}, num_nodes=3), initial_arrays=initial,
                         num_rounds=2).arrays
    # Assert: the degenerate setting equals FedAvg
    for key, value in _arrays(ref).items():
        np.testing.assert_allclose(_arrays(out)[key], value, rtol=1e-5, atol=1e-6)


def test_subflot_with_a_users_clientapp_trains_pruned_submodels() -> None:
    # Prepare: the paper's SubFLOT (OTP, SAR, OTA) over two widths, clients of a user's own app
    strategy = SubFLOT(model=_model(), input_shape=(4,), submodel={"rates": "0,0.5"},
                       partitions="node-order", seed=1)
    initial = ArrayRecord(_model().state_dict())
    # Execute
    out = strategy.start(grid=InlineGrid(_submodel_app(), {}, num_nodes=4), initial_arrays=initial,
                         num_rounds=3).arrays
    # Assert: clients got their widths, every reply passed screening, the model moved and is finite
    rates = strategy.rates
    assert set(rates.values()) <= {0.0, 0.5} and len(rates) == 4
    for r in range(1, 4):
        entry = strategy.log.rounds[r]
        assert entry["train_rejected"] == [] and entry["train_replies"] == 4
        sent = {int(p): a["params"] for p, a in entry["accounting"].items()}
        for pid, rate in rates.items():  # a half-width client holds fewer parameters
            assert (sent[pid] < 8 * 4 + 8 + 8 * 3 + 3) == (rate == 0.5)
    final = _arrays(out)
    assert all(np.isfinite(v).all() for v in final.values())
    assert not np.allclose(final["0.weight"], _arrays(initial)["0.weight"])
    # SAR's λ reached the clients: the paper's λ = 1 for SubFLOT
    assert strategy.sar_strength() == 1.0
