r"""Superposition benchmark: teachers with planted features in rotated hidden bases, and their students.

Neuron alignment (OTFusion, Git Re-Basin) can only undo *permutations*. This module builds a ground
truth in which two students represent the *same* sparse features in *different, non-neuron* bases
of a hidden layer, with a controlled amount of rotation, so that one can measure where neuron-basis
OT fails and whether SAE feature-basis OT (:func:`fedot.fusion.sae_align`) recovers the alignment.

Teacher family
--------------
Inputs :math:`x \sim \mathcal N(0, I_D)`. ``n`` planted features

.. math:: f_i(x) = s\,\mathrm{ReLU}(a_i^\top x - \tau), \qquad \|a_i\| = 1,\;
          \tau = \Phi^{-1}(1 - p),

are sparse: each is active with probability ``p`` (``active_prob``); :math:`s` makes
:math:`\mathbb E f_i^2 = 1`. They are written into a
``d``-dimensional hidden layer along unit directions
:math:`E = [e_1 \dots e_n] \in \mathbb R^{d \times n}`:
:math:`E = I` when ``n = d`` (every feature on its own neuron), and ``n`` random unit vectors when
``n > d`` (``features_per_neuron = n / d > 1``: superposition, no basis puts all features on
neurons). Teacher ``k`` rotates that layer by its own rotation :math:`R_k`:

.. math:: h_k(x) = R_k E f(x), \qquad \mathrm{logits}(x) = W_o R_k^\top h_k(x) + b_o = W_o E f(x) + b_o,

so all teachers compute the same function and differ only in the basis of :math:`h`. Each is an
``nn.Sequential(Linear(D, n), ReLU, Linear(n, d), Linear(d, C))`` — the students' architecture:
the hidden layer ``"2"`` is *linear* (no nonlinearity before its consumer), so any invertible map of
it, not only a permutation, preserves the function.

Rotation of angle :math:`\theta` (:func:`planar_rotation`): :math:`R = Q\,\mathrm{blockdiag}(
\mathrm{rot}(\theta), \dots)\,Q^\top` with a Haar-random orthogonal :math:`Q`: a rotation by
:math:`\theta` in :math:`\lfloor d/2 \rfloor` random orthogonal planes. Every neuron axis then has
:math:`e_j^\top R e_j = \cos\theta` (exactly, for even ``d``), so :math:`\theta = 0` puts the
features on neurons and :math:`\theta = \pi/2` makes every planted feature orthogonal to "its"
neuron and spread over the others. :func:`neuron_purity` measures
:math:`\frac1n\sum_i \max_j |(R E)_{ji}|` (1: every feature on one neuron).

Students
--------
Student ``k`` has the teacher architecture, its own initialisation seed and data stream, and is
trained (Adam) to imitate teacher ``k`` (:func:`train_student`): MSE on the logits plus, with
``hint > 0``, ``hint`` × MSE between its hidden layer and :math:`h_k` (a FitNets-style hint, which is
what plants :math:`R_k` in the student). The first (ReLU) layer is free: students learn the
features in seed-dependent orders, which neuron OT must undo. With ``hint = 0`` ("no hint") the
hidden basis is whatever training from a random init gives (no ground-truth map).

Ground truth: :math:`h_A \approx R_A R_B^\top h_B`, so the map that aligns student B to A is
:math:`M^\star = R_A R_B^\top` (:func:`run_pair` reports the error of every method's hidden map
against it, and the data-based hidden alignment error :math:`\|h_A - \tilde h_B\|/\|h_A - \bar h_A\|`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import torch
from torch import Tensor, nn

from fedot.fusion.align import (
    GroupMap,
    _load,
    _Options,
    _reference,
    _state,
    activations,
    align,
    align_state,
)
from fedot.fusion.oneshot import average_models
from fedot.fusion.rebasin import weight_matching
from fedot.fusion.sae import sae_align
from fedot.fusion.spec import spec_for

__all__ = [
    "HIDDEN_GROUP",
    "PAIR_METHODS",
    "PlantedTeacher",
    "SuperpositionConfig",
    "make_teacher",
    "neuron_purity",
    "planar_rotation",
    "activation_map_align",
    "run_pair",
    "sample_inputs",
    "train_student",
]

HIDDEN_GROUP = "2"
"""Permutation group (module name) of the linear hidden layer :math:`h` in the teacher/student nets."""

PAIR_METHODS: tuple[str, ...] = (
    "average", "ot-weights", "ot-activations", "rebasin", "sae-ot", "sae-ot-lstsq",
    "act-procrustes", "act-lstsq",
)
"""Pair-fusion methods of :func:`run_pair` (besides the ``ensemble`` reference)."""


@dataclass(frozen=True)
class SuperpositionConfig:
    r"""One setting of the superposition benchmark (see the module docs).

    Attributes
    ----------
    input_dim : int
        ``D``.
    hidden : int
        ``d``: neurons of the hidden layer.
    features_per_neuron : float
        ``n / d`` (``n = round(features_per_neuron * d)`` planted features; 1: no superposition).
    active_prob : float
        ``p``: probability that a feature is active.
    classes : int
        Output logits ``C``.
    angle : float
        Rotation angle :math:`\theta` (radians) of every teacher's hidden basis.
    hint : float
        Weight of the hidden-layer hint loss (0: students free to choose their basis).
    student_width : int
        Students' first (ReLU) layer has ``student_width * n`` units (over-parametrised: with only
        ``n`` units, students trained from scratch leave features unlearned).
    student_steps, student_batch, student_lr, student_optimizer
        Student training (Adam or SGD with momentum 0.9, cosine learning-rate decay, fresh inputs
        every step).
    accept_loss, max_tries : float, int
        A student whose final training loss (logit MSE + hint MSE, last 100 steps) exceeds
        ``accept_loss`` — typically one planted feature left unlearned (hint MSE ≈ 1/d) — is
        retrained from a new init seed, up to ``max_tries`` times in all; the best try is kept and
        the number of tries is reported.
    probe_size : int
        Inputs (fresh draws from the input distribution) used by the activation metric, the SAEs
        and the activation Procrustes baseline.
    test_size : int
        Fresh test inputs for the metrics.
    sae_features, sae_k, sae_steps
        SAE settings (:func:`fedot.fusion.train_sae`); ``sae_features`` default ``max(4 d, 2 n)``,
        ``sae_k`` default ``max(2, ceil(2 p n))``.
    """

    input_dim: int = 32
    hidden: int = 16
    features_per_neuron: float = 1.0
    active_prob: float = 0.1
    classes: int = 10
    angle: float = 0.0
    hint: float = 1.0
    student_width: int = 16
    student_steps: int = 3000
    student_batch: int = 256
    student_lr: float = 1e-2
    student_optimizer: Literal["adam", "sgd"] = "adam"
    accept_loss: float = 1e-2
    max_tries: int = 3
    probe_size: int = 4096
    test_size: int = 4096
    sae_features: int | None = None
    sae_k: int | None = None
    sae_steps: int = 1000

    @property
    def features(self) -> int:
        """Number of planted features ``n``."""
        return max(1, round(self.features_per_neuron * self.hidden))

    def sae_options(self) -> tuple[int, int]:
        """``(features, k)`` of the SAEs."""
        m = self.sae_features or max(4 * self.hidden, 2 * self.features)
        k = self.sae_k or max(2, math.ceil(2 * self.active_prob * self.features))
        return m, min(k, m)

    def with_(self, **changes: Any) -> SuperpositionConfig:
        """Return a copy with ``changes`` applied."""
        return replace(self, **changes)


def _gen(seed: int | Sequence[int]) -> torch.Generator:
    s = seed if isinstance(seed, int) else int(sum(int(v) * 1_000_003 ** i for i, v in enumerate(seed)))
    return torch.Generator().manual_seed(s % (2**63))


def random_orthogonal(d: int, gen: torch.Generator) -> Tensor:
    """Haar-random orthogonal ``d x d`` matrix (float64; QR with sign correction)."""
    q, r = torch.linalg.qr(torch.randn(d, d, generator=gen, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r)).where(torch.diagonal(r) != 0, torch.ones(d, dtype=q.dtype))


def planar_rotation(d: int, angle: float, gen: torch.Generator) -> Tensor:
    r"""Rotation by ``angle`` in :math:`\lfloor d/2 \rfloor` random orthogonal planes (float64).

    :math:`R = Q B Q^\top` with a Haar-random :math:`Q` and :math:`B` block-diagonal with 2x2 blocks
    :math:`\mathrm{rot}(\theta)` (and a 1 for odd ``d``). ``angle = 0`` gives the identity.
    """
    q = random_orthogonal(d, gen)
    b = torch.eye(d, dtype=torch.float64)
    c, s = math.cos(angle), math.sin(angle)
    for i in range(0, d - 1, 2):
        b[i, i], b[i, i + 1], b[i + 1, i], b[i + 1, i + 1] = c, -s, s, c
    return q @ b @ q.T


def neuron_purity(directions: Tensor) -> float:
    r""":math:`\frac1n\sum_i \max_j |D_{ji}| / \|D_{:,i}\|`: 1 when every column lies on one axis."""
    d = directions.double()
    return float((d.abs().amax(0) / d.norm(dim=0).clamp_min(1e-12)).mean())


@dataclass(frozen=True)
class PlantedTeacher:
    r"""The shared part of a teacher family (see the module docs).

    Attributes
    ----------
    a : Tensor, shape (n, D)
        Unit feature detectors :math:`a_i`.
    tau : float
        Feature threshold.
    scale : float
        Feature scale :math:`s`, chosen so that :math:`\mathbb E f_i^2 = 1`.
    e : Tensor, shape (d, n)
        Unit feature directions in the unrotated hidden layer.
    w_out : Tensor, shape (C, d)
        Readout of the unrotated hidden layer.
    b_out : Tensor, shape (C,)
        Output bias.
    """

    a: Tensor
    tau: float
    scale: float
    e: Tensor
    w_out: Tensor
    b_out: Tensor

    def features(self, x: Tensor) -> Tensor:
        """Planted features ``(N, n)``."""
        return self.scale * torch.relu(x.double() @ self.a.double().T - self.tau)

    def network(self, rotation: Tensor | None = None) -> nn.Sequential:
        """Teacher ``k`` as ``Sequential(Linear(D, n), ReLU, Linear(n, d), Linear(d, C))`` (float32)."""
        rot = torch.eye(self.e.shape[0], dtype=torch.float64) if rotation is None else rotation.double()
        n, dim_in = self.a.shape
        d, c = self.e.shape[0], self.w_out.shape[0]
        net = student_network(dim_in, n, d, c, seed=0)
        with torch.no_grad():
            net[0].weight.copy_(self.scale * self.a)
            net[0].bias.fill_(-self.scale * self.tau)
            net[2].weight.copy_(rot @ self.e.double())
            net[2].bias.zero_()
            net[3].weight.copy_(self.w_out.double() @ rot.T)
            net[3].bias.copy_(self.b_out)
        return net.eval()


def student_network(
    input_dim: int, features: int, hidden: int, classes: int, *, seed: int
) -> nn.Sequential:
    """Build the teacher/student architecture, PyTorch-default initialised from ``seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        return nn.Sequential(
            nn.Linear(input_dim, features), nn.ReLU(), nn.Linear(features, hidden),
            nn.Linear(hidden, classes),
        )


