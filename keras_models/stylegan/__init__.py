"""StyleGAN2-style generator: equalised-lr layers, modulated / demodulated convolutions,
mapping / synthesis / discriminator networks, the training wrapper, and attribute directions
(auto-labelling image statistics, InterFaceGAN boundaries, GANSpace PCA)."""

from keras_models.stylegan.gan import StyleGAN
from keras_models.stylegan.layers import (
    ConstantInput,
    EqualConv2D,
    EqualDense,
    MinibatchStd,
    ModulatedConv2D,
    PixelNorm,
    SelectW,
    Truncation,
)
from keras_models.stylegan.networks import (
    build,
    discriminator_network,
    generator,
    get_config,
    mapping_network,
    synthesis_from_w,
    synthesis_network,
)
from keras_models.stylegan.presets import PRESET_FOR_SIZE, PRESETS, Preset, StyleGANConfig, get_preset

__all__ = ["PRESETS", "PRESET_FOR_SIZE", "ConstantInput", "EqualConv2D", "EqualDense", "MinibatchStd", "ModulatedConv2D", "PixelNorm",
           "Preset", "SelectW", "StyleGAN", "StyleGANConfig", "Truncation", "build", "discriminator_network", "generator", "get_config",
           "get_preset", "mapping_network", "synthesis_from_w", "synthesis_network"]
