"""Every scheme the config accepts has exactly one strategy and one client task."""

from __future__ import annotations

from clients.client_app import TASKS
from fedot.config import SCHEMES
from strategies import STRATEGIES


def test_schemes_strategies_and_client_tasks_agree() -> None:
    assert set(STRATEGIES) == set(SCHEMES) == set(TASKS)
    for name, cls in STRATEGIES.items():
        assert cls.scheme == name
