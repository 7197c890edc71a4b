"""Named classifier architectures: what each builds and what input it needs."""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import ConfigError


@dataclass(frozen=True)
class ArchSpec:
    name: str
    image_size: int
    channels: int
    description: str


ARCHS = {
    "emonet-s": ArchSpec("emonet-s", 48, 1, "on-device residual CNN, widths 32-64-128-256, ~1.2M params"),
    "emonet-xs": ArchSpec("emonet-xs", 48, 1, "on-device residual CNN, widths 16-32-64-128, ~0.3M params"),
    "emonet-s2": ArchSpec("emonet-s2", 48, 1, "EmoNet-S behind a 16-wide full-size conv and a stride-2 stem, ~1.2M params, a quarter of the cost"),
    "vgg-fer": ArchSpec("vgg-fer", 48, 1, "VGGNet variant of Khaireddin & Chen 2021 (73.28 % on FER-2013)"),
    "vggface-resnet50": ArchSpec("vggface-resnet50", 224, 3, "VGGFace2 ResNet-50 + 003's head, 224x224x3"),
}


def arch_spec(arch: str) -> ArchSpec:
    if arch not in ARCHS:
        raise ConfigError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHS)}")
    return ARCHS[arch]


def build_classifier(arch: str, num_classes: int = 7, image_size: int | None = None, **kw):
    """Builds a classifier by name. `image_size` overrides the architecture's default."""
    spec = arch_spec(arch)
    size = image_size or spec.image_size
    shape = (size, size, spec.channels)
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
