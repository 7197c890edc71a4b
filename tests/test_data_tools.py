"""`python -m data_pipelines` dataset tools: crop-voc, crop-faces, dedup, square, tfrecords, and their
one-line errors. The CLI runs in-process through run_cli (as `python -m` does), plus one subprocess."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from clirun import run_data_tools
from PIL import Image, ImageDraw

from core.errors import DataError
from data_pipelines.voc import crop_voc, parse_voc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(capsys, monkeypatch, *args):
    """Runs `python -m data_pipelines ARGS` in-process; returns (exit status, stdout, stderr)."""
    return run_data_tools(args, monkeypatch, capsys)


def one_line_error(code, err, *fragments):
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for f in fragments:
        assert str(f) in lines[0], (f, lines[0])


# ---------- Pascal-VOC ----------

VOC = """<annotation>
  <folder>images</folder>
  <filename>{filename}</filename>
  <size><width>{w}</width><height>{h}</height><depth>3</depth></size>
  {objects}
</annotation>
"""
OBJ = "<object><name>{name}</name><pose>Unspecified</pose><truncated>0</truncated><difficult>0</difficult>" \
      "<bndbox><xmin>{0}</xmin><ymin>{1}</ymin><xmax>{2}</xmax><ymax>{3}</ymax></bndbox></object>"


def voc_xml(filename, boxes, w=100, h=80):
    objects = "\n  ".join(OBJ.format(*box, name=name) for name, box in boxes)
    return VOC.format(filename=filename, w=w, h=h, objects=objects)


@pytest.fixture
def voc(tmp_path):
    """A 100x80 picture with a red 20x20 square and a blue 40x20 rectangle, and its LabelImg XML."""
    images, anns = tmp_path / "images", tmp_path / "ann"
    images.mkdir()
    anns.mkdir()
    img = Image.new("RGB", (100, 80), (0, 255, 0))
    draw = ImageDraw.Draw(img)
    draw.rectangle([10, 10, 29, 29], fill=(255, 0, 0))
    draw.rectangle([50, 40, 89, 59], fill=(0, 0, 255))
    img.save(images / "pic.png")
    (anns / "pic.xml").write_text(voc_xml("pic.png", [("face", (10, 10, 30, 30)), ("happy face", (50, 40, 90, 60))]))
    return images, anns


def test_parse_voc(voc):
    ann = parse_voc(str(voc[1] / "pic.xml"))
    assert ann.filename == "pic.png" and (ann.width, ann.height) == (100, 80)
    assert [(o.name, o.box) for o in ann.objects] == [("face", (10, 10, 30, 30)), ("happy face", (50, 40, 90, 60))]


def test_crop_voc(voc, tmp_path):
    out = tmp_path / "crops"
    r = crop_voc(str(voc[0]), str(voc[1]), str(out), size=16)
    assert r["crops"] == 2 and r["per_class"] == {"face": 1, "happy face": 1}
    red = np.asarray(Image.open(out / "face" / "pic_1.png"))
    assert red.shape == (16, 16, 3) and (red[..., 0] > 240).all() and (red[..., 1] < 15).all()
    blue = np.asarray(Image.open(out / "happy_face" / "pic_2.png"))  # centre-cropped: all blue
    assert blue.shape == (16, 16, 3) and (blue[..., 2] > 240).all()
    padded = tmp_path / "padded"
    crop_voc(str(voc[0]), str(voc[1]), str(padded), size=16, pad=True)
    p = np.asarray(Image.open(padded / "happy_face" / "pic_2.png"))
    assert (p[0] == 255).all() and (p[8, :, 2] > 240).all()  # white bars above and below the blue box


def test_crop_voc_cli(voc, tmp_path, capsys, monkeypatch):
    code, out, err = run(capsys, monkeypatch, "crop-voc", voc[0], voc[1], "--out", tmp_path / "o", "--size", 8)
    assert code == 0 and "wrote 2 crops from 1 annotations" in out
    assert sorted(os.listdir(tmp_path / "o")) == ["face", "happy_face"]
    labelled = __import__("data_pipelines").load_source(str(tmp_path / "o"), 8, 3, labeled=True)
    assert labelled.class_names == ("face", "happy_face")


def test_crop_voc_bad_xml(voc, tmp_path, capsys, monkeypatch):
    bad = voc[1] / "broken.xml"
    bad.write_text("<annotation><filename>pic.png</filename><object>")
    code, _, err = run(capsys, monkeypatch, "crop-voc", voc[0], voc[1], "--out", tmp_path / "o")
    one_line_error(code, err, bad, "bad XML")
    assert not (tmp_path / "o").exists()
    with pytest.raises(DataError, match="not a Pascal-VOC annotation"):
        bad.write_text("<html/>")
        parse_voc(str(bad))
    bad.write_text(voc_xml("pic.png", []).replace("<filename>pic.png</filename>", ""))
    with pytest.raises(DataError, match="missing <filename>"):
        parse_voc(str(bad))
    bad.write_text(voc_xml("pic.png", [("face", (1, 2, "x", 4))]))
    with pytest.raises(DataError, match=r"<xmax> in object 1 \('face'\) is not a number"):
        parse_voc(str(bad))
    bad.write_text("<annotation><filename>pic.png</filename><object><name>f</name></object></annotation>")
    with pytest.raises(DataError, match="has no <bndbox>"):
        parse_voc(str(bad))


@pytest.mark.parametrize("content,message", [
    (bytes(range(256)) * 4, "bad XML"),  # binary
    (b'<?xml version="1.0" encoding="klingon"?><annotation/>', "unknown encoding: klingon"),
    (b"<annotation><filename>pic.png</filename><object><name>f</name><bndbox><xmin>1e400</xmin><ymin>1</ymin>"
     b"<xmax>5</xmax><ymax>5</ymax></bndbox></object></annotation>", "<xmin> in object 1 ('f') is not a number"),
])
def test_crop_voc_undecodable_xml_one_line(voc, tmp_path, capsys, monkeypatch, content, message):
    bad = voc[1] / "zz.xml"
    bad.write_bytes(content)
    code, _, err = run(capsys, monkeypatch, "crop-voc", voc[0], voc[1], "--out", tmp_path / "o")
    one_line_error(code, err, bad, message)
    assert not (tmp_path / "o").exists()


def test_crop_voc_box_outside_image(voc, tmp_path, capsys, monkeypatch):
    xml = voc[1] / "pic.xml"
    xml.write_text(voc_xml("pic.png", [("face", (10, 10, 30, 30)), ("face", (60, 50, 120, 70))]))
    code, _, err = run(capsys, monkeypatch, "crop-voc", voc[0], voc[1], "--out", tmp_path / "o")
    one_line_error(code, err, xml, "object 2", "outside the 100x80 image")
    assert not (tmp_path / "o").exists()
    # The XML's <size> says 200x200 but the picture is 100x80: checked against the real picture too.
    xml.write_text(voc_xml("pic.png", [("face", (60, 50, 150, 70))], w=200, h=200))
    code, _, err = run(capsys, monkeypatch, "crop-voc", voc[0], voc[1], "--out", tmp_path / "o")
    one_line_error(code, err, xml, "outside the 100x80 image")
    xml.write_text(voc_xml("pic.png", [("face", (30, 10, 30, 30))]))
    with pytest.raises(DataError, match="empty box"):
        parse_voc(str(xml))


def test_crop_voc_other_errors(voc, tmp_path, capsys, monkeypatch):
    code, _, err = run(capsys, monkeypatch, "crop-voc", voc[0], tmp_path / "nope", "--out", tmp_path / "o")
    one_line_error(code, err, "annotations folder not found", tmp_path / "nope")
    (voc[1] / "pic.xml").rename(voc[1] / "lost.xml")
    (voc[1] / "lost.xml").write_text(voc_xml("other.png", [("face", (1, 1, 5, 5))]))
    code, _, err = run(capsys, monkeypatch, "crop-voc", voc[0], voc[1], "--out", tmp_path / "o")
    one_line_error(code, err, voc[1] / "lost.xml", "picture 'other.png' not found")
    # <filename> missing but the XML's stem names the picture (as when pictures were renamed): found.
    (voc[1] / "lost.xml").rename(voc[1] / "pic.xml")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "old.txt").write_text("x")
    code, _, err = run(capsys, monkeypatch, "crop-voc", voc[0], voc[1], "--out", tmp_path / "full")
    one_line_error(code, err, "output folder is not empty")
    code, out, err = run(capsys, monkeypatch, "crop-voc", voc[0], voc[1], "--out", tmp_path / "ok")
    assert code == 0 and "wrote 1 crops" in out, err


# ---------- crop-faces ----------

def synthetic_picture(path):
    """A cartoon face on a plain background (Haar usually finds nothing in it)."""
    img = Image.new("RGB", (120, 100), (200, 220, 255))
    d = ImageDraw.Draw(img)
    d.ellipse([30, 20, 90, 85], fill=(240, 200, 160))
    d.ellipse([45, 40, 52, 47], fill=0)
    d.ellipse([68, 40, 75, 47], fill=0)
    d.arc([45, 50, 75, 72], 20, 160, fill=0, width=3)
    img.save(path)


def test_crop_faces_no_face(tmp_path, capsys, monkeypatch):
    src = tmp_path / "pics"
    src.mkdir()
    synthetic_picture(src / "cartoon.png")
    Image.new("RGB", (64, 64), (0, 0, 0)).save(src / "black.jpg")
    (src / "broken.jpg").write_text("not a jpeg")
    from core.faces import haar_cascade
    from data_pipelines.faces import detect_faces

    assert not haar_cascade().empty()
    assert detect_faces(np.zeros((64, 64, 3), np.uint8)) == []
    code, _, err = run(capsys, monkeypatch, "crop-faces", src, "--out", tmp_path / "faces")
    assert code == 2 and "no faces found in 2 picture(s)" in err and "skipped: cannot read image" in err
    assert "Traceback" not in err
    assert not (tmp_path / "faces").exists() and not [p for p in os.listdir(tmp_path) if p.startswith(".tmp-")]
    code, _, err = run(capsys, monkeypatch, "crop-faces", src, "--out", tmp_path / "faces", "--on-error", "fail")
    one_line_error(code, err, src / "broken.jpg")


def test_crop_faces_with_detections(tmp_path, capsys, monkeypatch):
    """The crop-and-write path, with the detector replaced by a fixed box."""
    import data_pipelines.faces as faces

    src = tmp_path / "pics" / "sub"
    src.mkdir(parents=True)
    synthetic_picture(src / "cartoon.png")
    monkeypatch.setattr(faces, "detect_faces", lambda rgb: [(40, 30, 40, 50), (0, 0, 10, 10)])
    code, out, err = run(capsys, monkeypatch, "crop-faces", tmp_path / "pics", "--out", tmp_path / "faces", "--size", 32)
    assert code == 0, err
    assert "wrote 2 face crops from 1 pictures" in out
    crops = sorted(os.listdir(tmp_path / "faces" / "sub"))
    assert crops == ["cartoon_1.png", "cartoon_2.png"]
    assert Image.open(tmp_path / "faces" / "sub" / "cartoon_1.png").size == (32, 32)


def test_crop_faces_same_stem_two_pictures(tmp_path, capsys, monkeypatch):
    """face.jpg beside face.png: each picture's crops under their own names (they were one name, one file)."""
    import data_pipelines.faces as faces

    src = tmp_path / "pics"
    src.mkdir()
    synthetic_picture(src / "face.png")
    synthetic_picture(src / "face.jpg")
    monkeypatch.setattr(faces, "detect_faces", lambda rgb: [(40, 30, 40, 50)])
    code, out, err = run(capsys, monkeypatch, "crop-faces", src, "--out", tmp_path / "faces", "--size", 16)
    assert code == 0 and "wrote 2 face crops from 2 pictures" in out, err
    assert sorted(os.listdir(tmp_path / "faces")) == ["face-jpg_1.png", "face_1.png"]


