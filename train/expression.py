"""`python -m train expression`: facial-expression classifiers on FER-2013 or any labelled folder."""

from __future__ import annotations

import math
import os
import shutil

import click
import numpy as np

from core.cli import UserError, user_errors
from core.files import atomic_path
from train import resume as R
from train.common import common_options, dry_run, fit_verbosity, start_run, training_callbacks
from train.distribute import distribute_arrays, is_default, prepare_model, scope, setup, with_class_weights, worker_out

AUGMENTS = ("affine", "none")
AUGMENT_ALIASES = {"004": "affine"}  # the value's first name (reference 004's recipe); runs made with it still resume


def augmenter(seed: int, strength: str = "affine"):
    """The training augmentation: "affine" = a random flip, +-20 deg, +-20 % zoom and 4-px shifts at 40 px
    (reference 004's recipe) in one projective transform per image, as one Keras layer; "none" = no layer."""
    from data_pipelines.augment import RandomAffine

    strength = AUGMENT_ALIASES.get(strength, strength)
    if strength == "none":
        return None
    return RandomAffine(rotation=20, zoom=0.2, shift=4 / 40, flip=True, seed=seed, name="augment")


@click.command("expression")
@common_options({"epochs": 24, "batch_size": 128, "preset": None})
@click.option("--arch", default="emonet-s", show_default=True, help="emonet-s, emonet-s2, emonet-xs, vgg-fer or vggface-resnet50.")
@click.option("--val", "val_data", multiple=True, help="Validation data (default: the CSV's PublicTest rows, or none).")
@click.option("--usage", default=None, help="FER CSV rows to train on (default Training when --data is a CSV).")
@click.option("--weights", type=click.Path(), default=None, help="vggface-resnet50: rcmalli_vggface_tf_notop_resnet50.h5.")
@click.option("--class-weight", type=click.Choice(["none", "sqrt", "balanced"]), default="sqrt", show_default=True)
@click.option("--label-smoothing", type=float, default=0.1, show_default=True)
@click.option("--weight-decay", type=float, default=0.01, show_default=True, help="AdamW decoupled weight decay.")
@click.option("--augment", type=click.Choice([*AUGMENTS, *AUGMENT_ALIASES]), default="affine", show_default=True,
              help="affine: random flip, rotation, zoom and shift; none. (004 is affine's old name.)")
@click.option("--fine-tune-epochs", type=click.IntRange(min=0), default=None, help="vggface-resnet50: epochs with the top blocks unfrozen (default half).")
@click.option("--fine-tune-stages", type=click.Choice(["5", "4-5"]), default="5", show_default=True,
              help="vggface-resnet50: ResNet stages unfrozen in phase 2 (at --lr / 10).")
@click.option("--teacher", default=None, metavar="RUN_OR_MODEL",
              help="Knowledge distillation from a trained classifier: a run directory (its best.keras) or a .keras file.")
@click.option("--soft-labels", default=None, metavar="FILE.npz",
              help="Distillation from a teacher's probabilities on the training images, precomputed by `python -m train.npz_teacher` "
                   "(e.g. on an accelerator) from `python -m data_pipelines npz` of the same --data.")
@click.option("--temperature", type=click.FloatRange(min=0, min_open=True), default=4.0, show_default=True, help="Distillation softmax temperature.")
@click.option("--alpha", type=click.FloatRange(0, 1), default=0.5, show_default=True, help="Weight of the hard-label loss with --teacher (the rest is distillation).")
@click.option("--init", "init_model", type=click.Path(dir_okay=False), default=None, metavar="MODEL.keras",
              help="Start from this classifier's weights (same --arch; a flip-averaged .keras gives its inner net), "
                   "e.g. to fine-tune the shipped model on other framing.")
