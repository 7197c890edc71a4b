"""The VGGFace2 ResNet-50 of keras-vggface (`RESNET50`), written in Keras 3, with 003's head.

The layers carry keras-vggface's names (`conv1/7x7_s2`, `conv2_1_1x1_reduce/bn`, ...) so that
the published `rcmalli_vggface_tf_notop_resnet50.h5` loads layer by layer by name. Keras 3
forbids "/" in layer names, so "/" becomes "__" (`conv1__7x7_s2__bn`); `keras_name` and
`h5_name` convert between the two.

The model takes raw RGB pixels 0..255 and does keras-vggface's `preprocess_input(version=2)`
(RGB -> BGR, minus the VGGFace2 channel means) in its first layer, a fixed 1x1 convolution, so
that the saved model and its `.tflite` take the same numbers a camera gives.
"""

from __future__ import annotations

import os

import keras
import numpy as np
from keras import layers

from core.errors import ConfigError

# keras-vggface utils.preprocess_input(version=2): BGR means of VGGFace2.
VGGFACE2_BGR_MEAN = (91.4953, 103.8827, 131.0912)
SEP = "__"
STAGES = ((2, 3, (64, 64, 256)), (3, 4, (128, 128, 512)), (4, 6, (256, 256, 1024)), (5, 3, (512, 512, 2048)))
PREPROCESS_LAYER = "vggface_preprocess"


def keras_name(name: str) -> str:
    """keras-vggface layer name -> the Keras 3 name used here ("/" -> "__")."""
    return name.replace("/", SEP)


def h5_name(name: str) -> str:
    """Keras 3 layer name used here -> keras-vggface's name ("__" -> "/")."""
    return name.replace(SEP, "/")


def _bottleneck(x, filters, stage, block, strides=1, project=False):
    """keras-vggface's resnet_conv_block (project=True) or resnet_identity_block."""
    f1, f2, f3 = filters
    base = f"conv{stage}_{block}"
    shortcut = x
    y = layers.Conv2D(f1, 1, strides=strides, use_bias=False, name=keras_name(f"{base}_1x1_reduce"))(x)
    y = layers.BatchNormalization(name=keras_name(f"{base}_1x1_reduce/bn"))(y)
    y = layers.ReLU(name=f"{base}_1x1_reduce_relu")(y)
    y = layers.Conv2D(f2, 3, padding="same", use_bias=False, name=keras_name(f"{base}_3x3"))(y)
    y = layers.BatchNormalization(name=keras_name(f"{base}_3x3/bn"))(y)
    y = layers.ReLU(name=f"{base}_3x3_relu")(y)
    y = layers.Conv2D(f3, 1, use_bias=False, name=keras_name(f"{base}_1x1_increase"))(y)
    y = layers.BatchNormalization(name=keras_name(f"{base}_1x1_increase/bn"))(y)
    if project:
        shortcut = layers.Conv2D(f3, 1, strides=strides, use_bias=False, name=keras_name(f"{base}_1x1_proj"))(x)
        shortcut = layers.BatchNormalization(name=keras_name(f"{base}_1x1_proj/bn"))(shortcut)
    y = layers.Add(name=f"{base}_add")([y, shortcut])
    return layers.ReLU(name=f"{base}_relu")(y)


def preprocess_layer() -> layers.Conv2D:
    """A frozen 1x1 convolution: RGB 0..255 -> BGR minus the VGGFace2 means (grey is repeated)."""
    return layers.Conv2D(3, 1, name=PREPROCESS_LAYER, trainable=False)


def _set_preprocess_weights(layer, input_channels):
    kernel = np.zeros((1, 1, input_channels, 3), np.float32)
    for out_c in range(3):  # output BGR channel out_c reads input RGB channel 2 - out_c
        kernel[0, 0, 0 if input_channels == 1 else 2 - out_c, out_c] = 1.0
    layer.set_weights([kernel, -np.array(VGGFACE2_BGR_MEAN, np.float32)])


def vggface_resnet50_base(inputs):
    """keras-vggface RESNET50(include_top=False) up to and including `avg_pool`, on a tensor of
    raw RGB (or grey) pixels. Returns (features, preprocess layer)."""
    pre = preprocess_layer()
    x = pre(inputs)
    x = layers.Conv2D(64, 7, strides=2, padding="same", use_bias=False, name=keras_name("conv1/7x7_s2"))(x)
    x = layers.BatchNormalization(name=keras_name("conv1/7x7_s2/bn"))(x)
    x = layers.ReLU(name="conv1_relu")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    for stage, blocks, filters in STAGES:
        for block in range(1, blocks + 1):
            first = block == 1
            x = _bottleneck(x, filters, stage, block, strides=(2 if stage > 2 else 1) if first else 1, project=first)
    # keras-vggface: AveragePooling2D((7, 7), name='avg_pool'), i.e. the whole 7x7 map at 224x224.
    # Smaller inputs pool over their whole (smaller) map, so the head sees 2048 features either way.
    pool = min(7, x.shape[1], x.shape[2])
    x = layers.AveragePooling2D(pool, name="avg_pool")(x)
    return x, pre


