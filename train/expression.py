"""`python -m train expression`: facial-expression classifiers on FER-2013 or any labelled folder."""

from __future__ import annotations

import dataclasses
import math
import os

import click
import numpy as np

from core.cli import UserError
from core.files import atomic_path
from keras_models.expression import PRESETS
from train import legacy
from train import resume as R
from train.common import common_options, fit_verbosity, training_callbacks
from train.distribute import distribute_arrays, is_default, prepare_model, scope, with_class_weights
from train.run import Family, Run, TrainingData, TrainOptions, run_training

AUGMENTS = ("affine", "none")


def augmenter(seed: int, strength: str = "affine"):
    """The training augmentation: "affine" = a random flip, +-20 deg, +-20 % zoom and 4-px shifts at 40 px
    (reference 004's recipe) in one projective transform per image, as one Keras layer; "none" = no layer."""
    from data_pipelines.augment import RandomAffine

    if legacy.canonical_augment(strength) == "none":
        return None
    return RandomAffine(rotation=20, zoom=0.2, shift=4 / 40, flip=True, seed=seed, name="augment")


@dataclasses.dataclass(frozen=True)
class ExpressionOptions(TrainOptions):
    epochs: int = 24
    batch_size: int = 128
    arch: str = "emonet-s"
    val_data: tuple[str, ...] = ()
    usage: str | None = None
    weights: str | None = None
    class_weight: str = "sqrt"
    label_smoothing: float = 0.1
    weight_decay: float = 0.01
    augment: str = "affine"
    fine_tune_epochs: int | None = None
    fine_tune_stages: str = "5"
    teacher: str | None = None
    soft_labels: str | None = None
    temperature: float = 4.0
    alpha: float = 0.5
    init_model: str | None = None
    mixup: float = 0.0


@click.command("expression")
@common_options({"epochs": 24, "batch_size": 128, "preset": None})
@click.option("--arch", default="emonet-s", show_default=True, help="emonet-s, emonet-s2, emonet-xs, vgg-fer or vggface-resnet50.")
@click.option("--val", "val_data", multiple=True, help="Validation data (default: the CSV's PublicTest rows, or none).")
@click.option("--usage", default=None, help="FER CSV rows to train on (default Training when --data is a CSV).")
@click.option("--weights", type=click.Path(), default=None, help="vggface-resnet50: rcmalli_vggface_tf_notop_resnet50.h5.")
@click.option("--class-weight", type=click.Choice(["none", "sqrt", "balanced"]), default="sqrt", show_default=True)
@click.option("--label-smoothing", type=float, default=0.1, show_default=True)
@click.option("--weight-decay", type=float, default=0.01, show_default=True, help="AdamW decoupled weight decay.")
@click.option("--augment", type=click.Choice([*AUGMENTS, *legacy.AUGMENT_ALIASES]), default="affine", show_default=True,
              callback=lambda ctx, param, value: legacy.canonical_augment(value),
              help="affine: random flip, rotation, zoom and shift; none. (004 is affine's old name.)")
@click.option("--fine-tune-epochs", type=click.IntRange(min=0), default=None,
              help="vggface-resnet50: epochs with the top blocks unfrozen (default half).")
@click.option("--fine-tune-stages", type=click.Choice(["5", "4-5"]), default="5", show_default=True,
              help="vggface-resnet50: ResNet stages unfrozen in phase 2 (at --lr / 10).")
@click.option("--teacher", default=None, metavar="RUN_OR_MODEL",
              help="Knowledge distillation from a trained classifier: a run directory (its best.keras) or a .keras file.")
@click.option("--soft-labels", default=None, metavar="FILE.npz",
              help="Distillation from a teacher's probabilities on the training images, precomputed by `python -m train.npz_teacher` "
                   "(e.g. on an accelerator) from `python -m data_pipelines npz` of the same --data.")
@click.option("--temperature", type=click.FloatRange(min=0, min_open=True), default=4.0, show_default=True,
              help="Distillation softmax temperature.")
