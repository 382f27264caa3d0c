r"""Git Re-Basin weight matching: permutation coordinate descent on a permutation spec.

Weight matching (Ainsworth, Hayase & Srinivasa 2023, Sec. 3.2, Alg. 1) looks for one permutation
:math:`P_g` per group that makes the model's weights as similar as possible to the target's:

.. math::

    \max_{\{P_g\}} \; J(P) = \sum_{t} \big\langle W^{\text{target}}_t,\;
    \pi_P(W^{\text{model}}_t) \big\rangle_F,

where :math:`t` runs over every tensor of the spec (weights, biases, norm parameters and running
statistics) and :math:`\pi_P` permutes every axis of :math:`t` by its group's permutation (for a
linear layer :math:`\pi_P(W_\ell) = P_\ell W_\ell P_{\ell-1}^\top`). The problem is NP-hard in
general (a quadratic assignment problem for deep nets), but linear in each :math:`P_g` when the
others are fixed: collecting every axis on which :math:`g` acts,

.. math::

    S_g = \sum_{(t, a) : \text{axis } a \text{ of } t \in g}
    W^{\text{target}}_{t,(a)} \,\big[\pi_{P \setminus g}(W^{\text{model}}_t)\big]_{(a)}^\top
    \in \mathbb{R}^{m \times n}, \qquad
    P_g \leftarrow \arg\max_{P} \langle S_g, P \rangle,

with :math:`X_{(a)}` the matricisation of :math:`X` along axis :math:`a` (rows = units). The update
is a linear assignment problem (``scipy.optimize.linear_sum_assignment(maximize=True)``). The groups
are visited in a fresh random order in every sweep (seeded), and the sweeps stop when one of them
changes no permutation. A permutation is only replaced when the new one strictly increases
:math:`\langle S_g, P\rangle`, so :math:`J` is non-decreasing over the updates whenever no tensor
carries the same group on two axes (true for all feed-forward and residual specs of
:mod:`fedot.fusion`).

Relation to OTFusion (:mod:`fedot.fusion.align`): with exact OT, uniform marginals and equal widths
OTFusion also returns permutations, but it solves each layer once, in order, with a Euclidean cost
on the incoming weights only; weight matching uses an inner-product similarity on incoming *and*
outgoing weights and iterates.

References
----------
.. [1] S. K. Ainsworth, J. Hayase, S. Srinivasa, "Git Re-Basin: Merging Models modulo Permutation
   Symmetries", ICLR 2023.
.. [2] S. P. Singh, M. Jaggi, "Model Fusion via Optimal Transport", NeurIPS 2020.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn

from fedot.fusion.spec import PermutationSpec, permute, spec_for, take_axis

__all__ = ["RebasinResult", "weight_matching"]


@dataclass(frozen=True)
class RebasinResult:
    """Result of :func:`weight_matching`.

    Attributes
    ----------
    model : torch.nn.Module
        A copy of the model with the found permutations applied (same function as the model).
    permutations : mapping of str to Tensor
        Group -> ``perm``: unit ``j`` of the result is unit ``perm[j]`` of the model.
    objective_history : tuple of float
        :math:`J(P)` at the identity, then after every group update (non-decreasing).
    sweeps : int
        Number of sweeps performed.
    converged : bool
        Whether the last sweep changed no permutation (``False``: stopped at ``max_sweeps``).
    """

    model: nn.Module
    permutations: Mapping[str, Tensor]
    objective_history: tuple[float, ...]
    sweeps: int
    converged: bool


def _permuted(
    t: Tensor, axes: tuple[str | None, ...], perms: Mapping[str, Tensor], sizes: Mapping[str, int],
    skip_axis: int | None = None,
) -> Tensor:
    for axis, g in enumerate(axes):
        if g is not None and axis != skip_axis:
            t = take_axis(t, axis, perms[g], sizes[g])
    return t


def _objective(
    model: Mapping[str, Tensor], target: Mapping[str, Tensor], spec: PermutationSpec,
    perms: Mapping[str, Tensor], sizes: Mapping[str, int],
) -> float:
    total = 0.0
    for key, axes in spec.axes.items():
        permuted = _permuted(model[key], axes, perms, sizes)
        total += float(torch.sum(target[key].double() * permuted.double()))
    return total


def weight_matching(
    model: nn.Module,
    target: nn.Module,
    spec: PermutationSpec | None = None,
    *,
    max_sweeps: int = 100,
    seed: int = 0,
) -> RebasinResult:
    r"""Permute ``model``'s hidden units to match ``target``'s weights (Git Re-Basin weight matching).

    Parameters
    ----------
    model : torch.nn.Module
        The model to permute (not modified).
    target : torch.nn.Module
        The reference model; every group must have the same number of units as in ``model``.
    spec : PermutationSpec, optional
        Default: :func:`fedot.fusion.spec.spec_for` ``(target)``.
    max_sweeps : int, default 100
        Maximum number of sweeps over all groups.
    seed : int, default 0
        Seed of the random group order (numpy ``default_rng``); no global RNG is used.

    Returns
    -------
    RebasinResult
        Permuted model, permutations and the objective after every group update.

    Raises
    ------
    ValueError
        If a group's size differs between the models or ``max_sweeps < 1``.

    Examples
    --------
    >>> import torch
    >>> from fedot.learning import build_model
    >>> from fedot.fusion.spec import permute
    >>> a = build_model("mlp", (8,), 3, hidden=16, seed=0)
    >>> perm = torch.randperm(16, generator=torch.Generator().manual_seed(0))
    >>> res = weight_matching(permute(a, {"1": perm}), a)
    >>> bool(torch.equal(res.model[1].weight, a[1].weight))
    True
    """
    if max_sweeps < 1:
        raise ValueError(f"max_sweeps must be >= 1, got {max_sweeps}")
    spec = spec_for(target, spec)
    ref = next(t for t in target.parameters() if t.is_floating_point())
    with torch.no_grad():
        ms = {k: v.detach().to(device=ref.device, dtype=ref.dtype) for k, v in model.state_dict().items()
              if k in spec.axes}
        ts = {k: v.detach() for k, v in target.state_dict().items() if k in spec.axes}
        sizes, t_sizes = spec.sizes(ms), spec.sizes(ts)
        if sizes != t_sizes:
            raise ValueError(f"weight matching needs equal group sizes, got {sizes} vs {t_sizes}")
        perms = {g: torch.arange(n, device=ref.device) for g, n in sizes.items()}
        history = [_objective(ms, ts, spec, perms, sizes)]
        rng = np.random.default_rng(seed)
        converged = False
        sweeps = 0
        for _ in range(max_sweeps):
            sweeps += 1
            changed = False
            for gi in rng.permutation(len(spec.order)):
                g = spec.order[int(gi)]
                n = sizes[g]
                sim = torch.zeros(n, n, dtype=torch.float64, device=ref.device)
                for key, axis in spec.occurrences(g):
                    w_t = ts[key].movedim(axis, 0).reshape(n, -1).double()
                    w_m = _permuted(ms[key], spec.axes[key], perms, sizes, skip_axis=axis)
                    sim += w_t @ w_m.movedim(axis, 0).reshape(n, -1).double().T
                sim_np = sim.cpu().numpy()
                _, cols = linear_sum_assignment(sim_np, maximize=True)
                old = perms[g].cpu().numpy()
                rows = np.arange(n)
                gain = sim_np[rows, cols].sum() - sim_np[rows, old].sum()
                if gain > 1e-12 * max(1.0, abs(history[-1])):
                    perms[g] = torch.as_tensor(cols, dtype=torch.long, device=ref.device)
                    changed = True
                history.append(_objective(ms, ts, spec, perms, sizes))
            if not changed:
                converged = True
                break
        permuted = permute(model, {g: p.cpu() for g, p in perms.items()}, spec)
    return RebasinResult(model=permuted, permutations=perms, objective_history=tuple(history),
                         sweeps=sweeps, converged=converged)
