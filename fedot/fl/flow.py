"""Flower glue of federated flow matching: data, models, the server task, client state.

The global model is one ArrayRecord holding the velocity field θ (keys ``velocity.*``) and, for
the GOT coupling, the dual potential φ (``potential.*``). Data are a pure function of the run
config: a 2-D density (``fedot.data.toy2d``), 8x8 digits or 28x28 MNIST-5k scaled to [-1, 1],
split among clients by mode / label (``ffm.split``); the held-out set (2-D: ``eval-samples``
fresh draws of the whole target; images: the global test split) stays on the server and is used
only for evaluation. The server never sees a client sample.

Server-side evaluation integrates the flow from a fixed batch of source noise with Euler at every
NFE of ``ffm.nfe`` and reports the distance of the samples to the held-out target: exact W2
(``ot.emd2``) for 2-D; sliced W2 on pixels and the Fréchet distance on the hidden features of a
classifier trained once per seed on the run's training images (cached on disk) for digits and
MNIST-5k, with the same distance between real training and held-out images as the floor for
MNIST-5k. It also reports the
straightness E‖(x̂1 − x0) − v(t, x_t)‖² along the learned map's own chords and the path-length
ratio of the finest trajectory.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from flwr.app import ArrayRecord, Context

from fedot.config import FFMConfig, RunConfig
from fedot.data import load_dataset
from fedot.data.toy2d import mode_labels_by_angle, sample_toy2d, split_by_mode
from fedot.fl import keys
from fedot.fl.task import ServerTask, derive_seed, node_partition, validated_config
from fedot.learning import resolve_device
from fedot.learning.flow import (
    Coupling,
    ExactOTCoupling,
    IndependentCoupling,
    PotentialConv8,
    PotentialConv28,
    PotentialCoupling,
    PotentialMLP,
    VelocityConv8,
    VelocityConv28,
    VelocityMLP,
    c_transform,
    frechet_distance,
    integrate,
    path_length_ratio,
    sliced_w2,
    straightness,
    w2_exact,
)
from fedot.learning.flow.features import FeatureCNN28, train_feature_cnn

__all__ = [
    "POTENTIAL",
    "RUN_KEY",
    "STAGE_KEY",
    "VELOCITY",
    "evaluation_round",
    "total_rounds",
    "FlowClientEnv",
    "FlowData",
    "flow_arrays",
    "flow_client_env",
    "flow_coupling",
    "flow_data",
    "flow_models",
    "flow_server_task",
    "gradient_arrays",
    "load_flow_arrays",
    "load_optimizer_arrays",
    "mnist_feature_extractor",
    "run_key",
    "save_optimizer_arrays",
]

VELOCITY = "velocity."
POTENTIAL = "potential."
#: ConfigRecord key with the round's stage: ``"potential"`` (GOT stage 1) or ``"flow"``.
STAGE_KEY = "ffm.stage"
#: ConfigRecord key naming the run (a hash of its output directory), for client state on disk.
RUN_KEY = "ffm.run-key"
#: ``Context.state`` record name of a client's optimizer state for one model.
_OPT_RECORD = "ffm.optimizer.{}"
#: ``ffm.data`` values that are images (split by label, evaluated by sliced W2 and FD).
IMAGE_DATA = ("digits", "mnist-5k")


@dataclass(frozen=True)
class FlowData:
    """Training pool with mode labels, client index sets and the server's held-out target."""

    train: np.ndarray
    modes: np.ndarray
    test: np.ndarray
    parts: tuple[np.ndarray, ...]

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """Shape of one sample: (2,), (1, 8, 8) or (1, 28, 28)."""
        return tuple(self.train.shape[1:])