@click.option("--alpha", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Weight of the hard-label loss with --teacher (the rest is distillation).")
@click.option("--init", "init_model", type=click.Path(dir_okay=False), default=None, metavar="MODEL.keras",
              help="Start from this classifier's weights (same --arch; a flip-averaged .keras gives its inner net), "
                   "e.g. to fine-tune the shipped model on other framing.")
@click.option("--mixup", type=click.FloatRange(min=0), default=0.0, show_default=True, help="Mixup Beta(a, a) parameter; 0 disables it.")
def expression(**options):
    """Train a facial-expression classifier (FER-2013 folders or CSV, or any labelled folder)."""
    run_training(FAMILY, options)


def validate(options: dict) -> None:
    """The files the options name. A resumed run's --weights and --init were used when it started."""
    new = not options["resume"]
    if not options["data"]:
        raise UserError("--data is required: a FER-2013 folder (train/<class>/...) or fer2013.csv")
    if new and options["weights"] and not os.path.isfile(options["weights"]):
        raise UserError(f"weights file not found: {options['weights']}")
    if options["teacher"] and options["soft_labels"]:
        raise UserError("--teacher and --soft-labels both give the teacher: choose one")
    if options["soft_labels"] and not os.path.isfile(options["soft_labels"]):
        raise UserError(f"--soft-labels: no such file: {options['soft_labels']}")
    if options["teacher"]:
        options["teacher"] = resolve_teacher(options["teacher"])
    if new and options["init_model"] and not os.path.isfile(options["init_model"]):
        raise UserError(f"--init: no such file: {options['init_model']}")


def load_data(o: ExpressionOptions) -> TrainingData:
    """The training images and the validation ones (--val, else a FER CSV's PublicTest rows)."""
    for spec in o.data + o.val_data:
        if ":" not in spec.split(os.sep)[0] and not os.path.exists(spec):
            raise UserError(f"data path not found: {spec}")
    channels = PRESETS[o.arch].channels
    csv_train = len(o.data) == 1 and o.data[0].lower().endswith(".csv")
    train = _load(o.data, o.image_size, channels, o.usage or ("Training" if csv_train else None), o)
    val_specs = o.val_data or (o.data if csv_train else ())
    val_usage = "PublicTest" if val_specs == o.data else None
    val = _load(val_specs, o.image_size, channels, val_usage, o, train.class_names) if val_specs else None
    click.echo(f"train: {len(train)} images, classes {list(train.class_names)}; skipped {len(train.skipped)} unreadable"
               + (f"; val: {len(val)}" if val else ""))
    for line in train.skipped[:5]:
        click.echo(f"  skipped: {line}", err=True)
    return TrainingData(train, val)


def fit(run: Run, o: ExpressionOptions, preset, data: TrainingData) -> str:
    import keras

    from keras_models.expression import build_classifier

    keras.utils.set_random_seed(o.seed)
    train, val = data.train, data.val
    labels = list(train.class_names)
    train_ds, val_ds, fit_class_weight = _datasets(run.strategy, o, train, val)
    with scope(run.strategy):  # the model, the teacher and the optimizers are built under the strategy
        model = build_classifier(o.arch, len(labels), o.image_size)
    prepare_model(model, run.strategy)
    teacher = _starting_weights(run, o, model, len(labels))
    with open(os.path.join(run.dir, "labels.txt"), "w") as f:
        f.write("\n".join(labels) + "\n")
    steps = math.ceil(len(train) / o.batch_size)
    phases = _phases(o)
    if run.resumed and len(phases) == 1:
        with scope(run.strategy):
            trainer = _compile(model, teacher, o, phases[0][2], steps * o.epochs)
        legacy.adopt_finished_run(run.dir, trainer, lambda t: legacy.final_classifier_state(run.dir, model, t, steps))
    done = R.check_can_continue(run.dir, o.epochs) if run.resumed else 0
    time_limit = R.TimeLimit(o.time_limit, run.dir)  # one clock for every phase
    for phase, (start, end, lr, stages) in enumerate(phases):
        if stages is not None:
            from keras_models.expression.vggface import set_trainable_blocks

            n = set_trainable_blocks(model, stages)
            what = f"stages {'+'.join(map(str, stages))} unfrozen ({n} layers)" if stages else "base frozen"
            click.echo(f"epochs {start + 1}-{end}: {what}, lr {lr:g}")
        with scope(run.strategy):
            trainer = _compile(model, teacher, o, lr, steps * (end - start), warmup=start == 0)
        if done >= end:  # a resumed run finished this phase; the next starts from its backup
            if phase + 1 < len(phases) and not R.has_backup(run.dir, phase + 1):
                R.restore(trainer, run.dir, phase)
            continue
        callbacks = training_callbacks(run.dir, run.resumed or phase > 0, monitor="val_accuracy" if val else None,
                                       time_limit=time_limit, phase=phase)
        trainer.fit(train_ds, validation_data=val_ds, initial_epoch=start, epochs=end, callbacks=callbacks,
                    class_weight=fit_class_weight, verbose=fit_verbosity())
        if time_limit.reached:
            break
    return f"(model {_save_and_evaluate(run.dir, model, val, labels)})"


def _datasets(strategy, o: ExpressionOptions, train, val):
    """(training dataset, validation dataset or None, the class weights for fit() or None). With
    --soft-labels the targets are [one-hot | the teacher's probabilities], shuffled and mixed up together."""
    from data_pipelines import make_dataset
    from keras_models.expression.recipe import class_weights

    num_classes, packed = len(train.class_names), bool(o.soft_labels)
    aug = augmenter(o.seed, o.augment)
    cw = class_weights(train.labels, num_classes, o.class_weight)
    y_train, y_val = train.labels, val.labels if val else None
    if packed:
        eye = np.eye(num_classes, dtype=np.float32)
        y_train = np.concatenate([eye[train.labels], soft_labels(o.soft_labels, train, train.class_names)], axis=1)
        y_val = np.concatenate([eye[val.labels], eye[val.labels]], axis=1) if val else None
        click.echo(f"distilling from the soft labels in {o.soft_labels} (T={o.temperature}, alpha={o.alpha})")
    fit_weights = is_default(strategy) and not packed  # else the pipeline adds them: fit's can't map these

    def make_train(x, y, batch):
        ds = make_dataset(x, y, batch, training=True, seed=o.seed, augment=aug, num_classes=None if packed else num_classes,
                          drop_remainder=not is_default(strategy))  # replicas must get full batches
        ds = mixup(ds, o.mixup, o.seed) if o.mixup else ds
        return ds if fit_weights else with_class_weights(ds, cw, num_classes)

    train_ds = distribute_arrays(strategy, make_train, train.images, y_train, o.batch_size)
    val_ds = make_dataset(val.images, y_val, 256, num_classes=None if packed else num_classes) if val else None
    return train_ds, val_ds, cw if fit_weights else None


def _starting_weights(run: Run, o: ExpressionOptions, model, num_classes: int):
    """A new run's first weights (VGGFace's with --weights, another classifier's with --init), and
    the --teacher model (None without one)."""
    if o.arch == "vggface-resnet50" and not run.resumed:
        if o.weights:
            from keras_models.expression.vggface import load_vggface_weights

            try:
                n = load_vggface_weights(model, o.weights)
            except (OSError, ValueError) as e:
                raise UserError(str(e)) from None
            click.echo(f"loaded {n} layers of VGGFace weights from {o.weights}")
        else:
            click.echo("no --weights given: training vggface-resnet50 from scratch (expect far lower accuracy)", err=True)
    if o.init_model and not run.resumed:
        with scope(run.strategy):
            init_weights(model, o.init_model)
        click.echo(f"starting from the weights of {o.init_model}")
    if not o.teacher:
        return None
    with scope(run.strategy):
        teacher = load_teacher(o.teacher, num_classes)
    click.echo(f"distilling from {o.teacher} (T={o.temperature}, alpha={o.alpha})")
    return teacher


def _phases(o: ExpressionOptions) -> list[tuple[int, int, float, tuple | None]]:
    """[(first epoch, end epoch, lr, ResNet stages to unfreeze or None)]: one phase, except for
    vggface-resnet50: the head on a frozen base, then also the top stages at lr / 10."""
    if o.arch != "vggface-resnet50":
        return [(0, o.epochs, o.lr, None)]
    tune = o.epochs // 2 if o.fine_tune_epochs is None else min(o.fine_tune_epochs, o.epochs)
    stages = tuple(int(s) for s in (o.fine_tune_stages or "5").split("-"))
    first = o.epochs - tune
    return [p for p in ((0, first, o.lr, ()), (first, o.epochs, o.lr / 10, stages)) if p[1] > p[0]]


def _save_and_evaluate(run_dir: str, model, val, labels) -> str:
    """last.keras, and with validation data eval_val.json of the best model; returns the model to use."""
    last = os.path.join(run_dir, "last.keras")
    with atomic_path(last) as tmp:
        model.save(tmp)
    best = os.path.join(run_dir, "best.keras") if val else last
    if not os.path.exists(best):
        best = last
    if val:
        from train.evaluate import evaluate_model

        evaluate_model(best, val.images, val.labels, labels, os.path.join(run_dir, "eval_val.json"))
    return best


def _compile(model, teacher, o: ExpressionOptions, lr, total_steps, warmup=True):
    from keras_models.expression.recipe import compile_for_training

    return compile_for_training(model, lr, total_steps, weight_decay=o.weight_decay, label_smoothing=o.label_smoothing,
                                teacher=teacher, soft_targets=bool(o.soft_labels), temperature=o.temperature, alpha=o.alpha, warmup=warmup)


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
        raise UserError(f"--teacher {path}: expected an image classifier with {num_classes} outputs, got input {teacher.input_shape} "
                        f"output {out}")
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


def _load(specs, size, channels, usage, o: ExpressionOptions, labels=None):
    from data_pipelines import load_sources

    return load_sources(specs, size, channels, labeled=True, class_names=labels, usage=usage, limit=o.limit, on_error=o.on_error)


FAMILY = Family("expression", ExpressionOptions, PRESETS, load_data, fit, lambda o: o.arch, validate=validate,
                preset_name=lambda options: options["arch"], preset_option="--arch")
COMMANDS = [expression]
