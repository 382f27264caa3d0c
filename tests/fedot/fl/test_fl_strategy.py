"""FedotStrategy / FedAvg hooks: screening before aggregation, records, seeded sampling, config."""

from __future__ import annotations

import logging
import random

import numpy as np
import pytest
from conftest import StubGrid, array_record, make_reply
from flwr.app import ConfigRecord

from fedot.config import LocalConfig, load_run_config
from fedot.fl import keys
from fedot.fl.strategy import FedotStrategy, NoValidRepliesError, RoundLog
from fedot.fl.task import to_arrays
from fedot.fl.validation import array_specs
from fedot.learning import build_model
from strategies.fedavg import FedAvg

NODES = [1001, 1002, 1003, 1004]


def shifted(arrays: dict[str, np.ndarray], delta: float) -> dict[str, np.ndarray]:
    """A client model: float arrays shifted by ``delta``, integer buffers unchanged."""
    return {
        k: (v + np.float32(delta)).astype(v.dtype) if v.dtype.kind == "f" else v.copy()
        for k, v in arrays.items()
    }


def strategy_with_spec(global_arrays: dict[str, np.ndarray], **kwargs) -> FedAvg:
    strategy = FedAvg(local=LocalConfig(), **kwargs)
    strategy._spec = array_specs(array_record(global_arrays))
    return strategy


def train(strategy: FedAvg, global_arrays: dict[str, np.ndarray], server_round: int = 1,
          nodes: list[int] | None = None) -> list:
    grid = StubGrid(nodes or NODES)
    return list(strategy.configure_train(server_round, array_record(global_arrays),
                                         ConfigRecord(), grid))


# ----------------------------------------------------------------------------- construction


def test_from_config_takes_the_run_config_settings() -> None:
    # Prepare
    cfg = load_run_config(
        {"clients": 4, "seed": 7, "fraction-train": 0.5, "fraction-evaluate": 0.25,
         "local.lr": 0.05, "local.epochs": 3}
    )
    # Execute
    strategy = FedAvg.from_config(cfg)
    # Assert
    assert isinstance(strategy, FedAvg) and isinstance(strategy, FedotStrategy)
    assert strategy.scheme == "fedavg"
    # Flower's own wait (no timeout) only for the quorum; fedot waits for `clients` itself
    assert (strategy.seed, strategy.min_available_nodes, strategy.wait_timeout) == (7, 1, 120.0)
    assert (strategy.fraction_train, strategy.fraction_evaluate) == (0.5, 0.25)
    assert strategy.local == LocalConfig(lr=0.05, epochs=3)
    assert strategy.weighted_by_key == keys.NUM_EXAMPLES
    assert (strategy.arrayrecord_key, strategy.configrecord_key) == (keys.ARRAYS, keys.CONFIG)


def test_hyperparameters_contain_local_settings() -> None:
    # Prepare
    strategy = FedAvg.from_config(
        load_run_config({"clients": 3, "seed": 11, "local.lr": 0.02, "local.optimizer": "adam"})
    )
    # Execute
    hp = strategy.hyperparameters()
    # Assert
    assert hp == {
        "scheme": "fedavg",
        "seed": 11,
        "fraction_train": 1.0,
        "fraction_evaluate": 1.0,
        "min_available_nodes": 1,
        "min_replies": 1,
        "local.epochs": 2,
        "local.batch-size": 32,
        "local.lr": 0.02,
        "local.optimizer": "adam",
        "local.momentum": 0.9,
        "local.weight-decay": 0.0,
        "local.proximal-mu": 0.0,
    }
    assert {k for k in hp if k.startswith("local.")} == set(keys.LOCAL_KEYS)


def test_summary_logs_scheme_and_hyperparameters(caplog: pytest.LogCaptureFixture) -> None:
    # Prepare
    strategy = FedAvg(local=LocalConfig(lr=0.0125), seed=5)
    # Execute
    with caplog.at_level(logging.INFO, logger="flwr"):
        strategy.summary()
    # Assert
    assert "fedot scheme 'fedavg' (FedAvg)" in caplog.text
    assert "local.lr: 0.0125" in caplog.text
    assert "seed: 5" in caplog.text


