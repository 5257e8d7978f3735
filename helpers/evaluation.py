"""Measuring a model: clean accuracy (notebook 02) and robust accuracy (notebooks 03, 04).

``accuracy`` counts correct top-1 predictions. ``robust_accuracy`` counts the images a
model still classifies correctly after an attack computed on that same model.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from helpers import attacks
from helpers.apgd import apgd_ce, apgd_dlr
from helpers.lab.checks import check_images, check_labels
from helpers.square import square_attack


def predict_classes(model: keras.Model, images, *, batch_size: int = 512) -> np.ndarray:
    """Returns the top-1 class of each image, in inference mode.

    Args:
        model: A model returning probabilities or logits.
        images: float32 (N, H, W, C) in [0, 1].
        batch_size: Images per forward pass.

    Returns:
        int64 predicted class ids, shape (N,).
    """
    images = check_images(images)
    predicted = [
        np.argmax(model(images[start : start + batch_size], training=False), axis=-1)
        for start in range(0, len(images), batch_size)
    ]
    return np.concatenate(predicted).astype(np.int64) if predicted else np.zeros(0, np.int64)


def accuracy(model: keras.Model, images, labels, *, batch_size: int = 512) -> float:
    """Returns the share of images the model classifies correctly.

    Args:
        model: A model returning probabilities or logits.
        images: float32 (N, H, W, C) in [0, 1].
        labels: Integer class ids, shape (N,).
        batch_size: Images per forward pass.

    Returns:
        Accuracy in [0, 1].

    Raises:
        ValueError: If the images or labels are malformed, or there are no images.
    """
    images = check_images(images)
    labels = check_labels(labels, len(images), model.output_shape[-1])
    if len(labels) == 0:
        raise ValueError("accuracy needs at least one image.")
    return float(np.mean(predict_classes(model, images, batch_size=batch_size) == labels))


def _as_arrays(images, labels):
    """Accepts arrays, tensors or a tf.data pipeline of (images, labels) batches."""
    if isinstance(images, tf.data.Dataset):
        if labels is not None:
            raise ValueError(
                "Pass labels=None with a tf.data pipeline; it yields (images, labels)."
            )
        batches = [(np.asarray(x), np.asarray(y)) for x, y in images]
        if not batches:
            raise ValueError("The tf.data pipeline yielded no batches.")
        images = np.concatenate([x for x, _ in batches])
        labels = np.concatenate([y for _, y in batches])
        if labels.ndim == 2:  # one-hot labels from a training pipeline
            labels = labels.argmax(-1)
    if labels is None:
        raise ValueError("labels are required (integer class ids, one per image).")
    return images, labels


def _pgd_early_stop(model, images, labels, attack_kwargs, batch_size, progress) -> np.ndarray:
    """Untargeted PGD that retires each example as soon as it is misclassified.

    A working set of up to ``batch_size`` attempts is stepped together; fooled or finished
    attempts leave and queued ones take their place, so every gradient pass is full. An
    example counts as robust only if no step of any restart fooled the model, which is never
    more than plain PGD with the same starts would report.

    Returns:
        A boolean array, True where the example resisted every restart.
    """
    epsilon, step_size, num_steps, restarts = attacks.pgd_settings(
        attack_kwargs.get("epsilon"),
        attack_kwargs.get("step_size"),
        attack_kwargs.get("num_steps", 10),
        attack_kwargs.get("restarts", 1),
    )
    random_start = attack_kwargs.get("random_start", True) and epsilon > 0
    generator = np.random.default_rng(attack_kwargs.get("seed"))
    unknown = set(attack_kwargs) - {
        "epsilon",
        "num_steps",
        "restarts",
        "step_size",
        "random_start",
        "seed",
        "targeted",
    }
    if unknown:
        raise TypeError(f"Unknown PGD arguments: {sorted(unknown)}.")
    attack = attacks.compiled_attack(model)
    eps, step = tf.constant(epsilon), tf.constant(step_size)

    robust = np.ones(len(images), dtype=bool)
    queue = [(index, restart) for restart in range(restarts) for index in range(len(images))]
    queue.reverse()  # pop() from the end: first restarts of every example first
    shape = images.shape[1:]
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
            if robust[index]:
                fresh.append(index)
            else:
                bar.update(1)
        if fresh:
            fresh = np.asarray(fresh, np.int64)
            originals = images[fresh]
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
        stepped, fooled = attack.step_and_check(work_images, work_originals, work_labels, eps, step)
        fooled = fooled.numpy()
        robust[work_index[fooled]] = False
        finished = fooled | (work_steps >= num_steps)
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
    return robust


def robust_accuracy(
    model: keras.Model,
    images,
    labels=None,
    attack=None,
    *,
    early_stop: bool = True,
    batch_size: int = 256,
    progress: bool = True,
    **attack_kwargs,
) -> float:
    """Returns the share of images still classified correctly under an attack on ``model``.

    Only images the model classifies correctly are attacked (the others count as wrong).
    With ``attack=pgd`` and ``early_stop=True`` (untargeted), each example stops being
    attacked as soon as one step fools the model, as AutoAttack does: far cheaper on a weak
    model, and never a higher (weaker) figure than running every step.

    Args:
        model: The model to attack and evaluate (attacks are computed on it).
        images: float32 (N, H, W, C) in [0, 1], or a tf.data pipeline of (images, labels).
        labels: Integer class ids (``None`` with a pipeline).
        attack: ``helpers.attacks.pgd`` (default) or ``fgsm``, or any function with the
            signature ``attack(model, images, labels, **attack_kwargs)``.
        early_stop: Use the early-stopping PGD evaluation (PGD only).
        batch_size: Images per gradient pass.
        progress: Show a progress bar.
        **attack_kwargs: Passed to the attack, for example ``epsilon=8 / 255, num_steps=20``.

    Returns:
        Robust accuracy in [0, 1].

    Raises:
        ValueError, TypeError: For malformed inputs or attack arguments.
    """
    attack = attacks.pgd if attack is None else attack
    images, labels = _as_arrays(images, labels)
    images = check_images(images)
    labels = check_labels(labels, len(images), model.output_shape[-1])
    if len(labels) == 0:
        raise ValueError("robust_accuracy needs at least one image.")
    correct = predict_classes(model, images, batch_size=batch_size) == labels
    targets_images, targets_labels = images[correct], labels[correct]
    if not len(targets_labels):
        return 0.0
    if attack is attacks.pgd and early_stop and not attack_kwargs.get("targeted", False):
        survived = _pgd_early_stop(
            model, targets_images, targets_labels, attack_kwargs, batch_size, progress
        )
    else:
        extra = {"batch_size": batch_size} if attack in (attacks.fgsm, attacks.pgd) else {}
        adversarial = attack(model, targets_images, targets_labels, **extra, **attack_kwargs)
        survived = predict_classes(model, adversarial, batch_size=batch_size) == targets_labels
    return float(survived.sum() / len(labels))


def confusion_matrix(labels, predictions, num_classes: int) -> np.ndarray:
    """Counts how often each true class (row) is predicted as each class (column).

    Args:
        labels: True class ids.
        predictions: Predicted class ids, same length.
        num_classes: Number of classes (rows and columns).

    Returns:
        An int64 array (num_classes, num_classes).
    """
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    if labels.shape != predictions.shape:
        raise ValueError(
            f"Got {len(labels)} labels but {len(predictions)} predictions; they must match."
        )
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix


def most_confused_pairs(labels, predictions, *, top: int = 5) -> list[tuple[int, int, int]]:
    """Returns the most frequent mistakes as ``(true class, predicted class, count)``.

    Args:
        labels: True class ids.
        predictions: Predicted class ids.
        top: How many pairs to return.

    Returns:
        Up to ``top`` triples, most frequent first (mistakes only).
    """
    num_classes = int(max(np.max(labels), np.max(predictions))) + 1
    matrix = confusion_matrix(labels, predictions, num_classes)
    np.fill_diagonal(matrix, 0)
    order = np.argsort(matrix, axis=None)[::-1][:top]
    pairs = [
        (int(i), int(j), int(matrix[i, j]))
        for i, j in zip(*np.unravel_index(order, matrix.shape), strict=True)
    ]
    return [pair for pair in pairs if pair[2] > 0]


def per_class_accuracy(labels, predictions, num_classes: int) -> np.ndarray:
    """Returns the accuracy of each class (NaN for a class with no examples).

    Args:
        labels: True class ids.
        predictions: Predicted class ids.
        num_classes: Number of classes.

    Returns:
        A float array (num_classes,).
    """
    matrix = confusion_matrix(labels, predictions, num_classes)
    totals = matrix.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, np.diag(matrix) / totals, np.nan)


def worst_case_robustness(
    model: keras.Model,
    images,
    labels,
    *,
    epsilon: float,
    attack_model: keras.Model | None = None,
    pgd_steps: int = 20,
    pgd_restarts: int = 3,
    apgd_steps: int = 100,
    dlr_targets: int = 0,
    square_queries: int = 0,
    each_attack_alone: bool = False,
    seed: int | None = 0,
    batch_size: int = 256,
    progress: bool = True,
) -> dict:
    """Clean accuracy, then accuracy under a chain of attacks: the worst case per example.

    An example counts as robust only if it resists every attack of the chain: PGD with
    restarts, APGD-CE, optionally APGD on the targeted DLR loss (``dlr_targets`` target
    classes, AutoAttack's APGD-T) and the gradient-free Square Attack. Each attack runs
    only on the examples the earlier ones could not break (as AutoAttack chains its
    attacks), so later attacks cost little on a weak model.

    Args:
        model: The model as a user meets it; every prediction is made with it.
        images: float32 (N, H, W, C) in [0, 1].
        labels: Integer class ids.
        epsilon: L-infinity budget on the [0, 1] pixel scale.
        attack_model: The model whose gradients the attacks follow, when it differs from
            ``model``: a straight-through (BPDA) or expectation-over-transformation (EOT)
            version of a defended model (``helpers.defenses``). Default: ``model``. The
            Square Attack needs no gradient and always queries ``model`` itself.
        pgd_steps: PGD steps per restart.
        pgd_restarts: PGD restarts.
        apgd_steps: Iterations of APGD-CE and of each APGD-T run (0 skips both).
        dlr_targets: Target classes of APGD-T (9 in AutoAttack; 0 skips it).
        square_queries: Queries of the Square Attack per example (0 skips it).
        each_attack_alone: Also run every attack on all correctly classified examples and
            report its own accuracy (costs more: nothing is skipped).
        seed: Seeds the attacks' random starts.
        batch_size: Images per gradient pass.
        progress: Show a progress bar during PGD.

    Returns:
        A dict with ``clean``, the accuracy after each attack of the chain (``pgd``,
        ``apgd_ce``, ``apgd_t``, ``square``: only those that ran), ``worst_case`` (after
        all of them), ``robust`` (a boolean array, True where the example resisted every
        attack) and, with ``each_attack_alone``, ``alone``: attack name -> its own accuracy.
    """
    images = check_images(images)
    labels = check_labels(labels, len(images), model.output_shape[-1])
    if len(labels) == 0:
        raise ValueError("worst_case_robustness needs at least one image.")
    correct = predict_classes(model, images, batch_size=batch_size) == labels
    gradient_model = attack_model or model
    pgd_kwargs = dict(epsilon=epsilon, num_steps=pgd_steps, restarts=pgd_restarts, seed=seed)

    def pgd_survivors(indices):
        if attack_model is None:
            return _pgd_early_stop(
                model, images[indices], labels[indices], pgd_kwargs, batch_size, progress
            )
        adversarial = attacks.pgd(
            attack_model, images[indices], labels[indices], batch_size=batch_size, **pgd_kwargs
        )
        return predict_classes(model, adversarial, batch_size=batch_size) == labels[indices]

    def survivors_of(attack):
        def run(indices):
            adversarial = attack(images[indices], labels[indices])
            return predict_classes(model, adversarial, batch_size=batch_size) == labels[indices]

        return run

    chain = [("pgd", pgd_survivors)]
    if apgd_steps:
        chain.append(
            (
                "apgd_ce",
                survivors_of(
                    lambda x, y: apgd_ce(
                        gradient_model,
                        x,
                        y,
                        epsilon,
                        num_steps=apgd_steps,
                        seed=seed,
                        batch_size=batch_size,
                    )
                ),
            )
        )
        if dlr_targets:
            chain.append(
                (
                    "apgd_t",
                    survivors_of(
                        lambda x, y: apgd_dlr(
                            gradient_model,
                            x,
                            y,
                            epsilon,
                            target_classes=dlr_targets,
                            num_steps=apgd_steps,
                            seed=seed,
                            batch_size=batch_size,
                        )
                    ),
                )
            )
    if square_queries:
        chain.append(
            (
                "square",
                survivors_of(
                    lambda x, y: square_attack(
                        model,
                        x,
                        y,
                        epsilon,
                        num_queries=square_queries,
                        seed=seed,
                        batch_size=batch_size,
                    )
                ),
            )
        )
    result = {"clean": float(correct.mean())}
    robust = correct.copy()
    for name, survivors in chain:
        indices = np.flatnonzero(robust)
        if len(indices):
            robust[indices] = survivors(indices)
        result[name] = float(robust.mean())
    result["worst_case"] = float(robust.mean())
    result["robust"] = robust
    if each_attack_alone:
        alone = {}
        for name, survivors in chain:
            resisted = correct.copy()
            indices = np.flatnonzero(resisted)
            if len(indices):
                resisted[indices] = survivors(indices)
            alone[name] = float(resisted.mean())
        result["alone"] = alone
    return result
