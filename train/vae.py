"""`python -m train vae` (Foster's VAE); its latent tools `vae-morph`, `vae-attribute` and `vae-latents`
are in train/vae_tools.py, the run's figures in train/vae_plots.py.

A run directory holds: options.json, vae.json (preset and value ranges), log.csv, tensorboard/,
backup/ (for --resume), samples/epoch_XXXX.png (fixed noise, every epoch), encoder.keras (rewritten every epoch)
(image 0..255 -> [z_mean, z_log_var]), decoder.keras (z -> image 0..1), and the plots of
reference 001: loss.png, latent_distribution.png, reconstructions.png, new_faces.png.
"""

from __future__ import annotations

import dataclasses
import math
import os

import click
import keras
import numpy as np

from core.cli import FiniteFloatRange, UserError
from core.files import atomic_path, write_json
from core.images import grid, save_png
from keras_models.vae import PRESETS
from train import resume as R
from train.common import common_options, fit_verbosity, training_callbacks
from train.distribute import distribute_arrays, prepare_model, scope
from train.run import Family, Run, TrainingData, TrainOptions, run_training
from train.vae_plots import write_plots

DEFAULT_DATA = ("emoji:twemoji",)
SAMPLE_GRID = (6, 6)
BALANCE_CAP = 20


@dataclasses.dataclass(frozen=True)
class VAEOptions(TrainOptions):
    epochs: int = 15
    batch_size: int = 32
    preset: str = "quick-64"
    beta: float = 1.0
    epoch_size: int = 2048
    balance: bool = True
    flip: bool = True
    val_split: float = 0.0


@click.command("vae")
@common_options({"epochs": 15, "batch_size": 32, "preset": "quick-64"})
@click.option("--beta", type=FiniteFloatRange(min=0), default=1.0, show_default=True, help="Weight of the KL term.")
@click.option("--epoch-size", type=click.IntRange(min=0), default=2048, show_default=True,
              help="Minimum images per epoch: small sets are repeated (0 = one pass over the data).")
@click.option("--balance/--no-balance", default=True, show_default=True,
              help="With several --data sources, repeat the smaller ones (up to 20x) to match the largest.")
@click.option("--flip/--no-flip", default=True, show_default=True, help="Random horizontal flips.")
@click.option("--val-split", type=FiniteFloatRange(0, 0.5), default=0.0, show_default=True,
              help="Hold out this fraction of every source (never trained on): held-out reconstruction MSE, PSNR and KL "
                   "per epoch in log.csv, final figures in heldout.json.")
def vae(**options):
    """Train Foster's VAE (default: the built-in face emoji, preset quick-64, a few minutes on a CPU).

    Presets: gdl1-128 (GDL 1st ed.), gdl2-64 (GDL 2nd ed.), morph-64 (the morph panel's),
    quick-64, tiny-32.
    Images go in as RGB 0..255 (the encoder rescales); the decoder outputs 0..1.
    """
    run_training(FAMILY, options)


def resolve(options: dict, preset) -> None:
    options["data"] = list(options["data"] or DEFAULT_DATA)


def describe(o: VAEOptions) -> str:
    return o.preset + "-" + "+".join(_short(d) for d in o.data)


def _short(spec: str) -> str:
    return spec.split(":", 1)[1].split("/")[0] if spec.startswith("emoji:") else os.path.basename(os.path.normpath(spec))


