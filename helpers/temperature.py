"""Temperature scaling: one number that recalibrates a trained model (notebook 08).

Dividing every logit by a temperature ``T`` keeps each prediction (the largest logit stays
the largest) but changes its confidence: ``T > 1`` softens over-confident probabilities,
``T < 1`` sharpens under-confident ones. ``fit_temperature`` picks the ``T`` that minimises
the negative log-likelihood (NLL) of *validation* data (Guo et al. 2017), never test data.

The NLL is a convex function of ``1 / T``, so a golden-section search over ``1 / T`` finds
its minimum; the result is compared with ``T = 1`` and never makes validation NLL worse.
"""

from __future__ import annotations

import numbers

import keras
import numpy as np

from helpers.lab.checks import check_images, check_labels
from helpers.models import logits_model

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
    ends_in_softmax = bool(model.layers) and isinstance(model.layers[-1], keras.layers.Softmax)
    network = logits_model(model) if ends_in_softmax else model
    batches = [
        np.asarray(network(images[start : start + batch_size], training=False))
        for start in range(0, len(images), batch_size)
    ]
    if not batches:
        return np.zeros((0, model.output_shape[-1]))
    return np.concatenate(batches).astype(np.float64)