@lru_cache(maxsize=8)
def flow_data(cfg: RunConfig, num_partitions: int) -> FlowData:
    """Build (and cache) the run's data; identical on the server and on every client."""
    f = cfg.ffm
    if f.data in IMAGE_DATA:
        ds = load_dataset(f.data, seed=cfg.seed, test_fraction=cfg.data.test_fraction)
        train = ds.train.x.astype(np.float32) * 2.0 - 1.0
        modes = np.asarray(ds.train.y, dtype=np.int64)
        test = ds.test.x.astype(np.float32) * 2.0 - 1.0
    else:
        rng = np.random.default_rng(derive_seed(cfg.seed, 71))
        train, modes = sample_toy2d(f.data, f.samples, rng)
        test, _ = sample_toy2d(f.data, f.eval_samples, rng)
    if f.split == "region":  # client c: the c-th angular sector of the plane, whatever the modes
        modes = mode_labels_by_angle(train, num_partitions)
    parts = split_by_mode(modes, num_partitions, kind="mode" if f.split == "region" else f.split,
                          alpha=f.alpha,
                          rng=np.random.default_rng(derive_seed(cfg.seed, 72)))
    return FlowData(train, modes, test, tuple(parts))


def flow_coupling(ffm: FFMConfig, potential: torch.nn.Module | None) -> Coupling:
    """Return the coupling ``ffm.coupling`` names.

    Independent (vanilla), exact OT (LOT) or the potential's c-transform map (GOT, with
    ``ffm.candidates``, ``refine-steps`` and ``step-size``). Shared by the client task and the
    batched simulation, so both draw the same pairs.
    """
    if ffm.coupling == "lot":
        return ExactOTCoupling()
    if ffm.coupling == "got":
        if potential is None:
            raise ValueError("ffm.coupling = 'got' needs the shared potential")
        return PotentialCoupling(potential, candidates=ffm.candidates,
                                 refine_steps=ffm.refine_steps, step_size=ffm.step_size)
    return IndependentCoupling()


def flow_models(cfg: RunConfig) -> tuple[torch.nn.Module, torch.nn.Module | None]:
    """Build the velocity field and (GOT only) the dual potential from the run seed."""
    f = cfg.ffm
    if f.data == "digits":
        velocity: torch.nn.Module = VelocityConv8(channels=f.channels, seed=cfg.seed)
        potential: torch.nn.Module = PotentialConv8(channels=f.channels, seed=cfg.seed + 1)
    elif f.data == "mnist-5k":
        velocity = VelocityConv28(channels=f.channels, seed=cfg.seed)
        potential = PotentialConv28(channels=f.channels, seed=cfg.seed + 1)
    else:
        velocity = VelocityMLP(2, hidden=f.hidden, layers=f.layers, seed=cfg.seed)
        potential = PotentialMLP(2, hidden=f.hidden, layers=f.layers, seed=cfg.seed + 1)
    return velocity, potential if f.coupling == "got" else None


def flow_arrays(velocity: torch.nn.Module, potential: torch.nn.Module | None) -> ArrayRecord:
    """Pack the models' states into one ArrayRecord (CPU copies, prefixed keys)."""
    state = {VELOCITY + k: v.detach().cpu() for k, v in velocity.state_dict().items()}
    if potential is not None:
        state.update({POTENTIAL + k: v.detach().cpu() for k, v in potential.state_dict().items()})
    return ArrayRecord(state)


def gradient_arrays(
    template: ArrayRecord, grads: dict[str, torch.Tensor], prefix: str
) -> ArrayRecord:
    """Shape a gradient reply like the global model: ``prefix`` keys from ``grads``, others 0.

    Keys, shapes and dtypes equal the broadcast record's, so the server screens a gradient reply
    exactly like a model reply.
    """
    out = {}
    for key, array in template.to_torch_state_dict().items():
        grad = grads.get(key[len(prefix):]) if key.startswith(prefix) else None
        out[key] = (grad.detach().to(array.dtype).cpu() if grad is not None  # buffers: zero
                    else torch.zeros_like(array))
    return ArrayRecord(out)


def run_key(out_dir: Path) -> str:
    """Short stable name of a run (its output directory): where its clients keep state on disk."""
    import hashlib

    return hashlib.sha256(str(Path(out_dir).resolve()).encode()).hexdigest()[:16]


def _state_dir(key: str) -> Path:
    root = os.environ.get("FEDOT_CLIENT_STATE_DIR")
    base = (Path(root) if root else
            Path(os.environ.get("FEDOT_CACHE_DIR", Path.home() / ".cache" / "fedot")) / "client-state")
    return base / key


