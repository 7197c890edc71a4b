"""python -m train.npz_teacher DATA.npz --out DIR [--arch vgg-fer] [--epochs N]

Trains an expression classifier to serve as a teacher (`python -m train expression --soft-labels
DIR/soft_labels.npz`, or `--teacher DIR/teacher.keras`) from an image set written by `python -m data_pipelines npz`. It runs on Keras 3's
JAX backend by default and imports no TensorFlow, so the expensive teacher can train on an
accelerator machine that has JAX (or PyTorch) but not TensorFlow; the `.keras` file it writes loads
in TensorFlow. The recipe is the expression trainer's (keras_models/expression/recipe.py: AdamW on
a warm-up + cosine schedule, label smoothing, sqrt class weights), with Keras' own augmentation
layers (flip, rotation, shift, zoom) in place of the tf.data ones.

DIR gets soft_labels.npz (the final model's probabilities for the training images, averaged with
their mirror images': what `python -m train expression --soft-labels` distils from, and small
enough to bring back when the teacher is not), teacher.keras (the best validation accuracy, else
the best training accuracy; its augmentation layers are inactive at inference), log.csv, backup/
(the one resume mechanism: --resume continues DIR) and teacher.json (the figures, the backend and
its devices, the wall time).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time

import click

from core.cli import UserError, run_cli

BACKENDS = ("auto", "jax", "torch", "tensorflow")


def choose_backend(name: str) -> str:
    """Sets KERAS_BACKEND before Keras loads: auto = $KERAS_BACKEND, else the first of JAX,
    TensorFlow and PyTorch that is installed."""
    if name == "auto":
        name = os.environ.get("KERAS_BACKEND") or next(
            (b for b in ("jax", "tensorflow", "torch") if importlib.util.find_spec(b)), "jax")
    if "keras" in sys.modules:
        loaded = sys.modules["keras"].backend.backend()
        if loaded != name:
            raise UserError(f"Keras is already loaded with the {loaded} backend; run this as its own process for --backend {name}")
    elif importlib.util.find_spec(name) is None:
        raise UserError(f"--backend {name}: the {name} package is not installed")
    os.environ["KERAS_BACKEND"] = name
    return name


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("data", type=click.Path(dir_okay=False))
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Run folder: new or empty, or with --resume the one to continue.")
@click.option("--arch", default="vgg-fer", show_default=True, help="emonet-s, emonet-s2, emonet-xs, vgg-fer or vggface-resnet50.")
@click.option("--epochs", type=click.IntRange(min=1), default=60, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=128, show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None, help="Peak learning rate (default: the architecture's).")
@click.option("--weight-decay", type=click.FloatRange(min=0), default=0.01, show_default=True)
@click.option("--label-smoothing", type=click.FloatRange(0, 1), default=0.1, show_default=True)
@click.option("--class-weight", type=click.Choice(["none", "balanced", "sqrt"]), default="sqrt", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--time-limit", type=click.FloatRange(min=0.1), default=None,
              help="Minutes: stop after the epoch that would pass it; --resume continues.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its backup/.")
@click.option("--backend", type=click.Choice(BACKENDS), default="auto", show_default=True,
              help="Keras backend; auto = $KERAS_BACKEND, else JAX, TensorFlow or PyTorch, the first installed.")
def main(data, out, arch, epochs, batch_size, lr, weight_decay, label_smoothing, class_weight, seed, time_limit, resume, backend):
    """Train a teacher classifier from DATA.npz without TensorFlow (Keras 3 on JAX by default)."""
    from core.npz import read_npz
    from keras_models.expression import get_preset

    preset = get_preset(arch)
    backend = choose_backend(backend)
    if resume and not os.path.isdir(os.path.join(out, "backup")):
        raise UserError(f"--resume: {out} has no backup/ to continue")
    if not resume and os.path.isdir(out) and os.listdir(out):
        raise UserError(f"--out {out} is not empty (add --resume to continue the run in it)")
    sets = dict(read_npz(data), path=data)  # before the folder exists: bad data leaves nothing behind
    os.makedirs(out, exist_ok=True)
    t0 = time.monotonic()
    figures = train_teacher(sets, out, preset, epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                            label_smoothing=label_smoothing, class_weight=class_weight, seed=seed, time_limit=time_limit,
                            resumed=resume)
    from core.files import write_json

    figures.update(data=data, arch=arch, backend=backend, devices=_devices(backend), wall_s=round(time.monotonic() - t0, 1),
                   epochs=epochs, batch_size=batch_size, train_images=int(len(sets["x_train"])), labels=sets["labels"])
    write_json(os.path.join(out, "teacher.json"), figures)
    acc = figures.get("val_accuracy")
    click.echo(f"done: {os.path.join(out, 'teacher.keras')} ({backend} on {figures['devices']}"
               + (f"; best validation accuracy {acc:.4f}" if acc is not None else "") + ")")


def train_teacher(sets, out, preset, *, epochs, batch_size, lr, weight_decay, label_smoothing, class_weight, seed, time_limit, resumed):
    import keras
    import numpy as np

    from core.npz import images_digest, write_soft_labels
    from keras_models.expression import build_classifier
    from keras_models.expression.recipe import class_weights, compile_for_training
    from train.common import best_so_far, fit_verbosity, training_callbacks
    from train.resume import check_can_continue, epochs_done

    keras.utils.set_random_seed(seed)
    k = len(sets["labels"])

    def prepare(x):  # the architecture's channels (grey repeated, or RGB averaged), as float 0..255
        x = x.astype("float32")
        if x.shape[-1] != preset.channels:
            x = np.repeat(x, preset.channels, -1) if x.shape[-1] == 1 else x.mean(-1, keepdims=True)
        return x

    x, y = prepare(sets["x_train"]), sets["y_train"]
    val = (prepare(sets["x_val"]), keras.utils.to_categorical(sets["y_val"], k)) if "x_val" in sets else None
    classifier = build_classifier(preset.name, k, image_size=x.shape[1])
    augment = keras.Sequential([keras.layers.RandomFlip("horizontal", seed=seed), keras.layers.RandomRotation(0.05, seed=seed),
                                keras.layers.RandomTranslation(0.1, 0.1, seed=seed), keras.layers.RandomZoom(0.1, seed=seed)],
                               name="augment")
    inputs = keras.Input(x.shape[1:], name="image")
    teacher = keras.Model(inputs, classifier(augment(inputs)), name=f"teacher_{classifier.name}")
    steps = -(-len(x) // batch_size)
    compile_for_training(teacher, lr or preset.lr, steps * epochs, weight_decay=weight_decay, label_smoothing=label_smoothing)
    if resumed:
        check_can_continue(out, epochs)
    monitor = "val_accuracy" if val else "accuracy"
    callbacks = training_callbacks(out, resumed, monitor, "max", time_limit, best_name="teacher.keras")
    teacher.fit(x, keras.utils.to_categorical(y, k), batch_size=batch_size, epochs=epochs, validation_data=val,
                          class_weight=class_weights(y, k, class_weight), callbacks=callbacks, verbose=fit_verbosity())
    # The final model's probabilities, averaged with the mirrored faces', for the student's --soft-labels.
    probs = (teacher.predict(x, batch_size=512, verbose=0) + teacher.predict(x[:, :, ::-1], batch_size=512, verbose=0)) / 2
    write_soft_labels(os.path.join(out, "soft_labels.npz"), probs, sets["labels"], images_digest(sets["x_train"]), source=sets["path"])
    figures = {"epochs_done": epochs_done(out), "train_accuracy_of_soft_labels": float(np.mean(probs.argmax(1) == y))}
    if val:
        figures["val_accuracy"] = best_so_far(out, "val_accuracy")
    return figures


def _devices(backend: str) -> str:
    try:
        if backend == "jax":
            import jax

            return ", ".join(sorted({d.device_kind for d in jax.devices()}))
        if backend == "torch":
            import torch

            return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    except Exception:  # noqa: BLE001 - a description only
        pass
    return "CPU" if backend == "tensorflow" else backend


if __name__ == "__main__":
    run_cli(main, "python -m train.npz_teacher")
