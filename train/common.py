"""Options and callbacks that every `python -m train` model shares."""

from __future__ import annotations

import math
import os

import click
import keras

from core.cli import FiniteFloatRange, UserError
from train.resume import TimeLimit, backup_callback, epochs_done, trim_log
from train.run import TrainingData

MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 16, 1024  # past 1024 px a data set no longer fits in memory (100000 px: 30 GB an image)

POSITIVE = FiniteFloatRange(min=0, min_open=True)


def common_options(defaults: dict):
    """Adds the shared options (--data, --image-size, --epochs, ...) with per-model defaults."""

    def decorator(f):
        opts = [
            click.option("--data", multiple=True,
                         help="Folder, FER CSV, emoji:<set>[/faces|/all] or emoji:all, tfds:fer2013 or TFRecord folder. Repeatable."),
            click.option("--image-size", type=click.IntRange(MIN_IMAGE_SIZE, MAX_IMAGE_SIZE), default=None,
                         help="Square input size (default: the preset's)."),
            click.option("--epochs", type=click.IntRange(min=1), default=defaults.get("epochs", 10), show_default=True),
            click.option("--batch-size", type=click.IntRange(min=1), default=defaults.get("batch_size", 64), show_default=True,
                         help="Global batch size."),
            click.option("--lr", type=POSITIVE, default=None, help="Learning rate (default: the preset's)."),
            click.option("--seed", type=int, default=0, show_default=True),
            click.option("--preset", default=defaults.get("preset"), show_default=True),
            click.option("--out", default="runs", show_default=True, help="Parent folder of run directories."),
            click.option("--resume", "resume", default=None, metavar="RUN_DIR", help="Continue an interrupted run."),
            click.option("--limit", type=click.IntRange(min=1), default=None, help="Use only N examples (quick runs)."),
            click.option("--on-error", type=click.Choice(["skip", "fail"]), default="skip", show_default=True,
                         help="Unreadable images: skip and count, or stop."),
            click.option("--dry-run", is_flag=True, help="Print the resolved options and exit."),
            click.option("--time-limit", type=FiniteFloatRange(min=0.1), default=None,
                         help="Minutes: stop cleanly after the epoch that would pass it; --resume continues."),
            click.option("--strategy", type=click.Choice(["default", "mirrored", "multiworker", "tpu"]), default="default",
                         show_default=True,
                         help="tf.distribute: mirrored = all local GPUs, multiworker = the machines of TF_CONFIG, tpu = a Cloud TPU."),
            click.option("--tpu", default=None, metavar="ADDRESS",
                         help="With --strategy tpu: 'local' (a TPU VM, the default), a TPU name or grpc://HOST:PORT."),
            click.option("--mixed-precision", type=click.Choice(["off", "fp16", "bf16"]), default="off", show_default=True,
                         help="Mixed precision: fp16 for GPUs (with loss scaling), bf16 for TPUs and recent GPUs."),
        ]
        for opt in reversed(opts):
            f = opt(f)
        return f

    return decorator


def fit_verbosity() -> int:
    """Keras fit's verbosity: the live per-step bar on a terminal; one line per epoch when stdout is
    a file or a pipe (a log read later), or when EMOTEKIT_QUIET is set."""
    import sys

    if os.environ.get("EMOTEKIT_QUIET"):
        return 2
    try:
        return 1 if sys.stdout.isatty() else 2
    except (AttributeError, ValueError):
        return 2


