"""Run profiles: one switch for data size and training length (introduced in notebook 01).

``ADVLAB_PROFILE=smoke`` shrinks every notebook so the test suite runs them all in
minutes; ``ADVLAB_PROFILE=default`` (or unset) is the real run. This is the only module
that reads ``ADVLAB_PROFILE``.
"""

from __future__ import annotations

import dataclasses
import os

PROFILE_VARIABLE = "ADVLAB_PROFILE"


@dataclasses.dataclass(frozen=True)
class Profile:
    """Sizes that depend on the run profile.

    Attributes:
        name: ``"smoke"`` or ``"default"``.
        limit: Largest number of images per split (``None`` for all), passed to
            ``helpers.data.load_dataset(limit=...)``.
        epochs: Training epochs for a model trained inside a notebook.
        eval_samples: Test images used for slow evaluations (attacks, sweeps).
        attack_samples: Test images for the slowest evaluations (APGD-CE with restarts,
            sanity checks, EOT attacks; notebooks 06 to 08), at most ``eval_samples``.
        train_shipped_models: Whether a missing shipped model is trained in full
            (default profile) or a small stand-in is trained quickly (smoke profile).
    """

    name: str
    limit: int | None
    epochs: int
    eval_samples: int
    attack_samples: int
    train_shipped_models: bool


PROFILES = {
    "smoke": Profile(
        name="smoke",
        limit=1000,
        epochs=1,
        # Small enough for a 2-core CPU without AVX-512 to run every notebook in minutes:
        # the smoke run checks that every cell works, its numbers mean nothing.
        eval_samples=100,
        attack_samples=25,
        train_shipped_models=False,
    ),
    "default": Profile(
        name="default",
        limit=None,
        epochs=30,
        eval_samples=12630,
        attack_samples=1000,
        train_shipped_models=True,
    ),
}


def current_profile() -> Profile:
    """Returns the profile named by ``ADVLAB_PROFILE`` (``default`` when unset).

    Returns:
        The matching :class:`Profile`.

    Raises:
        ValueError: If the variable names no known profile.
    """
    name = os.environ.get(PROFILE_VARIABLE, "default").strip().lower() or "default"
    if name not in PROFILES:
        raise ValueError(
            f"{PROFILE_VARIABLE}={name!r} is not a known profile; use one of {sorted(PROFILES)}."
        )
    return PROFILES[name]


def describe_run(**parameters) -> Profile:
    """Prints what produces a notebook's results: profile, parameters, data and versions.

    Call it right after a notebook's parameters cell, so the first output says exactly
    which settings made the figures below (including any papermill ``-p`` overrides).

    Args:
        **parameters: The notebook's parameters, by name.

    Returns:
        The current :class:`Profile`.
    """
    import platform

    import keras
    import numpy as np
    import tensorflow as tf

    from helpers.data import data_directory

    profile = current_profile()
    rows = {"profile": f"{profile.name} (set {PROFILE_VARIABLE}=smoke|default)"}
    rows.update({name: repr(value) for name, value in parameters.items()})
    rows["data dir"] = str(data_directory())
    rows["versions"] = (
        f"Python {platform.python_version()}, TensorFlow {tf.__version__}, "
        f"Keras {keras.__version__}, NumPy {np.__version__}"
    )
    width = max(len(name) for name in rows)
    for name, value in rows.items():
        print(f"{name:<{width}} : {value}")
    return profile


def sample_size(value, *, name: str, default: int, available: int | None = None) -> int:
    """Resolves a notebook parameter that counts images: ``None`` means the profile's size.

    A value the learner sets is used as set, never silently cut: if it cannot be used, this
    stops the notebook in the cell after its parameters, with a message that says why.

    Args:
        value: The parameter's value: ``None``, or a positive integer.
        name: The parameter's name, for the message (for example ``"EVAL_SAMPLES"``).
        default: The profile's size, used when ``value`` is ``None``.
        available: How many images there are to take them from, if known (for example the
            profile's ``limit``); the default is cut to it, a value set by hand is checked
            against it.

    Returns:
        The number of images to use.

    Raises:
        ValueError: If ``value`` is not a positive integer, or more than ``available``.
    """
    if value is None:
        return default if available is None else min(default, available)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer or None, got {value!r}.")
    if available is not None and value > available:
        raise ValueError(
            f"{name} = {value:,} asks for more images than the {available:,} there are to "
            f"take them from; set it to at most {available:,}, or to None for this profile's "
            f"{min(default, available):,}. (In the smoke profile every split holds at most "
            f"{PROFILES['smoke'].limit:,} images: set {PROFILE_VARIABLE}=default for more.)"
        )
    return value


def first_images(split: tuple, count: int, *, name: str) -> tuple:
    """Returns the first ``count`` images and labels of a split, refusing to return fewer.

    Args:
        split: ``(images, labels)``, for example ``dataset.test``.
        count: How many to take (from :func:`sample_size`).
        name: The parameter that asked for them, for the message.

    Returns:
        ``(images[:count], labels[:count])``.

    Raises:
        ValueError: If the split holds fewer than ``count`` images.
    """
    images, labels = split
    sample_size(count, name=name, default=count, available=len(labels))
    return images[:count], labels[:count]
