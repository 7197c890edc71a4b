"""Options and callbacks that every `python -m train` model shares."""

from __future__ import annotations

import functools
import json
import math
import os
import platform
import time

import click
import keras

from core.cli import FiniteFloatRange, UserError
from core.files import write_json
from core.provenance import git_commit
from train.resume import TimeLimit, backup_callback, epochs_done, trim_log
from train.rundirs import load_run_options, new_run_dir

MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 16, 1024  # past 1024 px a data set no longer fits in memory (100000 px: 30 GB an image)

# What a resumed run may take from the command line; every other option is the run's own (a value
# given that differs from the run's is refused, not silently dropped).
RESUME_MAY_CHANGE = {"resume", "epochs", "time_limit", "jit_compile", "strategy", "tpu", "dry_run", "out", "on_error"}


POSITIVE = FiniteFloatRange(min=0, min_open=True)


def common_options(defaults: dict):
    """Adds the shared options (--data, --image-size, --epochs, ...) with per-model defaults."""

    def decorator(f):
        opts = [
            click.option("--data", multiple=True, help="Folder, FER CSV, emoji:<set>[/faces|/all] or emoji:all, tfds:fer2013 or TFRecord folder. Repeatable."),
            click.option("--image-size", type=click.IntRange(MIN_IMAGE_SIZE, MAX_IMAGE_SIZE), default=None, help="Square input size (default: the preset's)."),
            click.option("--epochs", type=click.IntRange(min=1), default=defaults.get("epochs", 10), show_default=True),
            click.option("--batch-size", type=click.IntRange(min=1), default=defaults.get("batch_size", 64), show_default=True, help="Global batch size."),
            click.option("--lr", type=POSITIVE, default=None, help="Learning rate (default: the preset's)."),
            click.option("--seed", type=int, default=0, show_default=True),
            click.option("--preset", default=defaults.get("preset"), show_default=True),
            click.option("--out", default="runs", show_default=True, help="Parent folder of run directories."),
            click.option("--resume", "resume", default=None, metavar="RUN_DIR", help="Continue an interrupted run."),
            click.option("--limit", type=click.IntRange(min=1), default=None, help="Use only N examples (quick runs)."),
            click.option("--on-error", type=click.Choice(["skip", "fail"]), default="skip", show_default=True, help="Unreadable images: skip and count, or stop."),
            click.option("--dry-run", is_flag=True, help="Print the resolved options and exit."),
            click.option("--time-limit", type=FiniteFloatRange(min=0.1), default=None,
                         help="Minutes: stop cleanly after the epoch that would pass it; --resume continues."),
            click.option("--strategy", type=click.Choice(["default", "mirrored", "multiworker", "tpu"]), default="default", show_default=True,
                         help="tf.distribute: mirrored = all local GPUs, multiworker = the machines of TF_CONFIG, tpu = a Cloud TPU."),
            click.option("--tpu", default=None, metavar="ADDRESS", help="With --strategy tpu: 'local' (a TPU VM, the default), a TPU name or grpc://HOST:PORT."),
            click.option("--mixed-precision", type=click.Choice(["off", "fp16", "bf16"]), default="off", show_default=True,
                         help="Mixed precision: fp16 for GPUs (with loss scaling), bf16 for TPUs and recent GPUs."),
        ]
        for opt in reversed(opts):
            f = opt(f)
        return f

    return decorator


def start_run(kind: str, options: dict, desc: str) -> tuple[str, dict, bool]:
    """Returns (run_dir, options, resumed). Resuming reloads the run's own options; --epochs may be
    raised, and --time-limit / --jit-compile changed, when given on the command line; --dry-run
    always belongs to this invocation."""
    if options.get("resume"):
        run_dir = options["resume"]
        saved = load_run_options(run_dir, kind)
        ctx = click.get_current_context(silent=True)
        refuse_changed_options(ctx, saved, run_dir)
        given = ctx is not None and ctx.get_parameter_source("epochs") is click.core.ParameterSource.COMMANDLINE
        if given and options.get("epochs") and options["epochs"] > saved.get("epochs", 0):
            saved["epochs"] = options["epochs"]
        saved["resume"] = run_dir
        for key in ("strategy", "tpu"):  # a run may continue on other hardware
            if options.get(key) is not None:
                saved[key] = options[key]
        for key in ("time_limit", "jit_compile"):
            if key in options and ctx is not None and ctx.get_parameter_source(key) is click.core.ParameterSource.COMMANDLINE:
                saved[key] = options[key]
        saved["dry_run"] = bool(options.get("dry_run"))
        if not saved["dry_run"]:  # a later resume continues with what this one changed (a raised --epochs)
            write_json(os.path.join(run_dir, "options.json"), dict(saved, dry_run=False))
        return run_dir, saved, True
    if options.get("dry_run"):
        return "", options, False
    run_dir = new_run_dir(options["out"], kind, desc)
    options = dict(options, kind=kind, run_dir=run_dir, commit=git_commit(), host=platform.node(),
                   started=time.strftime("%Y-%m-%d %H:%M:%S"))
    write_json(os.path.join(run_dir, "options.json"), options)
    return run_dir, options, False


def refuse_changed_options(ctx, saved: dict, run_dir: str) -> None:
    """A resumed run trains with its own options: one given on the command line with another value
    than the run's (--image-size 32 on a 64-px run) is a one-line error, not silently dropped."""
    if ctx is None:
        return
    for param in ctx.command.params:
        name = param.name
        if name in RESUME_MAY_CHANGE or name not in saved or ctx.get_parameter_source(name) is not click.core.ParameterSource.COMMANDLINE:
            continue
        given, before = ctx.params.get(name), saved[name]
        if isinstance(given, tuple):
            given = list(given)
        if given != before and not (isinstance(given, float) and isinstance(before, (int, float)) and math.isclose(given, before)):
            flag = param.opts[0] if getattr(param, "opts", None) else name
            shown = " ".join(map(str, given)) if isinstance(given, list) else given
            raise UserError(f"{flag} {shown}: {run_dir} trains with {flag} {before}, its own; a resumed run keeps its options "
                            "(drop it, or start a new run)")


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


def dry_run(options: dict, kind: str | None = None):
    """Prints the resolved options: with --resume, the run's own (as the resumed run would use them)."""
    if kind and options.get("resume"):
        options = start_run(kind, options, "")[1]
    click.echo(json.dumps(options, indent=2, default=str))


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


def gan_images(kind: str, options: dict, small_data: int):
    """A GAN's training images (RGB uint8 at --image-size), its batch size (at most the image count)
    and whether DiffAugment is on (--augment on, or auto below `small_data` images)."""
    from data_pipelines import load_sources

    data = load_sources(options["data"], options["image_size"], 3, labeled=False, limit=options["limit"], on_error=options["on_error"])
    n = len(data)
    if n < 2:
        raise UserError(f"{kind} needs at least 2 training images; {', '.join(options['data'])} gave {n}")
    augment = options["augment"] == "on" or (options["augment"] == "auto" and n < small_data)
    return data, min(options["batch_size"], n), augment


def require_data(data, what: str):
    if not data:
        raise UserError(f"--data is required for {what}")


def with_user_errors(f):
    """The models' ConfigError (an image size, preset or policy the user chose) becomes one line; any
    other ValueError is a bug and keeps its traceback."""
    from core.errors import ConfigError

    @functools.wraps(f)
    def wrapper(*a, **kw):
        try:
            return f(*a, **kw)
        except ConfigError as e:
            raise UserError(str(e).splitlines()[0]) from None

    return wrapper
