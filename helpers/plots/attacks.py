"""Figures for the attack notebooks that teach nothing themselves (notebooks 03 and 04).

Each function draws one kind of figure from numbers the notebook has already computed
(images, probabilities, accuracies, losses); none of them runs a model or an attack.
Epsilons are on the [0, 1] pixel scale and are labelled in 1/255 steps on the axes.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

CORRECT_COLOR = "tab:green"
WRONG_COLOR = "tab:red"


def _short(name: str, width: int = 22) -> str:
    """Wraps a long class name onto lines of at most ``width`` characters."""
    return "\n".join(textwrap.wrap(name, width)) or name


def amplified_perturbation(originals, adversarials) -> tuple[np.ndarray, np.ndarray]:
    """Maps each perturbation to [0, 1] for display: grey is "no change".

    Every image is scaled on its own so that its largest change reaches black or white.

    Args:
        originals: float (N, H, W, C) images in [0, 1].
        adversarials: Their adversarial versions, same shape.

    Returns:
        The display images, same shape, and the amplification factor of each image.
    """
    perturbations = np.asarray(adversarials, np.float32) - np.asarray(originals, np.float32)
    largest = np.abs(perturbations).reshape(len(perturbations), -1).max(axis=1)
    factors = np.where(largest > 0, 0.5 / np.maximum(largest, 1e-12), 1.0)
    display = 0.5 + perturbations * factors[:, None, None, None]
    return np.clip(display, 0.0, 1.0), factors


def _prediction_title(
    prefix: str, probabilities: np.ndarray, class_names, label
) -> tuple[str, str]:
    """Returns a title "prefix: class (confidence)" and its colour."""
    predicted = int(np.argmax(probabilities))
    title = f"{prefix}: {_short(class_names[predicted])}\n({probabilities[predicted]:.1%})"
    if label is None:
        return title, "black"
    return title, CORRECT_COLOR if predicted == int(label) else WRONG_COLOR


def plot_adversarial_examples(
    originals,
    adversarials,
    original_probabilities,
    adversarial_probabilities,
    class_names: Sequence[str],
    *,
    labels=None,
    max_rows: int = 4,
    title: str | None = None,
) -> Figure:
    """Draws one row per image: original, amplified perturbation, adversarial image.

    The original and adversarial images are titled with the predicted class and its
    probability, green when it is the true class and red when not (if ``labels`` is given).

    Args:
        originals: float (N, H, W, C) clean images in [0, 1].
        adversarials: Their adversarial versions, same shape.
        original_probabilities: The model's (N, num_classes) probabilities on ``originals``.
        adversarial_probabilities: The same on ``adversarials``.
        class_names: Readable name of each class id.
        labels: True class ids, shape (N,), or ``None``.
        max_rows: Show at most this many images.
        title: Figure title, or ``None``.

    Returns:
        The figure.

    Raises:
        ValueError: If the images and their adversarial versions differ in shape.
    """
    originals = np.asarray(originals)[:max_rows]
    adversarials = np.asarray(adversarials)[:max_rows]
    if originals.shape != adversarials.shape or originals.ndim != 4:
        raise ValueError(
            f"originals {originals.shape} and adversarials {adversarials.shape} must be "
            "batches of the same shape (N, height, width, channels); use images[None] for one."
        )
    original_probabilities = np.asarray(original_probabilities)
    adversarial_probabilities = np.asarray(adversarial_probabilities)
    display, factors = amplified_perturbation(originals, adversarials)
    rows = len(originals)
    figure, axes = plt.subplots(rows, 3, figsize=(7.5, 3.3 * rows), squeeze=False)
    for row in range(rows):
        label = None if labels is None else labels[row]
        size_255 = np.abs(adversarials[row] - originals[row]).max() * 255
        heading, color = _prediction_title(
            "predicted", original_probabilities[row], class_names, label
        )
        if label is not None:
            heading = f"true: {_short(class_names[int(label)])}\n" + heading
        panels = [
            (originals[row], heading, color),
            (
                display[row],
                f"perturbation ×{factors[row]:.0f}\n(L-inf = {size_255:.1f}/255)",
                "black",
            ),
            (
                adversarials[row],
                *_prediction_title(
                    "adversarial", adversarial_probabilities[row], class_names, label
                ),
            ),
        ]
        for axis, (image, text, text_color) in zip(axes[row], panels, strict=True):
            axis.imshow(
                np.squeeze(image),
                cmap="gray" if image.shape[-1] == 1 else None,
                vmin=0,
                vmax=1,
                interpolation="nearest",
            )
            axis.set_title(text, fontsize=9, color=text_color)
            axis.axis("off")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure


def _epsilon_axis(axis: Axes, epsilons) -> None:
    """Labels an x-axis of [0, 1]-scale epsilons in 1/255 steps."""
    ticks = np.asarray(epsilons, float) * 255
    axis.set_xticks(ticks)
    axis.set_xticklabels([f"{tick:g}" for tick in ticks])
    axis.set_xlabel("epsilon (in 1/255 steps of the [0, 1] pixel scale)")


def plot_accuracy_vs_epsilon(
    epsilons: Sequence[float],
    accuracies: Mapping[str, Sequence[float]],
    *,
    title: str | None = None,
    ylabel: str = "accuracy under attack (%)",
    ax: Axes | None = None,
) -> Figure:
    """Plots accuracy under attack against epsilon, one line per attack.

    Args:
        epsilons: Budgets on the [0, 1] pixel scale (8/255 is ``8 / 255``).
        accuracies: Attack name -> accuracy in [0, 1] at each epsilon.
        title: Axes title, or ``None``.
        ylabel: Label of the accuracy axis.
        ax: Axes to draw on; a new figure when ``None``.

    Returns:
        The figure (the one holding ``ax`` when given).

    Raises:
        ValueError: If a curve has not one accuracy per epsilon.
    """
    for name, values in accuracies.items():
        if len(values) != len(epsilons):
            raise ValueError(f"{name!r} has {len(values)} accuracies for {len(epsilons)} epsilons.")
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 4))
    for name, values in accuracies.items():
        ax.plot(np.asarray(epsilons) * 255, np.asarray(values) * 100, marker="o", label=name)
    _epsilon_axis(ax, epsilons)
    ax.set_ylabel(ylabel)
    ax.set_ylim(-2, 102)
    ax.grid(alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    return ax.figure


def plot_loss_over_steps(
    losses,
    *,
    reference: Mapping[str, float] | None = None,
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Plots the attacked loss after each step: thin lines per image, a thick mean.

    Args:
        losses: Array of shape (num_steps + 1, num_images); row 0 is the loss at the start.
        reference: Name -> a mean loss to draw as a dashed horizontal line (e.g. FGSM's).
        title: Axes title, or ``None``.
        ax: Axes to draw on; a new figure when ``None``.

    Returns:
        The figure (the one holding ``ax`` when given).
    """
    losses = np.asarray(losses, float)
    if losses.ndim == 1:
        losses = losses[:, None]
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 4))
    steps = np.arange(len(losses))
    ax.plot(steps, losses, color="tab:blue", alpha=0.15, linewidth=0.8)
    ax.plot(steps, losses.mean(axis=1), color="tab:blue", linewidth=2.5, label="mean over images")
    colors = ("tab:orange", "tab:red", "tab:green", "tab:purple")
    for index, (name, value) in enumerate((reference or {}).items()):
        ax.axhline(value, color=colors[index % len(colors)], linestyle="--", label=name)
    ax.set_xlabel("step")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("cross-entropy of the true class")
    ax.grid(alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    return ax.figure


def _annotated_heatmap(
    values, row_labels, column_labels, *, ax, text_format, color_label, rotation=0
) -> Axes:
    """Draws values in [0, 1] as coloured cells with their value written in each."""
    values = np.asarray(values, float)
    image = ax.imshow(np.ma.masked_invalid(values), cmap="viridis", vmin=0, vmax=1, aspect="auto")
    ax.figure.colorbar(image, ax=ax, label=color_label)
    ax.set_xticks(range(len(column_labels)))
    ax.set_xticklabels(column_labels, rotation=rotation, ha="right" if rotation else "center")
    ax.set_yticks(range(len(row_labels)))
    ax.set_yticklabels(row_labels)
    for (row, column), value in np.ndenumerate(values):
        if np.isfinite(value):
            ax.text(
                column,
                row,
                text_format.format(value),
                ha="center",
                va="center",
                fontsize=8,
                color="black" if value > 0.6 else "white",
            )
    return ax


def plot_targeted_success(
    success,
    class_names: Sequence[str],
    *,
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Draws a source-class x target-class heatmap of targeted attack success.

    Args:
        success: (num_classes_shown, num_classes_shown) share of images of the row's class
            classified as the column's class after the attack; NaN where not measured
            (the diagonal).
        class_names: Names of the classes shown, in the order of the rows and columns.
        title: Axes title, or ``None``.
        ax: Axes to draw on; a new figure when ``None``.

    Returns:
        The figure (the one holding ``ax`` when given).
    """
    if ax is None:
        size = 2.5 + 0.6 * len(class_names)
        _, ax = plt.subplots(figsize=(size + 1.5, size))
    names = [_short(name, 18) for name in class_names]
    _annotated_heatmap(
        success,
        names,
        names,
        ax=ax,
        text_format="{:.0%}",
        color_label="targeted success rate",
        rotation=45,
    )
    ax.set_xlabel("target class")
    ax.set_ylabel("true class of the image")
    if title:
        ax.set_title(title)
    return ax.figure


def plot_accuracy_grid(
    accuracies,
    row_labels: Sequence[str],
    column_labels: Sequence[str],
    *,
    xlabel: str,
    ylabel: str,
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Draws accuracy under attack for a grid of two attack settings.

    Args:
        accuracies: (rows, columns) accuracies in [0, 1].
        row_labels: Label of each row (e.g. step sizes).
        column_labels: Label of each column (e.g. numbers of steps).
        xlabel: What the columns vary.
        ylabel: What the rows vary.
        title: Axes title, or ``None``.
        ax: Axes to draw on; a new figure when ``None``.

    Returns:
        The figure (the one holding ``ax`` when given).
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(1.2 * len(column_labels) + 3, 0.6 * len(row_labels) + 2))
    _annotated_heatmap(
        accuracies,
        list(row_labels),
        list(column_labels),
        ax=ax,
        text_format="{:.1%}",
        color_label="accuracy under attack",
    )
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    return ax.figure