def load_optimizer_arrays(
    context: Context, name: str, server_round: int, key: str | None
) -> dict[str, torch.Tensor] | None:
    """Return this client's latest optimizer state for model ``name`` saved before ``server_round``.

    From ``context.state`` (kept by Flower for the node across the rounds of a run); on a resumed
    run (a new Flower run, an empty ``Context``) from the disk mirror under run ``key``, taking the
    latest state saved at a round < ``server_round`` (a killed run may have left later ones).
    ``None`` when there is none (first round): the caller starts a fresh optimizer.
    """
    record = _OPT_RECORD.format(name)
    if record in context.state.array_records:
        return dict(context.state.array_records[record].to_torch_state_dict())
    if key is None:
        return None
    pid = int(context.node_config[keys.PARTITION_ID])
    found = []
    for path in _state_dir(key).glob(f"p{pid}-{name}-r*.pt"):
        try:
            rnd = int(path.stem.rsplit("-r", 1)[1])
        except ValueError:
            continue
        if rnd < server_round:
            found.append((rnd, path))
    if not found:
        return None
    return torch.load(max(found)[1], weights_only=True)


def save_optimizer_arrays(
    context: Context, name: str, server_round: int, state: dict[str, torch.Tensor],
    key: str | None,
) -> None:
    """Keep ``state`` in ``context.state``; with a run ``key``, also on disk (last two rounds)."""
    context.state.array_records[_OPT_RECORD.format(name)] = ArrayRecord(
        {k: v.detach().cpu() for k, v in state.items()})
    if key is None:
        return
    pid = int(context.node_config[keys.PARTITION_ID])
    folder = _state_dir(key)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"p{pid}-{name}-r{server_round}.pt"
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    for old in folder.glob(f"p{pid}-{name}-r*.pt"):
        try:
            if int(old.stem.rsplit("-r", 1)[1]) < server_round - 1:
                old.unlink(missing_ok=True)
        except ValueError:
            continue


def load_flow_arrays(
    arrays: ArrayRecord, velocity: torch.nn.Module, potential: torch.nn.Module | None
) -> None:
    """Load a packed ArrayRecord into the models in place (strict keys and shapes)."""
    state = arrays.to_torch_state_dict()
    velocity.load_state_dict(
        {k[len(VELOCITY):]: v for k, v in state.items() if k.startswith(VELOCITY)}, strict=True)
    if potential is not None:
        potential.load_state_dict(
            {k[len(POTENTIAL):]: v for k, v in state.items() if k.startswith(POTENTIAL)},
            strict=True)


def _classifier_cache(seed: int) -> Path:
    root = Path(os.environ.get("FEDOT_CACHE_DIR", Path.home() / ".cache" / "fedot"))
    return root / f"digits-features-mlp-seed{seed}.pkl"


def digits_feature_extractor(seed: int) -> Any:
    """Return ``f(x (N, 64) in [-1, 1]) -> hidden features``, from a seeded digits classifier.

    An sklearn ``MLPClassifier((128, 64))`` trained on digits' training split (the same split the
    run uses); its last hidden ReLU layer gives the features of the Fréchet distance (an FID
    analogue without Inception weights). Trained once per seed and cached in
    ``$FEDOT_CACHE_DIR`` (default ``~/.cache/fedot``).
    """
    path = _classifier_cache(seed)
    clf = None
    if path.exists():
        try:
            clf = pickle.loads(path.read_bytes())
        except Exception:  # a corrupt cache is rebuilt
            clf = None
    if clf is None:
        from sklearn.neural_network import MLPClassifier

        ds = load_dataset("digits", seed=seed)
        x = ds.train.x.reshape(len(ds.train), -1) * 2.0 - 1.0
        clf = MLPClassifier((128, 64), max_iter=500, random_state=seed).fit(x, ds.train.y)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(pickle.dumps(clf))
        os.replace(tmp, path)

    def features(x: np.ndarray) -> np.ndarray:
        h = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
        for w, b in zip(clf.coefs_[:-1], clf.intercepts_[:-1], strict=True):
            h = np.maximum(h @ w + b, 0.0)
        return h

    return features


def _mnist_classifier_cache(seed: int, test_fraction: float) -> Path:
    root = Path(os.environ.get("FEDOT_CACHE_DIR", Path.home() / ".cache" / "fedot"))
    return root / f"mnist5k-features-cnn-seed{seed}-test{test_fraction:g}.pt"


