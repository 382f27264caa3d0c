"""`fedot cluster up` refuses what would silently go wrong, before starting anything (fast)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from fedot.fl import cluster
from fedot.fl.inline import project_root


def test_busy_superlink_port_is_refused_before_starting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FEDOT_FLWR_HOME", str(tmp_path))
    with socket.socket() as other:  # another SuperLink (or anything) on the port
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        with pytest.raises(RuntimeError, match=f"{port}.*already in use"):
            cluster.cluster_up(project_root(), 1, port=port, node_port=port + 1)
    assert not (tmp_path / "cluster" / "pids.json").exists()
    assert cluster.cluster_status(project_root())["running"] is False


def test_unknown_mode_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEDOT_FLWR_HOME", str(tmp_path))
    with pytest.raises(ValueError, match="mode"):
        cluster.cluster_up(project_root(), 1, mode="mtls", port=1, node_port=2)
    with pytest.raises(ValueError, match="isolation"):
        cluster.service_commands(1, isolation="thread")
