"""Figures for notebook 08 that teach nothing themselves: reliability and confidence.

Each function draws numbers the notebook has already computed (``ReliabilityBins`` from
``helpers.calibration``, top probabilities); none of them runs a model or an attack.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from helpers.calibration import ReliabilityBins

CONFIDENCE_COLOR = "tab:red"
ACCURACY_COLOR = "tab:blue"
GROUP_COLORS = {"correct": "tab:green", "wrong": "tab:orange", "adversarial": "tab:red"}
LOWEST_SHOWN = 0.01  # confidences are drawn on a logit axis between these two values
HIGHEST_SHOWN = 1 - 1e-6
PROBABILITY_TICKS = [0.05, 0.5, 0.9, 0.99, 0.999, 0.99999]


def plot_reliability_diagrams(
    bins_by_name: Mapping[str, ReliabilityBins], *, title: str | None = None
) -> Figure:
    """Draws one reliability diagram per entry, with the share of predictions per bin below.

    Top row: each bin's accuracy (bars) and mean confidence (red lines) against the
    diagonal of perfect calibration; the gap between bar top and red line is what the ECE
    averages. Bottom row: the share of
    predictions in each bin, on a log scale (an over-confident model piles them up at 1).

    Args:
        bins_by_name: ``{panel title: ReliabilityBins}``, one column each.
        title: Figure title.

    Returns:
        The figure.
    """
    figure, axes = plt.subplots(
        2,
        len(bins_by_name),
        figsize=(3.6 * len(bins_by_name), 5.2),
        squeeze=False,
        gridspec_kw={"height_ratios": [3, 1]},
        sharex=True,
    )
    for column, (name, bins) in enumerate(bins_by_name.items()):
        top, bottom = axes[0, column], axes[1, column]
        widths = np.diff(bins.edges)
        filled = bins.count > 0
        accuracy = np.where(filled, bins.accuracy, 0.0)
        confidence = bins.confidence
        top.bar(
            bins.edges[:-1],
            accuracy,
            widths,
            align="edge",
            color=ACCURACY_COLOR,
            edgecolor="white",
            label="accuracy",
        )
        top.hlines(
            confidence[filled],
            bins.edges[:-1][filled],
            bins.edges[1:][filled],
            colors=CONFIDENCE_COLOR,
            linewidth=2.5,
            label="mean confidence",
        )
        top.plot([0, 1], [0, 1], "k--", linewidth=1, label="calibrated")
        top.set(
            xlim=(0, 1), ylim=(0, 1), title=f"{name}\nECE {bins.expected_calibration_error:.3f}"
        )
        bottom.bar(
            bins.edges[:-1],
            bins.count / max(bins.count.sum(), 1),
            widths,
            align="edge",
            color="grey",
        )
        bottom.set(yscale="log", ylim=(1e-4, 1.5), xlabel="confidence (top probability)")
    axes[0, 0].set_ylabel("accuracy in bin")
    axes[1, 0].set_ylabel("share")
    axes[0, 0].legend(loc="upper left", fontsize="small")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure


def plot_confidence_histograms(
    groups_by_panel: Mapping[str, Mapping[str, np.ndarray]],
    *,
    thresholds: Mapping[str, float] | None = None,
    num_bins: int = 30,
    title: str | None = None,
) -> Figure:
    """Draws histograms of top probabilities, one panel per model, one line per group.

    The x axis is a logit scale, which spreads out probabilities near 0 and near 1 (0.99,
    0.999 and 0.9999 are equally far apart); values above ``HIGHEST_SHOWN`` are drawn in
    the last bin. Each group is normalised to shares, so groups of different sizes compare.

    Args:
        groups_by_panel: ``{panel title: {group name: top probabilities}}``; the groups
            "correct", "wrong" and "adversarial" get fixed colours.
        thresholds: ``{panel title: detector threshold}``, drawn as a vertical line.
        num_bins: Bins between ``LOWEST_SHOWN`` and ``HIGHEST_SHOWN``.
        title: Figure title.

    Returns:
        The figure.
    """
    thresholds = thresholds or {}
    figure, axes = plt.subplots(
        1,
        len(groups_by_panel),
        figsize=(4.6 * len(groups_by_panel), 3.6),
        squeeze=False,
        sharey=True,
    )
    lowest, highest = (
        np.log(LOWEST_SHOWN / (1 - LOWEST_SHOWN)),
        np.log(HIGHEST_SHOWN / (1 - HIGHEST_SHOWN)),
    )
    edges = 1 / (1 + np.exp(-np.linspace(lowest, highest, num_bins + 1)))
    for axis, (name, groups) in zip(axes[0], groups_by_panel.items(), strict=True):
        for group, confidences in groups.items():
            values = np.clip(np.asarray(confidences, np.float64), LOWEST_SHOWN, HIGHEST_SHOWN)
            if not len(values):
                continue
            weights = np.full(len(values), 1 / len(values))
            axis.hist(
                values,
                edges,
                weights=weights,
                histtype="step",
                linewidth=1.8,
                color=GROUP_COLORS.get(group),
                label=f"{group} ({len(values):,})",
            )
        if name in thresholds:
            axis.axvline(
                thresholds[name],
                color="black",
                linestyle="--",
                linewidth=1,
                label=f"threshold {thresholds[name]:.4g}",
            )
        axis.set_xscale("logit")
        axis.set_xticks(PROBABILITY_TICKS, [f"{tick:g}" for tick in PROBABILITY_TICKS])
        axis.minorticks_off()
        axis.set(
            xlim=(LOWEST_SHOWN, HIGHEST_SHOWN),
            title=name,
            xlabel="top probability (logit scale)",
        )
        axis.legend(fontsize="small", loc="upper left")
    axes[0, 0].set_ylabel("share of the group")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure


def plot_nll_curves(
    temperatures, curves: Mapping[str, np.ndarray], *, title: str | None = None
) -> Figure:
    """Draws the validation NLL of each model against the temperature (log axis).

    Args:
        temperatures: The temperatures the NLL was computed at.
        curves: ``{model name: NLL at each temperature}``.
        title: Axes title.

    Returns:
        The figure.
    """
    figure, axis = plt.subplots(figsize=(5, 3.2))
    for name, values in curves.items():
        axis.plot(temperatures, values, label=name)
    axis.axvline(1, color="grey", linewidth=0.8)
    axis.set_xscale("log")
    ticks = [t for t in (0.25, 0.5, 1, 2, 4, 8) if min(temperatures) <= t <= max(temperatures)]
    axis.set_xticks(ticks, [f"{tick:g}" for tick in ticks])
    axis.minorticks_off()
    axis.set(xlabel="temperature T", ylabel="validation NLL", title=title)
    axis.legend()
    figure.tight_layout()
    return figure
