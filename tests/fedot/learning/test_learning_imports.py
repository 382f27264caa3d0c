from __future__ import annotations

import ast
from pathlib import Path

import fedot.learning as learning

FORBIDDEN = {"flwr", "ray", "grpc", "pydantic"}


def test_no_framework_imports() -> None:
    package_dir = Path(learning.__file__).parent
    sources = sorted(package_dir.glob("*.py"))
    assert len(sources) >= 5
    for path in sources:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                roots = {(node.module or "").split(".")[0]}
            else:
                continue
            assert not roots & FORBIDDEN, f"{path.name} imports {roots & FORBIDDEN}"


def test_public_api_is_exported() -> None:
    expected = {
        "MODELS",
        "build_model",
        "count_parameters",
        "resolve_device",
        "set_torch_threads",
        "TrainResult",
        "EvalResult",
        "train",
        "evaluate",
        "proximal_penalty",
    }
    assert expected <= set(learning.__all__)
    assert all(hasattr(learning, name) for name in learning.__all__)
    assert learning.MODELS == ("logreg", "mlp", "cnn", "linear")
