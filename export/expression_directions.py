"""Expression directions for the shipped generators, from the expression model's own tags (reference 002's
auto-tagging, with reference 001's latent attribute vectors): sample the generator, tag each sample with
the classifier (data_pipelines/tags.py), fit an InterFaceGAN boundary per expression in the latent space.

- StyleGAN (w space): each expression's unit normal, with the hair directions projected out (the slider
  changes the expression, the hair colour stays), added to the shipped directions file as a slider.
- VAE (z space): each expression's unit normal and its scale, added to the latents file as
  "expression_vectors": the morph's "character wearing the expression" decodes z_character + t * scale * vector.

Works on the exported `.tflite` files themselves (mapping, synthesis, decoder), so what is measured is what
the page runs. Every figure it prints is measured on held-out seeds, never the ones the boundary saw.
"""

from __future__ import annotations

import numpy as np

from core.images import to_uint8
from core.labels import FER_LABELS
from data_pipelines.tags import tag_images
from keras_models.common.noise import noise_for_ids
from keras_models.stylegan import directions as D

EXPRESSIONS = ("happy", "surprise", "sad", "angry")
HAIR = ("hair_brightness", "hair_hue_red", "hair_saturation")  # image scores that an expression slider must keep
KEEP_HAIR = ("hair_brightness", "hair_hue_red")  # shipped hair directions projected out of the expression ones
ALPHAS = (-2.0, -1.0, 0.0, 1.0, 2.0)


class Generator:
    """A one-input `.tflite` generator (z or w -> image), one example at a time."""

    def __init__(self, path: str, num_threads: int | None = None):
        from export.tflite import TFLiteRunner

        with open(path, "rb") as f:
            self.runner = TFLiteRunner(f.read(), num_threads=num_threads)

    def __call__(self, xs) -> np.ndarray:
        xs = np.asarray(xs, np.float32)
        outs = [self.runner.run_one(x) for x in xs]
        name = self.runner.output_names[0]
        return np.concatenate([o[name] for o in outs]).astype(np.float32)


def expression_index(name: str) -> int:
    return FER_LABELS.index(name)


def tag(classifier, images) -> np.ndarray:
    """Tags of generated faces: the mean of the face's and its mirror image's probabilities."""
    return tag_images(classifier, images, mirror=True)


def logit(p) -> np.ndarray:
    p = np.clip(np.asarray(p, np.float64), 1e-6, 1 - 1e-6)
    return np.log(p) - np.log1p(-p)


def boundary(latents, probs, names=EXPRESSIONS, fraction: float = 0.3) -> dict:
    """{expression: (unit normal in latent space, training accuracy)}: InterFaceGAN on the top and bottom
    `fraction` of each expression's probability (ranked as its logit)."""
    return D.fit_boundaries(latents, {n: logit(probs[:, expression_index(n)]) for n in names}, fraction=fraction)


def project_out(v, others) -> np.ndarray:
    """`v` with the span of `others` removed, renormalised."""
    v = np.asarray(v, np.float64)
    if len(others):
        q, _ = np.linalg.qr(np.stack([np.asarray(o, np.float64) for o in others], axis=1))
        v = v - q @ (q.T @ v)
    return v / (np.linalg.norm(v) + 1e-12)


def rises(p) -> dict:
    """How the probability of an expression moves along its slider, for probabilities (seeds, len(ALPHAS)):
    the share of seeds where it is higher at +2 than at 0 and at 0 than at -2 ("rises"), at +2 than at 0,
    and the mean probability at each alpha."""
    p = np.asarray(p, np.float64)
    i0, ip, im = ALPHAS.index(0.0), ALPHAS.index(2.0), ALPHAS.index(-2.0)
    return {"rises": float(np.mean((p[:, ip] > p[:, i0]) & (p[:, i0] > p[:, im]))),
            "higher_at_plus2": float(np.mean(p[:, ip] > p[:, i0])),
            "mean_prob": {f"{a:+g}": float(m) for a, m in zip(ALPHAS, p.mean(0))}}


# --------------------------------------------------------------------------- StyleGAN


def stylegan_images(synthesis: Generator, ws) -> np.ndarray:
    return to_uint8(synthesis(ws))


def stylegan_ws(mapping: Generator, ids, w_avg, psi: float) -> np.ndarray:
    z = noise_for_ids(list(ids), int(mapping.runner.interp.get_input_details()[0]["shape"][-1]))
    return D.truncate(mapping(z), w_avg, psi)