@click.option("--mixup", type=click.FloatRange(min=0), default=0.0, show_default=True, help="Mixup Beta(a, a) parameter; 0 disables it.")
def expression(**options):
    """Train a facial-expression classifier (FER-2013 folders or CSV, or any labelled folder)."""
    from keras_models.expression import arch_spec
    from keras_models.expression.recipe import DEFAULT_LR

    try:
        spec = arch_spec(options["arch"])
    except ValueError as e:
        raise UserError(str(e)) from None
    if not options["data"] and not options["resume"]:
        raise UserError("--data is required: a FER-2013 folder (train/<class>/...) or fer2013.csv")
    if options["weights"] and not os.path.isfile(options["weights"]):
        raise UserError(f"weights file not found: {options['weights']}")
    if options["teacher"] and options.get("soft_labels"):
        raise UserError("--teacher and --soft-labels both give the teacher: choose one")
    if options.get("soft_labels") and not os.path.isfile(options["soft_labels"]):
        raise UserError(f"--soft-labels: no such file: {options['soft_labels']}")
    if options["teacher"]:
        options["teacher"] = resolve_teacher(options["teacher"])
    if options.get("init_model") and not os.path.isfile(options["init_model"]):
        raise UserError(f"--init: no such file: {options['init_model']}")
    options["image_size"] = options["image_size"] or spec.image_size
    options["lr"] = options["lr"] or DEFAULT_LR[options["arch"]]
    if options["dry_run"]:
        dry_run(options, "expression")
        return
    for spec in tuple(options["data"]) + tuple(options["val_data"]):
        if ":" not in spec.split(os.sep)[0] and not os.path.exists(spec):
            raise UserError(f"data path not found: {spec}")
    strategy = setup(options)  # before any other TensorFlow work (multi-worker needs that)
    options["out"] = worker_out(options["out"], strategy)
    run_dir, options, resumed = start_run("expression", options, f"{options['arch']}")
    try:
        fit_expression(run_dir, options, resumed, strategy)
    except user_errors():
        # Bad data found while loading: leave no empty run directory behind.
        if not resumed and not os.path.exists(os.path.join(run_dir, "log.csv")):
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def fit_expression(run_dir, options, resumed, strategy=None):
    import keras

    from data_pipelines import make_dataset
    from keras_models.expression import arch_spec, build_classifier
    from keras_models.expression.recipe import class_weights

    keras.utils.set_random_seed(options["seed"])
    spec = arch_spec(options["arch"])
    size = options["image_size"]
    data = options["data"]
    csv_train = len(data) == 1 and data[0].lower().endswith(".csv")
    usage = options["usage"] or ("Training" if csv_train else None)
    train = _load(data, size, spec.channels, usage, options)
    labels = train.class_names
    R.check_same_data(run_dir, len(train), resumed)
    val_specs = options["val_data"] or (data if csv_train else ())
    val = None
    if val_specs:
        val = _load(val_specs, size, spec.channels, "PublicTest" if val_specs == data else None, dict(options, limit=options["limit"]), labels)
    click.echo(f"train: {len(train)} images, classes {list(labels)}; skipped {len(train.skipped)} unreadable" + (f"; val: {len(val)}" if val else ""))
    for line in train.skipped[:5]:
        click.echo(f"  skipped: {line}", err=True)

    num_classes = len(labels)
    aug = augmenter(options["seed"], options["augment"])
    bs = options["batch_size"]
    cw = class_weights(train.labels, num_classes, options["class_weight"])
    y_train, y_val, packed = train.labels, val.labels if val else None, bool(options.get("soft_labels"))
    if packed:  # targets [one-hot | the teacher's probabilities]: shuffled and mixed up together
        eye = np.eye(num_classes, dtype=np.float32)
        y_train = np.concatenate([eye[train.labels], soft_labels(options["soft_labels"], train, labels)], axis=1)
        y_val = np.concatenate([eye[val.labels], eye[val.labels]], axis=1) if val else None
        click.echo(f"distilling from the soft labels in {options['soft_labels']} (T={options['temperature']}, alpha={options['alpha']})")
    fit_weights = is_default(strategy) and not packed  # else the pipeline adds them: fit's can't map these

    def make_train(x, y, batch):
        ds = make_dataset(x, y, batch, training=True, seed=options["seed"], augment=aug, num_classes=None if packed else num_classes,
                          drop_remainder=not is_default(strategy))  # replicas must get full batches
        ds = mixup(ds, options["mixup"], options["seed"]) if options.get("mixup") else ds
        return ds if fit_weights else with_class_weights(ds, cw, num_classes)

    train_ds = distribute_arrays(strategy, make_train, train.images, y_train, bs)
    val_ds = make_dataset(val.images, y_val, 256, num_classes=None if packed else num_classes) if val else None

    with scope(strategy):  # the model, the teacher and the optimizers are built under the strategy
        model = build_classifier(options["arch"], num_classes, size)
    prepare_model(model, strategy)
    vggface = options["arch"] == "vggface-resnet50"
    if vggface and not resumed:
        if options["weights"]:
            from keras_models.expression.vggface import load_vggface_weights

            try:
                n = load_vggface_weights(model, options["weights"])
            except (OSError, ValueError) as e:
                raise UserError(str(e)) from None
            click.echo(f"loaded {n} layers of VGGFace weights from {options['weights']}")
        else:
            click.echo("no --weights given: training vggface-resnet50 from scratch (expect far lower accuracy)", err=True)

    if options.get("init_model") and not resumed:
        with scope(strategy):
            init_weights(model, options["init_model"])
        click.echo(f"starting from the weights of {options['init_model']}")

    teacher = None
    if options.get("teacher"):
        with scope(strategy):
            teacher = load_teacher(options["teacher"], num_classes)
        click.echo(f"distilling from {options['teacher']} (T={options['temperature']}, alpha={options['alpha']})")

    with open(os.path.join(run_dir, "labels.txt"), "w") as f:
        f.write("\n".join(labels) + "\n")
    steps = math.ceil(len(train) / bs)
    epochs = options["epochs"]
    # vggface-resnet50: phase 1 trains the head on a frozen base, phase 2 also the top stages at lr / 10.
    phases = [(0, epochs, options["lr"], None)]
    if vggface:
        tune = options.get("fine_tune_epochs")
        tune = epochs // 2 if tune is None else min(tune, epochs)
        stages = tuple(int(s) for s in (options.get("fine_tune_stages") or "5").split("-"))
        first = epochs - tune
        phases = [p for p in ((0, first, options["lr"], ()), (first, epochs, options["lr"] / 10, stages)) if p[1] > p[0]]
    if resumed and len(phases) == 1:
        with scope(strategy):
            trainer = _compile(model, teacher, options, phases[0][2], steps * epochs)
        R.adopt_finished_run(run_dir, trainer, lambda t: _load_last(run_dir, model, t, steps))
    done = R.check_can_continue(run_dir, epochs) if resumed else 0
    last = os.path.join(run_dir, "last.keras")
    time_limit = R.TimeLimit(options.get("time_limit"), run_dir)  # one clock for every phase
    for phase, (start, end, lr, stages) in enumerate(phases):
        if stages is not None:
            from keras_models.expression.vggface import set_trainable_blocks

            n = set_trainable_blocks(model, stages)
            what = f"stages {'+'.join(map(str, stages))} unfrozen ({n} layers)" if stages else "base frozen"
            click.echo(f"epochs {start + 1}-{end}: {what}, lr {lr:g}")
        with scope(strategy):
            trainer = _compile(model, teacher, options, lr, steps * (end - start), warmup=start == 0)
        if done >= end:  # a resumed run finished this phase; the next starts from its backup
            if phase + 1 < len(phases) and not R.has_backup(run_dir, phase + 1):
                R.restore(trainer, run_dir, phase)
            continue
        callbacks = training_callbacks(run_dir, resumed or phase > 0, monitor="val_accuracy" if val else None,
                                       time_limit=time_limit, phase=phase)
        trainer.fit(train_ds, validation_data=val_ds, initial_epoch=start, epochs=end, callbacks=callbacks,
                    class_weight=cw if fit_weights else None, verbose=fit_verbosity())
        if time_limit.reached:
            break
    with atomic_path(last) as tmp:
        model.save(tmp)
    best = os.path.join(run_dir, "best.keras") if val else last
    if not os.path.exists(best):
        best = last
    if val:
        from train.evaluate import evaluate_model

        evaluate_model(best, val.images, val.labels, list(labels), os.path.join(run_dir, "eval_val.json"))
    click.echo(f"done: {run_dir} (model {best})")


