"""`python -m train dcgan` (DCGAN emote generator) and `python -m train dcgan-sample` (claimable ids).

A run directory holds options.json ("kind": "dcgan"), generator.keras (plus generator_ema.keras
with --ema-decay), samples/epoch_NNNN.png (a grid of ids 0..N-1, the same noise every epoch),
progress.gif, log.csv and tensorboard/ (d_loss, g_loss, d_real, d_fake, diversity), and
metrics.json (diversity and novelty of the final samples; with an EMA generator, the live one's under "raw").
"""

from __future__ import annotations

import dataclasses
import glob
import os

import click
import numpy as np

from core.cli import FiniteFloatRange, UserError
from core.files import atomic_path, ensure_writable_dir, write_json
from core.images import grid, make_gif, save_png, to_uint8
from core.labels import FER_LABELS
from keras_models.common.noise import CONDITIONAL_INPUT, generator_inputs
from keras_models.common.sample_metrics import mean_pairwise_distance, novelty
from keras_models.dcgan import PRESETS
from train import legacy
from train import resume as R
from train.common import common_options, fit_verbosity, gan_batch, gan_images, training_callbacks
from train.distribute import distribute_arrays, prepare_model, scope
from train.jit import jit_compile_option, resolve_jit_compile
from train.run import Family, Run, TrainingData, TrainOptions, run_training
from train.rundirs import load_run_options

DEFAULT_DATA = ("emoji:twemoji/all",)
SMALL_DATA = 5000  # DiffAugment on by default below this many images


@dataclasses.dataclass(frozen=True)
class DCGANOptions(TrainOptions):
    epochs: int = 25
    preset: str = "pytorch-tutorial"
    augment: str = "auto"
    policy: str = "color,translation,cutout"
    label_smoothing: float = 0.1
    label_noise: float = 0.0
    ema_decay: float = 0.0
    width: int | None = None
    d_width: int | None = None
    jit_compile: str = "auto"
    n_samples: int = 64
    collapse_threshold: float = 0.35
    condition: str | None = None
    class_weight: float = 1.0


@click.command("dcgan")
@common_options({"epochs": 25, "batch_size": 64, "preset": "pytorch-tutorial"})
@click.option("--augment", type=click.Choice(["auto", "on", "off"]), default="auto", show_default=True,
              help=f"DiffAugment before the discriminator; auto = on for data sets under {SMALL_DATA} images.")
@click.option("--policy", default="color,translation,cutout", show_default=True, help="DiffAugment policy.")
@click.option("--label-smoothing", type=FiniteFloatRange(0, 0.49), default=0.1, show_default=True, help="One-sided: real targets 1 - x.")
@click.option("--label-noise", type=FiniteFloatRange(0, 0.49), default=0.0, show_default=True,
              help="Probability of flipping a discriminator target.")
@click.option("--ema-decay", type=FiniteFloatRange(0, 0.9999), default=0.0, show_default=True,
              help="Keep an EMA generator (e.g. 0.999); 0 = off.")
@click.option("--width", type=click.IntRange(min=4), default=None, help="Generator width (ngf; default the preset's).")
@click.option("--d-width", type=click.IntRange(min=4), default=None, help="Discriminator width (ndf; default the preset's).")
@jit_compile_option()
@click.option("--samples", "n_samples", type=click.IntRange(4, 256), default=64, show_default=True, help="Ids 0..N-1 in each epoch's grid.")
@click.option("--collapse-threshold", type=FiniteFloatRange(0, 1), default=0.35, show_default=True,
              help="Warn when the samples' mean pairwise distance falls below this fraction of the data's.")
@click.option("--condition", type=click.Path(exists=True, dir_okay=False), default=None,
              help="An emoji map (mobile_demo/static/emoji_map.json): train a generator conditioned on the expression, each "
                   "emoji labelled by its weights over the seven expressions (AC-GAN); images it does not name are left out.")
@click.option("--class-weight", type=FiniteFloatRange(0, 100), default=1.0, show_default=True,
              help="With --condition: weight of the expression losses beside the real/fake one.")
def dcgan(**options):
    """Train a DCGAN emote generator (default data: all built-in Twemoji)."""
    run_training(FAMILY, options)


def validate(options: dict) -> None:
    from keras_models.common.augment import parse_policy

    parse_policy(options["policy"])


