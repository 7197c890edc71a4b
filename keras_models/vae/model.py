"""Foster-style VAE in Keras 3: functional encoder and decoder, a Sampling layer, a trainer.

Value ranges (what exporters and tools must feed):

- encoder input: float32 RGB **0..255**, shape (H, W, 3); a Rescaling(1/255) layer inside the
  encoder maps it to 0..1, so the data pipeline's batches go in as they are;
- encoder outputs: ``[z_mean, z_log_var]``, each (z_dim,); no sampling inside (sampling in an
  exported graph becomes a Flex op), the trainer samples;
- decoder input: z, (z_dim,); decoder output: float32 RGB **0..1** (sigmoid).
"""

from __future__ import annotations

import keras
from keras import layers, ops

from keras_models.common.replicas import replica_rows
from keras_models.vae.presets import Preset, get_preset

PACKAGE = "emotekit.vae"


@keras.saving.register_keras_serializable(package=PACKAGE)
class Sampling(layers.Layer):
    """z = z_mean + exp(z_log_var / 2) * eps, eps ~ N(0, I) (the reparameterisation trick)."""

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        eps = replica_rows(lambda n: keras.random.normal((n, ops.shape(z_mean)[1]), seed=self.seed_generator), ops.shape(z_mean)[0])
        return z_mean + ops.exp(0.5 * z_log_var) * eps

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


def build_encoder(preset: Preset | str, image_size: int | None = None, name: str = "encoder") -> keras.Model:
    """Functional encoder: image (0..255) -> [z_mean, z_log_var]."""
    p = get_preset(preset) if isinstance(preset, str) else preset
    size = image_size or p.image_size
    p.check_size(size)
    inputs = keras.Input((size, size, p.channels), name="image")
    x = layers.Rescaling(1.0 / 255, name="to_unit")(inputs)
    for i, f in enumerate(p.encoder_filters):
        x = layers.Conv2D(f, p.kernel_size, strides=2, padding="same", name=f"conv_{i}")(x)
        x = layers.BatchNormalization(name=f"bn_{i}")(x)
        x = layers.LeakyReLU(0.3, name=f"lrelu_{i}")(x)
        if p.dropout:
            x = layers.Dropout(p.dropout, name=f"dropout_{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    z_mean = layers.Dense(p.z_dim, name="z_mean")(x)
    z_log_var = layers.Dense(p.z_dim, name="z_log_var")(x)
    return keras.Model(inputs, [z_mean, z_log_var], name=name)


def build_decoder(preset: Preset | str, image_size: int | None = None, name: str = "decoder") -> keras.Model:
    """Functional decoder: z -> image (0..1, sigmoid), the encoder mirrored."""
    p = get_preset(preset) if isinstance(preset, str) else preset
    size = image_size or p.image_size
    p.check_size(size)
    ups = len(p.decoder_filters) + (1 if p.output_stride == 2 else 0)
    if ups != p.downsamples:
        raise ValueError(f"preset {p.name}: decoder upsamples {ups} times, encoder downsamples {p.downsamples}")
    start = size // 2**ups
    first = p.encoder_filters[-1]
    z = keras.Input((p.z_dim,), name="z")
    x = layers.Dense(start * start * first, name="dense")(z)
    if p.dense_bn:
        x = layers.BatchNormalization(name="dense_bn")(x)
        x = layers.LeakyReLU(0.3, name="dense_lrelu")(x)
    x = layers.Reshape((start, start, first), name="reshape")(x)
    for i, f in enumerate(p.decoder_filters):
        x = layers.Conv2DTranspose(f, p.kernel_size, strides=2, padding="same", name=f"convt_{i}")(x)
        x = layers.BatchNormalization(name=f"bn_{i}")(x)
        x = layers.LeakyReLU(0.3, name=f"lrelu_{i}")(x)
        if p.dropout:
            x = layers.Dropout(p.dropout, name=f"dropout_{i}")(x)
    out = layers.Conv2DTranspose(p.channels, p.kernel_size, strides=p.output_stride, padding="same",
                                 activation="sigmoid", name="image")(x)
    return keras.Model(z, out, name=name)


@keras.saving.register_keras_serializable(package=PACKAGE)
class VAETrainer(keras.Model):
    """Trains an encoder/decoder pair with loss = w * MSE(x/255, x_hat) + beta * KL.

    `call(x)` reconstructs deterministically from z_mean. Metrics: total_loss,
    reconstruction_loss, kl_loss (per example, averaged over the epoch).
    """

    def __init__(self, encoder, decoder, reconstruction_weight=2000.0, beta=1.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.reconstruction_weight = float(reconstruction_weight)
        self.beta = float(beta)
        self.seed = seed
        self.sampling = Sampling(seed=seed, name="sampling")
        self.total_loss_tracker = keras.metrics.Mean(name="total_loss")
        self.reconstruction_loss_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")
        self.built = True  # encoder and decoder are built functional models

    @property
    def metrics(self):
        return [self.total_loss_tracker, self.reconstruction_loss_tracker, self.kl_loss_tracker]

    def call(self, inputs, training=False):
        z_mean, _ = self.encoder(inputs, training=training)
        return self.decoder(z_mean, training=training)

    def losses_for(self, x, training=False):
        """(total, reconstruction, kl, reconstruction image) for a batch of 0..255 images."""
        z_mean, z_log_var = self.encoder(x, training=training)
        z = self.sampling([z_mean, z_log_var])
        x_hat = self.decoder(z, training=training)
        target = ops.cast(x, x_hat.dtype) / 255.0
        recon = self.reconstruction_weight * ops.mean(ops.square(target - x_hat), axis=(1, 2, 3))
        kl = -0.5 * ops.sum(1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=1)
        recon, kl = ops.mean(recon), ops.mean(kl)
        return recon + self.beta * kl, recon, kl, x_hat

    def _update(self, total, recon, kl):
        self.total_loss_tracker.update_state(total)
        self.reconstruction_loss_tracker.update_state(recon)
        self.kl_loss_tracker.update_state(kl)
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        import tensorflow as tf  # the project runs Keras on the TensorFlow backend

        x = data[0] if isinstance(data, tuple) else data
        with tf.GradientTape() as tape:
            total, recon, kl, _ = self.losses_for(x, training=True)
            # tf.distribute sums the replicas' gradients: each replica differentiates its share of
            # the global-batch mean (the mean itself without a strategy); scale_loss is fp16's.
            scaled = self.optimizer.scale_loss(tf.cast(total, "float32") / tf.distribute.get_strategy().num_replicas_in_sync)
        variables = self.trainable_variables
        grads = tape.gradient(scaled, variables)
        self.optimizer.apply_gradients(zip(grads, variables))
        return self._update(total, recon, kl)

    def test_step(self, data):
        x = data[0] if isinstance(data, tuple) else data
        total, recon, kl, _ = self.losses_for(x, training=False)
        return self._update(total, recon, kl)

    def get_config(self):
        return {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            "reconstruction_weight": self.reconstruction_weight,
            "beta": self.beta,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        config["decoder"] = keras.saving.deserialize_keras_object(config["decoder"])
        return cls(**config)


def build_vae(preset: Preset | str, image_size: int | None = None, beta: float = 1.0, seed=None) -> VAETrainer:
    """Encoder + decoder + trainer for a preset (not compiled)."""
    p = get_preset(preset) if isinstance(preset, str) else preset
    return VAETrainer(build_encoder(p, image_size), build_decoder(p, image_size),
                      reconstruction_weight=p.reconstruction_weight, beta=beta, seed=seed, name=f"vae_{p.name.replace('-', '_')}")
