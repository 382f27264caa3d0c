"""A local deployment on 127.0.0.1: one SuperLink and N SuperNodes as plain processes.

This is the real Flower deployment stack (``flower-superlink`` + ``flower-supernode``, each with its
own ``FLWR_HOME`` and port; SuperNode ``i`` started with ``--node-config "partition-id=i
num-partitions=N"``), run on loopback so it can be used and tested on one machine. Three security
modes:

``insecure``
    Plain HTTP (``--insecure`` everywhere). Connection ``fedot-local``.
``tls``
    HTTPS between SuperNodes / ``flwr`` CLI and the SuperLink. A private CA and a server certificate
    for ``localhost``/``127.0.0.1`` are generated once by ``deploy/certs.sh`` into
    ``<state>/certs``; SuperNodes and the CLI verify the SuperLink with ``ca.crt``. Connection
    ``fedot-tls``.
``auth``
    TLS plus SuperNode authentication (``flower-superlink --enable-supernode-auth``): each SuperNode
    has an EC P-384 key pair (``deploy/supernode-keys.sh``, kept in ``<state>/keys``) whose public
    key is registered with ``flwr supernode register`` before the node starts; a node with any
    other key is refused. Connection ``fedot-auth``.

With ``isolation="process"`` the SuperLink and SuperNodes launch nothing themselves: one
``flower-superexec`` runs the ServerApps and one per SuperNode runs its ClientApps, the layout of
``docker-compose.yml`` (whose commands :func:`service_commands` also describes).

The connection is written into the project's Flower config (``<project>/.flwr/config.toml``) from
the templates in ``deploy/connections/``, so ``fedot run --backend <connection>`` (or ``flwr run .
<connection>``) submits to it. Process ids, logs, certificates and keys live in
``<project>/.flwr/cluster/`` (``$FEDOT_FLWR_HOME`` replaces ``<project>/.flwr``); :func:`cluster_down`
stops everything it started and keeps certificates and keys.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import string
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

from fedot.fl.runner import flwr_env, flwr_home

__all__ = [
    "CONNECTION",
    "CONNECTIONS",
    "ISOLATIONS",
    "MODES",
    "NODE_PORT",
    "SUPERLINK_PORT",
    "cluster_down",
    "cluster_status",
    "cluster_up",
    "service_commands",
    "write_connection",
]

#: Security modes of the local cluster.
MODES = ("insecure", "tls", "auth")
#: ``--isolation`` of SuperLink and SuperNodes: they start their own SuperExec (``subprocess``) or
#: separate ``flower-superexec`` processes connect to them (``process``).
ISOLATIONS = ("subprocess", "process")
#: Name of the connection each mode registers in the project's Flower config.
CONNECTIONS = {"insecure": "fedot-local", "tls": "fedot-tls", "auth": "fedot-auth"}
#: The insecure connection (the default mode).
CONNECTION = CONNECTIONS["insecure"]
#: The SuperLink's one HTTP(S) port in Flower 1.41: Fleet API (SuperNodes), Control API (``flwr``
#: CLI) and ServerAppIo/Runtime API (SuperExec) all share it. Also used by ``docker-compose.yml``.
SUPERLINK_PORT = 19090
#: SuperNode ``i`` serves its Runtime API (for its ClientApp SuperExec) on ``NODE_PORT + i``.
NODE_PORT = 19094


def _state_dir(root: Path) -> Path:
    return flwr_home(root) / "cluster"


def _deploy_dir(root: Path) -> Path:
    return root / "deploy"


def _wait_port(port: int, timeout: float, died: Path | None = None, pid: int | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _in_use(port):
            return
        if pid is not None and not _alive(pid):
            raise RuntimeError(f"the process serving port {port} exited; log: {died}\n{_tail(died)}")
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def _in_use(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _tail(log: Path | None, lines: int = 15) -> str:
    if log is None or not log.exists():
        return ""
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def _connection_block(mode: str, name: str, address: str, root_certificates: Path | None,
                      root: Path) -> str:
    """Render ``deploy/connections/<mode>.toml`` (its leading comment lines dropped)."""
    template = (_deploy_dir(root) / "connections" / f"{mode}.toml").read_text()
    body = "\n".join(line for line in template.splitlines() if not line.startswith("#"))
    values = {"name": name, "address": address}
    if root_certificates is not None:
        values["root_certificates"] = str(Path(root_certificates).resolve())
    return string.Template(body).substitute(values).strip() + "\n"


def _check_mode(mode: str, isolation: str = "subprocess") -> None:
    """Raise ``ValueError`` naming the allowed values for an unknown mode or isolation."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if isolation not in ISOLATIONS:
        raise ValueError(f"isolation must be one of {ISOLATIONS}, got {isolation!r}")


