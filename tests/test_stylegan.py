"""StyleGAN: layer shapes, the modulated convolution against a direct per-sample reference,
one training step, truncation, the directions file, toy attribute edits, and the CLI."""

import json
import math
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner

from keras_models.stylegan import (
    PRESETS,
    ModulatedConv2D,
    StyleGAN,
    build,
    generator,
    mapping_network,
    synthesis_from_w,
)
from keras_models.stylegan import directions as D

TINY = PRESETS["tiny"].network


def test_shapes():
    m, s, d = build("tiny")
    assert TINY.num_ws == 6
    z = np.random.default_rng(0).standard_normal((3, TINY.z_dim)).astype("float32")
    w = m(z)
    assert tuple(w.shape) == (3, TINY.w_dim)
    ws = np.repeat(np.asarray(w)[:, None], TINY.num_ws, 1)
    img = s(ws)
    assert tuple(img.shape) == (3, 16, 16, 3)
    assert tuple(d(img).shape) == (3, 1)
    assert tuple(synthesis_from_w(s)(w).shape) == (3, 16, 16, 3)
    assert tuple(generator(m, s)(z).shape) == (3, 16, 16, 3)
    up = ModulatedConv2D(5, upsample=True)
    assert tuple(up([np.zeros((2, 4, 4, 3), "float32"), np.zeros((2, 7), "float32")]).shape) == (2, 8, 8, 5)
    for name in ("small32", "lite64", "small64", "small128"):
        assert PRESETS[name].network.num_ws == 2 * int(math.log2(PRESETS[name].image_size)) - 2


def _reference_modconv(x, w, layer, demodulate):
    """Per-sample modulated (and demodulated) weights, convolved by explicit loops."""
    A = layer.affine.kernel.numpy() * layer.affine.scale
    ab = layer.affine.bias.numpy() * layer.affine.lr_mul
    K = layer.kernel.numpy() * layer.scale  # (k, k, cin, cout)
    k = K.shape[0]
    p = k // 2
    out = np.zeros(x.shape[:3] + (K.shape[3],), np.float64)
    for b in range(x.shape[0]):
        s = w[b] @ A + ab
        wk = K * s[None, None, :, None]
        if demodulate:
            wk = wk / np.sqrt((wk**2).sum(axis=(0, 1, 2), keepdims=True) + 1e-8)
        xp = np.pad(x[b], ((p, p), (p, p), (0, 0)))
        for i in range(x.shape[1]):
            for j in range(x.shape[2]):
                out[b, i, j] = np.einsum("abc,abcd->d", xp[i:i + k, j:j + k], wk)
    y = out + layer.bias.numpy()
    return y if layer.activation is None else np.where(y > 0, y, 0.2 * y) * math.sqrt(2)


@pytest.mark.parametrize("demodulate,activation", [(True, "lrelu"), (False, None)])
def test_modulated_conv_matches_direct_computation(demodulate, activation):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 5, 6, 3)).astype("float32")
    w = rng.standard_normal((2, 4)).astype("float32")
    layer = ModulatedConv2D(4, 3, demodulate=demodulate, use_noise=False, activation=activation)
    layer([x, w])
    layer.affine.bias.assign(rng.standard_normal(3).astype("float32"))  # styles not all ~1
    layer.bias.assign(rng.standard_normal(4).astype("float32"))
    got = np.asarray(layer([x, w]))
    want = _reference_modconv(x.astype(np.float64), w.astype(np.float64), layer, demodulate)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_noise_is_fixed_at_inference_and_random_in_training():
    layer = ModulatedConv2D(2, 3)
    x, w = np.ones((2, 4, 4, 3), "float32"), np.ones((2, 5), "float32")
    layer([x, w])
    layer.noise_strength.assign(1.0)
    a, b = np.asarray(layer([x, w])), np.asarray(layer([x, w]))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a[0], a[1], atol=1e-6)  # the same buffer for every sample
    t = np.asarray(layer([x, w], training=True))
    assert not np.allclose(t[0], t[1])


