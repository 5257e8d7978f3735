"""Square Attack: a random search that needs no gradient (notebook 07).

Andriushchenko, Croce, Flammarion and Hein (ECCV 2020). Every attack in the lab so far
follows a gradient, so a model whose gradient is useless (zero, noisy, or misleading) can
look robust to all of them while it is not: gradient masking. The Square Attack only
queries the model's outputs. It starts from vertical stripes of +-epsilon and then, again
and again, picks a random square of the image and sets it, per colour channel, to
``x + epsilon`` or ``x - epsilon``; the change is kept if it lowers the margin
``z_y - max_{k != y} z_k`` of the logits. The square shrinks on a fixed schedule. An
example is fooled once its margin is negative. If a model resists gradient attacks but the
Square Attack gets through, its gradients were hiding its weakness.

Each query evaluates the model once on the examples not yet fooled; ``num_queries`` bounds
the queries per example (the paper uses up to 10,000; a few hundred already expose masked
gradients).
"""

from __future__ import annotations

import keras
import numpy as np

from helpers import attacks
from helpers.lab.checks import check_positive_int
from helpers.models import logits_of

# The square's share of the image shrinks by half at these fractions of a 10,000-query run
# (the schedule of the paper's code, rescaled to the number of queries).
_HALVINGS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)


def square_share(p_init: float, query: int, num_queries: int) -> float:
    """Returns the share of pixels the square covers at a query (the paper's schedule).

    Args:
        p_init: Share at the start (0.8 in AutoAttack for L-infinity on 32x32 images).
        query: The current query, from 0.
        num_queries: The run's budget; the schedule is stretched to it.

    Returns:
        ``p_init`` halved once for every threshold of the schedule passed so far.
    """
    progress = int(query / num_queries * 10000)
    return p_init / 2 ** sum(progress > threshold for threshold in _HALVINGS)


def _margins(logits_model: keras.Model, images: np.ndarray, labels: np.ndarray, batch_size):
    """``z_y - max_{k != y} z_k`` for every image, in batches, in inference mode."""
    values = []
    for start in range(0, len(images), batch_size):
        logits = np.array(logits_model(images[start : start + batch_size], training=False))
        rows = np.arange(len(logits))
        true = logits[rows, labels[start : start + batch_size]].copy()
        logits[rows, labels[start : start + batch_size]] = -np.inf
        values.append(true - logits.max(axis=1))
    return np.concatenate(values) if values else np.zeros(0, np.float32)


def square_attack(
    model: keras.Model,
    images,
    labels,
    epsilon: float,
    *,
    num_queries: int = 1000,
    p_init: float = 0.8,
    seed: int | None = None,
    batch_size: int = attacks.DEFAULT_BATCH_SIZE,
):
    """Square Attack, L-infinity, untargeted, on the margin of the logits.

    Args:
        model: The model to attack; only its outputs are used, never its gradient.
        images: float (N, H, W, C) in [0, 1], NumPy array or tensor.
        labels: True class ids.
        epsilon: L-infinity budget on the [0, 1] pixel scale (8/255 = ``8 / 255``).
        num_queries: Model evaluations per example at most (the first is the start).
        p_init: Share of the image the first squares cover, in (0, 1].
        seed: Seeds the stripes, the squares and their signs.
        batch_size: Images per model evaluation.

    Returns:
        Adversarial images like ``images``: per example, the point of lowest margin found
        (one that fools the model if its margin went below zero).

    Raises:
        TypeError, ValueError: For malformed images, labels, epsilon, ``num_queries`` or
            ``p_init``.
    """
    array, labels, epsilon = attacks.check_attack_arguments(model, images, labels, epsilon)
    num_queries = check_positive_int(num_queries, "num_queries")
    batch_size = check_positive_int(batch_size, "batch_size")
    if not 0 < p_init <= 1:
        raise ValueError(f"p_init must be in (0, 1], got {p_init!r}.")
    logits_model = logits_of(model)
    generator = np.random.default_rng(seed)
    count, height, width, channels = array.shape
    # Start: vertical stripes, each column of each channel moved by +epsilon or -epsilon.
    stripes = generator.choice([-epsilon, epsilon], size=(count, 1, width, channels))
    adversarial = np.clip(array + stripes, 0, 1).astype(np.float32)
    margins = _margins(logits_model, adversarial, labels, batch_size)
    rows, columns = np.arange(height)[None, :], np.arange(width)[None, :]
    for query in range(1, num_queries):
        active = np.flatnonzero(margins > 0)
        if not len(active):
            break
        side = int(round(np.sqrt(square_share(p_init, query, num_queries) * height * width)))
        side = min(max(side, 1), height - 1, width - 1)
        top = generator.integers(0, height - side + 1, size=(len(active), 1))
        left = generator.integers(0, width - side + 1, size=(len(active), 1))
        inside = ((rows >= top) & (rows < top + side))[:, :, None] & (
            (columns >= left) & (columns < left + side)
        )[:, None, :]
        signs = generator.choice([-epsilon, epsilon], size=(len(active), 1, 1, channels))
        square = np.clip(array[active] + signs, 0, 1)
        candidates = np.where(inside[..., None], square, adversarial[active]).astype(np.float32)
        new_margins = _margins(logits_model, candidates, labels[active], batch_size)
        better = new_margins < margins[active]
        adversarial[active[better]] = candidates[better]
        margins[active[better]] = new_margins[better]
    return attacks.like_input(adversarial, images)
