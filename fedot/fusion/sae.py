r"""Sparse autoencoders per model, and alignment of hidden spaces through OT-matched SAE features.

Neuron alignment (:mod:`fedot.fusion.align`) can only undo *permutations* of hidden units. Hidden
layers that are followed by another linear map (a linear bottleneck, attention value/output
projections, a residual stream read by linear layers only) have a larger symmetry group: any
invertible :math:`M` with :math:`W_1 \mapsto M W_1`, :math:`b_1 \mapsto M b_1`,
:math:`W_2 \mapsto W_2 M^{-1}` leaves the function unchanged, e.g. a rotation. Neurons of such a layer
are not meaningful units, but the *features* that a sparse autoencoder (SAE) finds in its
activations are, up to the same symmetry, and they can be matched across models.

SAE (:class:`SparseAutoencoder`)
--------------------------------
An overcomplete dictionary with :math:`m > d` features (Bricken et al. 2023; Cunningham et al. 2023):

.. math::

    z = \sigma\big(W_e (x - b_d) + b_e\big) \in \mathbb{R}^m_{\ge 0}, \qquad
    \hat x = W_d z + b_d, \qquad \|W_d[:, q]\|_2 = 1,

with :math:`\sigma = \mathrm{ReLU}` and an :math:`\ell_1` penalty :math:`\lambda \|z\|_1` in the loss
(Bricken et al.), or :math:`\sigma = \mathrm{ReLU} \circ \mathrm{TopK}` keeping the ``k`` largest
pre-activations (Gao et al. 2024; no penalty, exact sparsity :math:`\|z\|_0 \le k`). Unit-norm decoder
columns make feature magnitudes comparable and stop the :math:`\ell_1` penalty from being evaded by
shrinking :math:`z`. Training: Adam on :math:`\frac1N\sum\|x - \hat x\|^2 (+ \lambda\|z\|_1)`, columns
renormalised after every step, tied initialisation :math:`W_e = W_d^\top` and :math:`b_d` = the data
mean (Gao et al. 2024). Defaults of :func:`train_sae`: ``features = 4 d``, top-k with
``k = clip(features // 16, 1, 32)``, 1000 steps, learning rate 3e-3, batch 256.

Feature matching and the hidden-space map (:func:`sae_align`)
-------------------------------------------------------------
Let :math:`h_A(x) \in \mathbb{R}^{d_A}` and :math:`h_B(x) \in \mathbb{R}^{d_B}` be the activations of
the chosen group (``layer``) of models A (to align) and B (target) on a shared probe
:math:`x_1..x_N`, :math:`z_A, z_B` their SAE codes and :math:`D_A, D_B` the decoders.

1. **Match features by OT** on their activation profiles over the probe: the cost is
   :math:`C_{pq} = 1 - \rho_{pq}`, :math:`\rho_{pq} = \mathrm{corr}_n(z_{A,p}(x_n), z_{B,q}(x_n))`
   (Pearson; cost 1 for a dead feature). It is invariant to any invertible map of the hidden space
   and to feature scales, so it compares *what* a feature responds to, not how it is embedded.
   Exact OT with uniform marginals gives a one-to-one matching :math:`T`; Sinkhorn a soft one.
2. **Weight the pairs** by plan mass and agreement, :math:`w_{pq} = T_{pq} \max(\rho_{pq}, 0)`, and
   give every feature its typical magnitude: :math:`u_{A,p} = D_A[:, p]\,\mathrm{rms}(z_{A,p})`
   (the vector the feature writes into the hidden space), likewise :math:`u_{B,q}`.
3. **Fit the map through the matched features**:

   .. math::

       M = \arg\min_M \sum_{pq} w_{pq} \|M u_{A,p} - u_{B,q}\|^2,

   in closed form (:func:`fit_feature_map`): ridge least squares (``map="lstsq"``, any invertible
   map), the weighted orthogonal Procrustes solution (``map="orthogonal"``, the default: rotations
   and permutations), or the best permutation (``map="permutation"``, for layers followed by a
   ReLU or a per-unit norm, where only permutations preserve the function).

Why this design. If the two layers are related by :math:`h_B = L h_A` and the SAEs found the same
features, a matched pair satisfies :math:`D_B[:, q] \propto L D_A[:, p]` with
:math:`z_{B,q} = \|L D_A[:, p]\| z_{A,p}`, hence :math:`u_{B,q} = L u_{A,p}` exactly and every
variant returns :math:`M = L` (a permutation gives that permutation, a rotation that rotation),
without any assumption about neurons: only the feature correspondence decides. The fit is a
*linear* version of the soft map :math:`D_B \tilde T^\top E_A` of the design notes: that composition
is not linear (the encoder has a ReLU / top-k) and so cannot be applied to weights, while
:math:`M = U_B W^\top (U_A^\top G^{-1})` has the same form with the encoder replaced by the weighted
least-squares inverse of A's dictionary. The weights :math:`\max(\rho, 0)` let well-matched,
energetic features dominate and silence pairs that the OT had to form between unrelated or dead
features; the Procrustes variant also cannot amplify noise through an ill-conditioned inverse. On
the rotated-bottleneck test problem (two independently seeded top-k SAEs, 64 features, k = 2, on a
16-unit layer; ``tests/fedot/fusion/test_fusion_sae.py``) the orthogonal fit recovered the
rotation to 2-4 % relative Frobenius error over three rotations (800-1000 steps), ``"lstsq"`` to
14-17 %, while an earlier design, least squares on activations transferred through the features
(:math:`\min_M \sum_n \|M h_A - D_B \tilde T^\top z_A - b_{d,B}\|^2`, then its polar factor),
reached only 14-17 %. With a shared probe, direct regression of :math:`h_B` on :math:`h_A` is exact
for this toy problem and is the natural non-feature baseline (as in CCA-based merging); the SAE
route adds an explicit feature-level correspondence (which features are shared, how strongly, which
have no partner: the plan and :math:`\rho`) at the price of SAE reconstruction and matching error.

4. **Apply** the map to every tensor of the group (:class:`fedot.fusion.align.GroupMap`): producer
   rows and biases :math:`W \mapsto M W`, consumer columns :math:`W' \mapsto W' M^+` (for
   orthogonal maps :math:`M^+ = M^\top`). This preserves the function exactly when :math:`M` is
   exact and either the group is *linear* (no nonlinearity or per-unit normalisation between its
   producers and consumers) or :math:`M` is a permutation. The other groups are aligned by OTFusion
   as usual. Non-permutation maps are refused for groups with per-unit parameters other than
   biases (batch norm, layer norm).

Fusion in the SAE basis is :func:`fuse_sae` (same loop as :func:`fedot.fusion.align.fuse`).

References
----------
.. [1] T. Bricken et al., "Towards Monosemanticity: Decomposing Language Models With Dictionary
   Learning", Transformer Circuits Thread, 2023.
.. [2] H. Cunningham, A. Ewart, L. Riggs, R. Huben, L. Sharkey, "Sparse Autoencoders Find Highly
   Interpretable Features in Language Models", ICLR 2024 (arXiv 2023).
.. [3] L. Gao et al., "Scaling and evaluating sparse autoencoders", arXiv:2406.04093, 2024.
.. [4] S. P. Singh, M. Jaggi, "Model Fusion via Optimal Transport", NeurIPS 2020.
.. [5] M. Lan et al., "Sparse Autoencoders Reveal Universal Feature Spaces Across Large Language
   Models", arXiv:2410.06981, 2024.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn

from fedot.fusion.align import (
    GroupMap,
    LayerDiagnostics,
    Method,
    Metric,
    _check_options,
    _load,
    _Options,
    _reference,
    _state,
    activations,
    align_state,
    fuse_with,
)
from fedot.fusion.spec import PermutationSpec, spec_for
from fedot.ot.assignment import transport_plan

__all__ = [
    "SAEAlignmentResult",
    "SAEResult",
    "SparseAutoencoder",
    "feature_cost",
    "fit_feature_map",
    "fuse_sae",
    "sae_align",
    "train_sae",
]

MapKind = Literal["lstsq", "orthogonal", "permutation"]


class SparseAutoencoder(nn.Module):
    r"""Overcomplete sparse autoencoder with unit-norm decoder columns (see module docs).

    Parameters
    ----------
    d : int
        Input (hidden-layer) dimension.
    m : int
        Number of dictionary features (``m > d`` for an overcomplete dictionary).
    k : int, optional
        Top-k sparsity: keep the ``k`` largest pre-activations (Gao et al. 2024).
    l1 : float, optional
        :math:`\ell_1` coefficient used by :func:`train_sae` (ReLU encoder). At most one of ``k``
        and ``l1`` may be given; with neither the encoder is a plain ReLU.
    seed : int, default 0
        Seed of the initialisation (a local :class:`torch.Generator`).
    dtype : torch.dtype, default torch.float32
        Parameter dtype.
    device : torch.device or str, optional
        Parameter device.

    Attributes
    ----------
    W_enc : Parameter, shape (m, d)
    b_enc : Parameter, shape (m,)
    W_dec : Parameter, shape (d, m)
        Dictionary; columns have unit norm.
    b_dec : Parameter, shape (d,)
    """

    def __init__(
        self,
        d: int,
        m: int,
        *,
        k: int | None = None,
        l1: float | None = None,
        seed: int = 0,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        if d < 1 or m < 1:
            raise ValueError(f"d and m must be >= 1, got d={d}, m={m}")
        if k is not None and l1 is not None:
            raise ValueError("give at most one of k (top-k) and l1")
        if k is not None and not 1 <= k <= m:
            raise ValueError(f"k must lie in [1, m={m}], got {k}")
        if l1 is not None and not (l1 >= 0 and math.isfinite(l1)):
            raise ValueError(f"l1 must be a finite number >= 0, got {l1}")
        self.d, self.m, self.k, self.l1 = int(d), int(m), k, l1
        gen = torch.Generator().manual_seed(seed)
        w_dec = torch.randn(d, m, generator=gen, dtype=torch.float64)
        w_dec /= w_dec.norm(dim=0, keepdim=True)
        self.W_dec = nn.Parameter(w_dec.to(device=device, dtype=dtype))
        self.W_enc = nn.Parameter(w_dec.T.clone().to(device=device, dtype=dtype))
        self.b_enc = nn.Parameter(torch.zeros(m, device=device, dtype=dtype))
        self.b_dec = nn.Parameter(torch.zeros(d, device=device, dtype=dtype))

    def encode(self, x: Tensor) -> Tensor:
        """Sparse codes ``z`` of a batch ``x`` of shape ``(N, d)`` -> ``(N, m)``, nonnegative."""
        pre = (x - self.b_dec) @ self.W_enc.T + self.b_enc
        if self.k is None:
            return torch.relu(pre)
        vals, idx = pre.topk(self.k, dim=-1)
        return torch.zeros_like(pre).scatter(-1, idx, torch.relu(vals))

    def decode(self, z: Tensor) -> Tensor:
        """Reconstruction ``W_dec z + b_dec`` of codes ``(N, m)`` -> ``(N, d)``."""
        return z @ self.W_dec.T + self.b_dec

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``(x_hat, z)``."""
        z = self.encode(x)
        return self.decode(z), z

    @torch.no_grad()
    def normalize_decoder_(self) -> None:
        """Rescale the decoder columns to unit norm (in place)."""
        self.W_dec.div_(self.W_dec.norm(dim=0, keepdim=True).clamp_min(1e-12))


