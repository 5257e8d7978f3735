"""APGD-CE and APGD-DLR: PGD that chooses its own step size (Croce and Hein 2020), notebook 07.

PGD with a fixed step is sensitive to the step: too large and it oscillates, too small and
it crawls. Auto-PGD starts with a large step (2 epsilon) and halves it, per example, at
checkpoints where progress stalled: when the loss rose in fewer than ``rho`` of the steps
since the last checkpoint, or when the step was not halved last time and the best loss has
not improved since. On halving, it restarts from the best point found so far. Each step also
carries momentum (``alpha``) from the previous one. The loss is the cross-entropy on the
logits, as in ``helpers.attacks`` (:func:`apgd_ce`), or the difference-of-logits ratio
(:func:`apgd_dlr`, untargeted or, as AutoAttack runs it, targeted at the most likely other
classes); the model runs in inference mode.

Checkpoints follow the paper: the first after 22% of the iterations, then intervals 3% of
the iterations shorter each time, never shorter than 6%.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from helpers import attacks
from helpers.lab.checks import check_positive_int
from helpers.models import logits_of


def checkpoint_schedule(num_steps: int) -> np.ndarray:
    """Returns, per iteration, the length of the interval that ends there (0 if none does).

    Args:
        num_steps: Iterations of the attack.

    Returns:
        An int array of length ``num_steps``; entry ``i`` is the number of iterations since
        the previous checkpoint when iteration ``i`` (0-based) is a checkpoint, else 0.
    """
    first = max(int(math.ceil(0.22 * num_steps)), 1)
    shrink = max(int(math.ceil(0.03 * num_steps)), 1)
    shortest = max(int(math.ceil(0.06 * num_steps)), 1)
    schedule = np.zeros(num_steps, np.int64)
    interval, since = first, 0
    for iteration in range(num_steps):
        since += 1
        if since == interval:
            schedule[iteration] = interval
            since, interval = 0, max(interval - shrink, shortest)
    return schedule


LOSSES = ("ce", "dlr", "dlr_targeted")


def dlr_loss(logits, labels, targets=None):
    """The difference-of-logits ratio (Croce and Hein 2020), per example; higher = worse.

    Untargeted: ``-(z_y - max_{k != y} z_k) / (z_(1) - z_(3))``; targeted at class ``t``:
    ``-(z_y - z_t) / (z_(1) - (z_(3) + z_(4)) / 2)``, where ``z_(i)`` is the i-th largest
    logit. Unlike the cross-entropy, it does not change when the logits are shifted or
    scaled by a positive factor, so a model cannot look robust just by inflating its logits
    until the softmax saturates.

    Args:
        logits: float tensor (N, K), K >= 3 (K >= 4 when targeted).
        labels: int64 tensor (N,), the true classes.
        targets: int64 tensor (N,) of target classes, or ``None`` for the untargeted loss.

    Returns:
        float tensor (N,).
    """
    ranked = tf.sort(logits, axis=-1, direction="DESCENDING")
    true = tf.gather(logits, labels, axis=-1, batch_dims=1)
    if targets is None:
        is_true = tf.one_hot(labels, tf.shape(logits)[-1], on_value=True, off_value=False)
        other = tf.reduce_max(tf.where(is_true, -np.inf, logits), axis=-1)
        return -(true - other) / (ranked[:, 0] - ranked[:, 2] + 1e-12)
    target = tf.gather(logits, targets, axis=-1, batch_dims=1)
    return -(true - target) / (ranked[:, 0] - (ranked[:, 2] + ranked[:, 3]) / 2 + 1e-12)


class _CompiledApgd:
    """The APGD loop for one model and loss, compiled once, reused across calls and batches."""

    def __init__(self, logits: keras.Model, loss: str = "ce"):
        self.logits, self.loss = logits, loss
        image_spec = tf.TensorSpec([None, *logits.input_shape[1:]], tf.float32)
        self.run = tf.function(
            self._run,
            input_signature=[
                image_spec,
                image_spec,
                tf.TensorSpec([None], tf.int64),
                tf.TensorSpec([None], tf.int64),
                tf.TensorSpec([], tf.float32),
                tf.TensorSpec([None], tf.float32),
                tf.TensorSpec([], tf.float32),
                tf.TensorSpec([], tf.float32),
            ],
        )

    def _run(self, start, originals, labels, targets, epsilon, schedule, rho, alpha):
        """Runs every iteration; returns (adversarial images, fooled flags, best losses)."""
        per_example = tf.shape(originals)[:1]

        def broadcast(values):
            return tf.reshape(values, [-1, 1, 1, 1])

        if self.loss == "ce":
            loss = attacks.cross_entropy
        elif self.loss == "dlr":
            loss = dlr_loss
        else:

            def loss(logits, labels):
                return dlr_loss(logits, labels, targets)

        def evaluate(images):
            losses, gradient, logits = attacks.loss_and_gradient(self.logits, images, labels, loss)
            return losses, gradient, tf.not_equal(tf.argmax(logits, axis=-1), labels)

        current = attacks.project(start, originals, epsilon)
        losses, gradient, fooled = evaluate(current)
        state = dict(
            current=current,
            previous=current,
            gradient=gradient,
            losses=losses,
            best=current,
            best_gradient=gradient,
            best_loss=losses,
            found=current,
            fooled=fooled,
            step=tf.fill(per_example, 2.0 * epsilon),
            increases=tf.zeros(per_example),
            best_at_checkpoint=losses,
            halved_at_checkpoint=tf.ones(per_example, tf.bool),
        )

        def iteration(index, state):
            momentum = tf.where(index == 0, 1.0, alpha)  # no momentum on the first step
            current = state["current"]
            stepped = attacks.project(
                current + broadcast(state["step"]) * tf.sign(state["gradient"]), originals, epsilon
            )
            moved = (
                current
                + momentum * (stepped - current)
                + (1.0 - momentum) * (current - state["previous"])
            )
            moved = attacks.project(moved, originals, epsilon)
            losses, gradient, fooled_now = evaluate(moved)
            new_fooled = fooled_now & ~state["fooled"]
            found = tf.where(broadcast(tf.cast(new_fooled, tf.float32)) > 0, moved, state["found"])
            improved = losses > state["best_loss"]
            best = tf.where(broadcast(tf.cast(improved, tf.float32)) > 0, moved, state["best"])
            best_gradient = tf.where(
                broadcast(tf.cast(improved, tf.float32)) > 0, gradient, state["best_gradient"]
            )
            best_loss = tf.where(improved, losses, state["best_loss"])
            increases = state["increases"] + tf.cast(losses > state["losses"], tf.float32)
            new = dict(
                state,
                current=moved,
                previous=current,
                gradient=gradient,
                losses=losses,
                best=best,
                best_gradient=best_gradient,
                best_loss=best_loss,
                found=found,
                fooled=state["fooled"] | fooled_now,
                increases=increases,
            )

            interval = schedule[index]

            def checkpoint():
                oscillating = increases <= rho * interval
                no_progress = ~state["halved_at_checkpoint"] & (
                    state["best_at_checkpoint"] >= best_loss
                )
                halve = oscillating | no_progress
                mask = broadcast(tf.cast(halve, tf.float32)) > 0
                return dict(
                    new,
                    step=tf.where(halve, new["step"] / 2.0, new["step"]),
                    current=tf.where(mask, best, moved),
                    gradient=tf.where(mask, best_gradient, gradient),
                    increases=tf.zeros_like(increases),
                    best_at_checkpoint=best_loss,
                    halved_at_checkpoint=halve,
                )

            new = tf.cond(interval > 0, checkpoint, lambda: new)
            return index + 1, new

        _, state = tf.while_loop(
            lambda index, _: index < tf.shape(schedule)[0], iteration, (tf.constant(0), state)
        )
        fooled = state["fooled"]
        chosen = tf.where(broadcast(tf.cast(fooled, tf.float32)) > 0, state["found"], state["best"])
        return chosen, fooled, state["best_loss"]


def _compiled_apgd(model: keras.Model, loss: str = "ce") -> _CompiledApgd:
    """Returns the compiled APGD loop for a model's logits and a loss (``compiled_attack``)."""
    compiled = attacks.compiled_attack(model)
    return compiled.function(("apgd", loss), lambda: _CompiledApgd(compiled.logits, loss))


