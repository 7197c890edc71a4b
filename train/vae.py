"""`python -m train vae` (Foster's VAE) and its latent tools `vae-morph`, `vae-attribute` and `vae-latents`.

A run directory holds: options.json, vae.json (preset and value ranges), log.csv, tensorboard/,
backup/ (for --resume), samples/epoch_XXXX.png (fixed noise, every epoch), encoder.keras (rewritten every epoch)
(image 0..255 -> [z_mean, z_log_var]), decoder.keras (z -> image 0..1), and the plots of
reference 001: loss.png, latent_distribution.png, reconstructions.png, new_faces.png.
"""

from __future__ import annotations

import csv
import math
import os

import click
import keras
import numpy as np

from train.cli_support import UserError, atomic_path, write_json
from train.common import common_options, dry_run, fit_verbosity, start_run, training_callbacks
from train.distribute import distribute_arrays, prepare_model, scope, setup, worker_out

DEFAULT_DATA = ("emoji:twemoji",)
SAMPLE_GRID = (6, 6)
HIST_DIMS = 50
BALANCE_CAP = 20


def _preset(name: str, image_size: int | None):
    from keras_models.vae import get_preset

    try:
        p = get_preset(name)
        size = image_size or p.image_size
        p.check_size(size)
    except ValueError as e:
        raise UserError(str(e)) from None
    return p, size


@click.command("vae")
@common_options({"epochs": 15, "batch_size": 32, "preset": "quick-64"})
@click.option("--beta", type=float, default=1.0, show_default=True, help="Weight of the KL term.")
@click.option("--epoch-size", type=click.IntRange(min=0), default=2048, show_default=True,
              help="Minimum images per epoch: small sets are repeated (0 = one pass over the data).")
@click.option("--balance/--no-balance", default=True, show_default=True,
              help="With several --data sources, repeat the smaller ones (up to 20x) to match the largest.")
@click.option("--flip/--no-flip", default=True, show_default=True, help="Random horizontal flips.")
def vae(**options):
    """Train Foster's VAE (default: the built-in face emoji, preset quick-64, a few minutes on a CPU).

    Presets: gdl1-128 (GDL 1st ed.), gdl2-64 (GDL 2nd ed.), quick-64, tiny-32.
    Images go in as RGB 0..255 (the encoder rescales); the decoder outputs 0..1.
    """
    resumed_opts = None
    if options["resume"]:
        run_dir, resumed_opts, resumed = start_run("vae", options, "")
        options = resumed_opts
    options["data"] = list(options["data"] or DEFAULT_DATA)
    preset, size = _preset(options["preset"], options["image_size"])
    options["image_size"] = size
    options["lr"] = options["lr"] or preset.lr
    if options["dry_run"]:  # resumed: the run's own options, as it would continue
        dry_run(options)
        return
    strategy = setup(options)  # before any other TensorFlow work (multi-worker needs that)
    data = _load_data(options, size)  # before the run directory exists: bad data leaves nothing behind
    if not resumed_opts:
        desc = preset.name + "-" + "+".join(_short(d) for d in options["data"])
        options["out"] = worker_out(options["out"], strategy)
        run_dir, options, resumed = start_run("vae", options, desc)
    fit_vae(run_dir, options, resumed, data, strategy)


def _short(spec: str) -> str:
    return spec.split(":", 1)[1].split("/")[0] if spec.startswith("emoji:") else os.path.basename(os.path.normpath(spec))


def _load_data(options, size):
    from data_pipelines import ImageSet, load_source

    sets = [load_source(s, size, 3, limit=options["limit"], on_error=options["on_error"]) for s in options["data"]]
    for spec, s in zip(options["data"], sets):
        if len(s) == 0:
            raise UserError(f"no images in {spec}")
    counts = [len(s) for s in sets]
    if options.get("balance", True) and len(sets) > 1:
        # Repeat the smaller sources (at most BALANCE_CAP times) so that e.g. ~100 emoji are not
        # drowned by thousands of character faces in the shared latent space.
        biggest = max(counts)
        sets = [s if len(s) == biggest else _repeat(s, min(BALANCE_CAP, round(biggest / len(s)))) for s in sets]
    data = ImageSet(np.concatenate([s.images for s in sets]), None, (), sum((s.names for s in sets), []), sum((s.skipped for s in sets), []))
    parts = ", ".join(f"{spec}: {c}" + (f" (x{len(s) // c})" if len(s) != c else "") for spec, c, s in zip(options["data"], counts, sets))
    click.echo(f"data: {len(data)} images {size}x{size} ({parts}); skipped {len(data.skipped)} unreadable")
    for line in data.skipped[:5]:
        click.echo(f"  skipped: {line}", err=True)
    return data