@dataclass(frozen=True)
class SAEResult:
    r"""Result of :func:`train_sae`.

    Attributes
    ----------
    sae : SparseAutoencoder
        The trained autoencoder (on the device and dtype of the activations).
    recon_history : tuple of float
        Fraction of variance unexplained :math:`\sum\|x - \hat x\|^2 / \sum\|x - \bar x\|^2` on
        all activations, before training and every ``log_every`` steps (last entry: after training).
    history_steps : tuple of int
        Step of each ``recon_history`` entry.
    sparsity : float
        Mean number of active features per sample (:math:`\mathbb{E}\|z\|_0`) after training.
    dead_fraction : float
        Fraction of features that are zero on every activation after training.
    """

    sae: SparseAutoencoder
    recon_history: tuple[float, ...]
    history_steps: tuple[int, ...]
    sparsity: float
    dead_fraction: float

    @property
    def fvu(self) -> float:
        """Final fraction of variance unexplained."""
        return self.recon_history[-1]


def _fvu(sae: SparseAutoencoder, acts: Tensor, centred_ss: float) -> tuple[float, Tensor]:
    with torch.no_grad():
        x_hat, z = sae(acts)
        return float(((acts - x_hat) ** 2).sum()) / centred_ss, z


def train_sae(
    acts: Tensor,
    *,
    features: int | None = None,
    k: int | None = None,
    l1: float | None = None,
    steps: int = 1000,
    lr: float = 3e-3,
    batch_size: int = 256,
    seed: int = 0,
    log_every: int = 100,
) -> SAEResult:
    r"""Train a sparse autoencoder on a matrix of activations.

    Parameters
    ----------
    acts : Tensor, shape (N, d)
        Activations, one sample per row (device and dtype are kept). Not modified.
    features : int, optional
        Dictionary size ``m``; default ``4 d``.
    k : int, optional
        Top-k sparsity. Default (when ``l1`` is not given either): ``clip(features // 16, 1, 32)``.
    l1 : float, optional
        :math:`\ell_1` coefficient for a ReLU SAE (mutually exclusive with ``k``). A sensible scale
        is a fraction of the activations' RMS norm.
    steps : int, default 1000
        Adam steps.
    lr : float, default 3e-3
        Adam learning rate.
    batch_size : int, default 256
        Mini-batch size (sampled with replacement by a seeded generator; capped at ``N``).
    seed : int, default 0
        Seed of the initialisation and of the batch sampling; no global RNG is used.
    log_every : int, default 100
        Evaluate the reconstruction error every this many steps.

    Returns
    -------
    SAEResult
        The SAE, its reconstruction-error history, sparsity and dead-feature fraction.

    Raises
    ------
    ValueError
        If ``acts`` is not a finite 2-D floating tensor or an option is out of range.
    """
    if acts.dim() != 2 or not acts.is_floating_point() or acts.shape[0] < 2:
        raise ValueError(f"acts must be a floating (N >= 2, d) matrix, got shape {tuple(acts.shape)}")
    if not torch.isfinite(acts).all():
        raise ValueError("acts must be finite")
    if steps < 0 or lr <= 0 or batch_size < 1 or log_every < 1:
        raise ValueError("steps must be >= 0, lr > 0, batch_size >= 1 and log_every >= 1")
    n, d = acts.shape
    m = 4 * d if features is None else int(features)
    if k is None and l1 is None:
        k = int(min(32, max(1, m // 16)))
    acts = acts.detach()
    sae = SparseAutoencoder(d, m, k=k, l1=l1, seed=seed, dtype=acts.dtype, device=acts.device)
    with torch.no_grad():
        sae.b_dec.copy_(acts.mean(0))
    centred_ss = float(((acts - acts.mean(0)) ** 2).sum()) or 1.0
    gen = torch.Generator().manual_seed(seed + 1)
    opt = torch.optim.Adam(sae.parameters(), lr=lr)
    history, at = [_fvu(sae, acts, centred_ss)[0]], [0]
    bs = min(batch_size, n)
    with torch.enable_grad():
        for step in range(1, steps + 1):
            idx = torch.randint(n, (bs,), generator=gen).to(acts.device)
            x = acts[idx]
            x_hat, z = sae(x)
            loss = ((x - x_hat) ** 2).sum(-1).mean()
            if l1:
                loss = loss + l1 * z.abs().sum(-1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sae.normalize_decoder_()
            if step % log_every == 0 or step == steps:
                history.append(_fvu(sae, acts, centred_ss)[0])
                at.append(step)
    _, z = _fvu(sae, acts, centred_ss)
    active = z > 0
    return SAEResult(
        sae=sae,
        recon_history=tuple(history),
        history_steps=tuple(at),
        sparsity=float(active.sum(1).double().mean()),
        dead_fraction=float((~active.any(0)).double().mean()),
    )


def feature_cost(z_a: Tensor, z_b: Tensor) -> Tensor:
    r"""Correlation cost :math:`C_{pq} = 1 - \mathrm{corr}(z_{a,p}, z_{b,q})` between feature profiles.

    Parameters
    ----------
    z_a : Tensor, shape (N, m_a)
        Codes of model A's SAE on the probe.
    z_b : Tensor, shape (N, m_b)
        Codes of model B's SAE on the same probe.

    Returns
    -------
    Tensor, shape (m_a, m_b)
        Values in :math:`[0, 2]`; a constant (dead) feature has correlation 0, i.e. cost 1.
    """
    a = z_a - z_a.mean(0)
    b = z_b - z_b.mean(0)
    na, nb = a.norm(dim=0), b.norm(dim=0)
    a = a / torch.where(na > 0, na, torch.ones_like(na))
    b = b / torch.where(nb > 0, nb, torch.ones_like(nb))
    return (1.0 - a.T @ b).clamp(0.0, 2.0)


@dataclass(frozen=True)
class SAEAlignmentResult:
    r"""Result of :func:`sae_align`.

    Attributes
    ----------
    model : torch.nn.Module
        The aligned model (a copy of the target's module).
    map : Tensor, shape (d_target, d_model)
        Hidden-space map :math:`M` applied to ``layer`` (a permutation matrix for
        ``map="permutation"``).
    permutation : Tensor or None
        For ``map="permutation"``: unit ``j`` of the aligned layer = unit ``permutation[j]``.
    feature_plan : Tensor, shape (m_model, m_target)
        OT plan between the two SAEs' features.
    map_error : float
        :math:`\|M h_A - h_B\|_F / \|h_B - \bar h_B\|_F` on the probe: how well the map explains
        the target's activations (0 for an exact re-parametrisation).
    sae_model, sae_target : SparseAutoencoder
        The SAEs used (trained here unless given).
    diagnostics : tuple of LayerDiagnostics
        Per group; the SAE group has ``method="sae"`` and the feature plan's cost and entropy.
    """

    model: nn.Module
    map: Tensor
    permutation: Tensor | None
    feature_plan: Tensor
    map_error: float
    sae_model: SparseAutoencoder
    sae_target: SparseAutoencoder
    diagnostics: tuple[LayerDiagnostics, ...]


@dataclass(frozen=True)
class _SAEOptions:
    features: int | None
    k: int | None
    l1: float | None
    steps: int
    lr: float
    batch_size: int
    match: Method
    reg: float
    map: MapKind
    ridge: float


def _samples(acts: Tensor) -> Tensor:
    """``(units, N * spatial)`` activation matrix -> ``(N * spatial, units)`` samples."""
    return acts.T.contiguous()


def _check_group(spec: PermutationSpec, layer: str, kind: MapKind) -> None:
    if layer not in spec.order:
        raise ValueError(f"unknown layer group {layer!r}; groups are {list(spec.order)}")
    if kind not in ("lstsq", "orthogonal", "permutation"):
        raise ValueError(f"map must be 'lstsq', 'orthogonal' or 'permutation', got {kind!r}")
    if kind != "permutation":
        per_unit = [k for k, ax in spec.axes.items() if len(ax) == 1 and ax[0] == layer
                    and not k.endswith(".bias")]
        if per_unit:
            raise ValueError(f"group {layer!r} has per-unit parameters {per_unit} (normalisation); only "
                             "map='permutation' preserves the function there")


def fit_feature_map(
    u_a: Tensor, u_b: Tensor, weights: Tensor, kind: MapKind, ridge: float = 1e-6
) -> Tensor:
    r"""Fit the hidden-space map :math:`M` through weighted feature pairs (step 3 of the module docs).

    .. math::

        M = \arg\min_M \sum_{pq} w_{pq} \|M u_{A,p} - u_{B,q}\|^2, \qquad
        K = U_B W^\top U_A^\top, \quad G = U_A \operatorname{diag}(W 1) U_A^\top.

    Parameters
    ----------
    u_a : Tensor, shape (d_a, m_a)
        Scaled feature directions of model A (columns).
    u_b : Tensor, shape (d_b, m_b)
        Scaled feature directions of model B.
    weights : Tensor, shape (m_a, m_b)
        Nonnegative pair weights :math:`W`.
    kind : {"lstsq", "orthogonal", "permutation"}
        ``"lstsq"``: :math:`M = K (G + \lambda I)^{-1}` with
        :math:`\lambda = \rho \operatorname{tr}(G) / d_a`; ``"orthogonal"``: the polar factor
        :math:`U V^\top` of :math:`K = U \Sigma V^\top` (weighted orthogonal Procrustes; Schönemann
        1966); ``"permutation"``: the permutation matrix maximising :math:`\langle K, P \rangle`
        (linear assignment; for :math:`u_B = P u_A` this recovers :math:`P` because
        :math:`K = P G` with :math:`G \succeq 0` and :math:`|G_{ij}| \le \sqrt{G_{ii} G_{jj}}`).
    ridge : float, default 1e-6
        Relative ridge :math:`\rho` (``"lstsq"`` only).

    Returns
    -------
    Tensor, shape (d_b, d_a)
        :math:`M` in float64 on the inputs' device.
    """
    ua, ub, w = u_a.double(), u_b.double(), weights.double()
    k_mat = ub @ w.T @ ua.T
    if kind == "orthogonal":
        u, _, vh = torch.linalg.svd(k_mat, full_matrices=False)
        return u @ vh
    if kind == "permutation":
        if k_mat.shape[0] != k_mat.shape[1]:
            raise ValueError("map='permutation' needs equal widths")
        _, cols = linear_sum_assignment(k_mat.cpu().numpy(), maximize=True)
        out = torch.zeros_like(k_mat)
        out[torch.arange(len(cols), device=out.device), torch.as_tensor(cols, device=out.device)] = 1.0
        return out
    gram = (ua * w.sum(1)) @ ua.T
    lam = ridge * float(torch.trace(gram)) / gram.shape[0]
    eye = torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device)
    return torch.linalg.solve(gram + lam * eye, k_mat.T).T


def _group_map(
    x_a: Tensor, x_b: Tensor, sae_a: SparseAutoencoder, sae_b: SparseAutoencoder, layer: str,
    opts: _SAEOptions,
) -> tuple[GroupMap, Tensor, Tensor | None, Tensor, float]:
    """Feature OT, pair weights, map fit and its diagnostics (steps 1-3 of the module docs)."""
    with torch.no_grad():
        z_a, z_b = sae_a.encode(x_a), sae_b.encode(x_b)
        cost = feature_cost(z_a, z_b)
        res = transport_plan(cost, method=opts.match, reg=opts.reg)
        pair_w = res.plan * (1.0 - cost).clamp_min(0.0)
        u_a = sae_a.W_dec * z_a.pow(2).mean(0).sqrt()
        u_b = sae_b.W_dec * z_b.pow(2).mean(0).sqrt()
        m_map = fit_feature_map(u_a, u_b, pair_w, opts.map, opts.ridge)
        perm = None
        if opts.map == "permutation":
            perm = m_map.argmax(1).to(device=x_a.device)
            gmap = GroupMap(index=perm)
        elif opts.map == "orthogonal":
            gmap = GroupMap(forward=m_map.to(x_a.dtype), backward=m_map.to(x_a.dtype))
        else:
            back = torch.linalg.pinv(m_map).T
            gmap = GroupMap(forward=m_map.to(x_a.dtype), backward=back.to(x_a.dtype))
        xa64, xb64 = x_a.double(), x_b.double()
        denom = float((xb64 - xb64.mean(0)).norm()) or 1.0
        map_error = float((xa64 @ m_map.T - xb64).norm()) / denom
        absm = m_map.abs()
        off = math.nan
        if absm.shape[0] == absm.shape[1]:
            off = 1.0 - float(absm.diagonal().sum() / absm.sum())
        diag = LayerDiagnostics(
            group=layer, n_model=x_a.shape[1], n_target=x_b.shape[1], cost=res.cost, entropy=res.entropy,
            off_identity=off, marginal_error=res.marginal_error, method="sae", iterations=res.iterations,
            converged=res.converged,
        )
    gmap = GroupMap(index=gmap.index, forward=gmap.forward, backward=gmap.backward, diagnostics=diag)
    return gmap, m_map.to(x_a.dtype), perm, res.plan, map_error


def _train(x: Tensor, opts: _SAEOptions, seed: int) -> SparseAutoencoder:
    return train_sae(x, features=opts.features, k=opts.k, l1=opts.l1, steps=opts.steps, lr=opts.lr,
                     batch_size=opts.batch_size, seed=seed).sae


def sae_align(
    model: nn.Module,
    target: nn.Module,
    *,
    layer: str,
    probe: Tensor,
    spec: PermutationSpec | None = None,
    sae_model: SparseAutoencoder | None = None,
    sae_target: SparseAutoencoder | None = None,
    features: int | None = None,
    k: int | None = None,
    l1: float | None = None,
    steps: int = 1000,
    lr: float = 3e-3,
    batch_size: int = 256,
    seed: int = 0,
    match: Method = "exact",
    reg: float = 0.01,
    map: MapKind = "orthogonal",
    ridge: float = 1e-6,
    metric: Metric = "weights",
    method: Method = "exact",
) -> SAEAlignmentResult:
    r"""Align ``model`` to ``target``: ``layer`` through matched SAE features, the rest by OTFusion.

    Parameters
    ----------
    model, target : torch.nn.Module
        Models with the same spec (not modified).
    layer : str
        Permutation group whose hidden space is aligned through SAE features (it needs
        activation modules in the spec).
    probe : Tensor
        Shared probe inputs; SAE codes on them define the feature profiles (and the SAE training
        data when the SAEs are not given). Conv groups use every spatial position as a sample.
    spec : PermutationSpec, optional
        Default: derived from ``target``.
    sae_model, sae_target : SparseAutoencoder, optional
        Pretrained SAEs of the layer's activations (e.g. trained by each client). Default: trained
        here on the probe activations with seeds ``seed`` (model) and ``seed + 1`` (target).
    features, k, l1, steps, lr, batch_size
        SAE training options (:func:`train_sae`).
    seed : int, default 0
        Base seed of the SAE training.
    match : {"exact", "emd", "lsa", "sinkhorn"}, default "exact"
        OT solver for the feature matching (cost in :math:`[0, 2]`, ``reg`` absolute).
    reg : float, default 0.01
        Sinkhorn regularisation for the feature matching.
    map : {"lstsq", "orthogonal", "permutation"}, default "orthogonal"
        Hidden-space map fitted through the matched features (:func:`fit_feature_map`): general
        ridge least squares, weighted orthogonal Procrustes, or the best permutation (use it for
        ReLU/normalised groups).
    ridge : float, default 1e-6
        Relative ridge of ``map="lstsq"``.
    metric, method
        OTFusion options for the other groups (:func:`fedot.fusion.align.align`); activations use
        ``probe``.

    Returns
    -------
    SAEAlignmentResult
        Aligned model, hidden map, feature plan, map error, SAEs and diagnostics.

    Raises
    ------
    ValueError
        If ``layer`` is unknown, lacks activation modules, or carries per-unit normalisation
        parameters with a non-permutation map.
    """
    spec = spec_for(target, spec)
    _check_group(spec, layer, map)
    _check_options(metric, method, "uniform", probe, reg)
    opts = _SAEOptions(features, k, l1, int(steps), float(lr), int(batch_size), match, float(reg), map,
                       float(ridge))
    groups = spec.order if metric == "activations" else (layer,)
    acts_m = activations(model, spec, probe, groups)
    acts_t = activations(target, spec, probe, groups)
    x_a, x_b = _samples(acts_m[layer]), _samples(acts_t[layer])
    sae_a = sae_model if sae_model is not None else _train(x_a, opts, seed)
    sae_b = sae_target if sae_target is not None else _train(x_b, opts, seed + 1)
    gmap, m_map, perm, plan, map_error = _group_map(x_a, x_b, sae_a, sae_b, layer, opts)
    ref = _reference(target)
    ot_opts = _Options(metric, method, 0.01, "uniform", 10_000, None)
    with torch.no_grad():
        state, _, _, diags = align_state(
            _state(model, ref), _state(target, ref), spec, ot_opts,
            model_acts=acts_m if metric == "activations" else None,
            target_acts=acts_t if metric == "activations" else None,
            overrides={layer: gmap}, keep_plans=False,
        )
        aligned = _load(target, state)
    return SAEAlignmentResult(model=aligned, map=m_map, permutation=perm, feature_plan=plan,
                              map_error=map_error, sae_model=sae_a, sae_target=sae_b,
                              diagnostics=tuple(diags))


def fuse_sae(
    models: Sequence[nn.Module],
    *,
    layer: str,
    probe: Tensor,
    target: nn.Module | None = None,
    weights: Sequence[float] | Tensor | None = None,
    spec: PermutationSpec | None = None,
    saes: Sequence[SparseAutoencoder] | None = None,
    features: int | None = None,
    k: int | None = None,
    l1: float | None = None,
    steps: int = 1000,
    lr: float = 3e-3,
    batch_size: int = 256,
    seed: int = 0,
    match: Method = "exact",
    reg: float = 0.01,
    map: MapKind = "orthogonal",
    ridge: float = 1e-6,
    metric: Metric = "weights",
    method: Method = "exact",
    iterations: int = 1,
) -> nn.Module:
    r"""Fuse models after aligning ``layer`` in the SAE-feature basis and the other groups by OTFusion.

    The loop of :func:`fedot.fusion.align.fuse`: every model is aligned to the current estimate with
    :func:`sae_align` and the aligned models are averaged with ``weights``; repeated ``iterations``
    times. SAEs of the models are trained once (seed ``seed + k`` for model ``k``) unless ``saes``
    gives them; the estimate's SAE is that of the target model in the first iteration when the target
    is one of ``models`` and is retrained (seed ``seed + len(models)``) on every new estimate.

    Parameters
    ----------
    models : sequence of torch.nn.Module
        Models to fuse (not modified).
    layer, probe, spec, features, k, l1, steps, lr, batch_size, seed, match, reg, map, ridge
        See :func:`sae_align`.
    metric, method
        See :func:`sae_align`.
    target : torch.nn.Module, optional
        Initial estimate and architecture (default: the first model), as in
        :func:`fedot.fusion.align.fuse`.
    weights : sequence of float or Tensor, optional
        Averaging weights (normalised); default uniform.
    saes : sequence of SparseAutoencoder, optional
        One pretrained SAE per model for ``layer``.
    iterations : int, default 1
        Align-and-average iterations.

    Returns
    -------
    torch.nn.Module
        The fused model (a copy of the target's module).
    """
    anchor = models[0] if target is None and len(models) else target
    if anchor is None:
        raise ValueError("models must not be empty")
    spec = spec_for(anchor, spec)
    _check_group(spec, layer, map)
    _check_options(metric, method, "uniform", probe, reg)
    if saes is not None and len(saes) != len(models):
        raise ValueError(f"saes has {len(saes)} entries for {len(models)} models")
    opts = _SAEOptions(features, k, l1, int(steps), float(lr), int(batch_size), match, float(reg), map,
                       float(ridge))
    ot_opts = _Options(metric, method, 0.01, "uniform", 10_000, None)
    groups = spec.order if metric == "activations" else (layer,)
    model_cache: dict[int, tuple[Mapping[str, Tensor], SparseAutoencoder]] = {}
    est_cache: dict[int, tuple[Mapping[str, Tensor], SparseAutoencoder]] = {}

    def model_entry(k: int) -> tuple[Mapping[str, Tensor], SparseAutoencoder]:
        if k not in model_cache:
            acts = activations(models[k], spec, probe, groups)
            sae = saes[k] if saes is not None else _train(_samples(acts[layer]), opts, seed + k)
            model_cache[k] = (acts, sae)
        return model_cache[k]

    def est_entry(est: nn.Module) -> tuple[Mapping[str, Tensor], SparseAutoencoder]:
        key = id(est)
        if key not in est_cache:
            idx = next((i for i, mod in enumerate(models) if mod is est), None)
            if idx is not None:
                est_cache[key] = model_entry(idx)
            else:
                acts = activations(est, spec, probe, groups)
                est_cache.clear()
                est_cache[key] = (acts, _train(_samples(acts[layer]), opts, seed + len(models)))
        return est_cache[key]

    def align_one(
        k: int, model: nn.Module, est: nn.Module, est_state: dict[str, Tensor], spec: PermutationSpec
    ) -> tuple[dict[str, Tensor], list[LayerDiagnostics]]:
        acts_m, sae_a = model_entry(k)
        acts_t, sae_b = est_entry(est)
        gmap = _group_map(_samples(acts_m[layer]), _samples(acts_t[layer]), sae_a, sae_b, layer, opts)[0]
        state, _, _, diags = align_state(
            _state(model, _reference(est)), est_state, spec, ot_opts,
            model_acts=acts_m if metric == "activations" else None,
            target_acts=acts_t if metric == "activations" else None,
            overrides={layer: gmap}, keep_plans=False,
        )
        return state, diags

    return fuse_with(models, align_one, target=target, weights=weights, spec=spec,
                     iterations=iterations).model

