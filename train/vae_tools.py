"""The latent tools of a trained VAE run: `python -m train vae-morph`, `vae-attribute` and `vae-latents`
(the keyboard's morph panel's latents.json). They read the run's encoder.keras and decoder.keras."""

from __future__ import annotations

import json
import os

import click
import numpy as np

from core.cli import UserError
from core.files import atomic_path, read_options_file
from core.images import bounce_gif, grid, save_png


def load_run_models(run_dir: str):
    """(encoder, decoder, image_size) of a finished VAE run."""
    import keras

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
    from core.errors import DataError
    from data_pipelines.emoji_sets import emoji_entries
    from data_pipelines.images import decode_image

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
    from keras_models.vae.latent import decode, encode, interpolate

    _check_out(out)
    encoder, decoder, size = load_run_models(run_dir)
    img_a, name_a = resolve_image(a, size)
    img_b, name_b = resolve_image(b, size)
    z = encode(encoder, np.stack([img_a, img_b]))
    frames = decode(decoder, interpolate(z[0], z[1], steps))
    strip = np.concatenate([img_a[None], frames, img_b[None]]) if inputs else frames
    save_png(out, grid(strip, cols=len(strip), rows=1), scale)
    gif = os.path.splitext(out)[0] + ".gif"
    bounce_gif(gif, frames, ms, scale)
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
    from keras_models.vae.latent import apply_attribute, attribute_vector, decode, encode, name_matches

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
        raise UserError(f"attribute {attr!r} matches {int(positive.sum())} of {len(group)} images in {attr_data}: need some "
                        "with and some without")
    vector = attribute_vector(encode(encoder, group.images), positive)
    z = encode(encoder, img[None])[0]
    frames = decode(decoder, apply_attribute(z, vector, levels))
    save_png(out, grid(np.concatenate([img[None], frames]), cols=len(frames) + 1, rows=1), scale)
    matched = [n for n, p in zip(group.names, positive) if p]
    click.echo(f"attribute {attr!r}: {len(matched)} of {len(group)} images "
               f"({', '.join(matched[:4])}{', ...' if len(matched) > 4 else ''}); "
               f"|v| = {np.linalg.norm(vector):.2f}; {name} at strengths {levels}: {out}")


# Expression emoji shown first in the morph panel (the rest of the face emoji follow in twemoji order).
FEATURED_EXPRESSIONS = ("😀", "😂", "😍", "😉", "😘", "😛", "😮", "😢", "😭", "😠", "😱", "😴", "🤔", "😐", "😎", "🥺")


def _round_z(z) -> list:
    return [round(float(v), 4) for v in z]


def portable_path(path: str) -> str:
    """A path as a shipped file may name it: relative to the working directory when it lies inside
    it, else (an absolute path of this machine elsewhere) the last two parts (`runs/00008-vae-...`);
    data specs (emoji:..., tfds:...) unchanged."""
    if ":" in path.split(os.sep)[0] and not os.path.isabs(path):
        return path
    absolute = os.path.abspath(path)
    rel = os.path.relpath(absolute, os.getcwd())
    if not rel.startswith(os.pardir + os.sep) and rel != os.pardir:
        return rel.replace(os.sep, "/")
    if not os.path.isabs(path):  # ../shared/data/faces: relative already, and names no machine
        return os.path.normpath(path).replace(os.sep, "/")
    parts = os.path.normpath(absolute).split(os.sep)
    return "/".join(parts[-2:])


def _character_specs(run_dir: str, characters: tuple) -> tuple:
    """--characters, else the run's own non-emoji --data sources (its character faces)."""
    if characters:
        return characters
    opts_path = os.path.join(run_dir, "options.json")
    specs = ()
    if os.path.isfile(opts_path):
        specs = tuple(s for s in read_options_file(opts_path).get("data") or () if isinstance(s, str) and not s.startswith("emoji:"))
    if not specs:
        raise UserError(f"--characters is required: {run_dir} names no character images among its --data (give an image folder)")
    return specs


def _pick_characters(encoder, decoder, specs, size, count, pool):
    """(names, images, z_mean) of the `count` images of a pool of `pool` the VAE reconstructs best."""
    from core.errors import DataError
    from data_pipelines import load_source
    from keras_models.vae.latent import encode

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
    z = encode(encoder, images)
    err = np.mean((decoder.predict(z, batch_size=64, verbose=0) - images / 255.0) ** 2, axis=(1, 2, 3))
    keep = np.sort(np.argsort(err, kind="stable")[:count])
    return [names[i] for i in keep], images[keep], z[keep]


def _expressions(spec: str, size: int, count: int):
    """(names, chars or None, images) of the expression images: face emoji with the featured ones first."""
    from core.errors import DataError
    from data_pipelines import load_source
    from data_pipelines.emoji_sets import emoji_entries
    from data_pipelines.images import decode_image

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
    from keras_models.vae.latent import encode

    out = _check_out(out or os.path.join(run_dir, "latents.json"))
    specs = _character_specs(run_dir, characters)
    encoder, decoder, size = load_run_models(run_dir)
    c_names, _, c_z = _pick_characters(encoder, decoder, specs, size, count, pool)
    e_names, e_chars, e_images = _expressions(expr_spec, size, expression_count)
    e_z = encode(encoder, e_images)
    expressions = [{"name": n, "z": _round_z(z)} for n, z in zip(e_names, e_z)]
    for e, c in zip(expressions, e_chars or ()):
        e["char"] = c
    doc = {
        "version": 1, "z_dim": int(c_z.shape[1]), "image_size": size, "run": portable_path(run_dir),
        "characters_from": [portable_path(s) for s in specs], "expressions_from": expr_spec,
        "note": "z_mean of each image from the run's encoder; the morph decodes (1 - t) * character.z + t * expression.z",
        "characters": [{"name": n, "z": _round_z(z)} for n, z in zip(c_names, c_z)],
        "expressions": expressions,
    }
    write_latents(out, doc)
    click.echo(f"latents: {len(c_names)} characters from {', '.join(specs)}, {len(expressions)} expressions "
               f"from {expr_spec}, z {doc['z_dim']}: {out}")


COMMANDS = [vae_morph, vae_attribute, vae_latents]
