"""Flower glue of federated MaxEnt IRL: the problem from the config, the server task, client state.

The global "model" is one array, ``reward`` (float64, one entry per state of the shared state
space). Clients rebuild the environments from the run config (:func:`fedot.envs.federated_irl`, a
pure function), generate the demonstrations of the sources they hold (source j belongs to client
j mod clients) and never send them; the server only ever sees rewards. The server-side evaluation
is the experimenter's oracle: it compares the global reward with the shared objective's true reward
(Pearson, Spearman, EPIC) and plans with it in every source's own dynamics (expected value
difference and success rate under the true reward).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from flwr.app import Array, ArrayRecord, Context, RecordDict

from fedot.config import IRLConfig, RunConfig
from fedot.envs import Demonstrations, TabularMDP
from fedot.envs.federated import FederatedIRL, federated_irl, source_demos
from fedot.fl.strategy import FedotStrategy
from fedot.fl.task import ServerTask, node_partition, validated_config
from fedot.fl.validation import partition_of
from fedot.learning.irl import (
    epic_distance,
    expected_value_difference,
    optimal_policy,
    pearson,
    spearman,
    success_rate,
)
from fedot.learning.reward_fusion import average_rewards

__all__ = [
    "REWARD_KEY",
    "IRLClientEnv",
    "RewardStrategy",
    "irl_client_env",
    "irl_metrics",
    "irl_problem",
    "irl_server_task",
    "plot_rewards",
    "reward_arrays",
    "reward_of",
]

#: The single array of the global model and of every client reply.
REWARD_KEY = "reward"


def irl_problem(cfg: RunConfig) -> FederatedIRL:
    """Return the run's environments (cached; identical on the server and on every client)."""
    irl = cfg.irl
    return federated_irl(
        irl.env, irl.sources or cfg.clients, heterogeneity=irl.heterogeneity,
        strength=irl.strength, grid_size=irl.grid_size, slip=irl.slip, bins=irl.bins,
        demos=irl.demos, test_demos=irl.test_demos, horizon=irl.horizon or None,
        expert_temperature=irl.expert_temperature, seed=cfg.seed,
    )


def reward_arrays(reward: np.ndarray) -> ArrayRecord:
    """Wrap a reward vector as the model's ArrayRecord."""
    return ArrayRecord({REWARD_KEY: Array(np.ascontiguousarray(reward, dtype=np.float64))})


def reward_of(arrays: ArrayRecord) -> np.ndarray:
    """Return the reward vector of a global-model or reply ArrayRecord."""
    return arrays[REWARD_KEY].numpy()


def irl_metrics(
    problem: FederatedIRL, reward: np.ndarray, shared: list[TabularMDP] | None = None
) -> dict[str, float]:
    """Fidelity of ``reward`` to the shared objective, and how well planning with it does.

    Returns ``pearson``, ``spearman``, ``epic`` (against ``base.true_reward``), ``evd`` (mean over
    sources of V*(true) − V^{π*(reward)} under the true reward in the source's own dynamics) and,
    when the environment has goal states, ``success`` (mean probability that the reward's optimal
    policy reaches a goal within the horizon). ``shared``: the sources' evaluation MDPs
    (:meth:`FederatedIRL.shared`), when the caller has built them already.
    """
    base = problem.base
    truth = base.true_reward
    out: dict[str, float] = {}
    if np.ptp(reward) == 0:  # the initial all-zero reward carries no ranking
        out.update(pearson=0.0, spearman=0.0, epic=float(np.sqrt(0.5)))
    else:
        out.update(pearson=pearson(reward, truth), spearman=spearman(reward, truth),
                   epic=epic_distance(reward, truth, base))
    evds, successes = [], []
    for mdp in shared or [problem.shared(j) for j in range(len(problem.sources))]:
        evds.append(expected_value_difference(mdp, reward))
        if len(mdp.goal_states):
            successes.append(success_rate(mdp, optimal_policy(mdp, reward)))
    out["evd"] = float(np.mean(evds))
    if successes:
        out["success"] = float(np.mean(successes))
    return out


