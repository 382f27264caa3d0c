"""The ``fedot`` command line: run a scheme, compare schemes, run a named experiment.

::

    fedot run [SCHEME] [--set key=value ...] [--backend ray|inline|CONNECTION] [--clients N] [--out DIR]
    fedot run --resume DIR [--backend ...]
    fedot compare SCHEME SCHEME ... [--seeds N] [--set key=value ...]
    fedot experiment NAME [--quick] [--out DIR]
    fedot superlink stop

``--set`` takes the same dotted keys as ``flwr run --run-config`` (values parsed as TOML). The
config is validated before anything starts; a bad key or value exits with status 2 and one message
naming the key, the value and what is allowed. Any failure is one line on stderr: status 2 for bad
input, 1 for a failed run; the full traceback goes to :data:`ERROR_LOG` (``fedot --debug ...``
prints it instead).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from fedot.config import ConfigError, load_run_config, parse_value

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.split("\n")[0],
                  pretty_exceptions_enable=False)
superlink_app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False,
                            help="Manage fedot's local simulation SuperLink.")
app.add_typer(superlink_app, name="superlink")
cluster_app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False,
                          help="A local deployment: SuperLink + SuperNodes on 127.0.0.1 "
                          "(insecure, TLS or TLS + SuperNode auth).")
app.add_typer(cluster_app, name="cluster")

Backend = Annotated[
    str,
    typer.Option(
        "--backend", "-b",
        help="'ray' (flwr run, Ray simulation), 'inline' (in-process, no Ray) or the name of a "
        "SuperLink connection in .flwr/config.toml (deployment).",
    ),
]
Sets = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", help="Run-config override key=value (repeatable), e.g. local.lr=0.05"),
]
Quiet = Annotated[bool, typer.Option(
    "--quiet", "-q", help="No progress display and no log lines (warnings and errors only)")]


def _quiet(quiet: bool) -> bool:
    """Apply ``--quiet`` (fedot's and Flower's logs to WARNING); return whether to show progress."""
    if quiet:
        os.environ["FLWR_LOG_LEVEL"] = "WARNING"
        logging.getLogger("fedot").setLevel(logging.WARNING)
        logging.getLogger("flwr").setLevel(logging.WARNING)
    return not quiet


def _parse_sets(sets: list[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in sets or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"--set expects key=value, got {item!r}")
        out[key.strip()] = parse_value(value.strip())
    return out


@functools.cache
def _defaults() -> tuple[Path, dict[str, Any]]:
    from fedot.fl.inline import load_apps, project_root

    root = project_root()
    return root, load_apps(root)[2]


def _validate(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Validate defaults + overrides; return the *canonical* flat values of the overridden keys.

    Canonical values are what the apps will see after their own validation (e.g. ``nan`` parsed
    as a float becomes the string ``"nan"`` where a name belongs); sending those, not the raw
    parse, keeps ``run_config`` free of NaN floats, which Flower's "run_config must not change"
    check would otherwise trip over after a round trip through Ray.
    """
    _, defaults = _defaults()
    try:
        canonical = load_run_config({**defaults, **overrides}).flat()
    except ConfigError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    return {key: canonical[key] for key in overrides}


@dataclass(frozen=True)
class Runner:
    """``run(overrides, out_dir) -> out_dir`` for a backend (validates first).

    Picklable, so ``fedot experiment --jobs N`` can send it to worker processes.
    """

    backend: str
    gpus: float | None = None
    cpus: float | None = None
    keep_superlink: bool = False

    def __call__(self, overrides: Mapping[str, Any], out_dir: Path) -> Path:
        """Run one job with ``overrides`` into ``out_dir``; returns ``out_dir``."""
        root, defaults = _defaults()
        overrides = _validate(overrides)
        clients = int(overrides.get("clients", defaults["clients"]))
        out_dir = out_dir.resolve()
        if self.backend == "inline":
            from fedot.fl.inline import run_inline

            run_inline({**overrides, "out-dir": str(out_dir)}, clients)
            return out_dir
        from fedot.fl.runner import LOCAL_CONNECTION, run_flwr

        local = self.backend == "ray"
        return run_flwr(
            root, overrides, out_dir=out_dir,
            connection=LOCAL_CONNECTION if local else self.backend,
            num_supernodes=clients if local else None,
            client_cpus=self.cpus if local else None, client_gpus=self.gpus if local else None,
            keep_superlink=self.keep_superlink,
        )


