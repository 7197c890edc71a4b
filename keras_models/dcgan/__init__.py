"""DCGAN emote generator: functional generator / discriminator, presets, the training wrapper,
DiffAugment, and the id -> noise function behind claimable emotes."""

from keras_models.dcgan.augment import POLICIES, diff_augment, parse_policy
from keras_models.dcgan.gan import DCGAN
from keras_models.dcgan.networks import kerasio_discriminator, kerasio_generator, tutorial_discriminator, tutorial_generator
from keras_models.dcgan.noise import MAX_ID, noise_for_id, noise_for_ids
from keras_models.dcgan.presets import PRESETS, DCGANPreset, get_preset

__all__ = ["DCGAN", "DCGANPreset", "MAX_ID", "POLICIES", "PRESETS", "diff_augment", "get_preset", "kerasio_discriminator",
           "kerasio_generator", "noise_for_id", "noise_for_ids", "parse_policy", "tutorial_discriminator", "tutorial_generator"]
