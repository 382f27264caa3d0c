"""Plot of the label distribution across clients."""

from __future__ import annotations

import logging
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["plot_label_distribution"]

logger = logging.getLogger(__name__)


def plot_label_distribution(counts: np.ndarray, path: str | Path, *, title: str = "") -> Path:
    """Save a stacked bar chart of the label counts of every client as a PNG.

    Parameters
    ----------
    counts : numpy.ndarray
        Array of shape ``(num_partitions, num_classes)``, e.g. from
        :func:`fedot.data.label_counts`.
    path : str or pathlib.Path
        Output file; parent folders are created.
    title : str, optional
        Figure title.

    Returns
    -------
    pathlib.Path
        The written file.

    Notes
    -----
    The figure is drawn on a standalone Agg canvas (no pyplot state), so nothing stays open.
    """
    counts = np.asarray(counts)
    if counts.ndim != 2 or counts.shape[0] == 0 or counts.shape[1] == 0:
        raise ValueError(
            f"counts must be a non-empty 2-D array (clients x classes), got shape {counts.shape}"
        )
    num_clients, num_classes = counts.shape
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)

    fig = Figure(figsize=(max(6.0, 0.35 * num_clients + 2.0), 4.0), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    colours = matplotlib.colormaps["tab10" if num_classes <= 10 else "tab20"]
    clients = np.arange(num_clients)
    bottom = np.zeros(num_clients, dtype=np.float64)
    for c in range(num_classes):
        ax.bar(clients, counts[:, c], bottom=bottom, color=colours(c % colours.N), label=str(c))
        bottom += counts[:, c]
    ax.set_xlabel("client")
    ax.set_ylabel("samples")
    if num_clients <= 30:
        ax.set_xticks(clients)
    if title:
        ax.set_title(title)
    if num_classes <= 20:
        ax.legend(title="label", fontsize="small", bbox_to_anchor=(1.01, 1.0), loc="upper left")
    fig.tight_layout()
    fig.savefig(out, format="png")
    logger.info("saved label distribution plot to %s", out)
    return out
