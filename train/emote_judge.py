"""`python -m train emote-judge`: the judge of expression emotes, trained on real emoji.

Each emoji image is labelled by its weights in an emoji map (the keyboard's emoji_map.json); the
judge learns those weights (soft targets, classes weighed to count alike) and is scored on the
argmax. Held out: one image of every emoji (the same emoji in the other sets is seen in
training), so the held-out accuracy is the judge's on a style of an emoji it has not seen.
The folder --out gets judge.keras and judge.json (held-out accuracy, per class, confusion matrix,
the split, the command).
"""

from __future__ import annotations

import os
import sys

import click
import numpy as np

from core.cli import UserError
from core.files import atomic_path, ensure_writable_dir, write_json
from core.labels import FER_LABELS
from core.metrics import confusion_matrix
from keras_models.dcgan.judge import judge_probs


def heldout_split(names, seed: int = 0) -> np.ndarray:
    """A boolean mask: one image of every emoji name that has two or more (a seeded pick)."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(names), bool)
    by_name: dict[str, list[int]] = {}
    for i, n in enumerate(names):
        by_name.setdefault(n, []).append(i)
    for n in sorted(by_name):
        if len(by_name[n]) > 1:
            mask[rng.choice(by_name[n])] = True
    return mask


def augment_batch(x: np.ndarray, rng) -> np.ndarray:
    """Shifts of up to 4 px (edge padding), mirror images, brightness and contrast jitter, in [-1, 1]."""
    n, h, w, _ = x.shape
    p = 4
    padded = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), mode="edge")
    dy, dx = rng.integers(0, 2 * p + 1, n), rng.integers(0, 2 * p + 1, n)
    out = np.stack([padded[i, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])
    flip = rng.random(n) < 0.5
    out[flip] = out[flip, :, ::-1]
    mean = out.mean(axis=(1, 2, 3), keepdims=True)
    out = (out - mean) * rng.uniform(0.8, 1.2, (n, 1, 1, 1)) + mean + rng.uniform(-0.15, 0.15, (n, 1, 1, 1))
    return np.clip(out, -1, 1).astype(np.float32)


def train_judge(images: np.ndarray, weights: np.ndarray, epochs: int, seed: int, batch_size: int = 32):
    """A judge fitted on uint8 images and their expression weights (soft targets)."""
    import keras
    import tensorflow as tf

    from keras_models.dcgan.judge import emote_judge

    keras.utils.set_random_seed(seed)
    model = emote_judge(images.shape[1], weights.shape[1])
    labels = weights.argmax(1)
    counts = np.bincount(labels, minlength=weights.shape[1]).astype(np.float64)
    class_w = np.where(counts > 0, len(labels) / (np.maximum(counts, 1) * max((counts > 0).sum(), 1)), 0.0)
    sample_w = class_w[labels].astype(np.float32)
    x_all = images.astype(np.float32) / 127.5 - 1.0
    rng = np.random.default_rng(seed)
    steps = max(1, len(x_all) // batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(2e-3, epochs * steps)
    opt = keras.optimizers.Adam(schedule)
    loss_fn = keras.losses.CategoricalCrossentropy(from_logits=True, reduction="none")

    @tf.function
    def step(x, y, w):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(loss_fn(y, model(x, training=True)) * w) / tf.reduce_sum(w)
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    for epoch in range(epochs):
        order = rng.permutation(len(x_all))
        losses = [float(step(augment_batch(x_all[b], rng), weights[b], sample_w[b]))
                  for b in (order[i * batch_size:(i + 1) * batch_size] for i in range(steps))]
        if (epoch + 1) % 10 == 0 or epoch + 1 == epochs:
            click.echo(f"epoch {epoch + 1}/{epochs}: loss {np.mean(losses):.3f}")
    return model


def scores(labels: np.ndarray, probs: np.ndarray, classes=FER_LABELS) -> dict:
    pred = probs.argmax(1)
    confusion = confusion_matrix(labels, pred, len(classes))
    per_class = {c: (round(float(confusion[i, i] / confusion[i].sum()), 4) if confusion[i].sum() else None) for i, c in enumerate(classes)}
    present = [v for v in per_class.values() if v is not None]
    return {"accuracy": round(float((pred == labels).mean()), 4), "balanced_accuracy": round(float(np.mean(present)), 4),
            "per_class": per_class, "count": int(len(labels)), "confusion": confusion.tolist(), "classes": list(classes)}


@click.command("emote-judge")
@click.option("--data", multiple=True, default=("emoji:all",), show_default=True,
              help="Emoji images (named emoji: emoji:<set> or emoji:all).")
@click.option("--condition", type=click.Path(exists=True, dir_okay=False), required=True,
              help="The emoji map whose weights label the emoji (mobile_demo/static/emoji_map.json).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder for judge.keras and judge.json.")
@click.option("--image-size", type=click.IntRange(32, 128), default=64, show_default=True)
@click.option("--epochs", type=click.IntRange(1, 1000), default=60, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def emote_judge_command(data, condition, out, image_size, epochs, seed):
    """Train the judge of expression emotes on real emoji; report its held-out accuracy."""
    from data_pipelines import load_sources
    from data_pipelines.expression_targets import with_expression_targets

    images, weights, left_out = with_expression_targets(load_sources(list(data), image_size, 3), condition)
    held = heldout_split(images.names, seed)
    if held.sum() == 0 or (~held).sum() < 2:
        raise UserError(f"the judge needs emoji with two or more images each (several sets); {', '.join(data)} has none")
    out = ensure_writable_dir(out)
    model = train_judge(images.images[~held], weights[~held], epochs, seed)
    report = scores(images.labels[held], judge_probs(model, images.images[held]))
    with atomic_path(os.path.join(out, "judge.keras")) as tmp:
        model.save(tmp)
    write_json(os.path.join(out, "judge.json"), {
        "heldout": report, "train_images": int((~held).sum()), "left_out_unnamed": left_out,
        "split": "held out: one image of every emoji (seeded), the other sets' images of it trained on",
        "data": list(data), "condition": condition, "epochs": epochs, "seed": seed,
        "command": "python -m train emote-judge " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["emote-judge"] else None})
    click.echo(f"judge: held-out accuracy {report['accuracy']:.1%} (balanced {report['balanced_accuracy']:.1%}) on {report['count']} "
               f"emoji images -> {os.path.join(out, 'judge.keras')}")


COMMANDS = [emote_judge_command]
