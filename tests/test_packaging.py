"""The built wheel installs one top-level package, ``fedot`` (strategies and clients inside it)."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--disable-pip-version-check", "-q", "-w", str(out), str(ROOT)],
                   check=True, capture_output=True)
    (found,) = out.glob("fedot-*.whl")
    return found


def test_wheel_has_only_fedot_at_top_level(wheel: Path) -> None:
    # Execute
    names = zipfile.ZipFile(wheel).namelist()
    # Assert: no generic `strategies` / `clients` top-level package to clash with a user's app
    assert {n.split("/")[0] for n in names} == {"fedot", f"{wheel.name.split('-py')[0]}.dist-info"}
    for module in ("fedot/strategies/fedavot.py", "fedot/strategies/server_app.py",
                   "fedot/clients/client_app.py", "fedot/clients/ffm.py", "fedot/ot/masked.py"):
        assert module in names
    # every strategy module of the repository is in the wheel
    expected = {f"fedot/strategies/{p.name}" for p in (ROOT / "strategies").glob("*.py")}
    assert expected <= set(names)


def test_installed_wheel_imports_as_fedot_only(wheel: Path, tmp_path: Path) -> None:
    # Prepare: a fresh venv; `pip install` the wheel alone into it (its dependencies are taken from
    # this venv through PYTHONPATH, a plain directory: its .pth files, the editable checkout's
    # among them, are not read)
    venv = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
                                "['purelib'])"], check=True, capture_output=True,
                               text=True).stdout.strip())
    before = {p.name for p in site.iterdir()}
    subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--no-index",
                    "--disable-pip-version-check", "-q", str(wheel)], check=True,
                   capture_output=True)
    added = {p.name for p in site.iterdir()} - before
    code = """
import importlib.util, json, sys
import fedot
from fedot.strategies import STRATEGIES, FedAVOT
from fedot.clients.client_app import app
FedAVOT(importance="uniform", availability="k-of-n", partitions="node-order")
print(json.dumps({
    "fedot": fedot.__file__, "strategy": sys.modules[FedAVOT.__module__].__file__,
    "schemes": sorted(STRATEGIES), "strategies": importlib.util.find_spec("strategies") is not None,
    "clients": importlib.util.find_spec("clients") is not None,
}))
"""
    env = {"PYTHONPATH": sysconfig.get_paths()["purelib"], "PATH": "/usr/bin:/bin"}
    # Execute
    out = subprocess.run([str(python), "-c", code], check=True, capture_output=True, text=True,
                         cwd=tmp_path, env=env)
    found = json.loads(out.stdout.strip().splitlines()[-1])
    # Assert: one package and its metadata were added; it imports from the fresh venv
    assert {a for a in added if not a.endswith(".dist-info")} == {"fedot"}
    assert found["fedot"] == str(site / "fedot" / "__init__.py")
    assert found["strategy"] == str(site / "fedot" / "strategies" / "fedavot.py")
    assert "fedavot" in found["schemes"] and "subflot" in found["schemes"]
    assert found["strategies"] is False and found["clients"] is False


def test_checkout_serves_the_same_names() -> None:
    # In a source checkout fedot.strategies / fedot.clients are the repository's folders.
    import fedot.clients.client_app
    import fedot.strategies

    assert Path(fedot.strategies.__file__) == ROOT / "strategies" / "__init__.py"
    assert Path(fedot.clients.client_app.__file__) == ROOT / "clients" / "client_app.py"
    with pytest.raises(ModuleNotFoundError):
        __import__("fedot.tests")