def write_connection(root: Path, port: int, name: str = CONNECTION, *, mode: str = "insecure",
                     root_certificates: Path | None = None, host: str = "127.0.0.1") -> Path:
    """Add (or replace) ``[superlink.<name>]`` for ``host:port`` in the project's Flower config.

    ``mode`` picks the template in ``deploy/connections/``: ``insecure = true``, or (``tls``,
    ``auth``) ``root-certificates = <absolute path of the CA certificate>``.
    """
    _check_mode(mode)
    if mode != "insecure" and root_certificates is None:
        raise ValueError(f"mode {mode!r} needs root_certificates (the CA certificate)")
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
    block = _connection_block(mode, name, f"{host}:{port}", root_certificates, root)
    path.write_text("\n".join(lines).rstrip() + "\n\n" + block)
    tomllib.loads(path.read_text())  # must stay valid TOML
    return path


def service_commands(
    nodes: int,
    *,
    mode: str = "insecure",
    isolation: str = "subprocess",
    port: int = SUPERLINK_PORT,
    node_port: int = NODE_PORT,
    host: str = "127.0.0.1",
    superlink_host: str = "127.0.0.1",
    node_host: str = "127.0.0.1",
    certs: str | None = None,
    keys: str | None = None,
    database: str | None = None,
) -> dict[str, list[str]]:
    """Return the command line of every process of a deployment, keyed by service name.

    Services: ``superlink``, ``supernode-<i>`` and, with ``isolation="process"``,
    ``superexec-serverapp`` and ``superexec-clientapp-<i>``. The local cluster runs exactly these
    (on loopback); ``docker-compose.yml`` runs them with ``host="0.0.0.0"``,
    ``superlink_host="superlink"``, ``node_host="supernode-{i}"``, ``certs="/app/certs"`` and a
    ``database`` on a volume (a test checks that the two agree).

    Parameters
    ----------
    nodes : int
        Number of SuperNodes; node ``i`` gets ``--node-config "partition-id=i num-partitions=N"``.
    mode : str
        ``insecure``, ``tls`` or ``auth`` (TLS + ``--enable-supernode-auth``).
    isolation : str
        ``subprocess`` or ``process``.
    port, node_port : int
        SuperLink port; SuperNode ``i`` serves its Runtime API on ``node_port + i``.
    host : str
        Address the SuperLink and the SuperNodes' Runtime APIs bind to.
    superlink_host : str
        Host SuperNodes and the ServerApp SuperExec connect to.
    node_host : str
        Host the ClientApp SuperExec ``i`` connects to (``{i}`` is replaced by the node index).
    certs : str, optional
        Directory with ``ca.crt``, ``server.pem``, ``server.key`` (``tls`` and ``auth``).
    keys : str, optional
        Directory with the SuperNode private keys ``supernode-<i>`` (``auth``).
    database : str, optional
        SuperLink ``--database`` (default: Flower's in-memory state).
    """
    _check_mode(mode, isolation)
    tls = mode != "insecure"
    if tls and certs is None:
        raise ValueError(f"mode {mode!r} needs the certificate directory")
    if mode == "auth" and keys is None:
        raise ValueError("mode 'auth' needs the SuperNode key directory")
    client_tls = ["--root-certificates", f"{certs}/ca.crt"] if tls else ["--insecure"]
    server_tls = (["--ssl-ca-certfile", f"{certs}/ca.crt", "--ssl-certfile", f"{certs}/server.pem",
                   "--ssl-keyfile", f"{certs}/server.key"] if tls else ["--insecure"])
    commands = {
        "superlink": [
            "flower-superlink", *server_tls,
            *(["--enable-supernode-auth"] if mode == "auth" else []),
            "--isolation", isolation, "--host", host, "--port", str(port),
            *(["--database", database] if database else []),
            "--disable-runtime-dependency-installation",
        ],
    }
    if isolation == "process":
        commands["superexec-serverapp"] = [
            "flower-superexec", *client_tls, "--runtime-api-address", f"{superlink_host}:{port}",
        ]
    for i in range(nodes):
        commands[f"supernode-{i}"] = [
            "flower-supernode", *client_tls,
            *(["--auth-supernode-private-key", f"{keys}/supernode-{i}"] if mode == "auth" else []),
            "--superlink", f"{superlink_host}:{port}", "--isolation", isolation,
            "--host", host, "--port", str(node_port + i),
            "--node-config", f"partition-id={i} num-partitions={nodes}",
        ]
        if isolation == "process":
            # The SuperNode's Runtime API is plain HTTP (SuperExec next to it, as in Flower's compose)
            commands[f"superexec-clientapp-{i}"] = [
                "flower-superexec", "--insecure",
                "--runtime-api-address", f"{node_host.format(i=i)}:{node_port + i}",
            ]
    return commands


