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
