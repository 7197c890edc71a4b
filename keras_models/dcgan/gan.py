"""The DCGAN training wrapper (keras-io `dcgan_overriding_train_step` style).

`DCGAN(discriminator, generator, latent_dim)` is a subclassed `keras.Model` used only for
training; the generator and discriminator stay functional models that can be saved and
exported on their own. One step follows the PyTorch tutorial: the discriminator learns from a
real and a fake batch, then the generator learns from the discriminator's new opinion of the
same fakes. Optional: DiffAugment before the discriminator, one-sided label smoothing, label
noise (flipped discriminator targets), and an EMA copy of the generator.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from core.errors import ConfigError
from keras_models.common.augment import diff_augment, parse_policy
from keras_models.common.replicas import replica_rows


@keras.saving.register_keras_serializable(package="emotekit")
class DCGAN(keras.Model):
    """Trains `generator` against `discriminator`.

    Args:
        discriminator: keras.Model. Image in [-1, 1] -> probability real, shape (batch, 1).
        generator: keras.Model. Noise (batch, latent_dim) -> image in [-1, 1].
        latent_dim: int. The generator's noise size.
        augment: str. DiffAugment policy ("color,translation,cutout") or "" for none.
        label_smoothing: float. Real targets become 1 - label_smoothing (one-sided).
        label_noise: float. Probability of flipping each discriminator target.
        ema_decay: float. When > 0, keeps `ema_generator`, an exponential moving average of the
            generator's weights (sharper, steadier samples). Defaults to 0 (off).
        seed: int. Seed of the noise and augmentation generator.

    Example:
        >>> g, d = get_preset("pytorch-tutorial").build(32)
        >>> gan = DCGAN(d, g, latent_dim=100)
        >>> gan.compile(keras.optimizers.Adam(2e-4, 0.5), keras.optimizers.Adam(2e-4, 0.5),
        ...             keras.losses.BinaryCrossentropy())
        >>> gan.fit(dataset_of_images_in_minus1_1, epochs=1)
    """

    def __init__(self, discriminator, generator, latent_dim, augment="", label_smoothing=0.0, label_noise=0.0,
                 ema_decay=0.0, seed=0, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= label_smoothing < 0.5:
            raise ConfigError(f"label_smoothing must be in [0, 0.5). Received: label_smoothing={label_smoothing}")
        if not 0.0 <= label_noise < 0.5:
            raise ConfigError(f"label_noise must be in [0, 0.5). Received: label_noise={label_noise}")
        if not 0.0 <= ema_decay < 1.0:
            raise ConfigError(f"ema_decay must be in [0, 1). Received: ema_decay={ema_decay}")
        self.discriminator = discriminator
        self.generator = generator
        self.latent_dim = int(latent_dim)
        self.augment = ",".join(parse_policy(augment))
        self.label_smoothing = float(label_smoothing)
        self.label_noise = float(label_noise)
        self.ema_decay = float(ema_decay)
        self.seed = int(seed)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.ema_generator = None
        if self.ema_decay > 0:
            self.ema_generator = keras.models.clone_model(generator)
            self.ema_generator.set_weights(generator.get_weights())
            self.ema_generator.trainable = False
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.d_real_tracker = keras.metrics.Mean(name="d_real")
        self.d_fake_tracker = keras.metrics.Mean(name="d_fake")
        self.built = True  # the parts are built functional models

    def compile(self, d_optimizer, g_optimizer, loss_fn, **kwargs):
        if self.dtype_policy.name == "mixed_float16":  # fp16 needs dynamic loss scaling (Keras does it for compile's optimizer)
            d_optimizer, g_optimizer = (o if isinstance(o, keras.optimizers.LossScaleOptimizer) else keras.optimizers.LossScaleOptimizer(o)
                                        for o in (d_optimizer, g_optimizer))
        # `optimizer` is the generator's, so Keras' default (an unused RMSprop) never enters checkpoints.
        super().compile(optimizer=g_optimizer, **kwargs)
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        self.loss_fn = loss_fn
        # Build the optimizers now so BackupAndRestore can load their state before the first step.
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.g_optimizer.build(self.generator.trainable_variables)

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker, self.d_real_tracker, self.d_fake_tracker]

    def call(self, noise, training=False):
        return self.generator(noise, training=training)

    def _aug(self, x, seed):
        return diff_augment(x, self.augment, seed) if self.augment else x

    def _targets(self, shape, real: bool):
        y = tf.ones(shape) * (1.0 - self.label_smoothing) if real else tf.zeros(shape)
        if self.label_noise > 0:
            flip = keras.random.uniform(shape, seed=self.seed_generator) < self.label_noise
            y = tf.where(flip, 1.0 - y, y)
        return y

    def _loss(self, y, p):
        """(loss to differentiate, loss to report) on one replica. tf.distribute sums the replicas'
        gradients, so each differentiates its share of the global-batch mean: a Keras Loss with a
        mean reduction already divides by the replica count (Keras' scale_loss_for_distribution),
        a plain function does not. Without a strategy both are the batch mean."""
        n = tf.distribute.get_strategy().num_replicas_in_sync
        loss = tf.cast(self.loss_fn(y, p), tf.float32)
        mean_reductions = ("sum_over_batch_size", "mean", "mean_with_sample_weight")
        if isinstance(self.loss_fn, keras.losses.Loss) and self.loss_fn.reduction in mean_reductions:
            return loss, loss * n
        return loss / n, loss

    def train_step(self, real_images):
        if isinstance(real_images, tuple):
            real_images = real_images[0]
        batch = tf.shape(real_images)[0]
        noise = replica_rows(lambda n: keras.random.normal((n, self.latent_dim), seed=self.seed_generator), batch)
        seeds = tf.random.experimental.stateless_split(tf.cast(self.seed_generator.next(), tf.int64), 3)
        with tf.GradientTape() as g_tape:
            fake = self.generator(noise, training=True)
            with g_tape.stop_recording():
                with tf.GradientTape() as d_tape:
                    p_real = self.discriminator(self._aug(real_images, seeds[0]), training=True)
                    p_fake = self.discriminator(self._aug(tf.stop_gradient(fake), seeds[1]), training=True)
                    (d_real, d_real_log), (d_fake, d_fake_log) = (self._loss(self._targets(tf.shape(p_real), True), p_real),
                                                                  self._loss(self._targets(tf.shape(p_fake), False), p_fake))
                    d_loss = d_real_log + d_fake_log
                    d_scaled = self.d_optimizer.scale_loss(d_real + d_fake)
                d_vars = self.discriminator.trainable_variables
                self.d_optimizer.apply_gradients(zip(d_tape.gradient(d_scaled, d_vars), d_vars))
            p_gen = self.discriminator(self._aug(fake, seeds[2]), training=True)
            g_scaled, g_loss = self._loss(tf.ones_like(p_gen), p_gen)
            g_scaled = self.g_optimizer.scale_loss(g_scaled)
        g_vars = self.generator.trainable_variables
        self.g_optimizer.apply_gradients(zip(g_tape.gradient(g_scaled, g_vars), g_vars))
        self._update_ema()
        return self._track(d_loss, g_loss, p_real, p_fake)

    def _update_ema(self):
        if self.ema_generator is not None:
            for e, w in zip(self.ema_generator.weights, self.generator.weights):
                e.assign(self.ema_decay * e + (1.0 - self.ema_decay) * w)

    def _track(self, d_loss, g_loss, p_real, p_fake):
        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        self.d_real_tracker.update_state(tf.reduce_mean(p_real))
        self.d_fake_tracker.update_state(tf.reduce_mean(p_fake))
        return {m.name: m.result() for m in self.metrics}

    def get_config(self):
        config = super().get_config()
        config.update({
            "discriminator": keras.saving.serialize_keras_object(self.discriminator),
            "generator": keras.saving.serialize_keras_object(self.generator),
            "latent_dim": self.latent_dim, "augment": self.augment, "label_smoothing": self.label_smoothing,
            "label_noise": self.label_noise, "ema_decay": self.ema_decay, "seed": self.seed,
        })
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["discriminator"] = keras.saving.deserialize_keras_object(config["discriminator"])
        config["generator"] = keras.saving.deserialize_keras_object(config["generator"])
        return cls(**config)


@keras.saving.register_keras_serializable(package="emotekit")
class ConditionalDCGAN(DCGAN):
    """An emote generator conditioned on a class (the expression), trained as an AC-GAN.

    The generator takes the noise and a one-hot class side by side (nz + num_classes values); the
    discriminator returns (p_real, class_logits). Each batch is (images, targets), targets being
    each real image's class weights (rows summing to 1: a one-hot label, or an emoji's weights over
    the expressions). The fakes of a step are asked for the classes of the real batch (their
    argmax), so real and fake batches hold the same classes. The discriminator learns the classes
    from the real images only; the generator learns to make fakes of the class it was asked for.

    Args:
        num_classes: int. Number of classes (7 for the FER expressions).
        class_weight: float. Weight of the class losses beside the real/fake one. Defaults to 1.
        Others as DCGAN.
    """

    def __init__(self, discriminator, generator, latent_dim, num_classes, class_weight=1.0, **kwargs):
        super().__init__(discriminator, generator, latent_dim, **kwargs)
        self.num_classes = int(num_classes)
        if self.num_classes < 2:
            raise ConfigError(f"num_classes must be >= 2. Received: num_classes={num_classes}")
        if generator.input_shape[-1] != self.latent_dim + self.num_classes:
            raise ConfigError(f"the generator takes {generator.input_shape[-1]} values; a conditional one takes latent_dim + num_classes = "
                              f"{self.latent_dim + self.num_classes}")
        if not class_weight >= 0:
            raise ConfigError(f"class_weight must be >= 0. Received: class_weight={class_weight}")
        self.class_weight = float(class_weight)
        self.d_acc_tracker = keras.metrics.Mean(name="d_class_acc")
        self.g_acc_tracker = keras.metrics.Mean(name="g_class_acc")

    @property
    def metrics(self):
        return super().metrics + [self.d_acc_tracker, self.g_acc_tracker]

    def _class_loss(self, targets, logits):
        """(loss to differentiate, loss to report): the batch-mean cross-entropy, scaled as `_loss`
        scales a plain function's."""
        n = tf.distribute.get_strategy().num_replicas_in_sync
        ce = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(tf.cast(targets, tf.float32), tf.cast(logits, tf.float32)))
        return ce / n, ce

    def train_step(self, data):
        real_images, targets = data[0], data[1]  # (images, targets[, sample weights])
        batch = tf.shape(real_images)[0]
        noise = replica_rows(lambda n: keras.random.normal((n, self.latent_dim), seed=self.seed_generator), batch)
        asked = tf.one_hot(tf.argmax(targets, axis=-1), self.num_classes, dtype=noise.dtype)
        z = tf.concat([noise, asked], axis=-1)
        seeds = tf.random.experimental.stateless_split(tf.cast(self.seed_generator.next(), tf.int64), 3)
        with tf.GradientTape() as g_tape:
            fake = self.generator(z, training=True)
            with g_tape.stop_recording():
                with tf.GradientTape() as d_tape:
                    p_real, c_real = self.discriminator(self._aug(real_images, seeds[0]), training=True)
                    p_fake, _ = self.discriminator(self._aug(tf.stop_gradient(fake), seeds[1]), training=True)
                    (d_real, d_real_log), (d_fake, d_fake_log) = (self._loss(self._targets(tf.shape(p_real), True), p_real),
                                                                  self._loss(self._targets(tf.shape(p_fake), False), p_fake))
                    d_cls, d_cls_log = self._class_loss(targets, c_real)
                    d_loss = d_real_log + d_fake_log + self.class_weight * d_cls_log
                    d_scaled = self.d_optimizer.scale_loss(d_real + d_fake + self.class_weight * d_cls)
                d_vars = self.discriminator.trainable_variables
                self.d_optimizer.apply_gradients(zip(d_tape.gradient(d_scaled, d_vars), d_vars))
            p_gen, c_gen = self.discriminator(self._aug(fake, seeds[2]), training=True)
            g_adv, g_adv_log = self._loss(tf.ones_like(p_gen), p_gen)
            g_cls, g_cls_log = self._class_loss(asked, c_gen)
            g_loss = g_adv_log + self.class_weight * g_cls_log
            g_scaled = self.g_optimizer.scale_loss(g_adv + self.class_weight * g_cls)
        g_vars = self.generator.trainable_variables
        self.g_optimizer.apply_gradients(zip(g_tape.gradient(g_scaled, g_vars), g_vars))
        self._update_ema()
        self.d_acc_tracker.update_state(tf.reduce_mean(tf.cast(tf.argmax(c_real, -1) == tf.argmax(targets, -1), tf.float32)))
        self.g_acc_tracker.update_state(tf.reduce_mean(tf.cast(tf.argmax(c_gen, -1) == tf.argmax(asked, -1), tf.float32)))
        return self._track(d_loss, g_loss, p_real, p_fake)

    def get_config(self):
        config = super().get_config()
        config.update({"num_classes": self.num_classes, "class_weight": self.class_weight})
        return config