def make_teacher(cfg: SuperpositionConfig, seed: int) -> PlantedTeacher:
    """Draw the shared teacher parameters for ``seed`` (see the module docs)."""
    g = _gen([seed, 1])
    n, d = cfg.features, cfg.hidden
    a = torch.randn(n, cfg.input_dim, generator=g, dtype=torch.float64)
    a /= a.norm(dim=1, keepdim=True)
    normal = torch.distributions.Normal(0.0, 1.0)
    tau = float(normal.icdf(torch.tensor(1.0 - cfg.active_prob, dtype=torch.float64)))
    # E[(z - tau)_+^2] for z ~ N(0, 1)
    second = (1 + tau**2) * cfg.active_prob - tau * math.exp(-0.5 * tau**2) / math.sqrt(2 * math.pi)
    if n == d:
        e = torch.eye(d, dtype=torch.float64)
    else:
        e = torch.randn(d, n, generator=g, dtype=torch.float64)
        e /= e.norm(dim=0, keepdim=True)
    # Readout scaled so that the logits have O(1) spread for any n / d.
    w_out = torch.randn(cfg.classes, d, generator=g, dtype=torch.float64) * (2.0 / math.sqrt(n))
    b_out = torch.randn(cfg.classes, generator=g, dtype=torch.float64)
    return PlantedTeacher(a=a.float(), tau=tau, scale=1.0 / math.sqrt(second), e=e.float(),
                          w_out=w_out.float(), b_out=b_out.float())


