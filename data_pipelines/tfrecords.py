"""Sharded TFRecords with a small JSON spec, readable from local disk or a bucket (gs://).

Layout of a TFRecord folder (written by `python -m data_pipelines tfrecords`)::

    DIR/spec.json                    format, image_shape [H, W, C], labels, count, source, shards
    DIR/data-00000-of-00004.tfrecord one tf.train.Example per image:
                                       image  bytes  raw uint8, H*W*C, row-major HWC
                                       label  int64  class index, -1 when unlabelled
                                       name   bytes  file or emoji name

Shards hold contiguous blocks of the source, so reading them in order gives the source order
back. All file access goes through `tf.io.gfile` (and tf.data), so `gs://bucket/path` works
where TensorFlow has bucket credentials. `spec.json` is written last: a folder without it is
not a finished data set.
"""

from __future__ import annotations

import json
import os
import re
import uuid

import numpy as np

from core.errors import DataError
from data_pipelines.imageset import ImageSet, resize_batch

FORMAT = "emotekit-tfrecords"
VERSION = 1
SPEC_NAME = "spec.json"


def _gfile():
    import tensorflow as tf

    return tf.io.gfile


def is_remote(path: str) -> bool:
    return "://" in path


def _example(image: np.ndarray, label: int, name: str):
    import tensorflow as tf

    feature = {
        "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image.tobytes()])),
        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(label)])),
        "name": tf.train.Feature(bytes_list=tf.train.BytesList(value=[name.encode("utf-8")])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature))


def shard_name(i: int, n: int) -> str:
    return f"data-{i:05d}-of-{n:05d}.tfrecord"


def write_tfrecords(imageset: ImageSet, out_dir: str, shards: int = 1, source: str = "") -> dict:
    """Writes `imageset` as `shards` TFRecord files plus spec.json; returns the spec.

    A local `out_dir` is built in a temporary sibling folder and renamed into place, so an
    interrupted write leaves nothing; a bucket path gets its spec.json last.

    Raises:
        DataError: out_dir already holds files, or cannot be written.
    """
    import tensorflow as tf

    gfile = _gfile()
    n = len(imageset)
    if n == 0:
        raise DataError("nothing to write: the source has no images")
    if shards < 1:
        raise DataError(f"--shards must be at least 1, got {shards}")
    shards = min(shards, n)
    images = np.ascontiguousarray(imageset.images, dtype=np.uint8)
    if images.ndim != 4:
        raise DataError(f"images must be (N, H, W, C), got shape {images.shape}")
    try:
        if gfile.exists(out_dir) and gfile.listdir(out_dir):
            raise DataError(f"output folder is not empty: {out_dir}")
    except tf.errors.OpError as e:
        raise DataError(f"cannot access {out_dir}: {tf_message(e)}") from None

    remote = is_remote(out_dir)
    target = out_dir if remote else os.path.join(os.path.dirname(os.path.abspath(out_dir)), f".tmp-{uuid.uuid4().hex[:8]}")
    labeled = imageset.labels is not None
    names = list(imageset.names) + [""] * (n - len(imageset.names))
    blocks = np.array_split(np.arange(n), shards)
    spec = {
        "format": FORMAT,
        "version": VERSION,
        "image_shape": list(images.shape[1:]),
        "encoding": "raw-uint8-hwc",
        "labeled": labeled,
        "labels": list(imageset.class_names) if labeled else [],
        "count": n,
        "source": source,
        "shards": [shard_name(i, shards) for i in range(shards)],
        "shard_counts": [len(b) for b in blocks],
        "skipped": len(imageset.skipped),
    }
    try:
        gfile.makedirs(target)
        for i, block in enumerate(blocks):
            with tf.io.TFRecordWriter(f"{target.rstrip('/')}/{spec['shards'][i]}") as writer:
                for j in block:
                    label = int(imageset.labels[j]) if labeled else -1
                    writer.write(_example(images[j], label, names[j]).SerializeToString())
        with gfile.GFile(f"{target.rstrip('/')}/{SPEC_NAME}", "w") as f:
            f.write(json.dumps(spec, indent=2) + "\n")
        if not remote:
            if os.path.isdir(out_dir):
                os.rmdir(out_dir)  # empty (checked above)
            os.replace(target, out_dir)
    except tf.errors.OpError as e:
        raise DataError(f"cannot write TFRecords to {out_dir}: {tf_message(e)}") from None
    except OSError as e:
        raise DataError(f"cannot write TFRecords to {out_dir}: {e.strerror or e}") from None
    finally:
        if not remote and os.path.isdir(target):
            gfile.rmtree(target)
    return spec


def tf_message(e) -> str:
    """The first line of a TensorFlow error without its `{{function_node ...}}` and `[Op:...]` wrapping."""
    text = (getattr(e, "message", None) or str(e)).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    text = re.sub(r"^\{\{function_node [^}]*\}\}\s*", "", text)
    text = re.sub(r"\s*\[Op:\w+\].*$", "", text)
    return text.rstrip(". ") or type(e).__name__