def training_callbacks(run_dir: str, resumed: bool, monitor: str | None = None, mode: str = "max",
                       time_limit: float | TimeLimit | None = None, phase: int = 0, best_name: str = "best.keras"):
    """Every family's callbacks (see train/resume.py): the backup every epoch, CSV (appended on
    resume), TensorBoard and the oneDNN check (TensorFlow backend only), the best model by `monitor`
    as `best_name` (its best value survives a resume) and the time limit (minutes, or a TimeLimit
    that several fits of one run share)."""
    done = epochs_done(run_dir) if resumed else 0
    if done:  # the log's rows after the backup's state (a fallback to the previous backup) go
        trim_log(run_dir, done)
    cbs = [
        NonFiniteGuard(run_dir, phase),
        backup_callback(run_dir, phase),
        keras.callbacks.CSVLogger(os.path.join(run_dir, "log.csv"), append=resumed),
    ]
    if keras.backend.backend() == "tensorflow":  # TensorBoard writes through tf.summary; oneDNN is TensorFlow's
        cbs += [keras.callbacks.TensorBoard(os.path.join(run_dir, "tensorboard"), write_graph=False), OneDNNCheck()]
    if monitor:
        cbs.append(keras.callbacks.ModelCheckpoint(
            os.path.join(run_dir, best_name), monitor=monitor, mode=mode, save_best_only=True,
            initial_value_threshold=best_so_far(run_dir, monitor, mode) if resumed else None))
    cbs.append(time_limit if isinstance(time_limit, TimeLimit) else TimeLimit(time_limit, run_dir))
    return cbs


class NonFiniteGuard(keras.callbacks.TerminateOnNaN):
    """Keras' TerminateOnNaN for every loss a model logs (a GAN's d_loss and g_loss too, not just
    `loss`), ending the run at once with one line: the epoch's end is never reached, so the NaN
    weights never become the backup and the run's last good state stays for --resume."""

    def __init__(self, run_dir: str = "", phase: int = 0):
        super().__init__()
        self.run_dir, self.phase, self.epoch = run_dir, phase, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self._check(logs, f"epoch {self.epoch + 1}, step {batch + 1}")

    def on_epoch_end(self, epoch, logs=None):
        self._check(logs, f"epoch {epoch + 1}")

    def _check(self, logs, where: str) -> None:
        for key, value in (logs or {}).items():
            if "loss" not in key:  # a metric may be undefined (an F1 without examples); a loss may not
                continue
            try:
                value = float(value)
            except (TypeError, ValueError):
                continue
            if not math.isfinite(value):
                self.model.stop_training = True
                done = epochs_done(self.run_dir, self.phase) if self.run_dir else 0
                kept = f"{self.run_dir} keeps its state after epoch {done}" if done else "nothing was kept"
                raise UserError(f"training diverged: {key} is {value} in {where} (a smaller --lr may help); {kept}")


class OneDNNCheck(keras.callbacks.Callback):
    """Before the first step: one line when the model has a configuration known to crash oneDNN here."""

    def on_train_begin(self, logs=None):
        from core.cpu import onednn_training_warning

        message = onednn_training_warning(self.model)
        if message:
            click.echo(message, err=True)


def best_so_far(run_dir: str, monitor: str, mode: str = "max") -> float | None:
    """The best `monitor` value in a run's log.csv (a resumed run's best model must beat it)."""
    import csv

    path = os.path.join(run_dir, "log.csv")
    if not os.path.isfile(path):
        return None
    with open(path, newline="") as f:
        values = [float(r[monitor]) for r in csv.DictReader(f) if r.get(monitor) not in (None, "", "nan")]
    if not values:
        return None
    return max(values) if mode == "max" else min(values)


def gan_images(kind: str):
    """A GAN family's `load_data`: its training images (RGB uint8 at --image-size), at least two."""

    def load_data(options) -> TrainingData:
        from data_pipelines import load_sources

        data = load_sources(options.data, options.image_size, 3, labeled=False, limit=options.limit, on_error=options.on_error)
        if len(data) < 2:
            raise UserError(f"{kind} needs at least 2 training images; {', '.join(options.data)} gave {len(data)}")
        return TrainingData(data)

    return load_data


def gan_batch(options, n: int, small_data: int) -> tuple[int, bool]:
    """A GAN's batch size (at most the image count) and whether DiffAugment is on (--augment on,
    or auto below `small_data` images)."""
    return min(options.batch_size, n), options.augment == "on" or (options.augment == "auto" and n < small_data)