def _compile(model, teacher, options, lr, total_steps, warmup=True):
    from keras_models.expression.recipe import compile_for_training

    return compile_for_training(model, lr, total_steps, weight_decay=options["weight_decay"], label_smoothing=options["label_smoothing"],
                                teacher=teacher, soft_targets=bool(options.get("soft_labels")), temperature=options["temperature"],
                                alpha=options["alpha"], warmup=warmup)


def soft_labels(path: str, train, labels) -> np.ndarray:
    """The teacher's probabilities for `train`'s images, checked to be for exactly these images."""
    from core.npz import images_digest, read_soft_labels

    soft = read_soft_labels(path)
    if soft["labels"] != list(labels):
        raise UserError(f"--soft-labels {path}: classes {soft['labels']} are not this data's {list(labels)}")
    if len(soft["probs"]) != len(train) or soft["images_sha1"] != images_digest(train.images):
        raise UserError(f"--soft-labels {path} was made for other training images ({len(soft['probs'])}, from {soft['source'] or '?'}); "
                        f"--data gives {len(train)}: make both from the same --data")
    return soft["probs"].astype(np.float32)


def _load_last(run_dir, model, trainer, steps) -> int:
    """A run finished before backup/ was kept: last.keras and the epochs in log.csv (the
    schedule goes on where it was; the optimizer's moments were not kept)."""
    last = os.path.join(run_dir, "last.keras")
    log = os.path.join(run_dir, "log.csv")
    if not (os.path.isfile(last) and os.path.isfile(log)):
        return 0
    with open(log) as f:
        done = max(sum(1 for line in f if line.strip()) - 1, 0)
    model.load_weights(last)
    trainer.optimizer.build(trainer.trainable_variables)
    trainer.optimizer.iterations.assign(steps * done)
    return done


