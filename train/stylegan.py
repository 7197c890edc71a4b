"""`python -m train stylegan` (StyleGAN2-style anime character generator), plus
`stylegan-directions` (auto-labelled InterFaceGAN + GANSpace attribute directions),
`stylegan-edit` (one character with slider edits) and `stylegan-sheet` (slider sheets).

A run directory holds options.json ("kind": "stylegan"), samples/epoch_NNNN.png (the EMA
generator at ids 0..N-1, the same latents every epoch: id = seed, as for the DCGAN's emotes),
progress.gif, log.csv, tensorboard/, and after every epoch the EMA networks: mapping.keras
(z -> w), synthesis.keras (w -> image, w broadcast to every layer: the exported form),
synthesis_ws.keras (per-layer ws, for style mixing), and backup/ (train/resume.py: --resume).
`stylegan-directions` adds directions.json (w_avg and the named unit directions with scales).
An "epoch" is --kimg-per-epoch thousand images, StyleGAN's "tick", not a pass over the data.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import re
import time

import click
import numpy as np

from core.cli import FiniteFloatRange, UserError
from core.files import atomic_path, ensure_writable_dir
from core.images import grid, make_gif, save_png, to_uint8
from keras_models.stylegan.presets import PRESET_FOR_SIZE, PRESETS
from train import legacy
from train import resume as R
from train.common import common_options, fit_verbosity, gan_batch, gan_images, training_callbacks
from train.jit import jit_compile_option, resolve_jit_compile
from train.run import Family, Run, TrainingData, TrainOptions, run_training
from train.rundirs import load_run_options

SMALL_DATA = 30000  # DiffAugment on by default below this many images


@dataclasses.dataclass(frozen=True)
class StyleGANOptions(TrainOptions):
    epochs: int = 50
    batch_size: int = 16
    augment: str = "auto"
    policy: str = "color,translation,cutout"
    r1_gamma: float = 0.5
    r1_interval: int = 16
    style_mixing: float = 0.9
    ema_kimg: float = 2.0
    kimg_per_epoch: float = 1.0
    flip: bool = True
    n_samples: int = 64
    jit_compile: str = "auto"
    config: dict | None = None  # the preset's network shape, as the run was made with it


@click.command("stylegan")
@common_options({"epochs": 50, "batch_size": 16})
@click.option("--augment", type=click.Choice(["auto", "on", "off"]), default="auto", show_default=True,
              help=f"DiffAugment before the discriminator; auto = on below {SMALL_DATA} images.")
@click.option("--policy", default="color,translation,cutout", show_default=True, help="DiffAugment policy.")
@click.option("--r1-gamma", type=FiniteFloatRange(0), default=0.5, show_default=True, help="R1 weight (0 = off).")
@click.option("--r1-interval", type=click.IntRange(1), default=16, show_default=True, help="Lazy R1: every N steps.")
@click.option("--style-mixing", type=FiniteFloatRange(0, 1), default=0.9, show_default=True, help="Style-mixing probability.")
@click.option("--ema-kimg", type=FiniteFloatRange(0), default=2.0, show_default=True, help="EMA half-life in kimg (0 = off).")
@click.option("--kimg-per-epoch", type=FiniteFloatRange(0.01), default=None,
              help="Thousands of images per epoch (samples and checkpoints every epoch). Default 1, or with --limit N "
                   "one pass over the N images (a quick run is quick).")
@click.option("--flip/--no-flip", default=True, show_default=True, help="Random horizontal flips of the training images.")
@click.option("--samples", "n_samples", type=click.IntRange(4, 256), default=64, show_default=True, help="Ids 0..N-1 in each grid.")
@jit_compile_option()
def stylegan(**options):
    """Train a StyleGAN2-style generator (64x64 by default; --image-size 128, or --preset NAME).
    One device in float32: --strategy, --tpu and --mixed-precision are not supported here."""
    run_training(FAMILY, options)


def validate(options: dict) -> None:
    """StyleGAN's step is written for one device in float32 (per-device losses, R1, w_avg, the EMA and
    its counters are not replica-aware, and fp16 needs loss scaling), so these options are refused
    before anything is created rather than silently ignored."""
    from keras_models.common.augment import parse_policy

    given = [f"--strategy {options['strategy']}" if (options.get("strategy") or "default") != "default" else "",
             f"--tpu {options['tpu']}" if options.get("tpu") else "",
             f"--mixed-precision {options['mixed_precision']}" if (options.get("mixed_precision") or "off") != "off" else ""]
    given = [g for g in given if g]
    if given:
        raise UserError(f"stylegan trains on one device in float32: {', '.join(given)} is not supported "
                        "(drop it; --strategy, --tpu and --mixed-precision work for the other models)")
    if not options["data"]:
        raise UserError("--data is required for stylegan (e.g. --data ../shared/data/anime_faces)")
    parse_policy(options["policy"])


def preset_name(options: dict) -> str | None:
    """--preset, else the preset of --image-size (64 when neither is given)."""
    return options["preset"] or PRESET_FOR_SIZE.get(options["image_size"] or 64)


def check_size(preset, size: int) -> None:
    if preset.image_size != size:
        raise UserError(f"--preset {preset.name} is {preset.image_size}x{preset.image_size}, not --image-size {size}")


def resolve(options: dict, preset) -> None:
    options["preset"] = preset.name
    if options["kimg_per_epoch"] is None:  # --limit 16 --epochs 1: one pass over the 16, not 1000 images (62 steps)
        options["kimg_per_epoch"] = min(1.0, max(options["limit"], 10) / 1000) if options["limit"] else 1.0
    options.setdefault("config", preset.network.to_dict())  # a resumed run keeps the shape it was made with
    options["data"] = list(options["data"])


def fit(run: Run, o: StyleGANOptions, preset, data: TrainingData) -> str:
    import keras
    import tensorflow as tf

    from data_pipelines import make_dataset
    from keras_models.stylegan import StyleGAN, build

    keras.utils.set_random_seed(o.seed)
    size, n = o.image_size, len(data)
    bs, augment = gan_batch(o, n, SMALL_DATA)
    steps = max(1, int(round(o.kimg_per_epoch * 1000 / bs)))
    click.echo(f"train: {n} images at {size}x{size}, batch {bs}, {steps} step{'s' if steps != 1 else ''} per epoch; DiffAugment "
               f"{'on (' + o.policy + ')' if augment else 'off'}; skipped {len(data.train.skipped)} unreadable")
    ds = make_dataset(data.train.images, None, bs, training=True, seed=o.seed, drop_remainder=True, repeat=True)
    ds = ds.map(lambda x: tf.where(tf.random.uniform([tf.shape(x)[0], 1, 1, 1]) < 0.5, x[:, :, ::-1], x) if o.flip else x)
    ds = ds.map(lambda x: x / 127.5 - 1.0)

    def make_gan(jit_compile: bool):
        mapping, synthesis, discriminator = build(o.config)
        gan = StyleGAN(mapping, synthesis, discriminator, augment=o.policy if augment else "", r1_gamma=o.r1_gamma,
                       r1_interval=o.r1_interval, style_mixing=o.style_mixing, ema_kimg=o.ema_kimg, seed=o.seed)
        # Adam(0, 0.99) as StyleGAN2, with the lazy-regularisation correction of the discriminator's lr and betas.
        c = o.r1_interval / (o.r1_interval + 1) if o.r1_gamma > 0 else 1.0
        gan.compile(d_optimizer=keras.optimizers.Adam(o.lr * c, beta_1=0.0, beta_2=0.99**c, epsilon=1e-8),
                    g_optimizer=keras.optimizers.Adam(o.lr, beta_1=0.0, beta_2=0.99, epsilon=1e-8), jit_compile=jit_compile)
        return gan

    jit = resolve_jit_compile(run.options, run.dir, run.resumed, None, make_gan, (bs, size, size, 3), run_steps=o.epochs * steps)
    keras.utils.set_random_seed(o.seed)  # the same initial weights whichever mode, timed or not
    gan = make_gan(jit)
    if run.resumed:  # the step and image counters (R1 schedule, EMA ramp-up) are the GAN's variables: in backup/
        legacy.adopt_finished_run(run.dir, gan, lambda g: legacy.final_gan_state(run.dir, g))
        R.check_can_continue(run.dir, o.epochs)
    monitor = stylegan_monitor(run.dir, gan, o.n_samples, bs)
    callbacks = [monitor] + training_callbacks(run.dir, run.resumed, time_limit=o.time_limit)
    gan.fit(ds, epochs=o.epochs, steps_per_epoch=steps, callbacks=callbacks, shuffle=False, verbose=fit_verbosity())  # the dataset shuffles
    return f"(mapping.keras, synthesis.keras; samples in {monitor.samples_dir}); next: python -m train stylegan-directions {run.dir}"


def save_networks(run_dir, gan):
    """The EMA (else the live) networks as .keras files (the training state is in backup/)."""
    from keras_models.stylegan import synthesis_from_w

    mapping = gan.ema_mapping or gan.mapping
    synthesis = gan.ema_synthesis or gan.synthesis
    for name, model in (("mapping.keras", mapping), ("synthesis_ws.keras", synthesis),
                        ("synthesis.keras", synthesis_from_w(synthesis, name="synthesis"))):
        with atomic_path(os.path.join(run_dir, name)) as tmp:
            model.save(tmp)


def stylegan_monitor(run_dir, gan, n_samples=64, batch_size=16):
    import keras

    from keras_models.common.noise import noise_for_ids

    class StyleGANMonitor(keras.callbacks.Callback):
        """Each epoch: the fixed-id grid from the EMA generator, the networks and the state.
        At the end: progress.gif."""

        def __init__(self):
            super().__init__()
            self.samples_dir = ensure_writable_dir(os.path.join(run_dir, "samples"))
            self.z = noise_for_ids(range(n_samples), gan.z_dim)

        def on_epoch_begin(self, epoch, logs=None):
            self.t_epoch = time.monotonic()

        def on_epoch_end(self, epoch, logs=None):
            m, s = gan.ema_mapping or gan.mapping, gan.ema_synthesis or gan.synthesis
            w = np.asarray(m(self.z, training=False))
            imgs = np.asarray(s(np.repeat(w[:, None], gan.num_ws, 1), training=False))
            save_png(os.path.join(self.samples_dir, f"epoch_{epoch + 1:04d}.png"), grid(to_uint8(imgs)))
            seen = float(gan.images_seen.numpy())
            save_networks(run_dir, gan)
            if logs is not None:
                logs["kimg"] = seen / 1000
                logs["sec_per_kimg"] = (time.monotonic() - self.t_epoch) / max(1e-9, self.params.get("steps", 1) * batch_size / 1000)

        def on_train_end(self, logs=None):
            make_gif(sorted(glob.glob(os.path.join(self.samples_dir, "epoch_*.png"))), os.path.join(run_dir, "progress.gif"))

    return StyleGANMonitor()


# --------------------------------------------------------------------------- loading a run


def load_run(run):
    """(mapping, synthesis (w input), options) of a stylegan run directory."""
    import keras

    import keras_models.stylegan  # noqa: F401 - registers the custom layers

    opts = load_run_options(run, "stylegan")
    models = []
    for name in ("mapping.keras", "synthesis.keras"):
        path = os.path.join(run, name)
        if not os.path.isfile(path):
            raise UserError(f"{run} has no {name} yet (has it finished an epoch?)")
        try:
            models.append(keras.saving.load_model(path, compile=False))
        except (ValueError, OSError) as e:
            raise UserError(f"cannot load {path}: {str(e).splitlines()[0]}") from None
    return models[0], models[1], opts


def w_avg_of(mapping) -> np.ndarray:
    return np.asarray(mapping.get_layer("truncation").w_avg.numpy(), np.float32)


def render(synthesis, w, batch=64) -> np.ndarray:
    """float images in [-1, 1] for ws (N, w_dim)."""
    w = np.asarray(w, np.float32)
    return np.concatenate([np.asarray(synthesis(w[i:i + batch], training=False)) for i in range(0, len(w), batch)])


def ws_for_ids(mapping, ids, psi=1.0) -> np.ndarray:
    from keras_models.common.noise import noise_for_ids
    from keras_models.stylegan.directions import truncate

    w = np.asarray(mapping(noise_for_ids(list(ids), mapping.input_shape[-1]), training=False))
    return truncate(w, w_avg_of(mapping), psi)


# --------------------------------------------------------------------------- directions


@click.command("stylegan-directions")
@click.argument("run", type=click.Path())
@click.option("--samples", "n", type=click.IntRange(100), default=3000, show_default=True, help="Generated images to auto-label.")
@click.option("--psi", type=FiniteFloatRange(0, 1), default=0.8, show_default=True, help="Truncation of the labelled samples.")
@click.option("--fraction", type=FiniteFloatRange(0.05, 0.5), default=0.3, show_default=True, help="Top/bottom fraction labelled 1/0.")
@click.option("--components", type=click.IntRange(0, 64), default=8, show_default=True, help="GANSpace PCA directions (pc0..).")
@click.option("--seed", type=int, default=1_000_000, show_default=True, help="First id of the labelled samples.")
def stylegan_directions(run, n, psi, fraction, components, seed):
    """Find attribute directions in w space: auto-labels (image statistics), InterFaceGAN
    boundaries orthogonalised against each other, and GANSpace PCA; writes RUN/directions.json."""
    data = find_directions(run, n, psi, fraction, components, seed)
    for name, e in data["directions"].items():
        extra = f", accuracy {e['accuracy']:.2f}" if "accuracy" in e else f", variance {e['variance_fraction']:.3f}"
        eff = e.get("effect")
        eff_s = (f"; +2 moves its score by {eff['own_score_std']:+.2f} std (largest other: {eff['largest_other']} "
                 f"{eff['largest_other_std']:+.2f})") if eff else ""
        click.echo(f"{name}: {e['kind']}{extra}{eff_s}")
    click.echo(f"wrote {os.path.join(run, 'directions.json')}")


def find_directions(run, n=3000, psi=0.8, fraction=0.3, components=8, seed=1_000_000) -> dict:
    from keras_models.stylegan import directions as D

    mapping, synthesis, opts = load_run(run)
    ws = ws_for_ids(mapping, range(seed, seed + n), psi)
    imgs = render(synthesis, ws)
    scores = D.image_scores(imgs)
    scores = {k: v for k, v in scores.items() if np.std(v) > 1e-6}
    raw = D.fit_boundaries(ws, scores, fraction=fraction)
    ortho = D.orthogonalize({k: v for k, (v, _) in raw.items()})
    entries = {}
    for name, v in ortho.items():
        proj = ws @ v
        cos = {o: float(np.dot(raw[name][0], raw[o][0])) for o in raw if o != name}
        entries[name] = {"vector": v, "scale": float(proj.std()), "kind": "interfacegan", "accuracy": raw[name][1],
                         "description": D.ATTRIBUTES.get(name, ""), "raw_vector": [float(a) for a in raw[name][0]],
                         "cosine_with_others_before_orthogonalisation": cos}
    if components:
        vecs, stds, fracs = D.pca_directions(ws, components)
        for i, (v, sd, fr) in enumerate(zip(vecs, stds, fracs)):
            entries[f"pc{i}"] = {"vector": v, "scale": float(sd), "kind": "ganspace", "variance_fraction": float(fr)}
    data = D.make_directions(w_avg_of(mapping), entries, psi=psi, samples=n, fraction=fraction, first_id=seed)
    # Measure every attribute edit on a held-out batch: +2 vs -2, in std units of each score.
    test_ws = ws_for_ids(mapping, range(seed + n, seed + n + 200), psi)
    sd = {k: float(np.std(v)) + 1e-9 for k, v in scores.items()}
    loaded = {k: {"vector": np.asarray(e["vector"], np.float32), "scale": e["scale"]} for k, e in data["directions"].items()}
    for name in ortho:
        lo = D.image_scores(render(synthesis, D.apply_edits(test_ws, loaded, {name: -2})))
        hi = D.image_scores(render(synthesis, D.apply_edits(test_ws, loaded, {name: +2})))
        delta = {k: float(np.mean(hi[k] - lo[k]) / sd[k]) for k in scores}
        others = {k: v for k, v in delta.items() if k != name}
        worst = max(others, key=lambda k: abs(others[k])) if others else ""
        data["directions"][name]["effect"] = {"own_score_std": delta[name], "all_scores_std": delta,
                                              "largest_other": worst, "largest_other_std": others.get(worst, 0.0)}
    D.save_directions(os.path.join(run, "directions.json"), data, atomic=atomic_path)
    return data


def run_directions(run):
    from keras_models.stylegan import directions as D

    path = os.path.join(run, "directions.json")
    if not os.path.isfile(path):
        raise UserError(f"{run} has no directions.json: run `python -m train stylegan-directions {run}` first")
    try:
        return D.load_directions(path)
    except (ValueError, KeyError) as e:
        raise UserError(str(e).splitlines()[0] if str(e) else f"unreadable directions file {path}") from None


def parse_attrs(attrs) -> dict:
    edits = {}
    for a in attrs:
        m = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)\s*=\s*([+-]?[0-9]*\.?[0-9]+)\s*", a)
        if not m:
            raise UserError(f"--attr expects NAME=VALUE (e.g. smile=+2), got {a!r}")
        edits[m.group(1)] = edits.get(m.group(1), 0.0) + float(m.group(2))
    return edits


def _check_names(names, directions):
    bad = [n for n in names if n not in directions]
    if bad:
        raise UserError(f"unknown attribute {bad[0]!r}; this run has: {', '.join(directions)}")


@click.command("stylegan-edit")
@click.argument("run", type=click.Path())
@click.option("--seed", "seed", type=click.IntRange(0, 2**32 - 1), required=True, help="Character id (the latent's seed).")
@click.option("--attr", "attrs", multiple=True, help="NAME=AMOUNT in standard deviations, e.g. mouth_open=+2. Repeatable.")
@click.option("--psi", type=FiniteFloatRange(0, 2), default=0.8, show_default=True, help="Truncation (1 = none, 0 = the mean face).")
@click.option("--out", required=True, type=click.Path(), help="Output .png.")
@click.option("--scale", type=click.IntRange(1, 16), default=4, show_default=True, help="Nearest-neighbour upscaling.")
@click.option("--compare/--no-compare", default=False, show_default=True, help="Put the unedited image on the left.")
def stylegan_edit(run, seed, attrs, psi, out, scale, compare):
    """Render character SEED with attribute edits (sliders) applied in w space."""
    from keras_models.stylegan.directions import apply_edits

    edits = parse_attrs(attrs)
    if not out.lower().endswith(".png"):
        raise UserError(f"--out must be a .png file, got {out}")
    mapping, synthesis, _ = load_run(run)
    dirs = run_directions(run)["directions"] if edits else {}
    _check_names(edits, dirs)
    w = ws_for_ids(mapping, [seed], psi)
    ws = [apply_edits(w, dirs, edits)] if not compare else [w, apply_edits(w, dirs, edits)]
    imgs = to_uint8(render(synthesis, np.concatenate(ws)))
    img = imgs[0] if len(imgs) == 1 else grid(imgs, cols=len(imgs))
    ensure_writable_dir(os.path.dirname(os.path.abspath(out)))
    save_png(out, img, scale)
    click.echo(f"wrote {out}" + (f" ({', '.join(f'{k}={v:+g}' for k, v in edits.items())})" if edits else ""))


@click.command("stylegan-sheet")
@click.argument("run", type=click.Path())
@click.option("--attr", "names", multiple=True, help="Attribute (repeatable; default: every direction in the run).")
@click.option("--seeds", default="0,1,2,3", show_default=True, help="Comma list of character ids: one row per id and attribute.")
@click.option("--steps", default="-3,-2,-1,0,1,2,3", show_default=True, help="Slider values (standard deviations).")
@click.option("--psi", type=FiniteFloatRange(0, 2), default=0.8, show_default=True)
@click.option("--out", required=True, type=click.Path(), help="Output .png.")
@click.option("--scale", type=click.IntRange(1, 16), default=2, show_default=True)
def stylegan_sheet(run, names, seeds, steps, psi, out, scale):
    """A slider sheet: rows (attribute x id) of images from -3 to +3 along each direction."""
    from keras_models.stylegan.directions import apply_edits

    try:
        ids = [int(s) for s in seeds.split(",") if s.strip()]
        values = [float(s) for s in steps.split(",") if s.strip()]
    except ValueError:
        raise UserError("--seeds and --steps are comma lists of numbers") from None
    if not ids or not values:
        raise UserError("--seeds and --steps must not be empty")
    if not out.lower().endswith(".png"):
        raise UserError(f"--out must be a .png file, got {out}")
    mapping, synthesis, _ = load_run(run)
    dirs = run_directions(run)["directions"]
    names = list(names) or list(dirs)
    _check_names(names, dirs)
    base = ws_for_ids(mapping, ids, psi)
    rows = [apply_edits(base[i:i + 1], dirs, {name: v}) for name in names for i in range(len(ids)) for v in values]
    imgs = to_uint8(render(synthesis, np.concatenate(rows)))
    ensure_writable_dir(os.path.dirname(os.path.abspath(out)))
    save_png(out, grid(imgs, cols=len(values)), scale)
    click.echo(f"wrote {out}: {len(names) * len(ids)} rows ({', '.join(names)}) x {len(values)} values {values[0]:+g}..{values[-1]:+g}")


FAMILY = Family("stylegan", StyleGANOptions, PRESETS, gan_images("stylegan"), fit, lambda o: o.preset, validate=validate,
                preset_name=preset_name, resolve=resolve, check_size=check_size, distributed=False)
COMMANDS = [stylegan, stylegan_directions, stylegan_edit, stylegan_sheet]
