"""Every scheme the config accepts has exactly one strategy and one client task."""

from __future__ import annotations

from clients.client_app import TASKS
from fedot.config import SCHEMES
from strategies import STRATEGIES


def test_schemes_strategies_and_client_tasks_agree() -> None:
    assert set(STRATEGIES) == set(SCHEMES) == set(TASKS)
    for name, cls in STRATEGIES.items():
        assert cls.scheme == name


def test_strategies_package_is_light_to_import() -> None:
    # `flwr run` validates `strategies.server_app:app` with find_spec, which runs this package's
    # __init__ in the Flower CLI: it must not pull in torch or the strategies (seconds per run)
    import subprocess
    import sys

    code = ("import importlib.util, sys; importlib.util.find_spec('strategies.server_app'); "
            "import strategies; print(sorted(m for m in ('torch', 'strategies.fedavg', "
            "'fedot.fl.strategy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         timeout=120)
    assert out.stdout.strip() == "[]"
    import strategies

    assert set(strategies.__all__) == {"STRATEGIES", *strategies._CLASSES}
    assert all(getattr(strategies, name).__name__ == name for name in strategies._CLASSES)
