"""In a source checkout, serve the Flower app's packages under the names the wheel installs.

The repository keeps the Flower app's strategies and client tasks at its top level (``strategies/``,
``clients/``: ``pyproject.toml`` names ``strategies.server_app:app``), while the built wheel
installs them as ``fedot.strategies`` and ``fedot.clients`` so that no generic top-level name can
clash with a user's own app. This finder makes ``import fedot.strategies`` work in a checkout too
(editable install, tests, ``flwr run .``): it maps exactly those two names to the folders beside
``fedot/``, and does nothing where ``fedot/strategies`` exists (the installed wheel).
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

__all__ = ["install"]

#: The app packages the wheel installs under ``fedot``.
APP_PACKAGES = ("strategies", "clients")


class _CheckoutApps(importlib.abc.MetaPathFinder):
    def __init__(self, root: Path) -> None:
        self.root = root

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        parent, _, name = fullname.rpartition(".")
        if parent != "fedot" or name not in APP_PACKAGES:
            return None
        folder = self.root / name
        return importlib.util.spec_from_file_location(
            fullname, folder / "__init__.py", submodule_search_locations=[str(folder)])


def install(package_dir: Path) -> bool:
    """Register the finder when ``package_dir`` (``fedot/``) sits in a source checkout.

    Returns True when it was registered (a checkout without ``fedot/strategies``).
    """
    root = package_dir.parent
    in_checkout = all((root / n / "__init__.py").is_file() and not (package_dir / n).exists()
                      for n in APP_PACKAGES)
    if not in_checkout or any(isinstance(f, _CheckoutApps) for f in sys.meta_path):
        return False
    sys.meta_path.append(_CheckoutApps(root))
    return True
