"""Training the CNN with ``model.fit()`` (introduced in notebook 02).

One code path trains every model in the lab: a ``tf.data`` pipeline with augmentation
suited to the dataset, AdamW with a warm-up and cosine learning-rate schedule, and early
stopping on validation accuracy. Notebook 02 writes these steps out in its own cells;
``helpers.lab.recipes.load_or_train`` calls :func:`train_model` for the shipped weights, and
adversarial training (notebook 05) calls it with a wrapper around the model.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from helpers.lab.checks import check_images, check_labels
from helpers.lab.weight_averaging import WeightAveraging

OPTIMIZERS = ("adamw", "sgd")


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """Hyper-parameters of a training run (chosen on validation data).

    Attributes:
        epochs: Maximum number of passes over the training data.
        batch_size: Images per step.
        learning_rate: Peak learning rate of the schedule.
        warmup_epochs: Epochs of linear warm-up before the cosine decay.
        weight_decay: Decoupled weight decay: every step shrinks each weight by
            ``learning_rate * weight_decay`` of itself (Keras's AdamW and SGD both apply it
            this way, outside the gradient). With AdamW's learning rates (about 1e-3) it
            takes a coefficient near 0.05 to shrink weights as much as the 5e-4 L2 penalty
            of SGD recipes (Loshchilov and Hutter 2019).
        optimizer: ``"adamw"``, or ``"sgd"`` (momentum 0.9, Nesterov), with the same
            warm-up and cosine schedule.
        weight_averaging: ``None``, or the decay (for example 0.999) of an exponential
            moving average of the weights that replaces them when training ends
            (``helpers.lab.weight_averaging``); it needs ``keep_best_epoch=False``.
        patience: Epochs without a better validation accuracy before stopping.
        keep_best_epoch: Keep the weights of the best validation epoch (standard training:
            best accuracy, with early stopping after ``patience``; adversarial training: best
            PGD accuracy). ``False`` trains every epoch and keeps the last one: with the
            cosine schedule that is the converged model, while the best of a noisy
            validation curve can be a lucky epoch (``models/README.md``).
        augment: Apply random transformations to the training batches (``augmentation``);
            ``False`` trains on the images as they are (notebook 05 does, to provoke
            catastrophic overfitting).
        lighting_augmentation: Also vary brightness and contrast (GTSRB). A model that
            standardises each image undoes most of it, but the clipping to [0, 1] that
            follows still varies saturation, and it measured better on validation.
        rotation_and_zoom: Rotate and zoom as well as shift (GTSRB).
        seed: Seeds weights, shuffling and augmentation.
    """

    epochs: int = 30
    batch_size: int = 128
    learning_rate: float = 2e-3
    warmup_epochs: int = 1
    weight_decay: float = 1e-4
    patience: int = 8
    keep_best_epoch: bool = True
    augment: bool = True
    lighting_augmentation: bool = False
    rotation_and_zoom: bool = True
    seed: int = 0
    optimizer: str = "adamw"
    weight_averaging: float | None = None

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}.")
        if self.weight_averaging is not None:
            if not 0 < self.weight_averaging < 1:
                raise ValueError(
                    f"weight_averaging must be None or in (0, 1), got {self.weight_averaging!r}."
                )
            if self.keep_best_epoch:
                raise ValueError(
                    "weight_averaging replaces the weights with their average when training "
                    "ends, so there is no best epoch to keep: set keep_best_epoch=False."
                )


def augmentation(
    dataset_name: str, *, lighting: bool = False, rotation_and_zoom: bool = True
) -> keras.Sequential:
    """Returns random transformations that suit a dataset (training only).

    Traffic signs are never mirrored (a mirrored "keep left" is "keep right"): GTSRB
    gets small rotations, zooms and shifts, and optionally lighting changes. CIFAR-10
    objects may be mirrored, so it gets horizontal flips and shifts.

    Args:
        dataset_name: ``"gtsrb"`` or ``"cifar10"``.
        lighting: Add random brightness and contrast (GTSRB only).
        rotation_and_zoom: Rotate and zoom as well as shift (GTSRB only).

    Returns:
        A ``keras.Sequential`` of random layers mapping [0, 1] images to [0, 1] images.

    Raises:
        ValueError: For an unknown dataset name.
    """
    if dataset_name == "gtsrb":
        steps = [layers.RandomTranslation(0.1, 0.1, fill_mode="nearest")]
        if rotation_and_zoom:
            steps = [
                layers.RandomRotation(12 / 360, fill_mode="nearest"),
                layers.RandomZoom(0.15, fill_mode="nearest"),
                *steps,
            ]
        if lighting:
            steps += [
                layers.RandomBrightness(0.2, value_range=(0.0, 1.0)),
                layers.RandomContrast(0.3),
            ]
    elif dataset_name == "cifar10":
        steps = [
            layers.RandomFlip("horizontal"),
            layers.RandomTranslation(0.125, 0.125, fill_mode="reflect"),
        ]
    else:
        raise ValueError(f"No augmentation for dataset {dataset_name!r}; use 'gtsrb' or 'cifar10'.")
    return keras.Sequential(steps, name=f"{dataset_name}_augmentation")


def make_pipeline(
    images: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    *,
    batch_size: int,
    augment: keras.Sequential | None = None,
    shuffle_seed: int | None = None,
) -> tf.data.Dataset:
    """Builds a batched ``tf.data`` pipeline of (images, one-hot labels).

    Args:
        images: float32 (N, H, W, C) in [0, 1].
        labels: Integer class ids.
        num_classes: Length of the one-hot vectors.
        batch_size: Images per batch.
        augment: Random transformations applied per batch, or ``None``.
        shuffle_seed: Shuffle every epoch with this seed; ``None`` keeps the order.

    Returns:
        The pipeline, prefetching one batch ahead.
    """
    pipeline = tf.data.Dataset.from_tensor_slices((images, labels))
    if shuffle_seed is not None:
        pipeline = pipeline.shuffle(len(labels), seed=shuffle_seed, reshuffle_each_iteration=True)
    pipeline = pipeline.batch(batch_size)
    if augment is not None:
        pipeline = pipeline.map(
            lambda x, y: (tf.clip_by_value(augment(x, training=True), 0.0, 1.0), y),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    pipeline = pipeline.map(lambda x, y: (x, tf.one_hot(y, num_classes)))
    return pipeline.prefetch(tf.data.AUTOTUNE)


def training_pipeline(dataset, config: TrainingConfig) -> tf.data.Dataset:
    """Builds the shuffled, augmented (unless ``config.augment`` is off) training pipeline.

    Args:
        dataset: A ``helpers.data.Dataset``; its ``train`` split is used.
        config: The run's hyper-parameters (batch size, augmentation, seed).

    Returns:
        Batches of (images, one-hot labels), reshuffled every epoch.
    """
    augment = None
    if config.augment:
        augment = augmentation(
            dataset.name,
            lighting=config.lighting_augmentation,
            rotation_and_zoom=config.rotation_and_zoom,
        )
    return make_pipeline(
        *dataset.train,
        dataset.num_classes,
        batch_size=config.batch_size,
        augment=augment,
        shuffle_seed=config.seed,
    )


def learning_rate_schedule(config: TrainingConfig, steps_per_epoch: int):
    """Linear warm-up to ``config.learning_rate``, then cosine decay to zero.

    Args:
        config: The run's hyper-parameters.
        steps_per_epoch: Optimizer steps per epoch.

    Returns:
        A ``keras.optimizers.schedules.CosineDecay``.
    """
    warmup_steps = config.warmup_epochs * steps_per_epoch
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=config.learning_rate / 100,
        decay_steps=max(1, config.epochs * steps_per_epoch - warmup_steps),
        warmup_target=config.learning_rate,
        warmup_steps=warmup_steps,
    )


def compile_model(model: keras.Model, config: TrainingConfig, steps_per_epoch: int) -> None:
    """Compiles with the optimizer, the schedule, categorical cross-entropy and accuracy.

    Args:
        model: A model returning probabilities.
        config: The run's hyper-parameters.
        steps_per_epoch: Optimizer steps per epoch, for the schedule.
    """
    schedule = learning_rate_schedule(config, steps_per_epoch)
    if config.optimizer == "sgd":
        optimizer = keras.optimizers.SGD(
            schedule, momentum=0.9, nesterov=True, weight_decay=config.weight_decay
        )
    else:
        optimizer = keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay)
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.CategoricalCrossentropy(),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
    )


def train_model(
    model,
    dataset,
    config: TrainingConfig = TrainingConfig(),
    *,
    wrapper=None,
    callbacks=(),
    verbose=2,
):
    """Trains ``model`` on ``dataset.train``, keeping the best epoch on ``dataset.validation``.

    Standard training keeps the epoch with the best validation accuracy (early stopping);
    with ``config.keep_best_epoch=False`` it trains every epoch and keeps the last one.
    Another kind of training (notebook 05's adversarial training,
    ``helpers.adversarial_training.train_adversarially``) passes a ``wrapper``: a model around
    ``model`` whose ``train_step`` differs, with the callbacks that choose its epoch.

    Args:
        model: A model from ``helpers.models.build_cnn``.
        dataset: A ``helpers.data.Dataset``.
        config: Hyper-parameters.
        wrapper: ``None``, or ``wrapper(model, steps_per_epoch) -> (trainer, callbacks)``:
            ``fit()`` runs on ``trainer`` with ``callbacks`` instead of early stopping.
        callbacks: Extra Keras callbacks.
        verbose: Keras verbosity; 2 prints one line per epoch (readable in notebooks).

    Returns:
        The ``keras.callbacks.History``; ``model`` keeps its best weights.

    Raises:
        ValueError: If the dataset's images are not finite values in [0, 1], or its labels
            do not fit the model's number of classes.
    """
    for split in ("train", "validation"):
        images, labels = getattr(dataset, split)
        check_labels(labels, len(check_images(images)), dataset.num_classes)
    keras.utils.set_random_seed(config.seed)
    if model.output_shape[-1] != dataset.num_classes:
        raise ValueError(
            f"The model predicts {model.output_shape[-1]} classes but {dataset.name} has "
            f"{dataset.num_classes}; build it with build_cnn({dataset.num_classes})."
        )
    steps_per_epoch = int(np.ceil(len(dataset.train[1]) / config.batch_size))
    trainer, extra = model, []
    if wrapper is not None:
        trainer, wrapper_callbacks = wrapper(model, steps_per_epoch)
        extra.extend(wrapper_callbacks)
    elif config.keep_best_epoch:
        extra.append(
            keras.callbacks.EarlyStopping(
                monitor="val_accuracy", patience=config.patience, restore_best_weights=True
            )
        )
    if config.weight_averaging is not None:
        extra.append(WeightAveraging(model, config.weight_averaging))
    compile_model(trainer, config, steps_per_epoch)
    train = training_pipeline(dataset, config)
    validation = make_pipeline(*dataset.validation, dataset.num_classes, batch_size=512)
    return trainer.fit(
        train,
        validation_data=validation,
        epochs=config.epochs,
        callbacks=[*extra, *callbacks],
        verbose=verbose,
        shuffle=False,
    )
