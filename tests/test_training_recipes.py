"""Tests for helpers.training's augmentation and training pipeline, and tools/train.py's overrides."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from helpers.data import Dataset
from helpers.lab.recipes import RECIPES, save_training_record
from helpers.models import build_cnn
from helpers.training import TrainingConfig, augmentation, train_model, training_pipeline
from tools.train import apply_overrides


def layer_names(sequential):
    return [type(layer).__name__ for layer in sequential.layers]


def test_gtsrb_augmentation_never_flips_and_can_skip_rotation_and_zoom():
    full = layer_names(augmentation("gtsrb", lighting=True))
    assert "RandomFlip" not in full
    assert {"RandomRotation", "RandomZoom", "RandomTranslation", "RandomBrightness"} <= set(full)
    shifts_only = layer_names(augmentation("gtsrb", rotation_and_zoom=False))
    assert shifts_only == ["RandomTranslation"]


def test_shift_only_augmentation_keeps_images_in_range_and_changes_them():
    images = np.random.default_rng(0).uniform(0, 1, (8, 32, 32, 3)).astype(np.float32)
    moved = augmentation("gtsrb", rotation_and_zoom=False)(images, training=True).numpy()
    assert moved.shape == images.shape
    assert moved.min() >= 0.0 and moved.max() <= 1.0
    assert not np.allclose(moved, images)


def small_dataset(count=40):
    rng = np.random.default_rng(1)
    images = rng.uniform(0, 1, (count, 32, 32, 3)).astype(np.float32)
    labels = np.arange(count) % 4
    split = (images[:4], labels[:4])
    return Dataset("gtsrb", (images, labels), split, split, ["a", "b", "c", "d"])


def batches_of(pipeline):
    images, labels = zip(*[(x.numpy(), y.numpy()) for x, y in pipeline], strict=True)
    return np.concatenate(images), np.concatenate(labels)


def test_training_pipeline_without_augmentation_shuffles_the_images_unchanged():
    dataset = small_dataset()
    images, one_hot = batches_of(
        training_pipeline(dataset, TrainingConfig(batch_size=16, augment=False))
    )
    assert images.shape == dataset.train[0].shape and one_hot.shape == (40, 4)
    order = [
        int(np.flatnonzero((dataset.train[0] == image).all(axis=(1, 2, 3)))[0]) for image in images
    ]
    # A shuffle of the same images:
    assert sorted(order) == list(range(40)) and order != list(range(40))
    np.testing.assert_array_equal(one_hot.argmax(axis=1), dataset.train[1][order])


def test_training_pipeline_augments_by_default():
    dataset = small_dataset()
    images, _ = batches_of(
        training_pipeline(dataset, TrainingConfig(batch_size=16, rotation_and_zoom=False))
    )
    unchanged = [(dataset.train[0] == image).all(axis=(1, 2, 3)).any() for image in images]
    assert not any(unchanged)


def test_unknown_dataset_has_no_augmentation():
    with pytest.raises(ValueError, match="No augmentation for dataset 'mnist'"):
        augmentation("mnist")


def test_overrides_reach_recipe_config_and_adversarial_fields():
    recipe = apply_overrides(
        RECIPES["gtsrb_robust"],
        [
            "width=40",
            "rotation_and_zoom=False",
            "adversarial.method='pgd'",
            "adversarial.num_steps=3",
        ],
    )
    assert recipe.width == 40
    assert recipe.config.rotation_and_zoom is False
    assert (recipe.adversarial.method, recipe.adversarial.num_steps) == ("pgd", 3)
    assert RECIPES["gtsrb_robust"].adversarial.method == "n_fgsm"  # the shipped recipe is untouched


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("width", "name=value"),
        ("colour=1", "Unknown field 'colour'"),
        ("adversarial.strength=2", "Unknown adversarial-training field 'strength'"),
    ],
)
def test_bad_overrides_are_refused(override, message):
    with pytest.raises(ValueError, match=message):
        apply_overrides(RECIPES["gtsrb_robust"], [override])


def test_crop_roi_override_reaches_the_recipe_and_its_training_record(tmp_path):
    recipe = apply_overrides(RECIPES["gtsrb_standard"], ["crop_roi=False"])
    assert recipe.crop_roi is False and RECIPES["gtsrb_standard"].crop_roi is True
    path = save_training_record("whole", small_dataset(), recipe, {"loss": [1.0]}, 0.1, tmp_path)
    assert json.loads(path.read_text())["crop_roi"] is False


def test_gtsrb_recipes_train_on_crops_as_the_notebooks_load_them():
    for name, recipe in RECIPES.items():
        assert recipe.crop_roi is (recipe.dataset == "gtsrb"), name


class LogitsKernelAtEpochEnd(keras.callbacks.Callback):
    """Records the final dense layer's kernel after every epoch."""

    def __init__(self):
        super().__init__()
        self.kernels = []

    def on_epoch_end(self, epoch, logs=None):
        self.kernels.append(self.model.get_layer("logits").kernel.numpy().copy())


@pytest.mark.parametrize("keep_best_epoch", [True, False])
def test_keep_best_epoch_chooses_between_the_best_and_the_last_epoch(keep_best_epoch):
    keras.utils.set_random_seed(0)
    model = build_cnn(4, width=4)
    recorder = LogitsKernelAtEpochEnd()
    config = TrainingConfig(
        epochs=4, batch_size=16, patience=4, augment=False, keep_best_epoch=keep_best_epoch
    )
    history = train_model(model, small_dataset(), config, callbacks=[recorder], verbose=0)
    validation_accuracy = history.history["val_accuracy"]
    assert len(validation_accuracy) == 4
    chosen = int(np.argmax(validation_accuracy)) if keep_best_epoch else 3
    np.testing.assert_array_equal(
        model.get_layer("logits").kernel.numpy(), recorder.kernels[chosen]
    )
