"""Registry of named experiments (``fedot experiment NAME``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fedot.experiments.compare import Arm, RunFn, compare

__all__ = ["EXPERIMENTS", "Experiment", "register", "run_experiment"]


@dataclass(frozen=True)
class Experiment:
    """A named comparison: arms on a shared base config, seeds, and a reduced ``quick`` variant.

    ``quick`` overrides are applied on top of ``base`` and must keep the run under a minute on a
    2-core CPU (CI runs every experiment with ``--quick``).
    """

    name: str
    description: str
    arms: Sequence[Arm]
    base: Mapping[str, Any] = field(default_factory=dict)
    seeds: Sequence[int] = (0, 1, 2)
    quick: Mapping[str, Any] = field(default_factory=dict)
    quick_seeds: Sequence[int] = (0,)
    #: ``report(summary, out_dir)``: extra tables/plots written after the comparison.
    report: Callable[[dict[str, Any], Path], None] | None = None
    #: The engine every run goes to instead of the CLI's backend (e.g. the batched simulation of
    #: per-step FFM, :func:`fedot.fl.flow_sim.simulate_flow`); picklable for ``--jobs``.
    runner: RunFn | None = None


EXPERIMENTS: dict[str, Experiment] = {}


def register(experiment: Experiment) -> Experiment:
    """Add an experiment to :data:`EXPERIMENTS` (names are unique)."""
    if experiment.name in EXPERIMENTS:
        raise ValueError(f"experiment {experiment.name!r} is already registered")
    EXPERIMENTS[experiment.name] = experiment
    return experiment


def run_experiment(
    name: str, *, run: RunFn, out_dir: Path, quick: bool = False, jobs: int = 1,
    progress: bool = False,
) -> dict[str, Any]:
    """Run a registered experiment; returns its summary (also written under ``out_dir``).

    ``jobs``: parallel worker processes; ``progress``: a progress display on stderr (see
    :func:`fedot.experiments.compare.compare`).
    ``run`` is not used by experiments that name their own :attr:`Experiment.runner`.
    """
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; registered: {', '.join(sorted(EXPERIMENTS))}")
    exp = EXPERIMENTS[name]
    base = {**exp.base, **(exp.quick if quick else {})}
    summary = compare(
        exp.arms, seeds=exp.quick_seeds if quick else exp.seeds,
        run=exp.runner if exp.runner is not None else run, out_dir=out_dir,
        base=base, title=f"{exp.name}: {exp.description}" + (" (quick)" if quick else ""),
        jobs=jobs, progress=progress,
    )
    if exp.report is not None:
        exp.report(summary, out_dir)
    return summary


register(
    Experiment(
        name="fedavg-digits",
        description="FedAvg on digits (10 clients): IID vs Dirichlet label skew",
        arms=(
            Arm("iid", {"partition.kind": "iid"}),
            Arm("dirichlet-1.0", {"partition.kind": "dirichlet", "partition.alpha": 1.0}),
            Arm("dirichlet-0.3", {"partition.kind": "dirichlet", "partition.alpha": 0.3}),
            Arm("dirichlet-0.1", {"partition.kind": "dirichlet", "partition.alpha": 0.1}),
        ),
        base={"scheme": "fedavg", "dataset": "digits", "clients": 10, "rounds": 20},
        seeds=(0, 1, 2),
        quick={"rounds": 3},
        quick_seeds=(0,),
    )
)


# Experiments of the schemes, registered on import.
from fedot.experiments import fedavot as _fedavot  # noqa: E402,F401
from fedot.experiments import ffm as _ffm  # noqa: E402,F401
from fedot.experiments import irl as _irl  # noqa: E402,F401
from fedot.experiments import otfusion as _otfusion  # noqa: E402,F401
from fedot.experiments import subflot as _subflot  # noqa: E402,F401
