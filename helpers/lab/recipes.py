"""Named recipes for the models the lab ships, and ``load_or_train`` (notebook 02).

A recipe says which data, architecture width and hyper-parameters produce a model, so
``load_or_train("gtsrb_standard")`` either loads ``models/gtsrb_standard.weights.h5`` or
trains it with the very code notebook 02 runs. Any notebook can then start from a trained
model.

The lab ships weights only: the architecture is rebuilt from the recipe by ``build_cnn``
(:func:`load_trained_model`), so a model loads on every Keras 3 release the lab supports,
not only on the one that saved it. Where models live:

- ``models/<name>.weights.h5``: shipped with the lab (``tools/train.py``);
- ``models/trained/``: models trained inside a notebook in the default profile (notebook 02
  with ``RETRAIN = True``, or a model that is not shipped); the later notebooks use them
  before the shipped ones (:func:`model_for_profile`);
- ``models/smoke/``: quick stand-ins trained in the smoke profile.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import time

import keras

from helpers import models
from helpers.adversarial_training import AdversarialConfig, train_adversarially
from helpers.data import Dataset, load_dataset
from helpers.training import TrainingConfig, train_model


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How to train one named model.

    Attributes:
        dataset: Dataset name for ``helpers.data.load_dataset``.
        width: ``build_cnn`` width.
        dropout: ``build_cnn`` dropout.
        standardize: ``build_cnn`` per-image standardisation.
        local_contrast: ``build_cnn`` local (instead of per-image) contrast normalisation.
        activation: ``build_cnn`` activation, ``"relu"`` or ``"silu"``.
        crop_roi: Train on images cropped to their annotated region of interest
            (``load_dataset(..., crop_roi=True)``, GTSRB's default); the model then expects
            such images, and ``load_or_train`` refuses data cropped otherwise.
        config: Training hyper-parameters.
        adversarial: Adversarial training settings, or ``None`` for standard training.
        precision: ``build_cnn`` dtype policy for training: ``"float32"`` or
            ``"mixed_bfloat16"``. Either way the model is saved and returned in float32.
            Mixed precision is refused with adversarial training: its perturbations are
            smaller than bfloat16 can resolve in the first layers.

    Raises:
        ValueError: For an unknown precision, or mixed precision with adversarial training.
    """

    dataset: str
    width: int = 32
    dropout: float = 0.3
    standardize: bool = True
    local_contrast: bool = False
    activation: str = "relu"
    crop_roi: bool = False
    config: TrainingConfig = TrainingConfig()
    adversarial: AdversarialConfig | None = None
    precision: str = "float32"

    def __post_init__(self):
        if self.precision not in models.DTYPE_POLICIES:
            raise ValueError(
                f"precision must be one of {models.DTYPE_POLICIES}, got {self.precision!r}."
            )
        if self.precision != "float32" and self.adversarial is not None:
            # An 8/255 perturbation is one or two bfloat16 steps of a pixel near 1: the
            # network would train against a rounded, partly erased attack.
            raise ValueError(
                f"precision={self.precision!r} cannot be combined with adversarial training; "
                "train robust models in float32."
            )


RECIPES = {
    # Crops to the sign, 20 epochs, the last one kept: the validation curve is too noisy for
    # its best epoch to mean much. Why each setting: models/README.md, "gtsrb_standard".
    "gtsrb_standard": Recipe(
        "gtsrb",
        width=32,
        dropout=0.3,
        crop_roi=True,
        config=TrainingConfig(epochs=20, lighting_augmentation=True, keep_best_epoch=False),
    ),
    # Shifts and lighting only: rotation and zoom as well cost clean and robust accuracy on
    # validation. Every variant tried, with its figures: models/README.md, "gtsrb_robust".
    "gtsrb_robust": Recipe(
        "gtsrb",
        width=32,
        dropout=0.1,
        standardize=False,
        crop_roi=True,
        config=TrainingConfig(epochs=14, lighting_augmentation=True, rotation_and_zoom=False),
        adversarial=AdversarialConfig("n_fgsm", epsilon=8 / 255, warmup_epochs=2),
    ),
    # CIFAR-10 (the study's split: 40,000 train, data_batch_5 as validation). Not shipped:
    # a notebook that needs one trains it once (models/trained/). The GTSRB recipes carried
    # over, with CIFAR-10's flips and shifts; not tuned on CIFAR-10 (models/README.md).
    "cifar10_standard": Recipe("cifar10", config=TrainingConfig(epochs=20)),
    "cifar10_robust": Recipe(
        "cifar10",
        dropout=0.1,
        standardize=False,
        config=TrainingConfig(epochs=15),
        adversarial=AdversarialConfig("n_fgsm", epsilon=8 / 255, warmup_epochs=2),
    ),
}


def build_model(recipe: Recipe, num_classes: int) -> keras.Model:
    """Builds the untrained CNN a recipe describes (in its training precision).

    Args:
        recipe: The recipe.
        num_classes: Classes of the dataset it will be trained on.

    Returns:
        An uncompiled ``build_cnn`` model.
    """
    return models.build_cnn(
        num_classes,
        width=recipe.width,
        dropout=recipe.dropout,
        standardize=recipe.standardize,
        local_contrast=recipe.local_contrast,
        dtype_policy=recipe.precision,
        activation=recipe.activation,
    )