def test_train_step_finite_losses_and_state():
    m, s, d = build("tiny")
    gan = StyleGAN(m, s, d, augment="color,translation,cutout", r1_interval=1, ema_kimg=0.01)
    gan.compile(keras.optimizers.Adam(2e-3, 0.0, 0.99), keras.optimizers.Adam(2e-3, 0.0, 0.99))
    ema_before = [v.numpy().copy() for v in gan.ema_synthesis.trainable_weights or gan.ema_synthesis.weights]
    x = np.random.default_rng(0).uniform(-1, 1, (8, 16, 16, 3)).astype("float32")
    hist = gan.fit(tf.data.Dataset.from_tensor_slices(x).batch(4), epochs=1, verbose=0)
    for k in ("d_loss", "g_loss", "r1", "d_real", "d_fake"):
        assert np.isfinite(hist.history[k][-1]), k
    assert hist.history["r1"][-1] > 0
    assert int(gan.step_counter.numpy()) == 2 and float(gan.images_seen.numpy()) == 8
    assert np.abs(gan.w_avg.numpy()).sum() > 0
    ema_after = [v.numpy() for v in gan.ema_synthesis.weights]
    assert any(not np.allclose(a, b) for a, b in zip(ema_before, ema_after))


def test_counters_are_inside_the_checkpoint(tmp_path):
    """The step and image counters (R1 schedule, EMA ramp-up) are saved with the GAN's weights, so
    the backup that --resume loads holds them."""
    def make():
        m, s, d = build("tiny")
        gan = StyleGAN(m, s, d, augment="", r1_interval=2, ema_kimg=0.01)
        gan.compile(keras.optimizers.Adam(2e-3, 0.0, 0.99), keras.optimizers.Adam(2e-3, 0.0, 0.99))
        return gan

    gan = make()
    x = np.random.default_rng(0).uniform(-1, 1, (12, 16, 16, 3)).astype("float32")
    gan.fit(tf.data.Dataset.from_tensor_slices(x).batch(4), epochs=1, verbose=0)
    path = str(tmp_path / "gan.weights.h5")
    gan.save_weights(path)
    again = make()
    again.load_weights(path)
    assert int(again.step_counter.numpy()) == 3 and float(again.images_seen.numpy()) == 12


def test_style_mixing_uses_two_latents():
    m, s, d = build("tiny")
    gan = StyleGAN(m, s, d, style_mixing=1.0)
    ws, _ = gan.mixed_ws(3)
    ws = np.asarray(ws)
    assert np.allclose(ws[:, 0], ws[:, 0:1].mean(1))
    assert not np.allclose(ws[:, 0], ws[:, -1])  # cutoff in [1, num_ws): the last layer has the second w


def test_truncation_psi_zero_gives_mean_w_image():
    m, s, _ = build("tiny")
    w_avg = np.random.default_rng(2).standard_normal(TINY.w_dim).astype("float32")
    m0 = mapping_network(TINY, psi=0.0)
    m0.set_weights(m.get_weights())
    m0.get_layer("truncation").w_avg.assign(w_avg)
    z = np.random.default_rng(3).standard_normal((4, TINY.z_dim)).astype("float32")
    w = np.asarray(m0(z))
    np.testing.assert_allclose(w, np.tile(w_avg, (4, 1)), atol=1e-6)
    sw = synthesis_from_w(s)
    np.testing.assert_allclose(np.asarray(sw(w)), np.repeat(np.asarray(sw(w_avg[None])), 4, 0), atol=1e-5)
    np.testing.assert_allclose(D.truncate(np.asarray(m(z)), w_avg, 0.0), np.tile(w_avg, (4, 1)))
    # psi = 1 leaves w alone
    np.testing.assert_allclose(D.truncate(np.asarray(m(z)), w_avg, 1.0), np.asarray(m(z)), atol=1e-6)


def test_networks_save_and_load(tmp_path):
    m, s, _ = build("tiny")
    sw = synthesis_from_w(s, name="synthesis")
    w = np.random.default_rng(4).standard_normal((2, TINY.w_dim)).astype("float32")
    for model, x in ((m, w), (sw, w)):
        p = str(tmp_path / f"{model.name}.keras")
        model.save(p)
        back = keras.saving.load_model(p, compile=False)
        np.testing.assert_allclose(np.asarray(back(x)), np.asarray(model(x)), atol=1e-6)


