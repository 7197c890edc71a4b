"""A TensorFlow Datasets builder for FER-2013 with a manual directory, and `load_tfds`.

FER-2013 cannot be downloaded at run time, so the builder reads a *manual directory* that
holds either

- the Kaggle CSV `fer2013.csv` (`emotion,pixels,Usage`; Usage Training / PublicTest /
  PrivateTest becomes the splits train / public_test / private_test), or
- the Kaggle folder layout `train/<class>/*.jpg` and `test/<class>/*.jpg` (test is the
  PublicTest usage; a `private_test/` folder, if present, becomes private_test).

When both are present the CSV wins. Only the splits that exist are created. Labels are in
FER_LABELS (folder, alphabetical) order in both cases: the CSV's own order (4 = sad,
6 = neutral) is remapped.

Preparing writes TFRecords once; later loads read them::

    import tensorflow_datasets as tfds
    import data_pipelines.tfds_fer  # registers "fer2013"
    ds = tfds.load("fer2013", split="train", data_dir=DATA_DIR,
                   download_and_prepare_kwargs={"download_config":
                       tfds.download.DownloadConfig(manual_dir=MANUAL_DIR)})

From the command line, `--data tfds:fer2013` goes through `load_tfds` (see its docstring for
where the manual and data directories come from).
"""

from __future__ import annotations

import logging
import os
import shutil
from urllib.parse import parse_qsl

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from etils import epath

from core.errors import DataError
from core.labels import FER_LABELS
from data_pipelines.fer_csv import FER_USAGES, iter_fer_csv
from data_pipelines.images import decode_image, fit_square, list_images
from data_pipelines.imageset import ImageSet, resize_batch
from data_pipelines.tfrecords import tf_message

log = logging.getLogger(__name__)

CSV_NAME = "fer2013.csv"
# FER usage -> TFDS split name.
USAGE_TO_SPLIT = {"Training": "train", "PublicTest": "public_test", "PrivateTest": "private_test"}
# Kaggle folder name -> TFDS split name (the shared folder layout has train/ and test/ = PublicTest).
FOLDER_TO_SPLIT = {
    "train": "train",
    "Training": "train",
    "test": "public_test",
    "public_test": "public_test",
    "PublicTest": "public_test",
    "private_test": "private_test",
    "PrivateTest": "private_test",
}
MANUAL_DIR_ENV = "EMOTEKIT_FER_DIR"
DATA_DIR_ENV = "EMOTEKIT_TFDS_DIR"


def find_layout(manual_dir: str) -> tuple[str, object]:
    """("csv", path) or ("folders", {split: folder}) for a manual directory; DataError if neither."""
    if not manual_dir or not os.path.isdir(manual_dir):
        raise DataError(
            f"FER-2013 manual directory not found: {manual_dir or '(none given)'}; "
            f"set {MANUAL_DIR_ENV} or use tfds:fer2013?manual_dir=PATH (a folder with {CSV_NAME} or train/ test/)"
        )
    csv_path = os.path.join(manual_dir, CSV_NAME)
    if os.path.isfile(csv_path):
        return "csv", csv_path
    folders = {}
    for name in sorted(os.listdir(manual_dir)):
        split = FOLDER_TO_SPLIT.get(name)
        if split and os.path.isdir(os.path.join(manual_dir, name)):
            if split in folders:
                raise DataError(f"{manual_dir}: both {os.path.basename(folders[split])}/ and {name}/ map to split {split}")
            folders[split] = os.path.join(manual_dir, name)
    if not folders:
        raise DataError(f"{manual_dir} holds neither {CSV_NAME} nor Kaggle folders (train/ test/ with class sub-folders)")
    return "folders", folders


