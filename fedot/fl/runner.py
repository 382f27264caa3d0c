"""Run the fedot app through ``flwr run``: Ray simulation or a deployed SuperLink.

Simulation runs on a managed local SuperLink; deployment on a SuperLink named by a connection in
the Flower config.

``flwr run`` always goes through a SuperLink. For simulation the Flower CLI starts a detached,
*managed* SuperLink found by port; left alone it would be shared machine-wide, pick up runtime
dependency installation from pypi.org, and outlive the run. fedot makes it self-contained:

* ``FLWR_HOME`` is ``<project>/.flwr`` (git-ignored), so connections and the SuperLink's state
  never touch ``~/.flwr``;
* ``FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION=1``: the project's own environment runs the app;
* project-specific ports (``FEDOT_SUPERLINK_PORT``, default 39291, and ``FEDOT_CONTROL_PORT``,
  default 39293) instead of Flower's machine-wide 39091/39093;
* :func:`stop_local_superlink` stops it again after the run (unless asked to keep it warm);
* the app is submitted from a staged copy (:func:`stage_app`): ``flwr run`` builds the FAB by
  walking *every* file under the app directory before filtering (``flwr.cli.utils.collect_files``),
  and a project directory holds ``.venv`` and ``.flwr`` (measured: 56,466 files, 4.4 s per run,
  before the SuperLink is even started); the staged copy holds only ``pyproject.toml`` and the
  packages the wheel ships, which is all the FAB needs.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = [
    "LOCAL_CONNECTION",
    "FlwrRunError",
    "flwr_env",
    "flwr_home",
    "local_superlink_pids",
    "run_flwr",
    "stage_app",
    "stop_local_superlink",
    "to_toml",
]

#: Variables :func:`flwr_env` sets (``fedot env`` prints them for running ``flwr`` by hand).
FLWR_ENV_KEYS = (
    "FLWR_HOME",
    "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION",
    "FLWR_LOCAL_SUPERLINK_HTTP_API_PORT",
    "FLWR_LOCAL_CONTROL_API_PORT",
    "FLWR_TELEMETRY_ENABLED",
    "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO",
)

#: Name of the managed local simulation connection in the Flower config.
LOCAL_CONNECTION = "local"


class FlwrRunError(RuntimeError):
    """``flwr run`` failed, or the run did not complete (Flower exits 0 on failed runs)."""


def _ports() -> tuple[str, str]:
    return (
        os.environ.get("FEDOT_SUPERLINK_PORT", "39291"),
        os.environ.get("FEDOT_CONTROL_PORT", "39293"),
    )


def flwr_home(root: Path) -> Path:
    """Return the project's Flower home: ``$FEDOT_FLWR_HOME`` if set, else ``<root>/.flwr``."""
    return Path(os.environ.get("FEDOT_FLWR_HOME") or root / ".flwr")


def flwr_env(root: Path, *, log_level: str = "INFO") -> dict[str, str]:
    """Environment for ``flwr`` commands that keeps the managed SuperLink inside the project."""
    http_port, control_port = _ports()
    env = dict(os.environ)
    env.update(
        {
            "FLWR_HOME": str(flwr_home(root)),
            "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
            "FLWR_LOCAL_SUPERLINK_HTTP_API_PORT": http_port,
            "FLWR_LOCAL_CONTROL_API_PORT": control_port,
            "FLWR_TELEMETRY_ENABLED": "0",
            "FLWR_LOG_LEVEL": env.get("FLWR_LOG_LEVEL", log_level),
            "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "0",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        }
    )
    return env


def to_toml(config: Mapping[str, Any]) -> str:
    """Serialise a flat run config (dotted keys; int/float/bool/str values) as TOML."""
    lines = []
    for key, value in config.items():
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, int | float):
            text = repr(value)
        elif isinstance(value, str):
            text = json.dumps(value)
        else:
            raise TypeError(f"run-config value {key}={value!r} must be int, float, bool or str")
        lines.append(f"{key} = {text}")
    return "\n".join(lines) + "\n"


#: File types a staged app keeps (the FAB's own include patterns, less docs).
_STAGED_SUFFIXES = (".py", ".toml", ".json", ".yaml", ".yml")


@contextmanager
def stage_app(root: Path, *, serverapp: str | None = None) -> Iterator[Path]:
    """Yield a temporary copy of the app at ``root`` holding only what its FAB needs.

    That is ``pyproject.toml`` and the ``.py``/``.toml``/``.json``/``.yaml`` files (outside
    ``__pycache__``) of the packages the wheel ships (``[tool.hatch.build.targets.wheel]``
    ``packages``). Removed on exit. ``serverapp`` (``"module:object"``) replaces the ServerApp
    component in the staged ``pyproject.toml`` (the benchmarks' bare Flower baseline runs from an
    otherwise identical FAB).
    """
    root = Path(root).resolve()
    text = (root / "pyproject.toml").read_text()
    tool = tomllib.loads(text)["tool"]
    if serverapp is not None:
        line = f'serverapp = "{tool["flwr"]["app"]["components"]["serverapp"]}"'
        if line not in text:
            raise ValueError(f"{root / 'pyproject.toml'} has no line {line!r} to replace")
        text = text.replace(line, f'serverapp = "{serverapp}"', 1)
    with tempfile.TemporaryDirectory(prefix="fedot-app-") as tmp:
        stage = Path(tmp)
        (stage / "pyproject.toml").write_text(text)
        for package in tool["hatch"]["build"]["targets"]["wheel"]["packages"]:
            for path in (root / package).rglob("*"):
                if (path.suffix in _STAGED_SUFFIXES and path.is_file()
                        and "__pycache__" not in path.parts):
                    dest = stage / path.relative_to(root)
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, dest)
        yield stage


