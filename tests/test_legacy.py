"""train/legacy.py: run folders written by earlier versions resume with today's code."""

from __future__ import annotations

import csv
import json
import os

import h5py
from clirun import run_train

from train.legacy import jit_compile_mode, upgrade_options


def test_old_option_values_are_read_as_what_they_meant():
    # --jit-compile was a flag (true/false) or absent: the DCGAN then compiled with XLA without a strategy
    assert [jit_compile_mode(v, "on") for v in (True, False, None, "auto", "OFF")] == ["on", "off", "on", "auto", "off"]
    assert upgrade_options("dcgan", {"strategy": "default"})["jit_compile"] == "on"
    assert upgrade_options("dcgan", {"strategy": "mirrored"})["jit_compile"] == "off"
    assert upgrade_options("dcgan", {"jit_compile": False, "strategy": "default"})["jit_compile"] == "off"
    assert upgrade_options("stylegan", {})["jit_compile"] == "auto"
    # an epoch was one pass over the data before --epoch-size; --augment 004 is affine's old name
    assert upgrade_options("vae", {})["epoch_size"] == 0 and upgrade_options("vae", {"epoch_size": 64})["epoch_size"] == 64
    assert upgrade_options("expression", {"augment": "004"})["augment"] == "affine"
    saved = {"augment": "004"}
    upgrade_options("expression", saved)
    assert saved == {"augment": "004"}  # a copy: the caller decides what is written


def test_a_run_folder_of_the_older_layout_resumes(tmp_path, monkeypatch, capsys):
    """A VAE run as the last release left it: options.json without --epoch-size, and a backup whose
    weights file has no epoch stamp (its epochs only in Keras' training_metadata.json). --resume
    continues after its epoch, each epoch once in log.csv, and the run keeps one pass per epoch."""
    monkeypatch.setenv("EMOTEKIT_QUIET", "1")
    out = tmp_path / "runs"
    code, _, err = run_train(["vae", "--preset", "tiny-32", "--limit", "16", "--epochs", "1", "--epoch-size", "0",
                              "--batch-size", "8", "--out", str(out)], monkeypatch, capsys)
    assert code == 0, err
    (run,) = [str(out / d) for d in os.listdir(out)]
    options_path = os.path.join(run, "options.json")
    with open(options_path) as f:
        options = json.load(f)
    del options["epoch_size"]
    with open(options_path, "w") as f:
        json.dump(options, f)
    with h5py.File(os.path.join(run, "backup", "latest.weights.h5"), "a") as f:
        del f.attrs["emotekit_epoch"]

    code, stdout, err = run_train(["vae", "--resume", run, "--epochs", "2"], monkeypatch, capsys)
    assert code == 0, err
    assert "after epoch 1" in stdout and "16 images, 2 steps of 8 per epoch" in stdout
    with open(os.path.join(run, "log.csv")) as f:
        assert [row["epoch"] for row in csv.DictReader(f)] == ["0", "1"]
    with open(options_path) as f:
        assert json.load(f)["epoch_size"] == 0
    with open(os.path.join(run, "backup", "training_metadata.json")) as f:
        assert json.load(f)["epoch"] == 2
    with h5py.File(os.path.join(run, "backup", "previous.weights.h5"), "r") as f:
        assert int(f.attrs["emotekit_epoch"]) == 1  # the unstamped backup, kept with its epochs inside