class Fer2013(tfds.core.GeneratorBasedBuilder):
    """FER-2013 facial expressions, 48x48 grey, 7 classes in folder order."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Kaggle CSV or folder layout from a manual directory."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
    FER-2013 is not downloadable automatically. Put either the Kaggle CSV `{CSV_NAME}`
    (columns emotion,pixels,Usage) or the Kaggle folder layout (train/<class>/*.jpg,
    test/<class>/*.jpg with classes {', '.join(FER_LABELS)}) in the manual directory,
    e.g. `{MANUAL_DIR_ENV}=/path/to/fer2013` or
    `tfds.download.DownloadConfig(manual_dir=...)`.
    """

    # TFDS works out the code path through `importlib_resources`, which is not installed for
    # Python >= 3.9 (tfds 4.9.10 bug): give it directly.
    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls):
        return epath.Path(__file__)

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            description="FER-2013 (Goodfellow et al. 2013), 48x48 grey faces, 7 expressions.",
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(48, 48, 1)),
                    "label": tfds.features.ClassLabel(names=list(FER_LABELS)),
                }
            ),
            supervised_keys=("image", "label"),
            homepage="https://www.kaggle.com/c/challenges-in-representation-learning-facial-expression-recognition-challenge",
            citation="Goodfellow et al., Challenges in Representation Learning: A report on three machine learning contests, 2013.",
        )

    def _split_generators(self, dl_manager):
        kind, where = find_layout(str(dl_manager.manual_dir))
        if kind == "csv":
            usages = {u for _, u, _, _ in iter_fer_csv(where)}  # validates the whole file first
            splits = {"train"} if usages == {None} else {USAGE_TO_SPLIT[u] for u in usages if u}
            if None in usages and len(usages) > 1:
                raise DataError(f"{where}: some rows have no Usage")
            return {split: self._generate_examples("csv", where, split) for split in sorted(splits)}
        return {split: self._generate_examples("folder", folder, split) for split, folder in where.items()}

    def _generate_examples(self, kind, path, split):
        if kind == "csv":
            yield from self._csv_examples(path, split)
        else:
            yield from self._folder_examples(path)

    def _csv_examples(self, path, split):
        for lineno, usage, image, label in iter_fer_csv(path):
            if (USAGE_TO_SPLIT[usage] if usage else "train") == split:
                yield f"row{lineno}", {"image": image, "label": label}

    def _folder_examples(self, folder):
        paths = list_images(folder, log=log.warning)
        skipped = 0
        for path in paths:
            rel = os.path.relpath(path, folder)
            cls = rel.split(os.sep)[0]
            if os.sep not in rel:
                continue  # a loose file beside the class folders
            if cls not in FER_LABELS:
                raise DataError(f"unknown class folder {cls!r} in {folder}; expected some of {list(FER_LABELS)}")
            try:
                image = decode_image(path, 48, 1)
            except DataError as e:
                skipped += 1
                log.warning("skipped: %s", e)
                continue
            yield rel, {"image": image, "label": FER_LABELS.index(cls)}
        if skipped:
            log.warning("%d unreadable image(s) skipped in %s", skipped, folder)


def _first_line(e) -> str:
    return str(e).strip().splitlines()[0].rstrip(". ") if str(e).strip() else type(e).__name__


def parse_spec(name: str) -> tuple[str, dict]:
    """'fer2013?manual_dir=A&data_dir=B' -> ('fer2013', {'manual_dir': 'A', 'data_dir': 'B'})."""
    base, _, query = name.partition("?")
    params = dict(parse_qsl(query, keep_blank_values=True)) if query else {}
    unknown = set(params) - {"manual_dir", "data_dir"}
    if unknown:
        raise DataError(f"unknown option(s) {sorted(unknown)} in tfds:{name}; accepted: manual_dir, data_dir")
    return base, params


def split_for(usage: str | None) -> str:
    """FER usage (Training / PublicTest / PrivateTest) or a split name -> TFDS split; None -> train."""
    if usage is None:
        return "train"
    if usage in USAGE_TO_SPLIT:
        return USAGE_TO_SPLIT[usage]
    if usage in USAGE_TO_SPLIT.values():
        return usage
    raise DataError(f"unknown FER usage {usage!r}; expected one of {', '.join(FER_USAGES)} (or {', '.join(USAGE_TO_SPLIT.values())})")


