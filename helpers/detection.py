"""A confidence-threshold detector: refuse to answer when the model is unsure (notebook 08).

The simplest use of uncertainty as a defence: reject every input whose top probability is
below a threshold. The threshold is chosen on *validation* data so that a given share of
clean inputs (for example 5%) is rejected; that share is the price paid on clean data. The
detector is then judged by its *catch rate*: the share of successful adversarial examples
(those the model gets wrong) that it rejects.
"""

from __future__ import annotations

import dataclasses
import numbers

import numpy as np

from helpers.calibration import check_probabilities
from helpers.lab.checks import check_labels


def _check_open_unit(value, name: str) -> float:
    """Checks a number strictly between 0 and 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number strictly between 0 and 1, got {value!r}.")
    if not 0 < float(value) < 1:
        raise ValueError(f"{name} must lie strictly between 0 and 1, got {value!r}.")
    return float(value)


@dataclasses.dataclass(frozen=True)
class ConfidenceDetector:
    """Rejects inputs whose top probability is below ``threshold``.

    Attributes:
        threshold: The smallest top probability accepted, strictly between 0 and 1.
        clean_rejection_rate: The share of clean validation inputs it was chosen to reject.
    """

    threshold: float
    clean_rejection_rate: float

    def __post_init__(self):
        object.__setattr__(self, "threshold", _check_open_unit(self.threshold, "threshold"))
        object.__setattr__(
            self,
            "clean_rejection_rate",
            _check_open_unit(self.clean_rejection_rate, "clean_rejection_rate"),
        )

    def rejects(self, probabilities) -> np.ndarray:
        """Tells which inputs are rejected.

        Args:
            probabilities: (N, num_classes) probability vectors.

        Returns:
            A boolean array (N,), True where the top probability is below the threshold.

        Raises:
            TypeError, ValueError: For malformed probabilities.
        """
        return check_probabilities(probabilities).max(axis=1) < self.threshold


def fit_confidence_detector(
    validation_probabilities, *, rejection_rate: float = 0.05
) -> ConfidenceDetector:
    """Chooses the threshold that rejects ``rejection_rate`` of the validation inputs.

    The threshold is the top probability of the validation input ranked
    ``floor(rejection_rate * N)`` from the least confident, so at most that share is
    rejected (fewer when several inputs share the same confidence).

    Args:
        validation_probabilities: (N, num_classes) probabilities on clean validation data.
        rejection_rate: Share of clean inputs to reject, strictly between 0 and 1.

    Returns:
        A :class:`ConfidenceDetector`.

    Raises:
        TypeError, ValueError: For malformed probabilities, no examples, a rate outside
            (0, 1), or a model so saturated that the threshold would be 1.
    """
    rejection_rate = _check_open_unit(rejection_rate, "rejection_rate")
    confidences = np.sort(
        check_probabilities(validation_probabilities, "validation_probabilities").max(axis=1)
    )
    if not len(confidences):
        raise ValueError("fit_confidence_detector needs at least one validation example.")
    threshold = float(confidences[int(np.floor(rejection_rate * len(confidences)))])
    if threshold >= 1:
        raise ValueError(
            f"{np.mean(confidences >= 1):.1%} of the validation inputs have a top probability of "
            f"exactly 1, so no threshold below 1 rejects {rejection_rate:.1%} of them; "
            "choose a smaller rejection_rate."
        )
    return ConfidenceDetector(threshold, rejection_rate)


def catch_rate(detector: ConfidenceDetector, adversarial_probabilities, labels) -> float:
    """Returns the share of successful adversarial examples the detector rejects.

    Only the examples the model gets wrong count: an attack that failed needs no catching.

    Args:
        detector: A fitted :class:`ConfidenceDetector`.
        adversarial_probabilities: (N, num_classes) probabilities on adversarial inputs.
        labels: The true class ids of the inputs, shape (N,).

    Returns:
        The catch rate in [0, 1], or NaN when no example fooled the model.

    Raises:
        TypeError, ValueError: For a detector of another type, malformed probabilities or
            labels, or a length mismatch.
    """
    if not isinstance(detector, ConfidenceDetector):
        raise TypeError(f"detector must be a ConfidenceDetector, got {type(detector).__name__}.")
    probabilities = check_probabilities(adversarial_probabilities, "adversarial_probabilities")
    labels = check_labels(labels, len(probabilities), probabilities.shape[1])
    fooled = probabilities.argmax(axis=1) != labels
    if not fooled.any():
        return float("nan")
    return float(np.mean(detector.rejects(probabilities[fooled])))