def test_state_dict_is_empty_for_fedavg() -> None:
    # Prepare
    strategy = FedAvg(local=LocalConfig())
    # Execute
    state = strategy.state_dict()
    # Assert
    assert state == {}


def test_round_log_entry_and_pop() -> None:
    # Prepare
    log = RoundLog()
    # Execute
    log.entry(2)["x"] = 1
    log.entry(2)["y"] = 2
    popped = log.pop(2)
    # Assert
    assert popped == {"x": 1, "y": 2}
    assert log.pop(2) == {}
    assert log.rounds == {}


# ----------------------------------------------------------------------------- configure_*


def test_configure_train_sends_settings_without_mutating_caller_config(
    global_arrays: dict[str, np.ndarray],
) -> None:
    # Prepare
    strategy = FedAvg(local=LocalConfig(lr=0.05, epochs=3, proximal_mu=0.01), seed=1)
    config = ConfigRecord({"custom": "kept"})
    arrays = array_record(global_arrays)
    # Execute
    messages = list(strategy.configure_train(3, arrays, config, StubGrid(NODES)))
    # Assert
    assert dict(config) == {"custom": "kept"}
    assert sorted(m.metadata.dst_node_id for m in messages) == NODES
    expected = {
        "custom": "kept",
        "server-round": 3,
        "local.epochs": 3,
        "local.batch-size": 32,
        "local.lr": 0.05,
        "local.optimizer": "sgd",
        "local.momentum": 0.9,
        "local.weight-decay": 0.0,
        "local.proximal-mu": 0.01,
    }
    for msg in messages:
        assert msg.metadata.message_type == "train"
        sent = dict(msg.content[keys.CONFIG])
        assert sent == expected
        assert set(keys.LOCAL_KEYS) | {keys.SERVER_ROUND} <= set(sent)
        for name, value in global_arrays.items():
            np.testing.assert_array_equal(msg.content[keys.ARRAYS][name].numpy(), value)
    assert strategy._spec == {
        "w": ((2, 3), "float32"), "b": ((2,), "float32"), "n": ((2,), "int64")
    }


def test_configure_evaluate_sends_settings_and_keeps_caller_config(
    global_arrays: dict[str, np.ndarray],
) -> None:
    # Prepare
    strategy = FedAvg(local=LocalConfig(batch_size=8))
    config = ConfigRecord()
    # Execute
    messages = list(
        strategy.configure_evaluate(2, array_record(global_arrays), config, StubGrid(NODES))
    )
    # Assert
    assert dict(config) == {}
    assert len(messages) == len(NODES)
    for msg in messages:
        assert msg.metadata.message_type == "evaluate"
        sent = msg.content[keys.CONFIG]
        assert sent[keys.SERVER_ROUND] == 2
        assert sent["local.batch-size"] == 8
        assert set(keys.LOCAL_KEYS) <= set(sent)


def test_configure_evaluate_with_zero_fraction_sends_nothing(
    global_arrays: dict[str, np.ndarray],
) -> None:
    # Prepare
    strategy = FedAvg(local=LocalConfig(), fraction_evaluate=0.0)
    # Execute
    messages = list(
        strategy.configure_evaluate(1, array_record(global_arrays), ConfigRecord(), StubGrid(NODES))
    )
    # Assert
    assert messages == []


def test_sampling_is_deterministic_per_seed_and_leaves_random_state(
    global_arrays: dict[str, np.ndarray],
) -> None:
    # Prepare
    nodes = list(range(2001, 2011))
    random.seed(12345)
    state_before = random.getstate()

    def sampled(seed: int, server_round: int) -> list[int]:
        strategy = FedAvg(local=LocalConfig(), seed=seed, fraction_train=0.5)
        messages = train(strategy, global_arrays, server_round, nodes)
        return [m.metadata.dst_node_id for m in messages]

    # Execute
    first = [sampled(3, r) for r in (1, 2, 3, 4)]
    second = [sampled(3, r) for r in (1, 2, 3, 4)]
    # Assert
    assert random.getstate() == state_before
    assert first == second
    for ids in first:
        assert len(ids) == 5
        assert len(set(ids)) == 5
        assert set(ids) <= set(nodes)
    assert len({tuple(sorted(ids)) for ids in first}) > 1  # rounds draw different samples


