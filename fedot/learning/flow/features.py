r"""A small seeded CNN classifier for 28x28 digits whose penultimate layer is a feature space.

The Fréchet distance of image generators is usually measured on Inception features (FID); for
28x28 MNIST without downloaded weights fedot trains this classifier once per seed on the run's
training images and measures distances on its 64 penultimate ReLU features.

References
----------
Heusel et al., "GANs trained by a two time-scale update rule converge to a local Nash
equilibrium", NeurIPS 2017 (FID). LeCun et al., "Gradient-based learning applied to document
recognition", Proc. IEEE 1998 (MNIST, small CNNs).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["FeatureCNN28", "train_feature_cnn"]


class FeatureCNN28(nn.Module):
    r"""Classifier for ``(B, 1, 28, 28)`` images with a ``features`` head (penultimate layer).

    ``Conv5x5(1 -> 8, stride 2) -> ReLU -> Conv3x3(8 -> 16, stride 2) -> ReLU -> Flatten ->
    Linear(16 * 49, 64) -> ReLU`` (the features, 64-dimensional) ``-> Linear(64, classes)``
    (28 -> 14 -> 7; about 0.15 M multiply-adds per image, cheap to train on a CPU).

    Parameters
    ----------
    classes : int, default 10
        Number of classes.
    features : int, default 64
        Width of the penultimate layer.
    seed : int, default 0
        Initialisation seed (global RNG untouched).
    """

    def __init__(self, classes: int = 10, features: int = 64, *, seed: int = 0) -> None:
        super().__init__()
        if classes < 2 or features < 1:
            raise ValueError(f"need classes >= 2 and features >= 1, got {classes}, {features}")
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(int(seed))
            self.body = nn.Sequential(
                nn.Conv2d(1, 8, 5, stride=2, padding=2), nn.ReLU(),
                nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
                nn.Flatten(), nn.Linear(16 * 49, features), nn.ReLU(),
            )
            self.head = nn.Linear(features, classes)

    def features(self, x: Tensor) -> Tensor:
        """Penultimate ReLU features ``(B, features)`` of images ``(B, 1, 28, 28)``."""
        if x.ndim != 4 or tuple(x.shape[1:]) != (1, 28, 28):
            raise ValueError(f"FeatureCNN28 expects (B, 1, 28, 28) images, got {tuple(x.shape)}")
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        """Class logits ``(B, classes)``."""
        return self.head(self.features(x))


def train_feature_cnn(
    x: np.ndarray, y: np.ndarray, *, seed: int, epochs: int = 6, batch_size: int = 64,
    lr: float = 3e-3,
) -> FeatureCNN28:
    """Train :class:`FeatureCNN28` with Adam and cross-entropy; deterministic for a seed.

    Parameters
    ----------
    x : numpy.ndarray
        Training images ``(N, 1, 28, 28)`` (any fixed scaling; fedot uses [-1, 1]).
    y : numpy.ndarray
        Integer labels ``(N,)`` in ``[0, classes)``; ``classes = max(y) + 1``.
    seed : int
        Seeds the initialisation and the minibatch order (``numpy.random.default_rng``).
    epochs, batch_size, lr : int, int, float
        Training budget: ``epochs`` passes over shuffled minibatches of ``batch_size``.

    Returns
    -------
    FeatureCNN28
        The trained classifier, in eval mode, on the CPU.
    """
    xs = torch.as_tensor(np.ascontiguousarray(x), dtype=torch.float32)
    ys = torch.as_tensor(np.asarray(y), dtype=torch.int64)
    if xs.ndim != 4 or len(xs) != len(ys) or len(xs) < batch_size:
        raise ValueError(f"need (N, 1, 28, 28) images and N >= batch_size labels, got "
                         f"{tuple(xs.shape)} and {tuple(ys.shape)}")
    model = FeatureCNN28(classes=int(ys.max()) + 1, seed=seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    model.train()
    for _ in range(epochs):
        order = torch.as_tensor(rng.permutation(len(xs)))
        for start in range(0, len(xs) - batch_size + 1, batch_size):
            idx = order[start:start + batch_size]
            loss = nn.functional.cross_entropy(model(xs[idx]), ys[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()
