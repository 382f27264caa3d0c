"""A real local deployment with TLS and SuperNode authentication (slow).

One module-scoped cluster (`fedot cluster up --mode auth --isolation process --nodes 3` on loopback
test ports, own Flower home) serves every test, in this order:

* a run through it completes (TLS + registered node keys, external SuperExecs: the compose layout);
* a SuperNode with an unregistered key, a plaintext SuperNode and one trusting another CA are all
  refused (each bounded by a timeout, each process group stopped in ``finally``);
* a SuperNode killed with SIGKILL mid-run: the run completes and ``results.json`` names the node.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fedot.fl.inline import project_root

pytestmark = pytest.mark.slow

PORT, NODE_PORT, NODES = 19490, 19494, 3
CONNECTION = "fedot-auth"
BIN = Path(sys.executable).parent


@dataclass
class Cluster:
    env: dict[str, str]
    state: Path
    info: dict[str, Any]

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(BIN / "fedot"), *args], env=self.env, cwd=project_root(),
                              capture_output=True, text=True, timeout=timeout)

    def flwr(self, *args: str) -> dict[str, Any]:
        env = {**self.env, "FLWR_HOME": self.env["FEDOT_FLWR_HOME"]}
        out = subprocess.run([str(BIN / "flwr"), *args, CONNECTION, "--format", "json"], env=env,
                             capture_output=True, text=True, timeout=60, check=True).stdout
        reply = json.loads(out[out.index("{"):])
        assert reply["success"], reply
        return reply

    def pids(self) -> dict[str, int]:
        return json.loads((self.state / "pids.json").read_text())


@pytest.fixture(scope="module")
def auth_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    home = tmp_path_factory.mktemp("flwr-auth")
    env = {**os.environ, "FEDOT_FLWR_HOME": str(home), "FLWR_LOG_LEVEL": "WARNING",
           "OMP_NUM_THREADS": "1", "FLWR_TELEMETRY_ENABLED": "0",
           "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}  # flower-superexec
    cluster = Cluster(env, home / "cluster", {})
    try:
        up = cluster.cli("cluster", "up", "--mode", "auth", "--isolation", "process", "--nodes",
                         str(NODES), "--port", str(PORT), "--node-port", str(NODE_PORT),
                         "--timeout", "120", timeout=240)
        assert up.returncode == 0, up.stdout + up.stderr
        cluster.info = json.loads((cluster.state / "info.json").read_text())
        yield cluster
    finally:
        cluster.cli("cluster", "down", timeout=120)


def _results(out: Path) -> dict[str, Any]:
    return json.loads((out / "results.json").read_text())


def _rogue_supernode(cluster: Cluster, tmp_path: Path, *args: str, timeout: float = 90
                     ) -> tuple[int, str]:
    """Run a SuperNode that should be refused; return its exit code and log (always stopped)."""
    log = tmp_path / "rogue.log"
    env = {**cluster.env, "FLWR_HOME": str(tmp_path / "rogue-home")}
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [str(BIN / "flower-supernode"), "--superlink", f"127.0.0.1:{PORT}",
             "--port", str(NODE_PORT + 10), "--max-retries", "2", "--node-config",
             "partition-id=0 num-partitions=3", *args],
            env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        code = proc.wait(timeout=timeout)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # its SuperExec child too
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)
    return code, log.read_text(errors="replace")


def _registered_ids(cluster: Cluster) -> set[int]:
    return set(cluster.info["node_ids"].values())


def test_tls_auth_run_completes(auth_cluster: Cluster, tmp_path: Path) -> None:
    ca = Path(auth_cluster.info["certs"]) / "ca.crt"
    config = (Path(auth_cluster.env["FEDOT_FLWR_HOME"]) / "config.toml").read_text()
    assert f'address = "127.0.0.1:{PORT}"' in config and f'root-certificates = "{ca}"' in config
    # Execute: 3 registered SuperNodes, every connection over TLS
    run = auth_cluster.cli("run", "fedavg", "--backend", CONNECTION, "--clients", str(NODES),
                           "--set", "rounds=2", "--set", "wait-timeout=60",
                           "--out", str(tmp_path / "run"))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    res = _results(tmp_path / "run")
    # Assert: completed, both rounds with a reply from each registered node and nothing missing
    assert res["status"] == "completed"
    assert [e["round"] for e in res["rounds"]] == [0, 1, 2]
    for entry in res["rounds"][1:]:
        assert {c["node_id"] for c in entry["clients"]} == _registered_ids(auth_cluster)
        assert entry["train_missing"] == [] and entry["train_rejected"] == []
    assert res["final"]["accuracy"] > res["rounds"][0]["server"]["accuracy"]
    # Assert: Flower's view agrees (run finished:completed, the 3 registered nodes online)
    runs = {int(r["run-id"]): r["status"] for r in auth_cluster.flwr("ls")["runs"]}
    assert runs[res["run_id"]] == "finished:completed"
    nodes = {int(n["node-id"]): n["status"] for n in auth_cluster.flwr("supernode", "list")["nodes"]}
    assert nodes == dict.fromkeys(_registered_ids(auth_cluster), "online")


def test_unregistered_supernode_key_is_refused(auth_cluster: Cluster, tmp_path: Path) -> None:
    # Prepare: a valid P-384 key pair that was never registered
    subprocess.run(["bash", str(project_root() / "deploy" / "supernode-keys.sh"),
                    str(tmp_path / "keys"), "1"], check=True, capture_output=True, timeout=60)
    ca = Path(auth_cluster.info["certs"]) / "ca.crt"
    # Execute
    code, log = _rogue_supernode(auth_cluster, tmp_path, "--root-certificates", str(ca),
                                 "--auth-supernode-private-key", str(tmp_path / "keys" / "supernode-0"))
    # Assert: activation refused (HTTP 412 → exit 305); it never became a node, so never got a task
    assert code != 0 and "Exit Code: 305" in log and "Failed to activate SuperNode" in log, log
    listed = {int(n["node-id"]) for n in auth_cluster.flwr("supernode", "list")["nodes"]}
    assert listed == _registered_ids(auth_cluster)
    superlink_log = (auth_cluster.state / "superlink.log").read_text(errors="replace")
    assert "No SuperNode found with the given public key" in superlink_log


def test_plaintext_supernode_cannot_connect(auth_cluster: Cluster, tmp_path: Path) -> None:
    code, log = _rogue_supernode(auth_cluster, tmp_path, "--insecure")
    assert code != 0 and "Exit Code: 305" in log, log


def test_supernode_trusting_another_ca_cannot_connect(auth_cluster: Cluster, tmp_path: Path) -> None:
    other = tmp_path / "other-ca.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=other-ca", "-keyout", str(tmp_path / "other-ca.key"),
                    "-out", str(other)], check=True, capture_output=True, timeout=60)
    code, log = _rogue_supernode(auth_cluster, tmp_path, "--root-certificates", str(other))
    assert code != 0 and "Exit Code: 305" in log and "CERTIFICATE_VERIFY_FAILED" in log, log


def test_malformed_run_config_is_rejected_naming_the_key(auth_cluster: Cluster,
                                                         tmp_path: Path) -> None:
    # Execute: through fedot's CLI (validated before anything is submitted) ...
    cli = auth_cluster.cli("run", "fedavg", "--backend", CONNECTION, "--clients", str(NODES),
                           "--set", "rounds=0", "--out", str(tmp_path / "cli"))
    # ... and straight through `flwr run`: the SuperLink accepts a known key with a bad value, the
    # ServerApp refuses it before any training
    env = {**auth_cluster.env, "FLWR_HOME": auth_cluster.env["FEDOT_FLWR_HOME"]}
    direct = subprocess.run(
        [str(BIN / "flwr"), "run", ".", CONNECTION, "--stream", "--run-config",
         f'rounds=0 out-dir="{tmp_path / "direct"}"'],
        env=env, cwd=project_root(), capture_output=True, text=True, timeout=240)
    # Assert
    assert cli.returncode == 2 and "'rounds'" in cli.stdout + cli.stderr
    assert "'rounds'" in direct.stdout + direct.stderr, (direct.stdout + direct.stderr)[-3000:]
    assert not (tmp_path / "direct" / "results.json").exists()  # failed before any round
    statuses = [r["status"] for r in auth_cluster.flwr("ls")["runs"]]  # run ids are random
    assert "finished:failed" in statuses, statuses


def test_killed_supernode_is_named_and_the_run_completes(auth_cluster: Cluster,
                                                         tmp_path: Path) -> None:
    # Runs last: it kills supernode-2 during round 1 of a 2-round run with clients=3. Round 2 must
    # go on with the two nodes left: fedot's strategies wait (bounded) only for the min-replies
    # quorum, not for Flower's min_available_nodes = clients, which would wait forever.
    out = tmp_path / "run"
    log = tmp_path / "run.log"
    victim = auth_cluster.pids()["supernode-2"]
    with open(log, "wb") as fh:
        run = subprocess.Popen(
            [str(BIN / "fedot"), "run", "fedavg", "--backend", CONNECTION, "--clients", "3",
             "--set", "rounds=2", "--set", "round-timeout=240", "--out", str(out)],
            env=auth_cluster.env, cwd=project_root(), stdout=fh, stderr=subprocess.STDOUT,
            start_new_session=True)
    try:
        # Execute: once the run has started (round 0, the initial evaluation, is recorded; round
        # 1's train messages go out right after), SIGKILL supernode-2 before it can reply
        deadline = time.monotonic() + 180
        while not ((out / "results.json").exists() and _results(out)["rounds"]):
            assert run.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        os.killpg(victim, signal.SIGKILL)
        assert run.wait(timeout=300) == 0, log.read_text()[-3000:]
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait(timeout=10)
    # Assert: completed with the two live nodes; the killed node is named as missing
    res = _results(out)
    dead = auth_cluster.info["node_ids"]["supernode-2"]
    entry, after = res["rounds"][1:]
    assert res["status"] == "completed"
    assert entry["train_missing"] == [dead]
    assert sorted(c["partition_id"] for c in entry["clients"]) == [0, 1]
    assert dead not in {c["node_id"] for c in entry["clients"]}
    assert "Node Unavailable" in entry["train_rejected"][0]["reason"]  # Flower's own error reply
    # round 2 goes on with the live nodes (the dead one, if still listed, is named again)
    assert sorted(c["partition_id"] for c in after["clients"]) == [0, 1]
    assert set(after["train_missing"]) <= {dead}