def _spawn(cmd: list[str], env: dict[str, str], log: Path, cwd: Path) -> int:
    with open(log, "ab") as fh:
        proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, cwd=cwd,
                                start_new_session=True)
    return proc.pid


def _script(root: Path, name: str, *args: str) -> None:
    script = _deploy_dir(root) / name
    proc = subprocess.run(["bash", str(script), *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{script} failed ({proc.returncode}): {proc.stderr.strip()}")


def _flwr_json(root: Path, *args: str, timeout: float = 60.0) -> dict[str, Any]:
    """Run ``flwr <args> --format json`` with the project's Flower config; return the JSON reply."""
    cmd = [str(Path(sys.executable).parent / "flwr"), *args, "--format", "json"]
    proc = subprocess.run(cmd, env=flwr_env(root), cwd=root, capture_output=True, text=True,
                          timeout=timeout, check=False)
    start = proc.stdout.find("{")
    try:
        reply = json.loads(proc.stdout[start:]) if start >= 0 else {}
    except json.JSONDecodeError:
        reply = {}
    if not reply.get("success"):  # `flwr ... --format json` exits 0 on failure
        detail = reply.get("error-message") or (proc.stdout + proc.stderr).strip()[-2000:]
        raise RuntimeError(f"`flwr {' '.join(args)}` failed: {detail}")
    return reply


def _register_keys(root: Path, connection: str, keys: Path, nodes: int) -> dict[str, int]:
    """Register each SuperNode public key with the SuperLink; return node ids by service name."""
    ids = {}
    for i in range(nodes):
        reply = _flwr_json(root, "supernode", "register", str(keys / f"supernode-{i}.pub"),
                           connection)
        ids[f"supernode-{i}"] = int(reply["node-id"])
    return ids


def _wait_online(root: Path, connection: str, nodes: int, pids: dict[str, int], state: Path,
                 timeout: float) -> None:
    """Wait until ``nodes`` SuperNodes are online; fail early when one exits (e.g. refused)."""
    deadline = time.monotonic() + timeout
    while True:
        for name, pid in pids.items():
            if not _alive(pid):
                raise RuntimeError(f"{name} exited; log {state / f'{name}.log'}:\n"
                                   f"{_tail(state / f'{name}.log')}")
        listed = _flwr_json(root, "supernode", "list", connection).get("nodes", [])
        online = sum(1 for n in listed if n.get("status") == "online")
        if online >= nodes:
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"only {online} of {nodes} SuperNodes online after {timeout}s; "
                               f"logs in {state}")
        time.sleep(0.5)


def cluster_up(
    root: Path,
    nodes: int,
    *,
    mode: str = "insecure",
    isolation: str = "subprocess",
    port: int = SUPERLINK_PORT,
    node_port: int = NODE_PORT,
    timeout: float = 60.0,
    wait: bool = True,
) -> dict[str, Any]:
    """Start a SuperLink on 127.0.0.1:``port`` and ``nodes`` SuperNodes; register the connection.

    Parameters
    ----------
    root : Path
        The project (holds ``deploy/`` and the Flower config's home).
    nodes : int
        Number of SuperNodes.
    mode : str
        ``insecure``, ``tls`` or ``auth`` (see the module docstring).
    isolation : str
        ``subprocess`` (default) or ``process`` (separate ``flower-superexec`` processes).
    port, node_port : int
        SuperLink port; SuperNode ``i`` serves its Runtime API on ``node_port + i``.
    timeout : float
        Seconds to wait for the SuperLink port and, with ``wait``, for every SuperNode to be online.
    wait : bool
        Return only when ``flwr supernode list`` shows every SuperNode online.

    Returns
    -------
    dict
        ``connection``, ``address``, ``mode``, ``isolation``, ``pids``, ``node_ids`` (``auth``:
        from registration), ``certs``, ``keys`` and ``logs`` (the state directory).

    Raises
    ------
    RuntimeError
        If a cluster started by fedot is already running (stop it with :func:`cluster_down`), a
        process exits during start-up, or certificate/key generation or registration fails.
    TimeoutError
        If the SuperLink or the SuperNodes do not come up within ``timeout``.
    """
    state = _state_dir(root)
    if cluster_status(root)["running"]:
        raise RuntimeError(f"a fedot cluster is already running ({state}); run `fedot cluster down`")
    _check_mode(mode, isolation)  # before any certificate or key is generated
    busy = [p for p in (port, *range(node_port, node_port + nodes)) if _in_use(p)]
    if busy:  # another SuperLink there would silently take our nodes and runs
        raise RuntimeError(f"port(s) {busy} on 127.0.0.1 already in use: pick --port/--node-port")
    state.mkdir(parents=True, exist_ok=True)
    certs, keys = state / "certs", state / "keys"
    if mode != "insecure":
        _script(root, "certs.sh", str(certs))
    if mode == "auth":
        _script(root, "supernode-keys.sh", str(keys), str(nodes))
    connection = CONNECTIONS[mode]
    commands = service_commands(
        nodes, mode=mode, isolation=isolation, port=port, node_port=node_port,
        certs=str(certs) if mode != "insecure" else None, keys=str(keys) if mode == "auth" else None,
    )
    bin_dir = Path(sys.executable).parent
    base = flwr_env(root)
    pids: dict[str, int] = {}
    info: dict[str, Any] = {
        "connection": connection, "address": f"127.0.0.1:{port}", "mode": mode,
        "isolation": isolation, "nodes": nodes, "pids": pids, "node_ids": {},
        "certs": str(certs) if mode != "insecure" else None,
        "keys": str(keys) if mode == "auth" else None, "logs": str(state),
    }

    def start(name: str) -> None:
        home = state / name
        home.mkdir(exist_ok=True)
        cmd = [str(bin_dir / commands[name][0]), *commands[name][1:]]
        # cwd: the project, so a ServerApp without out-dir writes to <project>/outputs as before
        pids[name] = _spawn(cmd, {**base, "FLWR_HOME": str(home)}, state / f"{name}.log", root)
        (state / "pids.json").write_text(json.dumps(pids))

    try:
        start("superlink")
        _wait_port(port, timeout, state / "superlink.log", pids["superlink"])
        write_connection(root, port, connection, mode=mode,
                         root_certificates=certs / "ca.crt" if mode != "insecure" else None)
        if mode == "auth":
            info["node_ids"] = _register_keys(root, connection, keys, nodes)
        for name in commands:
            if name != "superlink":
                start(name)
        if wait:
            _wait_online(root, connection, nodes, pids, state, timeout)
    except BaseException:
        cluster_down(root)
        raise
    (state / "info.json").write_text(json.dumps(info, indent=2))
    return info


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
    """Return which processes of the fedot cluster are alive (and ``info``: how it was started)."""
    state = _state_dir(root)
    path = state / "pids.json"
    pids = json.loads(path.read_text()) if path.exists() else {}
    alive = {name: pid for name, pid in pids.items() if _alive(pid)}
    info = json.loads((state / "info.json").read_text()) if (state / "info.json").exists() else {}
    return {"running": bool(alive), "alive": alive, "started": pids, "info": info}


def cluster_down(root: Path, timeout: float = 15.0) -> list[str]:
    """Stop every process the cluster started (their process groups: SuperExecs and apps too).

    Certificates and keys stay in the state directory for the next ``cluster_up``.
    """
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
