"""Foster VAE: shapes, training step, serialization, the `vae` CLI, latent tools, bad input."""

from __future__ import annotations

import csv
import json
import os
import sys

import keras
import numpy as np
import pytest
from PIL import Image

from core.images import grid
from keras_models.vae import PRESETS, Sampling, VAETrainer, build_decoder, build_encoder, build_vae, get_preset
from keras_models.vae.latent import apply_attribute, attribute_vector, interpolate, name_matches


def run(argv, capsys):
    """Runs `python -m train ARGV` in-process; returns (exit status, stdout, stderr)."""
    from core.cli import run_cli
    from train.__main__ import cli

    old = sys.argv
    sys.argv = ["python -m train", *argv]
    code = 0
    try:
        run_cli(cli, "python -m train")
    except SystemExit as e:
        code = e.code
    finally:
        sys.argv = old
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(autouse=True)
def _quiet(monkeypatch):
    monkeypatch.setenv("EMOTEKIT_QUIET", "1")


@pytest.mark.parametrize("name", list(PRESETS))
def test_shapes(name):
    p = get_preset(name)
    enc, dec = build_encoder(p), build_decoder(p)
    s = p.image_size
    assert enc.inputs[0].shape == (None, s, s, 3)
    assert [tuple(o.shape) for o in enc.outputs] == [(None, p.z_dim), (None, p.z_dim)]
    assert dec.inputs[0].shape == (None, p.z_dim)
    assert dec.outputs[0].shape == (None, s, s, 3)
    assert dec.layers[-1].get_config()["activation"] == "sigmoid"


def test_issue_presets_are_fosters():
    g1, g2 = get_preset("gdl1-128"), get_preset("gdl2-64")
    assert (g1.image_size, g1.encoder_filters, g1.z_dim, g1.reconstruction_weight, g1.lr, g1.dropout) == \
        (128, (32, 64, 64, 64), 200, 10000, 5e-4, 0.25)
    assert (g2.image_size, g2.encoder_filters, g2.z_dim, g2.reconstruction_weight) == (64, (64,) * 5, 200, 2000)
    enc = build_encoder(g1)
    assert [layer.strides for layer in enc.layers if isinstance(layer, keras.layers.Conv2D)] == [(2, 2)] * 4
    assert sum(isinstance(layer, keras.layers.Dropout) for layer in enc.layers) == 4


def test_decoder_range_and_size_check():
    dec = build_decoder("tiny-32")
    y = dec.predict(np.random.default_rng(0).normal(size=(4, 8)).astype("float32") * 10, verbose=0)
    assert y.min() >= 0 and y.max() <= 1
    with pytest.raises(ValueError, match="multiple of 4"):
        build_encoder("tiny-32", image_size=30)
    assert build_encoder("tiny-32", image_size=48).inputs[0].shape == (None, 48, 48, 3)


def test_sampling():
    mean = np.arange(6, dtype="float32").reshape(2, 3)
    z = keras.ops.convert_to_numpy(Sampling(seed=1)([mean, np.full_like(mean, -30.0)]))
    np.testing.assert_allclose(z, mean, atol=1e-4)
    z = keras.ops.convert_to_numpy(Sampling(seed=1)([np.zeros((2000, 3), "float32"), np.zeros((2000, 3), "float32")]))
    assert abs(z.mean()) < 0.1 and abs(z.std() - 1) < 0.1


def test_train_step_finite_loss():
    keras.utils.set_random_seed(0)
    vae = build_vae("tiny-32", seed=0)
    vae.compile(optimizer=keras.optimizers.Adam(1e-3), run_eagerly=True)  # one step: tracing costs more
    x = np.random.default_rng(0).uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    before = [w.numpy().copy() for w in vae.encoder.trainable_weights]
    logs = vae.train_on_batch(x, return_dict=True)
    assert set(logs) == {"total_loss", "reconstruction_loss", "kl_loss"}
    assert all(np.isfinite(v) for v in logs.values())
    assert logs["total_loss"] == pytest.approx(logs["reconstruction_loss"] + logs["kl_loss"], rel=1e-4)
    assert any(not np.allclose(b, w.numpy()) for b, w in zip(before, vae.encoder.trainable_weights))


