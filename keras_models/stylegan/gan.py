"""The StyleGAN2 training wrapper: non-saturating logistic loss, lazy R1, style mixing,
w_avg tracking, an EMA generator (with StyleGAN2-ADA's EMA ramp-up) and DiffAugment.

`StyleGAN(mapping, synthesis, discriminator)` is a subclassed `keras.Model` for training only;
the three networks (and `ema_mapping`, `ema_synthesis`) stay functional models that are saved
and exported on their own.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from keras_models.common.augment import diff_augment, parse_policy


@keras.saving.register_keras_serializable(package="emotekit")
class StyleGAN(keras.Model):
    """Trains mapping + synthesis against discriminator.

    Args:
        mapping, synthesis, discriminator: functional models from `networks.build`.
        augment: DiffAugment policy ("color,translation,cutout") or "" for none.
        r1_gamma: R1 penalty weight on real images (gamma / 2 * |grad D(x)|^2).
        r1_interval: lazy regularisation: the R1 step runs every this many steps (scaled by it).
        style_mixing: probability that a batch uses two ws with a random crossover layer.
        w_avg_beta: decay of the running mean of w (the truncation centre).
        ema_kimg, ema_rampup: EMA half-life in thousands of images, ramped up as
            min(ema_kimg * 1000, images_seen * ema_rampup) (StyleGAN2-ADA); ema_kimg 0 = no EMA.
        seed: seed of the latents, the mixing and the augmentation.
    """

    def __init__(self, mapping, synthesis, discriminator, augment="", r1_gamma=0.5, r1_interval=16, style_mixing=0.9,
                 w_avg_beta=0.995, ema_kimg=2.0, ema_rampup=0.05, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.mapping, self.synthesis, self.discriminator = mapping, synthesis, discriminator
        self.augment = ",".join(parse_policy(augment))
        self.r1_gamma, self.r1_interval = float(r1_gamma), int(r1_interval)
        self.style_mixing, self.w_avg_beta = float(style_mixing), float(w_avg_beta)
        self.ema_kimg, self.ema_rampup, self.seed = float(ema_kimg), float(ema_rampup), int(seed)
        self.z_dim = int(mapping.input_shape[-1])
        self.num_ws = int(synthesis.input_shape[1])
        self.seed_generator = keras.random.SeedGenerator(seed)
        # Keras variables of the model: saved with its weights, so a checkpoint holds them.
        self.step_counter = keras.Variable(0, dtype="int64", trainable=False, name="step_counter")
        self.images_seen = keras.Variable(0.0, dtype="float32", trainable=False, name="images_seen")
        self.ema_mapping = self.ema_synthesis = None
        if self.ema_kimg > 0:
            self.ema_mapping = keras.models.clone_model(mapping)
            self.ema_synthesis = keras.models.clone_model(synthesis)
            self.ema_mapping.set_weights(mapping.get_weights())
            self.ema_synthesis.set_weights(synthesis.get_weights())
            self.ema_mapping.trainable = self.ema_synthesis.trainable = False
        self.trackers = {n: keras.metrics.Mean(name=n) for n in ("d_loss", "g_loss", "r1", "d_real", "d_fake")}
        self.built = True

    @property
    def w_avg(self):
        return self.mapping.get_layer("truncation").w_avg

    def compile(self, d_optimizer, g_optimizer, **kwargs):
        super().compile(optimizer=g_optimizer, **kwargs)
        self.d_optimizer, self.g_optimizer = d_optimizer, g_optimizer
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.g_optimizer.build(self.g_vars)

    @property
    def g_vars(self):
        return self.mapping.trainable_variables + self.synthesis.trainable_variables

    @property
    def metrics(self):
        return list(self.trackers.values())

    def call(self, z, training=False):
        ws = tf.repeat(self.mapping(z, training=training)[:, None], self.num_ws, axis=1)
        return self.synthesis(ws, training=training)

    def _aug(self, x, seed):
        return diff_augment(x, self.augment, seed) if self.augment else x

    def mixed_ws(self, batch, training=True):
        """ws (B, num_ws, w_dim) for fresh latents, with style mixing regularisation: with
        probability `style_mixing`, layers from a random cutoff on take a second latent's w."""
        z = keras.random.normal((batch, self.z_dim), seed=self.seed_generator)
        w = self.mapping(z, training=training)
        ws = tf.repeat(w[:, None], self.num_ws, axis=1)
        if self.style_mixing <= 0:
            return ws, w
        z2 = keras.random.normal((batch, self.z_dim), seed=self.seed_generator)
        w2 = self.mapping(z2, training=training)
        u = keras.random.uniform((), seed=self.seed_generator)
        cutoff = keras.random.randint((), 1, self.num_ws, seed=self.seed_generator, dtype="int32")
        cutoff = tf.where(u < self.style_mixing, cutoff, self.num_ws)
        mask = tf.cast(tf.range(self.num_ws) < cutoff, ws.dtype)[None, :, None]
        return ws * mask + tf.repeat(w2[:, None], self.num_ws, axis=1) * (1 - mask), w

    def train_step(self, real):
        if isinstance(real, tuple):
            real = real[0]
        batch = tf.shape(real)[0]
        seeds = tf.random.experimental.stateless_split(tf.cast(self.seed_generator.next(), tf.int64), 4)
        d_vars = self.discriminator.trainable_variables

        # Discriminator: softplus(D(fake)) + softplus(-D(real)), plus the lazy R1 every r1_interval steps.
        ws, _ = self.mixed_ws(batch)
        fake = self.synthesis(ws, training=True)
        do_r1 = tf.logical_and(self.r1_gamma > 0, self.step_counter % self.r1_interval == 0)

        def d_grads(with_r1: bool):
            with tf.GradientTape() as tape:
                p_fake = self.discriminator(self._aug(fake, seeds[0]), training=True)
                if with_r1:
                    x = tf.identity(real)  # a tensor of this branch, so the inner tape can watch it
                    with tf.GradientTape() as r1_tape:
                        r1_tape.watch(x)
                        p_real = self.discriminator(self._aug(x, seeds[1]), training=True)
                        p_sum = tf.reduce_sum(p_real)
                    g = r1_tape.gradient(p_sum, x)
                    r1 = tf.reduce_mean(tf.reduce_sum(tf.square(g), axis=[1, 2, 3]))
                else:
                    p_real = self.discriminator(self._aug(real, seeds[1]), training=True)
                    r1 = tf.constant(0.0)
                loss = tf.reduce_mean(tf.nn.softplus(p_fake)) + tf.reduce_mean(tf.nn.softplus(-p_real))
                total = loss + r1 * (self.r1_gamma / 2 * self.r1_interval)
            return tape.gradient(total, d_vars), loss, r1, tf.reduce_mean(p_real), tf.reduce_mean(p_fake)

        grads, d_loss, r1, d_real, d_fake = tf.cond(do_r1, lambda: d_grads(True), lambda: d_grads(False))
        self.d_optimizer.apply_gradients(zip(grads, d_vars))

        # Generator: softplus(-D(G(z))) with fresh latents; w_avg tracks the batch mean of w.
        g_vars = self.g_vars
        with tf.GradientTape() as tape:
            ws, w = self.mixed_ws(batch)
            p_gen = self.discriminator(self._aug(self.synthesis(ws, training=True), seeds[2]), training=True)
            g_loss = tf.reduce_mean(tf.nn.softplus(-p_gen))
        self.g_optimizer.apply_gradients(zip(tape.gradient(g_loss, g_vars), g_vars))
        self.w_avg.assign(self.w_avg_beta * self.w_avg + (1 - self.w_avg_beta) * tf.reduce_mean(tf.stop_gradient(w), axis=0))

        self.step_counter.assign_add(1)
        self.images_seen.assign_add(tf.cast(batch, tf.float32))
        if self.ema_mapping is not None:
            ema_nimg = tf.minimum(self.ema_kimg * 1000.0, self.images_seen * self.ema_rampup)
            beta = tf.pow(0.5, tf.cast(batch, tf.float32) / tf.maximum(ema_nimg, 1e-8))
            for ema_model, model in ((self.ema_mapping, self.mapping), (self.ema_synthesis, self.synthesis)):
                for e, v in zip(ema_model.weights, model.weights):
                    if v.dtype == "float32":
                        e.assign(beta * e + (1.0 - beta) * v if v.trainable else v)
        for name, value in (("d_loss", d_loss), ("g_loss", g_loss), ("d_real", d_real), ("d_fake", d_fake)):
            self.trackers[name].update_state(value)
        self.trackers["r1"].update_state(r1, sample_weight=tf.cast(do_r1, tf.float32))
        return {m.name: m.result() for m in self.metrics}

    def get_config(self):
        config = super().get_config()
        config.update({
            "mapping": keras.saving.serialize_keras_object(self.mapping),
            "synthesis": keras.saving.serialize_keras_object(self.synthesis),
            "discriminator": keras.saving.serialize_keras_object(self.discriminator),
            "augment": self.augment, "r1_gamma": self.r1_gamma, "r1_interval": self.r1_interval,
            "style_mixing": self.style_mixing, "w_avg_beta": self.w_avg_beta, "ema_kimg": self.ema_kimg,
            "ema_rampup": self.ema_rampup, "seed": self.seed,
        })
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for k in ("mapping", "synthesis", "discriminator"):
            config[k] = keras.saving.deserialize_keras_object(config[k])
        return cls(**config)