def test_directions_file_round_trip(tmp_path):
    rng = np.random.default_rng(5)
    w_avg = rng.standard_normal(6)
    entries = {"smile": {"vector": rng.standard_normal(6), "scale": 0.7, "kind": "interfacegan", "accuracy": 0.9},
               "pc0": {"vector": rng.standard_normal(6), "scale": 1.3, "kind": "ganspace", "variance_fraction": 0.2}}
    data = D.make_directions(w_avg, entries, psi=0.8)
    path = str(tmp_path / "directions.json")
    D.save_directions(path, data)
    back = D.load_directions(path)
    assert back["w_dim"] == 6 and back["psi"] == 0.8 and set(back["directions"]) == {"smile", "pc0"}
    np.testing.assert_allclose(back["w_avg"], w_avg, atol=1e-6)
    v = entries["smile"]["vector"] / np.linalg.norm(entries["smile"]["vector"])
    np.testing.assert_allclose(back["directions"]["smile"]["vector"], v, atol=1e-6)
    edited = D.apply_edits(np.zeros(6), back["directions"], {"smile": 2, "pc0": -1})
    np.testing.assert_allclose(edited, 2 * 0.7 * v - 1.3 * back["directions"]["pc0"]["vector"], atol=1e-5)
    with pytest.raises(KeyError):
        D.apply_edits(np.zeros(6), back["directions"], {"nope": 1})
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ValueError, match="not an Emotekit"):
        D.load_directions(str(bad))


def test_toy_edit_moves_its_score_and_not_the_other():
    """Two correlated attributes in a toy w space: the orthogonalised boundary of one moves its
    score and leaves the other's (linear) score unchanged."""
    rng = np.random.default_rng(6)
    ws = rng.standard_normal((2000, 10))
    a = np.eye(10)[0]
    b = (np.eye(10)[0] + np.eye(10)[1]) / math.sqrt(2)  # 45 degrees from a
    scores = {"a": ws @ a + 0.1 * rng.standard_normal(2000), "b": ws @ b + 0.1 * rng.standard_normal(2000)}
    raw = D.fit_boundaries(ws, scores)
    assert raw["a"][1] > 0.95 and np.dot(raw["a"][0], a) > 0.95 and np.dot(raw["b"][0], b) > 0.95
    ortho = D.orthogonalize({k: v for k, (v, _) in raw.items()})
    # conditional editing: each direction is orthogonal to the other's boundary
    assert abs(np.dot(ortho["a"], raw["b"][0])) < 1e-6 and abs(np.dot(ortho["b"], raw["a"][0])) < 1e-6
    dirs = {k: {"vector": v, "scale": 1.0} for k, v in ortho.items()}
    moved = D.apply_edits(ws[:100], dirs, {"a": 2})
    assert np.mean(moved @ a - ws[:100] @ a) > 1.0
    assert abs(np.mean(moved @ b - ws[:100] @ b)) < 0.25
    raw_moved = ws[:100] + 2 * raw["a"][0]
    assert np.mean(raw_moved @ b - ws[:100] @ b) > 1.0  # the raw boundary would have dragged b along


def test_pca_directions_find_the_widest_axis():
    rng = np.random.default_rng(7)
    ws = rng.standard_normal((500, 5)) * np.array([0.1, 3.0, 0.2, 0.1, 0.1])
    vecs, stds, fracs = D.pca_directions(ws, 2)
    assert abs(vecs[0][1]) > 0.99 and 2.5 < stds[0] < 3.5 and fracs[0] > 0.9


def test_image_scores_follow_the_image():
    x = np.full((4, 64, 64, 3), 230, np.uint8)  # light background / skin
    x[0, :12] = 20  # dark hair on top
    x[1, :12] = 250
    x[2, :12], x[2, 40:, :10], x[2, 40:, -10:] = (200, 30, 60), (200, 30, 60), (200, 30, 60)  # long red hair
    x[3, :12] = (200, 30, 60)
    x[3, 32:34, 22:42] = 0  # glasses: a frame across the nose bridge
    x[3, 29:38, 31] = 0
    x[1, 48:56, 26:38] = 10  # an open mouth
    s = D.image_scores(x)
    assert s["hair_brightness"][0] < s["hair_brightness"][1]
    assert s["hair_hue_red"][2] > 0.5
    assert s["hair_length"][2] > s["hair_length"][3]
    assert s["mouth_open"][1] > s["mouth_open"][0]
    assert s["glasses"][3] > s["glasses"][0]


class _Result:
    def __init__(self, exit_code, output):
        self.exit_code, self.output = exit_code, output


def _cli(args):
    """`python -m train ARGS` in-process; user errors become exit status 2 and one line, as run_cli does."""
    from core.cli import user_errors
    from train.__main__ import cli

    os.environ["EMOTEKIT_QUIET"] = "1"
    res = CliRunner().invoke(cli, args)
    if res.exception is not None and isinstance(res.exception, user_errors()):
        return _Result(2, res.output + f"error: {res.exception}")
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return _Result(res.exit_code, res.output)