def stylegan_directions(doc: dict, mapping: Generator, synthesis: Generator, classifier, n: int = 10000,
                        seed: int = 2_000_000, test: int = 50, names=EXPRESSIONS, log=print) -> dict:
    """The directions document `doc` (as JSON, as shipped) with an entry per expression: its vector, scale,
    training accuracy and the held-out effect (`rises` along the slider; the hair scores' change from
    -2 to +2 in standard deviations of the samples)."""
    w_avg, psi = np.asarray(doc["w_avg"], np.float32), float(doc.get("psi", 0.8))
    ws = stylegan_ws(mapping, range(seed, seed + n), w_avg, psi)
    images = stylegan_images(synthesis, ws)
    probs = tag(classifier, images)
    log(f"tagged {n} StyleGAN samples: top class " + ", ".join(
        f"{c} {int((probs.argmax(1) == i).sum())}" for i, c in enumerate(FER_LABELS)))
    hair_sd = {k: float(np.std(v)) + 1e-9 for k, v in D.image_scores(images).items() if k in HAIR}
    keep = [np.asarray(doc["directions"][h]["vector"], np.float64) for h in KEEP_HAIR if h in doc["directions"]]
    fitted = boundary(ws, probs, names)
    out = dict(doc, directions=dict(doc["directions"]))
    test_ws = stylegan_ws(mapping, range(seed + n, seed + n + test), w_avg, psi)
    for name, (raw, acc) in fitted.items():
        v = project_out(raw, keep)
        scale = float((ws @ v).std())
        entry = {"vector": v, "scale": scale}
        along = [stylegan_images(synthesis, D.apply_edits(test_ws, {name: entry}, {name: a})) for a in ALPHAS]
        p = np.stack([tag(classifier, im)[:, expression_index(name)] for im in along], axis=1)
        lo, hi = D.image_scores(along[0]), D.image_scores(along[-1])
        hair = {k: float(np.mean(hi[k] - lo[k]) / hair_sd[k]) for k in hair_sd}
        effect = dict(rises(p), hair_change_std=hair, seeds=test)
        out["directions"][name] = {"vector": [float(a) for a in v], "scale": scale, "kind": "interfacegan-tags",
                                   "accuracy": float(acc), "effect": effect,
                                   "description": f"the expression model's {name} probability: less <-> more {name}"}
        log(f"{name}: boundary accuracy {acc:.3f}, rises for {effect['rises'] * 100:.0f} % of {test} held-out seeds "
            f"(higher at +2 than at 0: {effect['higher_at_plus2'] * 100:.0f} %), hair change "
            + ", ".join(f"{k} {v:+.2f} sd" for k, v in hair.items()))
    out["expressions"] = {"samples": n, "first_id": seed, "classifier_sha256": getattr(classifier, "sha256", None),
                          "method": "InterFaceGAN on the classifier's probability (top/bottom 30 %), hair directions projected out"}
    return out


# --------------------------------------------------------------------------- VAE


def emoji_likeness(images) -> np.ndarray:
    """The share of emoji-yellow pixels (R > .75, G > .55, B < .45) in each uint8 RGB image: the VAE decodes
    characters and emoji from one z space, and a random z is often an emoji."""
    x = np.asarray(images, np.float32) / 255.0
    return ((x[..., 0] > 0.75) & (x[..., 1] > 0.55) & (x[..., 2] < 0.45)).mean((1, 2))


CHARACTER_YELLOW = 0.02  # a decoded sample with less emoji yellow than this is a character


def vae_expression_vectors(decoder: Generator, classifier, z_dim: int, n: int = 8000, seed: int = 3_000_000,
                           characters=(), expressions=(), names=EXPRESSIONS, log=print) -> dict:
    """{expression: {"vector", "scale", "accuracy", "effect"}} in the VAE's z space, found within the characters:
    `n` N(0, 1) samples are decoded, those that decode to a character (emoji_likeness) are tagged, and each
    expression's InterFaceGAN normal has the character <-> emoji axes projected out (the emoji boundary of the
    samples, and the mean character z minus the mean expression-emoji z of the latents file), so that the
    character keeps its look and gains the expression. The effect is measured on the shipped `characters`."""
    z = np.random.default_rng(seed).standard_normal((n, z_dim)).astype(np.float32)
    images = to_uint8(decoder(z), low=0.0, high=1.0)
    yellow = emoji_likeness(images)
    chars = np.asarray([c["z"] for c in characters], np.float32).reshape(-1, z_dim)
    emoji = np.asarray([c["z"] for c in expressions], np.float32).reshape(-1, z_dim)
    axes = [D.fit_boundaries(z, {"emoji": yellow})["emoji"][0]]
    if len(chars) and len(emoji):
        axes.append(chars.mean(0) - emoji.mean(0))
    keep = yellow < CHARACTER_YELLOW
    z, images = z[keep], images[keep]
    probs = tag(classifier, images)
    log(f"tagged {len(z)} VAE samples that decode to a character (of {n}): top class " + ", ".join(
        f"{c} {int((probs.argmax(1) == i).sum())}" for i, c in enumerate(FER_LABELS)))
    out = {}
    for name, (raw, acc) in boundary(z, probs, names).items():
        v = project_out(raw, axes)
        scale = float((z @ v).std())
        entry = {"vector": [round(float(a), 5) for a in v], "scale": scale, "accuracy": float(acc)}
        if len(chars):
            p = np.stack([tag(classifier, to_uint8(decoder(chars + a * scale * v.astype(np.float32)), low=0.0,
                                                   high=1.0))[:, expression_index(name)] for a in ALPHAS], axis=1)
            entry["effect"] = dict(rises(p), characters=len(chars))
            log(f"{name}: boundary accuracy {acc:.3f}; on the {len(chars)} characters p({name}) is higher at +2 than "
                f"at 0 for {entry['effect']['higher_at_plus2'] * 100:.0f} %, rises -2 < 0 < +2 for "
                f"{entry['effect']['rises'] * 100:.0f} %; mean p " + ", ".join(
                    f"{k} {v:.3f}" for k, v in entry["effect"]["mean_prob"].items()))
        out[name] = entry
    return out


def sheet(decode, latents, vector, scale, alphas=(0.0, 1.0, 2.0, 3.0)) -> np.ndarray:
    """Rows of images, one row a latent, along `vector` at `alphas` (uint8, N*len(alphas), H, W, 3)."""
    latents = np.asarray(latents, np.float32)
    steps = [decode(latents + a * scale * np.asarray(vector, np.float32)) for a in alphas]
    return np.stack(steps, 1).reshape(-1, *steps[0].shape[1:])
