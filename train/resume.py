"""The one way every model family resumes a run.

A run's checkpoint is Keras' `BackupAndRestore` folder, `RUN/backup/`: `latest.weights.h5` holds
the training model's weights with everything the model tracks (the optimizer's slots and step,
a GAN's two optimizers and EMA networks, StyleGAN's image and step counters, the random
generators' state) and `training_metadata.json` the epochs done. It is written after every epoch
and kept when training ends, so `--resume RUN` continues an interrupted run and
`--resume RUN --epochs N` extends a finished one, for every family alike.

A run that trains in phases with different trainable weights (vggface-resnet50: the head, then the
top stages) keeps one folder per phase: `backup/`, `backup-phase2/`, ...

`TimeLimit` stops any family after the epoch that would pass `--time-limit`, the backup written.
Runs of earlier versions that finished deleted `backup/` and kept their final state elsewhere;
`adopt_finished_run` turns that state into a backup once, so this mechanism continues them too.
"""

from __future__ import annotations

import glob
import json
import os
import time

import click
import keras

from core.cli import UserError
from core.files import write_json
from train.rundirs import update_run_options

WEIGHTS = "latest.weights.h5"
METADATA = "training_metadata.json"


def backup_dir(run_dir: str, phase: int = 0) -> str:
    return os.path.join(run_dir, "backup" if phase == 0 else f"backup-phase{phase + 1}")


def backup_callback(run_dir: str, phase: int = 0) -> keras.callbacks.BackupAndRestore:
    """Keras' BackupAndRestore for the run (and phase), kept when training ends."""
    return keras.callbacks.BackupAndRestore(backup_dir(run_dir, phase), delete_checkpoint=False)


def epochs_done(run_dir: str, phase: int | None = None) -> int:
    """Epochs recorded by a phase's backup (any phase's when None): 0 when there is none."""
    folders = [backup_dir(run_dir, phase)] if phase is not None else glob.glob(os.path.join(run_dir, "backup*"))
    done = 0
    for folder in folders:
        path = os.path.join(folder, METADATA)
        if os.path.isfile(path):
            try:
                with open(path) as f:
                    done = max(done, int(json.load(f)["epoch"]))
            except (OSError, ValueError, KeyError, TypeError):
                raise UserError(f"{path} is damaged: cannot resume this run") from None
    return done


def has_backup(run_dir: str, phase: int = 0) -> bool:
    return os.path.isfile(os.path.join(backup_dir(run_dir, phase), WEIGHTS))


def check_can_continue(run_dir: str, epochs: int) -> int:
    """The epochs a resumed run has done; a finished run needs a larger --epochs to go on."""
    done = epochs_done(run_dir)
    if done >= epochs:
        raise UserError(f"{run_dir} already trained {done} epochs; pass a larger --epochs to continue it")
    if done:
        click.echo(f"resuming {run_dir} after epoch {done}")
    return done


def restore(model, run_dir: str, phase: int = 0) -> None:
    """Loads a phase's backup into `model` (compiled, optimizer built) as BackupAndRestore would:
    for a run that goes on with a later phase."""
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    model.load_weights(os.path.join(backup_dir(run_dir, phase), WEIGHTS))


def write_backup(model, run_dir: str, epoch: int, phase: int = 0) -> None:
    """Writes `model`'s state as the phase's backup after `epoch` epochs (what BackupAndRestore writes)."""
    folder = backup_dir(run_dir, phase)
    os.makedirs(folder, exist_ok=True)
    model.save_weights(os.path.join(folder, WEIGHTS), overwrite=True)
    write_json(os.path.join(folder, METADATA), {"epoch": int(epoch), "batch": 0})


def adopt_finished_run(run_dir: str, model, load_final) -> bool:
    """A run finished by an earlier version has no backup/ but its final state: `load_final(model)`
    loads it and returns the epochs it had done (0 when there is no such state). That state is
    written as backup/ once; from then on the run resumes like any other. True when adopted."""
    if has_backup(run_dir) or epochs_done(run_dir):
        return False
    done = load_final(model)
    if not done:
        return False
    write_backup(model, run_dir, done)
    click.echo(f"{run_dir}: its final state (epoch {done}) is now backup/ for --resume")
    return True


def load_final_gan(run_dir: str, gan) -> int:
    """`load_final` for the GANs: gan.weights.h5 and state.json of a finished run of an earlier
    version. StyleGAN's counters were kept in state.json then and are set from it."""
    weights, state = os.path.join(run_dir, "gan.weights.h5"), os.path.join(run_dir, "state.json")
    if not (os.path.isfile(weights) and os.path.isfile(state)):
        return 0
    with open(state) as f:
        state = json.load(f)
    counters = {"images_seen": float(state.get("kimg", 0)) * 1000, "step_counter": int(state.get("steps", 0))}
    present = {k: v for k, v in counters.items() if hasattr(gan, k)}
    # the counters are the GAN's own variables now; the old file lacks them
    gan.load_weights(weights, skip_mismatch=bool(present))
    for name, value in present.items():
        getattr(gan, name).assign(value)
    return int(state.get("epochs_done", 0))


def check_same_data(run_dir: str, images: int, resumed: bool) -> None:
    """Records a run's training image count in options.json. A resumed run whose --data now gives
    another count (an emoji set installed or removed since, a folder changed: emoji:all takes
    whatever sets are installed) says so in one line, and goes on with what it has."""
    path = os.path.join(run_dir, "options.json")
    before = None
    if resumed and os.path.isfile(path):
        with open(path) as f:
            before = json.load(f).get("train_images")
    if before is not None and before != images:
        click.echo(f"warning: {run_dir} trained on {before} images until now; its --data gives {images} now "
                   "(a data set installed, removed or changed since?); going on with these", err=True)
    update_run_options(run_dir, {"train_images": int(images)})


class TimeLimit(keras.callbacks.Callback):
    """Stops training after the epoch that would pass `minutes` (the epoch's backup is written:
    `stop_training` takes effect once every callback has seen the epoch). `reached` tells a
    caller with several fits (phases) not to start the next."""

    def __init__(self, minutes: float | None, run_dir: str = ""):
        super().__init__()
        self.limit = minutes * 60 if minutes else None
        self.run_dir = run_dir
        self.t0 = self.t_epoch = None
        self.reached = False

    def on_train_begin(self, logs=None):
        self.t0 = self.t0 or time.monotonic()

    def on_epoch_begin(self, epoch, logs=None):
        self.t_epoch = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        if not self.limit:
            return
        now = time.monotonic()
        if now - self.t0 + (now - self.t_epoch) > self.limit:
            self.reached = True
            self.model.stop_training = True
            click.echo(f"\nstopped after epoch {epoch + 1}: --time-limit reached (continue with --resume {self.run_dir})", err=True)
