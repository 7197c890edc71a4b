"""Named VAE configurations (Foster, *Generative Deep Learning*, 1st and 2nd editions)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from core.errors import ConfigError


@dataclass(frozen=True)
class Preset:
    """Everything that shapes a VAE.

    The encoder is `len(encoder_filters)` Conv2D layers of stride 2; the decoder mirrors it:
    Dense -> Reshape -> Conv2DTranspose(stride 2) per `decoder_filters`, then an output
    Conv2DTranspose to `channels` with a sigmoid and stride `output_stride`.
    """

    name: str
    image_size: int
    encoder_filters: tuple[int, ...]
    decoder_filters: tuple[int, ...]
    output_stride: int  # 2: the output layer upsamples too (GDL1); 1: it does not (GDL2)
    z_dim: int
    reconstruction_weight: float  # loss = weight * per-pixel MSE + KL
    lr: float
    channels: int = 3
    kernel_size: int = 3
    dropout: float = 0.0
    dense_bn: bool = False  # BatchNorm + LeakyReLU after the decoder's Dense (GDL2)
    description: str = ""

    @property
    def downsamples(self) -> int:
        return len(self.encoder_filters)

    def check_size(self, size: int) -> None:
        """Raises ValueError unless the encoder/decoder can round-trip `size` x `size`."""
        step = 2 ** self.downsamples
        if size < step or size % step:
            raise ConfigError(f"preset {self.name} needs an image size that is a multiple of {step} "
                             f"(it halves the size {self.downsamples} times); got {size}")

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS: dict[str, Preset] = {
    # GDL 1st ed., CelebA faces: 128x128x3, Conv 32/64/64/64 k3 s2 + BN + LeakyReLU + Dropout 0.25,
    # z = 200, decoder mirrored (ConvT 64/64/32 then 3 with a sigmoid), loss 10000 * MSE + KL, Adam 5e-4.
    "gdl1-128": Preset("gdl1-128", 128, (32, 64, 64, 64), (64, 64, 32), 2, 200, 10000.0, 5e-4,
                          dropout=0.25, description="Foster GDL1 CelebA VAE, 128x128, z=200, 10000*MSE+KL"),
    # GDL 2nd ed., CelebA faces: 64x64x3, five Conv 64 s2 + BN + LeakyReLU, z = 200; decoder
    # Dense + BN + LeakyReLU, five ConvT 64 s2 + BN + LeakyReLU, ConvT 3 s1 sigmoid; 2000 * MSE + KL.
    "gdl2-64": Preset("gdl2-64", 64, (64,) * 5, (64,) * 5, 1, 200, 2000.0, 5e-4, dense_bn=True,
                         description="Foster GDL2 CelebA VAE, 64x64, z=200, 2000*MSE+KL"),
    # The default of `python -m train vae`: GDL1's layout at 64x64 without dropout, a smaller z
    # for ~100 emoji and a faster learning rate, so a 2-core CPU gives recognisable faces in minutes.
    "quick-64": Preset("quick-64", 64, (32, 64, 64, 64), (64, 64, 32), 2, 32, 2000.0, 1e-3,
                          description="GDL1 layout at 64x64, z=32, no dropout: minutes on a CPU"),
    # The morph panel's: GDL1's widening encoder (32/64/128/256, to 4x4x256 instead of GDL2's 2x2x64, the
    # bottleneck that blurred every face into the same one) and a mirrored decoder, z = 200, 20000 * MSE + KL
    # (GDL2's 2000 let the KL term win: one blurred face per hair colour). Less compute than gdl2-64.
    "morph-64": Preset("morph-64", 64, (32, 64, 128, 256), (128, 64, 32), 2, 200, 20000.0, 1e-3, dense_bn=True,
                          description="characters + emoji morph, 64x64, z=200, 4x4x256 bottleneck, 20000*MSE+KL"),
    # For tests and smoke runs.
    "tiny-32": Preset("tiny-32", 32, (16, 16), (16,), 2, 8, 1000.0, 1e-3, description="test-sized"),
}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise ConfigError(f"unknown VAE preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]
