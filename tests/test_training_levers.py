"""Training levers for the robust recipes: weight averaging, SGD, smooth activations."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest

from helpers.lab.recipes import RECIPES, load_or_train
from helpers.lab.weight_averaging import WeightAveraging
from helpers.models import build_cnn
from helpers.training import TrainingConfig, compile_model


def _set_all(model, value: float) -> None:
    model.set_weights([np.full_like(weight, value) for weight in model.get_weights()])


def test_weight_averaging_ends_with_the_ramped_moving_average():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    callback = WeightAveraging(model, decay=0.5)
    _set_all(model, 0.0)
    callback.on_train_begin()
    expected = 0.0
    for step, value in enumerate([4.0, 8.0, 2.0], start=1):
        _set_all(model, value)  # what an optimizer step would have done
        callback.on_train_batch_end(step)
        decay = min(0.5, (1 + step) / (10 + step))
        expected = decay * expected + (1 - decay) * value
    callback.on_train_end()
    for weight in model.get_weights():
        np.testing.assert_allclose(weight, expected, rtol=1e-6)
    assert expected != 2.0  # not the last weights


def test_weight_averaging_refuses_a_decay_outside_0_1():
    with pytest.raises(ValueError, match="decay must be in"):
        WeightAveraging(build_cnn(10, width=4), decay=1.0)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"optimizer": "rmsprop"}, "optimizer must be one of"),
        ({"weight_averaging": 0.999}, "set keep_best_epoch=False"),
        ({"weight_averaging": 1.5, "keep_best_epoch": False}, "weight_averaging must be None"),
    ],
)
def test_training_config_refuses_bad_levers(settings, message):
    with pytest.raises(ValueError, match=message):
        TrainingConfig(**settings)


def test_sgd_is_nesterov_with_decoupled_decay():
    model = build_cnn(10, width=4)
    compile_model(model, TrainingConfig(optimizer="sgd", weight_decay=5e-3), steps_per_epoch=4)
    assert isinstance(model.optimizer, keras.optimizers.SGD)
    assert model.optimizer.nesterov and model.optimizer.momentum == 0.9
    assert model.optimizer.weight_decay == 5e-3


def test_silu_replaces_every_relu_and_keeps_the_weights_layout():
    relu, silu = build_cnn(10, width=4), build_cnn(10, width=4, activation="silu")
    assert not any(isinstance(layer, keras.layers.ReLU) for layer in silu.layers)
    assert (
        sum(getattr(layer, "activation", None) is keras.activations.silu for layer in silu.layers)
        == 7
    )
    shapes = [weight.shape for weight in relu.get_weights()]
    assert shapes == [weight.shape for weight in silu.get_weights()]
    with pytest.raises(ValueError, match="activation must be one of"):
        build_cnn(10, activation="tanh")


def test_a_recipe_variant_with_another_activation_is_another_architecture(tmp_path):
    smooth = dataclasses.replace(RECIPES["gtsrb_robust"], activation="silu")
    with pytest.raises(ValueError, match=r"recipe changes \['activation'\]"):
        load_or_train("gtsrb_robust", models_dir=tmp_path, recipe=smooth)
