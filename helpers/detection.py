"""A confidence-threshold detector: refuse to answer when the model is unsure (notebook 08).

The simplest use of uncertainty as a defence: reject every input whose top probability is
below a threshold. The threshold is chosen on *validation* data so that a given share of
clean inputs (for example 5%) is rejected; that share is the price paid on clean data. The
detector is then judged by its *catch rate*: the share of successful adversarial examples
(those the model gets wrong) that it rejects.

A detector must be tested with an attack that knows it is there (an *adaptive* attack).
PGD that stops at the first mistake (``helpers.attacks.pgd_until_fooled``) leaves the model
unsure of its new answer, which the detector catches. :func:`high_confidence_pgd` ascends
the log-probability of the most likely wrong class instead, so it keeps pushing after the
label has flipped until the wrong answer is as confident as it can be made.
"""

from __future__ import annotations

import dataclasses
import numbers

import keras
import numpy as np
import tensorflow as tf

from helpers import attacks
from helpers.calibration import check_probabilities
from helpers.lab.checks import check_labels, check_positive_int


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


# --- The adaptive attack -------------------------------------------------------------------


def wrong_class_log_probability(logits, labels):
    """The adaptive attack's loss: the log-probability of the most likely wrong class.

    Raising it makes the model wrong (once it exceeds log 0.5 the wrong class wins) and then
    ever more sure of the wrong answer. Computed from the logits with a stable log-softmax.

    Args:
        logits: float tensor (N, num_classes).
        labels: int64 tensor (N,), the true classes.

    Returns:
        A float tensor (N,).
    """
    log_probabilities = tf.nn.log_softmax(logits, axis=-1)
    is_true_class = tf.one_hot(labels, tf.shape(logits)[-1], on_value=True, off_value=False)
    floor = tf.fill(tf.shape(log_probabilities), tf.constant(-np.inf, log_probabilities.dtype))
    return tf.reduce_max(tf.where(is_true_class, floor, log_probabilities), axis=-1)


def high_confidence_pgd(
    model: keras.Model,
    images,
    labels,
    epsilon: float,
    *,
    step_size: float | None = None,
    num_steps: int = 20,
    random_start: bool = True,
    seed: int | None = None,
    batch_size: int = attacks.DEFAULT_BATCH_SIZE,
):
    """PGD that maximises the probability of the most likely wrong class (adaptive attack).

    The lab's signed-gradient step (``helpers.attacks.signed_gradient_step``) on
    :func:`wrong_class_log_probability`; for each image, the iterate whose wrong class was
    most probable is kept (the start and every step's result are candidates).

    Args:
        model: The model to attack (its logits are differentiated, in inference mode).
        images: float (N, H, W, C) in [0, 1], NumPy array or tensor.
        labels: True class ids, shape (N,).
        epsilon: L-infinity budget on the [0, 1] pixel scale (8/255 is ``8 / 255``).
        step_size: Step on the [0, 1] scale; default ``2.5 * epsilon / num_steps``.
        num_steps: Gradient steps, >= 1.
        random_start: Start from a uniformly random point of the epsilon-ball.
        seed: Seeds the random start.
        batch_size: Images per gradient pass.

    Returns:
        Adversarial images like ``images``: for each image, the iterate whose most likely
        wrong class had the highest probability.

    Raises:
        TypeError, ValueError: For a model that is not a Keras model, malformed images or
            labels, or a budget, step or count out of range.
    """
    array, labels, epsilon = attacks.check_attack_arguments(model, images, labels, epsilon)
    epsilon, step_size, num_steps, _ = attacks.pgd_settings(epsilon, step_size, num_steps, 1)
    batch_size = check_positive_int(batch_size, "batch_size")
    step = attacks.compiled_attack(model).step(wrong_class_log_probability)
    eps, step_tensor = tf.constant(epsilon), tf.constant(step_size)
    generator = np.random.default_rng(seed)
    result = array.copy()
    for first in range(0, len(array), batch_size):
        originals = array[first : first + batch_size]
        batch_labels = tf.constant(labels[first : first + batch_size])
        current = originals
        if random_start and epsilon > 0:
            noise = generator.uniform(-epsilon, epsilon, originals.shape).astype(np.float32)
            current = attacks.project(originals + noise, originals, epsilon).numpy()
        kept, best = current.copy(), np.full(len(originals), -np.inf)
        for _ in range(num_steps + 1):  # the last pass only scores the final iterate
            stepped, wrong, _ = step(
                tf.constant(current), tf.constant(originals), batch_labels, eps, step_tensor
            )
            wrong = wrong.numpy()
            better = wrong > best
            kept[better], best[better] = current[better], wrong[better]
            current = stepped.numpy()
        result[first : first + batch_size] = kept
    return attacks.like_input(result, images)
