"""Tabular environments for federated inverse reinforcement learning.

Depends on numpy, scipy and gymnasium only (no torch, no federated runtime).

* :mod:`fedot.envs.tabular`: :class:`TabularMDP` (sparse dynamics, state rewards, absorbing
  terminals, state coordinates) and the dynamic-programming primitives shared with
  :mod:`fedot.learning.irl` (soft value iteration, state visitation);
* :mod:`fedot.envs.gridworld`: gridworlds and heterogeneous client variants;
* :mod:`fedot.envs.gym_tabular`: exact models of gymnasium's toy-text environments;
* :mod:`fedot.envs.control`: discretised MountainCar and Pendulum;
* :mod:`fedot.envs.demos`: demonstrations and Boltzmann-rational experts.
"""

from fedot.envs.control import CONTROL_ENVS, discretized_control
from fedot.envs.demos import Demonstrations, expert_demonstrations, sample_demonstrations
from fedot.envs.gridworld import ACTIONS, VARIANT_KINDS, client_variants, gridworld
from fedot.envs.gym_tabular import SUPPORTED_ENVS, from_gymnasium
from fedot.envs.tabular import (
    SoftVIResult,
    SoftVIWarning,
    TabularMDP,
    as_transitions,
    make_mdp,
    soft_value_iteration,
    state_visitation,
    state_visitation_by_step,
)

__all__ = [
    "ACTIONS",
    "CONTROL_ENVS",
    "SUPPORTED_ENVS",
    "VARIANT_KINDS",
    "Demonstrations",
    "SoftVIResult",
    "SoftVIWarning",
    "TabularMDP",
    "as_transitions",
    "client_variants",
    "discretized_control",
    "expert_demonstrations",
    "from_gymnasium",
    "gridworld",
    "make_mdp",
    "sample_demonstrations",
    "soft_value_iteration",
    "state_visitation",
    "state_visitation_by_step",
]