@pytest.fixture
def faces(tmp_path):
    from PIL import Image

    d = tmp_path / "faces"
    d.mkdir()
    rng = np.random.default_rng(8)
    for i in range(12):
        im = np.full((16, 16, 3), 220, np.uint8)
        im[:4] = rng.integers(0, 255, 3)
        Image.fromarray(im).save(d / f"{i}.png")
    return str(d)


def test_cli_bad_input(tmp_path, faces):
    r = _cli(["stylegan", "--out", str(tmp_path / "runs")])
    assert r.exit_code != 0 and "--data is required" in r.output
    r = _cli(["stylegan", "--data", faces, "--preset", "nope", "--out", str(tmp_path / "runs")])
    assert r.exit_code != 0 and "unknown --preset" in r.output
    r = _cli(["stylegan", "--data", faces, "--image-size", "32", "--preset", "tiny", "--out", str(tmp_path / "runs")])
    assert r.exit_code != 0 and "is 16x16" in r.output
    r = _cli(["stylegan-edit", str(tmp_path), "--seed", "1", "--out", str(tmp_path / "x.png")])
    assert r.exit_code != 0 and "not a run directory" in r.output
    assert not (tmp_path / "runs").exists() or not os.listdir(tmp_path / "runs")


@pytest.mark.parametrize("flags", [["--strategy", "mirrored"], ["--mixed-precision", "bf16"], ["--tpu", "local"],
                                   ["--strategy", "tpu", "--tpu", "grpc://127.0.0.1:1"]])
def test_cli_refuses_distribution_and_mixed_precision(tmp_path, faces, flags):
    """stylegan's step is single-device float32: --strategy, --tpu and --mixed-precision are refused
    in one line before anything is created (they used to be accepted and silently ignored)."""
    out = tmp_path / "runs"
    tiny = ["--preset", "tiny", "--batch-size", "4", "--kimg-per-epoch", "0.01", "--epochs", "1", "--samples", "4", "--out", str(out)]
    for extra in (["--dry-run"], []):
        r = _cli(["stylegan", "--data", faces, *tiny, *flags, *extra])
        assert r.exit_code == 2, r.output[-2000:]
        last = r.output.strip().splitlines()[-1]
        assert last.startswith("error: stylegan trains on one device in float32") and flags[-2] in last and "not supported" in last
        assert "Traceback" not in r.output and "train:" not in r.output
    assert not out.exists() or not os.listdir(out)