def _repeat(s, times):
    from data_pipelines import ImageSet

    return ImageSet(np.concatenate([s.images] * times), None, (), s.names * times, s.skipped) if times > 1 else s


def fit_vae(run_dir, options, resumed, data, strategy=None):
    from keras import layers

    from data_pipelines import make_dataset
    from keras_models.vae import build_vae

    preset, size = _preset(options["preset"], options["image_size"])
    keras.utils.set_random_seed(options["seed"])
    bs = options["batch_size"]
    n = len(data)
    steps = math.ceil(max(n, options.get("epoch_size") or 0) / bs)
    augment = layers.RandomFlip("horizontal", seed=options["seed"]) if options.get("flip", True) else None
    ds = distribute_arrays(strategy, lambda x, _, batch: make_dataset(x, None, batch, training=True, seed=options["seed"], augment=augment, repeat=True),
                           data.images, None, bs)

    with scope(strategy):  # variables (model and optimizer) under the strategy
        model = build_vae(preset, size, beta=options.get("beta", 1.0), seed=options["seed"])
        prepare_model(model, strategy)
        model.compile(optimizer=keras.optimizers.Adam(options["lr"]))
    write_json(os.path.join(run_dir, "vae.json"), {
        "preset": preset.to_dict(), "image_size": size, "z_dim": preset.z_dim, "beta": options.get("beta", 1.0),
        "encoder": "encoder.keras: float32 RGB 0..255 (N,H,W,3) -> [z_mean, z_log_var] (N,z_dim) each",
        "decoder": "decoder.keras: z (N,z_dim) -> float32 RGB 0..1 (N,H,W,3)",
    })
    noise = np.random.default_rng(options["seed"]).standard_normal((SAMPLE_GRID[0] * SAMPLE_GRID[1], preset.z_dim)).astype("float32")
    callbacks = _keep_backup(training_callbacks(run_dir, resumed)) + [SampleGrid(run_dir, model.decoder, noise),
                                                                    SaveModels(run_dir, model.encoder, model.decoder)]
    click.echo(f"training {model.name}: {n} images, {steps} steps of {bs} per epoch, {options['epochs']} epochs -> {run_dir}")
    model.fit(ds, epochs=options["epochs"], steps_per_epoch=steps, callbacks=callbacks, shuffle=False,
              verbose=fit_verbosity())
    save_models(run_dir, model.encoder, model.decoder)
    write_plots(run_dir, model.encoder, model.decoder, data.images, options["seed"])
    click.echo(f"done: {run_dir} (encoder.keras, decoder.keras, loss.png, latent_distribution.png, reconstructions.png, new_faces.png)")


def _keep_backup(callbacks):
    """The shared BackupAndRestore deletes backup/ when training ends; keep it, so that a finished
    run can be resumed with more --epochs."""
    out = []
    for cb in callbacks:
        if isinstance(cb, keras.callbacks.BackupAndRestore):
            cb = keras.callbacks.BackupAndRestore(cb.backup_dir, delete_checkpoint=False)
        out.append(cb)
    return out


def _save_png(path: str, array: np.ndarray, scale: int = 1):
    from PIL import Image

    img = Image.fromarray(array)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    with atomic_path(path, ".png") as tmp:
        img.save(tmp, format="PNG")


def _decode(decoder, z, batch=64) -> np.ndarray:
    from keras_models.vae.latent import to_uint8

    return to_uint8(decoder.predict(np.asarray(z, np.float32), batch_size=batch, verbose=0))


def _encode(encoder, images, batch=64) -> np.ndarray:
    z_mean, _ = encoder.predict(np.asarray(images, np.float32), batch_size=batch, verbose=0)
    return z_mean


def save_models(run_dir, encoder, decoder):
    """encoder.keras and decoder.keras, each written atomically."""
    for name, m in (("encoder.keras", encoder), ("decoder.keras", decoder)):
        with atomic_path(os.path.join(run_dir, name)) as tmp:
            m.save(tmp)


