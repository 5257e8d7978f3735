"""An exponential moving average of a model's weights, kept during training (notebook 05).

Averaging the weights of the last steps of training, instead of keeping the last step's
(or the "best" epoch's), gives a smoother model; in adversarial training it also limits
robust overfitting (Rice et al. 2020), and it is part of the strongest published recipes
(Gowal et al. 2020; Rebuffi et al. 2021). The average covers every weight, the
normalisation layers' moving statistics included, and replaces the model's weights when
training ends.
"""

from __future__ import annotations

import keras
import tensorflow as tf


class WeightAveraging(keras.callbacks.Callback):
    """Keeps ``average = decay * average + (1 - decay) * weights`` after every step.

    The decay ramps up as ``min(decay, (1 + t) / (10 + t))`` over the first steps ``t``, so
    the random initial weights are forgotten quickly.

    Args:
        model: The model whose weights are averaged (the network itself, not a wrapper
            that trains it).
        decay: Weight of the running average per step, in (0, 1); 0.999 averages over
            roughly the last thousand steps.

    Raises:
        ValueError: If ``decay`` is not in (0, 1).
    """

    def __init__(self, model: keras.Model, decay: float = 0.999):
        super().__init__()
        if not 0 < decay < 1:
            raise ValueError(f"decay must be in (0, 1), got {decay!r}.")
        self.target, self.decay = model, float(decay)
        self._average: list[tf.Variable] = []
        self._update = None

    def on_train_begin(self, logs=None):
        self._average = [
            tf.Variable(tf.identity(weight.value), trainable=False)
            for weight in self.target.weights
        ]
        steps = tf.Variable(0.0, trainable=False)
        pairs = list(zip(self._average, self.target.weights, strict=True))

        @tf.function
        def update():  # one compiled step for all weights (traced once per training run)
            steps.assign_add(1.0)
            decay = tf.minimum(self.decay, (1.0 + steps) / (10.0 + steps))
            for average, weight in pairs:
                average.assign(decay * average + (1.0 - decay) * weight.value)

        self._update = update

    def on_train_batch_end(self, batch, logs=None):
        self._update()

    def on_train_end(self, logs=None):
        for average, weight in zip(self._average, self.target.weights, strict=True):
            weight.assign(average)
