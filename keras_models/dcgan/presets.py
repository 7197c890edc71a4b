"""Named DCGAN configurations: networks, latent size, optimizer settings."""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import ConfigError
from keras_models.dcgan import networks


@dataclass(frozen=True)
class Preset:
    name: str
    nz: int
    lr: float
    beta_1: float
    image_size: int
    width: int  # ngf / keras-io base width
    d_width: int
    description: str

    def build(self, image_size: int | None = None, width: int | None = None, d_width: int | None = None, num_classes: int = 0):
        """(generator, discriminator) for this preset; width overrides are for tests and tiny models.
        `num_classes` > 0 builds the conditional pair (generator input nz + num_classes, AC-GAN logits)."""
        size = image_size or self.image_size
        g_w, d_w = width or self.width, d_width or self.d_width
        if self.name == "pytorch-tutorial":
            return (networks.tutorial_generator(self.nz, size, g_w, num_classes=num_classes),
                    networks.tutorial_discriminator(size, d_w, num_classes=num_classes))
        return (networks.kerasio_generator(self.nz, size, g_w, num_classes=num_classes),
                networks.kerasio_discriminator(size, d_w, num_classes=num_classes))


PRESETS = {
    "pytorch-tutorial": Preset("pytorch-tutorial", nz=100, lr=2e-4, beta_1=0.5, image_size=64, width=64, d_width=64,
                                    description="PyTorch DCGAN tutorial (reference 000): nz 100, Adam 2e-4 beta1 0.5"),
    "keras-io": Preset("keras-io", nz=128, lr=1e-4, beta_1=0.5, image_size=64, width=128, d_width=64,
                            description="keras-io DCGAN example: latent 128, Adam 1e-4"),
}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise ConfigError(f"unknown DCGAN preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]
