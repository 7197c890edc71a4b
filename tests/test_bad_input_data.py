"""The bad-input corpus of `python -m data_pipelines *` (and of `evaluate`'s data), generated from the
table in docs/bad-input-data.md: every row runs the real command in a process, with a time limit (a
FIFO that is opened hangs), in a fresh folder where this file builds the inputs the rows name.
Nothing of the corpus is committed (see that file)."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from doc_tables import table_cells, unwritable
from PIL import Image
from test_bad_input_train import classifier  # noqa: F401 - evaluate's model, a fixture

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(ROOT, "docs", "bad-input-data.md")
ORIENTATION = 0x0112  # EXIF: 6 = turn 90 degrees clockwise to view


def corpus_rows() -> list[dict]:
    """The rows of the doc's table under "## The corpus": case, input, before, exit, says, leaves."""
    rows = []
    for cells in table_cells(DOC):
        says = re.fullmatch(r"`(.*)`", cells["says"])
        leaves = re.fullmatch(r"`([^:]*): ?(.*)`", cells["leaves"])
        rows.append({"case": cells["case"].strip("`"), "args": re.match(r"`([^`]*)`", cells["input"]).group(1),
                     "exit": int(cells["exit"]), "says": says.group(1) if says else cells["says"],
                     "leaves": (leaves.group(1), sorted(leaves.group(2).split())) if leaves else None})
    return rows


ROWS = corpus_rows()


# --------------------------------------------------------------------------- the inputs

def gradient(size=64, feature=(20, 40, 10, 30)):
    """A picture whose dHash is not trivial: a horizontal ramp with a dark block."""
    x = np.linspace(0, 255, size)
    g = (x[None, :, None] * np.ones((size, 1, 3))).astype(np.uint8)
    y0, y1, x0, x1 = feature
    g[y0:y1, x0:x1] = 0
    return g


def noise(seed, shape=(64, 64, 3)):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def save_rotated(path, stored: np.ndarray):
    """A JPEG stored as `stored` (H x W) with EXIF orientation 6: a viewer shows it turned to W x H."""
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    Image.fromarray(stored).save(path, exif=exif, quality=95)


def grey16(path, value8: int, shape=(60, 80)):
    """A 16-bit grey PNG whose 8-bit reading is `value8` (stored as value8 * 257)."""
    Image.fromarray(np.full(shape, value8 * 257, np.uint16)).save(path)


def stored_sideways() -> np.ndarray:
    """100x80 stored (W x H); upright (orientation 6: turned clockwise) it is 80x100 with a red block at
    x 10..30, y 60..90 and blue elsewhere; as stored, that block is at x 60..90, y 50..70."""
    upright = np.zeros((100, 80, 3), np.uint8)
    upright[..., 2] = 255
    upright[60:90, 10:30] = (255, 0, 0)
    return np.ascontiguousarray(np.rot90(upright, k=1))  # counter-clockwise: what orientation 6 turns back


def voc_xml(filename, box, w, h):
    return (f"<annotation><filename>{filename}</filename><size><width>{w}</width><height>{h}</height>"
            f"<depth>3</depth></size><object><name>face</name><bndbox><xmin>{box[0]}</xmin><ymin>{box[1]}</ymin>"
            f"<xmax>{box[2]}</xmax><ymax>{box[3]}</ymax></bndbox></object></annotation>")


def fer_faces(root, classes, per_class=2, save=None):
    from conftest import FER, face

    rng = np.random.default_rng(2)
    for i in range(per_class):
        for k, name in enumerate(FER):
            if name in classes:
                os.makedirs(root / name, exist_ok=True)
                (save or (lambda p, a: Image.fromarray(a).save(p)))(root / name / f"{i}.png", face(k, rng))


