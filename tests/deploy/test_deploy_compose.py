"""docker-compose.yml, its TLS overlay, the connection templates and the deploy scripts agree with
the local cluster's code (fast: no process is started except `docker-compose config`, ssh-keygen)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import yaml

from fedot.fl import cluster
from fedot.fl.inline import project_root

ROOT = project_root()
BASE = "docker-compose.yml"
TLS = "docker-compose.tls.yml"
#: How docker-compose.yml instantiates fedot.fl.cluster.service_commands.
COMPOSE = {"isolation": "process", "host": "0.0.0.0", "superlink_host": "superlink",
           "node_host": "supernode-{i}", "database": "/app/state/state.db"}


def _load(*names: str) -> dict[str, Any]:
    """The compose files merged as docker-compose does for what we check (command replaced)."""
    merged: dict[str, Any] = {}
    for name in names:
        doc = yaml.safe_load((ROOT / name).read_text())
        for service, spec in doc["services"].items():
            old = merged.setdefault(service, {})
            volumes = old.get("volumes", []) + spec.get("volumes", [])
            old.update(spec)
            if volumes:
                old["volumes"] = volumes
    return merged


def _commands(services: dict[str, Any]) -> dict[str, list[str]]:
    return {name: [*spec["entrypoint"], *map(str, spec["command"])] for name, spec in services.items()}


def _nodes(services: dict[str, Any]) -> int:
    return sum(1 for name in services if re.fullmatch(r"supernode-\d+", name))


def test_compose_runs_exactly_the_cluster_commands() -> None:
    services = _load(BASE)
    # Assert: same services, flags and ports as `fedot cluster up --isolation process`
    expected = cluster.service_commands(_nodes(services), mode="insecure", **COMPOSE)
    assert _commands(services) == expected
    assert set(services) == {"superlink", "superexec-serverapp", "supernode-0", "supernode-1",
                             "superexec-clientapp-0", "superexec-clientapp-1"}


def test_tls_overlay_runs_exactly_the_cluster_tls_commands() -> None:
    services = _load(BASE, TLS)
    expected = cluster.service_commands(_nodes(services), mode="tls", certs="/app/certs", **COMPOSE)
    assert _commands(services) == expected
    # Assert: every service that verifies or serves TLS gets the files it names, read-only
    for name, argv in expected.items():
        wanted = {a for a in argv if a.startswith("/app/certs/")}
        mounted = {v.split(":")[1] for v in services[name].get("volumes", []) if ":/app/certs/" in v}
        assert wanted == mounted, name
        assert all(v.endswith(":ro") for v in services[name].get("volumes", []) if "certs" in v)


def test_compose_ports_flags_and_images() -> None:
    services = _load(BASE)
    link = services["superlink"]
    # SuperLink: one port for Fleet, Control and ServerAppIo, published on the host's loopback only
    assert link["ports"] == [f"127.0.0.1:{cluster.SUPERLINK_PORT}:{cluster.SUPERLINK_PORT}"]
    assert link["command"][link["command"].index("--host") + 1] == "0.0.0.0"
    assert "superlink-state:/app/state" in link["volumes"]
    for i in range(_nodes(services)):
        node = services[f"supernode-{i}"]["command"]
        assert node[node.index("--isolation") + 1] == "process"
        assert f"partition-id={i} num-partitions=2" in node
        assert node[node.index("--port") + 1] == str(cluster.NODE_PORT + i)
        assert "ports" not in services[f"supernode-{i}"]  # Runtime APIs stay inside the network
        executor = services[f"superexec-clientapp-{i}"]["command"]
        assert f"supernode-{i}:{cluster.NODE_PORT + i}" in executor
    assert "--isolation" in link["command"] and "process" in link["command"]
    # Every image is deploy/Dockerfile on Flower's image of the installed flwr version
    roles = {name: spec["build"]["args"]["FLWR_IMAGE"] for name, spec in services.items()}
    assert {name: spec["build"]["dockerfile"] for name, spec in services.items()} == dict.fromkeys(
        services, "deploy/Dockerfile")
    assert roles["superlink"] == "superlink" and roles["supernode-0"] == "supernode"
    assert roles["superexec-serverapp"] == roles["superexec-clientapp-1"] == "superexec"
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert f"ARG FLWR_VERSION={version('flwr')}" in dockerfile
    assert "FROM flwr/${FLWR_IMAGE}:${FLWR_VERSION}" in dockerfile
    # torch pinned (CPU wheel index) in the same pip command that installs fedot
    [install] = [i for i in dockerfile.replace("\\\n", " ").splitlines() if "pip install" in i]
    assert '"torch==2.13.0"' in install and "download.pytorch.org/whl/cpu" in install
    assert " . " in install and '"flwr==${FLWR_VERSION}"' in install


@pytest.mark.parametrize("files", [[BASE], [BASE, TLS]], ids=["base", "tls-overlay"])
def test_docker_compose_config_validates(files: list[str]) -> None:
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.skip("docker-compose is not installed (apt-get install docker-compose; .ci/run does)")
    args = [exe, *[a for f in files for a in ("-f", f)], "config"]
    quiet = subprocess.run([*args, "-q"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert quiet.returncode == 0, quiet.stderr
    # docker-compose's own merge of the overlay gives the same commands
    merged = yaml.safe_load(subprocess.run(args, cwd=ROOT, capture_output=True, text=True,
                                           timeout=120, check=True).stdout)["services"]
    mode = "tls" if TLS in files else "insecure"
    expected = cluster.service_commands(2, mode=mode, certs="/app/certs" if mode == "tls" else None,
                                        **COMPOSE)
    assert _commands(merged) == expected
    assert merged["superlink"]["ports"][0].removesuffix("/tcp") == "127.0.0.1:19090:19090"


@pytest.mark.parametrize("mode", cluster.MODES)
def test_connection_templates_render_the_right_security(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    monkeypatch.setenv("FEDOT_FLWR_HOME", str(tmp_path))
    ca = tmp_path / "ca.crt"
    name = cluster.CONNECTIONS[mode]
    # Execute: twice, to check that the block is replaced, not duplicated
    for _ in range(2):
        path = cluster.write_connection(ROOT, 19490, name, mode=mode,
                                        root_certificates=None if mode == "insecure" else ca)
    config = tomllib.loads(path.read_text())["superlink"]
    assert path.read_text().count(f"[superlink.{name}]") == 1
    assert config["local"] == {"address": ":local:"}
    if mode == "insecure":
        assert config[name] == {"address": "127.0.0.1:19490", "insecure": True}
    else:
        assert config[name] == {"address": "127.0.0.1:19490", "root-certificates": str(ca)}


def test_tls_connection_without_ca_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEDOT_FLWR_HOME", str(tmp_path))
    with pytest.raises(ValueError, match="root_certificates"):
        cluster.write_connection(ROOT, 19490, "x", mode="tls")


def test_auth_commands_enable_node_auth_and_keys() -> None:
    cmds = cluster.service_commands(3, mode="auth", certs="/c", keys="/k")
    assert "--enable-supernode-auth" in cmds["superlink"] and "--insecure" not in cmds["superlink"]
    for i in range(3):
        node = cmds[f"supernode-{i}"]
        assert node[node.index("--auth-supernode-private-key") + 1] == f"/k/supernode-{i}"
        assert node[node.index("--root-certificates") + 1] == "/c/ca.crt"
        assert f"partition-id={i} num-partitions=3" in node
    assert set(cmds) == {"superlink", "supernode-0", "supernode-1", "supernode-2"}  # subprocess
    with pytest.raises(ValueError, match="key directory"):
        cluster.service_commands(1, mode="auth", certs="/c")


def test_deploy_scripts_exist_and_parse() -> None:
    for name in ("certs.sh", "supernode-keys.sh", "cluster-up.sh", "cluster-down.sh"):
        script = ROOT / "deploy" / name
        assert os.access(script, os.X_OK), name
        subprocess.run(["bash", "-n", str(script)], check=True, timeout=30)
    for mode in cluster.MODES:
        assert (ROOT / "deploy" / "connections" / f"{mode}.toml").is_file()


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="ssh-keygen (openssh-client) missing")
def test_supernode_keys_are_p384_openssh_and_kept(tmp_path: Path) -> None:
    script = ROOT / "deploy" / "supernode-keys.sh"
    subprocess.run(["bash", str(script), str(tmp_path), "2"], check=True, timeout=60,
                   capture_output=True)
    first = (tmp_path / "supernode-1.pub").read_text()
    subprocess.run(["bash", str(script), str(tmp_path), "2"], check=True, timeout=60,
                   capture_output=True)
    assert first.startswith("ecdsa-sha2-nistp384 ")
    assert (tmp_path / "supernode-1.pub").read_text() == first  # identity kept
    assert (tmp_path / "supernode-0").stat().st_mode & 0o077 == 0  # private key: owner only