def mnist_feature_extractor(seed: int, test_fraction: float = 0.2) -> Any:
    """Return ``f(x (N, 1, 28, 28) in [-1, 1]) -> 64 features``, from a seeded MNIST-5k CNN.

    :class:`~fedot.learning.flow.features.FeatureCNN28` trained by
    :func:`~fedot.learning.flow.features.train_feature_cnn` (6 epochs of Adam, lr 3e-3, batch
    64, seed ``seed``) on MNIST-5k's training split for ``seed`` and ``test_fraction`` (the split
    the run trains on, so the held-out images stay unseen), inputs scaled to [-1, 1]; its
    penultimate ReLU layer gives the features of the Fréchet distance (an FID analogue without
    Inception weights), as :func:`digits_feature_extractor` does for digits. Trained once per
    seed and cached in ``$FEDOT_CACHE_DIR`` (default ``~/.cache/fedot``). The returned function
    carries the classifier's accuracy on the held-out split as ``features.test_accuracy``.
    """
    ds = load_dataset("mnist-5k", seed=seed, test_fraction=test_fraction)
    path = _mnist_classifier_cache(seed, test_fraction)
    model = None
    if path.exists():
        try:
            model = FeatureCNN28(seed=seed)
            model.load_state_dict(torch.load(path, weights_only=True))
            model.eval()
        except Exception:  # a corrupt cache is rebuilt
            model = None
    if model is None:
        model = train_feature_cnn(ds.train.x * 2.0 - 1.0, ds.train.y, seed=seed)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        torch.save(model.state_dict(), tmp)
        os.replace(tmp, path)

    def features(x: np.ndarray, batch: int = 500) -> np.ndarray:
        xs = torch.as_tensor(np.asarray(x, dtype=np.float32).reshape(len(x), 1, 28, 28))
        with torch.no_grad():
            return np.concatenate([model.features(xs[i:i + batch]).double().numpy()
                                   for i in range(0, len(xs), batch)])

    with torch.no_grad():
        logits = model(torch.as_tensor(ds.test.x * 2.0 - 1.0))
    features.test_accuracy = float((logits.argmax(1).numpy() == ds.test.y).mean())  # type: ignore[attr-defined]
    return features


def total_rounds(cfg: RunConfig) -> int:
    """Flower rounds of an ``ffm`` run: ``rounds`` flow rounds, after GOT's potential rounds."""
    return cfg.rounds + (cfg.ffm.potential_rounds if cfg.ffm.coupling == "got" else 0)


def evaluation_round(cfg: RunConfig, server_round: int) -> bool:
    """Whether the flow is evaluated after ``server_round``: 0, the last, every ``eval-every``.

    Rounds are counted from the first flow round; GOT's potential rounds leave the flow unchanged
    and are not evaluated (except round 0).
    """
    f = cfg.ffm
    offset = f.potential_rounds if f.coupling == "got" else 0
    if 0 < server_round <= offset:
        return False
    return server_round in (0, total_rounds(cfg)) or (server_round - offset) % f.eval_every == 0