def test_sampling_depends_on_the_seed(global_arrays: dict[str, np.ndarray]) -> None:
    # Prepare
    nodes = list(range(2001, 2021))

    def sampled(seed: int) -> tuple[int, ...]:
        strategy = FedAvg(local=LocalConfig(), seed=seed, fraction_train=0.25)
        return tuple(m.metadata.dst_node_id for m in train(strategy, global_arrays, 1, nodes))

    # Execute
    samples = {sampled(seed) for seed in range(6)}
    # Assert
    assert len(samples) > 1


def test_evaluate_sampling_is_deterministic(global_arrays: dict[str, np.ndarray]) -> None:
    # Prepare
    nodes = list(range(3001, 3009))

    def sampled() -> list[int]:
        strategy = FedAvg(local=LocalConfig(), seed=9, fraction_evaluate=0.5)
        msgs = strategy.configure_evaluate(1, array_record(global_arrays), ConfigRecord(),
                                           StubGrid(nodes))
        return [m.metadata.dst_node_id for m in msgs]

    # Execute
    first, second = sampled(), sampled()
    # Assert
    assert first == second
    assert len(first) == 4


# ----------------------------------------------------------------------------- aggregate_train


def test_aggregate_train_uses_only_valid_replies(global_arrays: dict[str, np.ndarray]) -> None:
    # Prepare
    strategy = FedAvg(local=LocalConfig())
    train(strategy, global_arrays)  # sets the reference spec like a real round
    good = [
        (1001, 0, shifted(global_arrays, 1.0), 10, 0.5),
        (1002, 1, shifted(global_arrays, -2.0), 30, 1.5),
        (1003, 2, shifted(global_arrays, 0.25), 60, 1.0),
    ]
    nan_w = shifted(global_arrays, 0.0)
    nan_w["w"][0, 0] = np.nan
    replies = [
        make_reply(arrays, {keys.NUM_EXAMPLES: n, "loss": loss}, node_id=node, partition_id=pid)
        for node, pid, arrays, n, loss in reversed(good)
    ] + [
        make_reply(nan_w, {keys.NUM_EXAMPLES: 1000, "loss": 0.1}, node_id=1004, partition_id=3),
        make_reply(None, {}, node_id=1005, partition_id=None, error="client crashed"),
        make_reply({**global_arrays, "w": np.zeros((3, 2), np.float32)},
                   {keys.NUM_EXAMPLES: 5, "loss": 0.1}, node_id=1006, partition_id=5),
        make_reply(shifted(global_arrays, 9.0), {keys.NUM_EXAMPLES: 0, "loss": 0.1},
                   node_id=1007, partition_id=6),
    ]
    weights = [n for *_, n, _ in good]
    # Execute
    arrays, metrics = strategy.aggregate_train(1, replies)
    # Assert
    for name in ("w", "b"):
        expected = np.average(np.stack([a[name] for _, _, a, _, _ in good]), axis=0,
                              weights=weights)
        assert arrays[name].numpy().dtype == np.float32
        np.testing.assert_allclose(arrays[name].numpy(), expected, rtol=1e-6, atol=1e-6)
    assert arrays["n"].numpy().dtype == np.int64
    np.testing.assert_array_equal(arrays["n"].numpy(), global_arrays["n"])
    # loss: (10 * 0.5 + 30 * 1.5 + 60 * 1.0) / 100 = 1.1
    assert dict(metrics) == {"loss": pytest.approx(1.1)}
    entry = strategy.log.entry(1)
    assert entry["train_replies"] == 7
    rejected = {r["node_id"]: r for r in entry["train_rejected"]}
    assert set(rejected) == {1004, 1005, 1006, 1007}
    assert "non-finite" in rejected[1004]["reason"]
    assert "client crashed" in rejected[1005]["reason"]
    assert "shape" in rejected[1006]["reason"]
    assert "num-examples" in rejected[1007]["reason"]
    assert rejected[1004]["partition_id"] == 3
    assert [c["node_id"] for c in entry["clients"]] == [1001, 1002, 1003]
    assert [c["weight"] for c in entry["clients"]] == [10.0, 30.0, 60.0]
    assert [c["loss"] for c in entry["clients"]] == [0.5, 1.5, 1.0]
    assert entry["train_metrics"] == {"loss": pytest.approx(1.1)}
    assert entry["aggregation"]["time_s"] >= 0


