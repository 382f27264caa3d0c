"""Import rules: layers point one way (fedot/ot ← core ← fedot/fl ← strategies/, clients/)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _files(*parts: str) -> list[Path]:
    return sorted((ROOT.joinpath(*parts)).rglob("*.py"))


def _violations(files: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    bad = []
    for path in files:
        for name in _imports(path):
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                bad.append(f"{path} imports {name}")
    return bad


FLOWER = ("flwr", "ray", "grpc")


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        (("fedot", "ot"), (*FLOWER, "torch.nn", "pydantic", "fedot.fl", "fedot.learning",
                           "fedot.data", "fedot.config")),
        (("fedot", "learning"), (*FLOWER, "pydantic", "fedot.fl", "fedot.config")),
        (("fedot", "data"), (*FLOWER, "torch", "pydantic", "fedot.fl", "fedot.config")),
        (("fedot", "fusion"), (*FLOWER, "pydantic", "fedot.fl", "fedot.config")),
        (("fedot", "subflot"), (*FLOWER, "pydantic", "fedot.fl", "fedot.config", "strategies",
                                "clients")),
        (("fedot", "envs"), (*FLOWER, "torch", "pydantic", "fedot.fl", "fedot.config",
                             "fedot.learning")),
        (("fedot", "config.py"), (*FLOWER, "torch")),
        (("fedot",), ("strategies", "clients", "fedot.strategies", "fedot.clients")),
        (("strategies",), ("clients",)),
        (("clients",), ("strategies",)),
    ],
)
def test_import_rules(package: tuple[str, ...], forbidden: tuple[str, ...]) -> None:
    # Prepare
    target = ROOT.joinpath(*package)
    files = [target] if target.suffix == ".py" else _files(*package)
    # Execute
    bad = _violations(files, forbidden)
    # Assert
    assert files, f"no files found under {target}"
    assert bad == []


def test_walker_detects_a_violation(tmp_path: Path) -> None:
    # Prepare: a file that breaks the rule must be reported (the check is not vacuous)
    f = tmp_path / "m.py"
    f.write_text("import flwr.app\nfrom torch.nn import Linear\n")
    # Execute
    bad = _violations([f], ("flwr", "torch.nn"))
    # Assert
    assert len(bad) == 2


def test_only_fedot_fl_and_apps_import_flower() -> None:
    # Prepare
    allowed = {ROOT / "fedot" / "fl", ROOT / "fedot" / "experiments", ROOT / "fedot" / "bench"}
    offenders = []
    # Execute
    for path in _files("fedot"):
        if any(p in path.parents for p in allowed) or path.name == "cli.py":
            continue
        if any(n.split(".")[0] in FLOWER for n in _imports(path)):
            offenders.append(str(path.relative_to(ROOT)))
    # Assert
    assert offenders == []