class SampleGrid(keras.callbacks.Callback):
    """samples/epoch_XXXX.png: the decoder on fixed noise after every epoch (numbering survives --resume)."""

    def __init__(self, run_dir, decoder, noise):
        super().__init__()
        self.dir = os.path.join(run_dir, "samples")
        os.makedirs(self.dir, exist_ok=True)
        self.decoder, self.noise = decoder, noise

    def on_epoch_end(self, epoch, logs=None):
        from keras_models.vae.latent import tile

        rows, cols = SAMPLE_GRID
        _save_png(os.path.join(self.dir, f"epoch_{epoch + 1:04d}.png"), tile(_decode(self.decoder, self.noise), rows, cols))


class SaveModels(keras.callbacks.Callback):
    """encoder.keras / decoder.keras after every epoch, so the latent tools work on a run in progress."""

    def __init__(self, run_dir, encoder, decoder):
        super().__init__()
        self.run_dir, self.encoder, self.decoder = run_dir, encoder, decoder

    def on_epoch_end(self, epoch, logs=None):
        save_models(self.run_dir, self.encoder, self.decoder)


def write_plots(run_dir, encoder, decoder, images, seed=0):
    """loss.png, latent_distribution.png, reconstructions.png, new_faces.png (reference 001's figures)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    from keras_models.vae.latent import tile

    def save(fig, name):
        with atomic_path(os.path.join(run_dir, name), ".png") as tmp:
            fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
        plt.close(fig)

    # Loss curves from log.csv (covers resumed runs).
    rows = []
    log = os.path.join(run_dir, "log.csv")
    if os.path.exists(log):
        with open(log, newline="") as f:
            rows = list(csv.DictReader(f))
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.5))
    for ax, key, title in zip(axes, ("total_loss", "reconstruction_loss", "kl_loss"), ("total", "reconstruction", "KL")):
        vals = [(int(r["epoch"]) + 1, float(r[key])) for r in rows if r.get(key) not in (None, "")]
        if vals:
            ax.plot(*zip(*vals), marker="o" if len(vals) < 30 else None)
        ax.set_title(f"{title} loss")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    save(fig, "loss.png")

    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(images), size=min(len(images), 2000), replace=False))
    z = _encode(encoder, images[pick])
    dims = min(HIST_DIMS, z.shape[1])
    cols = 10
    r = math.ceil(dims / cols)
    fig, axes = plt.subplots(r, cols, figsize=(cols * 1.6, r * 1.4), squeeze=False)
    xs = np.linspace(-3, 3, 100)
    pdf = np.exp(-0.5 * xs**2) / np.sqrt(2 * np.pi)
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= dims:
            ax.axis("off")
            continue
        ax.hist(z[:, i], bins=20, range=(-3, 3), density=True, color="tab:blue", alpha=0.7)
        ax.plot(xs, pdf, color="tab:orange", lw=1)
        ax.set_title(str(i), fontsize=7)
    fig.suptitle(f"z_mean over {len(z)} images (first {dims} dims) vs N(0,1)")
    save(fig, "latent_distribution.png")

    # Reconstructions: originals (top) and decoded z_mean (bottom), spread over all sources.
    k = min(10, len(images))
    idx = np.linspace(0, len(images) - 1, k).astype(int)
    recon = _decode(decoder, _encode(encoder, images[idx]))
    pairs = np.concatenate([images[idx], recon])
    _save_png(os.path.join(run_dir, "reconstructions.png"), tile(pairs, 2, k), scale=2)

    new = _decode(decoder, rng.standard_normal((30, z.shape[1])).astype(np.float32))
    _save_png(os.path.join(run_dir, "new_faces.png"), tile(new, 3, 10), scale=2)


# --------------------------------------------------------------------------- latent tools


def load_run_models(run_dir: str):
    """(encoder, decoder, image_size) of a finished VAE run."""
    if not os.path.isdir(run_dir):
        raise UserError(f"run directory not found: {run_dir}")
    paths = [os.path.join(run_dir, n) for n in ("encoder.keras", "decoder.keras")]
    for p in paths:
        if not os.path.isfile(p):
            raise UserError(f"no {os.path.basename(p)} in {run_dir}: not a finished VAE run (train it, or --resume it)")
    try:
        encoder, decoder = (keras.saving.load_model(p) for p in paths)
    except Exception as e:  # a corrupt or foreign file
        raise UserError(f"cannot load the VAE in {run_dir}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    shape = encoder.inputs[0].shape
    if len(encoder.outputs) != 2 or len(shape) != 4 or shape[-1] != 3:
        raise UserError(f"{run_dir}/encoder.keras is not a VAE encoder (image -> [z_mean, z_log_var])")
    return encoder, decoder, int(shape[1])


def resolve_image(ref: str, size: int) -> tuple[np.ndarray, str]:
    """An image path, or a built-in face emoji by character or name ("grinning face", "smiling")."""
    from data_pipelines import DataError
    from data_pipelines.images import decode_image
    from data_pipelines.sources import emoji_entries

    if os.path.exists(ref):
        if os.path.isdir(ref):
            raise UserError(f"expected an image file, got a folder: {ref}")
        try:
            return decode_image(ref, size, 3), os.path.basename(ref)
        except DataError as e:
            raise UserError(str(e)) from None
    key = ref.strip().lower()
    entries = emoji_entries("faces")
    found = ([e for e in entries if e[1] == ref.strip()] or [e for e in entries if e[0] == key]
             or [e for e in entries if key and key in e[0]])
    if not found:
        try:
            found = [e for e in emoji_entries("all") if e[1] == ref.strip() or e[0] == key]
        except DataError:
            found = []
    if not found:
        if os.sep in ref or os.path.splitext(ref)[1]:
            raise UserError(f"image not found: {ref}")
        raise UserError(f"{ref!r} is neither an image file nor a built-in emoji (try a name such as 'grinning face' or the emoji itself)")
    name, char, path = found[0]
    return decode_image(path, size, 3, mode="pad"), f"{char} {name}"


def _check_out(out: str) -> str:
    d = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(d):
        raise UserError(f"output folder does not exist: {d}")
    if not os.access(d, os.W_OK):
        raise UserError(f"output folder is not writable: {d}")
    if os.path.isdir(out):
        raise UserError(f"--out is a folder, expected a .png file name: {out}")
    return out


def _save_gif(path: str, frames: np.ndarray, ms: int, scale: int):
    from PIL import Image

    imgs = [Image.fromarray(f).resize((f.shape[1] * scale, f.shape[0] * scale), Image.NEAREST) for f in frames]
    seq = imgs + imgs[-2:0:-1]  # there and back again
    durations = [ms] * len(seq)
    durations[0] = durations[len(imgs) - 1] = ms * 4
    with atomic_path(path, ".gif") as tmp:
        seq[0].save(tmp, format="GIF", save_all=True, append_images=seq[1:], duration=durations, loop=0)


@click.command("vae-morph")
@click.argument("run_dir", metavar="RUN")
@click.option("--a", "a", required=True, help="Start: an image file, or a built-in emoji (character or name).")
@click.option("--b", "b", required=True, help="End: an image file, or a built-in emoji (character or name).")
@click.option("--steps", type=click.IntRange(min=2, max=100), default=10, show_default=True)
@click.option("--out", required=True, help="Strip PNG; a GIF is written beside it (same name, .gif).")
@click.option("--inputs/--no-inputs", default=True, show_default=True, help="Show the two input images at the ends of the strip.")
@click.option("--scale", type=click.IntRange(min=1, max=8), default=2, show_default=True, help="Pixel upscaling of the outputs.")
@click.option("--ms", type=click.IntRange(min=10), default=120, show_default=True, help="GIF frame duration.")
def vae_morph(run_dir, a, b, steps, out, inputs, scale, ms):
    """Morph between two faces in a VAE's latent space: a strip PNG and a GIF (reference 001)."""
    from keras_models.vae.latent import interpolate, tile

    _check_out(out)
    encoder, decoder, size = load_run_models(run_dir)
    img_a, name_a = resolve_image(a, size)
    img_b, name_b = resolve_image(b, size)
    z = _encode(encoder, np.stack([img_a, img_b]))
    frames = _decode(decoder, interpolate(z[0], z[1], steps))
    strip = np.concatenate([img_a[None], frames, img_b[None]]) if inputs else frames
    _save_png(out, tile(strip, 1, len(strip)), scale)
    gif = os.path.splitext(out)[0] + ".gif"
    _save_gif(gif, frames, ms, scale)
    click.echo(f"morph {name_a} -> {name_b}, {steps} steps: {out}, {gif}")


