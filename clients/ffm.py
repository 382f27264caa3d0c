"""Client task ``ffm``: local flow matching (or GOT's dual-potential ascent) on this client's data.

A handler decodes the global θ (and φ), runs :mod:`fedot.learning.flow` for ``ffm.local-steps``
steps and replies with the updated arrays and its data size. The round's stage comes from the
server (``ffm.stage``): ``potential`` ascends the semi-dual objective J(φ) on this client's data
(:func:`~fedot.learning.flow.train_potential`); ``flow`` trains θ with the configured coupling —
independent (vanilla), exact minibatch OT (LOT) or the frozen potential's c-transform (GOT).
"""

from __future__ import annotations

import copy

import torch
from flwr.app import Context, Message

from fedot.fl import keys
from fedot.fl.client import reply
from fedot.fl.flow import STAGE_KEY, flow_arrays, flow_client_env, load_flow_arrays
from fedot.learning.flow import (
    ExactOTCoupling,
    GaussianPath,
    IndependentCoupling,
    LinearPath,
    PotentialCoupling,
    flow_matching_loss,
    train_flow,
    train_potential,
)

__all__ = ["evaluate", "train"]


def train(msg: Message, context: Context) -> Message:
    """Run this round's local steps (potential or flow) and reply with the new arrays."""
    env = flow_client_env(context)
    config = msg.content[keys.CONFIG]
    server_round, stage = int(config[keys.SERVER_ROUND]), str(config[STAGE_KEY])
    velocity = copy.deepcopy(env.velocity)
    potential = copy.deepcopy(env.potential) if env.potential is not None else None
    load_flow_arrays(msg.content[keys.ARRAYS], velocity, potential)
    f = env.ffm
    generator = torch.Generator(device=env.device).manual_seed(env.seed(server_round))
    metrics: dict[str, float | int] = {keys.NUM_EXAMPLES: len(env.train)}
    if stage == "potential":
        if potential is None:
            raise ValueError("stage 'potential' needs ffm.coupling='got'")
        res = train_potential(
            potential, env.train, steps=f.potential_local_steps, batch_size=f.batch_size,
            lr=f.potential_lr,
            candidates=f.candidates, refine_steps=f.refine_steps, step_size=f.step_size,
            generator=generator, optimizer=f.optimizer,
        )
        metrics.update({"objective": res.objective, "train-time": res.seconds})
    else:
        if f.coupling == "lot":
            coupling = ExactOTCoupling()
        elif f.coupling == "got":
            assert potential is not None
            potential.requires_grad_(False)
            coupling = PotentialCoupling(potential, candidates=f.candidates,
                                         refine_steps=f.refine_steps, step_size=f.step_size)
        else:
            coupling = IndependentCoupling()
        path = GaussianPath(f.sigma) if f.sigma > 0 else LinearPath()
        res = train_flow(
            velocity, env.train, steps=f.local_steps, batch_size=f.batch_size, lr=f.lr,
            optimizer=f.optimizer, path=path, coupling=coupling, generator=generator,
        )
        if potential is not None:
            potential.requires_grad_(True)
        metrics.update({"loss": res.loss, "plan-cost": res.plan_cost, "train-time": res.seconds})
    return reply(msg, env, metrics, arrays=flow_arrays(velocity, potential))


def evaluate(msg: Message, context: Context) -> Message:
    """Independent-coupling flow-matching loss of the global θ on this client's held-out data."""
    env = flow_client_env(context)
    data = env.test if len(env.test) else env.train
    velocity = copy.deepcopy(env.velocity)
    load_flow_arrays(msg.content[keys.ARRAYS], velocity, None)
    config = msg.content[keys.CONFIG]
    generator = torch.Generator(device=env.device).manual_seed(
        env.seed(int(config[keys.SERVER_ROUND]), stream=1))
    x0 = torch.randn(data.shape, generator=generator, device=env.device, dtype=data.dtype)
    with torch.no_grad():
        loss = flow_matching_loss(velocity, x0, data, path=LinearPath(),
                                  coupling=IndependentCoupling(), generator=generator).loss
    return reply(msg, env, {"loss": float(loss), keys.NUM_EXAMPLES: len(data)})
