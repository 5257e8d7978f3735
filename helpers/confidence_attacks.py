"""PGD variants that decide how confident the model's mistake is (notebook 08).

Two ends of one scale, both L-infinity PGD on the logits in inference mode, like
``helpers.attacks.pgd`` (same budget checks, same projection):

- ``pgd_until_fooled`` ascends the cross-entropy and keeps, for each image, the *first*
  iterate that is misclassified: the smallest push that changes the label, so the model is
  usually unsure about its new answer (``helpers.evaluation.robust_accuracy`` counts the
  same first success with its early stopping).
- ``high_confidence_pgd`` is the *adaptive* attack against a confidence-threshold detector
  (``helpers.detection``): it ascends the log-probability of the most likely wrong class,
  so it keeps pushing after the label has flipped until the wrong class is as confident as
  it can be made, and keeps each image's most confident iterate.

A learner who only wants to fool the classifier stops early; an attacker who knows the
model rejects unsure inputs does not.
"""

from __future__ import annotations

import weakref

import keras
import numpy as np
import tensorflow as tf

from helpers.attacks import pgd_settings
from helpers.lab.checks import check_images, check_labels, check_positive_int
from helpers.models import logits_model

DEFAULT_BATCH_SIZE = 256

_compiled: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


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


class _CompiledStep:
    """One compiled PGD step for one model, with either loss, traced once and reused."""

    def __init__(self, logits: keras.Model):
        self.logits = logits
        image_spec = tf.TensorSpec([None, *logits.input_shape[1:]], tf.float32)
        scalar = tf.TensorSpec([], tf.float32)
        self.step = tf.function(
            self._step,
            input_signature=[
                image_spec,
                image_spec,
                tf.TensorSpec([None], tf.int64),
                scalar,
                scalar,
                tf.TensorSpec([], tf.bool),
            ],
        )

    def _step(self, adversarial, originals, labels, epsilon, step_size, high_confidence):
        """Returns the next iterate, and the current one's wrong-class log-prob and class."""
        with tf.GradientTape() as tape:
            tape.watch(adversarial)
            logits = self.logits(adversarial, training=False)
            wrong = wrong_class_log_probability(logits, labels)
            cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
            loss = tf.where(high_confidence, wrong, cross_entropy)
        # A model whose output ignores its input (behind tf.stop_gradient) gets a zero gradient.
        gradient = tape.gradient(
            loss, adversarial, unconnected_gradients=tf.UnconnectedGradients.ZERO
        )
        lower = tf.maximum(originals - epsilon, 0.0)
        upper = tf.minimum(originals + epsilon, 1.0)
        stepped = tf.clip_by_value(adversarial + step_size * tf.sign(gradient), lower, upper)
        return stepped, wrong, tf.argmax(logits, axis=-1)


def _compiled_step(model: keras.Model) -> _CompiledStep:
    """Returns the cached compiled step of ``model`` (its logits if it ends in a softmax)."""
    if model not in _compiled:
        ends_in_softmax = bool(model.layers) and isinstance(model.layers[-1], keras.layers.Softmax)
        _compiled[model] = _CompiledStep(logits_model(model) if ends_in_softmax else model)
    return _compiled[model]


def _attack_batch(step, originals, labels, start, settings, high_confidence):
    """Runs the steps on one batch; returns the iterate kept for each image."""
    epsilon, step_size, num_steps = settings
    kept, best = start.copy(), np.full(len(labels), -np.inf)
    active, current = np.arange(len(labels)), start
    flag = tf.constant(high_confidence)
    for count in range(num_steps + 1):  # the last pass only scores the final iterate
        stepped, wrong, predicted = step.step(
            tf.constant(current),
            tf.constant(originals[active]),
            tf.constant(labels[active]),
            epsilon,
            step_size,
            flag,
        )
        stepped, wrong, predicted = stepped.numpy(), wrong.numpy(), predicted.numpy()
        if high_confidence:  # keep each image's most confident wrong answer so far
            better = wrong > best[active]
            kept[active[better]], best[active[better]] = current[better], wrong[better]
        else:  # keep the first misclassified iterate and stop attacking that image
            fooled = predicted != labels[active]
            kept[active[fooled]] = current[fooled]
            active, current, stepped = active[~fooled], current[~fooled], stepped[~fooled]
        if count == num_steps or not len(active):
            break
        current = stepped
    if not high_confidence:
        kept[active] = current  # never fooled: the final iterate
    return kept