def make_runner(backend: str, *, gpus: float | None = None, cpus: float | None = None,
                keep_superlink: bool = False) -> Runner:
    """Return ``run(overrides, out_dir) -> out_dir`` for a backend (validates first)."""
    _defaults()  # fail early on a broken project
    return Runner(backend, gpus=gpus, cpus=cpus, keep_superlink=keep_superlink)


def _default_out(name: str) -> Path:
    return Path("outputs") / f"{name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def results_table(out_dir: Path) -> str:
    """Return a short text table of a finished run (final metrics and timings)."""
    from fedot.fl.results import read_results

    res = read_results(out_dir)
    rounds = [e for e in res["rounds"] if e["round"] > 0]
    times = sorted(e["time_s"] for e in rounds)
    agg = [e.get("aggregation", {}).get("time_s", 0.0) for e in rounds]
    rejected = sum(len(e.get("train_rejected", [])) for e in rounds)
    cfg = res["config"]
    rows = [
        ("scheme", res["scheme"]),
        ("data", f"{cfg['irl']['env']} ({cfg['irl']['heterogeneity']} "
                 f"{cfg['irl']['strength']:g}, {cfg['clients']} clients)"
         if "environment" in res else
         f"{cfg['dataset']} ({cfg['partition']['kind']}, {cfg['clients']} clients)"),
        ("rounds", str(len(rounds))),
        *[(f"final {k}", f"{v:.4f}") for k, v in res["final"].items()],
        *[("initial accuracy", f"{v:.4f}")
          for v in [res["rounds"][0]["server"].get("accuracy")] if v is not None],
        ("round time median", f"{times[len(times) // 2]:.3f} s" if times else "–"),
        ("aggregation median", f"{sorted(agg)[len(agg) // 2] * 1e3:.2f} ms" if agg else "–"),
        ("rejected replies", str(rejected)),
        ("results", str(out_dir)),
        *[("tensorboard", f"tensorboard --logdir {t['tensorboard_dir']}")
          for t in [res.get("tracking", {})] if "tensorboard_dir" in t],
        *[("mlflow", f"mlflow ui --backend-store-uri {t['mlflow_uri']} (run {t['mlflow_run_id']})")
          for t in [res.get("tracking", {})] if "mlflow_uri" in t],
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)


def _resume_overrides(run_dir: Path) -> dict[str, Any]:
    """Return the run config of ``run_dir`` (its ``config.json``, flat) with ``resume`` set."""
    from fedot.config import flatten
    from fedot.fl.results import CONFIG_FILE

    path = run_dir / CONFIG_FILE
    if not path.is_file():
        typer.secho(f"error: --resume {run_dir}: no {CONFIG_FILE} there (not a fedot run directory)",
                    fg=typer.colors.RED, err=True)
        raise typer.Exit(2)
    flat = flatten(json.loads(path.read_text()))
    flat.pop("out-dir", None)
    return {**flat, "resume": str(run_dir)}


@app.command()
def run(
    scheme: Annotated[str | None, typer.Argument(help="Scheme (default: pyproject's)")] = None,
    sets: Sets = None,
    backend: Backend = "ray",
    clients: Annotated[int | None, typer.Option(help="Number of clients")] = None,
    out: Annotated[Path | None, typer.Option(help="Run directory")] = None,
    gpus: Annotated[float | None, typer.Option(help="Ray: GPUs per client")] = None,
    cpus: Annotated[float | None, typer.Option(help="Ray: CPUs per client")] = None,
    keep_superlink: Annotated[bool, typer.Option(help="Ray: keep the SuperLink warm")] = False,
    resume: Annotated[Path | None, typer.Option(
        help="Continue the interrupted run in this directory from its last completed round "
        "(config from its config.json; results identical to an uninterrupted run)")] = None,
    quiet: Quiet = False,
) -> None:
    """Run one federated experiment and print its results table."""
    from fedot.experiments.progress import ProgressDisplay

    show = _quiet(quiet)
    overrides = _parse_sets(sets)
    if scheme is not None:
        overrides["scheme"] = scheme
    if clients is not None:
        overrides["clients"] = clients
    if resume is not None:
        resume = resume.resolve()
        if out is not None and out.resolve() != resume:
            typer.secho("error: --resume continues the run in its own directory; drop --out",
                        fg=typer.colors.RED, err=True)
            raise typer.Exit(2)
        overrides = {**_resume_overrides(resume), **overrides}
    out_dir = resume or out or _default_out(str(overrides.get("scheme", _defaults()[1]["scheme"])))
    start = time.perf_counter()
    runner_ = make_runner(backend, gpus=gpus, cpus=cpus, keep_superlink=keep_superlink)
    label = str(overrides.get("scheme", _defaults()[1]["scheme"]))
    with ProgressDisplay([(label, out_dir)], enabled=show) as display:
        runner_(overrides, out_dir)
        display.task_done(0)
    typer.echo(f"\nfedot run finished in {time.perf_counter() - start:.1f} s ({backend})")
    typer.echo(results_table(out_dir.resolve()))


