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
from core.npz import images_digest, read_npz, read_soft_labels, write_npz, write_soft_labels

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


@pytest.mark.parametrize("filter_, compression", [("none", "deflate"), ("up", "lzma")])
def test_npz_filters_and_compressions_round_trip(tmp_path, filter_, compression):
    rng = np.random.default_rng(0)
    x, v = rng.integers(0, 256, (5, 8, 6, 3), dtype=np.uint8), rng.integers(0, 256, (2, 8, 6, 3), dtype=np.uint8)
    path = str(tmp_path / "set.npz")
    write_npz(path, x, [0, 1, 2, 1, 0], ["a", "b", "c"], v, [2, 2], source="s", filter=filter_, compression=compression)
    data = read_npz(path)
    np.testing.assert_array_equal(data["x_train"], x)
    np.testing.assert_array_equal(data["x_val"], v)
    assert data["labels"] == ["a", "b", "c"] and list(data["y_val"]) == [2, 2]


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
    soft = read_soft_labels(os.path.join(out, "soft_labels.npz"))
    assert soft["probs"].shape == (21, 7) and soft["images_sha1"] == images_digest(read_npz(fer_npz)["x_train"])
    np.testing.assert_allclose(soft["probs"].sum(1), 1, atol=1e-3)


def test_student_distils_from_soft_labels(fer_folder, fer_npz, tmp_path, monkeypatch, capsys):
    """Soft labels written for the training images teach a student in TensorFlow; soft labels of
    other images are refused in one line."""
    from clirun import run_train

    data = read_npz(fer_npz)
    rng = np.random.default_rng(0)
    path = str(tmp_path / "soft.npz")
    write_soft_labels(path, rng.dirichlet(np.ones(7), 21), data["labels"], images_digest(data["x_train"]), source="test")
    out = str(tmp_path / "runs")
    args = ["expression", "--data", fer_folder, "--val", fer_folder, "--arch", "emonet-xs", "--batch-size", "8", "--epochs", "1",
            "--mixup", "0.2", "--out", out, "--soft-labels", path]
    code, stdout, err = run_train(args, monkeypatch, capsys)
    assert code == 0, err
    assert "distilling from the soft labels" in stdout
    (run,) = os.listdir(out)
    assert 0 <= json.load(open(os.path.join(out, run, "eval_val.json")))["accuracy"] <= 1
    code, _, err = run_train(args[:-2] + ["--limit", "7", "--soft-labels", path], monkeypatch, capsys)
    assert code == 2 and "made for other training images" in err and err.strip().count("\n") == 0


def test_packed_soft_targets_give_the_teachers_loss():
    """A Distiller without a teacher model, its targets [one-hot | probabilities], has the loss of
    one with a teacher model whose outputs are those probabilities."""
    import keras

    from keras_models.expression import build_classifier
    from keras_models.expression.distill import Distiller

    student, teacher = build_classifier("emonet-xs", 7), build_classifier("emonet-xs", 7)
    x = np.random.default_rng(0).uniform(0, 255, (4, 48, 48, 1)).astype("float32")
    y = np.eye(7, dtype="float32")[[0, 3, 6, 2]]
    probs = np.asarray(teacher(x, training=False))
    losses = []
    for model, target in ((Distiller(student, teacher, alpha=0.3), y),
                          (Distiller(student, None, alpha=0.3), np.concatenate([y, probs], 1))):
        model.compile(optimizer="sgd", loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.1))
        y_pred = model(x, training=False)
        losses.append(float(model.compute_loss(x=x, y=target, y_pred=y_pred)))
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    assert losses[0] > 0