def test_aggregate_train_is_independent_of_arrival_order(
    global_arrays: dict[str, np.ndarray],
) -> None:
    # Prepare
    rng = np.random.default_rng(5)
    replies = [
        make_reply(
            {k: (rng.normal(size=v.shape).astype(v.dtype) if v.dtype.kind == "f" else v)
             for k, v in global_arrays.items()},
            {keys.NUM_EXAMPLES: int(n), "loss": 0.1 * pid},
            node_id=1001 + pid, partition_id=pid,
        )
        for pid, n in enumerate([13, 7, 29, 3])
    ]
    # Execute
    out_a, _ = strategy_with_spec(global_arrays).aggregate_train(1, replies)
    out_b, _ = strategy_with_spec(global_arrays).aggregate_train(1, replies[::-1])
    # Assert
    for name in global_arrays:
        np.testing.assert_array_equal(out_a[name].numpy(), out_b[name].numpy())


def test_identical_client_models_give_back_the_same_model(
    global_arrays: dict[str, np.ndarray],
) -> None:
    # Prepare: global_arrays holds float32-exact dyadic values; weights normalise to 1/4, 1/4, 1/2
    strategy = strategy_with_spec(global_arrays)
    replies = [
        make_reply(global_arrays, {keys.NUM_EXAMPLES: n}, node_id=1001 + i, partition_id=i)
        for i, n in enumerate([25, 25, 50])
    ]
    # Execute
    arrays, metrics = strategy.aggregate_train(1, replies)
    # Assert
    for name, value in global_arrays.items():
        out = arrays[name].numpy()
        assert out.dtype == value.dtype
        np.testing.assert_array_equal(out, value)
    assert dict(metrics) == {}


def test_identical_random_client_models_come_back_within_rounding(
    global_arrays: dict[str, np.ndarray],
) -> None:
    # Prepare
    rng = np.random.default_rng(11)
    model = {k: (rng.normal(size=v.shape).astype(v.dtype) if v.dtype.kind == "f" else v)
             for k, v in global_arrays.items()}
    strategy = strategy_with_spec(global_arrays)
    replies = [
        make_reply(model, {keys.NUM_EXAMPLES: n}, node_id=1001 + i, partition_id=i)
        for i, n in enumerate([17, 5, 123, 9, 41])
    ]
    # Execute
    arrays, _ = strategy.aggregate_train(1, replies)
    # Assert
    for name, value in model.items():
        np.testing.assert_allclose(arrays[name].numpy(), value,
                                   rtol=4 * np.finfo(np.float32).eps, atol=0)
    np.testing.assert_array_equal(arrays["n"].numpy(), model["n"])


def test_aggregate_train_all_bad_raises_with_reasons(global_arrays: dict[str, np.ndarray]) -> None:
    # Prepare
    strategy = strategy_with_spec(global_arrays)
    bad_dtype = {**global_arrays, "b": global_arrays["b"].astype(np.float64)}
    replies = [
        make_reply(None, {}, node_id=1001, partition_id=None, error="segfault"),
        make_reply(bad_dtype, {keys.NUM_EXAMPLES: 3}, node_id=1002, partition_id=1),
        make_reply(global_arrays, {"loss": 1.0}, node_id=1003, partition_id=2),
    ]
    # Execute
    with pytest.raises(NoValidRepliesError) as info:
        strategy.aggregate_train(4, replies)
    # Assert
    message = str(info.value)
    assert "round 4" in message
    assert "none of 3 train replies" in message
    assert "node 1001: client error: segfault" in message
    assert "node 1002:" in message and "float64" in message
    assert "node 1003:" in message and "num-examples" in message
    assert [r["node_id"] for r in strategy.log.entry(4)["train_rejected"]] == [1001, 1002, 1003]


def test_aggregate_train_without_replies_raises(global_arrays: dict[str, np.ndarray]) -> None:
    # Prepare
    strategy = strategy_with_spec(global_arrays)
    # Execute / Assert
    with pytest.raises(NoValidRepliesError, match="no replies arrived"):
        strategy.aggregate_train(1, [])