def prepare_fer2013(data_dir: str | None = None, manual_dir: str | None = None) -> tfds.core.DatasetBuilder:
    """The prepared builder: TFRecords are written once under data_dir, then reused."""
    from google.protobuf import json_format

    try:
        builder = Fer2013(data_dir=data_dir)
    except (OSError, ValueError, json_format.ParseError) as e:  # a damaged dataset_info.json (UnicodeDecodeError is a ValueError)
        where = os.path.join(data_dir or tfds.core.constants.DATA_DIR, "fer2013")
        raise DataError(f"the prepared tfds:fer2013 in {where} is damaged (its dataset_info.json: {_first_line(e)}); "
                        f"delete that folder to prepare it again") from None
    if not builder.is_prepared():
        find_layout(manual_dir)  # a clear error before TFDS's own
        root = str(builder.data_dir_root)
        made = [p for p in (root, os.path.join(root, "fer2013"), os.path.join(root, "downloads")) if not os.path.exists(p)]
        try:
            builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
        except BaseException:
            # Bad data found while preparing: take away the folders TFDS made for it (it removes
            # its own incomplete.* folder), so a failed first use leaves nothing behind.
            for p in made:
                shutil.rmtree(p, ignore_errors=True)
            raise
    return builder


def load_tfds(name, size, channels, usage=None, limit=None, data_dir=None, manual_dir=None) -> ImageSet:
    """Loads a TFDS dataset (`--data tfds:NAME`) into an ImageSet.

    `name` is `fer2013`, optionally with options: `fer2013?manual_dir=PATH&data_dir=PATH`.
    The manual directory (see the module docstring) comes from, in order: the `manual_dir`
    argument, the `?manual_dir=` option, the environment variable EMOTEKIT_FER_DIR. It is only
    needed the first time, to prepare the TFRecords. The data directory comes from the argument,
    `?data_dir=`, EMOTEKIT_TFDS_DIR, then TFDS's own default (TFDS_DATA_DIR or
    ~/tensorflow_datasets).

    `usage` picks the split: Training / PublicTest / PrivateTest (as for the CSV) or
    train / public_test / private_test; None means train. Other TFDS names are read only when
    already prepared in the data directory (nothing is downloaded); they need `image` and
    `label` features.
    """
    base, params = parse_spec(name)
    manual_dir = manual_dir or params.get("manual_dir") or os.environ.get(MANUAL_DIR_ENV)
    data_dir = data_dir or params.get("data_dir") or os.environ.get(DATA_DIR_ENV) or None
    if base == "fer2013":
        split = split_for(usage)
        builder = prepare_fer2013(data_dir, manual_dir)
    else:
        try:
            builder = tfds.builder(base, data_dir=data_dir)
        except Exception as e:  # noqa: BLE001 - TFDS raises many kinds for an unknown name
            raise DataError(f"unknown TFDS dataset {base!r}: {str(e).splitlines()[0]}") from None
        if not builder.is_prepared():
            raise DataError(f"TFDS dataset {base!r} is not prepared in {builder.data_dir}; nothing is downloaded at run time")
        split = usage or "train"
    if split not in builder.info.splits:
        raise DataError(f"tfds:{base} has no split {split!r}; it has {', '.join(sorted(builder.info.splits))}")
    features = builder.info.features
    if "image" not in features or "label" not in features:
        raise DataError(f"tfds:{base} needs 'image' and 'label' features; it has {', '.join(features)}")
    images, labels = [], []
    try:
        ds = builder.as_dataset(split=f"{split}[:{int(limit)}]" if limit else split)
        for ex in tfds.as_numpy(ds):
            img = ex["image"]
            if img.shape[0] != size or img.shape[1] != size:
                from PIL import Image

                pil = Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img)
                img = np.asarray(fit_square(pil, size))
                img = img[..., None] if img.ndim == 2 else img
            images.append(img)
            labels.append(int(ex["label"]))
    except tf.errors.OpError as e:  # a prepared TFRecord file that is truncated, corrupt or gone
        raise DataError(f"cannot read the prepared tfds:{base} in {builder.data_dir}: {tf_message(e)}; "
                        f"delete that folder to prepare it again") from None
    if not images:
        raise DataError(f"tfds:{base} split {split!r} is empty")
    arr = resize_batch(np.stack(images), size, channels)
    names = features["label"].names if hasattr(features["label"], "names") else ()
    return ImageSet(arr, np.array(labels, np.int32), tuple(names), [f"{split}{i}" for i in range(len(arr))])