@click.command("vae-attribute")
@click.argument("run_dir", metavar="RUN")
@click.option("--attr", required=True, help="Attribute word matched against image names, e.g. smile, cry, kiss, tears, angry.")
@click.option("--character", required=True, help="The face to change: an image file or a built-in emoji.")
@click.option("--out", required=True, help="Strip PNG: the character at each strength.")
@click.option("--strengths", default="-4,-3,-2,-1,0,1,2,3,4", show_default=True, help="Comma-separated multiples of the vector.")
@click.option("--attr-data", default="emoji:twemoji", show_default=True,
              help="Named images that define the attribute (emoji names, or the file names of a folder).")
@click.option("--scale", type=click.IntRange(min=1, max=8), default=2, show_default=True)
def vae_attribute(run_dir, attr, character, out, strengths, attr_data, scale):
    """Apply an attribute vector (mean z of matching images minus the rest) to a character at several strengths."""
    from data_pipelines import load_source
    from keras_models.vae.latent import apply_attribute, attribute_vector, name_matches, tile

    try:
        levels = [float(s) for s in strengths.split(",") if s.strip()]
    except ValueError:
        raise UserError(f"--strengths must be comma-separated numbers, got {strengths!r}") from None
    if not levels:
        raise UserError("--strengths is empty")
    _check_out(out)
    encoder, decoder, size = load_run_models(run_dir)
    img, name = resolve_image(character, size)
    group = load_source(attr_data, size, 3)
    positive = np.array([name_matches(n, attr) for n in group.names])
    if not positive.any() or positive.all():
        raise UserError(f"attribute {attr!r} matches {int(positive.sum())} of {len(group)} images in {attr_data}: need some with and some without")
    vector = attribute_vector(_encode(encoder, group.images), positive)
    z = _encode(encoder, img[None])[0]
    frames = _decode(decoder, apply_attribute(z, vector, levels))
    _save_png(out, tile(np.concatenate([img[None], frames]), 1, len(frames) + 1), scale)
    matched = [n for n, p in zip(group.names, positive) if p]
    click.echo(f"attribute {attr!r}: {len(matched)} of {len(group)} images ({', '.join(matched[:4])}{', ...' if len(matched) > 4 else ''}); "
               f"|v| = {np.linalg.norm(vector):.2f}; {name} at strengths {levels}: {out}")

