"""A real `python -m export tflite` SIGKILLed at each step of writing its files (issue 27, faults):
the out folder holds the previous export or the new one, as its manifest.json tells it; in between
(a kill between two renames) the previous manifest with some files already new, which
export.manifest.stale_entries detects; and a rerun ends in the new export with no leftovers."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest

keras = pytest.importorskip("keras")
pytest.importorskip("ai_edge_litert")

from test_export import run_cli  # noqa: E402

from export.manifest import TMP_PREFIX, stale_entries  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# `python -m export ...` with a kill wired in, for files written into $KILL_OUT: KILL_AT=stage:N
# SIGKILLs it once the N-th temporary file is made (still empty: a kill while writing), before:N
# just before the N-th rename into place, after:N just after it.
KILLER = r'''
import os, runpy, signal, sys, tempfile
when, n = os.environ["KILL_AT"].split(":")
out = os.path.realpath(os.environ["KILL_OUT"])
count = [0]
def ours(path):
    return os.path.realpath(os.path.dirname(os.path.abspath(path))) == out
def tick(at):
    if when == at:
        count[0] += 1
        if count[0] == int(n):
            os.kill(os.getpid(), signal.SIGKILL)
real_mkstemp, real_replace = tempfile.mkstemp, os.replace
def mkstemp(*a, **kw):
    fd, path = real_mkstemp(*a, **kw)
    if ours(path):
        tick("stage")
    return fd, path
def replace(src, dst, *a, **kw):
    if not ours(dst):
        return real_replace(src, dst, *a, **kw)
    tick("before")
    real_replace(src, dst, *a, **kw)
    tick("after")
tempfile.mkstemp, os.replace = mkstemp, replace
sys.argv = ["python -m export", *sys.argv[1:]]
runpy.run_module("export", run_name="__main__", alter_sys=True)
'''

# what the export of a VAE run with latents.json writes, in the order write_outputs renames it
HASHED = ["vae-encoder.tflite", "vae-decoder.tflite"]  # described by their manifest entry's sha256
COMPANIONS = ["vae-encoder.report.json", "vae-decoder.report.json", "vae-latents.json"]
FILES = HASHED + COMPANIONS + ["manifest.json"]  # 6 renames


def _vae_run(root, data, seed):
    """A run folder with a tiny encoder and decoder (weights from SEED) and a latents.json."""
    L = keras.layers
    keras.utils.set_random_seed(seed)
    d = root / f"run{seed}"
    d.mkdir()
    inp = keras.Input((32, 32, 3), name="image")
    h = L.Rescaling(1 / 255)(inp)
    h = L.Conv2D(8, 3, strides=2, padding="same", activation="relu")(h)
    h = L.Flatten()(L.Conv2D(16, 3, strides=2, padding="same", activation="relu")(h))
    keras.Model(inp, [L.Dense(4, name="z_mean")(h), L.Dense(4, name="z_log_var")(h)], name="encoder").save(d / "encoder.keras")
    z = keras.Input((4,), name="z")
    h = L.Reshape((8, 8, 16))(L.Dense(8 * 8 * 16, activation="relu")(z))
    h = L.Conv2DTranspose(8, 3, strides=2, padding="same", activation="relu")(h)
    out = L.Conv2DTranspose(3, 3, strides=2, padding="same", activation="sigmoid", name="image")(h)
    keras.Model(z, out, name="decoder").save(d / "decoder.keras")
    zs = np.random.default_rng(seed).standard_normal((2, 4)).round(3).tolist()
    (d / "latents.json").write_text(json.dumps({"z_dim": 4, "characters": [{"name": "c0", "z": zs[0]}],
                                                "expressions": [{"name": "grinning face", "char": "😀", "z": zs[1]}]}))
    (d / "options.json").write_text(json.dumps({"kind": "vae", "data": [str(data)]}))
    return d


def _args(run, out):
    return ["tflite", str(run), "--quant", "fp32", "--out", str(out), "--name", "vae", "--verify-size", "8"]


def _export(args, kill_at=None):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["EMOTEKIT_QUIET"] = "1"
    cmd = [sys.executable, "-m", "export", *args]
    if kill_at:
        cmd = [sys.executable, "-c", KILLER, *args]
        env["KILL_AT"], env["KILL_OUT"] = kill_at, args[args.index("--out") + 1]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def _files(out):
    return {n: (out / n).read_bytes() for n in os.listdir(out) if not n.startswith(".tmp-")}


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """Two VAE runs of the same architecture, A and B; A exported (a real process) into `old`."""
    from PIL import Image

    root = tmp_path_factory.mktemp("export_kill")
    data = root / "faces"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(16):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(data / f"{i}.png")
    a, b = _vae_run(root, data, 1), _vae_run(root, data, 2)
    old = root / "old"
    done = _export(_args(a, old))
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(_files(old)) == sorted(FILES) and stale_entries(str(old)) == []
    return {"a": a, "b": b, "old": old, "old_files": _files(old)}


def _state(out, old_files):
    """'old', 'between' or 'new': what a reader of OUT sees, checked to be one of the three."""
    files = _files(out)
    assert sorted(files) == sorted(FILES), sorted(files)  # every name there, none half-written under it
    stale = set(stale_entries(str(out)))
    replaced = {n for n in FILES if files[n] != old_files[n]}
    if files["manifest.json"] == old_files["manifest.json"]:
        # the previous manifest: an entry is stale exactly when its file was replaced by the new export
        assert stale == replaced & set(HASHED), (stale, replaced)
        if replaced - set(HASHED):  # a companion is only new once every hashed file is (then something is stale)
            assert set(HASHED) <= replaced, replaced
        return "between" if replaced else "old"
    # the new manifest: every file the new one, every entry matching its file (sha256 and size)
    assert replaced == set(FILES) and stale == set(), (replaced, stale)
    manifest = json.loads(files["manifest.json"])
    for m in manifest["models"]:
        report = json.loads(files[m["path"].replace(".tflite", ".report.json")])
        assert m["sha256"] == report["sha256"] and m["size_bytes"] == len(files[m["path"]])
    assert {m["path"] for m in manifest["models"]} == set(HASHED)
    return "new"


@pytest.mark.parametrize("kill_at,expected", [
    ("stage:3", "old"),  # while writing the temporary files (the third one just made)
    ("before:1", "old"),  # every file written, none renamed yet
    ("before:2", "between"),  # the encoder in place, the decoder not
    ("before:4", "between"),  # both models and the encoder's report in place
    ("before:6", "between"),  # everything but manifest.json
    ("after:6", "new"),  # manifest.json renamed: the new export, killed before its last line
])
def test_killed_export_leaves_the_old_state_or_the_new(exports, tmp_path, capsys, monkeypatch, kill_at, expected):
    out = tmp_path / "models"
    shutil.copytree(exports["old"], out)
    killed = _export(_args(exports["b"], out), kill_at)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert _state(out, exports["old_files"]) == expected
    leftovers = [n for n in os.listdir(out) if n.startswith(".tmp-")]
    assert all(n.startswith(TMP_PREFIX) for n in leftovers), leftovers
    assert bool(leftovers) == (expected != "new")  # the kill left its temporaries (a rerun removes them)
    if kill_at == "before:2":
        # an export of another model into the folder keeps the stale encoder entry, and says so
        code, _, err = run_cli(["tflite", str(exports["b"] / "decoder.keras"), "--quant", "fp32", "--out", str(out),
                                "--name", "vae-decoder", "--verify-size", "8"], capsys, monkeypatch)
        assert code == 0, err
        assert "names vae-encoder.tflite, which is not the file it describes" in err
        assert stale_entries(str(out)) == ["vae-encoder.tflite"]
    # the rerun: the new export, complete, and the killed run's temporary files gone
    code, _, err = run_cli(_args(exports["b"], out), capsys, monkeypatch)
    assert code == 0, err
    assert "warning" not in err
    assert not [n for n in os.listdir(out) if n.startswith(".tmp-")]
    files = _files(out)
    extra = {"vae-decoder-latents.json"} if kill_at == "before:2" else set()  # the decoder-only export's latents
    assert set(files) == set(FILES) | extra, sorted(files)
    assert stale_entries(str(out)) == []
    manifest = json.loads(files["manifest.json"])
    assert {m["path"] for m in manifest["models"]} == set(HASHED)
    assert {m["path"]: m.get("latents") for m in manifest["models"]}["vae-decoder.tflite"] == "vae-latents.json"
    assert all(files[n] != exports["old_files"][n] for n in FILES)
