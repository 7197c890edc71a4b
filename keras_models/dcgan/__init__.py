"""DCGAN emote generator: functional generator / discriminator, presets and the training wrapper.
Its DiffAugment and the id -> noise function behind claimable emotes live in keras_models.common
(StyleGAN uses them too); the noise is re-exported here, where emote ids are read."""

from keras_models.common.noise import MAX_ID, noise_for_id, noise_for_ids
from keras_models.dcgan.gan import DCGAN, ConditionalDCGAN
from keras_models.dcgan.networks import kerasio_discriminator, kerasio_generator, tutorial_discriminator, tutorial_generator
from keras_models.dcgan.presets import PRESETS, Preset, get_preset

__all__ = ["DCGAN", "ConditionalDCGAN", "Preset", "MAX_ID", "PRESETS", "get_preset", "kerasio_discriminator",
           "kerasio_generator", "noise_for_id", "noise_for_ids", "tutorial_discriminator", "tutorial_generator"]
