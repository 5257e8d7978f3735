"""Figures for notebook 02: training curves, confusion matrix, per-class accuracy.

Plotting code that teaches nothing itself; the numbers come from ``helpers.evaluation``.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np

from helpers.evaluation import confusion_matrix, per_class_accuracy


def plot_training_curves(history: dict[str, Sequence[float]]) -> plt.Figure:
    """Plots loss and accuracy per epoch, training and validation side by side.

    Args:
        history: ``keras.callbacks.History.history`` (or the saved record's ``history``).

    Returns:
        The figure.
    """
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(11, 3.5))
    epochs = np.arange(1, len(history["loss"]) + 1)
    for key, label in (("loss", "training"), ("val_loss", "validation")):
        if key in history:
            loss_axis.plot(epochs, history[key], marker=".", label=label)
    for key, label in (
        ("accuracy", "training"),
        ("val_accuracy", "validation"),
        ("val_pgd_accuracy", "validation, under PGD"),
    ):
        if key in history:
            accuracy_axis.plot(epochs, history[key], marker=".", label=label)
    loss_axis.set(xlabel="epoch", ylabel="cross-entropy", title="Loss", yscale="log")
    accuracy_axis.set(xlabel="epoch", ylabel="accuracy", title="Accuracy")
    for axis in (loss_axis, accuracy_axis):
        axis.legend()
        axis.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def plot_confusion_matrix(labels, predictions, class_names: Sequence[str]) -> plt.Figure:
    """Shows the row-normalised confusion matrix on a log colour scale (mistakes stand out).

    Args:
        labels: True class ids.
        predictions: Predicted class ids.
        class_names: Name of each class.

    Returns:
        The figure.
    """
    from matplotlib.colors import LogNorm

    num_classes = len(class_names)
    matrix = confusion_matrix(labels, predictions, num_classes).astype(float)
    rows = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, rows, out=np.zeros_like(matrix), where=rows > 0)
    size = 4 + 0.16 * num_classes
    figure, axis = plt.subplots(figsize=(size, size))
    image = axis.imshow(np.where(shares > 0, shares, np.nan), cmap="viridis", norm=LogNorm(1e-3, 1))
    axis.set(
        xlabel="predicted class",
        ylabel="true class",
        title="Confusion matrix (share of each true class)",
    )
    ticks = np.arange(num_classes)
    short = [name if len(name) <= 22 else name[:20] + "…" for name in class_names]
    axis.set_xticks(ticks, short, rotation=90, fontsize=6 if num_classes > 15 else 9)
    axis.set_yticks(ticks, short, fontsize=6 if num_classes > 15 else 9)
    figure.colorbar(image, ax=axis, fraction=0.04)
    figure.tight_layout()
    return figure


def plot_per_class_accuracy(labels, predictions, class_names: Sequence[str]) -> plt.Figure:
    """Plots each class's accuracy, worst first, with the overall accuracy as a line.

    Args:
        labels: True class ids.
        predictions: Predicted class ids.
        class_names: Name of each class.

    Returns:
        The figure.
    """
    accuracies = per_class_accuracy(labels, predictions, len(class_names))
    order = np.argsort(np.nan_to_num(accuracies, nan=2.0))
    figure, axis = plt.subplots(figsize=(10, 0.18 * len(class_names) + 1.5))
    axis.barh(np.arange(len(order)), accuracies[order], color="tab:blue")
    axis.set_yticks(np.arange(len(order)), [class_names[i] for i in order], fontsize=7)
    axis.invert_yaxis()
    overall = np.mean(np.asarray(labels) == np.asarray(predictions))
    axis.axvline(overall, color="tab:red", linestyle="--", label=f"overall {overall:.2%}")
    axis.set(
        xlabel="accuracy",
        title="Accuracy per class (worst first)",
        xlim=(max(0.0, np.nanmin(accuracies) - 0.05), 1.0),
    )
    axis.legend(loc="lower right")
    figure.tight_layout()
    return figure
