"""Argument checks shared by attacks, evaluation and training (clear errors for learners).

Every public function that takes images, labels or an epsilon checks them here, so a
mistake (pixels on the 0-255 scale, ``epsilon=8`` instead of ``8 / 255``) fails at once
with a message that says what was wrong and what is expected.
"""

from __future__ import annotations

import numbers

import numpy as np


def check_images(images) -> np.ndarray:
    """Checks a batch of images: float NHWC in [0, 1].

    Args:
        images: An array or tensor of shape (N, H, W, C).

    Returns:
        The images as a float32 NumPy array.

    Raises:
        TypeError: If the images are not numeric.
        ValueError: If the shape is not 4-D, or a pixel is NaN, infinite or outside [0, 1].
    """
    array = np.asarray(images)
    if not np.issubdtype(array.dtype, np.number):
        raise TypeError(f"images must be numeric, got dtype {array.dtype}.")
    if array.ndim != 4:
        raise ValueError(
            f"images must have shape (batch, height, width, channels), got shape {array.shape}; "
            "add a batch axis for a single image (images[None])."
        )
    if array.size and not np.isfinite(array).all():
        bad = int(array.size - np.isfinite(array).sum())
        raise ValueError(
            f"images contain {bad:,} NaN or infinite values; every pixel must be a finite "
            "number in [0, 1]. Look for a division by zero (for example by an image's "
            "standard deviation) or a broken file upstream."
        )
    if array.size and (array.min() < 0 or array.max() > 1):
        raise ValueError(
            f"images must be scaled to [0, 1], got values in [{array.min():g}, {array.max():g}]; "
            "divide 0-255 pixels by 255 (helpers.data.load_dataset already does)."
        )
    return array.astype(np.float32, copy=False)


def check_labels(labels, num_images: int, num_classes: int | None = None) -> np.ndarray:
    """Checks integer class labels against the images they belong to.

    Args:
        labels: Integer class ids, shape (N,).
        num_images: The number of images, N.
        num_classes: If given, labels must lie in ``[0, num_classes)``.

    Returns:
        The labels as an int64 NumPy array.

    Raises:
        ValueError: If the labels are not integers, not 1-D, of another length, or out of range.
    """
    array = np.asarray(labels)
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(
            f"labels must be a 1-D array of integer class ids, got shape {array.shape} and "
            f"dtype {array.dtype} (use labels.argmax(-1) for one-hot labels)."
        )
    if len(array) != num_images:
        raise ValueError(f"Got {num_images} images but {len(array)} labels; they must match.")
    if num_classes is not None and array.size and (array.min() < 0 or array.max() >= num_classes):
        raise ValueError(
            f"labels must lie in [0, {num_classes - 1}] for a {num_classes}-class model, "
            f"got values in [{array.min()}, {array.max()}]."
        )
    return array.astype(np.int64, copy=False)


def check_epsilon(epsilon, name: str = "epsilon", *, allow_zero: bool = True) -> float:
    """Checks a perturbation size on the [0, 1] pixel scale.

    Args:
        epsilon: The value to check.
        name: The argument's name, for the message.
        allow_zero: Whether 0 is allowed (it is for epsilon, not for a step size).

    Returns:
        The value as a float.

    Raises:
        TypeError: If it is not a real number.
        ValueError: If it is negative, zero when not allowed, or above 1.
    """
    if isinstance(epsilon, bool) or not isinstance(epsilon, numbers.Real):
        raise TypeError(f"{name} must be a number on the [0, 1] pixel scale, got {epsilon!r}.")
    value = float(epsilon)
    if value > 1:
        raise ValueError(
            f"{name}={value:g} is above 1, but it is measured on the [0, 1] pixel scale: "
            f"write {value:g}/255 as {name}={value:g} / 255 (= {value / 255:.4f})."
        )
    if value < 0 or (value == 0 and not allow_zero) or not np.isfinite(value):
        bound = "> 0" if not allow_zero else ">= 0"
        raise ValueError(
            f"{name} must be {bound} and at most 1 (the [0, 1] pixel scale), got {value:g}."
        )
    return value


def check_positive_int(value, name: str) -> int:
    """Checks a count such as ``num_steps`` or ``restarts``.

    Args:
        value: The value to check.
        name: The argument's name, for the message.

    Returns:
        The value as an int.

    Raises:
        ValueError: If it is not an integer >= 1.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}.")
    return int(value)
