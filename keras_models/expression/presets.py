"""The classifiers' presets, one per --arch: what each builds, the input it needs and the learning
rate its recipe trains it at."""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import ConfigError


@dataclass(frozen=True)
class Preset:
    """A classifier by name: its input (`image_size` x `image_size` x `channels`) and the peak
    learning rate of the AdamW schedule it trains with."""

    name: str
    image_size: int
    channels: int
    lr: float
    description: str


PRESETS = {
    "emonet-s": Preset("emonet-s", 48, 1, 2e-3, "on-device residual CNN, widths 32-64-128-256, ~1.2M params"),
    "emonet-xs": Preset("emonet-xs", 48, 1, 3e-3, "on-device residual CNN, widths 16-32-64-128, ~0.3M params"),
    "emonet-s2": Preset("emonet-s2", 48, 1, 2e-3,
                        "EmoNet-S behind a 16-wide full-size conv and a stride-2 stem, ~1.2M params, a quarter of the cost"),
    "vgg-fer": Preset("vgg-fer", 48, 1, 1e-3, "VGGNet variant of Khaireddin & Chen 2021 (73.28 % on FER-2013)"),
    "vggface-resnet50": Preset("vggface-resnet50", 224, 3, 1e-4, "VGGFace2 ResNet-50 + 003's head, 224x224x3"),
}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise ConfigError(f"unknown architecture {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]


def build_classifier(arch: str, num_classes: int = 7, image_size: int | None = None, **kw):
    """Builds a classifier by name. `image_size` overrides the architecture's default."""
    preset = get_preset(arch)
    size = image_size or preset.image_size
    shape = (size, size, preset.channels)
    if arch == "emonet-s":
        from keras_models.expression.emonet import emonet

        return emonet(shape, num_classes, widths=(32, 64, 128, 256), name="emonet_s", **kw)
    if arch == "emonet-xs":
        from keras_models.expression.emonet import emonet

        return emonet(shape, num_classes, widths=(16, 32, 64, 128), name="emonet_xs", **kw)
    if arch == "emonet-s2":
        from keras_models.expression.emonet import emonet

        return emonet(shape, num_classes, widths=(32, 64, 128, 256), stem_strides=2, stem_pre=16, name="emonet_s2", **kw)
    if arch == "vgg-fer":
        from keras_models.expression.vgg_fer import vgg_fer

        return vgg_fer(shape, num_classes, **kw)
    from keras_models.expression.vggface import vggface_classifier

    return vggface_classifier(shape, num_classes, **kw)
