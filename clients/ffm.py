"""Client task ``ffm``: local flow matching (or GOT's dual-potential ascent) on this client's data.

A handler decodes the global θ (and φ), runs :mod:`fedot.learning.flow` for ``ffm.local-steps``
steps and replies with the updated arrays and its data size. The round's stage comes from the
server (``ffm.stage``): ``potential`` ascends the semi-dual objective J(φ) on this client's data
(:func:`~fedot.learning.flow.train_potential`); ``flow`` trains θ with the configured coupling —
independent (vanilla), exact minibatch OT (LOT) or the frozen potential's c-transform (GOT).
With one local step the reply is that step's gradient and the server holds the optimizer; with
several, the trained model, and this client's optimizer state persists across rounds.
"""

from __future__ import annotations

import copy

import torch
from flwr.app import Context, Message

from fedot.fl import keys
from fedot.fl.client import reply
from fedot.fl.flow import (
    POTENTIAL,
    RUN_KEY,
    STAGE_KEY,
    VELOCITY,
    flow_arrays,
    flow_client_env,
    flow_coupling,
    gradient_arrays,
    load_flow_arrays,
    load_optimizer_arrays,
    save_optimizer_arrays,
)
from fedot.learning.flow import (
    GaussianPath,
    IndependentCoupling,
    LinearPath,
    flow_matching_loss,
    flow_step_gradient,
    potential_step_gradient,
    train_flow,
    train_potential,
)

__all__ = ["evaluate", "train"]


def train(msg: Message, context: Context) -> Message:
    """Run this round's local work (potential or flow) and reply with gradients or new arrays.

    One local step (``ffm.local-steps`` = 1, ``ffm.potential-local-steps`` = 1 in stage 1): the
    reply holds the gradient of this client's loss on one batch (the other model's keys zero) and
    the server's optimizer takes the step. Several: the updated model, trained with this client's
    optimizer, whose state persists across rounds (``ffm.optimizer-state = "persist"``).
    """
    env = flow_client_env(context)
    config = msg.content[keys.CONFIG]
    server_round, stage = int(config[keys.SERVER_ROUND]), str(config[STAGE_KEY])
    state_key = str(config[RUN_KEY]) if RUN_KEY in config and env.cfg.checkpoint else None
    arrays = msg.content[keys.ARRAYS]
    velocity = copy.deepcopy(env.velocity)
    potential = copy.deepcopy(env.potential) if env.potential is not None else None
    load_flow_arrays(arrays, velocity, potential)
    f = env.ffm
    generator = torch.Generator(device=env.device).manual_seed(env.seed(server_round))
    metrics: dict[str, float | int] = {keys.NUM_EXAMPLES: len(env.train)}
    if stage == "potential" and potential is None:
        raise ValueError("stage 'potential' needs ffm.coupling='got'")
    if f.server_steps(stage):
        if stage == "potential":
            step = potential_step_gradient(
                potential, env.train, batch_size=f.batch_size, candidates=f.candidates,
                refine_steps=f.refine_steps, step_size=f.step_size, generator=generator)
            metrics.update({"objective": step.loss, "train-time": step.seconds})
            prefix = POTENTIAL
        else:
            if potential is not None:
                potential.requires_grad_(False)
            path = GaussianPath(f.sigma) if f.sigma > 0 else LinearPath()
            step = flow_step_gradient(velocity, env.train, batch_size=f.batch_size, path=path,
                                      coupling=flow_coupling(env.ffm, potential), generator=generator)
            metrics.update({"loss": step.loss, "plan-cost": step.plan_cost,
                            "train-time": step.seconds})
            prefix = VELOCITY
        return reply(msg, env, metrics, arrays=gradient_arrays(arrays, step.grads, prefix))
    name = "potential" if stage == "potential" else "velocity"
    persist = f.optimizer_state == "persist"
    opt_state = load_optimizer_arrays(context, name, server_round, state_key) if persist else None
    if stage == "potential":
        res = train_potential(
            potential, env.train, steps=f.potential_local_steps, batch_size=f.batch_size,
            lr=f.potential_lr, candidates=f.candidates, refine_steps=f.refine_steps,
            step_size=f.step_size, generator=generator, optimizer=f.optimizer,
            optimizer_state=opt_state,
        )
        metrics.update({"objective": res.objective, "train-time": res.seconds})
    else:
        if potential is not None:
            potential.requires_grad_(False)
        path = GaussianPath(f.sigma) if f.sigma > 0 else LinearPath()
        res = train_flow(
            velocity, env.train, steps=f.local_steps, batch_size=f.batch_size, lr=f.lr,
            optimizer=f.optimizer, path=path, coupling=flow_coupling(env.ffm, potential),
            generator=generator, optimizer_state=opt_state,
        )
        if potential is not None:
            potential.requires_grad_(True)
        metrics.update({"loss": res.loss, "plan-cost": res.plan_cost, "train-time": res.seconds})
    if persist:
        save_optimizer_arrays(context, name, server_round, res.optimizer_state, state_key)
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
