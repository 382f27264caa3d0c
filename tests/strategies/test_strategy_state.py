"""Every strategy's ``state_dict`` → checkpoint → ``load_state_dict`` round trip, and round offsets.

A restored strategy must hold the same state and behave the same from then on (same availability
draws, same aggregation weights, same rewards for the plots), and the state must survive
``torch.save`` / ``torch.load(weights_only=True)`` as the checkpoint does.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
import torch
from flwr.app import ConfigRecord, MetricRecord, RecordDict

from fedot.config import load_run_config
from fedot.fl import keys
from fedot.fl.inline import InlineGrid
from fedot.fl.irl import RewardStrategy, reward_arrays
from fedot.fl.participation import PartialParticipation
from strategies import STRATEGIES, FedAvg

SIZES = np.array([30, 50, 20, 40, 60])
#: Schemes implemented in this file's scope (the width-heterogeneous ones keep their own state).
SCHEMES = ["fedavg", "fedavot", "fedavg-subset", "fedavg-k", "fedavg-full", "irl-average",
           "irl-barycenter", "ffm", "otfusion"]


def _checkpointed(state: dict[str, Any]) -> dict[str, Any]:
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    return type(a) is type(b) and a == b


def _build(scheme: str, **overrides: Any):
    cfg = load_run_config({"scheme": scheme, "clients": len(SIZES), "participation.k": 2,
                           "participation.mc-samples": 2000, **overrides})
    return STRATEGIES[scheme].from_config(cfg)


def _reward_reply(pid: int, reward: np.ndarray) -> RecordDict:
    return RecordDict({keys.ARRAYS: reward_arrays(reward),
                       keys.METRICS: MetricRecord({keys.NUM_EXAMPLES: 10 + pid}),
                       keys.CLIENT: ConfigRecord({keys.PARTITION_ID: pid})})


def _advance(strategy) -> None:
    """Put the strategy in a state that a fresh one does not have (as after a few rounds)."""
    if isinstance(strategy, PartialParticipation):
        strategy.configure_clients(SIZES)
        for t in range(1, 4):
            subset = strategy.draw(t)
            if strategy.estimator is not None:
                strategy.estimator.observe(subset if t % 2 else subset[:3])
    if isinstance(strategy, RewardStrategy):
        rng = np.random.default_rng(0)
        replies = [_reward_reply(p, rng.standard_normal(6)) for p in range(3)]
        strategy.fuse = lambda r, w: RewardStrategy.fuse(strategy, r, w)  # no env needed
        strategy.aggregate_arrays(1, replies, [10.0, 11.0, 12.0])
        del strategy.fuse


def _behaviour(strategy) -> list[Any]:
    """What the restored strategy does next (consumes its state: call on both, compare)."""
    out: list[Any] = []
    if isinstance(strategy, PartialParticipation):
        for t in range(4, 9):
            subset = strategy.draw(t)
            coef, _ = strategy.coefficients(t, subset)
            out.append((subset, np.asarray(coef).tolist()))
            if strategy.estimator is not None:
                strategy.estimator.observe(subset)
    if isinstance(strategy, RewardStrategy):
        out.append({k: v.tolist() for k, v in strategy.snapshot().items()})
    return out


@pytest.mark.parametrize("scheme", SCHEMES)
def test_state_dict_round_trips(scheme: str) -> None:
    # Prepare
    original = _build(scheme)
    _advance(original)
    state = original.state_dict()
    # Execute
    restored = _build(scheme)
    restored.load_state_dict(_checkpointed(state))
    # Assert: same state, same behaviour from here on
    assert _same(restored.state_dict(), state)
    assert _behaviour(restored) == _behaviour(original)


@pytest.mark.parametrize("availability",
                         ["k-of-n", "with-replacement", "bernoulli", "markov", "restricted",
                          "observed", "all"])
def test_fedavot_state_round_trips_for_every_availability(availability: str) -> None:
    # Prepare: availability RNG, Markov chain state, online q estimate all advanced
    original = _build("fedavot", **{"participation.availability": availability})
    _advance(original)
    state = original.state_dict()
    # Execute
    restored = _build("fedavot", **{"participation.availability": availability})
    restored.load_state_dict(_checkpointed(state))
    # Assert
    assert _same(restored.state_dict(), state)
    assert restored.log.setup == original.log.setup  # p, q and the plan derived again exactly
    assert _behaviour(restored) == _behaviour(original)


def test_state_before_discovery_round_trips() -> None:
    # Prepare: a round-0 checkpoint is written before discovery
    original = _build("fedavot", **{"participation.availability": "markov"})
    restored = _build("fedavot", **{"participation.availability": "markov"})
    # Execute
    restored.load_state_dict(_checkpointed(original.state_dict()))
    _advance(original)
    _advance(restored)
    # Assert
    assert _behaviour(restored) == _behaviour(original)


def test_base_refuses_state_it_does_not_know() -> None:
    strategy = _build("fedavg")
    with pytest.raises(ValueError, match="cannot restore checkpoint state"):
        strategy.load_state_dict({"participation": {}})


class _Recording(FedAvg):
    """Records the rounds its overridden hooks see; trains nobody."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seen: list[tuple[str, int]] = []

    def configure_train(self, server_round, arrays, config, grid):  # noqa: ANN001
        self.seen.append(("configure_train", server_round))
        return []

    def aggregate_train(self, server_round, replies):  # noqa: ANN001
        self.seen.append(("aggregate_train", server_round))
        return None, None

    def configure_evaluate(self, server_round, arrays, config, grid):  # noqa: ANN001
        self.seen.append(("configure_evaluate", server_round))
        # the base's (and Flower's) hooks below the override must not shift the round again
        messages = super().configure_evaluate(server_round, arrays, config, grid)
        sent = {int(msg.content[keys.CONFIG]["server-round"]) for msg in messages}
        self.seen.extend(("server-round", r) for r in sorted(sent))
        return []

    def aggregate_evaluate(self, server_round, replies):  # noqa: ANN001
        self.seen.append(("aggregate_evaluate", server_round))
        return None


@pytest.mark.parametrize("offset", [0, 3])
def test_round_offset_gives_overriding_hooks_true_rounds(offset: int) -> None:
    # Prepare
    cfg = load_run_config({"clients": 2})
    strategy = _Recording(**_Recording.config_kwargs(cfg))
    evaluated: list[int] = []
    # Execute
    grid = InlineGrid(lambda msg, context: msg, {}, 2)  # no message reaches it
    strategy.start(grid, reward_arrays(np.zeros(3)), num_rounds=2,
                   evaluate_fn=lambda r, a: evaluated.append(r), round_offset=offset)
    # Assert: every hook once per round with the true round; nothing left on the instance
    rounds = [offset + 1, offset + 2]
    assert evaluated == [offset, *rounds]
    for hook in (*_Recording.ROUND_HOOKS, "server-round"):
        assert [r for h, r in strategy.seen if h == hook] == rounds, hook
        assert hook not in vars(strategy)
