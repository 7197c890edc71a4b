"""`python -m train expression`: facial-expression classifiers on FER-2013 or any labelled folder."""

from __future__ import annotations

import math
import os

import click
import numpy as np

from train.cli_support import UserError
from train.common import common_options, dry_run, start_run, training_callbacks

DEFAULT_LR = {"emonet-s": 2e-3, "emonet-xs": 3e-3, "vgg-fer": 1e-3, "vggface-resnet50": 1e-4}


def augmenter(image_size: int, seed: int, strength: str = "004"):
    """004's augmentation as Keras preprocessing layers: flip, +-20 deg, +-20 % zoom, 4-px shifts."""
    import keras
    from keras import layers

    if strength == "none":
        return None
    shift = 4 / 40  # 40x40 crops of a 4-px padded image = shifts of up to 4 px at 40
    return keras.Sequential([
        layers.RandomFlip("horizontal", seed=seed),
        layers.RandomRotation(20 / 360, fill_mode="reflect", seed=seed + 1),
        layers.RandomZoom((-0.2, 0.2), fill_mode="reflect", seed=seed + 2),
        layers.RandomTranslation(shift, shift, fill_mode="reflect", seed=seed + 3),
    ], name="augment")


def class_weights(labels: np.ndarray, num_classes: int, kind: str):
    if kind == "none":
        return None
    counts = np.bincount(labels, minlength=num_classes).astype(float)
    counts = np.maximum(counts, 1)
    w = (counts.sum() / (num_classes * counts))
    if kind == "sqrt":
        w = np.sqrt(w)
    w = w / (w * counts).sum() * counts.sum()  # keep the mean weight per example at 1
    return {i: float(x) for i, x in enumerate(w)}


@click.command("expression")
@common_options({"epochs": 24, "batch_size": 128, "preset": None})
@click.option("--arch", type=click.Choice(["emonet-s", "emonet-xs", "vgg-fer", "vggface-resnet50"]), default="emonet-s", show_default=True)
@click.option("--val", "val_data", multiple=True, help="Validation data (default: the CSV's PublicTest rows, or none).")
@click.option("--usage", default=None, help="FER CSV rows to train on (default Training when --data is a CSV).")
@click.option("--weights", type=click.Path(), default=None, help="vggface-resnet50: rcmalli_vggface_tf_notop_resnet50.h5.")
@click.option("--class-weight", type=click.Choice(["none", "sqrt", "balanced"]), default="sqrt", show_default=True)
@click.option("--label-smoothing", type=float, default=0.1, show_default=True)
@click.option("--weight-decay", type=float, default=0.01, show_default=True, help="AdamW decoupled weight decay.")
@click.option("--augment", type=click.Choice(["004", "none"]), default="004", show_default=True)
@click.option("--fine-tune-epochs", type=int, default=None, help="vggface-resnet50: epochs with the top blocks unfrozen (default half).")
def expression(**options):
    """Train a facial-expression classifier (FER-2013 folders or CSV, or any labelled folder)."""
    from keras_models.expression import arch_spec

    spec = arch_spec(options["arch"])
    if not options["data"] and not options["resume"]:
        raise UserError("--data is required: a FER-2013 folder (train/<class>/...) or fer2013.csv")
    if options["weights"] and not os.path.isfile(options["weights"]):
        raise UserError(f"weights file not found: {options['weights']}")
    options["image_size"] = options["image_size"] or spec.image_size
    options["lr"] = options["lr"] or DEFAULT_LR[options["arch"]]
    if options["dry_run"]:
        dry_run(options)
        return
    run_dir, options, resumed = start_run("expression", options, f"{options['arch']}")
    fit_expression(run_dir, options, resumed)


def fit_expression(run_dir, options, resumed):
    import keras
    from data_pipelines import make_dataset
    from keras_models.expression import arch_spec, build_classifier

    keras.utils.set_random_seed(options["seed"])
    spec = arch_spec(options["arch"])
    size = options["image_size"]
    data = options["data"]
    csv_train = len(data) == 1 and data[0].lower().endswith(".csv")
    usage = options["usage"] or ("Training" if csv_train else None)
    train = _load(data, size, spec.channels, usage, options)
    labels = train.class_names
    val_specs = options["val_data"] or (data if csv_train else ())
    val = None
    if val_specs:
        val = _load(val_specs, size, spec.channels, "PublicTest" if val_specs == data else None, dict(options, limit=options["limit"]), labels)
    click.echo(f"train: {len(train)} images, classes {list(labels)}; skipped {len(train.skipped)} unreadable" + (f"; val: {len(val)}" if val else ""))
    for line in train.skipped[:5]:
        click.echo(f"  skipped: {line}", err=True)

    num_classes = len(labels)
    aug = augmenter(size, options["seed"], options["augment"])
    bs = options["batch_size"]
    train_ds = make_dataset(train.images, train.labels, bs, training=True, seed=options["seed"], augment=aug, num_classes=num_classes)
    val_ds = make_dataset(val.images, val.labels, 256, num_classes=num_classes) if val else None

    model = build_classifier(options["arch"], num_classes, size)
    if options["arch"] == "vggface-resnet50":
        if options["weights"]:
            from keras_models.expression.vggface import load_vggface_weights

            n = load_vggface_weights(model, options["weights"])
            click.echo(f"loaded {n} layers of VGGFace weights from {options['weights']}")
        else:
            click.echo("no --weights given: training vggface-resnet50 from scratch (expect far lower accuracy)", err=True)

    steps = math.ceil(len(train) / bs)
    total = steps * options["epochs"]
    warmup = min(steps, total // 10)
    schedule = keras.optimizers.schedules.CosineDecay(options["lr"] / 10, total - warmup, alpha=0.01,
                                                      warmup_target=options["lr"], warmup_steps=warmup)
    model.compile(
        optimizer=keras.optimizers.AdamW(schedule, weight_decay=options["weight_decay"]),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=options["label_smoothing"]),
        metrics=["accuracy"],
    )
    with open(os.path.join(run_dir, "labels.txt"), "w") as f:
        f.write("\n".join(labels) + "\n")
    cw = class_weights(train.labels, num_classes, options["class_weight"])
    callbacks = training_callbacks(run_dir, resumed, monitor="val_accuracy" if val else None)
    model.fit(train_ds, validation_data=val_ds, epochs=options["epochs"], callbacks=callbacks, class_weight=cw, verbose=2 if os.environ.get("EMOTEKIT_QUIET") else 1)
    last = os.path.join(run_dir, "last.keras")
    model.save(last)
    best = os.path.join(run_dir, "best.keras") if val else last
    if not os.path.exists(best):
        best = last
    if val:
        from train.evaluate import evaluate_model

        evaluate_model(best, val.images, val.labels, list(labels), os.path.join(run_dir, "eval_val.json"))
    click.echo(f"done: {run_dir} (model {best})")


def _load(specs, size, channels, usage, options, labels=None):
    from data_pipelines import load_sources

    return load_sources(specs, size, channels, labeled=True, class_names=labels, usage=usage,
                        limit=options["limit"], on_error=options["on_error"])
COMMANDS = [expression]
