"""The one way every model family resumes a run.

A run's checkpoint is Keras' `BackupAndRestore` folder, `RUN/backup/`: `latest.weights.h5` holds
the training model's weights with everything the model tracks (the optimizer's slots and step,
a GAN's two optimizers and EMA networks, StyleGAN's image and step counters, the random
generators' state) and `training_metadata.json` the epochs done. It is written after every epoch
and kept when training ends, so `--resume RUN` continues an interrupted run and
`--resume RUN --epochs N` extends a finished one, for every family alike.

A backup is never rewritten in place: the new weights are written to a temporary file and renamed
over `latest.weights.h5` (with the epochs they hold stamped inside them), and the backup they
replace is kept as `previous.weights.h5`. A kill at any moment leaves one complete backup or the
other; a backup that is damaged anyway (a truncated file, a disk that filled up) is passed over
for the previous one, said in one line, so `--resume` continues from the last good state with
no epoch lost or repeated (`SafeBackup`, `good_backup`).

A run that trains in phases with different trainable weights (vggface-resnet50: the head, then the
top stages) keeps one folder per phase: `backup/`, `backup-phase2/`, ...

`TimeLimit` stops any family after the epoch that would pass `--time-limit`, the backup written.
Run folders of earlier versions are made to fit this in train/legacy.py.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import time

import click
import keras

from core.cli import UserError
from core.files import atomic_path, read_options_file, write_json
from train.rundirs import update_run_options

WEIGHTS = "latest.weights.h5"
METADATA = "training_metadata.json"
PREVIOUS = "previous.weights.h5"
EPOCH_ATTR = "emotekit_epoch"  # the epochs a backup's weights hold, inside the file itself


def backup_dir(run_dir: str, phase: int = 0) -> str:
    return os.path.join(run_dir, "backup" if phase == 0 else f"backup-phase{phase + 1}")


def backup_callback(run_dir: str, phase: int = 0) -> keras.callbacks.BackupAndRestore:
    """The run's (and phase's) backup, written every epoch and kept when training ends."""
    return SafeBackup(backup_dir(run_dir, phase), delete_checkpoint=False)


def _stamped_epoch(path: str) -> int | None:
    """The epochs stamped inside a backup's weights file (None for an unstamped one: its epochs are
    those of Keras' training_metadata.json beside it).
    Raises when the file cannot be read to its end (truncated, not HDF5)."""
    import h5py

    with h5py.File(path, "r") as f:
        f.visititems(lambda _, obj: obj[()] if isinstance(obj, h5py.Dataset) else None)  # every byte readable
        epoch = f.attrs.get(EPOCH_ATTR)
    return None if epoch is None else int(epoch)


def _metadata_epoch(folder: str) -> int | None:
    path = os.path.join(folder, METADATA)
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            return int(json.load(f)["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def good_backup(folder: str, say: bool = False) -> tuple[str, int] | None:
    """(weights file, epochs) of a backup folder's newest complete backup: latest.weights.h5, else
    (damaged: a kill or a full disk while it was written in place) previous.weights.h5.
    None when the folder holds no backup; a UserError when every one there is damaged. `say`: one
    line on stderr when the previous backup stands in for a damaged latest one."""
    latest, previous = os.path.join(folder, WEIGHTS), os.path.join(folder, PREVIOUS)
    damaged = []
    for path in (latest, previous):
        if not os.path.isfile(path):
            continue
        try:
            stamped = _stamped_epoch(path)
        except Exception as e:  # noqa: BLE001 - h5py raises OSError, KeyError, RuntimeError... for a bad file
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
            # h5py: "Unable to ... (truncated file: eof = ...)": the part in brackets says what is wrong
            reason = reason.split("(", 1)[1].split(",")[0].rstrip(")") if "(" in reason else reason[:80]
            damaged.append(f"{os.path.basename(path)}: {reason}")
            continue
        epoch = stamped if stamped is not None else _metadata_epoch(folder) if path == latest else None
        if epoch is None:
            damaged.append(f"{os.path.basename(path)}: no epoch recorded")
            continue
        if damaged and say:
            click.echo(f"warning: {folder}/{damaged[0]} (damaged); resuming from the previous backup, after epoch {epoch}", err=True)
        return path, epoch
    if damaged:
        raise UserError(f"cannot resume: every backup in {folder} is damaged ({'; '.join(damaged)}); start a new run")
    if os.path.isfile(os.path.join(folder, METADATA)) and _metadata_epoch(folder) is None:
        raise UserError(f"{os.path.join(folder, METADATA)} is damaged: cannot resume this run")
    return None


def epochs_done(run_dir: str, phase: int | None = None) -> int:
    """Epochs held by a phase's good backup (any phase's when None): 0 when there is none."""
    folders = [backup_dir(run_dir, phase)] if phase is not None else sorted(glob.glob(os.path.join(run_dir, "backup*")))
    done = 0
    for folder in folders:
        found = good_backup(folder)
        if found is None and os.path.isfile(os.path.join(folder, METADATA)):
            found = ("", _metadata_epoch(folder))  # the epochs of a finished phase whose weights went on
        if found is not None:
            done = max(done, found[1])
    return done


def has_backup(run_dir: str, phase: int = 0) -> bool:
    folder = backup_dir(run_dir, phase)
    return os.path.isfile(os.path.join(folder, WEIGHTS)) or os.path.isfile(os.path.join(folder, PREVIOUS))


def _save_backup(model, folder: str, epoch: int, batch: int = 0) -> None:
    """Writes `model`'s weights as the folder's latest backup without ever leaving a partial one:
    a temporary file (epochs stamped inside) renamed over latest.weights.h5, the one it replaces
    kept as previous.weights.h5 (a second name of the same file, so there is no moment without
    a complete latest one); then the metadata, atomically."""
    import h5py

    os.makedirs(folder, exist_ok=True)
    latest, previous = os.path.join(folder, WEIGHTS), os.path.join(folder, PREVIOUS)
    with atomic_path(latest, suffix=".weights.h5") as tmp:
        model.save_weights(tmp, overwrite=True)
        with h5py.File(tmp, "a") as f:
            f.attrs[EPOCH_ATTR] = int(epoch)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        if os.path.isfile(latest):
            _keep_as_previous(folder, latest, previous)
    write_json(os.path.join(folder, METADATA), {"epoch": int(epoch), "batch": int(batch)})


def _keep_as_previous(folder: str, latest: str, previous: str) -> None:
    """The backup about to be replaced, kept as previous.weights.h5 when it is complete (a damaged
    one is just replaced; the previous one stays)."""
    import h5py

    try:
        stamped = _stamped_epoch(latest)
    except Exception:  # noqa: BLE001 - h5py's errors for a bad file vary
        return
    epoch = stamped if stamped is not None else _metadata_epoch(folder)
    if epoch is None:
        return
    with atomic_path(previous, suffix=".weights.h5") as tmp:
        os.remove(tmp)
        if stamped is None:  # an unstamped backup: its epochs go inside the copy
            shutil.copyfile(latest, tmp)
            with h5py.File(tmp, "a") as f:
                f.attrs[EPOCH_ATTR] = int(epoch)
            return
        try:
            os.link(latest, tmp)
        except OSError:  # a file system without hard links
            shutil.copyfile(latest, tmp)


class SafeBackup(keras.callbacks.BackupAndRestore):
    """Keras' BackupAndRestore (its folder layout and its epoch bookkeeping), writing each backup
    beside the last good one (`_save_backup`) and restoring from the newest complete one."""

    def on_train_begin(self, logs=None):
        for leftover in glob.glob(os.path.join(self.backup_dir, ".tmp-*")):  # a write that was killed
            os.remove(leftover)
        found = good_backup(self.backup_dir, say=True)
        if found is None:
            return
        path, epoch = found
        if not self.model.built:
            raise ValueError("SafeBackup needs a built model before fit()")
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(path)
        self.model._initial_epoch = epoch

    def _save_model(self):
        _save_backup(self.model, self.backup_dir, self._current_epoch, self._last_batch_seen)


def trim_log(run_dir: str, done: int) -> None:
    """Drops the rows of RUN/log.csv after the epochs its backup holds (a fallback to the previous
    backup trains the last epoch again): the log shows each epoch of the run's state once."""
    import csv

    path = os.path.join(run_dir, "log.csv")
    if not os.path.isfile(path):
        return
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows or "epoch" not in rows[0]:
        return
    col = rows[0].index("epoch")
    keep = [rows[0]] + [r for r in rows[1:] if len(r) > col and r[col].isdigit() and int(r[col]) < done]
    if len(keep) == len(rows):
        return
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as f:
            csv.writer(f).writerows(keep)


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
    for a run that goes on with a later phase. An uncompiled model (no optimizer) gets its weights only."""
    optimizer = getattr(model, "optimizer", None)  # Keras sets the attribute only in compile()
    if optimizer is not None and not optimizer.built:
        optimizer.build(model.trainable_variables)
    found = good_backup(backup_dir(run_dir, phase), say=True)
    if found is None:
        raise UserError(f"{run_dir} has no backup of phase {phase + 1} to continue from")
    model.load_weights(found[0])


def write_backup(model, run_dir: str, epoch: int, phase: int = 0) -> None:
    """Writes `model`'s state as the phase's backup after `epoch` epochs (what SafeBackup writes)."""
    _save_backup(model, backup_dir(run_dir, phase), epoch)


def check_same_data(run_dir: str, images: int, resumed: bool) -> None:
    """Records a run's training image count in options.json. A resumed run whose --data now gives
    another count (an emoji set installed or removed since, a folder changed: emoji:all takes
    whatever sets are installed) says so in one line, and goes on with what it has."""
    path = os.path.join(run_dir, "options.json")
    before = None
    if resumed and os.path.isfile(path):
        before = read_options_file(path).get("train_images")
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
