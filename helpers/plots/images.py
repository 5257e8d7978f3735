"""Figures that teach nothing themselves (introduced in notebook 01).

The notebooks keep their teaching cells short by calling these functions for the
plotting. Every function takes ``images`` as float arrays in [0, 1], NHWC (or one HWC
image), ``labels`` as integer class ids, and returns the matplotlib ``Figure`` or ``Axes``
it drew on, so a notebook can add to it or save it.

Sections: image grids (notebook 01), class counts (notebook 01), pixel statistics
(notebook 01), perturbations (notebook 01; used again by the attack notebooks).
Importing this module draws nothing and changes no global matplotlib setting.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

CAPTION_WIDTH = 16  # characters per caption line under a thumbnail
MAX_CAPTION_LINES = 2
HORIZONTAL_BARS_FROM = 12  # class counts are drawn as horizontal bars from this many classes


def _caption(text: str) -> str:
    """Wraps a caption onto at most two short lines."""
    lines = textwrap.wrap(text, CAPTION_WIDTH) or [""]
    if len(lines) > MAX_CAPTION_LINES:
        lines = [*lines[: MAX_CAPTION_LINES - 1], lines[MAX_CAPTION_LINES - 1][:-1] + "…"]
    return "\n".join(lines)


def _class_name(class_id: int, class_names: Sequence[str] | None) -> str:
    """Returns a class's readable name, or its id when no names are given."""
    return class_names[class_id] if class_names is not None else str(class_id)


# --- Image grids -------------------------------------------------------------------------


def show_images(
    images: np.ndarray,
    labels: Sequence[int] | np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
    predictions: Sequence[int] | np.ndarray | None = None,
    ncols: int = 8,
    title: str | None = None,
    captions: Sequence[str] | None = None,
) -> Figure:
    """Shows images in a grid, each captioned with its label (and prediction).

    Args:
        images: Float images in [0, 1], shape (N, height, width, 3) or (N, height, width).
        labels: True class id of each image, or ``None`` for no label captions.
        class_names: Readable name of each class id; ids are shown when ``None``.
        predictions: Predicted class id of each image, or ``None``. A prediction is
            captioned in green when it matches the label and in red when it does not.
        ncols: Images per row.
        title: Figure title, or ``None``.
        captions: One caption per image; replaces the label captions when given.

    Returns:
        The figure.

    Raises:
        ValueError: If ``images`` is empty, ``ncols`` is not positive, or a sequence of
            labels, predictions or captions does not have one entry per image.
    """
    images = np.asarray(images)
    count = len(images)
    if count == 0:
        raise ValueError("show_images needs at least one image, got an empty array.")
    if ncols < 1:
        raise ValueError(f"ncols must be a positive integer, got {ncols!r}.")
    for name, values in (("labels", labels), ("predictions", predictions), ("captions", captions)):
        if values is not None and len(values) != count:
            raise ValueError(f"{name} has {len(values)} entries for {count} images.")
    ncols = min(ncols, count)
    nrows = -(-count // ncols)
    has_caption = labels is not None or captions is not None
    row_height = 1.3 + 0.45 * has_caption + 0.45 * (predictions is not None)
    figure, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(1.4 * ncols, row_height * nrows + (0.4 if title else 0)),
        squeeze=False,
    )
    for index, axis in enumerate(axes.flat):
        axis.axis("off")
        if index >= count:
            continue
        axis.imshow(np.clip(images[index], 0.0, 1.0), cmap="gray" if images.ndim == 3 else None)
        if captions is not None:
            axis.set_title(_caption(captions[index]), fontsize=7)
        elif labels is not None:
            axis.set_title(_caption(_class_name(int(labels[index]), class_names)), fontsize=7)
        if predictions is not None:
            predicted = int(predictions[index])
            correct = labels is not None and predicted == int(labels[index])
            axis.text(
                0.5,
                -0.08,
                _caption("→ " + _class_name(predicted, class_names)),
                transform=axis.transAxes,
                ha="center",
                va="top",
                fontsize=7,
                color="tab:green" if correct else "tab:red",
            )
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure


# --- Class counts -------------------------------------------------------------------------


