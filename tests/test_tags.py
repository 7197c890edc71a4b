"""Auto-tagging (data_pipelines/tags.py, `python -m data_pipelines tag`) and the expression directions found
from the tags (export/expression_directions.py)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from clirun import run_data_tools
from PIL import Image

from core.files import sha256_file
from core.labels import FER_LABELS
from data_pipelines import tags as T
from export import expression_directions as E

MODEL = os.path.join(os.path.dirname(__file__), "..", "mobile_demo", "models", "expression_int8.tflite")


def run_tag(args, monkeypatch, capsys):
    return run_data_tools(["tag", *args], monkeypatch, capsys)


def test_face_inputs_take_the_centred_square_through_the_crop_contract():
    img = np.zeros((2, 64, 96, 3), np.uint8)
    img[:, :, 16:80] = 200  # the centred 64 x 64 square is all 200, the sides 0
    x = T.face_inputs(img)
    assert x.shape == (2, 48, 48, 1) and x.dtype == np.float32
    assert np.all(x == 200)
    grey = T.face_inputs(np.full((1, 10, 10, 1), 7, np.uint8))
    assert np.all(grey == 7)
    with pytest.raises(Exception, match="expected images"):
        T.face_inputs(np.zeros((4, 4), np.uint8))


class Fixed:
    """A classifier that says happy in proportion to the input's mean brightness."""

    def predict(self, x):
        m = x.reshape(len(x), -1).mean(1) / 255.0
        p = np.full((len(x), 7), 0.0, np.float32)
        p[:, FER_LABELS.index("happy")] = m
        p[:, FER_LABELS.index("sad")] = 1 - m
        return p


def test_tags_document_round_trips_and_the_sheets_rank_by_class(tmp_path):
    imgs = np.stack([np.full((32, 32, 3), v, np.uint8) for v in (10, 250, 120)])
    probs = T.tag_images(Fixed(), imgs, mirror=True)
    assert probs[1, FER_LABELS.index("happy")] > probs[2, FER_LABELS.index("happy")] > probs[0, FER_LABELS.index("happy")]
    doc = T.make_tags(["a.png", "b.png", "c.png"], probs, source="x")
    assert doc["counts"]["happy"] == 1 and doc["counts"]["sad"] == 2
    T.save_tags(str(tmp_path / "t.json"), doc)
    back = T.load_tags(str(tmp_path / "t.json"))
    np.testing.assert_allclose(back["probs"], probs, atol=1e-5)
    sheets = T.class_sheets(imgs, probs, per_class=2)
    assert set(sheets) == set(FER_LABELS)
    assert sheets["happy"][0, 0, 0] == 255 and sheets["happy"][5, 5, 0] == 250  # a white gutter, then the brightest
    (tmp_path / "bad.json").write_text('{"format": "other"}')
    with pytest.raises(Exception, match="not an Emotekit tags file"):
        T.load_tags(str(tmp_path / "bad.json"))


@pytest.mark.skipif(not os.path.exists(MODEL), reason="the shipped expression model is not here")
def test_tag_command_writes_tags_and_sheets_with_the_model_hash(tmp_path, monkeypatch, capsys):
    src = tmp_path / "faces"
    src.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(src / f"f{i}.png")
    out = tmp_path / "tags.json"
    code, stdout, err = run_tag([str(src), "--model", MODEL, "--out", str(out), "--sheets", str(tmp_path / "s")],
                                monkeypatch, capsys)
    assert code == 0, err
    doc = json.loads(out.read_text())
    assert doc["format"] == "emotekit-tags" and len(doc["items"]) == 3
    assert doc["model"]["sha256"] == sha256_file(MODEL) and "tag" in doc["command"]
    assert all(abs(sum(it["probs"]) - 1) < 7 / 256 for it in doc["items"])  # int8 outputs: a step of 1/256 each
    assert sorted(os.listdir(tmp_path / "s")) == sorted(f"tags-{c}.png" for c in FER_LABELS)
    code, _, err = run_tag([str(src), "--model", MODEL, "--out", str(tmp_path / "tags.csv")], monkeypatch, capsys)
    assert code == 2 and err.strip().count("\n") == 0 and ".json" in err


def test_boundary_finds_the_latent_axis_that_moves_the_probability():
    rng = np.random.default_rng(1)
    z = rng.standard_normal((2000, 16))
    p = np.zeros((2000, 7))
    p[:, FER_LABELS.index("happy")] = 1 / (1 + np.exp(-3 * z[:, 2]))
    p[:, FER_LABELS.index("sad")] = 1 - p[:, FER_LABELS.index("happy")]
    v, acc = E.boundary(z, p, names=("happy",))["happy"]
    assert acc > 0.95 and abs(v[2]) > 0.95
    hair = np.eye(16)[2] + 0.5 * np.eye(16)[3]
    w = E.project_out(v, [hair])
    assert abs(np.dot(w, hair)) < 1e-9 and abs(np.linalg.norm(w) - 1) < 1e-9


def test_rises_counts_the_seeds_whose_probability_climbs_along_the_slider():
    p = np.array([[0.1, 0.2, 0.3, 0.4, 0.5], [0.5, 0.4, 0.3, 0.2, 0.1], [0.3, 0.3, 0.2, 0.25, 0.4]])
    r = E.rises(p)
    assert r["rises"] == pytest.approx(1 / 3) and r["higher_at_plus2"] == pytest.approx(2 / 3)
    assert r["mean_prob"]["+0"] == pytest.approx(0.8 / 3)


def test_emoji_likeness_tells_an_emoji_yellow_face_from_a_character():
    yellow = np.zeros((1, 8, 8, 3), np.uint8) + np.array([250, 200, 40], np.uint8)
    skin = np.zeros((1, 8, 8, 3), np.uint8) + np.array([250, 230, 215], np.uint8)
    assert E.emoji_likeness(np.concatenate([yellow, skin])).tolist() == [1.0, 0.0]