def _apgd(
    model,
    images,
    labels,
    epsilon,
    *,
    loss,
    targets_for,
    num_steps,
    restarts,
    rho,
    alpha,
    seed,
    batch_size,
):
    """Runs APGD with one loss; ``targets_for(batch_labels, start)`` gives target classes."""
    array, labels, epsilon = attacks.check_attack_arguments(model, images, labels, epsilon)
    num_steps = check_positive_int(num_steps, "num_steps")
    restarts = check_positive_int(restarts, "restarts")
    batch_size = check_positive_int(batch_size, "batch_size")
    if not 0 < rho < 1 or not 0 < alpha <= 1:
        raise ValueError(f"rho must be in (0, 1) and alpha in (0, 1], got {rho!r} and {alpha!r}.")
    loop = _compiled_apgd(model, loss)
    schedule = tf.constant(checkpoint_schedule(num_steps), tf.float32)
    generator = np.random.default_rng(seed)
    result = array.copy()
    for start in range(0, len(array), batch_size):
        originals = array[start : start + batch_size]
        batch_labels = labels[start : start + batch_size]
        best, best_fooled, best_loss = None, None, None
        for run in range(restarts):
            # A random point on the faces of the epsilon-ball, as in the paper.
            direction = generator.uniform(-1, 1, originals.shape).astype(np.float32)
            peak = np.abs(direction).reshape(len(direction), -1).max(axis=1).reshape(-1, 1, 1, 1)
            begin = originals + epsilon * direction / np.maximum(peak, 1e-12)
            candidate, fooled, loss_values = (
                t.numpy()
                for t in loop.run(
                    tf.constant(begin),
                    tf.constant(originals),
                    tf.constant(batch_labels),
                    tf.constant(targets_for(start, batch_labels, originals, run)),
                    tf.constant(epsilon, tf.float32),
                    schedule,
                    tf.constant(rho, tf.float32),
                    tf.constant(alpha, tf.float32),
                )
            )
            if best is None:
                best, best_fooled, best_loss = candidate, fooled, loss_values
                continue
            better = (fooled & ~best_fooled) | ((fooled == best_fooled) & (loss_values > best_loss))
            best = np.where(better[:, None, None, None], candidate, best)
            best_fooled = best_fooled | fooled
            best_loss = np.where(better, loss_values, best_loss)
        result[start : start + batch_size] = best
    return attacks.like_input(result, images)


