"""Foster-style variational autoencoder (Generative Deep Learning, 1st and 2nd editions).

Encoder input: float RGB 0..255 (rescaled inside); outputs [z_mean, z_log_var].
Decoder input: z; output: RGB 0..1 (sigmoid). See `keras_models.vae.model`.
"""

from keras_models.vae.model import Sampling, VAETrainer, build_decoder, build_encoder, build_vae
from keras_models.vae.presets import PRESETS, Preset, get_preset

__all__ = ["PRESETS", "Sampling", "Preset", "VAETrainer", "build_decoder", "build_encoder", "build_vae", "get_preset"]
