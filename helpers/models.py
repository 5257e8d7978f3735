"""The study's CNN, its logits, and shipped weights (introduced in notebook 02).

The network is the traffic-sign classifier of the original study: blocks of Conv2D,
BatchNormalization and ReLU closed by MaxPool2D, a dense head, and a separate final
``Softmax`` layer. The model returns probabilities (for ``model.predict`` and the
cross-entropy loss); :func:`logits_model` returns the same network without the softmax,
sharing its weights, because attacks must differentiate logits (a saturated softmax has
near-zero gradients).
"""

from __future__ import annotations

import pathlib
import weakref
from collections.abc import Sequence

import keras
import numpy as np
from keras import layers

from helpers.lab.precision import warn_if_bfloat16_is_slow

MODELS_DIR = pathlib.Path(__file__).resolve().parent.parent / "models"
SOFTMAX_LAYER_NAME = "probabilities"
LOGITS_LAYER_NAME = "logits"
# Policies build_cnn accepts. "mixed_bfloat16" computes the convolutions and dense layers in
# bfloat16 (fast on CPUs with native bfloat16 instructions) with float32 weights.
DTYPE_POLICIES = ("float32", "mixed_bfloat16")
# Activations build_cnn accepts: the study's ReLU, or the smooth SiLU (x * sigmoid(x)), which
# adversarial training can profit from (Xie et al. 2020, "Smooth adversarial training").
ACTIVATIONS = ("relu", "silu")


@keras.saving.register_keras_serializable(package="advlab")
class PerImageStandardization(layers.Layer):
    """Rescales each image to zero mean and unit variance (contrast normalisation).

    GTSRB has many dark, low-contrast photographs. Normalising inside the model keeps
    the model's input in [0, 1] (so epsilon keeps its meaning) while the convolutions
    see contrast-normalised images. It is differentiable, so attacks see through it.
    """

    def call(self, images):
        mean = keras.ops.mean(images, axis=(1, 2, 3), keepdims=True)
        variance = keras.ops.var(images, axis=(1, 2, 3), keepdims=True)
        return (images - mean) / keras.ops.sqrt(variance + 1e-4)


@keras.saving.register_keras_serializable(package="advlab")
class LocalContrastNormalization(layers.Layer):
    """Subtracts each pixel's neighbourhood mean and divides by the neighbourhood's spread.

    A global standardisation cannot fix a sign that is over-exposed on one side and dark on
    the other; a local one can (Jarrett et al. 2009 and Sermanet and LeCun 2011 used it on
    GTSRB). The neighbourhood is a Gaussian window; the divisor is the local standard
    deviation (averaged over colour channels so hues keep their ratios), never below the
    image's mean local standard deviation, so flat regions are not blown up into noise.
    Built from convolutions, so it is differentiable and attacks see through it.

    Args:
        sigma: Standard deviation of the Gaussian window, in pixels.
        radius: Half-width of the window; the kernel is ``2 * radius + 1`` pixels wide.
    """

    def __init__(self, sigma: float = 2.0, radius: int = 4, **kwargs):
        super().__init__(**kwargs)
        if sigma <= 0 or radius < 1:
            raise ValueError(f"sigma must be > 0 and radius >= 1, got {sigma!r} and {radius!r}.")
        self.sigma = float(sigma)
        self.radius = int(radius)

    def build(self, input_shape):
        offsets = np.arange(-self.radius, self.radius + 1, dtype="float32")
        window = np.exp(-(offsets**2) / (2 * self.sigma**2))
        kernel = np.outer(window, window)
        kernel /= kernel.sum()
        channels = input_shape[-1]
        # One depthwise filter per channel: (height, width, channels, multiplier 1).
        self._kernel = keras.ops.convert_to_tensor(
            np.repeat(kernel[:, :, None, None], channels, axis=2).astype("float32")
        )

    def _local_mean(self, images):
        padding = [[0, 0], [self.radius, self.radius], [self.radius, self.radius], [0, 0]]
        padded = keras.ops.pad(images, padding, mode="reflect")
        return keras.ops.depthwise_conv(padded, self._kernel, padding="valid")

    def call(self, images):
        centred = images - self._local_mean(images)
        local_variance = keras.ops.mean(self._local_mean(centred**2), axis=-1, keepdims=True)
        local_std = keras.ops.sqrt(local_variance + 1e-4)
        floor = keras.ops.mean(local_std, axis=(1, 2, 3), keepdims=True)
        return centred / keras.ops.maximum(local_std, floor)

    def get_config(self):
        return {**super().get_config(), "sigma": self.sigma, "radius": self.radius}


