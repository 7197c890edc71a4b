"""The one resume mechanism (train/resume.py): the time limit, the epochs a backup records, and a
finished run that needs a larger --epochs."""

import json
import os

import pytest

from core.cli import UserError
from train import resume as R


class _Model:
    stop_training = False


def test_time_limit_stops_after_the_epoch_that_would_pass_it(capsys):
    """It stops only at an epoch's end, once the next epoch would pass the limit; every callback has
    seen that epoch (the backup is written) because fit reads stop_training after them all."""
    cb = R.TimeLimit(0.5, "RUN")
    cb.set_model(_Model())
    cb.on_train_begin()
    cb.on_epoch_begin(0)
    cb.on_epoch_end(0)  # well inside 30 s: no stop
    cb.t0 -= 25  # 25 s spent; the next epoch (as long as this one, ~0 s) would still fit
    cb.on_epoch_begin(1)
    cb.on_epoch_end(1)
    assert not cb.model.stop_training and not cb.reached
    cb.t0 -= 10
    cb.on_epoch_begin(2)
    cb.on_epoch_end(2)
    assert cb.model.stop_training and cb.reached
    err = capsys.readouterr().err
    assert "after epoch 3" in err and "--resume RUN" in err
    idle = R.TimeLimit(None)
    idle.set_model(_Model())
    idle.on_epoch_end(0)  # no limit: never stops
    assert not idle.model.stop_training


def _metadata(run_dir, epoch, phase=0):
    folder = R.backup_dir(str(run_dir), phase)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, R.METADATA), "w") as f:
        json.dump({"epoch": epoch, "batch": 0}, f)


def test_epochs_done_reads_every_phase(tmp_path):
    assert R.epochs_done(str(tmp_path)) == 0
    _metadata(tmp_path, 3)
    assert R.epochs_done(str(tmp_path)) == 3
    _metadata(tmp_path, 5, phase=1)
    assert R.backup_dir(str(tmp_path), 1).endswith("backup-phase2")
    assert R.epochs_done(str(tmp_path)) == 5 and R.epochs_done(str(tmp_path), 0) == 3


def test_finished_run_needs_a_larger_epochs(tmp_path):
    _metadata(tmp_path, 4)
    with pytest.raises(UserError, match="already trained 4 epochs"):
        R.check_can_continue(str(tmp_path), 4)
    assert R.check_can_continue(str(tmp_path), 6) == 4


def test_damaged_metadata_is_one_clear_error(tmp_path):
    os.makedirs(R.backup_dir(str(tmp_path)))
    with open(os.path.join(R.backup_dir(str(tmp_path)), R.METADATA), "w") as f:
        f.write("{not json")
    with pytest.raises(UserError, match="damaged"):
        R.epochs_done(str(tmp_path))


def test_resumed_run_says_when_its_data_changed(tmp_path, capsys):
    """emoji:all takes the sets installed now: a resume on other data says so in one line."""
    with open(tmp_path / "options.json", "w") as f:
        json.dump({"kind": "dcgan", "epochs": 3}, f)
    R.check_same_data(str(tmp_path), 573, resumed=False)
    assert json.load(open(tmp_path / "options.json")) == {"kind": "dcgan", "epochs": 3, "train_images": 573}
    R.check_same_data(str(tmp_path), 573, resumed=True)
    assert capsys.readouterr().err == ""
    R.check_same_data(str(tmp_path), 114, resumed=True)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "573 images" in err and "gives 114" in err
    assert json.load(open(tmp_path / "options.json"))["train_images"] == 114


# --------------------------------------------------------------------------- a killed run, and a damaged backup

import csv  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# `python -m train ...` with a kill wired in: KILL_AT=save:N truncates the N-th backup write to half
# (where the bytes were going: in place before, a temporary file now) and SIGKILLs the process
# there, as a power cut or `kill -9` in the middle of the write would; KILL_AT=batch:N SIGKILLs it
# at the N-th train step (in the middle of an epoch).
KILLER = r'''
import os, runpy, signal, sys
import keras
where, n = os.environ["KILL_AT"].split(":")
count = [0]
def maybe_kill():
    count[0] += 1
    return count[0] == int(n)
if where == "save":
    real = keras.Model.save_weights
    def save_weights(self, filepath, *a, **kw):
        real(self, filepath, *a, **kw)
        if os.path.basename(os.path.dirname(os.path.abspath(filepath))) == "backup" and maybe_kill():
            with open(filepath, "r+b") as f:
                f.truncate(os.path.getsize(filepath) // 2)
            os.kill(os.getpid(), signal.SIGKILL)
    keras.Model.save_weights = save_weights
else:
    real_batch = keras.callbacks.BackupAndRestore.on_train_batch_end
    def on_train_batch_end(self, batch, logs=None):
        if maybe_kill():
            os.kill(os.getpid(), signal.SIGKILL)
        return real_batch(self, batch, logs)
    keras.callbacks.BackupAndRestore.on_train_batch_end = on_train_batch_end
sys.argv = ["python -m train", *sys.argv[1:]]
runpy.run_module("train", run_name="__main__", alter_sys=True)
'''


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    import numpy as np
    from PIL import Image

    d = tmp_path_factory.mktemp("faces")
    rng = np.random.default_rng(3)
    for i in range(8):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(d / f"{i}.png")
    return str(d)


