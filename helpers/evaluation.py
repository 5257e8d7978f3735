"""Measuring a model: clean accuracy (notebook 02) and robust accuracy (notebooks 03, 04).

``accuracy`` counts correct top-1 predictions. ``robust_accuracy`` counts the images a
model still classifies correctly after an attack computed on that same model. The worst
case over several attacks, notebook 07's evaluation, is ``helpers.worst_case``.
"""

from __future__ import annotations

import functools

import keras
import numpy as np
import tensorflow as tf

from helpers import attacks
from helpers.lab.checks import check_images, check_labels


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


_PGD_SETTINGS = {"step_size", "num_steps", "random_start", "restarts", "seed", "targeted"}


def _as_pgd(attack) -> dict | None:
    """Returns the settings bound to ``attacks.pgd`` (also through ``functools.partial``).

    Args:
        attack: An attack function.

    Returns:
        The keyword settings a partial binds (empty for ``pgd`` itself), or ``None`` if
        ``attack`` is not PGD.
    """
    bound = {}
    while isinstance(attack, functools.partial):
        if attack.args:
            return None
        bound = {**attack.keywords, **bound}
        attack = attack.func
    return bound if attack is attacks.pgd else None


def robust_accuracy(
    model: keras.Model,
    images,
    labels=None,
    *,
    epsilon: float,
    attack=None,
    early_stop: bool = True,
    batch_size: int = 256,
    progress: bool = True,
    **attack_settings,
) -> float:
    """Returns the share of images still classified correctly under an attack on ``model``.

    Only images the model classifies correctly are attacked (the others count as wrong).
    With PGD (the default, also bound through ``functools.partial``), untargeted, and
    ``early_stop=True``, each example stops being attacked as soon as one step fools the
    model (``helpers.attacks.first_success``), as AutoAttack does: far cheaper on a weak
    model, and never a higher (weaker) figure than running every step.

    Args:
        model: The model to attack and evaluate (attacks are computed on it).
        images: float32 (N, H, W, C) in [0, 1], or a tf.data pipeline of (images, labels).
        labels: Integer class ids (``None`` with a pipeline).
        epsilon: L-infinity budget on the [0, 1] pixel scale.
        attack: ``helpers.attacks.pgd`` (default) or ``fgsm``, or any attack with the
            lab's signature ``attack(model, images, labels, epsilon, **settings)``.
        early_stop: Stop attacking an example once it is fooled (PGD only).
        batch_size: Images per gradient pass.
        progress: Show a progress bar (PGD with early stopping).
        **attack_settings: Passed to the attack, for example ``num_steps=20, seed=0``.

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
    pgd_bound = _as_pgd(attack)
    settings = {**(pgd_bound or {}), **attack_settings}
    if pgd_bound is not None and early_stop and not settings.get("targeted", False):
        unknown = set(settings) - _PGD_SETTINGS
        if unknown:
            raise TypeError(f"Unknown PGD arguments: {sorted(unknown)}.")
        settings.pop("targeted", None)
        _, fooled = attacks.first_success(
            model,
            targets_images,
            targets_labels,
            epsilon,
            batch_size=batch_size,
            progress=progress,
            **settings,
        )
        survived = ~fooled
    else:
        extra = {"batch_size": batch_size} if attack in (attacks.fgsm, attacks.pgd) else {}
        adversarial = attack(
            model, targets_images, targets_labels, epsilon, **extra, **attack_settings
        )
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
