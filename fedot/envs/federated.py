"""A federated inverse-RL problem: a shared objective, per-source environment variants, demo counts.

:func:`federated_irl` is a pure function of its arguments, so the server (which evaluates against
the shared objective) and every client (which generates its own demonstrations) rebuild the same
problem without exchanging anything. Demonstrations are generated only by :func:`source_demos`,
which a client calls for the sources it holds; the server never calls it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from fedot.envs.control import discretized_control
from fedot.envs.demos import Demonstrations, expert_demonstrations
from fedot.envs.gridworld import client_variants, gridworld
from fedot.envs.gym_tabular import from_gymnasium
from fedot.envs.tabular import TabularMDP

__all__ = ["IRL_ENVS", "FederatedIRL", "federated_irl", "source_demos"]

IRL_ENVS: tuple[str, ...] = (
    "gridworld", "frozenlake-4x4", "frozenlake-8x8", "frozenlake-random", "cliffwalking", "taxi",
    "mountaincar", "pendulum",
)


@dataclass(frozen=True)
class FederatedIRL:
    """The environments of a federated IRL run.

    Attributes
    ----------
    base : TabularMDP
        Holds the shared objective (``base.true_reward``, ``base.goal_states``) every fused reward
        is evaluated against.
    sources : tuple[TabularMDP, ...]
        One environment variant per demonstration source; source j's ``true_reward`` is the reward
        its expert optimises (it differs from the shared one under goal shift).
    demo_counts : tuple[int, ...]
        Training demonstrations of each source.
    test_demos : int
        Held-out demonstrations per source (for client-side evaluation).
    expert_temperature : float
        Boltzmann temperature of the experts.
    seed : int
        Seed of the variants and of the demonstrations.
    """

    base: TabularMDP
    sources: tuple[TabularMDP, ...]
    demo_counts: tuple[int, ...]
    test_demos: int
    expert_temperature: float
    seed: int

    def shared(self, j: int) -> TabularMDP:
        """Source j's dynamics with the shared objective's reward and goals (for evaluation)."""
        return dataclasses.replace(
            self.sources[j], true_reward=self.base.true_reward, goal_states=self.base.goal_states
        )


def _demo_counts(kind: str, demos: int, k: int) -> tuple[int, ...]:
    if kind != "demos" or k == 1:
        return (demos,) * k
    # unequal counts spread linearly from 0.2× to 1.8× the mean
    return tuple(max(1, round(demos * (0.2 + 1.6 * j / (k - 1)))) for j in range(k))


def _base_and_variants(
    env: str, k: int, *, heterogeneity: str, strength: float, grid_size: int, slip: float,
    bins: int, horizon: int | None, seed: int,
) -> tuple[TabularMDP, list[TabularMDP]]:
    if env == "gridworld":
        goal = round(0.7 * (grid_size - 1))
        spec = {"size": grid_size, "goals": ((goal, goal),), "slip": slip, "horizon": horizon}
        kind = heterogeneity if heterogeneity != "demos" else "none"
        return gridworld(**spec), client_variants(spec, k, kind, strength, seed)
    if env == "frozenlake-random":
        def lake(map_seed: int) -> TabularMDP:
            return from_gymnasium("FrozenLake-v1", random_map_seed=map_seed, map_size=8,
                                  is_slippery=slip > 0, horizon=horizon)
        base = lake(seed)
        if heterogeneity == "layout":
            return base, [lake(seed * 1000 + 1 + j) for j in range(k)]
        return base, [base] * k
    if env.startswith("frozenlake"):
        base = from_gymnasium("FrozenLake-v1", map_name=env.split("-")[1], is_slippery=slip > 0,
                              horizon=horizon)
    elif env == "cliffwalking":
        base = from_gymnasium("CliffWalking-v1", horizon=horizon)
    elif env == "taxi":
        base = from_gymnasium("Taxi-v4", horizon=horizon)
    elif env == "mountaincar":
        base = discretized_control("MountainCar-v0", bins=(bins, bins), seed=seed, horizon=horizon)
    elif env == "pendulum":
        base = discretized_control("Pendulum-v1", bins=(bins, bins), seed=seed, horizon=horizon)
    else:
        raise ValueError(f"unknown IRL environment {env!r}; available: {', '.join(IRL_ENVS)}")
    return base, [base] * k


@lru_cache(maxsize=16)
def federated_irl(
    env: str,
    num_sources: int,
    *,
    heterogeneity: str = "none",
    strength: float = 0.0,
    grid_size: int = 10,
    slip: float = 0.1,
    bins: int = 20,
    demos: int = 50,
    test_demos: int = 20,
    horizon: int | None = None,
    expert_temperature: float = 0.2,
    seed: int = 0,
) -> FederatedIRL:
    """Build (and cache) the environments of a federated IRL run.

    Parameters
    ----------
    env : str
        One of :data:`IRL_ENVS`. ``gridworld``: ``grid_size``² cells, start (0, 0), goal at 70 % of
        the diagonal (interior, so goal shifts are not clipped), ``slip``. ``frozenlake-*``:
        gymnasium's FrozenLake, slippery when ``slip`` > 0; ``frozenlake-random`` draws an 8×8 map
        from ``seed``. ``cliffwalking``, ``taxi``: gymnasium's models. ``mountaincar``,
        ``pendulum``: discretised on ``bins`` × ``bins`` cells.
    num_sources : int
        Number of environment variants (demonstration sources).
    heterogeneity : {"none", "goal-shift", "slip", "layout", "demos"}
        How the variants differ (gridworld: all; ``frozenlake-random``: ``layout`` gives each
        source its own map; others: ``none`` or ``demos``). ``demos`` keeps the environments equal
        and spreads the demonstration counts from 0.2× to 1.8× ``demos``.
    strength : float
        Goal shift in cells, largest slip, or obstacle density.
    demos, test_demos : int
        Training demonstrations per source (mean, under ``demos``) and held-out ones.
    horizon : int, optional
        Demonstration / planning horizon (default: the environment's).
    expert_temperature : float
        Boltzmann temperature of the experts (smaller: more optimal).
    seed : int
        Seed of the variants and of every source's demonstrations.
    """
    if num_sources < 1:
        raise ValueError(f"num_sources must be ≥ 1, got {num_sources}")
    base, variants = _base_and_variants(
        env, num_sources, heterogeneity=heterogeneity, strength=strength, grid_size=grid_size,
        slip=slip, bins=bins, horizon=horizon, seed=seed,
    )
    return FederatedIRL(
        base=base,
        sources=tuple(variants),
        demo_counts=_demo_counts(heterogeneity, demos, num_sources),
        test_demos=test_demos,
        expert_temperature=expert_temperature,
        seed=seed,
    )


def source_demos(problem: FederatedIRL, j: int) -> tuple[Demonstrations, Demonstrations | None]:
    """Generate source j's expert demonstrations: (training, held-out or None).

    The expert of source j follows the soft-optimal policy of ``sources[j].true_reward`` in
    ``sources[j]``; the seed is derived from ``(problem.seed, j)``.
    """
    mdp = problem.sources[j]
    n_train, n_test = problem.demo_counts[j], problem.test_demos
    seed = int(np.random.SeedSequence([problem.seed, 4242, j]).generate_state(1)[0])
    demos = expert_demonstrations(mdp, n_train + n_test, seed,
                                  temperature=problem.expert_temperature)
    train = demos.subset(np.arange(n_train))
    test = demos.subset(np.arange(n_train, n_train + n_test)) if n_test else None
    return train, test