def test_output_stems():
    from data_pipelines.imagetools import output_stems

    assert output_stems("/s", ["/s/a.jpg", "/s/a.png", "/s/a-jpg.png", "/s/b.gif", "/s/sub/a.jpg"]) == \
        ["a-jpg-2", "a", "a-jpg", "b", "sub/a"]
    assert output_stems("/s", ["/s/A.png", "/s/a.png", "/s/a.webp"]) == ["A", "a-png", "a-webp"]


def test_box_in_picture():
    from data_pipelines.faces import box_in_picture

    assert box_in_picture((40, 30, 40, 50), 0.0, 120, 100) == (35, 30, 85, 80)  # square on the centre
    assert box_in_picture((40, 30, 40, 50), 0.2, 120, 100) == (25, 20, 95, 90)  # +20 % per side
    assert box_in_picture((0, 0, 20, 20), 0.5, 120, 100) == (0, 0, 40, 40)  # shifted inside the picture
    assert box_in_picture((10, 0, 100, 100), 0.5, 120, 100) == (10, 0, 110, 100)  # shrunk to fit


def test_crop_faces_bad_args(tmp_path, capsys, monkeypatch):
    code, _, err = run(capsys, monkeypatch, "crop-faces", tmp_path / "missing", "--out", tmp_path / "o")
    one_line_error(code, err, "not found", tmp_path / "missing")
    (tmp_path / "e").mkdir()
    code, _, err = run(capsys, monkeypatch, "crop-faces", tmp_path / "e", "--out", tmp_path / "o")
    one_line_error(code, err, "no images")
    Image.new("RGB", (8, 8)).save(tmp_path / "e" / "x.png")
    code, _, err = run(capsys, monkeypatch, "crop-faces", tmp_path / "e", "--out", tmp_path / "o", "--margin", -1)
    assert code == 2 and "Invalid value for '--margin': -1.0 is not in the range x>=0" in err and "Traceback" not in err


# ---------- dedup ----------

@pytest.fixture
def dupes(tmp_path):
    root = tmp_path / "d"
    root.mkdir()
    x = np.linspace(0, 255, 64)
    gradient = (x[None, :, None] * np.ones((64, 1, 3))).astype(np.uint8)
    gradient[20:40, 10:30] = 0  # a feature so the hash is not all ones
    Image.fromarray(gradient).save(root / "a.png")
    Image.fromarray(gradient).save(root / "b.jpg", quality=70)  # re-encoded copy
    Image.fromarray(np.clip(gradient.astype(int) + 12, 0, 255).astype(np.uint8)).resize((48, 48)).save(root / "c.png")  # brighter, smaller
    noise = np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(root / "z_other.png")
    return root


def test_dedup_list_and_delete(dupes, capsys, monkeypatch):
    from data_pipelines.imagetools import dhash, open_rgb

    assert dhash(open_rgb(str(dupes / "a.png"))) != dhash(open_rgb(str(dupes / "z_other.png")))
    code, out, _ = run(capsys, monkeypatch, "dedup", dupes)
    assert code == 0
    assert f"keep {dupes / 'a.png'}" in out and f"duplicate {dupes / 'b.jpg'}" in out and f"duplicate {dupes / 'c.png'}" in out
    assert "found 2 duplicate(s) in 1 group(s) among 4 images" in out
    assert len(os.listdir(dupes)) == 4  # --list (the default) deletes nothing
    code, out, _ = run(capsys, monkeypatch, "dedup", dupes, "--threshold", 0, "--list")
    assert code == 0 and "among 4 images" in out
    code, out, _ = run(capsys, monkeypatch, "dedup", dupes, "--delete")
    assert code == 0 and "deleted 2 duplicate(s)" in out
    assert sorted(os.listdir(dupes)) == ["a.png", "z_other.png"]


def test_dedup_errors(tmp_path, capsys, monkeypatch):
    code, _, err = run(capsys, monkeypatch, "dedup", tmp_path / "missing")
    one_line_error(code, err, tmp_path / "missing")
    code, _, err = run(capsys, monkeypatch, "dedup", tmp_path, "--threshold", 99)
    assert code == 2 and "threshold" in err


# ---------- square ----------

def test_square_pad_and_crop(tmp_path, capsys, monkeypatch):
    src = tmp_path / "s"
    (src / "sub").mkdir(parents=True)
    Image.new("RGB", (40, 20), (255, 0, 0)).save(src / "wide.jpg")
    Image.new("RGBA", (10, 30), (0, 0, 255, 255)).save(src / "sub" / "tall.png")
    (src / "junk.png").write_text("nope")
    code, out, err = run(capsys, monkeypatch, "square", src, "--out", tmp_path / "p", "--size", 16)
    assert code == 0 and "wrote 2 16x16 images" in out and "skipped 1 unreadable" in out and "junk.png" in err
    wide = np.asarray(Image.open(tmp_path / "p" / "wide.png"))
    assert wide.shape == (16, 16, 3) and (wide[0] == 255).all() and wide[8, 8, 1] < 30  # white bars, red middle
    assert Image.open(tmp_path / "p" / "sub" / "tall.png").size == (16, 16)
    code, out, _ = run(capsys, monkeypatch, "square", src, "--out", tmp_path / "c", "--size", 16, "--crop")
    crop = np.asarray(Image.open(tmp_path / "c" / "wide.png"))
    assert code == 0 and (crop[..., 0] > 230).all() and (crop[..., 1] < 30).all()  # all red: cropped
    code, _, err = run(capsys, monkeypatch, "square", src, "--out", tmp_path / "c", "--size", 16)
    one_line_error(code, err, "output folder is not empty")
    code, _, err = run(capsys, monkeypatch, "square", src, "--out", tmp_path / "f", "--size", 16, "--on-error", "fail")
    one_line_error(code, err, src / "junk.png")
    assert not (tmp_path / "f").exists()


# ---------- tfrecords ----------

def test_tfrecords_cli(tmp_path, capsys, monkeypatch):
    src = tmp_path / "lab"
    for cls in ("x", "y"):
        (src / cls).mkdir(parents=True)
        for i in range(3):
            Image.new("L", (12, 12), 40 * i).save(src / cls / f"{i}.png")
    code, out, err = run(capsys, monkeypatch, "tfrecords", src, "--out", tmp_path / "rec", "--shards", 2,
                         "--image-size", 8, "--channels", 1, "--labeled")
    assert code == 0, err
    assert "wrote 6 examples (8x8x1, 2 classes) in 2 shard(s)" in out
    from data_pipelines import load_source

    back = load_source(str(tmp_path / "rec"), 8, 1, labeled=True)
    assert back.class_names == ("x", "y") and back.labels.tolist() == [0, 0, 0, 1, 1, 1]
    code, _, err = run(capsys, monkeypatch, "tfrecords", tmp_path / "missing", "--out", tmp_path / "r2")
    one_line_error(code, err, "not found", tmp_path / "missing")
    code, _, err = run(capsys, monkeypatch, "tfrecords", src, "--out", tmp_path / "r3", "--channels", 2)
    assert code == 2 and "Invalid value for '--channels': '2' is not one of '1', '3'" in err and "Traceback" not in err
    assert not (tmp_path / "r2").exists() and not (tmp_path / "r3").exists()


def test_tfrecords_cli_binary_or_damaged_source(tmp_path, capsys, monkeypatch):
    """A binary .csv or a damaged TFRecord folder as SOURCE: one line, exit 2, no output folder."""
    (tmp_path / "bin.csv").write_bytes(bytes(range(256)) * 16)
    code, _, err = run(capsys, monkeypatch, "tfrecords", tmp_path / "bin.csv", "--out", tmp_path / "r1")
    one_line_error(code, err, tmp_path / "bin.csv", "not UTF-8 text")
    src = tmp_path / "pics"
    src.mkdir()
    for i in range(4):
        Image.new("L", (12, 12), 40 * i).save(src / f"{i}.png")
    code, _, err = run(capsys, monkeypatch, "tfrecords", src, "--out", tmp_path / "rec", "--shards", 1, "--image-size", 8)
    assert code == 0, err
    shard = tmp_path / "rec" / "data-00000-of-00001.tfrecord"
    shard.write_bytes(shard.read_bytes()[:100])
    code, _, err = run(capsys, monkeypatch, "tfrecords", tmp_path / "rec", "--out", tmp_path / "r2")
    one_line_error(code, err, tmp_path / "rec", "truncated record")
    (tmp_path / "rec" / "spec.json").write_bytes(b"\x00\xff binary")
    code, _, err = run(capsys, monkeypatch, "tfrecords", tmp_path / "rec", "--out", tmp_path / "r3")
    one_line_error(code, err, "spec.json: not UTF-8 text")
    assert not any((tmp_path / r).exists() for r in ("r1", "r2", "r3"))
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp-")]


def test_emoji_sets_cli(tmp_path, capsys, monkeypatch):
    """`emoji-sets` lists every set with its image licence; a set that is not installed is one line."""
    monkeypatch.setenv("EMOTEKIT_EMOJI_DIR", str(tmp_path / "none"))
    code, out, err = run(capsys, monkeypatch, "emoji-sets")
    assert code == 0, err
    rows = {line.split()[0]: line for line in out.splitlines()[1:6]}
    assert list(rows) == ["twemoji", "google", "twitter", "openmoji", "fluentui"]
    for name, licence in (("twemoji", "CC-BY-4.0"), ("google", "Apache-2.0"), ("twitter", "CC-BY-4.0"),
                          ("openmoji", "CC-BY-SA-4.0"), ("fluentui", "MIT")):
        assert f" {licence} " in rows[name], rows[name]
    assert "(not installed)" in rows["google"] and "(not installed)" not in rows["twemoji"]
    assert "not installed: google, twitter, openmoji, fluentui; install with `bash scripts/setup.sh`" in out
    code, _, err = run(capsys, monkeypatch, "tfrecords", "emoji:openmoji", "--out", tmp_path / "rec")
    one_line_error(code, err, "emoji set 'openmoji' is not installed", "scripts/setup.sh")
    assert not (tmp_path / "rec").exists()
    code, _, err = run(capsys, monkeypatch, "emoji-sets", "--force")
    one_line_error(code, err, "--force goes with --install")


def test_module_entry_point(tmp_path):
    """`python -m data_pipelines` itself: exit 2, one line, no traceback."""
    r = subprocess.run([sys.executable, "-m", "data_pipelines", "square", str(tmp_path / "missing"), "--out", str(tmp_path / "o"),
                        "--size", "8"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"error: data path not found: {tmp_path / 'missing'}" in r.stderr