def build_corpus(d):
    """Every folder and file the table's rows name, in `d`."""
    g = gradient()
    Image.fromarray(noise(0, (30, 40, 3))).save(d / "ok.png")
    for name in ("links", "linkdup", "inside", "outside", "hard", "fifo", "broken", "loop", "corrupt", "corrupt2",
                 "stems", "cases", "unusual", "onlyfifo", "empty", "full", "voc/images", "voc/upright", "voc/stored",
                 "vocstems/images", "vocstems/ann"):
        os.makedirs(d / name)
    Image.fromarray(g).save(d / "links" / "z_real.jpg", quality=90)
    os.symlink("z_real.jpg", d / "links" / "a_link.jpg")
    Image.fromarray(g).save(d / "linkdup" / "b.jpg", quality=90)
    Image.fromarray(g).save(d / "linkdup" / "z_copy.jpg", quality=70)
    os.symlink("z_copy.jpg", d / "linkdup" / "a_link.jpg")
    Image.fromarray(g).save(d / "outside" / "x.png")
    Image.fromarray(g).save(d / "inside" / "b.png")
    os.symlink(os.path.join("..", "outside", "x.png"), d / "inside" / "a_out.png")
    Image.fromarray(g).save(d / "hard" / "a.png")
    os.link(d / "hard" / "a.png", d / "hard" / "b.png")
    for folder in ("fifo", "onlyfifo"):
        os.mkfifo(d / folder / "pipe.jpg")
    Image.fromarray(noise(1)).save(d / "fifo" / "a.png")
    Image.fromarray(g).save(d / "fifo" / "b.png")
    Image.fromarray(noise(2)).save(d / "broken" / "a.png")
    os.symlink("nowhere.jpg", d / "broken" / "gone.jpg")
    Image.fromarray(noise(3)).save(d / "loop" / "a.png")
    os.symlink("self.jpg", d / "loop" / "self.jpg")
    Image.fromarray(noise(4)).save(d / "corrupt" / "ok.png")
    for folder in ("corrupt", "corrupt2"):
        (d / folder / "x.png").write_text("not a picture\n")
        Image.fromarray(noise(5)).save(d / folder / "half.jpg")
        data = (d / folder / "half.jpg").read_bytes()
        (d / folder / "half.jpg").write_bytes(data[: len(data) // 3])
    Image.fromarray(noise(6, (20, 30, 3))).save(d / "stems" / "face.jpg")
    Image.fromarray(noise(7, (30, 20, 3))).save(d / "stems" / "face.png")
    Image.fromarray(noise(8, (20, 30, 3))).save(d / "cases" / "Face.png")
    Image.fromarray(noise(9, (30, 20, 3))).save(d / "cases" / "face.png")
    grey16(d / "unusual" / "grey16.png", 128)
    save_rotated(d / "unusual" / "rotated.jpg", np.full((60, 80, 3), 90, np.uint8))
    (d / "full" / "old.txt").write_text("an older run's output\n")
    save_rotated(d / "voc" / "images" / "pic.jpg", stored_sideways())
    (d / "voc" / "upright" / "pic.xml").write_text(voc_xml("pic.jpg", (10, 60, 30, 90), 80, 100))
    (d / "voc" / "stored" / "pic.xml").write_text(voc_xml("pic.jpg", (60, 50, 90, 70), 100, 80))
    Image.fromarray(np.full((40, 40, 3), (255, 0, 0), np.uint8)).save(d / "vocstems" / "images" / "pic.jpg")
    Image.fromarray(np.full((40, 40, 3), (0, 0, 255), np.uint8)).save(d / "vocstems" / "images" / "pic.png")
    (d / "vocstems" / "ann" / "a.xml").write_text(voc_xml("pic.jpg", (0, 0, 20, 20), 40, 40))
    (d / "vocstems" / "ann" / "b.xml").write_text(voc_xml("pic.png", (0, 0, 20, 20), 40, 40))
    fer_faces(d / "fer", ("happy", "sad"), per_class=1)
    os.mkfifo(d / "fer" / "happy" / "pipe.jpg")
    fer_faces(d / "ferodd", ("happy", "sad"), per_class=1, save=lambda p, a: grey16(p, int(a.mean()), a.shape))
    for cls, value in (("happy", 110), ("sad", 170)):
        save_rotated(d / "ferodd" / cls / "rotated.jpg", np.full((40, 60), value, np.uint8))
    from conftest import FER

    fer_faces(d / "ferall", FER)
    os.mkfifo(d / "ferall" / "happy" / "pipe.jpg")
    fer_faces(d / "fer16", FER, save=lambda p, a: Image.fromarray(a.astype(np.uint16) * 257).save(p))


# Which rows this file builds (all in the one folder build_corpus makes); a row added to the doc without
# an entry here fails test_every_row_has_a_builder.
BUILT = {
    "dedup-link-to-file", "dedup-link-to-file-list", "dedup-link-to-duplicate", "dedup-link-outside", "dedup-hard-link",
    "dedup-fifo", "dedup-broken-link", "dedup-link-loop", "dedup-corrupt", "dedup-missing", "dedup-file", "dedup-empty",
    "dedup-only-fifo", "dedup-threshold", "square-same-stem", "square-same-stem-case", "square-fifo", "square-broken-link",
    "square-unusual", "square-only-fifo", "square-all-corrupt", "square-out-file", "square-out-not-empty",
    "square-out-unwritable", "square-size-zero", "square-missing", "crop-faces-fifo", "crop-faces-out-file",
    "crop-faces-margin", "voc-exif-upright", "voc-exif-stored", "voc-same-stem", "voc-missing-picture", "npz-fifo",
    "npz-unusual", "npz-out-not-npz", "tfrecords-fifo", "tfrecords-out-not-empty", "eval-fifo", "eval-16bit"}


def test_every_row_has_a_builder():
    cases = [r["case"] for r in ROWS]
    assert cases and [c for c in cases if c not in BUILT] == [] and len(set(cases)) == len(cases)
    assert all(r["exit"] in (0, 2) and r["says"] for r in ROWS)


# --------------------------------------------------------------------------- the runs

def run_tool(args: list[str], cwd, timeout=120):
    """`python -m data_pipelines ARGS` (`python -m train ARGS` for evaluate) in a process; a hang is a failure."""
    env = dict(os.environ, PYTHONPATH=ROOT, PYTHONUNBUFFERED="1")
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # as a user's shell has it
    module = "train" if args[0] == "evaluate" else "data_pipelines"
    try:
        r = subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env, capture_output=True, text=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"python -m {module} {shlex.join(args)} hung (> {timeout} s)")
    return r.returncode, r.stdout, r.stderr


def listing(d):
    """Every name under `d` (files, links, FIFOs; empty folders too), relative."""
    names = set()
    for root, dirs, files in os.walk(d):
        names.update(os.path.relpath(os.path.join(root, n), d) for n in files + dirs)
    return names


@pytest.mark.parametrize("row", ROWS, ids=[r["case"] for r in ROWS])
def test_bad_input(row, tmp_path, request):
    d = tmp_path / "corpus"
    d.mkdir()
    build_corpus(d)
    fmt = {"unwritable": unwritable(tmp_path)}
    if "{model}" in row["args"]:
        fmt["model"] = request.getfixturevalue("classifier")
    args = shlex.split(row["args"].format(**fmt))
    before = listing(d)
    code, out, err = run_tool(args, d, timeout=300 if args[0] in ("evaluate", "tfrecords") else 120)
    assert code == row["exit"], (out[-2000:], err[-2000:])
    assert "Traceback" not in err, err
    assert not [n for n in listing(d) if os.path.basename(n).startswith(".tmp-")], listing(d)
    if row["exit"] == 0:
        assert row["says"] in out + err, (out, err)
        if row["leaves"]:
            folder, names = row["leaves"]
            assert sorted(os.listdir(d / folder)) == names
        return
    lines = err.strip().splitlines()
    if lines and lines[-1].startswith("Error: "):  # Click refused an option: its usage lines, then one Error: line
        assert row["says"] in lines[-1] and sum(ln.startswith("Error") for ln in lines) == 1, err
    else:
        assert lines and lines[-1].startswith("error: ") and row["says"] in lines[-1], err
        assert all(ln.lstrip().startswith("skipped") for ln in lines[:-1]), err
    assert "wrote" not in out, out
    assert listing(d) == before  # nothing written or deleted, not even an empty folder


def test_the_unusual_pictures_come_out_right(tmp_path):
    """16-bit grey is scaled, not clipped to white; the EXIF-rotated JPEG comes out upright; crop-voc
    crops the box in the frame it was drawn in; the loaders read both kinds the same way."""
    d = tmp_path / "corpus"
    d.mkdir()
    build_corpus(d)
    assert run_tool(["square", "unusual", "--out", "sq", "--size", "16"], d)[0] == 0
    grey = np.asarray(Image.open(d / "sq" / "grey16.png").convert("L"))
    assert abs(int(np.median(grey)) - 128) <= 1, np.median(grey)  # was 255
    rotated = np.asarray(Image.open(d / "sq" / "rotated.png").convert("L")).astype(int)
    # upright it is 60 wide and 80 tall: padded on white left and right, not above and below
    assert (rotated[:, 0] == 255).all() and (rotated[0, 4:12] < 120).all(), rotated
    for ann in ("upright", "stored"):
        assert run_tool(["crop-voc", "voc/images", f"voc/{ann}", "--out", f"v-{ann}", "--size", "8"], d)[0] == 0
        crop = np.asarray(Image.open(d / f"v-{ann}" / "face" / "pic_1.png")).astype(int)
        assert (crop[..., 0] > 200).all() and (crop[..., 2] < 60).all(), (ann, crop[..., :].mean((0, 1)))

    from data_pipelines import load_source
    from data_pipelines.images import decode_image

    arr = decode_image(str(d / "unusual" / "rotated.jpg"), None, 3)
    assert arr.shape == (80, 60, 3)
    assert abs(int(np.median(decode_image(str(d / "unusual" / "grey16.png"), None, 1))) - 128) <= 1
    data = load_source(str(d / "ferodd"), 8, 1, labeled=True)
    assert len(data) == 4 and data.images.max() < 250  # (the faces are 50..200 grey; clipped, 16-bit was 255)


def test_a_killed_tool_leaves_nothing(tmp_path):
    """SIGTERM in the middle of `square`: one line, status 143, no --out and no .tmp-* folder."""
    src = tmp_path / "many"
    src.mkdir()
    for i in range(300):
        Image.fromarray(noise(i, (256, 256, 3))).save(src / f"{i:03d}.png", compress_level=0)
    env = dict(os.environ, PYTHONPATH=ROOT, PYTHONUNBUFFERED="1")
    p = subprocess.Popen([sys.executable, "-m", "data_pipelines", "square", str(src), "--out", str(tmp_path / "a" / "out"),
                          "--size", "128"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and p.poll() is None:
            staged = [n for n in listing(tmp_path) if os.path.basename(n).startswith(".tmp-")]
            if staged and os.listdir(tmp_path / staged[0]):  # the output is being written
                break
            time.sleep(0.02)
        assert p.poll() is None, "square finished before it could be stopped"
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 128 + signal.SIGTERM, err
    assert err.strip().splitlines() == ["interrupted (SIGTERM)"], err
    assert not (tmp_path / "a").exists()  # neither the output, its temporary folder, nor the parent it made
