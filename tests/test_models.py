"""Tests for helpers.models and helpers.recipes: architecture, logits, shipped weights."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers.evaluation import accuracy
from helpers.models import (
    MODELS_DIR,
    LocalContrastNormalization,
    build_cnn,
    load_model,
    logits_model,
    save_model,
)
from helpers.recipes import load_or_train


def test_build_cnn_has_the_study_blocks_and_a_separate_softmax():
    model = build_cnn(43)
    kinds = {type(layer).__name__ for layer in model.layers}
    assert {"Conv2D", "MaxPooling2D", "BatchNormalization", "ReLU", "Softmax"} <= kinds
    assert isinstance(model.layers[-1], keras.layers.Softmax)
    assert model.output_shape == (None, 43)


def test_logits_model_shares_weights_and_inverts_the_softmax(random_batch):
    model = build_cnn(10, width=4)
    logits = logits_model(model)
    images, _ = random_batch
    probabilities = model(images, training=False).numpy()
    from_logits = keras.ops.softmax(logits(images, training=False)).numpy()
    np.testing.assert_allclose(probabilities, from_logits, atol=1e-6)
    assert {id(w) for w in logits.weights} <= {id(w) for w in model.weights}


def test_logits_model_refuses_a_model_without_final_softmax():
    inputs = keras.Input((32, 32, 3))
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(inputs)))
    with pytest.raises(ValueError, match="final layer is a keras.layers.Softmax"):
        logits_model(model)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"num_classes": 0}, "num_classes must be an integer >= 2"),
        ({"num_classes": -3}, "num_classes must be an integer >= 2"),
        ({"num_classes": 43, "input_shape": (32, 32)}, "input_shape must be"),
        ({"num_classes": 43, "input_shape": (3, 32, 32)}, "channels last"),
        ({"num_classes": 43, "width": 0}, "width must be a positive integer"),
        ({"num_classes": 43, "dropout": 1.0}, "dropout must be in"),
    ],
)
def test_build_cnn_bad_arguments(arguments, message):
    with pytest.raises(ValueError, match=message):
        build_cnn(**arguments)


def test_save_and_load_round_trip(tmp_path, random_batch):
    model = build_cnn(10, width=4)
    path = tmp_path / "model.keras"
    save_model(model, path)
    loaded = load_model(path, num_classes=10)
    images, _ = random_batch
    np.testing.assert_allclose(
        model(images, training=False), loaded(images, training=False), atol=1e-6
    )
    assert not list(tmp_path.glob("*.partial.keras"))


def test_load_model_refuses_a_model_of_another_shape(tmp_path):
    path = tmp_path / "gtsrb_standard.keras"
    save_model(build_cnn(10, width=4), path)
    with pytest.raises(ValueError, match="10 classes.*43 classes are needed"):
        load_model(path, num_classes=43)
    with pytest.raises(ValueError, match="10 classes"):
        load_or_train("gtsrb_standard", models_dir=tmp_path)


def test_load_model_refuses_a_corrupt_file(tmp_path):
    path = tmp_path / "gtsrb_standard.keras"
    path.write_bytes(b"not a keras archive")
    with pytest.raises(ValueError, match="corrupt or truncated"):
        load_or_train("gtsrb_standard", models_dir=tmp_path)


def test_load_or_train_refuses_unknown_name():
    with pytest.raises(ValueError, match="Unknown model 'gtsrb_robustest'"):
        load_or_train("gtsrb_robustest")


def test_shipped_model_loads_with_plain_keras_and_keeps_its_stated_accuracy(
    gtsrb_sample, gtsrb_uncropped_sample
):
    # models/README.md states 99.41% on the full test set (cropped, as the lab loads it).
    # A 2,000-image stratified sample has a standard error of about 0.17 points; the bound
    # sits four standard errors below the stated figure, so a damaged or swapped file fails.
    # On whole images (signs smaller than it was trained on) it must do worse, or the crop
    # did not reach the data.
    model = keras.models.load_model(MODELS_DIR / "gtsrb_standard.keras")
    on_crops = accuracy(model, *gtsrb_sample.test)
    assert on_crops >= 0.987
    assert accuracy(model, *gtsrb_uncropped_sample.test) < on_crops


def test_shipped_robust_model_keeps_its_stated_clean_accuracy(shipped_robust_model, gtsrb_sample):
    # models/README.md states 92.14% clean on the full, cropped test set; the standard error
    # on 2,000 images is about 0.6 points, and the bound is four of them below.
    assert accuracy(shipped_robust_model, *gtsrb_sample.test) >= 0.90


@pytest.mark.parametrize("name", ["gtsrb_standard", "gtsrb_robust"])
def test_load_or_train_refuses_data_cropped_unlike_the_recipe(
    tmp_path, gtsrb_uncropped_sample, name
):
    with pytest.raises(
        ValueError, match=f"{name} expects cropped images, but the dataset holds whole"
    ):
        load_or_train(name, dataset=gtsrb_uncropped_sample, models_dir=tmp_path)
    assert not list(tmp_path.iterdir())  # refused before anything was trained or written


def test_local_contrast_normalization_removes_brightness_and_local_contrast():
    rng = np.random.default_rng(0)
    pattern = rng.uniform(0, 1, (2, 32, 32, 3)).astype(np.float32)
    layer = LocalContrastNormalization()
    # An over-exposed copy (brighter and flatter) normalises to nearly the same image.
    exposed = 0.6 + 0.4 * pattern
    np.testing.assert_allclose(layer(exposed).numpy(), layer(pattern).numpy(), atol=0.05)
    with pytest.raises(ValueError, match="sigma"):
        LocalContrastNormalization(sigma=0)


def test_local_contrast_model_saves_loads_and_has_gradients(tmp_path, random_batch):
    images, _ = random_batch
    model = build_cnn(10, width=4, local_contrast=True)
    assert any(isinstance(layer, LocalContrastNormalization) for layer in model.layers)
    save_model(model, tmp_path / "lcn.keras")
    loaded = load_model(tmp_path / "lcn.keras", num_classes=10)
    np.testing.assert_allclose(
        loaded.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-6
    )
    batch = tf.constant(images)
    with tf.GradientTape() as tape:
        tape.watch(batch)
        total = tf.reduce_sum(logits_model(model)(batch))
    assert float(tf.reduce_max(tf.abs(tape.gradient(total, batch)))) > 0