def _vae_args(faces, out, epochs):
    # 8 images, 2 steps of 4 an epoch, the 16-channel test preset at 32 px
    return ["vae", "--data", faces, "--preset", "tiny-32", "--limit", "8", "--epoch-size", "0", "--batch-size", "4",
            "--epochs", str(epochs), "--out", str(out)]


def _train(args, kill_at=None):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # the default: native start-up noise filtered
    env["EMOTEKIT_QUIET"] = "1"
    cmd = [sys.executable, "-c", KILLER, *args] if kill_at else [sys.executable, "-m", "train", *args]
    if kill_at:
        env["KILL_AT"] = kill_at
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def _epochs_logged(run):
    with open(os.path.join(run, "log.csv")) as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


@pytest.mark.parametrize("kill_at,last_good", [("save:2", 1), ("batch:3", 1)])
def test_killed_run_resumes_from_its_last_good_state(faces, tmp_path, kill_at, last_good):
    """A real training process killed while writing the backup of epoch 2 (the write cut in half),
    or in the middle of epoch 2: --resume continues after epoch 1, the last complete state, and
    trains each epoch exactly once (log.csv: 0, 1, 2). Before, the in-place write left a truncated
    latest.weights.h5 and --resume ended in an OSError traceback."""
    out = tmp_path / "runs"
    killed = _train(_vae_args(faces, out, 3), kill_at)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    (run,) = [str(p) for p in out.iterdir()]
    assert R.epochs_done(run) == last_good
    resumed = _train(["vae", "--resume", run])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Traceback" not in resumed.stderr
    assert f"resuming {run} after epoch {last_good}" in resumed.stdout
    assert _epochs_logged(run) == [0, 1, 2]
    assert R.epochs_done(run) == 3 and R.good_backup(R.backup_dir(run))[1] == 3
    assert not [f for f in os.listdir(R.backup_dir(run)) if f.startswith(".tmp-")]  # the killed write's leftover is gone


@pytest.fixture(scope="module")
def finished_run(faces, tmp_path_factory):
    """A tiny VAE run of 2 epochs (its backup: latest after epoch 2, previous after epoch 1)."""
    out = tmp_path_factory.mktemp("finished")
    r = _train(_vae_args(faces, out, 2))
    assert r.returncode == 0, r.stderr[-3000:]
    return str(next(out.iterdir()))


def _copy(run, tmp_path):
    import shutil

    dst = str(tmp_path / os.path.basename(run))
    shutil.copytree(run, dst)
    return dst


def _truncate(path):
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 3)


def test_truncated_backup_falls_back_to_the_previous_one(finished_run, tmp_path):
    """latest.weights.h5 cut short (a kill while an earlier version rewrote it in place, a full
    disk): one warning line, and --resume --epochs 3 retrains epoch 2 from the state after epoch 1."""
    run = _copy(finished_run, tmp_path)
    _truncate(os.path.join(R.backup_dir(run), R.WEIGHTS))
    assert R.good_backup(R.backup_dir(run))[1] == 1
    r = _train(["vae", "--resume", run, "--epochs", "3"])
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"resuming {run} after epoch 1" in r.stdout
    warnings = [ln for ln in r.stderr.splitlines() if "damaged" in ln]
    assert len(warnings) == 1 and "previous backup, after epoch 1" in warnings[0], r.stderr
    assert _epochs_logged(run) == [0, 1, 2]  # the row of the lost epoch 2 dropped: each epoch of the state once
    assert R.good_backup(R.backup_dir(run))[1] == 3


def test_every_backup_damaged_is_one_line(finished_run, tmp_path):
    run = _copy(finished_run, tmp_path)
    for name in (R.WEIGHTS, R.PREVIOUS):
        _truncate(os.path.join(R.backup_dir(run), name))
    r = _train(["vae", "--resume", run, "--epochs", "3"])
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "cannot resume: every backup" in r.stderr and "damaged" in r.stderr, r.stderr


def test_backup_of_an_earlier_version_is_kept_as_previous(tmp_path):
    """A latest.weights.h5 without the epoch stamp (written by an earlier version, its epochs in
    training_metadata.json) counts those epochs, and becomes previous.weights.h5, stamped, when the
    next backup is written."""
    import keras
    import numpy as np

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(16), keras.layers.Dense(2)])
    folder = R.backup_dir(str(tmp_path))
    os.makedirs(folder)
    model.save_weights(os.path.join(folder, R.WEIGHTS))
    _metadata(tmp_path, 5)
    assert R.good_backup(folder) == (os.path.join(folder, R.WEIGHTS), 5)
    before = [w.copy() for w in model.get_weights()]
    model.layers[0].kernel.assign(np.ones((4, 16), np.float32))
    R.write_backup(model, str(tmp_path), 6)
    assert R.good_backup(folder) == (os.path.join(folder, R.WEIGHTS), 6)
    _truncate(os.path.join(folder, R.WEIGHTS))
    assert R.good_backup(folder) == (os.path.join(folder, R.PREVIOUS), 5)
    R.restore(model, str(tmp_path))
    np.testing.assert_array_equal(model.get_weights()[0], before[0])