def sample_inputs(n: int, dim: int, gen: torch.Generator) -> Tensor:
    r"""Draw ``n`` inputs from :math:`\mathcal N(0, I)` (float32)."""
    return torch.randn(n, dim, generator=gen)


def _hidden(model: nn.Module, x: Tensor) -> Tensor:
    return model[2](model[1](model[0](x)))


def train_student(
    teacher: nn.Sequential, cfg: SuperpositionConfig, seed: int
) -> tuple[nn.Sequential, dict[str, float]]:
    """Train a student from init seed ``seed`` to imitate ``teacher``: logit MSE + ``hint`` × hidden MSE.

    Returns the student (eval mode) and its last-100-steps mean losses.
    """
    width = cfg.student_width * teacher[0].out_features
    student = student_network(cfg.input_dim, width, cfg.hidden, cfg.classes, seed=seed)
    if cfg.student_optimizer == "adam":
        opt: torch.optim.Optimizer = torch.optim.Adam(student.parameters(), lr=cfg.student_lr)
    elif cfg.student_optimizer == "sgd":
        opt = torch.optim.SGD(student.parameters(), lr=cfg.student_lr, momentum=0.9)
    else:
        raise ValueError(f"student_optimizer must be 'adam' or 'sgd', got {cfg.student_optimizer!r}")
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.student_steps)
    g = _gen([seed, 2])
    tail_out, tail_hint = [], []
    for step in range(cfg.student_steps):
        x = sample_inputs(cfg.student_batch, cfg.input_dim, g)
        with torch.no_grad():
            h_t = _hidden(teacher, x)
            y_t = teacher[3](h_t)
        h_s = _hidden(student, x)
        loss_out = (student[3](h_s) - y_t).pow(2).mean()
        loss_hint = (h_s - h_t).pow(2).mean()
        loss = loss_out + cfg.hint * loss_hint if cfg.hint > 0 else loss_out
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step >= cfg.student_steps - 100:
            tail_out.append(float(loss_out.detach()))
            tail_hint.append(float(loss_hint.detach()))
    return student.eval(), {"loss_out": sum(tail_out) / len(tail_out),
                            "loss_hint": sum(tail_hint) / len(tail_hint)}


