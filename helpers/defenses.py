"""Input pre-processing defences as Keras layers, and the adaptive attacks' wrappers (notebook 06).

Each defence transforms images in [0, 1] to images in [0, 1] before the classifier:

- :class:`JpegCompression`: JPEG encode and decode (Dziugaite et al. 2016, Guo et al. 2018).
- :class:`BitDepthReduction`: keep a few bits per colour channel (Guo et al. 2018; one of
  the "squeezers" of Xu et al.'s feature-squeezing detector, used here alone, as a
  pre-processing defence, not as their detector).
- :class:`MedianSmoothing`: a median filter (another of Xu et al.'s squeezers).
- :class:`RandomResizePadding`: shrink by a random amount and pad at a random place (Xie et
  al. 2018); random at inference too.

JPEG and bit-depth reduction have no useful gradient (JPEG's operations have none at all;
rounding's is zero almost everywhere). By default their layers return a zero gradient, which
is what a naive attack meets: PGD stalls and the defence looks strong. With
``straight_through=True`` the forward pass is unchanged and the backward pass treats the
layer as the identity: this is BPDA (Athalye et al. 2018), the adaptive attack that breaks
them. For the random defence, :func:`expectation_over_transformation` averages the
defended model over many draws (EOT), so the attack follows the expected prediction.

:func:`defended_model` puts a defence in front of a trained model and keeps the lab's model
contract (a final ``Softmax`` layer), so every attack and evaluation helper works on it.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

from helpers.lab.checks import check_positive_int
from helpers.models import SOFTMAX_LAYER_NAME, logits_model


class _Preprocessing(layers.Layer):
    """A transformation of [0, 1] images with an optional straight-through gradient.

    Subclasses implement ``transform``. With ``straight_through=False`` the gradient is the
    transformation's own (``exact_gradient=True``) or zero; with ``straight_through=True``
    the forward pass is the same and the gradient is the identity's (BPDA).
    """

    exact_gradient = False

    def __init__(self, straight_through: bool = False, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(straight_through, bool):
            raise TypeError(f"straight_through must be True or False, got {straight_through!r}.")
        self.straight_through = straight_through

    def transform(self, images):
        raise NotImplementedError

    def call(self, images):
        transformed = self.transform(images)
        if self.straight_through:
            # Forward: transformed. Backward: d(output)/d(images) = identity.
            return images + tf.stop_gradient(transformed - images)
        if self.exact_gradient:
            return transformed
        return tf.stop_gradient(transformed)

    def get_config(self):
        return {**super().get_config(), "straight_through": self.straight_through}


@keras.saving.register_keras_serializable(package="advlab")
class JpegCompression(_Preprocessing):
    """JPEG-compresses each image at a fixed quality and decodes it again.

    Args:
        quality: JPEG quality, 1 (worst) to 100 (best).
        straight_through: Use the identity's gradient (BPDA) instead of none.
    """

    def __init__(self, quality: int = 75, straight_through: bool = False, **kwargs):
        super().__init__(straight_through, **kwargs)
        quality = check_positive_int(quality, "quality")
        if quality > 100:
            raise ValueError(f"quality must be between 1 and 100, got {quality}.")
        self.quality = quality

    def transform(self, images):
        # adjust_jpeg_quality takes one image at a time; it rounds to 8 bits on the way.
        compressed = tf.map_fn(
            lambda image: tf.image.adjust_jpeg_quality(image, self.quality),
            images,
            fn_output_signature=tf.TensorSpec(images.shape[1:], images.dtype),
        )
        return tf.clip_by_value(tf.reshape(compressed, tf.shape(images)), 0.0, 1.0)

    def get_config(self):
        return {**super().get_config(), "quality": self.quality}


@keras.saving.register_keras_serializable(package="advlab")
class BitDepthReduction(_Preprocessing):
    """Rounds every channel to ``bits`` bits (2**bits levels between 0 and 1).

    Args:
        bits: Bits kept per channel, 1 to 8.
        straight_through: Use the identity's gradient (BPDA) instead of zero.
    """

    def __init__(self, bits: int = 3, straight_through: bool = False, **kwargs):
        super().__init__(straight_through, **kwargs)
        bits = check_positive_int(bits, "bits")
        if bits > 8:
            raise ValueError(f"bits must be between 1 and 8, got {bits}.")
        self.bits = bits

    def transform(self, images):
        levels = float(2**self.bits - 1)
        return tf.round(images * levels) / levels

    def get_config(self):
        return {**super().get_config(), "bits": self.bits}


@keras.saving.register_keras_serializable(package="advlab")
class MedianSmoothing(_Preprocessing):
    """Replaces each pixel by the median of its ``size`` x ``size`` neighbourhood, per channel.

    The median is differentiable almost everywhere (its gradient flows to the median pixel),
    so the exact gradient is used unless ``straight_through=True``.

    Args:
        size: Window width, an odd number >= 3.
        straight_through: Use the identity's gradient (BPDA) instead of the exact one.
    """

    exact_gradient = True

    def __init__(self, size: int = 3, straight_through: bool = False, **kwargs):
        super().__init__(straight_through, **kwargs)
        size = check_positive_int(size, "size")
        if size < 3 or size % 2 == 0:
            raise ValueError(f"size must be an odd number >= 3, got {size}.")
        self.size = size

    def transform(self, images):
        radius = self.size // 2
        padded = tf.pad(
            images, [[0, 0], [radius, radius], [radius, radius], [0, 0]], mode="REFLECT"
        )
        # (N, H, W, size*size*C) patches, regrouped so the window is the last axis.
        patches = tf.image.extract_patches(
            padded,
            sizes=[1, self.size, self.size, 1],
            strides=[1, 1, 1, 1],
            rates=[1, 1, 1, 1],
            padding="VALID",
        )
        shape = tf.shape(images)
        patches = tf.reshape(
            patches, [shape[0], shape[1], shape[2], self.size * self.size, shape[3]]
        )
        patches = tf.transpose(patches, [0, 1, 2, 4, 3])
        middle = self.size * self.size // 2 + 1
        return tf.math.top_k(patches, k=middle).values[..., -1]

    def get_config(self):
        return {**super().get_config(), "size": self.size}


@keras.saving.register_keras_serializable(package="advlab")
class RandomResizePadding(_Preprocessing):
    """Shrinks each image by a random factor and places it at a random offset (padding around).

    Every image of every call gets its own draw, at inference too: the defended model's
    prediction is itself random. Its gradient is exact (the bilinear resampling is
    differentiable).

    Args:
        min_size: Smallest side after shrinking, in pixels (at most the image's side); the
            side is drawn uniformly between this and the full side.
        fill: Value of the padding, in [0, 1].
        seed: Seeds the random draws.
    """

    exact_gradient = True

    def __init__(self, min_size: int = 24, fill: float = 0.5, seed: int | None = None, **kwargs):
        kwargs.pop("straight_through", None)
        super().__init__(False, **kwargs)
        self.min_size = check_positive_int(min_size, "min_size")
        if not 0.0 <= fill <= 1.0:
            raise ValueError(f"fill must be in [0, 1], got {fill!r}.")
        self.fill = float(fill)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        if self.min_size > min(input_shape[1], input_shape[2]):
            raise ValueError(
                f"min_size {self.min_size} is larger than the images ({input_shape[1]}x{input_shape[2]})."
            )

    def transform(self, images):
        height, width = images.shape[1], images.shape[2]
        draws = keras.random.uniform([tf.shape(images)[0], 3], seed=self.seed_generator)
        smallest = self.min_size / min(height, width)
        scale = smallest + (1.0 - smallest) * draws[:, 0]
        left = draws[:, 1] * width * (1.0 - scale)
        top = draws[:, 2] * height * (1.0 - scale)
        zeros = tf.zeros_like(scale)
        # Each output pixel (x, y) samples the input at ((x - left) / scale, (y - top) / scale).
        transforms = tf.stack(
            [1.0 / scale, zeros, -left / scale, zeros, 1.0 / scale, -top / scale, zeros, zeros],
            axis=1,
        )
        return tf.raw_ops.ImageProjectiveTransformV3(
            images=images,
            transforms=transforms,
            output_shape=tf.constant([height, width]),
            fill_value=self.fill,
            interpolation="BILINEAR",
            fill_mode="CONSTANT",
        )

    def get_config(self):
        config = super().get_config()
        config.pop("straight_through")
        return {**config, "min_size": self.min_size, "fill": self.fill, "seed": self.seed}


def defended_model(
    model: keras.Model, defense: layers.Layer, *, name: str | None = None
) -> keras.Model:
    """Puts a pre-processing layer in front of a trained model (weights shared, not copied).

    Args:
        model: A trained model ending in a softmax (from ``helpers.models``).
        defense: A pre-processing layer from this module.
        name: The new model's name (default: ``<defence>_<model>``).

    Returns:
        A model mapping [0, 1] images to probabilities, ending in a ``Softmax`` layer, so
        ``logits_model``, the attacks and the evaluation helpers all work on it.

    Raises:
        TypeError: If ``model`` is not a Keras model or ``defense`` not a Keras layer.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras.Model, got {type(model).__name__}.")
    if not isinstance(defense, layers.Layer):
        raise TypeError(f"defense must be a keras layer, got {type(defense).__name__}.")
    inputs = keras.Input(shape=model.input_shape[1:], name="images")
    logits = logits_model(model)(defense(inputs))
    probabilities = layers.Softmax(name=SOFTMAX_LAYER_NAME)(logits)
    return keras.Model(inputs, probabilities, name=name or f"{defense.name}_{model.name}")


def straight_through(model: keras.Model, defense: _Preprocessing) -> keras.Model:
    """Returns ``defended_model(model, defense)`` with the defence's gradient replaced (BPDA).

    The forward pass, and so every prediction, is exactly the defended model's; only the
    gradient differs, which is what the attack needs.

    Args:
        model: The trained model behind the defence.
        defense: A pre-processing layer from this module.

    Returns:
        The defended model with a straight-through (identity) gradient for the defence.
    """
    config = {**defense.get_config(), "straight_through": True, "name": f"{defense.name}_bpda"}
    return defended_model(model, type(defense).from_config(config))


class _AverageOverDraws(layers.Layer):
    """Runs a random model ``samples`` times on each input; returns log mean probability."""

    def __init__(self, model: keras.Model, samples: int, **kwargs):
        super().__init__(**kwargs)
        self.model = model
        self.samples = samples

    def call(self, images):
        batch = tf.shape(images)[0]
        tiled = tf.tile(images, [self.samples, 1, 1, 1])
        probabilities = self.model(tiled, training=False)
        probabilities = tf.reshape(probabilities, [self.samples, batch, -1])
        return tf.math.log(tf.reduce_mean(probabilities, axis=0) + 1e-12)


def expectation_over_transformation(model: keras.Model, samples: int = 8) -> keras.Model:
    """Wraps a random (defended) model so attacks follow its expected prediction (EOT).

    Each input is run ``samples`` times through ``model`` (a fresh random transformation
    each time) and the probabilities are averaged. Attacking the wrapper ascends the loss of
    that average, ``-log mean_j p_y(g_j(x))``: its gradient is the average of the per-draw
    gradients of the *probabilities*, which for the loss is a weighted mean of the per-draw
    loss gradients, each draw weighted by its share of the averaged ``p_y`` (Athalye et al.
    2018 average the loss gradients with equal weights). Evaluate the adversarial images on ``model`` itself, one draw per image, as a
    user would meet it.

    Args:
        model: A model ending in a softmax whose prediction is random.
        samples: Draws per input (the attack's cost grows with it).

    Returns:
        A model ending in a ``Softmax`` whose probabilities are the average over draws.
    """
    samples = check_positive_int(samples, "samples")
    inputs = keras.Input(shape=model.input_shape[1:], name="images")
    log_average = _AverageOverDraws(model, samples, name="average_over_draws")(inputs)
    probabilities = layers.Softmax(name=SOFTMAX_LAYER_NAME)(log_average)
    return keras.Model(inputs, probabilities, name=f"eot{samples}_{model.name}")