@app.command()
def compare(
    schemes: Annotated[list[str], typer.Argument(help="Schemes to compare (repeats allowed)")],
    seeds: Annotated[int, typer.Option(help="Number of seeds (0..N-1)")] = 3,
    sets: Sets = None,
    backend: Backend = "inline",
    out: Annotated[Path | None, typer.Option(help="Output directory")] = None,
    quiet: Quiet = False,
) -> None:
    """Run schemes on identical data and seeds; write summary.json, summary.md and a plot."""
    os.environ.setdefault("FLWR_LOG_LEVEL", "WARNING")  # progress comes from fedot's own log
    show = _quiet(quiet)
    from fedot.experiments import Arm
    from fedot.experiments import compare as run_compare

    base = _parse_sets(sets)
    labels: list[str] = []
    for s in schemes:
        n = sum(1 for x in schemes[: len(labels)] if x == s)
        labels.append(s if n == 0 else f"{s}#{n + 1}")
    arms = [Arm(label, {"scheme": s}) for label, s in zip(labels, schemes, strict=True)]
    for arm in arms:
        _validate({**base, **arm.overrides})
    out_dir = out or _default_out("compare-" + "-".join(schemes))
    summary = run_compare(arms, seeds=list(range(seeds)), run=make_runner(backend),
                          out_dir=out_dir, base=base, title="compare " + " vs ".join(schemes),
                          progress=show)
    _print_summary(summary, out_dir)