def _run(
    model,
    images,
    labels,
    epsilon,
    step_size,
    num_steps,
    random_start,
    seed,
    batch_size,
    high_confidence,
):
    """Checks the arguments and attacks in batches."""
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras.Model, got {type(model).__name__}.")
    if labels is None:
        raise ValueError("The attack needs the true labels; got labels=None.")
    array = check_images(images)
    labels = check_labels(labels, len(array), model.output_shape[-1])
    epsilon, step_size, num_steps, _ = pgd_settings(epsilon, step_size, num_steps, 1)
    batch_size = check_positive_int(batch_size, "batch_size")
    step = _compiled_step(model)
    settings = (tf.constant(epsilon), tf.constant(step_size), num_steps)
    generator = np.random.default_rng(seed)
    result = array.copy()
    for first in range(0, len(array), batch_size):
        originals = array[first : first + batch_size]
        start = originals
        if random_start and epsilon > 0:
            noise = generator.uniform(-epsilon, epsilon, originals.shape).astype(np.float32)
            start = np.clip(
                originals + noise,
                np.maximum(originals - epsilon, 0),
                np.minimum(originals + epsilon, 1),
            )
        batch_labels = labels[first : first + batch_size]
        result[first : first + batch_size] = _attack_batch(
            step, originals, batch_labels, start, settings, high_confidence
        )
    return result


def pgd_until_fooled(
    model: keras.Model,
    images,
    labels,
    epsilon: float,
    *,
    num_steps: int = 20,
    step_size: float | None = None,
    random_start: bool = True,
    seed: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> np.ndarray:
    """Cross-entropy PGD that stops on each image at its first misclassified iterate.

    Args:
        model: The model to attack (its logits are differentiated, in inference mode).
        images: float (N, H, W, C) in [0, 1].
        labels: True class ids, shape (N,).
        epsilon: L-infinity budget on the [0, 1] pixel scale (8/255 is ``8 / 255``).
        num_steps: Gradient steps at most, >= 1.
        step_size: Step on the [0, 1] scale; default ``2.5 * epsilon / num_steps``.
        random_start: Start from a uniformly random point of the epsilon-ball.
        seed: Seeds the random start.
        batch_size: Images per gradient pass.

    Returns:
        float32 NumPy adversarial images, shape (N, H, W, C): each the first iterate that
        fooled the model, or the last iterate if none did.

    Raises:
        TypeError, ValueError: For a model that is not a Keras model, malformed images or
            labels, or a budget, step or count out of range.
    """
    return _run(
        model, images, labels, epsilon, step_size, num_steps, random_start, seed, batch_size, False
    )


def high_confidence_pgd(
    model: keras.Model,
    images,
    labels,
    epsilon: float,
    *,
    num_steps: int = 20,
    step_size: float | None = None,
    random_start: bool = True,
    seed: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> np.ndarray:
    """PGD that maximises the probability of the most likely wrong class (adaptive attack).

    Args:
        model: The model to attack (its logits are differentiated, in inference mode).
        images: float (N, H, W, C) in [0, 1].
        labels: True class ids, shape (N,).
        epsilon: L-infinity budget on the [0, 1] pixel scale (8/255 is ``8 / 255``).
        num_steps: Gradient steps, >= 1.
        step_size: Step on the [0, 1] scale; default ``2.5 * epsilon / num_steps``.
        random_start: Start from a uniformly random point of the epsilon-ball.
        seed: Seeds the random start.
        batch_size: Images per gradient pass.

    Returns:
        float32 NumPy adversarial images, shape (N, H, W, C): for each image, the iterate
        whose most likely wrong class had the highest probability.

    Raises:
        TypeError, ValueError: As for :func:`pgd_until_fooled`.
    """
    return _run(
        model, images, labels, epsilon, step_size, num_steps, random_start, seed, batch_size, True
    )