def vggface_classifier(input_shape=(224, 224, 3), num_classes=7, dropout=0.5, hidden=256,
                       name="vggface_resnet50") -> keras.Model:
    """003's Emojifier classifier: VGGFace2 ResNet-50 (no top) -> Flatten -> Dropout 0.5 ->
    Dense 256 ReLU -> Dense `num_classes` softmax.

    Args:
        input_shape: tuple. (H, W, C) raw pixels 0..255, C = 3 (RGB) or 1 (grey, repeated).
            Defaults to (224, 224, 3) as in 003. At least 32x32.
        num_classes: int. Defaults to 7.

    Example:
        >>> model = vggface_classifier((64, 64, 3))
        >>> model.output_shape
        (None, 7)
    """
    if len(input_shape) != 3 or input_shape[-1] not in (1, 3):
        raise ConfigError(f"input_shape must be (H, W, 1 or 3). Received: input_shape={input_shape}")
    if min(input_shape[:2]) < 32:
        raise ConfigError(f"vggface-resnet50 needs at least 32x32 input. Received: input_shape={input_shape}")
    inputs = keras.Input(input_shape, name="image")
    x, pre = vggface_resnet50_base(inputs)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(dropout, name="head_dropout")(x)
    x = layers.Dense(hidden, activation="relu", name="head_fc")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probs")(x)
    model = keras.Model(inputs, outputs, name=name)
    _set_preprocess_weights(pre, input_shape[-1])
    return model


def base_layer_names(model: keras.Model) -> list[str]:
    """Names (Keras 3 form) of the layers that hold keras-vggface weights."""
    return [layer.name for layer in model.layers if layer.weights and layer.name != PREPROCESS_LAYER
            and (layer.name.startswith("conv"))]


def set_trainable_blocks(model: keras.Model, stages=()) -> int:
    """Freezes the ResNet-50 base except the given stages (e.g. (5,) or (4, 5)); the head and
    the preprocessing stay as they are (head trainable, preprocessing frozen). Returns the number
    of trainable base layers."""
    prefixes = tuple(f"conv{s}_" for s in stages)
    n = 0
    for layer in model.layers:
        if layer.name == PREPROCESS_LAYER or not layer.weights:
            continue
        if layer.name.startswith("conv"):
            layer.trainable = bool(prefixes) and layer.name.startswith(prefixes)
            n += layer.trainable
    return n


def load_vggface_weights(model: keras.Model, path: str) -> int:
    """Loads keras-vggface's `rcmalli_vggface_tf_notop_resnet50.h5` (Keras 2 HDF5 weights:
    root attribute `layer_names`, one group per layer with a `weight_names` attribute) into
    `model` layer by layer by name. Layers of the file that the model lacks are an error;
    layers of the model that the file lacks (the head) keep their weights.

    Returns:
        The number of layers loaded.

    Raises:
        FileNotFoundError: no file at `path`.
        ValueError: not an HDF5 Keras weights file, or a weight's shape does not fit (the
            message names the layer).
    """
    import h5py

    if not os.path.isfile(path):
        raise FileNotFoundError(f"VGGFace weights file not found: {path}")
    try:
        f = h5py.File(path, "r")
    except OSError:
        raise ConfigError(f"not an HDF5 file: {path} (expected rcmalli_vggface_tf_notop_resnet50.h5)") from None
    with f:
        root = f["model_weights"] if "model_weights" in f and "layer_names" not in f.attrs else f
        if "layer_names" not in root.attrs:
            raise ConfigError(f"{path} is HDF5 but not a Keras 2 weights file (no 'layer_names' attribute)")
        by_name = {layer.name: layer for layer in model.layers}
        loaded = 0
        for raw in root.attrs["layer_names"]:
            name = raw.decode("utf8") if isinstance(raw, bytes) else str(raw)
            group = root[name]
            weight_names = [w.decode("utf8") if isinstance(w, bytes) else str(w) for w in group.attrs.get("weight_names", [])]
            if not weight_names:
                continue  # activations, pooling, add: no weights
            layer = by_name.get(keras_name(name))
            if layer is None:
                raise ConfigError(f"{path}: layer {name!r} has no counterpart in model {model.name!r}")
            values = [np.asarray(group[w]) for w in weight_names]
            expected = [tuple(w.shape) for w in layer.weights]
            if len(values) != len(expected):
                raise ConfigError(f"{path}: layer {name!r} has {len(values)} weights in the file, the model's has {len(expected)}")
            for w, v, e in zip(weight_names, values, expected):
                if tuple(v.shape) != e:
                    raise ConfigError(f"{path}: layer {name!r} weight {w!r} has shape {tuple(v.shape)}, the model expects {e}")
            layer.set_weights(values)
            loaded += 1
    if loaded == 0:
        raise ConfigError(f"{path}: no weights found for any layer")
    return loaded


def save_vggface_h5(model: keras.Model, path: str) -> None:
    """Writes the base's weights in keras-vggface's Keras 2 HDF5 layout (names with "/"),
    e.g. to make a test file or to share a fine-tuned base with keras-vggface users."""
    import h5py

    names = base_layer_names(model)
    by_name = {layer.name: layer for layer in model.layers}
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [h5_name(n).encode("utf8") for n in names]
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.2.4"
        for n in names:
            layer = by_name[n]
            g = f.create_group(h5_name(n))
            batch_norm = isinstance(layer, layers.BatchNormalization)
            kinds = ["gamma", "beta", "moving_mean", "moving_variance"] if batch_norm else ["kernel", "bias"]
            wnames = [f"{h5_name(n)}/{k}:0" for k in kinds[: len(layer.weights)]]
            g.attrs["weight_names"] = [w.encode("utf8") for w in wnames]
            for w, v in zip(wnames, layer.get_weights()):
                g.create_dataset(w, data=v)
