"""Named experiments and side-by-side comparisons of schemes or settings.

An experiment is a list of *arms* — a label and run-config overrides — run on identical data and
seeds. Every comparison (``fedot compare``, ``fedot experiment NAME``) follows one convention: it
writes ``summary.json``, ``summary.md`` (a markdown table, mean ± std over seeds) and PNG plots to
its output directory, one run directory per arm and seed below it, and accepts ``quick`` for a
reduced run of at most a minute that CI uses as a smoke test.

Later issues register their experiments with :func:`register`.
"""

from __future__ import annotations

from fedot.experiments.compare import Arm, compare, summarise
from fedot.experiments.registry import EXPERIMENTS, Experiment, register, run_experiment

__all__ = [
    "EXPERIMENTS",
    "Arm",
    "Experiment",
    "compare",
    "register",
    "run_experiment",
    "summarise",
]