def test_config_round_trip():
    vae = build_vae("tiny-32", beta=0.5, seed=3)
    clone = VAETrainer.from_config(vae.get_config())
    assert (clone.reconstruction_weight, clone.beta, clone.seed) == (1000.0, 0.5, 3)
    assert [layer.name for layer in clone.encoder.layers] == [layer.name for layer in vae.encoder.layers]
    assert clone.count_params() == vae.count_params()
    clone.set_weights(vae.get_weights())
    x = np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(clone.predict(x, verbose=0), vae.predict(x, verbose=0), atol=1e-6)
    s = Sampling.from_config(Sampling(seed=5, name="s").get_config())
    assert s.seed == 5


def test_save_load_equality(tmp_path):
    vae = build_vae("tiny-32", seed=0)
    vae.compile(optimizer=keras.optimizers.Adam(1e-3), run_eagerly=True)  # one step: tracing costs more
    x = np.random.default_rng(2).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    vae.train_on_batch(x)  # moves BatchNorm statistics away from their initial values
    for model in (vae, vae.encoder, vae.decoder):
        model.save(tmp_path / f"{model.name}.keras")
    enc = keras.saving.load_model(tmp_path / "encoder.keras")
    dec = keras.saving.load_model(tmp_path / "decoder.keras")
    full = keras.saving.load_model(tmp_path / f"{vae.name}.keras")
    assert isinstance(full, VAETrainer)
    for a, b in zip(enc.predict(x, verbose=0), vae.encoder.predict(x, verbose=0)):
        np.testing.assert_allclose(a, b, atol=1e-6)
    z = np.random.default_rng(3).normal(size=(4, 8)).astype("float32")
    np.testing.assert_allclose(dec.predict(z, verbose=0), vae.decoder.predict(z, verbose=0), atol=1e-6)
    np.testing.assert_allclose(full.predict(x, verbose=0), vae.predict(x, verbose=0), atol=1e-6)


def test_latent_helpers():
    a, b = np.zeros(4, "float32"), np.ones(4, "float32")
    path = interpolate(a, b, 10)
    assert path.shape == (10, 4)
    np.testing.assert_allclose(path[0], a)
    np.testing.assert_allclose(path[-1], b)
    assert name_matches("smiling face with halo", "smile") and not name_matches("crying face", "smile")
    assert name_matches("loudly crying face", "cry")
    z = np.array([[2.0, 0], [4.0, 0], [0, 1.0], [0, 3.0]])
    v = attribute_vector(z, [True, True, False, False])
    np.testing.assert_allclose(v, [3.0, -2.0])
    np.testing.assert_allclose(apply_attribute(z[0], v, [-1, 0, 2]), [[-1, 2], [2, 0], [8, -4]])
    with pytest.raises(ValueError):
        attribute_vector(z, [True] * 4)
    tiled = grid(np.zeros((3, 5, 5, 3), np.uint8), cols=2, rows=2, pad=1)
    assert tiled.shape == (13, 13, 3)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """One tiny CLI run shared by the CLI tests: (run_dir, out_dir)."""
    out = tmp_path_factory.mktemp("runs")
    capsys = _Capture()
    code, stdout, err = run(["vae", "--preset", "tiny-32", "--limit", "16", "--epochs", "1", "--epoch-size", "0",
                             "--batch-size", "8", "--out", str(out)], capsys)
    assert code == 0, err
    (run_dir,) = [out / d for d in os.listdir(out)]
    return run_dir


class _Capture:
    """capsys stand-in for the module fixture (stdout goes to the terminal)."""

    def readouterr(self):
        class R:
            out = err = ""

        return R()


def test_cli_run_leaves_its_files(trained_run):
    names = set(os.listdir(trained_run))
    for f in ("options.json", "vae.json", "log.csv", "tensorboard", "backup", "samples", "encoder.keras", "decoder.keras",
              "loss.png", "latent_distribution.png", "reconstructions.png", "new_faces.png"):
        assert f in names, f
    assert os.listdir(trained_run / "samples") == ["epoch_0001.png"]
    assert trained_run.name.endswith("-vae-tiny-32-twemoji")
    enc = keras.saving.load_model(trained_run / "encoder.keras")
    assert [tuple(o.shape) for o in enc.outputs] == [(None, 8), (None, 8)]
    assert Image.open(trained_run / "reconstructions.png").size[0] > 32