def build_cnn(
    num_classes: int,
    *,
    input_shape: Sequence[int] = (32, 32, 3),
    width: int = 32,
    dropout: float = 0.3,
    standardize: bool = True,
    local_contrast: bool = False,
    dtype_policy: str = "float32",
    activation: str = "relu",
) -> keras.Model:
    """Builds the study's CNN (a functional Keras model, softmax output).

    Layers, for ``width`` w:

    1. ``PerImageStandardization`` (contrast normalisation, inputs stay in [0, 1]), unless
       ``standardize=False``; or ``LocalContrastNormalization`` with ``local_contrast=True``.
    2. Three blocks with w, 2w, 4w filters, each Conv2D(3x3) -> BatchNormalization ->
       ReLU, twice, then MaxPool2D(2): 32x32 -> 16x16 -> 8x8 -> 4x4.
    3. Flatten -> Dropout -> Dense(8w) -> BatchNormalization -> ReLU -> Dropout.
    4. Dense(num_classes) named ``logits``, then a separate ``Softmax`` named
       ``probabilities``.

    Args:
        num_classes: Number of classes (43 for GTSRB, 10 for CIFAR-10).
        input_shape: ``(height, width, channels)``; 32x32 RGB images by default.
        width: Filters in the first block; later blocks double it.
        dropout: Dropout rate in the dense head, in [0, 1).
        standardize: Normalise each image's contrast first. It helps clean accuracy, but it
            also magnifies perturbations of low-contrast images (it divides by their small
            standard deviation), so robust models are built without it.
        local_contrast: Normalise local instead of global contrast (with ``standardize``).
        dtype_policy: ``"float32"``, or ``"mixed_bfloat16"`` to compute the convolution
            blocks and the dense head in bfloat16 (weights stay float32). The contrast
            normalisation and the softmax stay float32 either way. For training only: the
            lab attacks and evaluates float32 models (``float32_copy``). Only faster on a
            CPU with bfloat16 instructions: elsewhere it warns (``helpers.lab.precision``).
        activation: ``"relu"`` (the study's) or ``"silu"``, after every normalisation.

    Returns:
        An uncompiled model mapping [0, 1] images to class probabilities.

    Raises:
        ValueError: If ``num_classes``, ``input_shape``, ``width``, ``dropout``,
            ``dtype_policy`` or ``activation`` is invalid.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}.")
    shape = tuple(input_shape)
    if len(shape) != 3 or shape[2] not in (1, 3) or min(shape[:2]) < 8:
        raise ValueError(
            f"input_shape must be (height, width, channels) with height and width >= 8 "
            f"and 1 or 3 channels (channels last), got {input_shape!r}."
        )
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ValueError(f"width must be a positive integer, got {width!r}.")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}.")
    if dtype_policy not in DTYPE_POLICIES:
        raise ValueError(f"dtype_policy must be one of {DTYPE_POLICIES}, got {dtype_policy!r}.")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}.")
    warn_if_bfloat16_is_slow(dtype_policy)

    def nonlinearity(name: str):
        if activation == "relu":
            return layers.ReLU(name=name, dtype=dtype_policy)
        return layers.Activation(
            activation, name=name.replace("relu", activation), dtype=dtype_policy
        )

    inputs = keras.Input(shape=shape, name="images")
    x = inputs
    if standardize and local_contrast:
        x = LocalContrastNormalization(name="local_contrast", dtype="float32")(x)
    elif standardize:
        x = PerImageStandardization(name="standardize", dtype="float32")(x)
    for block, filters in enumerate((width, 2 * width, 4 * width), start=1):
        for conv in (1, 2):
            x = layers.Conv2D(
                filters,
                3,
                padding="same",
                use_bias=False,
                name=f"block{block}_conv{conv}",
                dtype=dtype_policy,
            )(x)
            x = layers.BatchNormalization(name=f"block{block}_bn{conv}", dtype=dtype_policy)(x)
            x = nonlinearity(f"block{block}_relu{conv}")(x)
        x = layers.MaxPool2D(2, name=f"block{block}_pool", dtype=dtype_policy)(x)
    x = layers.Flatten(name="flatten", dtype=dtype_policy)(x)
    x = layers.Dropout(dropout, name="dropout1", dtype=dtype_policy)(x)
    x = layers.Dense(8 * width, use_bias=False, name="dense", dtype=dtype_policy)(x)
    x = layers.BatchNormalization(name="dense_bn", dtype=dtype_policy)(x)
    x = nonlinearity("dense_relu")(x)
    x = layers.Dropout(dropout, name="dropout2", dtype=dtype_policy)(x)
    logits = layers.Dense(num_classes, name=LOGITS_LAYER_NAME, dtype=dtype_policy)(x)
    # float32 always: a bfloat16 softmax would round probabilities near 1 to 1 (8
    # significant bits), and the cross-entropy of confident images with them.
    probabilities = layers.Softmax(name=SOFTMAX_LAYER_NAME, dtype="float32")(logits)
    return keras.Model(inputs, probabilities, name="study_cnn")


def ends_in_softmax(model: keras.Model) -> bool:
    """Says whether ``model`` returns probabilities through a final ``Softmax`` layer.

    Args:
        model: A Keras model.

    Returns:
        True for the lab's models (``build_cnn``, the defended models of
        ``helpers.defenses``), False for a model that already returns logits.
    """
    return bool(model.layers) and isinstance(model.layers[-1], layers.Softmax)


# One logits view per model, built once: the attacks, calibration and the notebooks share it.
_logits_views: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def logits_model(model: keras.Model) -> keras.Model:
    """Returns the same network without its final softmax, sharing every weight.

    Args:
        model: A functional model whose last layer is a ``keras.layers.Softmax``.

    Returns:
        A model mapping the same inputs to logits (the softmax's input); the same object
        on every call for the same ``model``.

    Raises:
        TypeError: If ``model`` is not a Keras model.
        ValueError: If the model's final layer is not a softmax.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"logits_model expects a keras.Model, got {type(model).__name__}.")
    if not ends_in_softmax(model):
        final = model.layers[-1] if model.layers else None
        name = type(final).__name__ if final is not None else "nothing"
        raise ValueError(
            f"logits_model needs a model whose final layer is a keras.layers.Softmax, "
            f"but {model.name!r} ends with {name}. Build it with helpers.models.build_cnn, "
            "or pass a model that outputs logits to the attack directly."
        )
    if model not in _logits_views:
        final = model.layers[-1]
        _logits_views[model] = keras.Model(model.input, final.input, name=f"{model.name}_logits")
    return _logits_views[model]


def logits_of(model: keras.Model) -> keras.Model:
    """Returns the network an attack differentiates: the logits of a softmax model, or the
    model itself if it already returns logits.

    Args:
        model: A Keras model, ending in a softmax or returning logits.

    Returns:
        A model returning logits.
    """
    return logits_model(model) if ends_in_softmax(model) else model


def float32_copy(model: keras.Model) -> keras.Model:
    """Returns a float32 model with the same architecture and weights as ``model``.

    A model built with ``dtype_policy="mixed_bfloat16"`` keeps its weights in float32 but
    computes in bfloat16, whose 8 significant bits cannot resolve small perturbations (near 1
    it steps by 1/256, about 0.004). Attacks and evaluations need the float32 network, so a
    model trained in mixed precision is copied into one before it is saved or returned.

    Args:
        model: A functional model (any dtype policy).

    Returns:
        A new, uncompiled model whose every layer computes in float32.

    Raises:
        TypeError: If ``model`` is not a Keras model.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"float32_copy expects a keras.Model, got {type(model).__name__}.")
    config = model.get_config()
    for layer in config["layers"]:
        layer["config"]["dtype"] = "float32"
    copy = model.__class__.from_config(config)
    copy.set_weights(model.get_weights())
    return copy


WEIGHTS_SUFFIX = ".weights.h5"


def weights_path(name: str, models_dir: str | pathlib.Path = MODELS_DIR) -> pathlib.Path:
    """Returns where the weights of a named model live: ``models_dir/<name>.weights.h5``."""
    return pathlib.Path(models_dir) / f"{name}{WEIGHTS_SUFFIX}"


def load_weights(model: keras.Model, path: str | pathlib.Path) -> keras.Model:
    """Loads a weights file into a model built with the same architecture.

    The lab ships weights, not whole ``.keras`` models: a ``.keras`` file stores the
    architecture as the configuration of the Keras version that wrote it, which older Keras
    releases cannot read, while the weights file is read by every Keras 3 release the lab
    supports. The architecture comes from the code instead (``build_cnn`` with the recipe's
    settings, ``helpers.lab.recipes.build_model``).

    Args:
        model: A model built with the architecture the weights were saved from.
        path: A ``.weights.h5`` file written by :func:`save_weights`.

    Returns:
        The same model, with the loaded weights.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If the file is corrupt, or holds weights of another architecture.
    """
    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No weights file at {path}.")
    try:
        model.load_weights(path)
    except Exception as error:  # h5py and Keras raise many types for a damaged file.
        raise ValueError(
            f"{path} could not be loaded into {model.name!r} ({type(error).__name__}: "
            f"{error}). The file may be corrupt or truncated, or hold the weights of another "
            "architecture (another width, number of classes or recipe): delete it or call "
            "load_or_train(..., retrain=True)."
        ) from error
    return model


def save_weights(model: keras.Model, path: str | pathlib.Path) -> pathlib.Path:
    """Saves a model's weights under a temporary name, then renames them.

    A crash while saving never leaves half a file under the final name.

    Args:
        model: The model whose weights to save.
        path: The final path; it must end in ``.weights.h5``.

    Returns:
        The path written.

    Raises:
        ValueError: If ``path`` does not end in ``.weights.h5``.
    """
    path = pathlib.Path(path)
    if not path.name.endswith(WEIGHTS_SUFFIX):
        raise ValueError(f"A weights file must end in {WEIGHTS_SUFFIX!r}, got {path.name!r}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name[: -len(WEIGHTS_SUFFIX)] + ".partial" + WEIGHTS_SUFFIX)
    model.save_weights(partial)
    partial.replace(path)
    return path