def _class_bars(
    table: pd.DataFrame, value: str, hue: str | None, ax: Axes | None, title: str | None
) -> Axes:
    """Draws one bar per class (horizontal for many classes) from a tidy table."""
    classes = table["class"].nunique()
    horizontal = classes >= HORIZONTAL_BARS_FROM
    if ax is None:
        per_class = 0.3 if hue else 0.22
        _, ax = plt.subplots(figsize=(7, per_class * classes + 1) if horizontal else (8, 3.5))
    color = None if hue else "tab:blue"
    axes_names = dict(y="class", x=value) if horizontal else dict(x="class", y=value)
    sns.barplot(data=table, hue=hue, color=color, ax=ax, **axes_names)
    value_axis = ax.xaxis if horizontal else ax.yaxis
    if value == "share":
        value_axis.set_major_formatter("{x:.0%}")
    if horizontal:
        ax.set_ylabel("")
        ax.tick_params(axis="y", labelsize=7)
    else:
        ax.set_xlabel("")
        ax.tick_params(axis="x", labelrotation=45)
    if title:
        ax.set_title(title)
    return ax


def plot_split_distributions(
    splits: Mapping[str, Sequence[int] | np.ndarray],
    class_names: Sequence[str],
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """Draws each class's share of every split side by side, to compare the splits.

    Shares (not counts) are drawn, so splits of different sizes can be compared.

    Args:
        splits: Split name (for example ``"train"``) -> class id of each example.
        class_names: Readable name of each class id.
        ax: Axes to draw on; a new figure is made when ``None``.
        title: Axes title, or ``None``.

    Returns:
        The figure (the one holding ``ax`` when given).
    """
    frames = []
    for split_name, labels in splits.items():
        counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(class_names))
        share = counts / max(1, counts.sum())
        frames.append(
            pd.DataFrame({"class": list(class_names), "share": share, "split": split_name})
        )
    return _class_bars(pd.concat(frames, ignore_index=True), "share", "split", ax, title).figure


# --- Pixel statistics --------------------------------------------------------------------


def plot_brightness_histogram(
    images_by_name: Mapping[str, np.ndarray],
    ax: Axes | None = None,
    bins: int = 50,
    title: str | None = None,
) -> Figure:
    """Draws the distribution of mean image brightness, one curve per image set.

    Brightness is the mean over an image's pixels and channels, on the [0, 1] scale.

    Args:
        images_by_name: A name (for example ``"GTSRB train"``) -> float images in [0, 1],
            NHWC.
        ax: Axes to draw on; a new figure is made when ``None``.
        bins: Histogram bins over [0, 1].
        title: Axes title, or ``None``.

    Returns:
        The figure (the one holding ``ax`` when given).
    """
    frames = [
        pd.DataFrame(
            {"brightness": np.asarray(images).reshape(len(images), -1).mean(axis=1), "images": name}
        )
        for name, images in images_by_name.items()
    ]
    table = pd.concat(frames, ignore_index=True)
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.5))
    sns.histplot(
        data=table,
        x="brightness",
        hue="images",
        bins=np.linspace(0, 1, bins + 1),
        stat="probability",
        common_norm=False,
        element="step",
        ax=ax,
    )
    ax.set_xlim(0, 1)
    ax.set_xlabel("mean brightness of an image (0 = black, 1 = white)")
    ax.set_ylabel("share of images")
    if title:
        ax.set_title(title)
    return ax.figure


# --- Perturbations -----------------------------------------------------------------------


def show_perturbation(
    image: np.ndarray,
    perturbed_image: np.ndarray,
    epsilon: float,
    title: str | None = None,
) -> Figure:
    """Shows an image, the perturbation (amplified to be visible) and the perturbed image.

    The middle panel maps a change of ``-epsilon`` to black, no change to grey and
    ``+epsilon`` to white, per channel.

    Args:
        image: One float image in [0, 1], shape (height, width, 3).
        perturbed_image: The same image after the perturbation, in [0, 1].
        epsilon: Largest allowed change per pixel, on the [0, 1] scale (8/255 is written
            ``8 / 255``).
        title: Figure title, or ``None``.

    Returns:
        The figure.

    Raises:
        ValueError: If the images differ in shape or ``epsilon`` is not positive.
    """
    image, perturbed_image = np.asarray(image), np.asarray(perturbed_image)
    if image.shape != perturbed_image.shape:
        raise ValueError(
            f"image {image.shape} and perturbed_image {perturbed_image.shape} differ in shape."
        )
    if not epsilon > 0:
        raise ValueError(f"epsilon must be positive (on the [0, 1] scale), got {epsilon!r}.")
    change = perturbed_image - image
    panels = [
        (image, "original"),
        (np.clip(0.5 + change / (2 * epsilon), 0, 1), f"change, amplified ×{0.5 / epsilon:.0f}"),
        (perturbed_image, f"perturbed (max change {np.abs(change).max():.4f})"),
    ]
    figure, axes = plt.subplots(1, 3, figsize=(7.5, 2.9))
    for axis, (panel, caption) in zip(axes, panels, strict=True):
        axis.imshow(np.clip(panel, 0, 1))
        axis.set_title(caption, fontsize=9)
        axis.axis("off")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure
