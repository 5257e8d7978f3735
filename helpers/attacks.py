"""FGSM and PGD under an L-infinity budget, and the one attack core (notebooks 03 and 04).

Every attack in the lab has the same shape::

    adversarial = attack(model, images, labels, epsilon, *, settings...)

- ``model``: a Keras model ending in a softmax (its logits are attacked, through
  ``helpers.models.logits_model``) or a model that returns logits.
- ``images``: float (N, H, W, C) in [0, 1], a NumPy array or a tensor.
- ``labels``: integer class ids, one per image (the target classes when ``targeted=True``).
- ``epsilon``: the L-infinity budget on the [0, 1] pixel scale (8/255 is written ``8 / 255``),
  positional or keyword; every setting after it is keyword-only.
- settings share their names: ``step_size``, ``num_steps``, ``restarts``, ``random_start``,
  ``targeted``, ``seed``, ``batch_size``.
- The result has the caller's type (a tensor for a tensor, else a NumPy array), shape and
  dtype, inside the epsilon-ball around the originals and inside [0, 1].

Two details that popular tutorials get wrong are handled here:

- The loss is computed on the **logits**. Differentiating a saturated softmax gives
  gradients that are numerically zero.
- The model runs in **inference mode** (``training=False``): BatchNormalization uses its
  moving statistics and updates nothing, and dropout is off.

The core is one signed-gradient step with one projection, :func:`signed_gradient_step`,
parameterised by the loss. FGSM, PGD, PGD that stops at the first success (the
early-stopping evaluation of ``helpers.evaluation``), the confidence attacks of
``helpers.detection`` and adversarial training (``helpers.adversarial_training``) all take
this step; APGD (``helpers.apgd``) takes its own steps but the same :func:`project`.
Compiled loops are kept per model in one cache (:func:`compiled_attack`); their inputs
have an unknown batch size, so they are traced once and reused across calls, batch sizes,
epsilons and step counts.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Hashable

import keras
import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from helpers.lab.checks import check_epsilon, check_images, check_labels, check_positive_int
from helpers.models import logits_of

DEFAULT_BATCH_SIZE = 256


# --- The core: one loss, one projection, one step ---------------------------------------


def cross_entropy(logits, labels):
    """The untargeted loss: per-example cross-entropy of the true class, from the logits.

    Args:
        logits: float tensor (N, num_classes).
        labels: int64 tensor (N,).

    Returns:
        float tensor (N,).
    """
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)


def project(images, originals, epsilon):
    """Projects onto the L-infinity ball of radius ``epsilon`` around ``originals``, within [0, 1].

    Args:
        images: float32 tensor (N, H, W, C).
        originals: float32 tensor like ``images``, the clean images.
        epsilon: The radius on the [0, 1] scale (1 leaves only the [0, 1] box).

    Returns:
        The nearest point of the ball's intersection with [0, 1], per pixel.
    """
    lower = tf.maximum(originals - epsilon, 0.0)
    upper = tf.minimum(originals + epsilon, 1.0)
    return tf.clip_by_value(images, lower, upper)


def loss_and_gradient(logits_model: keras.Model, images, labels, loss=cross_entropy):
    """Per-example loss on the logits and its gradient with respect to the images.

    Args:
        logits_model: A model returning logits; it runs in inference mode.
        images: float32 tensor (N, H, W, C).
        labels: int64 tensor (N,).
        loss: ``loss(logits, labels)`` -> per-example tensor (N,); default cross-entropy.

    Returns:
        ``(losses, gradient, logits)``. A model whose output does not depend
        differentiably on its input (for example behind a ``tf.stop_gradient``) gets a zero
        gradient, not ``None``: the attack then stalls, as it would in practice.
    """
    with tf.GradientTape() as tape:
        tape.watch(images)
        logits = logits_model(images, training=False)
        losses = loss(logits, labels)
    gradient = tape.gradient(losses, images, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    return losses, gradient, logits


def signed_gradient_step(
    logits_model,
    images,
    originals,
    labels,
    *,
    epsilon,
    step_size,
    direction=1.0,
    loss=cross_entropy,
):
    r"""One step of FGSM and PGD: :math:`\Pi(x + \alpha\,\mathrm{sign}\,\nabla_x L)`.

    Args:
        logits_model: A model returning logits; it runs in inference mode.
        images: float32 tensor, the current iterate.
        originals: float32 tensor, the clean images.
        labels: int64 tensor, true labels (or targets when ``direction`` is -1).
        epsilon: Projection radius on the [0, 1] scale (1 means only [0, 1]).
        step_size: Size of the step on the [0, 1] scale.
        direction: +1 ascends the loss (untargeted); -1 descends it (targeted).
        loss: ``loss(logits, labels)`` -> per-example tensor; default cross-entropy.

    Returns:
        ``(next iterate, losses, logits)``; the losses and logits are those of ``images``
        (the step's own forward pass), so a caller can check success at no extra cost.
    """
    losses, gradient, logits = loss_and_gradient(logits_model, images, labels, loss)
    stepped = project(images + direction * step_size * tf.sign(gradient), originals, epsilon)
    return stepped, losses, logits


def signed_gradient_steps(
    logits_model,
    start,
    originals,
    labels,
    *,
    epsilon,
    step_size,
    num_steps,
    direction=1.0,
    loss=cross_entropy,
):
    """``num_steps`` of :func:`signed_gradient_step` from ``start``, projected first.

    Pure TensorFlow, so it can run inside any ``tf.function`` (an attack loop or a Keras
    ``train_step``).

    Args:
        logits_model: A model returning logits; it runs in inference mode.
        start: float32 tensor, the first iterate (originals, or originals plus noise).
        originals: float32 tensor, the clean images.
        labels: int64 tensor, true labels (or targets when ``direction`` is -1).
        epsilon: Projection radius on the [0, 1] scale (1 means only [0, 1]).
        step_size: Size of each step on the [0, 1] scale.
        num_steps: Number of steps (a Python int or an int32 tensor).
        direction: +1 ascends the loss of ``labels`` (untargeted); -1 descends it (targeted).
        loss: ``loss(logits, labels)`` -> per-example tensor; default cross-entropy.

    Returns:
        The final iterate, a float32 tensor like ``originals``.
    """

    def step(count, adversarial):
        adversarial, _, _ = signed_gradient_step(
            logits_model,
            adversarial,
            originals,
            labels,
            epsilon=epsilon,
            step_size=step_size,
            direction=direction,
            loss=loss,
        )
        return count + 1, adversarial

    # An explicit while_loop: it compiles to one graph loop whether or not the caller's
    # tf.function uses AutoGraph (Keras compiles train_step without it).
    _, adversarial = tf.while_loop(
        lambda count, _: count < num_steps,
        step,
        (tf.constant(0), project(start, originals, epsilon)),
    )
    return adversarial


# --- One cache of compiled loops per model ----------------------------------------------


class CompiledAttack:
    """A model's logits and its compiled attack functions, each traced once and reused.

    Attributes:
        logits: The network the attacks differentiate (``helpers.models.logits_of``).
    """

    def __init__(self, logits: keras.Model):
        self.logits = logits
        self.image_spec = tf.TensorSpec([None, *logits.input_shape[1:]], tf.float32)
        self._functions: dict[Hashable, Callable] = {}

    def function(self, key: Hashable, build: Callable[[], Callable]) -> Callable:
        """Returns the compiled function stored under ``key``, building it on first use.

        Args:
            key: Names the function (for example ``("apgd", "ce")``).
            build: Returns the ``tf.function``; called once per key.

        Returns:
            The cached function.
        """
        if key not in self._functions:
            self._functions[key] = build()
        return self._functions[key]

    def pgd_loop(self, start, originals, labels, epsilon, step_size, num_steps, direction):
        """:func:`signed_gradient_steps` on the cross-entropy, compiled."""
        return self.function(("pgd_loop",), self._build_pgd_loop)(
            start, originals, labels, epsilon, step_size, num_steps, direction
        )

    def step(self, loss=cross_entropy):
        """Returns the compiled :func:`signed_gradient_step` (ascending ``loss``)."""
        return self.function(("step", loss), functools.partial(self._build_step, loss))

    def evaluate(self, images, labels):
        """Per-example cross-entropy and predicted class, in inference mode, compiled."""
        return self.function(("evaluate",), self._build_evaluate)(images, labels)

    def _build_pgd_loop(self):
        scalar = tf.TensorSpec([], tf.float32)

        def loop(start, originals, labels, epsilon, step_size, num_steps, direction):
            return signed_gradient_steps(
                self.logits,
                start,
                originals,
                labels,
                epsilon=epsilon,
                step_size=step_size,
                num_steps=num_steps,
                direction=direction,
            )

        signature = [self.image_spec, self.image_spec, tf.TensorSpec([None], tf.int64)]
        signature += [scalar, scalar, tf.TensorSpec([], tf.int32), scalar]
        return tf.function(loop, input_signature=signature)

    def _build_step(self, loss):
        scalar = tf.TensorSpec([], tf.float32)

        def step(images, originals, labels, epsilon, step_size):
            stepped, losses, logits = signed_gradient_step(
                self.logits,
                images,
                originals,
                labels,
                epsilon=epsilon,
                step_size=step_size,
                loss=loss,
            )
            return stepped, losses, tf.argmax(logits, axis=-1)

        signature = [self.image_spec, self.image_spec, tf.TensorSpec([None], tf.int64)]
        return tf.function(step, input_signature=[*signature, scalar, scalar])

    def _build_evaluate(self):
        def evaluate(images, labels):
            logits = self.logits(images, training=False)
            return cross_entropy(logits, labels), tf.argmax(logits, axis=-1)

        signature = [self.image_spec, tf.TensorSpec([None], tf.int64)]
        return tf.function(evaluate, input_signature=signature)


_compiled: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def compiled_attack(model: keras.Model) -> CompiledAttack:
    """Returns the compiled attack functions of ``model``, the one cache of the lab.

    Args:
        model: A model ending in a softmax (its logits are attacked) or a logits model.

    Returns:
        The cached :class:`CompiledAttack` for this model.
    """
    if model not in _compiled:
        _compiled[model] = CompiledAttack(logits_of(model))
    return _compiled[model]


# --- Arguments and results, the same for every attack -----------------------------------


def check_attack_arguments(model, images, labels, epsilon, *, targeted=False):
    """Validates the arguments every attack shares.

    Args:
        model: Must be a ``keras.Model``.
        images: float (N, H, W, C) in [0, 1], finite.
        labels: One class id per image, within the model's classes.
        epsilon: The budget on the [0, 1] scale.
        targeted: Whether ``labels`` are targets (only changes the error message).

    Returns:
        ``(images as a float32 NumPy array, int64 labels, epsilon as a float)``.

    Raises:
        TypeError, ValueError: For a value of the wrong type, shape or range.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras.Model, got {type(model).__name__}.")
    epsilon = check_epsilon(epsilon)
    if labels is None:
        what = "target labels (the class each image should be taken to)" if targeted else "labels"
        raise ValueError(f"The attack needs {what}; got labels=None.")
    array = check_images(images)
    labels = check_labels(labels, len(array), model.output_shape[-1])
    return array, labels, epsilon


def like_input(adversarial: np.ndarray, images):
    """Returns ``adversarial`` as the caller passed ``images``: a tensor or a NumPy array.

    Args:
        adversarial: The attack's result, a NumPy array.
        images: What the caller passed.

    Returns:
        A tensor of ``images``' dtype if ``images`` is a tensor, else a NumPy array.
    """
    if isinstance(images, tf.Tensor):
        return tf.convert_to_tensor(adversarial, dtype=images.dtype)
    return adversarial.astype(np.asarray(images).dtype, copy=False)


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


# --- The attacks ------------------------------------------------------------------------


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
    array, labels, epsilon = check_attack_arguments(
        model, images, labels, epsilon, targeted=targeted
    )
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
            candidate = attack.pgd_loop(
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
    return like_input(result, images)


def first_success(
    model: keras.Model,
    images,
    labels,
    epsilon: float,
    *,
    step_size: float | None = None,
    num_steps: int = 10,
    random_start: bool = True,
    restarts: int = 1,
    seed: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Untargeted PGD that retires each example at its first misclassified iterate.

    The way to *evaluate* PGD (as AutoAttack does): an example that one step fools is
    fooled, so it needs no more steps. A working set of up to ``batch_size`` attempts is
    stepped together; fooled or finished attempts leave and queued ones (further restarts
    of examples not yet fooled) take their place, so every gradient pass is full. Each step's
    forward pass also checks the iterate it starts from, so stopping early costs nothing.

    Args:
        model: The model to attack (its logits are differentiated, in inference mode).
        images: float (N, H, W, C) in [0, 1], NumPy array or tensor.
        labels: True class ids.
        epsilon: L-infinity budget on the [0, 1] pixel scale.
        step_size: Step on the [0, 1] scale; default ``2.5 * epsilon / num_steps``.
        num_steps: Gradient steps per restart at most, >= 1.
        random_start: Start each restart from a uniformly random point of the epsilon-ball.
        restarts: Attempts per example, >= 1; later ones only for examples not yet fooled.
        seed: Seeds the random starts.
        batch_size: Attempts stepped together.
        progress: Show a progress bar over the attempts.

    Returns:
        ``(adversarial, fooled)``: float32 NumPy images, each the first iterate that fooled
        the model or else the last iterate of its last attempt; and a boolean array, True
        where the model was fooled.

    Raises:
        TypeError, ValueError: For malformed arguments.
    """
    array, labels, epsilon = check_attack_arguments(model, images, labels, epsilon)
    epsilon, step_size, num_steps, restarts = pgd_settings(epsilon, step_size, num_steps, restarts)
    batch_size = check_positive_int(batch_size, "batch_size")
    step = compiled_attack(model).step(cross_entropy)
    eps, step_tensor = tf.constant(epsilon), tf.constant(step_size)
    generator = np.random.default_rng(seed)
    random_start = random_start and epsilon > 0

    adversarial = array.copy()
    fooled = np.zeros(len(array), dtype=bool)
    queue = [(index, restart) for restart in range(restarts) for index in range(len(array))]
    queue.reverse()  # pop() from the end: first restarts of every example first
    shape = array.shape[1:]
    # The working set stays in TensorFlow between steps: only the indices, step counts and
    # fooled flags come back to NumPy.
    work_index = np.zeros(0, np.int64)
    work_steps = np.zeros(0, np.int64)
    work_images = tf.zeros((0, *shape), tf.float32)
    work_originals = tf.zeros((0, *shape), tf.float32)
    work_labels = tf.zeros((0,), tf.int64)
    bar = tqdm(total=len(queue), desc="PGD attempts", disable=not progress, leave=False)
    while len(queue) or len(work_index):
        # Refill the working set with attempts on examples not yet fooled.
        fresh = []
        while queue and len(work_index) + len(fresh) < batch_size:
            index, _ = queue.pop()
            if not fooled[index]:
                fresh.append(index)
            else:
                bar.update(1)
        if fresh:
            fresh = np.asarray(fresh, np.int64)
            originals = array[fresh]
            start = originals
            if random_start:
                noise = generator.uniform(-epsilon, epsilon, start.shape).astype(np.float32)
                start = np.clip(start + noise, 0.0, 1.0)
            work_index = np.concatenate([work_index, fresh])
            work_steps = np.concatenate([work_steps, np.zeros(len(fresh), np.int64)])
            work_images = tf.concat([work_images, start], axis=0)
            work_originals = tf.concat([work_originals, originals], axis=0)
            work_labels = tf.concat([work_labels, labels[fresh]], axis=0)
        if not len(work_index):
            continue
        stepped, _, predicted = step(work_images, work_originals, work_labels, eps, step_tensor)
        fooled_now = predicted.numpy() != labels[work_index]
        finished = fooled_now | (work_steps >= num_steps)
        # Keep the first image that fooled the model, or the final iterate of an attempt on
        # an example no attempt has fooled yet.
        keep_image = finished & ~fooled[work_index]
        if keep_image.any():
            chosen = np.flatnonzero(keep_image)
            adversarial[work_index[chosen]] = tf.gather(work_images, chosen).numpy()
        fooled[work_index[fooled_now]] = True
        bar.update(int(finished.sum()))
        work_images = stepped
        if finished.any():
            keep = ~finished
            work_index, work_steps = work_index[keep], work_steps[keep]
            keep = tf.constant(keep)
            work_images = tf.boolean_mask(stepped, keep)
            work_originals = tf.boolean_mask(work_originals, keep)
            work_labels = tf.boolean_mask(work_labels, keep)
        work_steps = work_steps + 1
    bar.close()
    return adversarial, fooled


def pgd_until_fooled(
    model: keras.Model,
    images,
    labels,
    epsilon: float,
    *,
    step_size: float | None = None,
    num_steps: int = 20,
    random_start: bool = True,
    restarts: int = 1,
    seed: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
):
    """PGD that stops on each image at its first misclassified iterate (:func:`first_success`).

    The smallest push that changes the label: the model is usually unsure about its new
    answer (notebook 08 contrasts it with ``helpers.detection.high_confidence_pgd``).

    Args:
        model: The model to attack (its logits are differentiated, in inference mode).
        images: float (N, H, W, C) in [0, 1], NumPy array or tensor.
        labels: True class ids.
        epsilon: L-infinity budget on the [0, 1] pixel scale.
        step_size: Step on the [0, 1] scale; default ``2.5 * epsilon / num_steps``.
        num_steps: Gradient steps per restart at most, >= 1.
        random_start: Start from a uniformly random point of the epsilon-ball.
        restarts: Attempts per example, >= 1.
        seed: Seeds the random starts.
        batch_size: Images per gradient pass.

    Returns:
        Adversarial images like ``images``: each the first iterate that fooled the model,
        or the last iterate if none did.

    Raises:
        TypeError, ValueError: For malformed arguments.
    """
    adversarial, _ = first_success(
        model,
        images,
        labels,
        epsilon,
        step_size=step_size,
        num_steps=num_steps,
        random_start=random_start,
        restarts=restarts,
        seed=seed,
        batch_size=batch_size,
    )
    return like_input(adversarial, images)
