"""The bad-input corpus of `train *`, `export tflite` and `evaluate`, generated from the table in
docs/bad-input-train.md: each row's input is built here in a temporary folder, and its exit status
and line are checked (see that file). Nothing of the corpus is committed."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys

import numpy as np
import pytest
from clirun import run_train
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(ROOT, "docs", "bad-input-train.md")


def corpus_rows() -> list[dict]:
    """The rows of the doc's first table ("## The corpus"): case, command, input, before, exit, says."""
    with open(DOC, encoding="utf-8") as f:
        text = f.read()
    section = text.split("## The corpus", 1)[1].split("\n## ", 1)[0]
    lines = [ln for ln in section.splitlines() if ln.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = []
    for ln in lines[2:]:
        cells = dict(zip(header, (c.strip() for c in ln.strip().strip("|").split("|"))))
        says = re.search(r"`(.*)`", cells["says"])
        rows.append({"case": cells["case"].strip("`"), "command": cells["command"].strip("`"), "exit": int(cells["exit"]),
                     "says": says.group(1) if says else cells["says"]})
    return rows


ROWS = corpus_rows()


# --------------------------------------------------------------------------- the inputs


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    d = tmp_path_factory.mktemp("faces")
    rng = np.random.default_rng(5)
    for i in range(8):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(d / f"{i}.png")
    return str(d)


def _tiny_vae(faces, out, *extra):
    # 8 images, 2 steps of 4 an epoch; tiny-32 has 16-channel convolutions (oneDNN crashes on 8 here)
    return ["vae", "--data", faces, "--preset", "tiny-32", "--limit", "8", "--epoch-size", "0", "--batch-size", "4",
            "--epochs", "1", "--out", str(out), *extra]


@pytest.fixture(scope="module")
def vae_run(faces, tmp_path_factory):
    """A finished 1-epoch 32-px VAE run (encoder.keras, decoder.keras, backup/), trained once."""
    mp = pytest.MonkeyPatch()
    out = tmp_path_factory.mktemp("vae_runs")

    class _Capture:  # run_train reads capsys; a module fixture has none
        def readouterr(self):
            return "", ""

    try:
        code, _, _ = run_train(_tiny_vae(faces, out), mp, _Capture())
    finally:
        mp.undo()
    assert code == 0
    return str(next(out.iterdir()))


def unwritable(tmp_path) -> str:
    """A folder nothing can be written in: a 0555 folder, or for root (whom permissions do not
    stop) a sysfs folder, where the kernel refuses new files."""
    if os.geteuid() == 0:
        if not os.path.isdir("/sys/kernel"):
            pytest.skip("running as root without a sysfs to stand for a read-only folder")
        return "/sys/kernel"
    d = tmp_path / "read_only"
    d.mkdir()
    d.chmod(0o555)
    return str(d)


def _copy_run(vae_run, tmp_path) -> str:
    dst = str(tmp_path / os.path.basename(vae_run))
    shutil.copytree(vae_run, dst)
    return dst


def _damage_options(run, content: bytes | None = None):
    path = os.path.join(run, "options.json")
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2] if content is None else content)


def _fer_folder(tmp_path, corrupt: int, per_class: int = 4) -> str:
    """7 class folders of `per_class` grey 48-px faces; the first `corrupt` files (round the
    classes) are not images."""
    from conftest import FER, face

    root = tmp_path / "fer"
    rng = np.random.default_rng(2)
    n = 0
    for i in range(per_class):
        for k, name in enumerate(FER):
            os.makedirs(root / name, exist_ok=True)
            path = root / name / f"{i}.png"
            if n < corrupt:
                path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really" * 10)
            else:
                Image.fromarray(face(k, rng)).save(path)
            n += 1
    return str(root)


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    from test_evaluate import FER, brightness_classifier

    d = tmp_path_factory.mktemp("clf")
    brightness_classifier().save(d / "brightness.keras")
    (d / "labels.txt").write_text("\n".join(FER) + "\n")
    return str(d / "brightness.keras")


def _export(run, out, *extra):
    return ["export", "tflite", run, "--quant", "fp32", "--out", str(out), "--verify-size", "4", *extra]


def _evaluate(model, data, json_path, *extra):
    return ["evaluate", "--model", model, "--data", data, "--json", str(json_path), *extra]


