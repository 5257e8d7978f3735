"""FGSM and PGD under an L-infinity budget (introduced in notebooks 03 and 04).

Both attacks take a model, images in [0, 1], labels and ``epsilon`` on the [0, 1] pixel
scale (8/255 is written ``8 / 255``), and return adversarial images of the same shape and
dtype, inside the epsilon-ball around the originals and inside [0, 1].

Two details that popular tutorials get wrong are handled here:

- The loss is computed on the **logits**. A model from ``helpers.models.build_cnn`` ends in
  a softmax; its logits are taken with ``logits_model`` (shared weights). Differentiating a
  saturated softmax gives gradients that are numerically zero.
- The model runs in **inference mode** (``training=False``): BatchNormalization uses its
  moving statistics and updates nothing, and dropout is off.

The PGD loop is compiled once per model as a ``tf.function`` whose inputs are tensors
with an unknown batch size, so it is reused across calls, batch sizes, epsilons and step
counts without retracing.
"""

from __future__ import annotations

import logging
import weakref

import keras
import numpy as np
import tensorflow as tf

from helpers.lab.checks import check_epsilon, check_images, check_labels, check_positive_int
from helpers.models import logits_model

DEFAULT_BATCH_SIZE = 256

_compiled: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class _CompiledAttack:
    """The tf.functions of one model's attack loop, traced once and reused."""

    def __init__(self, logits: keras.Model):
        self.logits = logits
        image_spec = tf.TensorSpec([None, *logits.input_shape[1:]], tf.float32)
        label_spec = tf.TensorSpec([None], tf.int64)
        scalar = tf.TensorSpec([], tf.float32)
        self.run = tf.function(
            self._run,
            input_signature=[
                image_spec,
                image_spec,
                label_spec,
                scalar,
                scalar,
                tf.TensorSpec([], tf.int32),
                scalar,
            ],
        )
        self.evaluate = tf.function(self._evaluate, input_signature=[image_spec, label_spec])
        self.step_and_check = tf.function(
            self._step_and_check,
            input_signature=[image_spec, image_spec, label_spec, scalar, scalar],
        )

    def _run(self, start, originals, labels, epsilon, step_size, num_steps, direction):
        """Runs :func:`signed_gradient_steps` on this model's logits."""
        return signed_gradient_steps(
            self.logits,
            start,
            originals,
            labels,
            radius=epsilon,
            step_size=step_size,
            num_steps=num_steps,
            direction=direction,
        )

    def _step_and_check(self, adversarial, originals, labels, epsilon, step_size):
        """One untargeted step; also says whether the input already fools the model.

        The check reuses the forward pass of the gradient, so early stopping costs
        nothing extra: an example found misclassified is retired with its current image.
        """
        _, gradient, logits = loss_and_gradient(self.logits, adversarial, labels)
        fooled = tf.not_equal(tf.argmax(logits, axis=-1), labels)
        stepped = adversarial + step_size * tf.sign(gradient)
        lower = tf.maximum(originals - epsilon, 0.0)
        upper = tf.minimum(originals + epsilon, 1.0)
        return tf.clip_by_value(stepped, lower, upper), fooled

    def _evaluate(self, images, labels):
        """Per-example loss and predicted class, in inference mode."""
        logits = self.logits(images, training=False)
        losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
        return losses, tf.argmax(logits, axis=-1)


