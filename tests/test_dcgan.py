"""DCGAN: network shapes per preset and size, one training step, DiffAugment, --resume,
claimable ids (same id -> same pixels), the JS/Python noise equality and --jit-compile auto|on|off.

Every network trained here has at least 16 channels in each hidden conv layer: TensorFlow 2.21's
oneDNN crashes on AVX-512 CPUs training 8-channel convolutions (issue 12)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JS = os.path.join(ROOT, "mobile_demo", "static", "js", "emote_noise.js")


def test_noise_is_deterministic_standard_normal_and_checked():
    from keras_models.common.noise import noise_for_id, noise_for_ids

    a = noise_for_id(42, 100)
    assert a.dtype == np.float32 and a.shape == (100,)
    assert np.array_equal(a, noise_for_id(42, 100))
    assert not np.array_equal(a, noise_for_id(43, 100))
    assert np.array_equal(noise_for_id(42, 7), a[:7])  # a prefix of the same stream
    z = noise_for_ids(range(400), 100)
    assert abs(z.mean()) < 0.02 and abs(z.std() - 1) < 0.02
    for bad in (-1, 2**32, 1.5, "3", True):
        with pytest.raises(ValueError, match="emote id"):
            noise_for_id(bad, 10)


@pytest.mark.skipif(shutil.which("node") is None, reason="node not installed")
def test_js_noise_matches_python_bit_for_bit():
    from keras_models.common.noise import noise_for_id

    ids = list(range(300)) + [1234567, 2**31 - 1, 2**31, 2**32 - 1]
    script = (
        f"import {{ noiseForId }} from {json.dumps('file://' + JS)};\n"
        f"const ids = {json.dumps(ids)};\n"
        "for (const nz of [100, 128, 7]) for (const id of ids) "
        "console.log(nz, id, Buffer.from(noiseForId(id, nz).buffer).toString('hex'));\n"
        "try { noiseForId(-1, 4); console.log('no error'); } catch (e) { console.log('RangeError', e instanceof RangeError); }\n"
    )
    out = subprocess.run(["node", "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60, check=True).stdout
    lines = out.strip().splitlines()
    assert lines[-1] == "RangeError true"
    assert len(lines) == 3 * len(ids) + 1
    for line in lines[:-1]:
        nz, i, hexbytes = line.split()
        assert noise_for_id(int(i), int(nz)).astype("<f4").tobytes().hex() == hexbytes, (nz, i)


@pytest.mark.parametrize("preset", ["pytorch-tutorial", "keras-io"])
@pytest.mark.parametrize("size", [32, 64, 128])
def test_network_shapes(preset, size):
    from keras_models.dcgan import get_preset

    p = get_preset(preset)
    g, d = p.build(size, width=4, d_width=4)
    z = np.random.default_rng(0).standard_normal((2, p.nz)).astype("float32")
    img = np.asarray(g(z, training=False))
    assert img.shape == (2, size, size, 3)
    assert img.min() >= -1 and img.max() <= 1
    prob = np.asarray(d(img, training=False))
    assert prob.shape == (2, 1) and ((prob > 0) & (prob < 1)).all()


def test_tutorial_network_matches_pytorch_parameter_counts():
    from keras_models.dcgan import get_preset

    g, d = get_preset("pytorch-tutorial").build(64)
    trainable = lambda m: sum(int(np.prod(w.shape)) for w in m.trainable_weights)  # noqa: E731
    # The PyTorch DCGAN tutorial's netG / netD (nz 100, ngf = ndf = 64): 3,576,704 and 2,765,568.
    assert trainable(g) == 3_576_704 and trainable(d) == 2_765_568
    assert [layer.filters for layer in g.layers if "convt" in layer.name] == [512, 256, 128, 64, 3]


def test_bad_sizes_and_policies_are_clear():
    from keras_models.common.augment import diff_augment
    from keras_models.dcgan import get_preset, tutorial_generator

    with pytest.raises(ValueError, match="power of two"):
        tutorial_generator(image_size=48)
    with pytest.raises(ValueError, match="unknown DiffAugment policy"):
        diff_augment(np.zeros((1, 8, 8, 3), "float32"), "colour")
    with pytest.raises(ValueError, match="unknown DCGAN preset"):
        get_preset("stylegan")


def test_diff_augment_is_differentiable_and_seeded():
    import tensorflow as tf

    from keras_models.common.augment import diff_augment

    x = tf.Variable(tf.random.uniform((4, 16, 16, 3), -1, 1, seed=1))
    seed = tf.constant([1, 2])
    with tf.GradientTape() as tape:
        y = diff_augment(x, "color,translation,cutout", seed)
        loss = tf.reduce_sum(y**2)
    assert y.shape == x.shape
    g = tape.gradient(loss, x)
    assert g is not None and np.isfinite(g.numpy()).all() and float(tf.reduce_sum(tf.abs(g))) > 0
    assert np.array_equal(y.numpy(), diff_augment(x, "color,translation,cutout", seed).numpy())
    # cutout zeroes a square of half the side in every image
    cut = diff_augment(tf.ones((3, 16, 16, 3)), "cutout", seed).numpy()
    assert all((c == 0).all(axis=-1).sum() >= 16 for c in cut)


@pytest.mark.parametrize("preset", ["pytorch-tutorial", "keras-io"])
def test_one_train_step_gives_finite_losses(preset):
    import keras

    from keras_models.dcgan import DCGAN, get_preset

    p = get_preset(preset)
    g, d = p.build(32, width=16, d_width=16)
    gan = DCGAN(d, g, p.nz, augment="color,translation,cutout", label_smoothing=0.1, label_noise=0.05, ema_decay=0.9, seed=1)
    gan.compile(keras.optimizers.Adam(p.lr, beta_1=p.beta_1), keras.optimizers.Adam(p.lr, beta_1=p.beta_1),
                keras.losses.BinaryCrossentropy())
    before = [w.numpy().copy() for w in g.trainable_weights]
    ema_before = [w.numpy().copy() for w in gan.ema_generator.weights]
    x = np.random.default_rng(0).uniform(-1, 1, (8, 32, 32, 3)).astype("float32")
    hist = gan.fit(x, batch_size=4, epochs=1, verbose=0, shuffle=False)
    for k in ("d_loss", "g_loss", "d_real", "d_fake"):
        assert np.isfinite(hist.history[k][0]), k
    assert int(gan.d_optimizer.iterations) == 2 and int(gan.g_optimizer.iterations) == 2
    assert any(not np.array_equal(b, w.numpy()) for b, w in zip(before, g.trainable_weights))
    assert any(not np.array_equal(b, w.numpy()) for b, w in zip(ema_before, gan.ema_generator.weights))


# ---- CLI ---------------------------------------------------------------------------------


class _Result:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def _cli(args):
    """`python -m train ARGS` in-process (TF is imported once per test session); user errors
    become exit status 2 and one line, as run_cli does."""
    from click.testing import CliRunner

    from core.cli import user_errors
    from train.__main__ import cli

    os.environ["EMOTEKIT_QUIET"] = "1"
    res = CliRunner().invoke(cli, args)
    if res.exception is not None and isinstance(res.exception, user_errors()):
        return _Result(2, res.output, f"error: {res.exception}")
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return _Result(res.exit_code, res.output, res.output)


def _subprocess_cli(args):
    env = dict(os.environ, EMOTEKIT_QUIET="1", TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "train", *args], cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    from PIL import Image

    folder = tmp_path_factory.mktemp("faces")
    rng = np.random.default_rng(0)
    for i in range(12):
        a = np.full((20, 20, 3), rng.integers(0, 255, 3), np.uint8)
        a[5:15, 5:15] = rng.integers(0, 255, 3)
        Image.fromarray(a).save(folder / f"im{i}.png")
    return str(folder)


TINY = ["--image-size", "32", "--width", "16", "--d-width", "16", "--batch-size", "4", "--samples", "4"]  # >= 16 channels (oneDNN)


@pytest.fixture(scope="module")
def finished_run(tiny_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    r = _cli(["dcgan", "--data", tiny_folder, *TINY, "--epochs", "1", "--ema-decay", "0.9", "--out", str(out)])
    assert r.returncode == 0, r.stderr[-2000:]
    (run,) = [os.path.join(out, d) for d in os.listdir(out)]
    return run


def test_run_directory_contents(finished_run):
    for name in ("generator.keras", "options.json", "log.csv", "samples/epoch_0001.png", "progress.gif", "metrics.json", "novelty.png",
                 "tensorboard"):
        assert os.path.exists(os.path.join(finished_run, name)), name
    with open(os.path.join(finished_run, "options.json")) as f:
        opts = json.load(f)
    assert opts["kind"] == "dcgan" and opts["nz"] == 100
    with open(os.path.join(finished_run, "metrics.json")) as f:
        m = json.load(f)
    assert np.isfinite(m["novelty_ratio"]) and np.isfinite(m["diversity"])
    # the EMA generator's figures, and the live one's beside them (either may be shipped)
    assert m["generator"] == "generator_ema.keras" and os.path.isfile(os.path.join(finished_run, "generator_ema.keras"))
    raw = m["raw"]
    assert raw["generator"] == "generator.keras" and np.isfinite(raw["novelty_ratio"]) and np.isfinite(raw["diversity"])
    assert raw["samples"] == m["samples"] == 4


def test_sample_ids_give_identical_pixels(finished_run, tmp_path):
    from PIL import Image

    a = _cli(["dcgan-sample", finished_run, "--id", "5", "--no-ema", "--out", str(tmp_path / "a.png")])
    assert a.returncode == 0, a.stderr[-2000:]
    b = _cli(["dcgan-sample", finished_run, "--id", "4", "--count", "3", "--no-ema", "--out", str(tmp_path / "many")])
    assert b.returncode == 0, b.stderr[-2000:]
    one = np.asarray(Image.open(tmp_path / "a.png"))
    again = np.asarray(Image.open(tmp_path / "many" / "emote-5.png"))
    assert one.shape == (32, 32, 3) and np.array_equal(one, again)
    assert not np.array_equal(one, np.asarray(Image.open(tmp_path / "many" / "emote-4.png")))
    # the same in-process, from the id's documented noise
    import keras

    from core.images import to_uint8
    from keras_models.dcgan import noise_for_id

    gen = keras.saving.load_model(os.path.join(finished_run, "generator.keras"), compile=False)
    assert np.array_equal(to_uint8(gen.predict(noise_for_id(5, 100)[None], verbose=0))[0], one)


def test_sample_errors_are_one_line(finished_run, tmp_path):
    r = _subprocess_cli(["dcgan-sample", str(tmp_path), "--id", "1", "--out", str(tmp_path / "x.png")])
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].startswith("error: ") and "not a run directory" in r.stderr
    assert "Traceback" not in r.stderr
    r = _cli(["dcgan-sample", finished_run, "--id", str(2**32 - 1), "--count", "2", "--out", str(tmp_path / "x.png")])
    assert r.returncode == 2 and "largest id" in r.stderr
    r = _cli(["dcgan", "--preset", "nope", "--dry-run"])
    assert r.returncode == 2 and "unknown --preset" in r.stderr and "Traceback" not in r.stderr


def test_jit_compile_auto_records_choice_and_timings(finished_run):
    """The default --jit-compile auto timed both modes on this machine and kept the faster: whichever
    won here, the choice, both images/s and the CPU are in options.json."""
    from core.cpu import cpu_kind

    with open(os.path.join(finished_run, "options.json")) as f:
        opts = json.load(f)
    assert opts["jit_compile"] == "auto"
    timings = opts["jit_compile_timings"]
    assert set(timings) == {"off", "on"} and timings["off"] > 0
    if timings["on"] is None:  # XLA unavailable here: recorded why, and off
        assert opts["jit_compile_errors"]["on"] and opts["jit_compile_resolved"] == "off"
    else:
        assert timings["on"] > 0
        assert opts["jit_compile_resolved"] == ("on" if timings["on"] > timings["off"] else "off")
    assert opts["jit_compile_cpu"] == cpu_kind()


def _no_timing(*a, **k):
    raise AssertionError("--jit-compile timed the modes although it had a choice")


def _spy_compile(monkeypatch):
    """Records the jit_compile every DCGAN is compiled with."""
    from keras_models.dcgan import DCGAN

    seen, real = [], DCGAN.compile

    def compile(self, *a, **k):
        seen.append(k.get("jit_compile"))
        return real(self, *a, **k)

    monkeypatch.setattr(DCGAN, "compile", compile)
    return seen


def test_jit_compile_off_is_honoured(tiny_folder, tmp_path, monkeypatch):
    import train.jit

    monkeypatch.setattr(train.jit, "time_modes", _no_timing)
    seen = _spy_compile(monkeypatch)
    out = tmp_path / "runs"
    r = _cli(["dcgan", "--data", tiny_folder, *TINY, "--epochs", "1", "--jit-compile", "off", "--out", str(out)])
    assert r.returncode == 0, r.stderr[-2000:]
    assert "jit-compile: XLA off (--jit-compile off)" in r.stdout
    assert seen == [False]  # one model, no trial copies
    (run,) = [os.path.join(out, d) for d in os.listdir(out)]
    with open(os.path.join(run, "options.json")) as f:
        opts = json.load(f)
    assert opts["jit_compile"] == "off" and opts["jit_compile_resolved"] == "off" and "jit_compile_timings" not in opts
    # resumed without the flag: still off, still untimed
    r = _cli(["dcgan", "--resume", run, "--epochs", "2"])
    assert r.returncode == 0, r.stderr[-2000:]
    assert seen == [False, False] and "XLA off" in r.stdout


def test_resolve_jit_compile_rules(tmp_path, monkeypatch):
    """auto keeps the faster of the timed modes (off when XLA fails), records it in RUN/options.json;
    a resume keeps the recorded choice; on/off win; a distribution strategy means off (old runs' values:
    tests/test_legacy.py)."""
    import train.jit as J

    run = tmp_path / "run"
    run.mkdir()
    (run / "options.json").write_text(json.dumps({"kind": "dcgan", "jit_compile": "auto", "epochs": 3}))
    cases = (({"off": 2.0, "on": 1.0}, {}, "off"), ({"off": 1.0, "on": 3.0}, {}, "on"), ({"off": 1.0, "on": None}, {"on": "no XLA"}, "off"))
    for ips, errors, want in cases:
        monkeypatch.setattr(J, "time_modes", lambda build, shape, r=(ips, errors): (dict(r[0]), dict(r[1])))
        opts = {"jit_compile": "auto"}
        assert J.resolve_jit_compile(opts, str(run), False, None, None, (4, 32, 32, 3)) is (want == "on")
        with open(run / "options.json") as f:
            saved = json.load(f)
        assert saved["jit_compile_resolved"] == want and saved["jit_compile_timings"] == ips and saved["epochs"] == 3
        assert saved.get("jit_compile_errors", {}) == errors and opts["jit_compile_resolved"] == want
    monkeypatch.setattr(J, "time_modes", _no_timing)
    assert J.resolve_jit_compile(dict(saved), str(run), True, None, None, (4, 32, 32, 3)) is False  # the recorded "off"
    monkeypatch.setattr(J, "_given_on_command_line", lambda *a: True)  # --resume RUN --jit-compile auto: times again
    monkeypatch.setattr(J, "time_modes", lambda build, shape: ({"off": 1.0, "on": 5.0}, {}))
    assert J.resolve_jit_compile(dict(saved), str(run), True, None, None, (4, 32, 32, 3)) is True
    monkeypatch.setattr(J, "time_modes", _no_timing)
    assert J.resolve_jit_compile({"jit_compile": "on"}, str(run), True, None, None, (4, 32, 32, 3)) is True
    with open(run / "options.json") as f:
        saved = json.load(f)
    assert saved["jit_compile"] == "on" and saved["jit_compile_resolved"] == "on"
    assert J.resolve_jit_compile({"jit_compile": "auto", "strategy": "mirrored"}, "", False, object(), None, (4, 32, 32, 3)) is False
    assert J.resolve_jit_compile({"jit_compile": "on", "strategy": "mirrored"}, "", False, object(), None, (4, 32, 32, 3)) is True


def test_resume_finished_run_continues_epochs(finished_run, tmp_path, monkeypatch):
    import train.jit

    run = str(tmp_path / "run")
    shutil.copytree(finished_run, run)
    monkeypatch.setattr(train.jit, "time_modes", _no_timing)  # a resumed run keeps its recorded choice
    seen = _spy_compile(monkeypatch)
    r = _cli(["dcgan", "--resume", run, "--epochs", "2"])
    assert r.returncode == 0, r.stderr[-2000:]
    assert "after epoch 1" in r.stdout
    resolved = json.load(open(os.path.join(run, "options.json")))["jit_compile_resolved"]
    assert f"jit-compile auto: XLA {resolved}, the run's recorded choice" in r.stdout and seen == [resolved == "on"]
    with open(os.path.join(run, "log.csv")) as f:
        assert [row["epoch"] for row in csv.DictReader(f)] == ["0", "1"]
    assert os.path.exists(os.path.join(run, "samples", "epoch_0002.png"))
    r = _cli(["dcgan", "--resume", run, "--epochs", "2"])
    assert r.returncode == 2 and "already trained 2 epochs" in r.stderr


def test_finished_run_of_an_earlier_version_is_adopted(finished_run, tmp_path, monkeypatch):
    """Earlier versions deleted backup/ at the end and kept gan.weights.h5 + state.json: --resume
    turns them into backup/ once and continues from that epoch."""
    import train.jit

    run = str(tmp_path / "run")
    shutil.copytree(finished_run, run)
    shutil.move(os.path.join(run, "backup", "latest.weights.h5"), os.path.join(run, "gan.weights.h5"))
    shutil.rmtree(os.path.join(run, "backup"))
    with open(os.path.join(run, "state.json"), "w") as f:
        json.dump({"epochs_done": 1}, f)
    monkeypatch.setattr(train.jit, "time_modes", _no_timing)
    r = _cli(["dcgan", "--resume", run, "--epochs", "2"])
    assert r.returncode == 0, r.stderr[-2000:]
    assert "now backup/" in r.stdout and "after epoch 1" in r.stdout
    with open(os.path.join(run, "log.csv")) as f:
        assert [row["epoch"] for row in csv.DictReader(f)] == ["0", "1"]
    assert json.load(open(os.path.join(run, "backup", "training_metadata.json")))["epoch"] == 2


def test_resume_interrupted_run(tiny_folder, tmp_path, monkeypatch):
    """Killed after epoch 2 of 3: --resume restores the backup and trains epoch 3 only."""
    import keras

    import train.dcgan as mod
    from train.rundirs import load_run_options

    class Crash(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    real = mod.training_callbacks
    monkeypatch.setattr(mod, "training_callbacks", lambda *a, **k: real(*a, **k) + [Crash()])
    from click.testing import CliRunner

    out = str(tmp_path / "runs")
    res = CliRunner().invoke(mod.dcgan, ["--data", tiny_folder, *TINY, "--epochs", "3", "--jit-compile", "off", "--out", out])
    assert res.exit_code != 0  # click turns the KeyboardInterrupt into Abort
    (run,) = [os.path.join(out, d) for d in os.listdir(out)]
    assert not os.path.exists(os.path.join(run, "generator.keras"))
    assert os.path.isdir(os.path.join(run, "backup"))
    monkeypatch.setattr(mod, "training_callbacks", real)
    res = CliRunner().invoke(mod.dcgan, ["--resume", run])
    assert res.exit_code == 0, res.output
    assert "Epoch 3/3" in res.output and "Epoch 1/3" not in res.output
    assert os.path.exists(os.path.join(run, "generator.keras"))
    assert load_run_options(run, "dcgan")["epochs"] == 3
    with open(os.path.join(run, "log.csv")) as f:
        assert [row["epoch"] for row in csv.DictReader(f)] == ["0", "1", "2"]
