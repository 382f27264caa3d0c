"""Client-side plumbing: the round's ConfigRecord back into LocalConfig, and client replies."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from conftest import StubGrid, array_record
from flwr.app import ConfigRecord, Message, RecordDict

from fedot.config import ConfigError, LocalConfig, load_run_config
from fedot.fl import keys
from fedot.fl.client import reply, round_settings
from fedot.fl.validation import array_specs, screen_replies
from strategies.fedavg import FedAvg

LOCAL = LocalConfig(epochs=4, batch_size=16, lr=0.025, optimizer="adam", momentum=0.5,
                    weight_decay=1e-4, proximal_mu=0.1)


def config_message(config: dict) -> Message:
    return Message(RecordDict({keys.CONFIG: ConfigRecord(config)}), 1001, "train")


def round_config(server_round: int = 3) -> dict:
    return {**FedAvg(local=LOCAL).client_config(server_round), keys.SERVER_ROUND: server_round}


def test_round_settings_parses_the_strategy_client_config() -> None:
    # Prepare
    msg = config_message(round_config(3))
    # Execute
    server_round, local = round_settings(msg)
    # Assert
    assert server_round == 3
    assert local == LOCAL
    assert (local.epochs, local.batch_size, local.lr, local.optimizer) == (4, 16, 0.025, "adam")


def test_round_settings_on_messages_from_configure_train() -> None:
    # Prepare
    cfg = load_run_config({"clients": 2, "local.lr": 0.3, "local.epochs": 1})
    strategy = FedAvg.from_config(cfg)
    arrays = array_record({"w": np.zeros(2, np.float32)})
    messages = list(strategy.configure_train(5, arrays, ConfigRecord(), StubGrid([7, 8])))
    # Execute
    parsed = [round_settings(m) for m in messages]
    # Assert
    assert len(parsed) == 2
    assert all(p == (5, cfg.local) for p in parsed)


def test_round_settings_ignores_unrelated_keys() -> None:
    # Prepare
    msg = config_message({**round_config(1), "scheme.extra": 2.0, "note": "x"})
    # Execute
    _, local = round_settings(msg)
    # Assert
    assert local == LOCAL


def test_round_settings_accepts_an_int_learning_rate() -> None:
    # Prepare
    msg = config_message({**round_config(1), "local.lr": 1})
    # Execute
    _, local = round_settings(msg)
    # Assert
    assert local.lr == 1.0 and isinstance(local.lr, float)


@pytest.mark.parametrize("key", keys.LOCAL_KEYS)
def test_round_settings_missing_key_raises_naming_it(key: str) -> None:
    # Prepare
    config = round_config(2)
    del config[key]
    # Execute / Assert
    with pytest.raises(ConfigError) as info:
        round_settings(config_message(config))
    assert key in str(info.value)
    assert "round 2" in str(info.value)


@pytest.mark.parametrize(
    ("key", "value", "name"),
    [
        ("local.lr", -1, "lr"),
        ("local.lr", 0.0, "lr"),
        ("local.epochs", 0, "epochs"),
        ("local.batch-size", 2.5, "batch-size"),
        ("local.optimizer", "rmsprop", "optimizer"),
        ("local.momentum", 1.0, "momentum"),
        ("local.weight-decay", -0.5, "weight-decay"),
        ("local.proximal-mu", -1.0, "proximal-mu"),
    ],
)
def test_round_settings_bad_value_raises_naming_the_key(key: str, value, name: str) -> None:
    # Prepare
    msg = config_message({**round_config(2), key: value})
    # Execute / Assert
    with pytest.raises(ConfigError) as info:
        round_settings(msg)
    text = str(info.value)
    assert "invalid local settings" in text
    assert f"'local.{name}'" in text  # the dotted run-config key, as load_run_config names it
    assert key == f"local.{name}"


def test_reply_carries_metrics_identity_and_arrays() -> None:
    # Prepare
    msg = config_message(round_config(1))
    env = SimpleNamespace(partition_id=4)
    arrays = array_record({"w": np.array([1.0, 2.0], np.float32)})
    # Execute
    out = reply(msg, env, {keys.NUM_EXAMPLES: 12, "loss": 0.25}, arrays=arrays)
    # Assert
    assert dict(out.content[keys.METRICS]) == {keys.NUM_EXAMPLES: 12, "loss": 0.25}
    assert out.content[keys.CLIENT][keys.PARTITION_ID] == 4
    np.testing.assert_array_equal(out.content[keys.ARRAYS]["w"].numpy(), [1.0, 2.0])
    assert out.metadata.reply_to_message_id == msg.metadata.message_id
    screen = screen_replies([out], spec=array_specs(arrays))
    assert screen.rejected == [] and screen.valid == [out]


def test_reply_without_arrays_has_no_array_record() -> None:
    # Prepare
    msg = config_message(round_config(1))
    # Execute
    out = reply(msg, SimpleNamespace(partition_id=0), {keys.NUM_EXAMPLES: 3, "loss": 1.0})
    # Assert
    assert len(out.content.array_records) == 0
    assert screen_replies([out], spec=None).valid == [out]
