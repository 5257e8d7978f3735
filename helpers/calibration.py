"""What a model's confidence is worth: calibration error and entropy (notebook 08).

A classifier is *calibrated* when, among the inputs it labels with top probability 0.8, about
80% are right. ``reliability_bins`` groups predictions by their top probability (the
*confidence*) and compares each group's mean confidence with its accuracy; the expected
calibration error (ECE) is the gap between the two, averaged over the groups and weighted by
their size. ``predictive_entropy`` measures how spread out a whole probability vector is.

Every function takes ``probabilities``: a (N, num_classes) array whose rows are probability
vectors (what a model from ``helpers.models.build_cnn`` returns), and ``labels``: integer
class ids of shape (N,).

Temperature scaling (Guo et al. 2017) recalibrates a trained model with one number.
Dividing every logit by a temperature ``T`` keeps each prediction (the largest logit stays
the largest) but changes its confidence: ``T > 1`` softens over-confident probabilities,
``T < 1`` sharpens under-confident ones. ``fit_temperature`` picks the ``T`` that minimises
the negative log-likelihood (NLL) of *validation* data, never test data. The NLL is a
convex function of ``1 / T``, so a golden-section search over ``1 / T`` finds its minimum;
the result is compared with ``T = 1`` and never makes validation NLL worse.
"""

from __future__ import annotations

import dataclasses
import numbers

import keras
import numpy as np

from helpers.lab.checks import check_images, check_labels
from helpers.models import logits_of

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


# --- Temperature scaling -----------------------------------------------------------------

TEMPERATURE_RANGE = (0.05, 20.0)
SEARCH_ITERATIONS = 80  # golden-section steps: the bracket shrinks by 0.618 each time


def check_logits(logits, labels=None) -> tuple[np.ndarray, np.ndarray | None]:
    """Checks logits (N, num_classes) and, if given, their labels.

    Returns:
        The logits as float64 and the labels as int64 (or ``None``).

    Raises:
        TypeError: If the logits are not real numbers.
        ValueError: If the logits are not 2-D or not finite, or the labels do not match.
    """
    array = np.asarray(logits)
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise TypeError(f"logits must be real numbers, got dtype {array.dtype}.")
    if array.ndim != 2 or array.shape[1] < 2:
        raise ValueError(f"logits must have shape (examples, classes), got shape {array.shape}.")
    if not np.all(np.isfinite(array)):
        raise ValueError("logits must be finite (no NaN or infinity).")
    if labels is not None:
        labels = check_labels(labels, len(array), array.shape[1])
    return array.astype(np.float64), labels


def _check_temperature(temperature) -> float:
    """Checks a temperature: a finite number > 0."""
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real):
        raise TypeError(f"temperature must be a number > 0, got {temperature!r}.")
    if not np.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}.")
    return float(temperature)


def softmax(logits, temperature: float = 1.0) -> np.ndarray:
    """Returns ``softmax(logits / temperature)`` in float64, computed stably.

    Args:
        logits: (N, num_classes) logits.
        temperature: A number > 0.

    Returns:
        (N, num_classes) probabilities.

    Raises:
        TypeError, ValueError: For malformed logits or a temperature <= 0.
    """
    logits, _ = check_logits(logits)
    scaled = logits / _check_temperature(temperature)
    scaled -= scaled.max(axis=1, keepdims=True)
    exponentials = np.exp(scaled)
    return exponentials / exponentials.sum(axis=1, keepdims=True)


def negative_log_likelihood(logits, labels, temperature: float = 1.0) -> float:
    """Returns the mean negative log-probability of the true class at a temperature.

    Args:
        logits: (N, num_classes) logits.
        labels: True class ids, shape (N,).
        temperature: A number > 0.

    Returns:
        The mean NLL in nats (the cross-entropy loss).

    Raises:
        TypeError, ValueError: For malformed logits or labels, or a temperature <= 0.
    """
    logits, labels = check_logits(logits, labels)
    if not len(labels):
        raise ValueError("negative_log_likelihood needs at least one example.")
    scaled = logits / _check_temperature(temperature)
    largest = scaled.max(axis=1)
    log_normaliser = largest + np.log(np.exp(scaled - largest[:, None]).sum(axis=1))
    return float(np.mean(log_normaliser - scaled[np.arange(len(labels)), labels]))


def fit_temperature(logits, labels) -> float:
    """Finds the temperature that minimises the NLL of (validation) logits.

    Args:
        logits: (N, num_classes) validation logits.
        labels: Their true class ids, shape (N,).

    Returns:
        A temperature in ``TEMPERATURE_RANGE``; the NLL at it is never above the NLL at 1.

    Raises:
        TypeError, ValueError: For malformed logits or labels.
    """
    logits, labels = check_logits(logits, labels)

    def nll(inverse):
        return negative_log_likelihood(logits, labels, 1.0 / inverse)

    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    low, high = 1.0 / TEMPERATURE_RANGE[1], 1.0 / TEMPERATURE_RANGE[0]
    left, right = high - ratio * (high - low), low + ratio * (high - low)
    left_value, right_value = nll(left), nll(right)
    for _ in range(SEARCH_ITERATIONS):
        if left_value < right_value:  # the minimum lies in [low, right]
            high, right, right_value = right, left, left_value
            left = high - ratio * (high - low)
            left_value = nll(left)
        else:
            low, left, left_value = left, right, right_value
            right = low + ratio * (high - low)
            right_value = nll(right)
    best = (low + high) / 2.0
    return 1.0 / best if nll(best) < nll(1.0) else 1.0


def predict_logits(model: keras.Model, images, *, batch_size: int = 512) -> np.ndarray:
    """Returns a model's logits for a batch of images, in inference mode.

    Args:
        model: A model ending in a softmax (its logits are taken with ``logits_model``) or a
            model that returns logits.
        images: float32 (N, H, W, C) in [0, 1].
        batch_size: Images per forward pass.

    Returns:
        float64 logits, shape (N, num_classes).

    Raises:
        TypeError, ValueError: For a model that is not a Keras model, or malformed images.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras.Model, got {type(model).__name__}.")
    images = check_images(images)
    network = logits_of(model)
    batches = [
        np.asarray(network(images[start : start + batch_size], training=False))
        for start in range(0, len(images), batch_size)
    ]
    if not batches:
        return np.zeros((0, model.output_shape[-1]))
    return np.concatenate(batches).astype(np.float64)
