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

import os

import numpy as np

from core.errors import DataError
from data_pipelines.fer_csv import load_fer_csv
from data_pipelines.images import decode_many, list_images
from data_pipelines.imageset import ImageSet, remap_labels


def load_folder(path, size, channels, labeled=False, class_names=None, limit=None, on_error="skip"):
    """Any image folder. With `labeled`, classes are the sub-folders (sorted) or `class_names`."""
    special: list = []  # names that are not regular files (a FIFO, a broken link): counted as unreadable
    paths = list_images(path, special=special)
    if special and on_error == "fail":
        raise DataError(f"cannot read image {special[0][0]}: not a regular file ({special[0][1]})")
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
    not_regular = [f"cannot read image {p}: not a regular file ({why})" for p, why in special]
    return ImageSet(decoded.images, labels, tuple(class_names or ()), names, decoded.bad + not_regular)


def load_emoji(spec: str, size: int, channels: int, limit=None):
    """`emoji:<set>[/category]` or `emoji:all[/category]`: offline, no download (see data_pipelines.emoji_sets)."""
    from data_pipelines.emoji_sets import load_emoji_set

    return load_emoji_set(spec, size, channels, limit)


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
