"""FedAVOT experiments: the paper's partial-participation setting, on non-IID data.

N = 100 clients, K = 2 available per round, importance decreasing p_i ∝ (N+1−i)^0.8, 5 seeds, as in
Rahimi & Kalogerias (arXiv:2509.14444) — but with *non-IID* clients, since the paper's IID splits
hide the bias that FedAVOT removes (``../shared/docs/algorithms.md`` §1(d)). Two availability
settings:

* ``feasible`` — K-of-N uniform availability: p can be matched exactly (max-flow), so FedAVOT is
  unbiased for F = Σ p_i f_i;
* ``paper`` — the authors' sampler (k i.i.d. draws with replacement, redrawn on repeats) with
  availability increasing r_i ∝ i^0.8 while importance decreases: infeasible, FedAVOT can only match
  p̂ = T1 (results.json ``setup.fedavot`` reports ‖p − p̂‖₁ and the unmatched mass).

Each setting runs FedAVOT, FedAvg over the available subset and the paper's FedAvg(K); full
participation (the target, independent of availability) runs once per seed, with fewer rounds
than the K = 2 arms because every client trains every round (a round costs N/K times more); it is
close to, not at, its optimum by then (``docs/fedavot.md`` gives the numbers). The objective is
``loss_p`` = Σ p_i f_i on the clients' training data
(every client evaluates every ``participation.evaluate-every`` rounds).
"""

from __future__ import annotations

from fedot.experiments.compare import Arm
from fedot.experiments.registry import Experiment, register

SCHEMES = ("fedavot", "fedavg-subset", "fedavg-k")
SETTINGS = {
    "feasible": {"participation.availability": "k-of-n", "participation.availability-power": 0.0},
    "paper": {"participation.availability": "with-replacement",
              "participation.availability-power": 0.8},
}
COMMON = {
    "clients": 100,
    "participation.k": 2,
    "participation.importance": "power",
    "participation.importance-power": 0.8,
    "participation.evaluate-split": "train",
    "data.local-test-fraction": 0.2,
    "checkpoint": False,
}


def _arms(full_rounds: int, full_every: int) -> tuple[Arm, ...]:
    arms = [Arm(f"{setting}/{scheme}", {**over, "scheme": scheme})
            for setting, over in SETTINGS.items() for scheme in SCHEMES]
    arms.append(Arm("full", {"scheme": "fedavg-full", "rounds": full_rounds,
                             "participation.evaluate-every": full_every}))
    return tuple(arms)


register(Experiment(
    name="fedavot-linreg",
    description="FedAVOT vs baselines, linear regression with per-client optima (N=100, K=2)",
    arms=_arms(full_rounds=60, full_every=10),
    base={**COMMON, "dataset": "synthetic-regression", "model.name": "linear",
          "partition.kind": "natural", "rounds": 400, "participation.evaluate-every": 20,
          "local.epochs": 5, "local.batch-size": 100000, "local.lr": 0.005, "local.momentum": 0.0},
    seeds=(0, 1, 2, 3, 4),
    quick={"clients": 20, "rounds": 20, "participation.evaluate-every": 10,
           "participation.mc-samples": 20000},
    quick_seeds=(0,),
))

register(Experiment(
    name="fedavot-classify",
    description="FedAVOT vs baselines, MNIST-1D with Dirichlet(0.3) label skew (N=100, K=2)",
    arms=_arms(full_rounds=100, full_every=10),
    base={**COMMON, "dataset": "mnist1d", "model.name": "logreg", "partition.kind": "dirichlet",
          "partition.alpha": 0.3, "partition.min-size": 3, "rounds": 300,
          "participation.evaluate-every": 20, "local.epochs": 3, "local.batch-size": 100000,
          "local.lr": 0.15, "local.momentum": 0.0},
    seeds=(0, 1, 2, 3, 4),
    quick={"clients": 20, "rounds": 20, "participation.evaluate-every": 10,
           "participation.mc-samples": 20000},
    quick_seeds=(0,),
))

register(Experiment(
    name="fedavot-showcase",
    description="FedAVOT vs FedAvg on the available clients, digits, misaligned availability",
    arms=(Arm("fedavot", {"scheme": "fedavot"}),
          Arm("fedavg (available)", {"scheme": "fedavg-subset"}),
          Arm("full participation", {"scheme": "fedavg-full"})),
    # 20 clients; important clients (low ids) are the rarely available ones: K = 5 of 20 drawn
    # with weights r_i ∝ i^0.5 while p_i ∝ (21 − i)^0.8. Still feasible (max-flow), so FedAVOT
    # is unbiased for the p-weighted objective and FedAvg over the available clients is not.
    base={"dataset": "digits", "clients": 20, "rounds": 60, "partition.kind": "dirichlet",
          "partition.alpha": 0.5, "participation.importance": "power",
          "participation.importance-power": 0.8, "participation.availability": "k-of-n",
          "participation.availability-power": 0.5, "participation.k": 5,
          "participation.evaluate-split": "train", "participation.evaluate-every": 5,
          "local.epochs": 1, "local.lr": 0.05, "local.momentum": 0.5, "checkpoint": False},
    seeds=(0,),
    quick={"rounds": 10},
    quick_seeds=(0,),
))