def local_superlink_pids() -> list[int]:
    """PIDs of ``flower-superlink`` processes serving fedot's local port (this user's)."""
    http_port, _ = _ports()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        args = [a.decode(errors="replace") for a in argv if a]
        if any(a.endswith("flower-superlink") for a in args[:2]) and "--simulation" in args:
            if http_port in args and args[args.index(http_port) - 1] == "--port":
                pids.append(int(entry.name))
    return pids


def stop_local_superlink(timeout: float = 15.0) -> list[int]:
    """Stop fedot's managed local SuperLink (SIGTERM, then SIGKILL); return the PIDs stopped."""
    pids = local_superlink_pids()
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in pids):
        time.sleep(0.2)
    for pid in pids:
        if Path(f"/proc/{pid}").exists():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    return pids


#: flwr 1.41's simulation logs this WARNING on every run whatever ``num-supernodes`` is
#: (flwr/simulation/app.py, unconditional); fedot always sets the count, so it drops the line.
SUPERNODES_NOTICE = "Since flwr 1.32, default simulated SuperNodes changed from 10 to 2."


def _run_streaming(cmd: list[str], *, env: Mapping[str, str], cwd: Path, timeout: float | None,
                   drop: tuple[str, ...]) -> int:
    """Run ``cmd``, forwarding its output line by line to stdout except lines containing ``drop``.

    Raises
    ------
    subprocess.TimeoutExpired
        After killing the process, when it runs past ``timeout``.
    """
    proc = subprocess.Popen(cmd, env=dict(env), cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, errors="replace", bufsize=1)

    def forward() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if not any(d in line for d in drop):
                sys.stdout.write(line)
                sys.stdout.flush()

    reader = threading.Thread(target=forward, name="flwr-run-output", daemon=True)
    reader.start()
    try:
        returncode = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise
    finally:
        reader.join(timeout=5)
    return returncode


def run_flwr(
    root: Path,
    run_config: Mapping[str, Any],
    *,
    out_dir: Path,
    connection: str = LOCAL_CONNECTION,
    num_supernodes: int | None = None,
    client_cpus: float | None = None,
    client_gpus: float | None = None,
    keep_superlink: bool = False,
    timeout: float | None = None,
    serverapp: str | None = None,
) -> Path:
    """Run the app with ``flwr run <root> <connection> --stream`` and check that it completed.

    Parameters
    ----------
    root : Path
        The app directory (holds ``pyproject.toml``).
    run_config : Mapping[str, Any]
        Flat run-config overrides (``out-dir`` is set to ``out_dir``).
    out_dir : Path
        Absolute run directory; its ``results.json`` must report ``status == "completed"``.
    connection : str
        ``"local"`` for Ray simulation, or a connection in ``<root>/.flwr/config.toml``.
    num_supernodes, client_cpus, client_gpus
        Simulation only: ``--federation-config`` keys ``num-supernodes``,
        ``client-resources-num-cpus`` and ``client-resources-num-gpus``.
    keep_superlink : bool
        Leave the managed local SuperLink running for faster later runs.
    timeout : float, optional
        Wall-clock limit for ``flwr run``.
    serverapp : str, optional
        Submit with this ServerApp (``"module:object"``) instead of the project's
        (:func:`stage_app`).

    Returns
    -------
    Path
        ``out_dir``.
    """
    out_dir = out_dir.resolve()
    (out_dir / "results.json").unlink(missing_ok=True)  # a stale file must not pass the check
    config = {**run_config, "out-dir": str(out_dir)}
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as fh:
        fh.write(to_toml(config))
        overrides = fh.name
    cmd = [str(Path(sys.executable).parent / "flwr"), "run", str(root), connection, "--stream",
           "--run-config", overrides]
    if connection == LOCAL_CONNECTION:
        fed = {"num-supernodes": num_supernodes, "client-resources-num-cpus": client_cpus,
               "client-resources-num-gpus": client_gpus}
        fed_text = " ".join(f"{k}={v}" for k, v in fed.items() if v is not None)
        if fed_text:
            cmd += ["--federation-config", fed_text]
    drop = (SUPERNODES_NOTICE,) if connection == LOCAL_CONNECTION and num_supernodes else ()
    try:
        with stage_app(root, serverapp=serverapp) as app:
            cmd[2] = str(app)
            returncode = _run_streaming(cmd, env=flwr_env(root), cwd=root, timeout=timeout,
                                        drop=drop)
    except subprocess.TimeoutExpired as exc:
        raise FlwrRunError(f"flwr run exceeded {timeout}s") from exc
    finally:
        os.unlink(overrides)
        if connection == LOCAL_CONNECTION and not keep_superlink:
            stop_local_superlink()
    results = out_dir / "results.json"
    status = json.loads(results.read_text()).get("status") if results.is_file() else None
    if returncode != 0 or status != "completed":
        log_file = flwr_home(root) / "local-superlink" / "superlink.log"
        raise FlwrRunError(
            f"flwr run exited {returncode}, run status {status!r} (expected 'completed'); "
            f"see the log above" + (f" and {log_file}" if connection == LOCAL_CONNECTION else "")
        )
    return out_dir
