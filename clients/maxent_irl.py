"""Client task ``maxent-irl``: local maximum-entropy IRL on this client's demonstrations.

Used by ``irl-barycenter`` and ``irl-average``. The client rebuilds its environment variants from
the run config, generates the demonstrations of the sources it holds (they never leave it), runs
MaxEnt IRL (:func:`fedot.learning.irl.maxent_irl_pooled`, pooled over its sources) and replies with
the reward and its number of demonstrations. From round 2 it warm-starts from the broadcast global
reward (``irl.warm-start``) and is pulled towards it with ``irl.prior-weight``.
"""

from __future__ import annotations

from flwr.app import Context, Message

from fedot.fl import keys
from fedot.fl.client import reply, round_settings
from fedot.fl.irl import irl_client_env, reward_arrays, reward_of
from fedot.learning.irl import demo_log_likelihood, maxent_irl_pooled

__all__ = ["evaluate", "train"]


def train(msg: Message, context: Context) -> Message:
    """Fit a reward to this client's demonstrations; reply with it and the demonstration count."""
    env = irl_client_env(context)
    server_round, _ = round_settings(msg)
    glob = reward_of(msg.content[keys.ARRAYS])
    multi = server_round > 1
    irl = env.irl
    result = maxent_irl_pooled(
        list(env.train),
        iterations=env.iterations,
        lr=irl.lr,
        l2=irl.l2,
        init=glob if multi and irl.warm_start else None,
        prior=glob if multi and irl.prior_weight > 0 else None,
        prior_weight=irl.prior_weight if multi else 0.0,
    )
    metrics = {
        keys.NUM_EXAMPLES: env.num_demos,
        "loss": -result.log_likelihoods[-1] / env.train[0][1].horizon,
        "grad-norm": result.grad_norms[-1],
        "iterations": result.iterations,
    }
    return reply(msg, env, metrics, arrays=reward_arrays(result.reward))


def evaluate(msg: Message, context: Context) -> Message:
    """Score the global reward on held-out demonstrations: negative log-likelihood per step."""
    env = irl_client_env(context)
    if not env.test:
        raise ValueError("irl.test-demos = 0: no held-out demonstrations to evaluate on")
    reward = reward_of(msg.content[keys.ARRAYS])
    total = sum(demo_log_likelihood(mdp, reward, d) * d.num for mdp, d in env.test)
    steps = sum(d.num * d.horizon for _, d in env.test)
    count = sum(d.num for _, d in env.test)
    return reply(msg, env, {"loss": -total / steps, keys.NUM_EXAMPLES: count})
