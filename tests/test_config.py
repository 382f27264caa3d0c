"""Run-config validation: every bad input stops with a message naming key, value and what's allowed."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from fedot.config import ConfigError, RunConfig, flatten, load_run_config, parse_value, unflatten

ROOT = Path(__file__).resolve().parents[1]


def pyproject_defaults() -> dict:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return flatten(data["tool"]["flwr"]["app"]["config"])


def test_pyproject_defaults_validate_and_equal_model_defaults() -> None:
    # Prepare
    flat = pyproject_defaults()
    # Execute
    cfg = load_run_config(flat)
    # Assert: the pyproject table and the pydantic defaults describe the same run
    assert cfg == RunConfig()
    assert set(flat) == set(RunConfig().flat())


@pytest.mark.parametrize(
    ("override", "needles"),
    [
        ({"rounds": 0}, ["'rounds'", "0", "greater than or equal to 1"]),
        ({"partition.alpha": -1}, ["'partition.alpha'", "-1", "greater than 0"]),
        ({"scheme": "foo"}, ["'scheme'", "'foo'", "'fedavg'"]),
        ({"rounds": "five"}, ["'rounds'", "'five'", "valid integer"]),
        ({"local.lr": "0.1"}, ["'local.lr'", "'0.1'", "valid number"]),
        ({"foo": 1}, ["unknown config key 'foo'", "allowed keys", "rounds"]),
        ({"local.foo": 1}, ["unknown config key 'local.foo'", "local.lr"]),
        ({"fraction-train": 0.0}, ["'fraction-train'", "greater than 0"]),
        ({"local.optimizer": "rmsprop"}, ["'local.optimizer'", "'sgd'", "'adam'"]),
        ({"checkpoint": 1}, ["'checkpoint'", "valid boolean"]),
        ({"device": "tpu"}, ["'device'", "'tpu'", "cuda:N"]),
        ({"model.name": "cnn", "dataset": "wine"}, ["model.name='cnn'", "wine", "mlp"]),
        ({"partition.kind": "natural"}, ["partition.kind='natural'", "synthetic-regression"]),
        ({"dataset": "synthetic-regression", "model.name": "linear"}, ["partition.kind", "iid"]),
        ({"local.lr": float("nan")}, ["'local.lr'", "nan"]),
        ({"fault.partitions": "1,b"}, ["'fault.partitions'", "comma-separated"]),
        ({"fault.kind": "boom"}, ["'fault.kind'", "'crash'"]),
        ({"min-replies": 0}, ["'min-replies'", "greater than or equal to 1"]),
        ({"scheme": "fedavot", "participation.k": 11}, ["participation.k=11", "clients=10"]),
    ],
)
def test_bad_values_name_key_value_and_allowed(override: dict, needles: list[str]) -> None:
    # Prepare
    flat = {**pyproject_defaults(), **override}
    # Execute
    with pytest.raises(ConfigError) as info:
        load_run_config(flat)
    # Assert
    for needle in needles:
        assert needle in str(info.value)


def test_all_errors_reported_in_one_message() -> None:
    # Execute
    with pytest.raises(ConfigError) as info:
        load_run_config({"rounds": 0, "clients": -2})
    # Assert
    assert "'rounds'" in str(info.value) and "'clients'" in str(info.value)


def test_int_accepted_where_float_belongs_but_not_bool() -> None:
    # Execute
    cfg = load_run_config({"local.lr": 1})
    # Assert
    assert cfg.local.lr == 1.0 and isinstance(cfg.local.lr, float)
    with pytest.raises(ConfigError):
        load_run_config({"local.lr": True})


def test_section_used_as_value_is_rejected() -> None:
    with pytest.raises(ConfigError, match="section"):
        load_run_config({"local": 3, "local.lr": 0.1})


def test_flatten_unflatten_round_trip() -> None:
    # Prepare
    flat = RunConfig().flat()
    # Execute / Assert
    assert flatten(unflatten(flat)) == flat
    assert unflatten({"a.b.c": 1, "a.d": 2}) == {"a": {"b": {"c": 1}, "d": 2}}


@pytest.mark.parametrize(
    ("text", "expected"),
    [("5", 5), ("0.1", 0.1), ("true", True), ('"x y"', "x y"), ("iid", "iid"), ("1e-3", 1e-3)],
)
def test_parse_value_like_flower(text: str, expected: object) -> None:
    assert parse_value(text) == expected
    assert type(parse_value(text)) is type(expected)


def test_config_is_frozen_and_hashable() -> None:
    cfg = load_run_config({})
    with pytest.raises(ValueError):
        cfg.rounds = 3  # type: ignore[misc]
    assert hash(cfg) == hash(load_run_config({}))
