"""StyleGAN's presets: a network shape (`StyleGANConfig`) and the learning rate it trains at, by name."""

from __future__ import annotations

import dataclasses
import math

from core.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class StyleGANConfig:
    """The shape of the three networks; a run stores it as its options.json "config"."""

    resolution: int = 64
    z_dim: int = 256
    w_dim: int = 256
    mapping_layers: int = 4
    mapping_lr_mul: float = 0.01
    channel_base: int = 2048  # channels at resolution r: min(channel_base // r, channel_max)
    channel_max: int = 256
    d_channel_base: int | None = None  # discriminator; default channel_base

    def channels(self, res: int, base: int | None = None) -> int:
        return max(8, min((base or self.channel_base) // res, self.channel_max))

    @property
    def log2(self) -> int:
        return int(math.log2(self.resolution))

    @property
    def num_ws(self) -> int:
        return 2 * self.log2 - 2

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Preset:
    """A StyleGAN by name: its networks' shape, and the learning rate of both Adam optimizers
    (StyleGAN2's 0.002; the discriminator's gets the lazy-R1 correction in training)."""

    name: str
    network: StyleGANConfig
    lr: float = 0.002
    description: str = ""

    @property
    def image_size(self) -> int:
        return self.network.resolution


PRESETS = {
    "tiny": Preset("tiny", StyleGANConfig(resolution=16, z_dim=32, w_dim=32, mapping_layers=2, channel_base=256, channel_max=32),
                   description="16x16, for tests"),
    "small32": Preset("small32", StyleGANConfig(resolution=32, z_dim=128, w_dim=128, mapping_layers=4, channel_base=2048, channel_max=128)),
    "lite64": Preset("lite64", StyleGANConfig(resolution=64, z_dim=128, w_dim=128, mapping_layers=4, channel_base=1024, channel_max=128)),
    "small64": Preset("small64", StyleGANConfig(resolution=64, z_dim=256, w_dim=256, mapping_layers=4, channel_base=2048, channel_max=256)),
    "base64": Preset("base64", StyleGANConfig(resolution=64, z_dim=512, w_dim=512, mapping_layers=8, channel_base=8192, channel_max=512)),
    "small128": Preset("small128", StyleGANConfig(resolution=128, z_dim=256, w_dim=256, mapping_layers=4, channel_base=4096,
                                                  channel_max=256)),
}
PRESET_FOR_SIZE = {16: "tiny", 32: "small32", 64: "small64", 128: "small128"}  # the preset when only --image-size is given


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise ConfigError(f"unknown StyleGAN preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]