def irl_server_task(cfg: RunConfig, strategy: RewardStrategy) -> ServerTask:
    """Server task of the IRL schemes: zero initial reward, oracle metrics, heat maps at the end.

    Each evaluation scores the global reward (:func:`irl_metrics`) and, once a round has been
    aggregated, the mean of the same metrics over the clients' own rewards of that round
    (``local-*``: the local-only baseline on the same demonstrations).
    """
    problem = irl_problem(cfg)
    base = problem.base
    shared = [problem.shared(j) for j in range(len(problem.sources))]  # built once, not per round
    info = {
        "environment": {
            "env": cfg.irl.env, "name": base.name, "states": base.num_states,
            "actions": base.num_actions, "horizon": base.horizon,
            "grid_shape": list(base.grid_shape) if base.grid_shape else None,
            "sources": len(problem.sources), "demo_counts": list(problem.demo_counts),
            "variants": [m.meta for m in problem.sources],
        },
    }

    def finalize(path: Path, arrays: ArrayRecord) -> None:
        if base.grid_shape is None:
            return
        rewards = {"true (shared)": base.true_reward}
        rewards.update(strategy.snapshot())
        rewards[f"global ({cfg.scheme})"] = reward_of(arrays)
        plot_rewards(rewards, base.grid_shape, path / "rewards.png",
                     title=f"{cfg.scheme}: {cfg.irl.env}, {cfg.irl.heterogeneity} "
                           f"{cfg.irl.strength:g}")

    def evaluate(_round: int, arrays: ArrayRecord) -> dict[str, float]:
        out = irl_metrics(problem, reward_of(arrays), shared)
        # The local-only baseline, measured on the same run: each client's own reward, scored
        # like the global one, averaged over the clients of the last aggregated round.
        local = [irl_metrics(problem, r, shared) for name, r in strategy.snapshot().items()
                 if name.startswith("client ")]
        for key in (local[0] if local else {}):
            out[f"local-{key}"] = float(np.mean([m[key] for m in local]))
        return out

    return ServerTask(
        initial_arrays=reward_arrays(np.zeros(base.num_states)),
        evaluate=evaluate,
        info=info,
        finalize=finalize,
    )