def check_size(preset, size: int) -> None:
    if size not in (32, 64, 128):
        raise UserError(f"--image-size must be 32, 64 or 128 for dcgan, got {size}")


def resolve(options: dict, preset) -> None:
    options["data"] = list(options["data"] or DEFAULT_DATA)
    options["nz"] = preset.nz


def describe(o: DCGANOptions) -> str:
    return f"{o.preset}{o.image_size}"


def load_data(o: DCGANOptions) -> TrainingData:
    """The training images; with --condition, the ones the emoji map names, with their expression
    weights as targets and the rarer expressions repeated up to half the commonest one's count."""
    data = gan_images("dcgan")(o)
    if not o.condition:
        return data
    from data_pipelines.expression_targets import balanced_indices, with_expression_targets

    images, weights, left_out = with_expression_targets(data.train, o.condition)
    counts = ", ".join(f"{c} {int((images.labels == i).sum())}" for i, c in enumerate(images.class_names))
    click.echo(f"expression targets from {o.condition}: {counts}; {left_out} images it does not name left out")
    idx = balanced_indices(images.labels, 0.5, o.seed)
    return TrainingData(images, targets=weights, order=idx)


def fit(run: Run, o: DCGANOptions, preset, data: TrainingData) -> str:
    import keras

    from data_pipelines import make_dataset
    from keras_models.dcgan import DCGAN, ConditionalDCGAN

    keras.utils.set_random_seed(o.seed)
    size, n, classes = o.image_size, len(data), len(data.train.class_names) if o.condition else 0
    x, y = (data.train.images, None) if not classes else (data.train.images[data.order], data.targets[data.order])
    bs, augment = gan_batch(o, len(x), SMALL_DATA)
    click.echo(f"train: {n} images ({len(x)} per epoch) at {size}x{size}, batch {bs}; "
               f"DiffAugment {'on (' + o.policy + ')' if augment else 'off'}; skipped {len(data.train.skipped)} unreadable")
    ds = distribute_arrays(run.strategy, lambda x, y, batch: make_dataset(x, y, batch, training=True, seed=o.seed, drop_remainder=True)
                           .map(lambda t, *w: (t / 127.5 - 1.0, *w)), x, y, bs)

    def build(jit_compile: bool):
        with scope(run.strategy):  # networks and optimizers under the strategy
            generator, discriminator = preset.build(size, o.width, o.d_width, num_classes=classes)
            kw = dict(augment=o.policy if augment else "", label_smoothing=o.label_smoothing, label_noise=o.label_noise,
                      ema_decay=o.ema_decay, seed=o.seed)
            gan = (ConditionalDCGAN(discriminator, generator, preset.nz, classes, o.class_weight, **kw) if classes
                   else DCGAN(discriminator, generator, preset.nz, **kw))
            prepare_model(gan, run.strategy)
            gan.compile(d_optimizer=keras.optimizers.Adam(o.lr, beta_1=preset.beta_1),
                        g_optimizer=keras.optimizers.Adam(o.lr, beta_1=preset.beta_1),
                        loss_fn=keras.losses.BinaryCrossentropy(), jit_compile=jit_compile)
        return gan

    shape = (bs, size, size, 3) if not classes else ((bs, size, size, 3), (bs, classes))
    jit = resolve_jit_compile(run.options, run.dir, run.resumed, run.strategy, build, shape)
    keras.utils.set_random_seed(o.seed)  # the same initial weights whichever mode, timed or not
    gan = build(jit)
    if run.resumed:
        legacy.adopt_finished_run(run.dir, gan, lambda g: legacy.final_gan_state(run.dir, g))
        R.check_can_continue(run.dir, o.epochs)
    monitor = gan_monitor(run.dir, gan, data.train.images, o.n_samples, o.collapse_threshold)
    callbacks = [monitor] + training_callbacks(run.dir, run.resumed, time_limit=o.time_limit)
    gan.fit(ds, epochs=o.epochs, callbacks=callbacks, shuffle=False, verbose=fit_verbosity())  # the dataset shuffles
    return f"(generator {os.path.join(run.dir, 'generator.keras')}, samples {monitor.samples_dir})"