def apgd_ce(
    model: keras.Model,
    images,
    labels,
    epsilon: float,
    *,
    num_steps: int = 100,
    restarts: int = 1,
    rho: float = 0.75,
    alpha: float = 0.75,
    seed: int | None = None,
    batch_size: int = attacks.DEFAULT_BATCH_SIZE,
):
    """Auto-PGD on the cross-entropy of the logits, L-infinity (Croce and Hein 2020).

    Args:
        model: The model to attack (its logits are differentiated, in inference mode).
        images: float (N, H, W, C) in [0, 1], NumPy array or tensor.
        labels: True class ids.
        epsilon: L-infinity budget on the [0, 1] pixel scale (8/255 = ``8 / 255``).
        num_steps: Iterations per restart (100 in the paper).
        restarts: Independent random starts; an example fooled by any of them stays fooled.
        rho: Halve the step at a checkpoint if the loss rose in at most this share of steps.
        alpha: Momentum weight of the new step (0.75 in the paper).
        seed: Seeds the random starts.
        batch_size: Images per gradient pass.

    Returns:
        Adversarial images like ``images``: per example, a point that fools the model if
        one was found, else the point of highest loss.

    Raises:
        TypeError, ValueError: For malformed images, labels, epsilon or counts.
    """
    return _apgd(
        model,
        images,
        labels,
        epsilon,
        loss="ce",
        targets_for=lambda start, batch_labels, originals, run: batch_labels,
        num_steps=num_steps,
        restarts=restarts,
        rho=rho,
        alpha=alpha,
        seed=seed,
        batch_size=batch_size,
    )