def plot_rewards(
    rewards: Mapping[str, np.ndarray], grid_shape: tuple[int, int], path: Path, *, title: str = ""
) -> Path:
    """Heat maps of reward vectors on a grid (one panel each, own colour scale) to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(rewards)
    cols = min(n, 4)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.0 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (name, r) in zip(axes.ravel(), rewards.items(), strict=False):
        im = ax.imshow(np.asarray(r).reshape(grid_shape), cmap="viridis")
        ax.set_title(name, fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


@dataclass(frozen=True)
class IRLClientEnv:
    """A client's share of the problem: its sources' MDPs and demonstrations."""

    cfg: RunConfig
    partition_id: int
    problem: FederatedIRL
    sources: tuple[int, ...]
    train: tuple[tuple[TabularMDP, Demonstrations], ...]
    test: tuple[tuple[TabularMDP, Demonstrations], ...]
    iterations: int

    @property
    def num_demos(self) -> int:
        """Training demonstrations held by this client (its aggregation weight)."""
        return int(sum(d.num for _, d in self.train))

    @property
    def irl(self) -> IRLConfig:
        """The ``irl.*`` section."""
        return self.cfg.irl


@lru_cache(maxsize=4096)
def _irl_client_env(cfg: RunConfig, partition_id: int, num_partitions: int) -> IRLClientEnv:
    problem = irl_problem(cfg)
    n_sources = len(problem.sources)
    sources = tuple(j for j in range(n_sources) if j % num_partitions == partition_id)
    if not sources:
        raise ValueError(
            f"partition {partition_id} of {num_partitions} holds no IRL source "
            f"(irl.sources={n_sources}); run with clients ≤ irl.sources"
        )
    train, test = [], []
    for j in sources:
        d_train, d_test = source_demos(problem, j)
        train.append((problem.sources[j], d_train))
        if d_test is not None:
            test.append((problem.sources[j], d_test))
    undertrained = set(range(n_sources - cfg.irl.undertrained, n_sources))
    iterations = (cfg.irl.undertrained_iterations if set(sources) <= undertrained
                  else cfg.irl.iterations)
    return IRLClientEnv(cfg, partition_id, problem, sources, tuple(train), tuple(test), iterations)


def irl_client_env(context: Context) -> IRLClientEnv:
    """Return the (cached) IRL state of the client this ``context`` belongs to."""
    cfg = validated_config(context.run_config)
    pid, n = node_partition(context)
    return _irl_client_env(cfg, pid, n)


class RewardStrategy(FedotStrategy):
    """Base of the IRL schemes: the reward is the model; fusion is the :meth:`fuse` hook.

    Clients run the ``maxent-irl`` task and reply with ``reward`` (one float64 per state) and
    ``num-examples`` = their number of demonstrations. Weights are those counts, or uniform with
    ``irl.weights = "uniform"``. The last round's client rewards are kept for the heat-map plot
    (:meth:`snapshot`); the server never receives a demonstration.

    Parameters
    ----------
    irl : IRLConfig
        The ``irl.*`` section.
    **kwargs
        Passed to :class:`~fedot.fl.strategy.FedotStrategy`.
    """

    #: :meth:`fuse` validates its inputs (and raises on NaN/Inf) instead of letting a non-finite
    #: reward show in the result, so every reply is screened for finiteness first.
    linear_aggregation: ClassVar[bool] = False

    def __init__(self, *, irl: IRLConfig, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.irl = irl
        self.problem: FederatedIRL | None = None
        self._snapshot: dict[str, np.ndarray] = {}

    @classmethod
    def config_kwargs(cls, cfg: RunConfig) -> dict[str, Any]:
        """Return the shared constructor arguments plus the ``irl.*`` section."""
        return {**super().config_kwargs(cfg), "irl": cfg.irl}

    def server_task(self, cfg: RunConfig, out_dir: Path) -> ServerTask:
        """Zero initial reward, oracle metrics against the shared objective, reward heat maps."""
        self.problem = irl_problem(cfg)
        return irl_server_task(cfg, self)

    def hyperparameters(self) -> dict[str, Any]:
        """Return the shared hyperparameters plus every ``irl.*`` key."""
        irl = {f"irl.{k}": v for k, v in self.irl.model_dump(by_alias=True).items()}
        return {**super().hyperparameters(), **irl}

    def fuse(
        self, rewards: np.ndarray, weights: np.ndarray
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Fuse client rewards (K, S) with normalised weights (K,); return reward and diagnostics.

        The default is parameter averaging, r̄ = Σ_k w_k r_k.
        """
        return average_rewards(rewards, weights), {}

    def aggregate_arrays(
        self, server_round: int, contents: list[RecordDict], weights: list[float]
    ) -> tuple[ArrayRecord, dict[str, Any]]:
        """Stack the replies' rewards, weight them (demos or uniform) and :meth:`fuse` them."""
        records = [next(iter(c.array_records.values())) for c in contents]
        rewards = np.stack([reward_of(r) for r in records])
        w = np.asarray(weights, dtype=np.float64)
        if self.irl.weights == "uniform":
            w = np.ones_like(w)
        w = w / w.sum()
        fused, diagnostics = self.fuse(rewards, w)
        self._snapshot = {f"client {partition_of(c)}": r for c, r in zip(contents, rewards,
                                                                        strict=True)}
        self._snapshot["average"] = average_rewards(rewards, w)
        return reward_arrays(fused), {"weights": w.tolist(), **diagnostics}

    def snapshot(self) -> dict[str, np.ndarray]:
        """Return the last aggregated round's client rewards and their average (for plots)."""
        return dict(self._snapshot)

    def state_dict(self) -> dict[str, Any]:
        """Return the last aggregated round's rewards (the server's ``local-*`` metrics and plot)."""
        return {**super().state_dict(),
                "snapshot": {k: torch.from_numpy(np.array(v)) for k, v in self._snapshot.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        state = dict(state)
        self._snapshot = {k: v.numpy().copy() for k, v in state.pop("snapshot").items()}
        super().load_state_dict(state)