def read_spec(path: str) -> dict:
    """Reads and checks DIR/spec.json (local or bucket): every field the reader relies on has the
    type it needs, so a damaged or hand-edited spec is one clear line, not an error deep in tf.data."""
    import tensorflow as tf

    gfile = _gfile()
    spec_path = f"{path.rstrip('/')}/{SPEC_NAME}"
    try:
        if not gfile.exists(spec_path):
            what = ("path not found" if not gfile.exists(path)
                    else f"no {SPEC_NAME} (not a TFRecord folder from `python -m data_pipelines tfrecords`)")
            raise DataError(f"{what}: {path}")
        with gfile.GFile(spec_path, "rb") as f:
            spec = json.loads(f.read().decode("utf-8"))
    except tf.errors.OpError as e:
        raise DataError(f"cannot read {spec_path}: {tf_message(e)}") from None
    except UnicodeDecodeError:
        raise DataError(f"{spec_path}: not UTF-8 text (a binary or damaged file); rewrite the folder with `python -m data_pipelines "
                        f"tfrecords`") from None
    except json.JSONDecodeError as e:
        raise DataError(f"{spec_path}: not valid JSON ({e.msg}, line {e.lineno})") from None
    if not isinstance(spec, dict) or spec.get("format") != FORMAT:
        raise DataError(f"{spec_path}: not an {FORMAT} spec")
    for key in ("image_shape", "shards", "count"):
        if key not in spec:
            raise DataError(f"{spec_path}: missing {key!r}")
    check_spec(spec, spec_path)
    return spec


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_spec(spec: dict, where: str) -> None:
    """DataError naming the field when spec.json's fields have the wrong types or values."""
    def bad(key, want):
        raise DataError(f"{where}: {key!r} must be {want}, found {spec.get(key)!r}")

    shape = spec["image_shape"]
    if not (isinstance(shape, list) and len(shape) == 3 and all(_is_int(d) and d > 0 for d in shape) and shape[2] in (1, 3)):
        bad("image_shape", "[height, width, 1 or 3] (positive integers)")
    shards = spec["shards"]
    if not (isinstance(shards, list) and shards and all(isinstance(n, str) and n and n == os.path.basename(n) and n not in (".", "..")
                                                        for n in shards)):
        bad("shards", "a non-empty list of file names in the folder")
    if not (_is_int(spec["count"]) and spec["count"] >= 0):
        bad("count", "a non-negative integer")
    if not isinstance(spec.get("labeled", False), bool):
        bad("labeled", "true or false")
    labels = spec.get("labels", [])
    if not (isinstance(labels, list) and all(isinstance(x, str) for x in labels)):
        bad("labels", "a list of class names")
    if spec.get("labeled") and not labels:
        bad("labels", "the class names of a labelled set")


def tfrecord_dataset(path: str, spec: dict | None = None, input_context=None, shuffle_files: bool = False, seed: int = 0):
    """A tf.data.Dataset of (image uint8 HWC, label int32, name string) from a TFRecord folder.

    With a `tf.distribute.InputContext`, each input pipeline reads its own subset of the shard
    files (sharding by files, as `distribute_datasets_from_function` wants) when there are at
    least as many shards as pipelines, else every pipeline shards by example.
    """
    import tensorflow as tf

    spec = spec or read_spec(path)
    files = [f"{path.rstrip('/')}/{s}" for s in spec["shards"]]
    shape = [int(d) for d in spec["image_shape"]]
    ds = tf.data.Dataset.from_tensor_slices(files)
    by_example = False
    if input_context is not None and input_context.num_input_pipelines > 1:
        if len(files) >= input_context.num_input_pipelines:
            ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
        else:
            by_example = True
    if shuffle_files:
        ds = ds.shuffle(len(files), seed=seed)
    ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=1 if not shuffle_files else tf.data.AUTOTUNE,
                       num_parallel_calls=tf.data.AUTOTUNE, deterministic=not shuffle_files)
    if by_example:
        ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    description = {
        "image": tf.io.FixedLenFeature([], tf.string),
        "label": tf.io.FixedLenFeature([], tf.int64, default_value=-1),
        "name": tf.io.FixedLenFeature([], tf.string, default_value=""),
    }

    def parse(record):
        ex = tf.io.parse_single_example(record, description)
        image = tf.reshape(tf.io.decode_raw(ex["image"], tf.uint8), shape)
        return image, tf.cast(ex["label"], tf.int32), ex["name"]

    return ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE)


def load_tfrecords(path: str, size: int, channels: int, limit: int | None = None) -> ImageSet:
    """A TFRecord folder (local or gs://) into an ImageSet, resized to size and channels.

    A missing, truncated or corrupt shard, a record that is not one of ours, a label outside
    the spec's classes or fewer examples than spec.json counts: DataError naming the folder.
    """
    import tensorflow as tf

    spec = read_spec(path)
    ds = tfrecord_dataset(path, spec)
    if limit:
        ds = ds.take(int(limit))
    images, labels, names = [], [], []
    try:
        for image, label, name in ds.batch(1024).as_numpy_iterator():
            images.append(image)
            labels.append(label)
            names.extend(n.decode("utf-8", "replace") for n in name)
    except tf.errors.OpError as e:
        raise DataError(f"cannot read TFRecords in {path}: {tf_message(e)}") from None
    except UnicodeDecodeError:
        # TensorFlow fails to build the message of a parse error whose record holds binary bytes.
        raise DataError(f"cannot read TFRecords in {path}: a record is not a tf.train.Example (damaged or foreign file)") from None
    if not images:
        raise DataError(f"no examples in {path}")
    count = sum(len(b) for b in images)
    if not limit and count != spec["count"]:
        raise DataError(f"{path} holds {count} examples but its {SPEC_NAME} says {spec['count']}: a shard is missing, "
                        "empty or cut short; write the folder again")
    arr = resize_batch(np.concatenate(images), size, channels)
    labeled = bool(spec.get("labeled"))
    y = np.concatenate(labels).astype(np.int32) if labeled else None
    if labeled and (y.min() < 0 or y.max() >= len(spec["labels"])):
        raise DataError(f"{path}: label {int(y.min() if y.min() < 0 else y.max())} outside the {len(spec['labels'])} classes of its "
                        f"{SPEC_NAME}")
    return ImageSet(arr, y, tuple(spec.get("labels") or ()), names)