def resolve_teacher(spec: str) -> str:
    """A run directory (its best.keras, else last.keras) or a .keras file."""
    if os.path.isdir(spec):
        for name in ("best.keras", "last.keras"):
            if os.path.isfile(os.path.join(spec, name)):
                return os.path.join(spec, name)
        raise UserError(f"--teacher {spec}: run directory has no best.keras or last.keras")
    if not os.path.isfile(spec):
        raise UserError(f"--teacher not found: {spec}")
    if not spec.endswith(".keras"):
        raise UserError(f"--teacher must be a .keras model or a run directory: {spec}")
    return spec


def load_teacher(path: str, num_classes: int):
    import keras

    try:
        teacher = keras.saving.load_model(path, compile=False)
    except Exception as e:  # noqa: BLE001 - any load failure is a bad file for the user
        raise UserError(f"--teacher: not a Keras model file: {path} ({type(e).__name__})") from None
    out = teacher.output_shape
    if len(teacher.input_shape) != 4 or out[-1] != num_classes:
        raise UserError(f"--teacher {path}: expected an image classifier with {num_classes} outputs, got input {teacher.input_shape} output {out}")
    teacher.trainable = False
    return teacher


def init_weights(model, path: str) -> None:
    """Copies the weights of the classifier in `path` (or of the net inside a flip-averaged one) into `model`."""
    import keras

    try:
        src = keras.saving.load_model(path, compile=False)
    except Exception as e:  # noqa: BLE001 - any load failure is a bad file for the user
        raise UserError(f"--init: not a Keras model file: {path} ({type(e).__name__})") from None
    inner = [layer for layer in src.layers if isinstance(layer, keras.Model)]
    if any(layer.name == "flip_average" for layer in src.layers) and len(inner) == 1:
        src = inner[0]
    shapes = [tuple(w.shape) for w in src.weights]
    if shapes != [tuple(w.shape) for w in model.weights]:
        raise UserError(f"--init {path}: its network ({src.name}, {len(shapes)} weights) is not this --arch's ({model.name})")
    model.set_weights(src.get_weights())


def mixup(ds, alpha: float, seed: int = 0):
    """Mixup (Zhang et al. 2018) on batches of (float images, one-hot labels): each batch is mixed
    with a shuffled copy of itself, one Beta(alpha, alpha) weight per example."""
    import tensorflow as tf

    def mix(x, y):
        n = tf.shape(x)[0]
        a = tf.random.gamma([n], alpha, seed=seed)
        b = tf.random.gamma([n], alpha, seed=seed + 1)
        lam = a / (a + b)
        perm = tf.random.shuffle(tf.range(n), seed=seed + 2)
        lx = tf.reshape(lam, [-1, 1, 1, 1])
        ly = tf.reshape(lam, [-1, 1])
        return lx * x + (1 - lx) * tf.gather(x, perm), ly * y + (1 - ly) * tf.gather(y, perm)

    return ds.map(mix, num_parallel_calls=tf.data.AUTOTUNE)


def _load(specs, size, channels, usage, options, labels=None):
    from data_pipelines import load_sources

    return load_sources(specs, size, channels, labeled=True, class_names=labels, usage=usage,
                        limit=options["limit"], on_error=options["on_error"])


COMMANDS = [expression]