def load_data(o: VAEOptions) -> TrainingData:
    """Every --data source, the smaller ones repeated (--balance), less the held-out images (--val-split)."""
    from data_pipelines import ImageSet, load_source

    size = o.image_size
    sets = [load_source(s, size, 3, limit=o.limit, on_error=o.on_error) for s in o.data]
    for spec, s in zip(o.data, sets):
        if len(s) == 0:
            raise UserError(f"no images in {spec}")
    heldout = None
    if o.val_split:
        splits = split_sources(sets, o.val_split, o.seed)
        sets = [train for train, _ in splits]
        held = [h for _, h in splits if len(h)]
        heldout = ImageSet(np.concatenate([h.images for h in held]), None, (), sum((h.names for h in held), []), []) if held else None
    counts = [len(s) for s in sets]
    if o.balance and len(sets) > 1:
        # Repeat the smaller sources (at most BALANCE_CAP times) so that e.g. ~100 emoji are not
        # drowned by thousands of character faces in the shared latent space.
        biggest = max(counts)
        sets = [s if len(s) == biggest else _repeat(s, min(BALANCE_CAP, round(biggest / len(s)))) for s in sets]
    data = ImageSet(np.concatenate([s.images for s in sets]), None, (), sum((s.names for s in sets), []),
                    sum((s.skipped for s in sets), []))
    parts = ", ".join(f"{spec}: {c}" + (f" (x{len(s) // c})" if len(s) != c else "") for spec, c, s in zip(o.data, counts, sets))
    held = f"; held out {len(heldout)}" if heldout is not None else ""
    click.echo(f"data: {len(data)} images {size}x{size} ({parts}){held}; skipped {len(data.skipped)} unreadable")
    for line in data.skipped[:5]:
        click.echo(f"  skipped: {line}", err=True)
    return TrainingData(data, heldout)


def split_sources(sets, fraction: float, seed: int) -> list:
    """[(train, held out)] per source, in --data order: the same images every time for a seed (a
    resumed run, and benchmarks/bench_vae_heldout.py, hold out the same ones), from every source."""
    return [_split(s, fraction, seed + i) for i, s in enumerate(sets)]


def _split(s, fraction: float, seed: int):
    """(train, held out): a seeded random `fraction` of an ImageSet held out (at least one image of a
    source of two or more)."""
    from data_pipelines import ImageSet

    k = min(max(round(len(s) * fraction), 1 if len(s) > 1 else 0), len(s) - 1)
    order = np.random.default_rng(seed).permutation(len(s))
    pick = lambda idx: ImageSet(s.images[idx], None, (), [s.names[i] for i in idx], s.skipped)  # noqa: E731
    return pick(np.sort(order[k:])), pick(np.sort(order[:k]))


def _repeat(s, times):
    from data_pipelines import ImageSet

    return ImageSet(np.concatenate([s.images] * times), None, (), s.names * times, s.skipped) if times > 1 else s


def fit(run: Run, o: VAEOptions, preset, data: TrainingData) -> str:
    from keras import layers

    from data_pipelines import make_dataset
    from keras_models.vae import build_vae

    keras.utils.set_random_seed(o.seed)
    n, bs, size, heldout = len(data), o.batch_size, o.image_size, data.val
    steps = math.ceil(max(n, o.epoch_size) / bs)
    augment = layers.RandomFlip("horizontal", seed=o.seed) if o.flip else None
    ds = distribute_arrays(run.strategy,
                           lambda x, _, batch: make_dataset(x, None, batch, training=True, seed=o.seed, augment=augment, repeat=True),
                           data.train.images, None, bs)

    with scope(run.strategy):  # variables (model and optimizer) under the strategy
        model = build_vae(preset, size, beta=o.beta, seed=o.seed)
        prepare_model(model, run.strategy)
        model.compile(optimizer=keras.optimizers.Adam(o.lr))
    write_json(os.path.join(run.dir, "vae.json"), {
        "preset": preset.to_dict(), "image_size": size, "z_dim": preset.z_dim, "beta": o.beta,
        "encoder": "encoder.keras: float32 RGB 0..255 (N,H,W,3) -> [z_mean, z_log_var] (N,z_dim) each",
        "decoder": "decoder.keras: z (N,z_dim) -> float32 RGB 0..1 (N,H,W,3)",
    })
    noise = np.random.default_rng(o.seed).standard_normal((SAMPLE_GRID[0] * SAMPLE_GRID[1], preset.z_dim)).astype("float32")
    callbacks = training_callbacks(run.dir, run.resumed, time_limit=o.time_limit) + [
        SampleGrid(run.dir, model.decoder, noise), SaveModels(run.dir, model.encoder, model.decoder)]
    if heldout is not None:  # first: its figures join the epoch's logs before CSVLogger writes them
        callbacks.insert(0, HeldOut(model, heldout.images))
    if run.resumed:
        R.check_can_continue(run.dir, o.epochs)
    click.echo(f"training {model.name}: {n} images, {steps} steps of {bs} per epoch, {o.epochs} epochs -> {run.dir}")
    model.fit(ds, epochs=o.epochs, steps_per_epoch=steps, callbacks=callbacks, shuffle=False, verbose=fit_verbosity())
    save_models(run.dir, model.encoder, model.decoder)
    if heldout is not None:
        figures = heldout_figures(model, heldout.images)
        write_json(os.path.join(run.dir, "heldout.json"), dict(figures, images=len(heldout), val_split=o.val_split, names=heldout.names))
        click.echo(f"held out {len(heldout)} images: reconstruction MSE {figures['mse']:.5f}, PSNR {figures['psnr_db']:.2f} dB, "
                   f"KL {figures['kl']:.2f}")
    write_plots(run.dir, model.encoder, model.decoder, data.train.images, o.seed)
    return "(encoder.keras, decoder.keras, loss.png, latent_distribution.png, reconstructions.png, new_faces.png)"


