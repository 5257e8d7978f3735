"""Pre-processing defences: what each layer does, its gradient, and BPDA/EOT breaking them."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers import attacks, defenses
from helpers.evaluation import accuracy, robust_accuracy
from helpers.models import logits_of

LAYERS = [
    lambda: defenses.JpegCompression(75),
    lambda: defenses.BitDepthReduction(3),
    lambda: defenses.MedianSmoothing(3),
    lambda: defenses.RandomResizePadding(24, seed=0),
]


def _gradient(model, images, labels):
    logits = logits_of(model)
    _, gradient, _ = attacks.loss_and_gradient(
        logits, tf.constant(images), tf.constant(labels, tf.int64)
    )
    return gradient.numpy()


@pytest.mark.parametrize("make_layer", LAYERS)
def test_layers_keep_shape_dtype_and_pixel_range(make_layer, random_batch):
    images, _ = random_batch
    output = make_layer()(tf.constant(images)).numpy()
    assert output.shape == images.shape and output.dtype == np.float32
    assert output.min() >= 0.0 and output.max() <= 1.0


def test_bit_depth_reduction_keeps_two_to_the_bits_levels(random_batch):
    images, _ = random_batch
    output = defenses.BitDepthReduction(2)(tf.constant(images)).numpy()
    np.testing.assert_allclose(np.unique(output), [0, 1 / 3, 2 / 3, 1], atol=1e-6)


def test_median_smoothing_removes_a_lone_bright_pixel_and_keeps_flat_images():
    flat = np.full((1, 8, 8, 3), 0.25, np.float32)
    salted = flat.copy()
    salted[0, 4, 4, :] = 1.0
    np.testing.assert_allclose(defenses.MedianSmoothing(3)(tf.constant(salted)).numpy(), flat)


def test_jpeg_at_top_quality_changes_little_and_at_low_quality_more(random_batch):
    smooth = np.repeat(np.linspace(0, 1, 32, dtype=np.float32)[None, :, None], 32, axis=0)
    images = np.repeat(smooth[None], 2, axis=0).repeat(3, axis=-1)
    best = np.abs(defenses.JpegCompression(100)(tf.constant(images)).numpy() - images).max()
    worst = np.abs(defenses.JpegCompression(5)(tf.constant(images)).numpy() - images).max()
    assert best < 0.02 < worst


def test_random_resize_padding_is_random_at_inference(random_batch):
    images, _ = random_batch
    layer = defenses.RandomResizePadding(16, seed=0)
    draws = [layer(tf.constant(images), training=False).numpy() for _ in range(4)]
    assert any(not np.allclose(draws[0], other) for other in draws[1:])
    # With no room to shrink, it is the identity.
    np.testing.assert_allclose(
        defenses.RandomResizePadding(32)(tf.constant(images)).numpy(), images, atol=1e-6
    )


@pytest.mark.parametrize("make_layer", [LAYERS[0], LAYERS[1]])
def test_non_differentiable_defences_mask_the_gradient_and_bpda_restores_it(
    make_layer, shipped_standard_model, gtsrb_sample
):
    images, labels = gtsrb_sample.test[0][:16], gtsrb_sample.test[1][:16]
    layer = make_layer()
    masked = defenses.defended_model(shipped_standard_model, layer)
    assert np.all(_gradient(masked, images, labels) == 0)
    # BPDA: the gradient at x is the bare model's gradient at the transformed image g(x).
    bpda = defenses.straight_through(shipped_standard_model, layer)
    transformed = layer(tf.constant(images)).numpy()
    np.testing.assert_allclose(
        _gradient(bpda, images, labels),
        _gradient(shipped_standard_model, transformed, labels),
        rtol=1e-4,
        atol=1e-6,
    )
    # Its forward pass, and so every prediction, is the defended model's.
    np.testing.assert_allclose(
        bpda.predict(images, verbose=0), masked.predict(images, verbose=0), atol=1e-6
    )


def test_bpda_breaks_jpeg_where_the_naive_attack_stalls(shipped_standard_model, gtsrb_sample):
    images, labels = gtsrb_sample.test[0][:100], gtsrb_sample.test[1][:100]
    jpeg = defenses.JpegCompression(75)
    kwargs = dict(epsilon=8 / 255, num_steps=10, seed=0, progress=False)
    naive = robust_accuracy(
        defenses.defended_model(shipped_standard_model, jpeg), images, labels, **kwargs
    )
    adaptive = robust_accuracy(
        defenses.straight_through(shipped_standard_model, jpeg), images, labels, **kwargs
    )
    assert adaptive < naive - 0.3, (naive, adaptive)


def test_eot_wrapper_averages_draws_and_returns_probabilities(small_model, random_batch):
    images, _ = random_batch
    identity = defenses.defended_model(small_model, defenses.RandomResizePadding(32))
    wrapped = defenses.expectation_over_transformation(identity, samples=3)
    np.testing.assert_allclose(
        wrapped.predict(images, verbose=0), small_model.predict(images, verbose=0), atol=1e-5
    )
    random = defenses.expectation_over_transformation(
        defenses.defended_model(small_model, defenses.RandomResizePadding(20, seed=1)), samples=4
    )
    np.testing.assert_allclose(random.predict(images, verbose=0).sum(axis=1), 1.0, atol=1e-5)


def test_defended_model_saves_and_loads(small_model, random_batch, tmp_path):
    images, _ = random_batch
    model = defenses.defended_model(small_model, defenses.MedianSmoothing(3))
    model.save(tmp_path / "median.keras")
    loaded = keras.models.load_model(tmp_path / "median.keras")
    np.testing.assert_allclose(
        loaded.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-6
    )
    assert accuracy(loaded, images, np.zeros(len(images), np.int64)) >= 0


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: defenses.JpegCompression(0), "quality"),
        (lambda: defenses.JpegCompression(101), "between 1 and 100"),
        (lambda: defenses.BitDepthReduction(9), "between 1 and 8"),
        (lambda: defenses.MedianSmoothing(4), "odd number"),
        (lambda: defenses.RandomResizePadding(24, fill=2.0), "fill"),
        (
            lambda: defenses.RandomResizePadding(40)(tf.zeros((1, 32, 32, 3))),
            "larger than the images",
        ),
        (
            lambda: defenses.expectation_over_transformation(keras.Sequential(), samples=0),
            "samples",
        ),
    ],
)
def test_bad_settings_get_clear_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_wrong_types_get_clear_errors(small_model):
    with pytest.raises(TypeError, match="straight_through"):
        defenses.BitDepthReduction(3, straight_through="yes")
    with pytest.raises(TypeError, match="keras.Model"):
        defenses.defended_model("model", defenses.BitDepthReduction(3))
    with pytest.raises(TypeError, match="keras layer"):
        defenses.defended_model(small_model, lambda images: images)


def test_random_resize_padding_draws_per_image_so_eot_averages_different_draws():
    same = np.repeat(
        np.random.default_rng(0).uniform(0, 1, (1, 32, 32, 3)).astype(np.float32), 6, axis=0
    )
    output = defenses.RandomResizePadding(16, seed=0)(tf.constant(same)).numpy()
    assert len({output[index].tobytes() for index in range(6)}) == 6
