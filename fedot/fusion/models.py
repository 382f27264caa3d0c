"""Small residual networks with explicit permutation specs, for tests and documentation.

Both models keep one residual stream of ``width`` units; every tensor that writes into the stream
(embedding or stem, the last layer of every residual branch, the norms on the stream) and every
tensor that reads from it share the permutation group ``"res"``; the hidden layer of block ``i`` is
group ``"blocks.i"``. The skip connection adds stream unit ``j`` to branch unit ``j``, so permuting
the stream consistently everywhere leaves the function unchanged, while giving the branch outputs
their own permutation would not (Ainsworth et al. 2023, Sec. 3; Imfeld et al. 2024).

Initialisation is seeded like :func:`fedot.learning.build_model`: the global RNG state is forked and
restored, so building a model never changes it.

References
----------
.. [1] K. He, X. Zhang, S. Ren, J. Sun, "Deep Residual Learning for Image Recognition", CVPR 2016.
.. [2] S. K. Ainsworth, J. Hayase, S. Srinivasa, "Git Re-Basin: Merging Models modulo Permutation
   Symmetries", ICLR 2023.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from fedot.fusion.spec import PermutationSpec, conv_axes, linear_axes, norm_axes

__all__ = ["ResidualCNN", "ResidualMLP"]


class _MLPBlock(nn.Module):
    """Pre-norm residual branch ``x + fc2(relu(fc1(norm(x))))``."""

    def __init__(self, width: int, hidden: int, norm: bool) -> None:
        super().__init__()
        self.norm: nn.Module = nn.LayerNorm(width) if norm else nn.Identity()
        self.fc1 = nn.Linear(width, hidden)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.fc2(self.act(self.fc1(self.norm(x))))


class ResidualMLP(nn.Module):
    r"""Residual MLP: ``Flatten -> Linear(d, width) -> blocks -> Linear(width, num_outputs)``.

    Block ``i`` computes :math:`x + W_2 \,\mathrm{relu}(W_1 \mathrm{LN}(x) + b_1) + b_2`
    (pre-norm; ``norm=False`` drops the LayerNorm).

    Parameters
    ----------
    in_features : int or tuple of int
        Input size, or input shape (flattened).
    num_outputs : int
        Number of outputs (never permuted).
    width : int, default 16
        Residual stream width (group ``"res"``).
    hidden : int, default 32
        Hidden width of every block (group ``"blocks.i"``).
    num_blocks : int, default 2
        Number of residual blocks.
    norm : bool, default True
        Pre-norm ``LayerNorm`` on the stream in every block.
    seed : int, default 0
        Initialisation seed (the global RNG state is left unchanged).
    """

    def __init__(
        self,
        in_features: int | tuple[int, ...],
        num_outputs: int,
        *,
        width: int = 16,
        hidden: int = 32,
        num_blocks: int = 2,
        norm: bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__()
        d = in_features if isinstance(in_features, int) else math.prod(in_features)
        self.norm = norm
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(seed)
            self.flatten = nn.Flatten()
            self.embed = nn.Linear(d, width)
            self.blocks = nn.ModuleList(_MLPBlock(width, hidden, norm) for _ in range(num_blocks))
            self.head = nn.Linear(width, num_outputs)

    def forward(self, x: Tensor) -> Tensor:
        """Map a batch ``(N, *in_shape)`` to ``(N, num_outputs)``."""
        x = self.embed(self.flatten(x))
        for block in self.blocks:
            x = block(x)
        return self.head(x)

    def permutation_spec(self) -> PermutationSpec:
        """Spec with the shared stream group ``"res"`` and one group ``"blocks.i"`` per block.

        Returns
        -------
        PermutationSpec
            Activations: the stream after the embedding and after every block (``"res"``), the
            pre-activation ``fc1`` output of each block.
        """
        axes = linear_axes("embed", "res", None)
        blocks = [f"blocks.{i}" for i in range(len(self.blocks))]
        for b in blocks:
            if self.norm:
                axes.update(norm_axes(f"{b}.norm", "res"))
            axes.update(linear_axes(f"{b}.fc1", b, "res"))
            axes.update(linear_axes(f"{b}.fc2", "res", b))
        axes.update(linear_axes("head", None, "res"))
        acts = {"res": ("embed", *blocks), **{b: (f"{b}.fc1",) for b in blocks}}
        return PermutationSpec(axes=axes, order=("res", *blocks), activations=acts)


class _ConvBlock(nn.Module):
    """Basic residual block ``relu(x + bn2(conv2(relu(bn1(conv1(x))))))``."""

    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(width, hidden, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.act = nn.ReLU()
        self.conv2 = nn.Conv2d(hidden, width, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(x + self.bn2(self.conv2(self.act(self.bn1(self.conv1(x))))))


class ResidualCNN(nn.Module):
    """Residual CNN: conv-BN-ReLU stem, basic blocks, global average pool, ``Linear`` head.

    Parameters
    ----------
    in_channels : int
        Input channels.
    num_outputs : int
        Number of outputs (never permuted).
    width : int, default 8
        Stream channels (group ``"res"``).
    hidden : int, default 8
        Channels inside every block (group ``"blocks.i"``).
    num_blocks : int, default 2
        Number of residual blocks.
    seed : int, default 0
        Initialisation seed (the global RNG state is left unchanged).
    """

    def __init__(
        self,
        in_channels: int,
        num_outputs: int,
        *,
        width: int = 8,
        hidden: int = 8,
        num_blocks: int = 2,
        seed: int = 0,
    ) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(seed)
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()
            )
            self.blocks = nn.ModuleList(_ConvBlock(width, hidden) for _ in range(num_blocks))
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.flatten = nn.Flatten()
            self.head = nn.Linear(width, num_outputs)

    def forward(self, x: Tensor) -> Tensor:
        """Map a batch ``(N, C, H, W)`` to ``(N, num_outputs)``."""
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.head(self.flatten(self.pool(x)))

    def permutation_spec(self) -> PermutationSpec:
        """Spec with the shared stream group ``"res"`` (stem, every ``conv2``/``bn2``, head input).

        Returns
        -------
        PermutationSpec
            Activations: the stream after the stem and after every block (``"res"``), the
            pre-activation ``bn1`` output of each block.
        """
        axes = conv_axes("stem.0", "res", None, bias=False)
        axes.update(norm_axes("stem.1", "res", running_stats=True))
        blocks = [f"blocks.{i}" for i in range(len(self.blocks))]
        for b in blocks:
            axes.update(conv_axes(f"{b}.conv1", b, "res", bias=False))
            axes.update(norm_axes(f"{b}.bn1", b, running_stats=True))
            axes.update(conv_axes(f"{b}.conv2", "res", b, bias=False))
            axes.update(norm_axes(f"{b}.bn2", "res", running_stats=True))
        axes.update(linear_axes("head", None, "res"))
        acts = {"res": ("stem", *blocks), **{b: (f"{b}.bn1",) for b in blocks}}
        return PermutationSpec(axes=axes, order=("res", *blocks), activations=acts)