def save_models(run_dir, encoder, decoder):
    """encoder.keras and decoder.keras, each written atomically."""
    for name, m in (("encoder.keras", encoder), ("decoder.keras", decoder)):
        with atomic_path(os.path.join(run_dir, name)) as tmp:
            m.save(tmp)


def heldout_figures(model, images, batch: int = 64) -> dict:
    """Reconstruction of held-out images through z_mean (no sampling): per-pixel MSE on 0..1, PSNR,
    and the mean KL of their posteriors against N(0, I)."""
    return reconstruction_figures(images, *reconstruct(model, images, batch))


def reconstruct(model, images, batch: int = 64):
    """(z_mean, z_log_var, reconstruction through z_mean on 0..1) of RGB 0..255 images."""
    z_mean, z_log_var = model.encoder.predict(np.asarray(images, np.float32), batch_size=batch, verbose=0)
    return z_mean, z_log_var, model.decoder.predict(z_mean, batch_size=batch, verbose=0)


def reconstruction_figures(images, z_mean, z_log_var, recon) -> dict:
    mse = float(np.mean((recon.astype(np.float64) - np.asarray(images, np.float64) / 255.0) ** 2))
    kl = float(np.mean(-0.5 * np.sum(1.0 + z_log_var - np.square(z_mean) - np.exp(z_log_var), axis=1)))
    return {"mse": mse, "psnr_db": psnr_db(mse), "kl": kl}


def psnr_db(mse: float) -> float:
    """PSNR of a per-pixel MSE on 0..1."""
    return float(10 * np.log10(1.0 / max(mse, 1e-12)))


class HeldOut(keras.callbacks.Callback):
    """Adds val_mse, val_psnr and val_kl of the held-out images to every epoch's logs."""

    def __init__(self, vae_model, images):
        super().__init__()
        self.vae_model, self.images = vae_model, images

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            f = heldout_figures(self.vae_model, self.images)
            logs.update(val_mse=f["mse"], val_psnr=f["psnr_db"], val_kl=f["kl"])


class SampleGrid(keras.callbacks.Callback):
    """samples/epoch_XXXX.png: the decoder on fixed noise after every epoch (numbering survives --resume)."""

    def __init__(self, run_dir, decoder, noise):
        super().__init__()
        self.dir = os.path.join(run_dir, "samples")
        os.makedirs(self.dir, exist_ok=True)
        self.decoder, self.noise = decoder, noise

    def on_epoch_end(self, epoch, logs=None):
        from keras_models.vae.latent import decode

        rows, cols = SAMPLE_GRID
        save_png(os.path.join(self.dir, f"epoch_{epoch + 1:04d}.png"), grid(decode(self.decoder, self.noise), cols=cols, rows=rows))


class SaveModels(keras.callbacks.Callback):
    """encoder.keras / decoder.keras after every epoch, so the latent tools work on a run in progress."""

    def __init__(self, run_dir, encoder, decoder):
        super().__init__()
        self.run_dir, self.encoder, self.decoder = run_dir, encoder, decoder

    def on_epoch_end(self, epoch, logs=None):
        save_models(self.run_dir, self.encoder, self.decoder)


def check_size(preset, size: int) -> None:
    preset.check_size(size)


FAMILY = Family("vae", VAEOptions, PRESETS, load_data, fit, describe, resolve=resolve, check_size=check_size)
COMMANDS = [vae]