# Expression emoji shown first in the morph panel (the rest of the face emoji follow in twemoji order).
FEATURED_EXPRESSIONS = ("😀", "😂", "😍", "😉", "😘", "😛", "😮", "😢", "😭", "😠", "😱", "😴", "🤔", "😐", "😎", "🥺")


def _round_z(z) -> list:
    return [round(float(v), 4) for v in z]


def _character_specs(run_dir: str, characters: tuple) -> tuple:
    """--characters, else the run's own non-emoji --data sources (its character faces)."""
    if characters:
        return characters
    import json

    opts_path = os.path.join(run_dir, "options.json")
    specs = ()
    if os.path.isfile(opts_path):
        with open(opts_path) as f:
            specs = tuple(s for s in json.load(f).get("data") or () if not s.startswith("emoji:"))
    if not specs:
        raise UserError(f"--characters is required: {run_dir} names no character images among its --data (give an image folder)")
    return specs


def _pick_characters(encoder, decoder, specs, size, count, pool):
    """(names, images, z_mean) of the `count` images of a pool of `pool` the VAE reconstructs best."""
    from data_pipelines import DataError, load_source

    names, images = [], []
    for spec in specs:
        try:
            s = load_source(spec, size, 3, limit=max(count, pool))
        except DataError as e:
            raise UserError(str(e)) from None
        names += [os.path.splitext(n)[0] for n in s.names]
        images.append(s.images)
    images = np.concatenate(images) if images else np.zeros((0, size, size, 3), np.uint8)
    if len(images) == 0:
        raise UserError(f"no images in {', '.join(specs)}")
    z = _encode(encoder, images)
    err = np.mean((decoder.predict(z, batch_size=64, verbose=0) - images / 255.0) ** 2, axis=(1, 2, 3))
    keep = np.sort(np.argsort(err, kind="stable")[:count])
    return [names[i] for i in keep], images[keep], z[keep]