def flow_server_task(cfg: RunConfig, out_dir: Path) -> ServerTask:
    """Server task of ``ffm``: initial models, sample-quality metrics vs NFE, plots at the end."""
    f = cfg.ffm
    data = flow_data(cfg, cfg.clients)
    velocity, potential = flow_models(cfg)
    device = resolve_device(cfg.device)
    gen = torch.Generator().manual_seed(derive_seed(cfg.seed, 73))
    x0 = torch.randn((f.eval_samples, *data.sample_shape), generator=gen)
    target = data.test[: f.eval_samples]
    nfes = f.nfe_list()
    features = (digits_feature_extractor(cfg.seed) if f.data == "digits" else
                mnist_feature_extractor(cfg.seed, cfg.data.test_fraction) if f.data == "mnist-5k"
                else None)
    target_features = features(target) if features is not None else None
    model = velocity.to(device)
    potential_model = potential.to(device) if potential is not None else None

    def distance(samples: np.ndarray) -> dict[str, float]:
        if features is None:
            return {"w2": w2_exact(samples, target)}
        return {"swd": sliced_w2(samples.reshape(len(samples), -1), target.reshape(len(target), -1)),
                "fd": frechet_distance(features(samples), target_features)}

    def evaluate(server_round: int, arrays: ArrayRecord) -> dict[str, float]:
        load_flow_arrays(arrays, model, potential_model)
        model.eval()
        if not evaluation_round(cfg, server_round):
            return {}
        grid = nfes
        out: dict[str, float] = {}
        src = x0.to(device)
        for nfe in grid:
            res = integrate(model, src, method="euler", steps=nfe,
                            return_trajectory=nfe == nfes[-1])
            samples = res.x.detach().cpu().numpy()
            for name, value in distance(samples).items():
                out[f"{name}-nfe{nfe}"] = value
            if nfe == nfes[-1]:
                moved = bool((res.trajectory[-1] != res.trajectory[0]).any())
                # a zero field (e.g. the conv net's zero-initialised output) has no path to measure
                out["path-length-ratio"] = (path_length_ratio(res.trajectory) if moved
                                            else float("nan"))
                out["straightness"] = straightness(model, src, res.x, generator=torch.Generator(
                    device=device).manual_seed(derive_seed(cfg.seed, 74)))
        if potential_model is not None:
            # GOT's pairing is exact only if x0*(x1) over the target is distributed as N(0, I):
            # its sliced W2 to fresh source noise measures the drift (docs/ffm.md).
            ct = c_transform(potential_model, torch.as_tensor(target).to(device),
                             candidates=f.candidates, refine_steps=f.refine_steps,
                             step_size=f.step_size, generator=torch.Generator(device=device)
                             .manual_seed(derive_seed(cfg.seed, 76)))
            flat = lambda a: a.reshape(len(a), -1).detach().cpu().numpy()  # noqa: E731
            out["got-source-drift"] = sliced_w2(flat(ct.x0_star), flat(x0[: len(target)]))
        return out

    def finalize(path: Path, arrays: ArrayRecord) -> None:
        load_flow_arrays(arrays, model, None)
        plot_flow(model, x0, target, path, data=f.data, title=f"ffm ({f.coupling}), {f.data}, "
                  f"{f.split} split, {cfg.clients} clients, {cfg.rounds} flow rounds")

    floor: dict[str, float] = {}
    if f.data == "mnist-5k":
        # the floor: the same distances between real training images and the held-out target
        pick = np.random.default_rng(derive_seed(cfg.seed, 78)).choice(
            len(data.train), size=len(target), replace=False)
        real = data.train[np.sort(pick)]
        floor["fd_real_train_vs_test"] = frechet_distance(features(real), target_features)
        floor["swd_real_train_vs_test"] = sliced_w2(real.reshape(len(real), -1),
                                                    target.reshape(len(target), -1))
        floor["feature_classifier_test_accuracy"] = features.test_accuracy
    elif f.data not in IMAGE_DATA:
        # for scale: W2 between two independent samples of the target, of the evaluation's size
        fresh, _ = sample_toy2d(f.data, len(target), np.random.default_rng(derive_seed(cfg.seed, 77)))
        floor["w2_two_target_samples"] = w2_exact(fresh, target)
    info = {"flow": {
        **floor,
        "data": f.data, "sample_shape": list(data.sample_shape), "train_pool": len(data.train),
        "held_out": len(target), "client_sizes": [len(p) for p in data.parts],
        "client_modes": [sorted(set(data.modes[p].tolist())) for p in data.parts],
        "parameters": {"velocity": sum(p.numel() for p in velocity.parameters()),
                       "potential": (sum(p.numel() for p in potential.parameters())
                                     if potential is not None else 0)},
    }}
    return ServerTask(flow_arrays(velocity, potential), evaluate, info, finalize)