NUM_CLASSES = {"gtsrb": 43, "cifar10": 10}
TRAINED_MODELS_DIR = models.MODELS_DIR / "trained"
SMOKE_MODELS_DIR = models.MODELS_DIR / "smoke"


def _recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise ValueError(f"Unknown model {name!r}; expected one of {sorted(RECIPES)}.")
    return RECIPES[name]


def load_trained_model(
    name: str, models_dir: str | pathlib.Path = models.MODELS_DIR
) -> keras.Model:
    """Builds a recipe's architecture in float32 and loads ``models_dir/<name>.weights.h5``.

    This is how every notebook, test and tool loads a model, shipped or trained here.

    Args:
        name: A key of ``RECIPES``, such as ``"gtsrb_standard"``.
        models_dir: Where the weights file lives.

    Returns:
        The trained model, returning probabilities.

    Raises:
        ValueError: For an unknown name, or a weights file that is corrupt or of another
            architecture.
        FileNotFoundError: If there is no weights file.
    """
    recipe = dataclasses.replace(_recipe(name), precision="float32")
    model = build_model(recipe, NUM_CLASSES[recipe.dataset])
    return models.load_weights(model, models.weights_path(name, models_dir))


def train(model, dataset, config: TrainingConfig, adversarial=None, *, callbacks=(), verbose=2):
    """Trains as a recipe says: standard training, or adversarial training if it has one.

    Args:
        model: A model from :func:`build_model`.
        dataset: A ``helpers.data.Dataset``.
        config: Hyper-parameters.
        adversarial: An ``AdversarialConfig``, or ``None`` for standard training.
        callbacks: Extra Keras callbacks.
        verbose: Keras verbosity.

    Returns:
        The ``keras.callbacks.History``.
    """
    if adversarial is None:
        return train_model(model, dataset, config, callbacks=callbacks, verbose=verbose)
    return train_adversarially(
        model, dataset, config, adversarial, callbacks=callbacks, verbose=verbose
    )


def load_or_train(
    name: str,
    *,
    dataset: Dataset | None = None,
    models_dir: str | pathlib.Path = models.MODELS_DIR,
    retrain: bool = False,
    recipe: Recipe | None = None,
    config: TrainingConfig | None = None,
    save: bool = True,
    verbose: int = 2,
) -> keras.Model:
    """Returns the model in ``models_dir/<name>.weights.h5`` if present, else trains it.

    Args:
        name: A key of ``RECIPES``, such as ``"gtsrb_standard"``.
        dataset: Data to train on (default: the recipe's dataset, fully loaded).
        models_dir: Where weights files live.
        retrain: Train even if a file exists (it is replaced when ``save``).
        recipe: A variant of the named recipe to train with (for example another
            precision); it must keep the architecture, which loading rebuilds from
            ``RECIPES[name]``.
        config: Hyper-parameters overriding the recipe's (for example fewer epochs).
        save: Save a freshly trained model (atomically) and its training record to
            ``models_dir``.
        verbose: Keras verbosity during training.

    Returns:
        A trained float32 model returning probabilities.

    Raises:
        ValueError: For an unknown name, a file that is corrupt or of another architecture,
            a ``recipe`` with another architecture, or a ``dataset`` cropped otherwise than
            the recipe's model expects.
    """
    named = _recipe(name)
    recipe = recipe or named
    architecture = (
        "dataset",
        "width",
        "dropout",
        "standardize",
        "local_contrast",
        "activation",
        "crop_roi",
    )
    changed = [key for key in architecture if getattr(recipe, key) != getattr(named, key)]
    if changed:
        raise ValueError(
            f"recipe changes {changed} of {name!r}, but a saved {name} is always rebuilt with "
            "RECIPES[name]'s architecture; add a recipe of its own to RECIPES instead."
        )
    if dataset is not None and dataset.cropped != recipe.crop_roi:
        # Signs that fill the frame and signs in their surroundings are different inputs:
        # the model would be trained or judged on data it is not meant for.
        raise ValueError(
            f"{name} expects {'cropped' if recipe.crop_roi else 'whole'} images, but the "
            f"dataset holds {'cropped' if dataset.cropped else 'whole'} ones; load it with "
            f"load_dataset({recipe.dataset!r}, crop_roi={recipe.crop_roi})."
        )
    if models.weights_path(name, models_dir).exists() and not retrain:
        return load_trained_model(name, models_dir)
    if dataset is None:
        dataset = load_dataset(recipe.dataset, crop_roi=recipe.crop_roi)
    model = build_model(recipe, dataset.num_classes)
    config = config or recipe.config
    started = time.perf_counter()
    history = train(model, dataset, config, recipe.adversarial, verbose=verbose)
    minutes = (time.perf_counter() - started) / 60
    model = models.float32_copy(model)
    if verbose:
        print(f"Trained {name} in {minutes:.1f} min.")
    if save:
        path = models.save_weights(model, models.weights_path(name, models_dir))
        save_training_record(
            name,
            dataset,
            dataclasses.replace(recipe, config=config),
            history.history,
            minutes,
            models_dir,
        )
        if verbose:
            print(f"Saved {path}.")
    return model