def _expressions(spec: str, size: int, count: int):
    """(names, chars or None, images) of the expression images: face emoji with the featured ones first."""
    from data_pipelines import DataError, load_source
    from data_pipelines.images import decode_image
    from data_pipelines.sources import emoji_entries

    try:
        if spec.startswith("emoji:twemoji") and spec.partition("/")[2] in ("", "faces"):
            entries = emoji_entries("faces")
            rank = {c: i for i, c in enumerate(FEATURED_EXPRESSIONS)}
            entries = sorted(entries, key=lambda e: rank.get(e[1], len(rank)))[: count or None]
            images = np.stack([decode_image(p, size, 3, mode="pad") for _, _, p in entries])
            return [n for n, _, _ in entries], [c for _, c, _ in entries], images
        s = load_source(spec, size, 3, limit=count or None)
    except DataError as e:
        raise UserError(str(e)) from None
    if len(s) == 0:
        raise UserError(f"no images in {spec}")
    return [os.path.splitext(n)[0] for n in s.names], None, s.images


def write_latents(path: str, doc: dict):
    """Compact JSON (one line per face) written atomically."""
    import json

    def items(key):
        return ",\n".join("    " + json.dumps(e, ensure_ascii=False) for e in doc[key])

    head = {k: v for k, v in doc.items() if k not in ("characters", "expressions")}
    text = json.dumps(head, ensure_ascii=False, indent=2)[:-2]
    text += f',\n  "characters": [\n{items("characters")}\n  ],\n  "expressions": [\n{items("expressions")}\n  ]\n}}\n'
    with atomic_path(path, ".json") as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)


@click.command("vae-latents")
@click.argument("run_dir", metavar="RUN")
@click.option("--characters", multiple=True,
              help="Character images (a folder or any --data spec; repeatable). Default: the run's non-emoji --data.")
@click.option("--count", type=click.IntRange(min=1, max=200), default=12, show_default=True, help="Characters to keep.")
@click.option("--pool", type=click.IntRange(min=1), default=96, show_default=True,
              help="Characters considered: the first POOL images, of which the COUNT the VAE reconstructs best are kept.")
@click.option("--expressions", "expr_spec", default="emoji:twemoji", show_default=True,
              help="Expression images: the built-in face emoji (named, featured expressions first) or a folder.")
@click.option("--expression-count", type=click.IntRange(min=0), default=12, show_default=True,
              help="Expressions to keep (0: all; the keyboard's morph panel shows up to 12 of each).")
@click.option("--out", default=None, help="JSON file (default: RUN/latents.json, which `python -m export tflite RUN` ships).")
def vae_latents(run_dir, characters, count, pool, expr_spec, expression_count, out):
    """z_mean of character faces and expression emoji: the morph panel's latents file.

    Writes {"z_dim", "image_size", "characters": [{name, z}], "expressions": [{name, char, z}]}.
    """
    out = _check_out(out or os.path.join(run_dir, "latents.json"))
    specs = _character_specs(run_dir, characters)
    encoder, decoder, size = load_run_models(run_dir)
    c_names, _, c_z = _pick_characters(encoder, decoder, specs, size, count, pool)
    e_names, e_chars, e_images = _expressions(expr_spec, size, expression_count)
    e_z = _encode(encoder, e_images)
    expressions = [{"name": n, "z": _round_z(z)} for n, z in zip(e_names, e_z)]
    for e, c in zip(expressions, e_chars or ()):
        e["char"] = c
    doc = {
        "version": 1, "z_dim": int(c_z.shape[1]), "image_size": size, "run": os.path.abspath(run_dir),
        "characters_from": list(specs), "expressions_from": expr_spec,
        "note": "z_mean of each image from the run's encoder; the morph decodes (1 - t) * character.z + t * expression.z",
        "characters": [{"name": n, "z": _round_z(z)} for n, z in zip(c_names, c_z)],
        "expressions": expressions,
    }
    write_latents(out, doc)
    click.echo(f"latents: {len(c_names)} characters from {', '.join(specs)}, {len(expressions)} expressions "
               f"from {expr_spec}, z {doc['z_dim']}: {out}")


COMMANDS = [vae, vae_morph, vae_attribute, vae_latents]