@app.command()
def experiment(
    name: Annotated[str | None, typer.Argument(help="Registered experiment")] = None,
    quick: Annotated[bool, typer.Option(help="Reduced run (≤ 1 min)")] = False,
    backend: Backend = "inline",
    out: Annotated[Path | None, typer.Option(help="Output directory")] = None,
    list_: Annotated[bool, typer.Option("--list", help="List registered experiments")] = False,
    jobs: Annotated[int, typer.Option(min=1, help="Parallel runs (inline backend; each gets "
                                      "cpu_count // jobs threads)")] = 1,
    ray_check: Annotated[str | None, typer.Option(
        help="After an inline experiment, re-run this arm's first seed through flwr run on Ray "
        "and check that its final metrics are identical")] = None,
    quiet: Quiet = False,
) -> None:
    """Run a named, registered experiment (or list them)."""
    os.environ.setdefault("FLWR_LOG_LEVEL", "WARNING")  # progress comes from fedot's own log
    show = _quiet(quiet)
    from fedot.experiments import EXPERIMENTS, run_experiment

    if list_ or name is None:
        for exp in EXPERIMENTS.values():
            typer.echo(f"{exp.name:<24} {exp.description}")
        return
    if name not in EXPERIMENTS:
        typer.secho(f"error: unknown experiment {name!r}; registered: {', '.join(EXPERIMENTS)}",
                    fg=typer.colors.RED, err=True)
        raise typer.Exit(2)
    if jobs > 1 and backend != "inline":
        typer.secho("error: --jobs > 1 needs --backend inline (Ray and deployments schedule their "
                    "own workers)", fg=typer.colors.RED, err=True)
        raise typer.Exit(2)
    exp = EXPERIMENTS[name]
    labels = [a.label for a in exp.arms]
    if ray_check is not None and (backend != "inline" or ray_check not in labels):
        typer.secho(f"error: --ray-check needs --backend inline and an arm label of {name}: "
                    f"{', '.join(labels)}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2)
    if exp.runner is not None and backend != "inline":
        typer.secho(f"error: {name} runs on its own engine ({type(exp.runner).__name__}), not "
                    f"on --backend {backend}; run single arms with `fedot run` on that backend",
                    fg=typer.colors.RED, err=True)
        raise typer.Exit(2)
    out_dir = out or _default_out(name + ("-quick" if quick else ""))
    summary = run_experiment(name, run=make_runner(backend), out_dir=out_dir, quick=quick,
                             jobs=jobs, progress=show)
    _print_summary(summary, out_dir)
    if ray_check is not None:
        _ray_check(summary, ray_check, out_dir)


def _ray_check(summary: Mapping[str, Any], label: str, out_dir: Path) -> None:
    """Re-run one arm's first seed through ``flwr run`` on Ray; its metrics must equal inline's."""
    from fedot.fl.results import read_results

    inline_dir = Path(summary["results"][label]["run_dirs"][0])
    inline = read_results(inline_dir)
    from fedot.config import flatten

    _, defaults = _defaults()
    config = {k: v for k, v in flatten(inline["config"]).items()
              if k not in ("out-dir", "resume") and defaults.get(k) != v}
    ray_dir = out_dir / "ray-check"
    typer.echo(f"ray check: {label}, seed {inline['config']['seed']}, through flwr run "
               "(Ray simulation) …")
    start = time.perf_counter()
    make_runner("ray")(config, ray_dir)
    ray = read_results(ray_dir)
    def final(result: Mapping[str, Any]) -> dict[str, float]:
        last = result["rounds"][-1].get("evaluate", {}) if result["rounds"] else {}
        values = {**{f"client {k}": v for k, v in last.items()}, **result["final"]}
        return {k: float(v) for k, v in values.items() if isinstance(v, int | float)}

    mine, theirs = final(inline), final(ray)
    keys = sorted(set(mine) & set(theirs))
    worst = max((abs(mine[k] - theirs[k]) for k in keys), default=0.0)
    shown = ", ".join(f"{k} {theirs[k]:.4f}" for k in keys
                      if k in ("loss", "accuracy", "client loss_p", "client accuracy_p"))
    typer.echo(f"ray check: {shown} in {time.perf_counter() - start:.0f} s; largest difference "
               f"from the in-process run {worst:.2e} ({ray_dir})")
    if worst > 1e-6:
        typer.secho("error: the Ray run's final metrics differ from the in-process run's",
                    fg=typer.colors.RED, err=True)
        raise typer.Exit(1)


def _print_summary(summary: Mapping[str, Any], out_dir: Path) -> None:
    from fedot.experiments.compare import markdown_table

    typer.echo(markdown_table(summary))
    if (out_dir / "report.md").exists():  # an experiment's own report (e.g. paired comparisons)
        typer.echo((out_dir / "report.md").read_text())
    typer.echo(f"written: {out_dir}/summary.json, summary.md, comparison.png")


@app.command()
def env() -> None:
    """Print the environment for running ``flwr`` by hand on fedot's own SuperLink.

    Use as ``eval "$(fedot env)"`` and then ``flwr run . --stream ...``.
    """
    from fedot.fl.runner import FLWR_ENV_KEYS, flwr_env

    root, _ = _defaults()
    values = flwr_env(root)
    for key in FLWR_ENV_KEYS:
        typer.echo(f"export {key}={values[key]}")


@superlink_app.command("stop")
def superlink_stop() -> None:
    """Stop fedot's managed local SuperLink (port $FEDOT_SUPERLINK_PORT, default 39291)."""
    from fedot.fl.runner import stop_local_superlink

    pids = stop_local_superlink()
    typer.echo(f"stopped {len(pids)} SuperLink process(es) {pids}" if pids else "none running")


@cluster_app.command("up")
def cluster_up(
    nodes: Annotated[int, typer.Option(help="Number of SuperNodes")] = 2,
    mode: Annotated[str, typer.Option(
        help="insecure (plain HTTP), tls (HTTPS, private CA) or auth (TLS + SuperNode keys "
        "registered with `flwr supernode register`)")] = "insecure",
    isolation: Annotated[str, typer.Option(
        help="subprocess (nodes start their own SuperExec) or process (separate SuperExecs, "
        "the docker-compose layout)")] = "subprocess",
    port: Annotated[int, typer.Option(help="SuperLink port (Fleet, Control and ServerAppIo)")] = 19090,
    node_port: Annotated[int, typer.Option(help="First SuperNode runtime port")] = 19094,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for every node to be online")] = 60.0,
) -> None:
    """Start one SuperLink and N SuperNodes on 127.0.0.1; register the mode's connection."""
    from fedot.fl.cluster import cluster_up as up

    root, _ = _defaults()
    try:
        info = up(root, nodes, mode=mode, isolation=isolation, port=port, node_port=node_port,
                  timeout=timeout)
    except ValueError as exc:  # an unknown --mode / --isolation, refused before anything starts
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    except (RuntimeError, TimeoutError) as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    typer.echo(f"cluster up ({mode}, {isolation} isolation): SuperLink {info['address']}, "
               f"{nodes} SuperNodes online, logs in {info['logs']}")
    if info["certs"]:
        typer.echo(f"CA certificate: {info['certs']}/ca.crt")
    for name, node_id in info["node_ids"].items():
        typer.echo(f"registered {name}: node id {node_id}")
    typer.echo(f"run with: fedot run --backend {info['connection']} --clients {nodes}")


@cluster_app.command("down")
def cluster_down() -> None:
    """Stop the local deployment started by `fedot cluster up` (certificates and keys are kept)."""
    from fedot.fl.cluster import cluster_down as down

    root, _ = _defaults()
    stopped = down(root)
    typer.echo(f"stopped: {', '.join(stopped)}" if stopped else "no cluster running")


# ---------------------------------------------------------------------------------------------
# Model fusion (issue 4): `fedot fuse` and `fedot fusion-experiment`


def _parse_weights(text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise typer.BadParameter(f"--weights expects comma-separated numbers, got {text!r}") from None


@app.command()
def fuse(
    inputs: Annotated[list[Path], typer.Argument(
        help="Saved models: state-dict .pt files or fedot run directories (checkpoint.pt)")],
    out: Annotated[Path | None, typer.Option(help="Write the fused state dict here (.pt)")] = None,
    model: Annotated[str | None, typer.Option(
        help="Architecture (mlp, cnn, logreg); default: run config, else inferred")] = None,
    hidden: Annotated[int | None, typer.Option(
        help="Hidden width; default: run config or inferred")] = None,
    dataset: Annotated[str | None, typer.Option(
        help="Dataset for the input shape and the activation probe; default: the run config's")] = None,
    metric: Annotated[str, typer.Option(help="Ground metric: weights or activations")] = "weights",
    method: Annotated[str, typer.Option(help="OT solver: exact or sinkhorn")] = "exact",
    reg: Annotated[float, typer.Option(
        help="Sinkhorn regularisation (relative to the cost scale)")] = 0.01,
    weights: Annotated[str | None, typer.Option(
        help="Comma-separated averaging weights, one per input (default uniform)")] = None,
    probe_size: Annotated[int, typer.Option(help="Probe inputs (activations metric)")] = 256,
    iterations: Annotated[int, typer.Option(min=1, help="Align-and-average iterations")] = 1,
    seed: Annotated[int | None, typer.Option(
        help="Data seed (default: the run config's, else 0)")] = None,
    eval_: Annotated[str | None, typer.Option(
        "--eval", help="Print test accuracy of the inputs and the fused model on this dataset")] = None,
    device: Annotated[str, typer.Option(
        help="Where distances and plans are computed: cpu, cuda, cuda:N or auto")] = "cpu",
) -> None:
    """Fuse K saved client models by OT alignment + averaging (OTFusion; the first is the target)."""
    from fedot.fusion.oneshot import fuse_saved

    if metric not in ("weights", "activations") or method not in ("exact", "sinkhorn"):
        typer.secho("error: --metric must be weights|activations and --method exact|sinkhorn",
                    fg=typer.colors.RED, err=True)
        raise typer.Exit(2)
    if eval_ is not None and dataset is not None and eval_ != dataset:
        typer.secho(f"error: --eval {eval_} differs from --dataset {dataset}: the fused model is "
                    "probed and evaluated on one dataset", fg=typer.colors.RED, err=True)
        raise typer.Exit(2)
    w = _parse_weights(weights)
    if w is not None and len(w) != len(inputs):
        typer.secho(f"error: --weights has {len(w)} entries for {len(inputs)} inputs",
                    fg=typer.colors.RED, err=True)
        raise typer.Exit(2)
    start = time.perf_counter()
    try:
        res = fuse_saved(inputs, model=model, hidden=hidden, dataset=dataset or eval_, seed=seed,
                         metric=metric, method=method, reg=reg, weights=w, probe_size=probe_size,
                         iterations=iterations, device=device)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    elapsed = time.perf_counter() - start
    typer.echo(f"loaded and fused {len(inputs)} models ({metric}, {method}, "
               f"{next(res.model.parameters()).device}) in {elapsed:.2f} s")
    for k, diags in enumerate(res.diagnostics):
        typer.echo(f"  input {k}: off-identity per layer "
                   + ", ".join(f"{d.group}={d.off_identity:.3f}" for d in diags))
    if eval_ is not None:
        from fedot.learning import evaluate

        data = res.dataset
        assert data is not None
        for k, parent in enumerate(res.parents):
            acc = evaluate(parent, data.test.x, data.test.y).accuracy
            typer.echo(f"  input {k} test accuracy ({data.name}): {acc:.4f}")
        acc = evaluate(res.model, data.test.x, data.test.y).accuracy
        typer.echo(f"  fused test accuracy ({data.name}): {acc:.4f}")
    if out is not None:
        import torch

        out.parent.mkdir(parents=True, exist_ok=True)
        torch.save({k: v.detach().cpu() for k, v in res.model.state_dict().items()}, out)
        typer.echo(f"written: {out}")


@app.command("fusion-experiment")
def fusion_experiment(
    name: Annotated[str | None, typer.Argument(help="fusion-oneshot, fusion-oneshot-mnist or "
                                              "fusion-superposition")] = None,
    quick: Annotated[bool, typer.Option(help="Reduced run (< 1 min)")] = False,
    out: Annotated[Path | None, typer.Option(help="Output directory")] = None,
    list_: Annotated[bool, typer.Option("--list", help="List the fusion experiments")] = False,
) -> None:
    """Run a one-shot model-fusion experiment (not federated): summary.json, summary.md, PNGs."""
    from fedot.experiments.fusion import FUSION_EXPERIMENTS, run_fusion_experiment

    if list_ or name is None:
        for exp in FUSION_EXPERIMENTS.values():
            typer.echo(f"{exp.name:<24} {exp.description}")
        return
    if name not in FUSION_EXPERIMENTS:
        typer.secho(f"error: unknown fusion experiment {name!r}; registered: "
                    f"{', '.join(FUSION_EXPERIMENTS)}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2)
    out_dir = out or _default_out(name + ("-quick" if quick else ""))
    start = time.perf_counter()
    run_fusion_experiment(name, out_dir=out_dir, quick=quick, log=typer.echo)
    typer.echo((out_dir / "summary.md").read_text())
    typer.echo(f"finished in {time.perf_counter() - start:.1f} s; written: {out_dir}/summary.json, "
               "summary.md and PNGs")


#: Where the full traceback of the last failed command goes (printed only with ``--debug``).
ERROR_LOG = Path(tempfile.gettempdir()) / "fedot-last-error.log"
_DEBUG = {"on": False}


@app.callback()
def _options(debug: Annotated[bool, typer.Option(
        "--debug", help="On failure, show the full traceback instead of one line")] = False) -> None:
    _DEBUG["on"] = debug


def _fail(command: str, exc: BaseException, code: int) -> None:
    """Print one line (what failed, why, where the traceback is) and exit with ``code``."""
    ERROR_LOG.write_text("".join(traceback.format_exception(exc)))
    what = "bad input" if code == 2 else "run failed"
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    typer.secho(f"error: fedot {command}: {what}: {type(exc).__name__}: {reason} "
                f"(full traceback in {ERROR_LOG}; rerun with --debug to print it)",
                fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _one_line_errors(command: str, fn: Any) -> Any:
    """Wrap a command: exit 2 for bad input (ConfigError), 1 for a failed run, one line each."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:  # noqa: BLE001 - every failure becomes one line (or --debug)
            if _DEBUG["on"]:
                raise
            _fail(command, exc, 2 if isinstance(exc, ConfigError) else 1)
    return wrapper


for _typer, _prefix in ((app, ""), (superlink_app, "superlink "), (cluster_app, "cluster ")):
    for _cmd in _typer.registered_commands:
        _name = _cmd.name or _cmd.callback.__name__.replace("_", "-")
        _cmd.callback = _one_line_errors(_prefix + _name, _cmd.callback)


def main() -> None:
    """Entry point of the ``fedot`` script."""
    logging.basicConfig(level=os.environ.get("FEDOT_LOG_LEVEL", "INFO"), stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("flwr").propagate = False  # Flower has its own handler (FLWR_LOG_LEVEL)
    app()


if __name__ == "__main__":
    main()