def activation_map_align(
    model: nn.Module, target: nn.Module, *, layer: str, probe: Tensor, kind: str = "orthogonal"
) -> tuple[nn.Module, Tensor]:
    r"""Align ``layer`` by a map fitted on probe activations, the other groups by OTFusion (weights).

    The non-feature baselines of :mod:`fedot.fusion.sae`, on centred activations
    :math:`H_A` (model) and :math:`H_B` (target), rows = probe inputs:
    ``kind="orthogonal"``: :math:`M = \arg\min_{M^\top M = I} \|H_A M^\top - H_B\|_F` (polar factor of
    :math:`H_B^\top H_A`, orthogonal Procrustes); ``kind="lstsq"``: :math:`M = H_B^\top H_A
    (H_A^\top H_A)^{-1}` (least squares, any invertible map). Applied like the SAE map
    (producers :math:`W \mapsto M W`, consumers :math:`W' \mapsto W' M^+`). Returns the aligned model
    and :math:`M` (maps the model's hidden layer to the target's).
    """
    if kind not in ("orthogonal", "lstsq"):
        raise ValueError(f"kind must be 'orthogonal' or 'lstsq', got {kind!r}")
    spec = spec_for(target)
    h_a = activations(model, spec, probe, (layer,))[layer].T.double()
    h_b = activations(target, spec, probe, (layer,))[layer].T.double()
    h_a, h_b = h_a - h_a.mean(0), h_b - h_b.mean(0)
    ref = _reference(target)
    if kind == "orthogonal":
        u, _, vh = torch.linalg.svd(h_b.T @ h_a, full_matrices=False)
        m_map = u @ vh
        back = m_map
    else:
        gram = h_a.T @ h_a
        eye = torch.eye(gram.shape[0], dtype=gram.dtype)
        gram += 1e-8 * float(torch.trace(gram)) / gram.shape[0] * eye
        m_map = torch.linalg.solve(gram, h_a.T @ h_b).T
        back = torch.linalg.pinv(m_map).T
    gmap = GroupMap(forward=m_map.to(ref.dtype), backward=back.to(ref.dtype))
    with torch.no_grad():
        state, _, _, _ = align_state(_state(model, ref), _state(target, ref), spec,
                                     _Options("weights", "exact", 0.01, "uniform", 10_000, None),
                                     overrides={layer: gmap}, keep_plans=False)
    return _load(target, state), m_map