def build(case: str, tmp_path, faces, vae_run, classifier) -> tuple[list, str]:
    """(argv: "export ..." for python -m export, else python -m train; the folder that must be left
    as it was, or "" when none) of one corpus case."""
    out = tmp_path / "runs"
    if case in ("lr-nan", "time-limit-nan", "beta-nan", "size-zero"):
        flag = {"lr-nan": ["--lr", "nan"], "time-limit-nan": ["--time-limit", "nan"], "beta-nan": ["--beta", "nan"],
                "size-zero": ["--image-size", "0"]}[case]
        return _tiny_vae(faces, out, *flag), str(out)
    if case == "diverges":  # a real run that failed: its folder stays (options.json, what it logged), no backup of NaN weights
        return _tiny_vae(faces, out, "--lr", "1e30"), ""
    if case == "lr-inf":
        return ["dcgan", "--data", faces, "--lr", "inf", "--out", str(out)], str(out)
    if case == "size-huge":
        return ["dcgan", "--data", faces, "--image-size", "100000", "--out", str(out)], str(out)
    if case == "lr-negative":
        return ["stylegan", "--data", faces, "--lr", "-1", "--out", str(out)], str(out)
    if case == "kimg-inf":
        return ["stylegan", "--data", faces, "--kimg-per-epoch", "inf", "--out", str(out)], str(out)
    if case == "lr-zero":
        return ["expression", "--data", faces, "--lr", "0", "--out", str(out)], str(out)
    if case in ("resume-other-size", "resume-other-lr"):
        run = _copy_run(vae_run, tmp_path)
        return ["vae", "--resume", run, "--epochs", "2", *(["--image-size", "64"] if case == "resume-other-size" else ["--lr", "0.5"])], run
    if case.startswith("resume-options-"):
        run = _copy_run(vae_run, tmp_path)
        content = {"resume-options-array": b"[1, 2]\n", "resume-options-binary": bytes(np.random.default_rng(0).integers(128, 256, 300,
                                                                                                                          dtype=np.uint8))}
        _damage_options(run, content.get(case))
        if case == "resume-options-expression":
            opts = os.path.join(run, "options.json")
            with open(opts, "wb") as f:
                f.write(b'{"kind": "expression", "arch": "emon')
            return ["expression", "--resume", run, "--epochs", "2"], run
        return ["vae", "--resume", run, "--epochs", "2"], run
    if case == "resume-not-a-run":
        empty = tmp_path / "empty"
        empty.mkdir()
        return ["dcgan", "--resume", str(empty), "--epochs", "2"], str(empty)
    if case == "resume-other-kind":
        return ["stylegan", "--resume", _copy_run(vae_run, tmp_path), "--epochs", "2"], ""
    if case == "train-out-unwritable":
        return _tiny_vae(faces, os.path.join(unwritable(tmp_path), "runs")), ""
    exp = tmp_path / "exported"
    if case in ("export-options-truncated", "export-options-string"):
        run = _copy_run(vae_run, tmp_path)
        _damage_options(run, b'"vae"\n' if case == "export-options-string" else None)
        return _export(run, exp), str(exp)
    if case.startswith("export-manifest-"):
        exp.mkdir()
        content = {"not-json": '{"version": 1,', "models-number": '{"models": 3}', "string": '"hello"', "entries": "[1, 2]"}
        (exp / "manifest.json").write_text(content[case.removeprefix("export-manifest-")])
        return _export(vae_run, exp), str(exp)
    if case == "export-out-unwritable":
        return _export(vae_run, unwritable(tmp_path)), ""
    if case == "export-out-file":
        exp.write_text("a file\n")
        return _export(vae_run, exp), ""
    if case == "export-min-agreement-nan":
        return _export(vae_run, exp, "--min-agreement", "nan"), str(exp)
    fer = _fer_folder(tmp_path, {"eval-some-corrupt": 7, "eval-all-corrupt": 28}.get(case, 0))
    js = tmp_path / "ev" / "metrics.json"
    js.parent.mkdir()
    if case in ("eval-limit-negative", "eval-limit-zero"):
        return _evaluate(classifier, fer, js, "--limit", "-1" if case == "eval-limit-negative" else "0"), str(js.parent)
    if case == "eval-json-unwritable":
        return _evaluate(classifier, fer, os.path.join(unwritable(tmp_path), "metrics.json")), ""
    if case == "eval-json-folder":
        return _evaluate(classifier, fer, js.parent), str(js.parent)
    if case in ("eval-some-corrupt", "eval-all-corrupt"):
        return _evaluate(classifier, fer, js), "" if case == "eval-some-corrupt" else str(js.parent)
    raise KeyError(case)


def _snapshot(folder: str):
    if not folder or not os.path.exists(folder):
        return None
    return sorted((os.path.relpath(os.path.join(d, f), folder), os.path.getsize(os.path.join(d, f)))
                  for d, _, files in os.walk(folder) for f in files)