def apgd_dlr(
    model: keras.Model,
    images,
    labels,
    epsilon: float,
    *,
    target_classes: int | None = 9,
    num_steps: int = 100,
    rho: float = 0.75,
    alpha: float = 0.75,
    seed: int | None = None,
    batch_size: int = attacks.DEFAULT_BATCH_SIZE,
):
    """Auto-PGD on the difference-of-logits ratio (:func:`dlr_loss`), L-infinity.

    As AutoAttack runs it (Croce and Hein 2020): targeted at each of the
    ``target_classes`` classes with the highest clean logits after the true one, one run
    per target (APGD-T); an example fooled by any run stays fooled. With
    ``target_classes=None``, one untargeted run (APGD-DLR).

    Args:
        model: The model to attack (its logits are differentiated, in inference mode).
        images: float (N, H, W, C) in [0, 1], NumPy array or tensor.
        labels: True class ids.
        epsilon: L-infinity budget on the [0, 1] pixel scale (8/255 = ``8 / 255``).
        target_classes: Runs, one per target class (9 in AutoAttack), or ``None``.
        num_steps: Iterations per run (100 in AutoAttack).
        rho: Halve the step at a checkpoint if the loss rose in at most this share of steps.
        alpha: Momentum weight of the new step (0.75 in the paper).
        seed: Seeds the random starts.
        batch_size: Images per gradient pass.

    Returns:
        Adversarial images like ``images``: per example, a point that fools the model if
        one was found, else the point of highest loss of the last run.

    Raises:
        TypeError, ValueError: For malformed arguments, or more target classes than the
            model has classes other than the true one (the targeted loss needs 4 classes).
    """
    classes = model.output_shape[-1]
    if target_classes is None:
        if classes < 3:
            raise ValueError(f"The DLR loss needs at least 3 classes, the model has {classes}.")
        return _apgd(
            model,
            images,
            labels,
            epsilon,
            loss="dlr",
            targets_for=lambda start, batch_labels, originals, run: batch_labels,
            num_steps=num_steps,
            restarts=1,
            rho=rho,
            alpha=alpha,
            seed=seed,
            batch_size=batch_size,
        )
    target_classes = check_positive_int(target_classes, "target_classes")
    if classes < 4 or target_classes > classes - 1:
        raise ValueError(
            f"target_classes must be at most {classes - 1} (the model's other classes) and the "
            f"model needs at least 4 classes for the targeted DLR loss; got {target_classes} "
            f"for {classes} classes."
        )
    logits = logits_of(model)

    ranked = {}  # batch start -> other classes by clean logit, computed once per batch

    def targets_for(start, batch_labels, originals, run):
        if start not in ranked:
            scores = np.array(logits(originals, training=False))
            scores[np.arange(len(scores)), batch_labels] = -np.inf
            ranked.clear()
            ranked[start] = np.argsort(-scores, axis=1).astype(np.int64)
        return ranked[start][:, run]

    return _apgd(
        model,
        images,
        labels,
        epsilon,
        loss="dlr_targeted",
        targets_for=targets_for,
        num_steps=num_steps,
        restarts=target_classes,
        rho=rho,
        alpha=alpha,
        seed=seed,
        batch_size=batch_size,
    )