def save_training_record(
    name: str,
    dataset: Dataset,
    recipe: Recipe,
    history: dict,
    minutes: float,
    models_dir: str | pathlib.Path = models.MODELS_DIR,
) -> pathlib.Path:
    """Writes ``<name>.history.json`` next to a model: data, recipe, time and per-epoch curves.

    Args:
        name: The model's file name without extension.
        dataset: The data it was trained on.
        recipe: The recipe it was trained with (its config as actually used).
        history: Keras ``History.history``: metric name -> one value per epoch.
        minutes: Wall-clock training time.
        models_dir: Where the model file lives.

    Returns:
        The path written.
    """
    record = {
        "recipe": name,
        "dataset": dataset.name,
        "note": dataset.note,
        "train_images": len(dataset.train[1]),
        "crop_roi": recipe.crop_roi,
        "minutes": round(minutes, 2),
        "architecture": {
            "width": recipe.width,
            "dropout": recipe.dropout,
            "standardize": recipe.standardize,
            "local_contrast": recipe.local_contrast,
            "activation": recipe.activation,
        },
        "precision": recipe.precision,
        "config": dataclasses.asdict(recipe.config),
        "adversarial": dataclasses.asdict(recipe.adversarial) if recipe.adversarial else None,
        "history": {key: [float(v) for v in values] for key, values in history.items()},
    }
    path = history_path(name, models_dir)
    path.write_text(json.dumps(record, indent=1) + "\n")
    return path


def history_path(name: str, models_dir: str | pathlib.Path = models.MODELS_DIR) -> pathlib.Path:
    """Returns where the training record of a model is kept (next to its weights)."""
    return pathlib.Path(models_dir) / f"{name}.history.json"


def load_history(name: str, models_dir: str | pathlib.Path = models.MODELS_DIR) -> dict | None:
    """Returns the training record saved with a model (curves, config, time), if any.

    Args:
        name: A key of ``RECIPES``.
        models_dir: Where model files live.

    Returns:
        The record as a dict (``history`` holds the per-epoch curves), or ``None``.
    """
    path = history_path(name, models_dir)
    return json.loads(path.read_text()) if path.exists() else None


def trained_models_dir(profile) -> pathlib.Path:
    """Where a notebook keeps the models it trains: ``models/trained/``, or ``models/smoke/``.

    Args:
        profile: A ``helpers.lab.profile.Profile``.

    Returns:
        ``models/trained/`` in a profile that trains models in full (the default one),
        ``models/smoke/`` in one that trains quick stand-ins, so a stand-in never takes the
        place of a real model.
    """
    return TRAINED_MODELS_DIR if profile.train_shipped_models else SMOKE_MODELS_DIR


def model_file_for_profile(name: str, profile) -> pathlib.Path | None:
    """Returns the weights file :func:`model_for_profile` loads for ``name``, if one exists.

    Args:
        name: A key of ``RECIPES``.
        profile: A ``helpers.lab.profile.Profile``.

    Returns:
        A model trained in a notebook (``trained_models_dir(profile)``) before the shipped
        file in ``models/``; ``None`` when neither exists.
    """
    for folder in (trained_models_dir(profile), models.MODELS_DIR):
        path = models.weights_path(name, folder)
        if path.exists():
            return path
    return None


def model_for_profile(
    name: str, profile, *, dataset: Dataset | None = None, verbose: int = 2
) -> keras.Model:
    """Returns the named model as a notebook in ``profile`` should use it, and says which.

    In order: a model trained in an earlier notebook (``trained_models_dir(profile)``, for
    example by notebook 02 with ``RETRAIN = True``), then the shipped file in ``models/``.
    When neither exists, the default profile trains it in full with its recipe, the smoke
    profile a quick stand-in for ``profile.epochs`` epochs, and saves it in
    ``trained_models_dir(profile)`` so the next notebook finds it.

    Args:
        name: A key of ``RECIPES``.
        profile: A ``helpers.lab.profile.Profile``.
        dataset: The data to train on if training is needed.
        verbose: Keras verbosity during training.

    Returns:
        A trained model returning probabilities.

    Raises:
        ValueError: For an unknown name (the message lists the known ones).
    """
    _recipe(name)
    own_dir = trained_models_dir(profile)
    path = model_file_for_profile(name, profile)
    if path is not None:
        if verbose:
            origin = "trained in a notebook" if path.parent == own_dir else "shipped"
            print(f"{name}: {origin}, {path.relative_to(models.MODELS_DIR.parent)}")
        return load_trained_model(name, path.parent)
    quick = None
    if not profile.train_shipped_models:
        quick = dataclasses.replace(RECIPES[name].config, epochs=profile.epochs)
    if verbose:
        print(f"{name}: not trained yet; training it now with its recipe")
    return load_or_train(name, dataset=dataset, models_dir=own_dir, config=quick, verbose=verbose)
