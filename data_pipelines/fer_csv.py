"""The Kaggle FER-2013 CSV (`emotion,pixels,Usage`): streamed and checked row by row, labels mapped to
the folders' order (core.labels.FER_LABELS)."""

from __future__ import annotations

import csv
import os

import numpy as np

from core.errors import DataError
from core.labels import FER_LABELS
from data_pipelines.imageset import ImageSet, resize_batch

# The Kaggle folders' order is FER_LABELS (alphabetical); the CSV's own order differs: see FER_CSV_TO_FOLDER.
# CSV emotion 0..6 = angry, disgust, fear, happy, sad, surprise, neutral.
FER_CSV_LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FER_CSV_TO_FOLDER = tuple(FER_LABELS.index(n) for n in FER_CSV_LABELS)
FER_USAGES = ("Training", "PublicTest", "PrivateTest")


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
