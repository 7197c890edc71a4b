"""The teacher path for a machine without TensorFlow: `python -m data_pipelines npz` writes a FER
set as one .npz, `python -m train.npz_teacher` trains on Keras 3's JAX backend with TensorFlow
blocked, and the teacher.keras it writes gives the same outputs in TensorFlow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from click.testing import CliRunner

from core.errors import DataError
from core.npz import read_npz, write_npz

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Runs the teacher script with `import tensorflow` failing, then its teacher on the validation images.
NO_TF = textwrap.dedent("""
    import runpy, sys
    import numpy as np

    class NoTensorFlow:
        def find_spec(self, name, path=None, target=None):
            if name == "tensorflow" or name.startswith("tensorflow."):
                raise ImportError("TensorFlow is blocked in this test")

    sys.meta_path.insert(0, NoTensorFlow())
    npz, out = sys.argv[1], sys.argv[2]
    sys.argv = ["python -m train.npz_teacher", npz, "--out", out, *sys.argv[3:]]
    try:
        runpy.run_module("train.npz_teacher", run_name="__main__")
    except SystemExit as e:
        if e.code:
            raise
    import keras
    from core.npz import read_npz

    teacher = keras.saving.load_model(out + "/teacher.keras", compile=False)
    np.save(out + "/val_probs.npy", np.asarray(teacher.predict(read_npz(npz)["x_val"].astype("float32"), verbose=0)))
    assert "tensorflow" not in sys.modules and keras.backend.backend() == "jax"
""")


@pytest.fixture(scope="module")
def fer_npz(fer_folder, tmp_path_factory):
    from data_pipelines.__main__ import cli

    path = str(tmp_path_factory.mktemp("npz") / "fer.npz")
    r = CliRunner().invoke(cli, ["npz", fer_folder, "--val", fer_folder, "--out", path])
    assert r.exit_code == 0, r.output
    assert "21 training images, 21 validation, 7 classes" in r.output
    return path


def test_npz_holds_the_labelled_images(fer_npz, fer_folder):
    from data_pipelines import load_source

    data = read_npz(fer_npz)
    ref = load_source(fer_folder, 48, 1, labeled=True)
    assert data["x_train"].shape == (21, 48, 48, 1) and data["x_train"].dtype == np.uint8
    np.testing.assert_array_equal(data["x_train"], ref.images)
    np.testing.assert_array_equal(data["y_train"], ref.labels)
    assert data["labels"] == list(ref.class_names) and len(data["x_val"]) == 21


def test_bad_npz_is_one_clear_error(tmp_path):
    text = tmp_path / "notes.npz"
    text.write_text("not a zip")
    foreign = str(tmp_path / "foreign.npz")
    np.savez(foreign, x=np.zeros(3))
    bad_labels = str(tmp_path / "bad.npz")
    write_npz(bad_labels, np.zeros((2, 8, 8, 1)), [0, 5], ["a", "b"])
    for path, message in ((str(tmp_path / "missing.npz"), "no such file"), (str(text), "not a readable .npz"),
                          (foreign, "not an Emotekit image set"), (bad_labels, "outside 0..1")):
        with pytest.raises(DataError, match=message):
            read_npz(path)
    r = subprocess.run([sys.executable, "-m", "train.npz_teacher", foreign, "--out", str(tmp_path / "t"), "--backend", "tensorflow"],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "not an Emotekit image set" in r.stderr
    assert not (tmp_path / "t").exists()


def test_teacher_trains_without_tensorflow_and_loads_in_tensorflow(fer_npz, tmp_path):
    import keras

    out = str(tmp_path / "teacher")
    r = subprocess.run([sys.executable, "-c", NO_TF, fer_npz, out, "--arch", "emonet-xs", "--epochs", "1", "--batch-size", "7",
                        "--backend", "jax"], cwd=ROOT, capture_output=True, text=True, env=dict(os.environ, KERAS_BACKEND=""))
    assert r.returncode == 0, r.stderr[-3000:]
    info = json.load(open(os.path.join(out, "teacher.json")))
    assert info["backend"] == "jax" and info["epochs_done"] == 1 and info["train_images"] == 21
    assert 0 <= info["val_accuracy"] <= 1
    teacher = keras.saving.load_model(os.path.join(out, "teacher.keras"), compile=False)  # here: TensorFlow
    probs = np.asarray(teacher.predict(read_npz(fer_npz)["x_val"].astype("float32"), verbose=0))
    np.testing.assert_allclose(probs, np.load(os.path.join(out, "val_probs.npy")), atol=1e-4)
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-4)
