"""Input pipelines under a strategy: ``strategy.distribute_datasets_from_function`` with per-replica
batches of ``global // replicas``; in-memory data is split by example between the input pipelines
(one per worker), TFRecord folders by shard files."""

from __future__ import annotations

from core.cli import UserError
from train.distribute.strategies import is_default


def per_replica_batch(global_batch: int, strategy) -> int:
    """global // replicas; the global batch must split evenly."""
    n = strategy.num_replicas_in_sync if strategy is not None else 1
    if global_batch % n:
        raise UserError(f"--batch-size {global_batch} does not split over {n} replicas; use a multiple of {n}")
    return global_batch // n


def distribute_arrays(strategy, make, images, labels=None, global_batch: int = 32):
    """Distributes an in-memory data set: `make(images, labels, batch_size)` builds a batched
    tf.data pipeline (e.g. data_pipelines.make_dataset). Without distribution it is called once
    with the global batch; with a strategy, once per input pipeline (one per worker) on an equal
    share of the examples, with per-replica batches, via distribute_datasets_from_function."""

    if is_default(strategy):
        return make(images, labels, global_batch)
    per_replica_batch(global_batch, strategy)  # the global batch must split evenly

    def dataset_fn(ctx):
        n, i = ctx.num_input_pipelines, ctx.input_pipeline_id
        if n > 1:
            size = len(images) // n  # equal shares: every worker runs the same number of steps
            if size < 1:
                raise UserError(f"{len(images)} examples cannot be split over {n} workers")
            x = images[i * size:(i + 1) * size]
            y = None if labels is None else labels[i * size:(i + 1) * size]
        else:
            x, y = images, labels
        return make(x, y, ctx.get_per_replica_batch_size(global_batch))

    return _from_function(strategy, dataset_fn)


def tfrecord_input_fn(path: str, global_batch: int, prep=None, shuffle: bool = True, seed: int = 0, repeat: bool = False,
                      spec: dict | None = None):
    """`fn(input_context)` -> the tf.data pipeline of one input pipeline over a TFRecord folder
    (local or gs://): its own shard files (by example when there are fewer files than pipelines),
    `prep(image_uint8, label)` per example, per-replica batches (the global batch without a context)."""
    import tensorflow as tf

    from data_pipelines.tfrecords import read_spec, tfrecord_dataset

    spec = spec or read_spec(path)

    def fn(ctx=None):
        ds = tfrecord_dataset(path, spec, input_context=ctx, shuffle_files=shuffle, seed=seed)
        ds = ds.map(lambda image, label, name: (image, label))
        if prep is not None:
            ds = ds.map(prep, num_parallel_calls=tf.data.AUTOTUNE)
        if shuffle:
            ds = ds.shuffle(4096, seed=seed, reshuffle_each_iteration=True)
        if repeat:
            ds = ds.repeat()
        batch = ctx.get_per_replica_batch_size(global_batch) if ctx is not None else global_batch
        return ds.batch(batch, drop_remainder=ctx is not None).prefetch(tf.data.AUTOTUNE)

    return fn


def distribute_tfrecords(strategy, path: str, global_batch: int, prep=None, shuffle: bool = True, seed: int = 0,
                         repeat: bool = False):
    """A TFRecord folder as a distributed data set: every input pipeline (one per worker) reads its
    own shard files, in per-replica batches (see tfrecord_input_fn). Without distribution: one
    pipeline with the global batch."""
    fn = tfrecord_input_fn(path, global_batch, prep, shuffle, seed, repeat)
    if is_default(strategy):
        return fn(None)
    per_replica_batch(global_batch, strategy)
    return _from_function(strategy, fn)


def with_class_weights(ds, class_weight: dict | None, num_classes: int | None = None):
    """(x, y) batches -> (x, y, sample_weight) from {class: weight} (y one-hot or soft: its argmax,
    over the first `num_classes` columns when given; or integer labels). What fit(class_weight=...)
    does, for pipelines that are distributed first or targets that pack more than the labels."""
    import tensorflow as tf

    if not class_weight:
        return ds
    table = tf.constant([float(class_weight.get(i, 1.0)) for i in range(max(class_weight) + 1)], tf.float32)

    def add(x, y):
        one_hot = y.shape.rank and y.shape.rank > 1
        index = tf.argmax(y[..., :num_classes] if num_classes else y, axis=-1) if one_hot else tf.cast(y, tf.int64)
        return x, y, tf.gather(table, index)

    return ds.map(add, num_parallel_calls=tf.data.AUTOTUNE)


def _from_function(strategy, dataset_fn):
    import tensorflow as tf

    def fn(ctx):
        ds = dataset_fn(ctx)
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF  # sharded above
        return ds.with_options(options)

    return strategy.distribute_datasets_from_function(fn)