@pytest.mark.slow
def test_cli_train_directions_edit_sheet_export(tmp_path, faces):
    out = tmp_path / "runs"
    r = _cli(["stylegan", "--data", faces, "--preset", "tiny", "--batch-size", "4", "--kimg-per-epoch", "0.01",
              "--epochs", "2", "--samples", "4", "--out", str(out)])
    assert r.exit_code == 0, r.output
    run = str(out / os.listdir(out)[0])
    for f in ("mapping.keras", "synthesis.keras", "synthesis_ws.keras", "samples/epoch_0001.png", "samples/epoch_0002.png",
              "progress.gif", "log.csv", "backup/latest.weights.h5"):
        assert os.path.isfile(os.path.join(run, f)), f
    opts = json.load(open(os.path.join(run, "options.json")))  # --jit-compile auto on a short run: off, untimed
    assert opts["jit_compile"] == "auto" and opts["jit_compile_resolved"] == "off" and "jit_compile_timings" not in opts
    assert opts["jit_compile_short_run"] == 2 * int(round(10 / 4)) and "jit-compile auto: XLA off, untimed" in r.output
    r = _cli(["stylegan-edit", run, "--seed", "3", "--attr", "hair_length=1", "--out", str(tmp_path / "e.png")])
    assert r.exit_code != 0 and "stylegan-directions" in r.output
    r = _cli(["stylegan-directions", run, "--samples", "120", "--components", "2"])
    assert r.exit_code == 0, r.output
    data = D.load_directions(os.path.join(run, "directions.json"))
    assert {"pc0", "pc1"} <= set(data["directions"])
    name = next(k for k, e in data["directions"].items() if e["kind"] == "interfacegan")
    r = _cli(["stylegan-edit", run, "--seed", "3", "--attr", f"{name}=+2", "--attr", "pc0=-1", "--out", str(tmp_path / "e.png")])
    assert r.exit_code == 0, r.output
    from PIL import Image

    assert Image.open(tmp_path / "e.png").size == (64, 64)
    r = _cli(["stylegan-edit", run, "--seed", "3", "--attr", "nope=1", "--out", str(tmp_path / "f.png")])
    assert r.exit_code != 0 and "unknown attribute" in r.output and not (tmp_path / "f.png").exists()
    r = _cli(["stylegan-sheet", run, "--attr", "pc0", "--seeds", "0,1", "--out", str(tmp_path / "s.png"), "--scale", "1"])
    assert r.exit_code == 0, r.output
    assert Image.open(tmp_path / "s.png").size == (7 * 18 + 2, 2 * 18 + 2)
    r = _cli(["stylegan", "--resume", run, "--epochs", "3"])
    assert r.exit_code == 0, r.output
    assert f"jit-compile auto: XLA {opts['jit_compile_resolved']}, the run's recorded choice" in r.output
    assert json.load(open(os.path.join(run, "backup", "training_metadata.json")))["epoch"] == 3

    from export.cli import cli as export_cli

    r = CliRunner().invoke(export_cli, ["tflite", run, "--quant", "fp32", "--out", str(tmp_path / "exp"), "--verify-size", "4"],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    manifest = json.load(open(tmp_path / "exp" / "manifest.json"))
    tasks = {m["task"]: m for m in manifest["models"]}
    assert {"stylegan-mapping", "stylegan-synthesis", "stylegan-directions"} <= set(tasks)
    assert os.path.isfile(tmp_path / "exp" / tasks["stylegan-directions"]["path"])


def test_quick_run_is_quick_and_clean(tmp_path, faces):
    """`train stylegan --limit N --epochs 1`, a user's first try: an epoch is one pass over the N
    images (not 1000 images: 62 steps), and --jit-compile auto does not time XLA, whose compile
    alone took minutes here (268 s for the run before). The log has no native noise (TF's
    `remapper failed`): stderr is empty. The 60 s bound is the issue's, for its 64-px run; this
    16-px one takes a few seconds of steps plus start-up."""
    import subprocess
    import sys
    import time

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["EMOTEKIT_QUIET"] = "1"
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "train", "stylegan", "--data", faces, "--preset", "tiny", "--limit", "16",
                           "--epochs", "1", "--samples", "4", "--out", str(tmp_path / "runs")],
                          cwd=root, env=env, capture_output=True, text=True, timeout=600)
    seconds = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "jit-compile auto: XLA off, untimed (a short run: 1 step" in proc.stdout, proc.stdout
    assert "batch 12, 1 step per epoch" in proc.stdout
    assert proc.stderr.strip() == "", proc.stderr
    assert seconds < 60, f"{seconds:.0f} s"
    (run,) = list((tmp_path / "runs").iterdir())
    opts = json.load(open(run / "options.json"))
    assert opts["kimg_per_epoch"] == 0.016 and opts["jit_compile_resolved"] == "off" and "jit_compile_timings" not in opts


def test_jit_auto_is_untimed_only_for_a_short_run(tmp_path, monkeypatch):
    """A run under SHORT_RUN_STEPS train steps cannot win back XLA's minutes of compiling: auto is
    off there without the trial; a longer run, or a caller that gives no step count, times it."""
    import train.jit as J

    timed = []

    def fake_time_modes(build, batch_shape):
        timed.append(batch_shape)
        return {"off": 10.0, "on": 20.0}, {}

    monkeypatch.setattr(J, "time_modes", fake_time_modes)
    run = tmp_path / "run"
    run.mkdir()
    (run / "options.json").write_text(json.dumps({"kind": "stylegan", "jit_compile": "auto"}))
    assert J.resolve_jit_compile({"jit_compile": "auto"}, str(run), False, None, None, (4, 16, 16, 3),
                                 run_steps=J.SHORT_RUN_STEPS - 1) is False
    assert timed == [] and json.load(open(run / "options.json"))["jit_compile_short_run"] == J.SHORT_RUN_STEPS - 1
    assert J.resolve_jit_compile({"jit_compile": "auto"}, str(run), False, None, None, (4, 16, 16, 3), run_steps=J.SHORT_RUN_STEPS) is True
    assert J.resolve_jit_compile({"jit_compile": "auto"}, str(run), False, None, None, (4, 16, 16, 3)) is True
    assert len(timed) == 2