def _tile(imgs: np.ndarray, per_row: int) -> np.ndarray:
    """Tile square images (values in [-1, 1]) in rows of ``per_row``, 1-pixel gaps between."""
    n = imgs.shape[-1]
    imgs = np.clip(imgs.reshape(-1, n, n), -1.0, 1.0)
    rows = -(-len(imgs) // per_row)
    out = np.zeros((rows * (n + 1) + 1, per_row * (n + 1) + 1), dtype=np.float32)
    for k, img in enumerate(imgs):
        r, c = divmod(k, per_row)
        out[1 + (n + 1) * r:1 + (n + 1) * r + n, 1 + (n + 1) * c:1 + (n + 1) * c + n] = img
    return out


def plot_flow(
    model: torch.nn.Module, x0: torch.Tensor, target: np.ndarray, out_dir: Path, *, data: str,
    title: str, nfes: tuple[int, ...] = (1, 3, 10),
) -> Path:
    """2-D: trajectories and samples at a few NFE; images: sample grids. Written to ``flow.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    device = next(model.parameters()).device
    src = x0.to(device)
    path = out_dir / "flow.png"
    if data in IMAGE_DATA:
        fig, axes = plt.subplots(1, len(nfes) + 1, figsize=(3.6 * (len(nfes) + 1), 3.9))
        panels = [(f"NFE {n}", integrate(model, src[:36], steps=n).x.cpu().numpy()) for n in nfes]
        panels.append(("held-out data", target[:36]))
        for ax, (name, imgs) in zip(axes, panels, strict=True):
            ax.imshow(_tile(np.asarray(imgs), 6), cmap="gray", vmin=-1, vmax=1)
            ax.set_title(name, fontsize=9)
            ax.axis("off")
    else:
        fig, axes = plt.subplots(1, len(nfes) + 1, figsize=(3.6 * (len(nfes) + 1), 3.6))
        traj = integrate(model, src[:300], steps=100, return_trajectory=True).trajectory
        lines = np.stack([t.cpu().numpy() for t in traj])
        ax = axes[0]
        ax.plot(lines[:, :, 0], lines[:, :, 1], color="tab:blue", alpha=0.15, lw=0.6)
        ax.scatter(lines[0, :, 0], lines[0, :, 1], s=2, c="k", label="x0")
        ax.scatter(lines[-1, :, 0], lines[-1, :, 1], s=2, c="tab:red", label="x1 (NFE 100)")
        ax.set_title("trajectories (NFE 100)", fontsize=9)
        ax.legend(fontsize=7, markerscale=3)
        for ax, n in zip(axes[1:], nfes, strict=True):
            s = integrate(model, src, steps=n).x.cpu().numpy()
            ax.scatter(target[:, 0], target[:, 1], s=1, c="0.75", label="held-out")
            ax.scatter(s[:, 0], s[:, 1], s=1, c="tab:red", label="generated")
            ax.set_title(f"NFE {n}: W2 {w2_exact(s, target):.3f}", fontsize=9)
        for ax in axes:
            ax.set_aspect("equal")
            ax.set_xlim(-5, 5)
            ax.set_ylim(-5, 5)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


@dataclass
class FlowClientEnv:
    """A client's data (on its device) and model templates."""

    cfg: RunConfig
    partition_id: int
    train: torch.Tensor
    test: torch.Tensor
    velocity: torch.nn.Module
    potential: torch.nn.Module | None
    device: torch.device

    @property
    def ffm(self) -> FFMConfig:
        """The ``ffm.*`` section."""
        return self.cfg.ffm

    def seed(self, server_round: int, stream: int = 0) -> int:
        """Seed of this client's randomness in one round."""
        return derive_seed(self.cfg.seed, server_round, self.partition_id, stream)


@lru_cache(maxsize=1024)
def _flow_client_env(cfg: RunConfig, partition_id: int, num_partitions: int) -> FlowClientEnv:
    data = flow_data(cfg, num_partitions)
    idx = data.parts[partition_id]
    rng = np.random.default_rng(derive_seed(cfg.seed, 75, partition_id))
    held = rng.permutation(idx)
    n_test = int(round(len(idx) * cfg.data.local_test_fraction)) if len(idx) > 4 else 0
    device = resolve_device(cfg.device)
    velocity, potential = flow_models(cfg)
    as_tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(device)  # noqa: E731
    return FlowClientEnv(
        cfg, partition_id, as_tensor(data.train[np.sort(held[n_test:])]),
        as_tensor(data.train[np.sort(held[:n_test])]), velocity.to(device),
        potential.to(device) if potential is not None else None, device,
    )


def flow_client_env(context: Context) -> FlowClientEnv:
    """Return the (cached) flow-matching state of the client this ``context`` belongs to."""
    cfg = validated_config(context.run_config)
    pid, n = node_partition(context)
    return _flow_client_env(cfg, pid, n)
