"""What a model's confidence is worth: calibration error and entropy (notebook 08).

A classifier is *calibrated* when, among the inputs it labels with top probability 0.8, about
80% are right. ``reliability_bins`` groups predictions by their top probability (the
*confidence*) and compares each group's mean confidence with its accuracy; the expected
calibration error (ECE) is the gap between the two, averaged over the groups and weighted by
their size. ``predictive_entropy`` measures how spread out a whole probability vector is.

Every function takes ``probabilities``: a (N, num_classes) array whose rows are probability
vectors (what a model from ``helpers.models.build_cnn`` returns), and ``labels``: integer
class ids of shape (N,).
"""

from __future__ import annotations

import dataclasses
import numbers

import numpy as np

from helpers.lab.checks import check_labels

ROW_SUM_TOLERANCE = 1e-3  # float32 softmax rows sum to 1 within about 1e-6


def check_probabilities(probabilities, name: str = "probabilities") -> np.ndarray:
    """Checks a batch of probability vectors: (N, num_classes), in [0, 1], rows summing to 1.

    Args:
        probabilities: An array or tensor of shape (N, num_classes).
        name: The argument's name, for the message.

    Returns:
        The probabilities as a float64 NumPy array.

    Raises:
        TypeError: If the values are not numeric.
        ValueError: If the shape is not 2-D, a value is outside [0, 1] or not finite, or a
            row does not sum to 1 (for example logits passed instead of probabilities).
    """
    array = np.asarray(probabilities)
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise TypeError(f"{name} must be real numbers, got dtype {array.dtype}.")
    if array.ndim != 2 or array.shape[1] < 2:
        raise ValueError(
            f"{name} must have shape (examples, classes) with at least two classes, got shape "
            f"{array.shape}; add a batch axis for a single example (probabilities[None])."
        )
    array = array.astype(np.float64)
    if not np.all(np.isfinite(array)) or (array.size and (array.min() < 0 or array.max() > 1)):
        raise ValueError(
            f"{name} must lie in [0, 1], got values in [{np.nanmin(array):g}, {np.nanmax(array):g}]; "
            "for logits, apply a softmax first."
        )
    sums = array.sum(axis=1)
    worst = int(np.argmax(np.abs(sums - 1))) if len(sums) else 0
    if len(sums) and abs(sums[worst] - 1) > ROW_SUM_TOLERANCE:
        raise ValueError(
            f"each row of {name} must sum to 1, but row {worst} sums to {sums[worst]:.6g}; "
            "pass the model's softmax output, not logits or a single column."
        )
    return array


def check_num_bins(num_bins) -> int:
    """Checks the number of confidence bins: an integer >= 1.

    Raises:
        ValueError: If ``num_bins`` is not an integer >= 1.
    """
    if isinstance(num_bins, bool) or not isinstance(num_bins, numbers.Integral) or num_bins < 1:
        raise ValueError(f"num_bins must be an integer >= 1, got {num_bins!r}.")
    return int(num_bins)


def _checked(probabilities, labels) -> tuple[np.ndarray, np.ndarray]:
    """Checks probabilities and labels together; returns them as arrays."""
    probabilities = check_probabilities(probabilities)
    labels = check_labels(labels, len(probabilities), probabilities.shape[1])
    if not len(labels):
        raise ValueError("calibration needs at least one example.")
    return probabilities, labels


@dataclasses.dataclass(frozen=True)
class ReliabilityBins:
    """Predictions grouped by confidence: the data of a reliability diagram.

    Attributes:
        edges: The ``num_bins + 1`` bin edges, from 0 to 1; bin ``b`` holds confidences in
            ``(edges[b], edges[b + 1]]``.
        confidence: Mean top probability in each bin (NaN for an empty bin).
        accuracy: Share of correct predictions in each bin (NaN for an empty bin).
        count: Number of predictions in each bin.
    """

    edges: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    count: np.ndarray

    @property
    def expected_calibration_error(self) -> float:
        """The count-weighted mean of ``|accuracy - confidence|`` over non-empty bins."""
        filled = self.count > 0
        weights = self.count[filled] / self.count.sum()
        return float(np.sum(weights * np.abs(self.accuracy[filled] - self.confidence[filled])))


def reliability_bins(probabilities, labels, *, num_bins: int = 15) -> ReliabilityBins:
    """Groups predictions into equal-width confidence bins and measures each bin.

    Args:
        probabilities: (N, num_classes) probability vectors.
        labels: True class ids, shape (N,).
        num_bins: Number of equal-width bins on [0, 1], >= 1.

    Returns:
        A :class:`ReliabilityBins`.

    Raises:
        TypeError, ValueError: For malformed probabilities or labels, a length mismatch,
            no examples, or ``num_bins < 1``.
    """
    num_bins = check_num_bins(num_bins)
    probabilities, labels = _checked(probabilities, labels)
    confidences = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, num_bins + 1)
    # Bin b holds (edges[b], edges[b + 1]]; a confidence of exactly 0 cannot occur.
    which = np.clip(np.searchsorted(edges, confidences, side="left") - 1, 0, num_bins - 1)
    count = np.bincount(which, minlength=num_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.bincount(which, weights=confidences, minlength=num_bins) / count
        accuracy = np.bincount(which, weights=correct, minlength=num_bins) / count
    return ReliabilityBins(edges, confidence, accuracy, count)


def expected_calibration_error(probabilities, labels, *, num_bins: int = 15) -> float:
    """Returns the expected calibration error (ECE) of a set of predictions.

    ``ECE = sum over bins of (bin count / N) * |bin accuracy - bin mean confidence|``, with
    ``num_bins`` equal-width confidence bins (Guo et al. 2017). 0 means calibrated; a model
    that is always 99% sure and right half the time has an ECE of about 0.49.

    Args:
        probabilities: (N, num_classes) probability vectors.
        labels: True class ids, shape (N,).
        num_bins: Number of equal-width bins on [0, 1], >= 1.

    Returns:
        The ECE, in [0, 1].

    Raises:
        TypeError, ValueError: As for :func:`reliability_bins`.
    """
    return reliability_bins(probabilities, labels, num_bins=num_bins).expected_calibration_error


def predictive_entropy(probabilities) -> np.ndarray:
    """Returns the entropy of each probability vector, in nats.

    0 for a one-hot vector (certain); ``log(num_classes)`` for the uniform vector.

    Args:
        probabilities: (N, num_classes) probability vectors.

    Returns:
        A float64 array of shape (N,).

    Raises:
        TypeError, ValueError: For malformed probabilities.
    """
    probabilities = check_probabilities(probabilities)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(probabilities > 0, probabilities * np.log(probabilities), 0.0)
    return -terms.sum(axis=1)