# ----------------------------------------------------------------------------- aggregate_evaluate


def test_aggregate_evaluate_averages_valid_metrics() -> None:
    # Prepare
    strategy = FedAvg(local=LocalConfig())
    rows = [(1001, 0, 20, 0.4, 0.9), (1002, 1, 60, 1.2, 0.5), (1003, 2, 20, 0.8, 0.7)]
    replies = [
        make_reply(None, {keys.NUM_EXAMPLES: n, "loss": loss, "accuracy": acc},
                   node_id=node, partition_id=pid, message_type="evaluate")
        for node, pid, n, loss, acc in rows
    ] + [
        make_reply(None, {keys.NUM_EXAMPLES: 500, "loss": float("nan"), "accuracy": 0.0},
                   node_id=1004, partition_id=3, message_type="evaluate"),
        make_reply(None, {}, node_id=1005, partition_id=None, error="timeout"),
    ]
    weights = [n for _, _, n, _, _ in rows]
    # Execute
    metrics = strategy.aggregate_evaluate(2, replies)
    # Assert
    assert metrics is not None
    assert set(metrics) == {"loss", "accuracy"}
    assert metrics["loss"] == pytest.approx(np.average([r[3] for r in rows], weights=weights))
    assert metrics["accuracy"] == pytest.approx(np.average([r[4] for r in rows], weights=weights))
    assert metrics["loss"] == pytest.approx(0.96)  # (20*0.4 + 60*1.2 + 20*0.8) / 100
    entry = strategy.log.entry(2)
    assert entry["evaluate_replies"] == 5
    assert [r["node_id"] for r in entry["evaluate_rejected"]] == [1004, 1005]
    assert entry["evaluate_metrics"] == dict(metrics)


def test_aggregate_evaluate_ignores_arrays_in_replies(global_arrays: dict[str, np.ndarray]) -> None:
    # Prepare: evaluate screening has no array spec, so odd arrays do not matter
    strategy = FedAvg(local=LocalConfig())
    replies = [
        make_reply({"junk": np.array([np.inf], np.float32)},
                   {keys.NUM_EXAMPLES: 1, "loss": 2.0}, node_id=1001, partition_id=0),
        make_reply(None, {keys.NUM_EXAMPLES: 3, "loss": 6.0}, node_id=1002, partition_id=1),
    ]
    # Execute
    metrics = strategy.aggregate_evaluate(1, replies)
    # Assert: (1 * 2 + 3 * 6) / 4 = 5
    assert dict(metrics) == {"loss": pytest.approx(5.0)}


def test_aggregate_evaluate_all_bad_returns_none() -> None:
    # Prepare
    strategy = FedAvg(local=LocalConfig())
    replies = [
        make_reply(None, {keys.NUM_EXAMPLES: -1, "loss": 1.0}, node_id=1001, partition_id=0),
        make_reply(None, {}, node_id=1002, partition_id=None, error="boom"),
    ]
    # Execute
    metrics = strategy.aggregate_evaluate(3, replies)
    empty = strategy.aggregate_evaluate(4, [])
    # Assert
    assert metrics is None
    assert empty is None
    assert len(strategy.log.entry(3)["evaluate_rejected"]) == 2
    assert "evaluate_metrics" not in strategy.log.entry(3)


def test_aggregate_train_of_cnn_with_batchnorm() -> None:
    # Prepare
    global_record = to_arrays(build_model("cnn", (1, 8, 8), 4, hidden=8, seed=0))
    arrays = {k: a.numpy() for k, a in global_record.items()}
    strategy = FedAvg(local=LocalConfig())
    strategy._spec = array_specs(global_record)
    replies = [
        make_reply(arrays, {keys.NUM_EXAMPLES: n}, node_id=1001 + i, partition_id=i)
        for i, n in enumerate([10, 30])
    ]
    # Execute
    out, _ = strategy.aggregate_train(1, replies)
    # Assert
    for name, value in arrays.items():
        assert out[name].numpy().dtype == value.dtype
        np.testing.assert_allclose(out[name].numpy(), value, rtol=1e-6)