def loss_and_gradient(logits_model: keras.Model, images, labels):
    """Per-example cross-entropy on the logits and its gradient with respect to the images.

    Args:
        logits_model: A model returning logits; it runs in inference mode.
        images: float32 tensor (N, H, W, C).
        labels: int64 tensor (N,).

    Returns:
        ``(losses, gradient, logits)``. A model whose output does not depend
        differentiably on its input (for example behind a ``tf.stop_gradient``) gets a zero
        gradient, not ``None``: the attack then stalls, as it would in practice.
    """
    with tf.GradientTape() as tape:
        tape.watch(images)
        logits = logits_model(images, training=False)
        losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
    gradient = tape.gradient(losses, images, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    return losses, gradient, logits


def signed_gradient_steps(
    logits_model, start, originals, labels, *, radius, step_size, num_steps, direction
):
    """The core of FGSM and PGD, shared with adversarial training (``helpers.training``).

    Takes ``num_steps`` steps of size ``step_size`` along the sign of the loss gradient,
    starting at ``start``; after each step, projects into the L-infinity ball of ``radius``
    around ``originals`` and into [0, 1]. Pure TensorFlow, so it can run inside any
    ``tf.function`` (an attack loop or a Keras ``train_step``).

    Args:
        logits_model: A model returning logits; it runs in inference mode.
        start: float32 tensor, the first iterate (originals, or originals plus noise).
        originals: float32 tensor, the clean images.
        labels: int64 tensor, true labels (or targets when ``direction`` is -1).
        radius: Projection radius on the [0, 1] scale (epsilon; 1 means only [0, 1]).
        step_size: Size of each step on the [0, 1] scale.
        num_steps: Number of steps (a Python int or an int32 tensor).
        direction: +1 ascends the loss of ``labels`` (untargeted); -1 descends it (targeted).

    Returns:
        The final iterate, a float32 tensor like ``originals``.
    """
    lower = tf.maximum(originals - radius, 0.0)
    upper = tf.minimum(originals + radius, 1.0)

    def step(count, adversarial):
        _, gradient, _ = loss_and_gradient(logits_model, adversarial, labels)
        adversarial = adversarial + direction * step_size * tf.sign(gradient)
        return count + 1, tf.clip_by_value(adversarial, lower, upper)

    # An explicit while_loop: it compiles to one graph loop whether or not the caller's
    # tf.function uses AutoGraph (Keras compiles train_step without it).
    _, adversarial = tf.while_loop(
        lambda count, _: count < num_steps,
        step,
        (tf.constant(0), tf.clip_by_value(start, lower, upper)),
    )
    return adversarial


class _PerModelTracingFilter(logging.Filter):
    """Drops TensorFlow's "triggered tf.function retracing" notice for the lab's own loops.

    Each model gets its own compiled loop, traced once. TensorFlow counts the traces of all
    loops built from the same method together, so a notebook that attacks several models
    would warn about "excessive retracing" that is not happening. Other notices pass.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("triggered tf.function retracing" in message and "<helpers." in message)


def quiet_per_model_tracing() -> None:
    """Installs :class:`_PerModelTracingFilter` on TensorFlow's logger (once)."""
    logger = tf.get_logger()
    if not any(isinstance(existing, _PerModelTracingFilter) for existing in logger.filters):
        logger.addFilter(_PerModelTracingFilter())


def compiled_attack(model: keras.Model) -> _CompiledAttack:
    """Returns the compiled attack loop for ``model``, building it on first use.

    Args:
        model: A model ending in a softmax (its logits are attacked) or a logits model.

    Returns:
        The cached compiled functions for this model.
    """
    if model not in _compiled:
        quiet_per_model_tracing()
        is_softmax = bool(model.layers) and isinstance(model.layers[-1], keras.layers.Softmax)
        _compiled[model] = _CompiledAttack(logits_model(model) if is_softmax else model)
    return _compiled[model]


def _prepare(model, images, labels, epsilon, targeted):
    """Validates shared attack arguments; returns NumPy images and labels."""
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras.Model, got {type(model).__name__}.")
    epsilon = check_epsilon(epsilon)
    if labels is None:
        what = "target labels (the class each image should be taken to)" if targeted else "labels"
        raise ValueError(f"The attack needs {what}; got labels=None.")
    array = check_images(images)
    labels = check_labels(labels, len(array), model.output_shape[-1])
    return array, labels, epsilon


def _restore_type(adversarial: np.ndarray, like):
    """Returns a tensor if the caller passed a tensor, else a NumPy array, of like's dtype."""
    if isinstance(like, tf.Tensor):
        return tf.convert_to_tensor(adversarial, dtype=like.dtype)
    return adversarial.astype(np.asarray(like).dtype, copy=False)


def default_step_size(epsilon: float, num_steps: int) -> float:
    """Returns PGD's default step, ``2.5 * epsilon / num_steps`` (Madry et al.).

    Args:
        epsilon: The budget on the [0, 1] scale.
        num_steps: The number of steps.

    Returns:
        A positive step size (1 when ``epsilon`` is 0, where any step is projected away).
    """
    step = 2.5 * epsilon / num_steps
    return step if step > 0 else (epsilon or 1.0)


def pgd_settings(epsilon, step_size, num_steps, restarts) -> tuple[float, float, int, int]:
    """Validates PGD's budget and counts; fills in the default step size.

    Shared by :func:`pgd` and the early-stopping evaluation in ``helpers.evaluation``.

    Args:
        epsilon: The budget on the [0, 1] scale.
        step_size: The step on the [0, 1] scale, or ``None`` for :func:`default_step_size`.
        num_steps: Steps per restart, >= 1.
        restarts: Restarts, >= 1.

    Returns:
        ``(epsilon, step_size, num_steps, restarts)``, checked.

    Raises:
        TypeError, ValueError: For a value out of range or of the wrong type.
    """
    epsilon = check_epsilon(epsilon)
    num_steps = check_positive_int(num_steps, "num_steps")
    restarts = check_positive_int(restarts, "restarts")
    step_size = default_step_size(epsilon, num_steps) if step_size is None else step_size
    step_size = check_epsilon(step_size, "step_size", allow_zero=False)
    return epsilon, step_size, num_steps, restarts


def fgsm(
    model: keras.Model,
    images,
    labels,
    epsilon: float,
    *,
    targeted: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
):
    """Fast gradient sign method: one step of size ``epsilon`` along the gradient's sign.

    Args:
        model: The model to attack (its logits are differentiated, in inference mode).
        images: float (N, H, W, C) in [0, 1], NumPy array or tensor.
        labels: True class ids; with ``targeted=True``, the target class ids.
        epsilon: L-infinity budget on the [0, 1] pixel scale, in [0, 1] (8/255 = ``8 / 255``).
        targeted: Descend the loss of the target labels instead of ascending the true ones.
        batch_size: Images per gradient pass.

    Returns:
        Adversarial images, same shape and dtype as ``images``.

    Raises:
        TypeError, ValueError: For malformed images, labels or epsilon.
    """
    return pgd(
        model,
        images,
        labels,
        epsilon,
        step_size=epsilon if epsilon else 1.0,
        num_steps=1,
        random_start=False,
        targeted=targeted,
        batch_size=batch_size,
    )


def pgd(
    model: keras.Model,
    images,
    labels,
    epsilon: float,
    *,
    step_size: float | None = None,
    num_steps: int = 10,
    random_start: bool = True,
    restarts: int = 1,
    targeted: bool = False,
    seed: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
):
    """Projected gradient descent (Madry et al. 2018) under an L-infinity budget.

    Each step moves ``step_size`` along the sign of the loss gradient, then projects back
    into the epsilon-ball and [0, 1]. With ``restarts > 1``, each example keeps the restart
    that fools the model (reaches the target, if targeted), else the one with the highest
    loss (lowest target loss, if targeted).

    Args:
        model: The model to attack (its logits are differentiated, in inference mode).
        images: float (N, H, W, C) in [0, 1], NumPy array or tensor.
        labels: True class ids; with ``targeted=True``, the target class ids.
        epsilon: L-infinity budget on the [0, 1] pixel scale, in [0, 1] (8/255 = ``8 / 255``).
        step_size: Size of each step on the [0, 1] scale; default ``2.5 * epsilon / num_steps``.
        num_steps: Gradient steps per restart, >= 1.
        random_start: Start from a uniformly random point of the epsilon-ball.
        restarts: Independent runs per example, >= 1 (the best is kept).
        targeted: Descend the loss of the target labels instead of ascending the true ones.
        seed: Seeds the random starts; the same seed gives the same images.
        batch_size: Images per gradient pass.

    Returns:
        Adversarial images, same shape and dtype as ``images``.

    Raises:
        TypeError, ValueError: For malformed images, labels, epsilon, step size or counts.
    """
    array, labels, epsilon = _prepare(model, images, labels, epsilon, targeted)
    epsilon, step_size, num_steps, restarts = pgd_settings(epsilon, step_size, num_steps, restarts)
    batch_size = check_positive_int(batch_size, "batch_size")
    attack = compiled_attack(model)
    direction = tf.constant(-1.0 if targeted else 1.0)
    generator = np.random.default_rng(seed)
    result = array.copy()
    for start in range(0, len(array), batch_size):
        originals = tf.constant(array[start : start + batch_size])
        batch_labels = tf.constant(labels[start : start + batch_size])
        best, best_score = None, None
        for _ in range(restarts):
            begin = originals
            if random_start and epsilon > 0:
                noise = generator.uniform(-epsilon, epsilon, originals.shape).astype(np.float32)
                begin = originals + noise
            candidate = attack.run(
                begin,
                originals,
                batch_labels,
                tf.constant(epsilon),
                tf.constant(step_size),
                tf.constant(num_steps, tf.int32),
                direction,
            )
            if restarts == 1:
                best = candidate
                break
            losses, predicted = (t.numpy() for t in attack.evaluate(candidate, batch_labels))
            success = (
                (predicted == batch_labels.numpy())
                if targeted
                else (predicted != batch_labels.numpy())
            )
            # Success dominates; among equals, higher loss (lower target loss) wins.
            score = success * 1e6 + (-losses if targeted else losses)
            if best is None:
                best, best_score = candidate.numpy(), score
            else:
                better = score > best_score
                best = np.where(better[:, None, None, None], candidate.numpy(), best)
                best_score = np.maximum(score, best_score)
        result[start : start + batch_size] = np.asarray(best)
    return _restore_type(result, images)
