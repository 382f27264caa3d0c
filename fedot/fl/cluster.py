"""A local deployment on 127.0.0.1: one SuperLink and N SuperNodes as plain processes (insecure).

This is the real Flower deployment stack (``flower-superlink`` + ``flower-supernode``, each with its
own ``FLWR_HOME`` and port; SuperNode ``i`` started with ``--node-config "partition-id=i
num-partitions=N"``), run on loopback so it can be used and tested on one machine. The connection
``fedot-local`` is written into the project's Flower config (``<project>/.flwr/config.toml``), so
``fedot run --backend fedot-local`` (or ``flwr run . fedot-local``) submits to it. Process ids and
logs live in ``<project>/.flwr/cluster/`` (``$FEDOT_FLWR_HOME`` replaces ``<project>/.flwr``);
:func:`cluster_down` stops everything it started.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

from fedot.fl.runner import flwr_env, flwr_home

__all__ = ["CONNECTION", "cluster_down", "cluster_status", "cluster_up", "write_connection"]

#: Name of the connection the cluster registers in the project's Flower config.
CONNECTION = "fedot-local"


def _state_dir(root: Path) -> Path:
    return flwr_home(root) / "cluster"


def _wait_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def write_connection(root: Path, port: int, name: str = CONNECTION) -> Path:
    """Add (or replace) ``[superlink.<name>]`` = 127.0.0.1:port, insecure, in the Flower config."""
    path = flwr_home(root) / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = path.read_text() if path.exists() else (
        '[superlink]\ndefault = "local"\n\n[superlink.local]\naddress = ":local:"\n'
    )
    header = f"[superlink.{name}]"
    lines, skipping = [], False
    for line in text.splitlines():
        if line.strip().startswith("["):
            skipping = line.strip() == header
        if not skipping:
            lines.append(line)
    block = f'\n{header}\naddress = "127.0.0.1:{port}"\ninsecure = true\n'
    path.write_text("\n".join(lines).rstrip() + "\n" + block)
    tomllib.loads(path.read_text())  # must stay valid TOML
    return path


def _spawn(cmd: list[str], env: dict[str, str], log: Path) -> int:
    with open(log, "ab") as fh:
        proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True)
    return proc.pid


def cluster_up(root: Path, nodes: int, *, port: int = 19090, node_port: int = 19094,
               timeout: float = 60.0) -> dict[str, Any]:
    """Start a SuperLink on 127.0.0.1:``port`` and ``nodes`` SuperNodes; register the connection.

    Raises
    ------
    RuntimeError
        If a cluster started by fedot is already running (stop it with :func:`cluster_down`).
    """
    state = _state_dir(root)
    if cluster_status(root)["running"]:
        raise RuntimeError(f"a fedot cluster is already running ({state}); run `fedot cluster down`")
    state.mkdir(parents=True, exist_ok=True)
    bin_dir = Path(sys.executable).parent
    base = flwr_env(root)
    pids: dict[str, int] = {}
    env = {**base, "FLWR_HOME": str(state / "superlink")}
    pids["superlink"] = _spawn(
        [str(bin_dir / "flower-superlink"), "--insecure", "--host", "127.0.0.1", "--port",
         str(port), "--disable-runtime-dependency-installation"],
        env, state / "superlink.log")
    (state / "pids.json").write_text(json.dumps(pids))
    _wait_port(port, timeout)
    for i in range(nodes):
        env = {**base, "FLWR_HOME": str(state / f"supernode-{i}")}
        pids[f"supernode-{i}"] = _spawn(
            [str(bin_dir / "flower-supernode"), "--insecure", "--superlink", f"127.0.0.1:{port}",
             "--port", str(node_port + i),
             "--node-config", f"partition-id={i} num-partitions={nodes}"],
            env, state / f"supernode-{i}.log")
        (state / "pids.json").write_text(json.dumps(pids))
    write_connection(root, port)
    return {"connection": CONNECTION, "address": f"127.0.0.1:{port}", "pids": pids,
            "logs": str(state)}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in _proc_state(pid)


def _proc_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split("\n")[0].lower()
    except (OSError, IndexError):
        return "zombie"


def cluster_status(root: Path) -> dict[str, Any]:
    """Return which processes of the fedot cluster are alive."""
    path = _state_dir(root) / "pids.json"
    pids = json.loads(path.read_text()) if path.exists() else {}
    alive = {name: pid for name, pid in pids.items() if _alive(pid)}
    return {"running": bool(alive), "alive": alive, "started": pids}


def cluster_down(root: Path, timeout: float = 15.0) -> list[str]:
    """Stop every process the cluster started (their process groups: SuperExecs and apps too)."""
    status = cluster_status(root)
    for pid in status["alive"].values():
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_alive(p) for p in status["alive"].values()):
        time.sleep(0.2)
    for pid in status["alive"].values():
        if _alive(pid):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    (_state_dir(root) / "pids.json").unlink(missing_ok=True)
    return list(status["alive"])