def test_cli_resume_dry_run_prints_and_trains_nothing(trained_run, capsys):
    """--resume RUN --dry-run prints the options the run would continue with; it must not train."""
    before = {f: os.path.getmtime(trained_run / f) for f in ("log.csv", "options.json")}
    code, out, err = run(["vae", "--resume", str(trained_run), "--epochs", "5", "--dry-run"], capsys)
    assert code == 0, err
    opts = json.loads(out)
    assert opts["resume"] == str(trained_run) and opts["preset"] == "tiny-32" and opts["epochs"] == 5 and opts["dry_run"] is True
    assert {f: os.path.getmtime(trained_run / f) for f in before} == before
    with open(trained_run / "log.csv") as f:
        assert [r["epoch"] for r in csv.DictReader(f)] == ["0"]


def test_cli_resume_continues(trained_run, capsys):
    code, _, err = run(["vae", "--resume", str(trained_run), "--epochs", "2"], capsys)
    assert code == 0, err
    with open(trained_run / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["0", "1"]
    assert sorted(os.listdir(trained_run / "samples")) == ["epoch_0001.png", "epoch_0002.png"]
    with open(trained_run / "options.json") as f:
        assert json.load(f)["epochs"] == 2  # kept for a later --resume without --epochs


def test_morph_and_attribute_cli(trained_run, tmp_path, capsys):
    face = tmp_path / "face.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(face)
    out = tmp_path / "morph.png"
    code, stdout, err = run(["vae-morph", str(trained_run), "--a", str(face), "--b", "smiling face with smiling eyes",
                             "--steps", "5", "--out", str(out), "--scale", "1"], capsys)
    assert code == 0, err
    strip = Image.open(out)
    assert strip.size == (7 * 32 + 8 * 2, 32 + 4)  # 5 steps + both inputs, 2-px gaps
    gif = Image.open(tmp_path / "morph.gif")
    assert gif.n_frames == 8  # 5 there, 3 back
    out = tmp_path / "attr.png"
    code, stdout, err = run(["vae-attribute", str(trained_run), "--attr", "smile", "--character", "😐", "--out", str(out)], capsys)
    assert code == 0, err
    assert "attribute 'smile'" in stdout
    assert Image.open(out).size[0] == 10 * 64 + 11 * 4  # character + 9 strengths, scale 2


def test_cli_val_split_holds_out_and_reports(tmp_path, capsys):
    """--val-split: a seeded tenth (here a quarter) of every source is never trained on; each epoch's
    log.csv row has the held-out MSE / PSNR / KL, and heldout.json the final figures and names."""
    out = tmp_path / "runs"
    code, stdout, err = run(["vae", "--preset", "tiny-32", "--limit", "16", "--epochs", "2", "--epoch-size", "0",
                             "--batch-size", "8", "--val-split", "0.25", "--out", str(out)], capsys)
    assert code == 0, err
    (run_dir,) = [out / d for d in os.listdir(out)]
    with open(run_dir / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2
    for r in rows:
        mse, psnr = float(r["val_mse"]), float(r["val_psnr"])
        assert 0 < mse < 1 and psnr == pytest.approx(10 * np.log10(1 / mse), rel=1e-6) and float(r["val_kl"]) >= 0
    with open(run_dir / "heldout.json") as f:
        held = json.load(f)
    assert held["images"] == 4 == len(held["names"]) and held["val_split"] == 0.25
    assert held["psnr_db"] == pytest.approx(10 * np.log10(1 / held["mse"]))
    assert "held out 4 images" in stdout


@pytest.mark.parametrize("argv, message", [
    (["vae", "--preset", "nope"], "unknown --preset 'nope' for vae"),
    (["vae", "--preset", "tiny-32", "--image-size", "30"], "multiple of 4"),
    (["vae", "--preset", "tiny-32", "--data", "/no/such/folder"], "not found: /no/such/folder"),
])
def test_bad_input_one_line(argv, message, tmp_path, capsys):
    code, _, err = run(argv + ["--out", str(tmp_path / "runs")], capsys)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists() or not os.listdir(tmp_path / "runs")


def test_bad_input_empty_folder_and_unwritable_out(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code, _, err = run(["vae", "--preset", "tiny-32", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "r")], capsys)
    assert code == 2 and "no images" in err and len(err.strip().splitlines()) == 1
    (tmp_path / "file").write_text("x")
    code, _, err = run(["vae", "--preset", "tiny-32", "--limit", "4", "--out", str(tmp_path / "file" / "runs")], capsys)
    assert code == 2 and "output folder" in err and len(err.strip().splitlines()) == 1


def test_tool_bad_input(trained_run, tmp_path, capsys):
    code, _, err = run(["vae-morph", str(tmp_path), "--a", "😀", "--b", "😢", "--out", str(tmp_path / "m.png")], capsys)
    assert code == 2 and "no encoder.keras" in err
    code, _, err = run(["vae-morph", str(trained_run), "--a", "no such emoji name", "--b", "😢", "--out", str(tmp_path / "m.png")], capsys)
    assert code == 2 and "neither an image file nor a built-in emoji" in err
    code, _, err = run(["vae-morph", str(trained_run), "--a", "missing.png", "--b", "😢", "--out", str(tmp_path / "m.png")], capsys)
    assert code == 2 and "image not found: missing.png" in err
    code, _, err = run(["vae-morph", str(trained_run), "--a", "😀", "--b", "😢", "--out", str(tmp_path / "nodir" / "m.png")], capsys)
    assert code == 2 and "output folder does not exist" in err
    code, _, err = run(["vae-attribute", str(trained_run), "--attr", "zzzz", "--character", "😀", "--out", str(tmp_path / "a.png")], capsys)
    assert code == 2 and "matches 0 of" in err
    assert not os.path.exists(tmp_path / "m.png") and not os.path.exists(tmp_path / "a.png")


def test_latents_cli(trained_run, tmp_path, capsys):
    import json

    chars = tmp_path / "chars"
    chars.mkdir()
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(chars / f"c{i}.png")
    code, stdout, err = run(["vae-latents", str(trained_run), "--characters", str(chars), "--count", "3",
                             "--expression-count", "4"], capsys)
    assert code == 0, err
    doc = json.loads((trained_run / "latents.json").read_text(encoding="utf-8"))
    assert doc["z_dim"] == 8 and doc["image_size"] == 32
    assert len(doc["characters"]) == 3 and {c["name"] for c in doc["characters"]} <= {f"c{i}" for i in range(5)}
    assert [e["char"] for e in doc["expressions"]] == ["😀", "😂", "😍", "😉"]  # featured expressions first
    assert doc["expressions"][0]["name"] == "grinning face"
    # z is the encoder's z_mean of the image
    enc = keras.saving.load_model(trained_run / "encoder.keras")
    from data_pipelines.images import decode_image

    img = decode_image(str(chars / f"{doc['characters'][0]['name']}.png"), 32, 3)
    z = enc.predict(img[None].astype("float32"), verbose=0)[0][0]
    np.testing.assert_allclose(doc["characters"][0]["z"], z, atol=1e-3)
    # the run's own non-emoji data is the default; an emoji-only run must name its characters
    code, _, err = run(["vae-latents", str(trained_run), "--out", str(tmp_path / "l.json")], capsys)
    assert code == 2 and "--characters is required" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "l.json").exists()


def test_loss_figure_shows_heldout_kl_and_psnr_only_when_logged(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from train.vae_plots import loss_figure

    log = tmp_path / "log.csv"
    log.write_text("epoch,kl_loss,reconstruction_loss,total_loss\n0,9,50,59\n1,10,40,50\n")
    fig = loss_figure(plt, str(log))
    assert [ax.get_title() for ax in fig.axes] == ["total loss", "reconstruction loss", "KL"]
    assert [len(ax.lines) for ax in fig.axes] == [1, 1, 1]
    plt.close(fig)
    log.write_text("epoch,kl_loss,reconstruction_loss,total_loss,val_kl,val_mse,val_psnr\n"
                   "0,9,50,59,11,0.03,15.2\n1,10,40,50,12,0.02,17.0\n")
    fig = loss_figure(plt, str(log))
    assert len(fig.axes) == 4 and fig.axes[3].get_title().startswith("held-out reconstruction PSNR")
    kl_lines = fig.axes[2].lines
    assert [line.get_label() for line in kl_lines] == ["training", "held out"]
    assert list(kl_lines[1].get_ydata()) == [11.0, 12.0]
    assert list(fig.axes[3].lines[0].get_ydata()) == [15.2, 17.0]
    plt.close(fig)
