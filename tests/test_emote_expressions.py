"""Issue 26, item 4 and 6: the expression emote generator (dcgan --condition), its judge (emote-judge), its
export (noise_and_expression) and the ranked ids (export emote-ids), on tiny models trained here."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import numpy as np
import pytest
from clirun import run_command, run_train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EMOJI_MAP = os.path.join(ROOT, "mobile_demo", "static", "emoji_map.json")
JS = os.path.join(ROOT, "mobile_demo", "static", "js", "emote_dcgan.js")


def run_export(args, monkeypatch, capsys):
    from export.__main__ import cli

    return run_command(cli, "python -m export", args, monkeypatch, capsys)


def test_expression_targets_and_balance(tmp_path):
    from core.errors import DataError
    from data_pipelines import load_source
    from data_pipelines.expression_targets import balanced_indices, read_weights, with_expression_targets

    images, weights, left_out = with_expression_targets(load_source("emoji:twemoji", 16, 3), EMOJI_MAP)
    assert len(images) == len(weights) > 100 and left_out >= 0
    assert np.allclose(weights.sum(1), 1, atol=1e-5) and np.array_equal(images.labels, weights.argmax(1))
    assert images.names[images.labels.tolist().index(3)] == "grinning face"  # happy
    idx = balanced_indices(images.labels, 0.5, seed=1)
    counts = np.bincount(images.labels[idx], minlength=7)
    assert set(range(len(images))) <= set(idx.tolist())
    assert counts.min() >= np.ceil(0.5 * np.bincount(images.labels).max())
    bad = tmp_path / "bad.json"
    for text in ("{", json.dumps({"labels": ["a"], "emoji": []}),
                 json.dumps({"labels": json.load(open(EMOJI_MAP))["labels"], "emoji": [{"name": "x", "weights": {"happy": 0.5}}]})):
        bad.write_text(text)
        with pytest.raises(DataError):
            read_weights(str(bad))


def test_conditional_step_gives_finite_losses_and_class_outputs():
    import keras

    from keras_models.dcgan import ConditionalDCGAN, get_preset

    g, d = get_preset("pytorch-tutorial").build(32, 16, 16, num_classes=7)
    assert g.input_shape == (None, 107) and g.inputs[0].name.startswith("noise_and_expression")
    assert [tuple(s) for s in d.output_shape] == [(None, 1), (None, 7)]
    gan = ConditionalDCGAN(d, g, 100, 7, augment="translation")
    gan.compile(keras.optimizers.Adam(2e-4, 0.5), keras.optimizers.Adam(2e-4, 0.5), keras.losses.BinaryCrossentropy())
    x = np.random.default_rng(0).uniform(-1, 1, (8, 32, 32, 3)).astype("float32")
    y = np.eye(7, dtype="float32")[np.arange(8) % 7]
    logs = gan.train_on_batch(x, y, return_dict=True)
    assert all(np.isfinite(v) for v in logs.values()) and {"d_class_acc", "g_class_acc"} <= set(logs)
    with pytest.raises(ValueError, match="latent_dim"):
        ConditionalDCGAN(d, g, 99, 7)


def test_train_sample_export_judge_and_rank(tmp_path, monkeypatch, capsys):
    """A one-epoch expression generator, its int8 export, a one-epoch judge and the ranked ids, on the
    emoji of every installed set; then a plain generator refused by emote-ids."""
    out = tmp_path
    code, text, err = run_train(["dcgan", "--data", "emoji:all", "--condition", EMOJI_MAP, "--image-size", "32", "--width", "16",
                                 "--d-width", "16", "--batch-size", "32", "--epochs", "1", "--jit-compile", "off",
                                 "--out", out / "runs"], monkeypatch, capsys)
    assert code == 0, err
    assert "expression targets from" in text
    run = str(next((out / "runs").iterdir()))
    # id + expression -> the same pixels; another expression, another emote; --expression required
    paths = {}
    for name, expr in (("a", "sad"), ("b", "sad"), ("c", "happy")):
        code, _, err = run_train(["dcgan-sample", run, "--id", "5", "--expression", expr, "--out", out / f"{name}.png"],
                                 monkeypatch, capsys)
        assert code == 0, err
        paths[name] = (out / f"{name}.png").read_bytes()
    assert paths["a"] == paths["b"] and paths["a"] != paths["c"]
    code, _, err = run_train(["dcgan-sample", run, "--id", "5", "--out", out / "x.png"], monkeypatch, capsys)
    assert code != 0 and "--expression" in err and "Traceback" not in err and not (out / "x.png").exists()
    # export: the input is the noise then the one-hot, recorded in the manifest
    models = out / "models"
    code, _, err = run_export(["tflite", os.path.join(run, "generator.keras"), "--quant", "int8", "--out", models,
                               "--name", "emote_generator_int8", "--task", "emote-generator", "--verify-size", "32",
                               "--calib-size", "200", "--min-psnr", "5"], monkeypatch, capsys)
    assert code == 0, err
    entry = json.load(open(models / "manifest.json"))["models"][0]
    assert entry["input"]["name"] == "noise_and_expression" and entry["input"]["noise_size"] == 100
    assert entry["input"]["expression_labels"] == json.load(open(EMOJI_MAP))["labels"]
    # the judge, held out one image of every emoji
    code, text, err = run_train(["emote-judge", "--condition", EMOJI_MAP, "--out", out / "judge", "--epochs", "1", "--image-size", "32"],
                                monkeypatch, capsys)
    assert code == 0, err
    judge = json.load(open(out / "judge" / "judge.json"))
    assert 0 <= judge["heldout"]["accuracy"] <= 1 and judge["heldout"]["count"] >= 100
    assert np.array(judge["heldout"]["confusion"]).sum() == judge["heldout"]["count"]
    # ranked ids: keep per expression, each the judge's best of the scanned ones
    code, text, err = run_export(["emote-ids", models / "emote_generator_int8.tflite", "--judge", out / "judge" / "judge.keras",
                                  "--scan", "16", "--keep", "4", "--sheets", out / "sheets"], monkeypatch, capsys)
    assert code == 0, err
    doc = json.load(open(models / "emote-ids.json"))
    assert set(doc["ids"]) == set(entry["input"]["expression_labels"])
    assert all(len(v) == 4 and len(set(v)) == 4 and all(0 <= i < 16 for i in v) for v in doc["ids"].values())
    o = doc["measured"]["overall"]
    assert 0 <= o["judged_as_asked"] <= 1 and o["judged_as_asked_shown_first"] >= o["judged_as_asked"] - 1e-9
    assert o["plain_ids"]["novelty_ratio"] > 0 and doc["judge_heldout"]["count"] == judge["heldout"]["count"]
    assert (out / "sheets" / "emote-grid-ranked.png").is_file()
    # a plain generator is refused in one line
    code, _, err = run_train(["dcgan", "--data", "emoji:twemoji", "--limit", "16", "--image-size", "32", "--width", "16", "--d-width", "16",
                              "--batch-size", "8", "--epochs", "1", "--jit-compile", "off", "--out", out / "plain"], monkeypatch, capsys)
    assert code == 0, err
    plain = str(next((out / "plain").iterdir()))
    code, _, err = run_export(["tflite", os.path.join(plain, "generator.keras"), "--quant", "dynamic", "--out", out / "plain_models",
                               "--name", "g", "--task", "emote-generator", "--verify-size", "8", "--min-psnr", "5"], monkeypatch, capsys)
    assert code == 0, err
    code, _, err = run_export(["emote-ids", out / "plain_models" / "g.tflite", "--judge", out / "judge" / "judge.keras"],
                              monkeypatch, capsys)
    assert code != 0 and "not an expression emote generator" in err and "Traceback" not in err


@pytest.mark.skipif(shutil.which("node") is None, reason="node not installed")
def test_page_input_is_python_input_bit_for_bit():
    from keras_models.common.noise import generator_inputs

    labels = json.load(open(EMOJI_MAP))["labels"]
    script = (f"import {{ emoteInput }} from {json.dumps('file://' + JS)};\n"
              f"const labels = {json.dumps(labels)};\n"
              "for (const id of [0, 7, 4294967295]) for (const e of labels) "
              "console.log(id, e, Buffer.from(emoteInput(id, 100, labels, e).buffer).toString('hex'));\n"
              "try { emoteInput(1, 100, labels, 'bored'); } catch (e) { console.log('RangeError', e instanceof RangeError); }\n")
    lines = subprocess.run(["node", "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60,
                           check=True, cwd=ROOT).stdout.strip().splitlines()
    assert lines[-1] == "RangeError true" and len(lines) == 3 * 7 + 1
    for line in lines[:-1]:
        i, e, hexbytes = line.split()
        assert generator_inputs([int(i)], 100, 7, [labels.index(e)])[0].astype("<f4").tobytes().hex() == hexbytes