def _perm_matrix(perm: Tensor | None, d: int) -> Tensor | None:
    if perm is None:
        return None
    m = torch.zeros(d, d, dtype=torch.float64)
    m[torch.arange(d), perm.cpu()] = 1.0
    return m


def run_pair(cfg: SuperpositionConfig, seed: int) -> dict[str, Any]:
    r"""One teacher family, two students (A: ``k = 0``, B: ``k = 1``), every pair-fusion method.

    Every method aligns B to A and averages the pair (equal weights; for two models this is exactly
    one-iteration :func:`fedot.fusion.fuse` with target A). Methods (:data:`PAIR_METHODS`):
    ``average`` (no alignment), ``ot-weights`` / ``ot-activations`` (OTFusion, exact; the hidden
    layer can only be permuted), ``rebasin`` (weight matching), ``sae-ot`` / ``sae-ot-lstsq``
    (:func:`fedot.fusion.sae_align` on the hidden layer with ``map="orthogonal"`` / ``"lstsq"``,
    the same two SAEs; first layer by OTFusion/weights), ``act-procrustes`` / ``act-lstsq``
    (:func:`activation_map_align`: the same map kinds fitted directly on probe activations, no
    features); reference ``ensemble`` (mean of the two students' logits).

    Returns
    -------
    dict
        ``config``, ``seed``, ``purity`` (neuron purity of each teacher's feature directions),
        ``students`` (training losses and test metrics), ``methods`` (method -> ``nmse_teacher``:
        test MSE to the teacher logits / their variance, ``agree_teacher`` and ``agree_ensemble``:
        arg-max agreement, ``nmse_ensemble``, ``hidden_error``: :math:`\|h_A - \tilde h_B\|_F /
        \|h_A - \bar h_A\|_F` of the aligned B on test inputs, ``map_error``:
        :math:`\|M - M^\star\|_F / \|M^\star\|_F` of its hidden map where known, ``time_s``).
    """
    t_start = time.perf_counter()
    teacher = make_teacher(cfg, seed)
    g_rot = _gen([seed, 3])
    rots = [planar_rotation(cfg.hidden, cfg.angle, g_rot) for _ in range(2)]
    teachers = [teacher.network(r) for r in rots]
    students, train_info = [], []
    for k in range(2):
        best: tuple[float, nn.Sequential, dict[str, float]] | None = None
        for attempt in range(max(1, cfg.max_tries)):
            s, info = train_student(teachers[k], cfg, seed=1000 * seed + 10 + k + 100 * attempt)
            total = info["loss_out"] + (info["loss_hint"] if cfg.hint > 0 else 0.0)
            info = {**info, "tries": attempt + 1}
            if best is None or total < best[0]:
                best = (total, s, info)
            if total <= cfg.accept_loss:
                break
        assert best is not None
        students.append(best[1])
        train_info.append(best[2])
    a, b = students
    g_data = _gen([seed, 4])
    probe = sample_inputs(cfg.probe_size, cfg.input_dim, g_data)
    x_test = sample_inputs(cfg.test_size, cfg.input_dim, g_data)
    with torch.no_grad():
        y_teacher = teachers[0](x_test)
        y_ens = 0.5 * (a(x_test) + b(x_test))
        h_a = _hidden(a, x_test).double()
    var_t = float(y_teacher.var(0).sum())
    var_e = float(y_ens.var(0).sum())
    h_scale = float((h_a - h_a.mean(0)).norm()) or 1.0
    truth = None if cfg.hint <= 0 else (rots[0] @ rots[1].T)

    def metrics(model: nn.Module) -> dict[str, float]:
        with torch.no_grad():
            y = model(x_test)
        return {
            "nmse_teacher": float((y - y_teacher).pow(2).mean(0).sum()) / var_t,
            "nmse_ensemble": float((y - y_ens).pow(2).mean(0).sum()) / var_e,
            "agree_teacher": float((y.argmax(1) == y_teacher.argmax(1)).float().mean()),
            "agree_ensemble": float((y.argmax(1) == y_ens.argmax(1)).float().mean()),
        }

    def map_error(m_map: Tensor | None) -> float:
        if truth is None or m_map is None:
            return math.nan
        return float((m_map.double() - truth).norm() / truth.norm())

    class _Ens(nn.Module):
        def forward(self, x: Tensor) -> Tensor:
            return 0.5 * (a(x) + b(x))

    methods: dict[str, dict[str, Any]] = {"ensemble": {**metrics(_Ens()), "hidden_error": math.nan,
                                                       "map_error": math.nan, "time_s": 0.0}}
    d = cfg.hidden
    m_feat, k_feat = cfg.sae_options()
    sae_info: dict[str, float] = {"features": m_feat, "k": k_feat}
    saes: tuple[Any, Any] | None = None
    for method in PAIR_METHODS:
        t0 = time.perf_counter()
        m_map: Tensor | None = None
        if method == "average":
            aligned = b
            m_map = torch.eye(d, dtype=torch.float64)
        elif method in ("ot-weights", "ot-activations"):
            metric = "weights" if method == "ot-weights" else "activations"
            res = align(b, a, metric=metric, probe=probe if metric == "activations" else None)
            aligned = res.model
            m_map = _perm_matrix(res.permutations.get(HIDDEN_GROUP), d)
        elif method == "rebasin":
            rb = weight_matching(b, a, seed=seed)
            aligned = rb.model
            m_map = _perm_matrix(rb.permutations[HIDDEN_GROUP], d)
        elif method in ("sae-ot", "sae-ot-lstsq"):
            kind = "orthogonal" if method == "sae-ot" else "lstsq"
            sres = sae_align(b, a, layer=HIDDEN_GROUP, probe=probe, features=m_feat, k=k_feat,
                             steps=cfg.sae_steps, seed=seed, map=kind,
                             sae_model=saes[0] if saes else None, sae_target=saes[1] if saes else None)
            saes = (sres.sae_model, sres.sae_target)  # trained once, reused by the lstsq variant
            aligned, m_map = sres.model, sres.map
            sae_info[f"probe_map_error_{kind}"] = float(sres.map_error)
        else:
            kind = "orthogonal" if method == "act-procrustes" else "lstsq"
            aligned, m_map = activation_map_align(b, a, layer=HIDDEN_GROUP, probe=probe, kind=kind)
        fused = average_models([a, aligned]).eval()
        elapsed = time.perf_counter() - t0
        with torch.no_grad():
            h_b = _hidden(aligned, x_test).double()
        methods[method] = {
            **metrics(fused),
            "hidden_error": float((h_a - h_b).norm()) / h_scale,
            "map_error": map_error(m_map),
            "time_s": elapsed,
        }
    student_rows = []
    for k, s in enumerate(students):
        with torch.no_grad():
            y = s(x_test)
        student_rows.append({
            **train_info[k],
            "nmse_teacher": float((y - y_teacher).pow(2).mean(0).sum()) / var_t,
            "agree_teacher": float((y.argmax(1) == y_teacher.argmax(1)).float().mean()),
        })
    return {
        "config": asdict(cfg),
        "seed": int(seed),
        "features": cfg.features,
        "purity": [neuron_purity(r @ teacher.e.double()) for r in rots],
        "sae": sae_info,
        "students": student_rows,
        "methods": methods,
        "time_s": time.perf_counter() - t_start,
    }