def gan_monitor(run_dir, gan, data_uint8, n_samples=64, collapse_threshold=0.35, seed=0):
    """A GANMonitor callback for this run: the class is made here, around the run's networks and data."""
    import keras

    class GANMonitor(keras.callbacks.Callback):
        """Each epoch: a sample grid of ids 0..N-1 (fixed noise), the samples' diversity (logged, and a
        warning when it collapses). At the end: progress.gif, generator.keras, metrics.json, novelty.png."""

        def __init__(self, run_dir, gan, data_uint8, n_samples=64, collapse_threshold=0.35, seed=0):
            super().__init__()
            self.run_dir, self.gan = run_dir, gan
            self.samples_dir = ensure_writable_dir(os.path.join(run_dir, "samples"))
            classes = getattr(gan, "num_classes", 0)
            self.cols = classes or None  # conditional: a column per class, id i asked for class i % classes
            if classes:
                n_samples = max(classes, n_samples // classes * classes)
            self.noise = generator_inputs(range(n_samples), gan.latent_dim, classes,
                                          [i % classes for i in range(n_samples)] if classes else None)
            rng = np.random.default_rng(seed)
            pick = rng.choice(len(data_uint8), min(len(data_uint8), 2048), replace=False)
            self.data = data_uint8[pick].astype(np.float32) / 127.5 - 1.0
            self.data_uint8 = data_uint8[pick]
            self.data_diversity = mean_pairwise_distance(self.data[: min(256, len(self.data))])
            self.collapse_threshold = collapse_threshold
            self.last = None
            self.peak = 0.0

        def _generate(self, model):
            return np.asarray(model(self.noise, training=False))

        def _figures(self, imgs):
            """Novelty and diversity of the grid's samples against the training data, and each one's nearest."""
            nov = novelty(imgs, self.data)
            nearest = nov.pop("nearest_index")
            return dict(nov, diversity=mean_pairwise_distance(imgs) / max(self.data_diversity, 1e-9),
                        data_diversity_rms=self.data_diversity, samples=len(imgs)), nearest

        def on_epoch_end(self, epoch, logs=None):
            imgs = self._generate(self.gan.generator)
            save_png(os.path.join(self.samples_dir, f"epoch_{epoch + 1:04d}.png"), grid(to_uint8(imgs), self.cols))
            if self.gan.ema_generator is not None:
                ema = self._generate(self.gan.ema_generator)
                save_png(os.path.join(self.samples_dir, f"ema_epoch_{epoch + 1:04d}.png"), grid(to_uint8(ema), self.cols))
            ratio = mean_pairwise_distance(imgs) / max(self.data_diversity, 1e-9)
            if logs is not None:
                logs["diversity"] = ratio
            self.peak = max(self.peak, ratio)
            # An untrained generator's samples all look alike: warn on a drop, or when it never got going.
            if ratio < self.collapse_threshold and (self.peak >= self.collapse_threshold or epoch + 1 >= 5):
                click.echo(f"\nwarning: sample diversity collapsed at epoch {epoch + 1}: mean pairwise distance is {ratio:.2f} of the "
                           f"data's (threshold {self.collapse_threshold}); consider more augmentation, a lower --lr or --label-noise",
                           err=True)
            self.last = imgs

        def on_train_end(self, logs=None):
            gen_path = os.path.join(self.run_dir, "generator.keras")
            with atomic_path(gen_path) as tmp:
                self.gan.generator.save(tmp)
            if self.gan.ema_generator is not None:
                with atomic_path(os.path.join(self.run_dir, "generator_ema.keras")) as tmp:
                    self.gan.ema_generator.save(tmp)
            imgs = self._generate(self.gan.ema_generator or self.gan.generator)
            metrics, nearest = self._figures(imgs)
            metrics["generator"] = "generator_ema.keras" if self.gan.ema_generator is not None else "generator.keras"
            if self.gan.ema_generator is not None:  # the live generator too: either may be the one to ship
                metrics["raw"] = dict(self._figures(self._generate(self.gan.generator))[0], generator="generator.keras")
            write_json(os.path.join(self.run_dir, "metrics.json"), metrics)
            k = min(16, len(imgs))
            pairs = np.concatenate([to_uint8(imgs[:k]), self.data_uint8[nearest[:k]]])
            save_png(os.path.join(self.run_dir, "novelty.png"), grid(pairs, cols=k))
            make_gif(sorted(glob.glob(os.path.join(self.samples_dir, "epoch_*.png"))), os.path.join(self.run_dir, "progress.gif"))
            click.echo(f"diversity {metrics['diversity']:.2f} of the data's; novelty ratio {metrics['novelty_ratio']:.2f} "
                       f"(sample-to-training NN distance / training NN distance; ~0 would mean copying)")

    return GANMonitor(run_dir, gan, data_uint8, n_samples, collapse_threshold, seed)


@click.command("dcgan-sample")
@click.argument("run", type=click.Path())
@click.option("--id", "first_id", type=click.IntRange(0, 2**32 - 1), required=True,
              help="Emote id (0..4294967295): its noise is fixed forever.")
@click.option("--count", type=click.IntRange(1, 10000), default=1, show_default=True, help="Ids id, id+1, ... id+count-1.")
@click.option("--out", required=True, type=click.Path(),
              help="A .png file (count 1, or stem-<id>.png for each id) or a folder (emote-<id>.png).")
@click.option("--ema/--no-ema", default=True, show_default=True, help="Use generator_ema.keras when the run has one.")
@click.option("--scale", type=click.IntRange(1, 16), default=1, show_default=True, help="Nearest-neighbour upscaling factor.")
@click.option("--expression", type=click.Choice(FER_LABELS), default=None,
              help="The expression asked of a conditional generator (required for one; an id and an expression give one emote).")
def dcgan_sample(run, first_id, count, out, ema, scale, expression):
    """Write the emotes of claimable ids: the same id always gives the same image."""
    paths = sample_ids(run, first_id, count, out, ema, scale, expression)
    for p in paths[:5]:
        click.echo(p)
    if len(paths) > 5:
        click.echo(f"... {len(paths)} files")


def generator_path(run: str, ema: bool = True) -> str:
    if os.path.isfile(run) and run.endswith(".keras"):
        return run
    load_run_options(run, "dcgan")
    for name in (["generator_ema.keras"] if ema else []) + ["generator.keras"]:
        p = os.path.join(run, name)
        if os.path.isfile(p):
            return p
    raise UserError(f"{run} has no generator.keras yet (training not finished?)")


def conditional_classes(gen) -> int:
    """How many classes a generator is conditioned on (0 for a plain one): its input is named noise_and_expression."""
    return len(FER_LABELS) if gen.inputs[0].name.split(":")[0].startswith(CONDITIONAL_INPUT) else 0


def sample_ids(run, first_id, count, out, ema=True, scale=1, expression=None) -> list[str]:
    from keras_models.common.noise import MAX_ID

    if first_id + count - 1 > MAX_ID:
        raise UserError(f"ids {first_id}..{first_id + count - 1} go past the largest id {MAX_ID}")
    path = generator_path(run, ema)
    import keras

    try:
        gen = keras.saving.load_model(path, compile=False)
    except (ValueError, OSError) as e:
        raise UserError(f"cannot load generator {path}: {str(e).splitlines()[0]}") from None
    classes = conditional_classes(gen)
    if classes and expression is None:
        raise UserError(f"{path} makes emotes of an expression: give --expression ({', '.join(FER_LABELS)})")
    if not classes and expression is not None:
        raise UserError(f"{path} is not conditioned on an expression: drop --expression")
    nz = gen.input_shape[-1] - classes
    ids = list(range(first_id, first_id + count))
    asked = [FER_LABELS.index(expression)] * count if classes else None
    imgs = to_uint8(np.asarray(gen.predict(generator_inputs(ids, nz, classes, asked), batch_size=64, verbose=0)))
    if out.lower().endswith(".png"):
        ensure_writable_dir(os.path.dirname(os.path.abspath(out)))
        stem = out[:-4]
        paths = [out] if count == 1 else [f"{stem}-{i}.png" for i in ids]
    else:
        ensure_writable_dir(out)
        paths = [os.path.join(out, f"emote-{i}.png") for i in ids]
    for p, im in zip(paths, imgs):
        save_png(p, im, scale)
    return paths


FAMILY = Family("dcgan", DCGANOptions, PRESETS, load_data, fit, describe, validate=validate, resolve=resolve,
                check_size=check_size)
COMMANDS = [dcgan, dcgan_sample]