def _run_export(args, monkeypatch, capsys):
    from core.cli import run_cli
    from export.cli import cli

    monkeypatch.setattr(sys, "argv", ["python -m export", *args])
    code = 0
    try:
        run_cli(cli, "python -m export")
    except SystemExit as e:
        code = e.code or 0
    out, err = capsys.readouterr()
    return code, out, err


def test_the_table_is_read():
    """The corpus is the doc's table: every row read, once (a row without a builder fails test_corpus)."""
    cases = [r["case"] for r in ROWS]
    assert len(cases) == len(set(cases)) and len(cases) >= 30
    assert {r["command"].split()[0] for r in ROWS} == {"train", "export", "evaluate"}
    assert all(r["says"] and r["exit"] in (0, 2) for r in ROWS)


@pytest.mark.parametrize("row", ROWS, ids=[r["case"] for r in ROWS])
def test_corpus(row, tmp_path, faces, vae_run, classifier, monkeypatch, capsys):
    import export.cli

    args, keep = build(row["case"], tmp_path, faces, vae_run, classifier)
    before = _snapshot(keep)
    monkeypatch.setenv("EMOTEKIT_QUIET", "1")
    if args[0] == "export":
        def no_convert(*a, **k):
            raise AssertionError("converted although the input was refused")

        if row["exit"]:
            monkeypatch.setattr(export.cli, "convert", no_convert)  # refused before minutes of converting
        code, out, err = _run_export(args[1:], monkeypatch, capsys)
    else:
        code, out, err = run_train(args, monkeypatch, capsys)
    assert code == row["exit"], (out[-1500:], err[-1500:])
    assert "Traceback" not in err
    if row["exit"]:
        last = err.strip().splitlines()[-1]
        assert row["says"] in last, err[-1500:]
        if not last.startswith("Error: Invalid value"):  # Click's usage lines come before its one Error: line
            assert err.strip().count("\n") == 0 or all("error:" not in ln for ln in err.strip().splitlines()[:-1]), err
        assert _snapshot(keep) == before, f"{keep} changed"
    else:
        assert row["says"] in err, err


def test_evaluate_counts_the_corrupt_files_in_its_json(tmp_path, classifier, monkeypatch, capsys):
    """7 of 28 files corrupt: the metrics are over the 21 and the JSON says how many were skipped and
    which (the first five, with the reason)."""
    fer = _fer_folder(tmp_path, 7)
    js = tmp_path / "m.json"
    code, out, err = run_train(_evaluate(classifier, fer, js), monkeypatch, capsys)
    assert code == 0, err
    m = json.loads(js.read_text())
    assert m["count"] == 21 and m["skipped"] == 7 and len(m["skipped_files"]) == 5
    assert all(".png" in line for line in m["skipped_files"])
    assert err.count("  skipped: ") == 5 and "and 2 more" in err
    assert "on " + fer + ": 21 images" in out


def test_latents_file_names_no_path_of_this_machine(vae_run, faces, tmp_path, monkeypatch, capsys):
    """`train vae-latents` given absolute paths writes a file that can ship: the run and the
    character folders relative (to the working directory), or their last parts when outside it."""
    from train.vae_tools import portable_path

    monkeypatch.chdir(tmp_path)
    inside = tmp_path / "runs" / "00001-vae"
    inside.mkdir(parents=True)
    assert portable_path(str(inside)) == "runs/00001-vae"
    assert portable_path("/elsewhere/data/anime_faces") == "data/anime_faces"
    assert portable_path("../shared/data/anime_faces") == "../shared/data/anime_faces"
    assert portable_path("emoji:twemoji") == "emoji:twemoji"
    out = tmp_path / "latents.json"
    code, _, err = run_train(["vae-latents", os.path.abspath(vae_run), "--characters", os.path.abspath(faces), "--count", "2",
                              "--pool", "4", "--expression-count", "2", "--out", str(out)], monkeypatch, capsys)
    assert code == 0, err
    doc = json.loads(out.read_text(encoding="utf-8"))
    text = out.read_text(encoding="utf-8")
    assert str(tmp_path) not in text and not os.path.isabs(doc["run"]) and not any(os.path.isabs(p) for p in doc["characters_from"])
    assert doc["run"].endswith(os.path.basename(vae_run))


def test_shipped_latents_file_names_no_path_of_a_machine():
    with open(os.path.join(ROOT, "mobile_demo", "models", "vae-decoder-latents.json"), encoding="utf-8") as f:
        doc = json.load(f)
    assert not os.path.isabs(doc["run"]) and not any(os.path.isabs(p) for p in doc["characters_from"])
