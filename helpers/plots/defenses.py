"""Figures for notebooks 06 and 07 (pre-processing defences and their evaluation)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure


def plot_transformations(
    images: np.ndarray,
    transformed: Mapping[str, np.ndarray],
    *,
    class_names: Sequence[str] | None = None,
    labels=None,
) -> Figure:
    """Shows a few images (top row) and each defence's version of them (one row each).

    Args:
        images: float32 (N, H, W, C) in [0, 1]; N columns are drawn.
        transformed: Row title -> transformed images of the same shape.
        class_names: Names for the column titles (with ``labels``).
        labels: Class ids of ``images``.

    Returns:
        The matplotlib ``Figure``.
    """
    rows = {"original": images, **transformed}
    figure, axes = plt.subplots(
        len(rows), len(images), figsize=(1.3 * len(images), 1.4 * len(rows)), squeeze=False
    )
    for row, (title, batch) in enumerate(rows.items()):
        for column, image in enumerate(batch):
            axis = axes[row, column]
            axis.imshow(np.clip(image, 0, 1))
            axis.set_xticks([])
            axis.set_yticks([])
            if column == 0:
                axis.set_ylabel(title, fontsize=8)
            if row == 0 and class_names is not None and labels is not None:
                axis.set_title(class_names[int(labels[column])][:16], fontsize=7)
    figure.tight_layout()
    return figure


def plot_naive_vs_adaptive(
    names: Sequence[str],
    clean: Sequence[float],
    naive: Sequence[float],
    adaptive: Sequence[float],
    *,
    title: str = "",
) -> Figure:
    """Bars per model: clean accuracy, "robust" accuracy under a naive attack, true robust accuracy.

    Args:
        names: Model names (one group of bars each).
        clean: Clean accuracy of each model, in [0, 1].
        naive: Accuracy under the naive evaluation (the one a gradient-masking defence fools).
        adaptive: Accuracy under the adaptive attack (BPDA or EOT; the true figure).
        title: Axes title.

    Returns:
        The figure.
    """
    positions = np.arange(len(names))
    width = 0.27
    figure, axes = plt.subplots(figsize=(max(6.0, 1.3 * len(names)), 3.6))
    for offset, values, label, color in [
        (-width, clean, "clean", "#9e9e9e"),
        (0.0, naive, "naive attack", "#f4a261"),
        (width, adaptive, "adaptive attack (true)", "#2a6f97"),
    ]:
        bars = axes.bar(
            positions + offset, np.asarray(values) * 100, width, label=label, color=color
        )
        axes.bar_label(bars, fmt="%.0f", fontsize=7, padding=1)
    axes.set_xticks(positions, names, rotation=15, ha="right", fontsize=8)
    axes.set_ylabel("accuracy (%)")
    axes.set_ylim(0, 122)  # room for the legend above the tallest bars
    axes.set_yticks(range(0, 101, 20))
    axes.set_title(title)
    axes.legend(fontsize=8, loc="upper center", ncols=3, frameon=False)
    figure.tight_layout()
    return figure
