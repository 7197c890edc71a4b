"""tf.distribute for `python -m train`: strategies, mixed precision and distributed input pipelines.

Every model command takes ``--strategy {default,mirrored,multiworker,tpu}`` (``--tpu ADDRESS``) and
``--mixed-precision {off,fp16,bf16}``; ``--batch-size`` is always the GLOBAL batch, split evenly
over the replicas. The pieces:

- :func:`setup` (from a command's options) = :func:`set_mixed_precision` + :func:`make_strategy`.
  Call it before anything else touches TensorFlow: a multi-worker strategy must be created first.
  The multi-worker one also installs :func:`fix_multi_worker_fit` (Keras 3 fit() bugs, tensorflow/tensorflow#72388).
- :func:`distribute_arrays` / :func:`distribute_tfrecords`: ``strategy.distribute_datasets_from_function``
  with per-replica batches of ``global // replicas``; in-memory data is split by example between
  the input pipelines (one per worker), TFRecord folders by shard files.
- :func:`prepare_model`: BatchNormalization layers synchronised over the replicas, so that batch
  statistics (and so losses) don't depend on how the global batch is split.
- The custom ``train_step``s (VAE, DCGAN) scale each replica's loss to its share of the
  global-batch mean (tf.distribute sums the replicas' gradients); :func:`replica_loss` is that rule.
- :func:`is_chief` / :func:`worker_out`: only the chief writes the real run directory; other workers
  write theirs under ``OUT/.worker-N`` so that nothing collides on shared storage.

``EMOTEKIT_VIRTUAL_CPUS=N`` splits the CPU into N logical devices before TensorFlow starts, so
that ``--strategy mirrored`` runs N replicas on a machine without GPUs (tests, trying things out).
"""

from __future__ import annotations

import json
import os
import socket

from train.cli_support import UserError

STRATEGIES = ("default", "mirrored", "multiworker", "tpu")
PRECISIONS = {"off": "float32", "fp16": "mixed_float16", "bf16": "mixed_bfloat16"}
VIRTUAL_CPUS_ENV = "EMOTEKIT_VIRTUAL_CPUS"
TPU_PROBE_TIMEOUT_S = 5.0


# --------------------------------------------------------------------------- strategies


def configure_virtual_cpus(n: int | None = None) -> int:
    """Splits the first CPU into `n` logical devices (default: $EMOTEKIT_VIRTUAL_CPUS). Must run
    before TensorFlow initialises its devices; returns the number of logical CPUs (0: not asked)."""
    import tensorflow as tf

    if n is None:
        raw = os.environ.get(VIRTUAL_CPUS_ENV, "").strip()
        if not raw:
            return 0  # untouched: listing devices would start TensorFlow (too early for multi-worker)
        try:
            n = int(raw)
        except ValueError:
            raise UserError(f"{VIRTUAL_CPUS_ENV} must be a whole number, got {raw!r}") from None
    if n < 1:
        raise UserError(f"{VIRTUAL_CPUS_ENV} must be at least 1, got {n}")
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)
    except RuntimeError:
        pass  # TensorFlow already initialised: keep what it has
    return len(tf.config.list_logical_devices("CPU"))


def parse_tf_config(raw: str | None = None) -> dict:
    """Checks TF_CONFIG (the multi-worker cluster description) and returns it as a dict.

    Expected: {"cluster": {"worker": ["host:port", ...], ["chief": ["host:port"]]},
               "task": {"type": "worker" | "chief", "index": i}}
    """
    raw = os.environ.get("TF_CONFIG") if raw is None else raw
    if raw is None or not raw.strip():
        raise UserError('--strategy multiworker needs TF_CONFIG on every worker, e.g. '
                        'TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}\'')
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as e:
        raise UserError(f"TF_CONFIG is not valid JSON ({e.msg} at character {e.pos})") from None
    if not isinstance(config, dict):
        raise UserError("TF_CONFIG must be a JSON object with 'cluster' and 'task'")
    cluster, task = config.get("cluster"), config.get("task")
    if not isinstance(cluster, dict) or not cluster:
        raise UserError("TF_CONFIG has no 'cluster' (an object such as {\"worker\": [\"host:port\", ...]})")
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise UserError("TF_CONFIG has no 'task' with 'type' and 'index' (e.g. {\"type\": \"worker\", \"index\": 0})")
    for role, addresses in cluster.items():
        if role not in ("chief", "worker", "evaluator", "ps"):
            raise UserError(f"TF_CONFIG cluster has an unknown job {role!r} (expected chief and/or worker)")
        if role == "ps":
            raise UserError("TF_CONFIG has parameter servers: use --strategy multiworker with workers (and a chief) only")
        if not isinstance(addresses, list) or not addresses:
            raise UserError(f"TF_CONFIG cluster.{role} must be a non-empty list of \"host:port\"")
        for a in addresses:
            host, _, port = str(a).rpartition(":")
            if not isinstance(a, str) or not host or not port.isdigit():
                raise UserError(f"TF_CONFIG cluster.{role} has {a!r}, expected \"host:port\"")
    if "worker" not in cluster and "chief" not in cluster:
        raise UserError("TF_CONFIG cluster has no 'worker' list")
    kind, index = task["type"], task["index"]
    if kind not in cluster:
        raise UserError(f"TF_CONFIG task type {kind!r} is not a job of the cluster ({', '.join(cluster)})")
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(cluster[kind]):
        raise UserError(f"TF_CONFIG task index {index!r} is out of range: cluster.{kind} has {len(cluster[kind])} address(es)")
    return config


def _probe_tpu(address: str) -> None:
    """grpc://host:port must answer a TCP connection; TensorFlow would otherwise wait forever."""
    hostport = address.split("://", 1)[1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"--tpu {address}: expected grpc://HOST:PORT, a TPU name, or 'local'")
    try:
        with socket.create_connection((host, int(port)), timeout=TPU_PROBE_TIMEOUT_S):
            pass
    except OSError as e:
        raise UserError(f"TPU at {hostport} is unreachable ({e.strerror or type(e).__name__})") from None


def make_strategy(name: str = "default", tpu: str | None = None):
    """A tf.distribute.Strategy by name; every failure is a one-line UserError.

    - default: no distribution (the current device).
    - mirrored: all local GPUs (else the logical CPUs, see EMOTEKIT_VIRTUAL_CPUS), synchronous.
    - multiworker: MultiWorkerMirroredStrategy over the machines of TF_CONFIG.
    - tpu: TPUStrategy on `tpu`: "local" on a Cloud TPU VM (the default there), a TPU name, or grpc://HOST:PORT.
    """
    if name not in STRATEGIES:
        raise UserError(f"unknown --strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
    if tpu and name != "tpu":
        raise UserError("--tpu is only used with --strategy tpu")
    if name == "multiworker":
        parse_tf_config()  # before TensorFlow reads it and fails less clearly
    import tensorflow as tf

    if name != "multiworker":  # a multi-worker strategy must be the first thing to start TensorFlow
        configure_virtual_cpus()
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        cpus = tf.config.list_logical_devices("CPU")
        devices = [d.name for d in gpus] or [d.name for d in cpus]
        return tf.distribute.MirroredStrategy(devices)
    if name == "multiworker":
        try:
            strategy = tf.distribute.MultiWorkerMirroredStrategy()
        except (ValueError, RuntimeError, tf.errors.OpError) as e:
            raise UserError(f"cannot start the multi-worker strategy: {str(e).splitlines()[0]}") from None
        fix_multi_worker_fit()
        return strategy
    return _tpu_strategy(tpu)


def fix_multi_worker_fit() -> None:
    """Works around two bugs of Keras 3's fit()/evaluate() under a multi-worker
    MultiWorkerMirroredStrategy (tensorflow/tensorflow#72388), in keras/src/backend/tensorflow/trainer.py:

    - Each step's logs (metric results, scalars) are reduced with ``reduce_per_replica(...,
      reduction="auto")``, i.e. "mean", which in multi-worker mode is ``strategy.reduce("MEAN", v,
      axis=0)``: that also reduces along axis 0 of each value, so every scalar fails with "Invalid
      reduction dimension 0 for input with 0 dimensions". The mean over the replicas is ``axis=None``
      (what Keras does on one worker); here an all-reduce, so that every worker logs the same values.
    - Before the first step, ``_maybe_symbolic_build`` reduces the whole first batch with one
      ``strategy.reduce`` call, which a multi-worker strategy cannot do for a structure such as
      (x, y, sample_weight): "Attempt to convert a value (PerReplica...) to a Tensor". The batch
      only gives the symbolic build its shapes and dtypes, so this worker's first replica's batch does.

    The step functions look ``reduce_per_replica`` up in their module when they are traced, so it
    is replaced there, and ``_maybe_symbolic_build`` on the trainer class; both hand everything that
    is not a multi-worker strategy (default, mirrored, TPU; predict()'s "concat") to Keras' own code.
    Only ``make_strategy("multiworker")`` installs them; calling it again does nothing.
    """
    import tensorflow as tf
    from keras import tree
    from keras.src.backend.tensorflow import trainer

    keras_reduce, keras_build = trainer.reduce_per_replica, trainer.TensorFlowTrainer._maybe_symbolic_build
    if getattr(keras_reduce, "emotekit_multi_worker", False):
        return
    multi_worker = trainer._collective_all_reduce_multi_worker  # the test that picks Keras' multi-worker branch

    def reduce_per_replica(values, strategy, reduction):
        if reduction not in ("auto", "mean") or not multi_worker(strategy):
            return keras_reduce(values, strategy, reduction)
        return tree.map_structure(lambda v: v if v is None else strategy.reduce("MEAN", v, axis=None), values)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        strategy = self._distribute_strategy
        if iterator is None or strategy is None or not multi_worker(strategy):
            return keras_build(self, iterator, data_batch)
        for _, _, it in iterator:
            data_batch = next(it)
            break
        local = tree.map_structure(lambda v: strategy.experimental_local_results(v)[0]
                                   if isinstance(v, tf.distribute.DistributedValues) else v, data_batch)
        return keras_build(self, data_batch=local)

    reduce_per_replica.emotekit_multi_worker = True
    trainer.reduce_per_replica = reduce_per_replica
    trainer.TensorFlowTrainer._maybe_symbolic_build = _maybe_symbolic_build


def _tpu_strategy(address: str | None):
    import tensorflow as tf

    address = address or os.environ.get("TPU_NAME") or None
    if address and "://" in address:
        _probe_tpu(address)
    if address is None and not _on_tpu_vm():
        raise UserError("--strategy tpu: no TPU found (not a Cloud TPU VM and no --tpu NAME or grpc://HOST:PORT given)")
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=address or "local")
        if (address or "local") != "local":
            tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        if "No OpKernel was registered" in msg or "TPUs not found" in msg:
            msg = "TPUs not found on this machine"
        raise UserError(f"--strategy tpu: cannot use TPU {address or 'local'}: {msg[:200]}") from None


def _on_tpu_vm() -> bool:
    return os.path.exists("/dev/accel0") or os.path.exists("/dev/vfio/0") or bool(os.environ.get("TPU_ACCELERATOR_TYPE"))


def set_mixed_precision(mode: str = "off") -> str:
    """Sets Keras' global dtype policy: off = float32, fp16 = mixed_float16 (GPUs; Keras adds
    dynamic loss scaling), bf16 = mixed_bfloat16 (TPUs, recent GPUs). Returns the policy name."""
    import keras

    if mode not in PRECISIONS:
        raise UserError(f"unknown --mixed-precision {mode!r}; choose one of {', '.join(PRECISIONS)}")
    keras.config.set_dtype_policy(PRECISIONS[mode])
    return PRECISIONS[mode]


def setup(options: dict):
    """From a command's options: the dtype policy, then the strategy (created before any other
    TensorFlow work, as multi-worker strategies require). Returns the strategy."""
    strategy = make_strategy(options.get("strategy") or "default", options.get("tpu"))
    mode = options.get("mixed_precision") or "off"
    saved = os.path.join(options.get("resume") or "", "options.json")
    if options.get("resume") and os.path.isfile(saved):  # a resumed run keeps its precision (and checkpoint layout)
        with open(saved) as f:
            mode = json.load(f).get("mixed_precision") or "off"
    set_mixed_precision(mode)
    if not is_default(strategy) or mode != "off":
        import click

        click.echo(f"strategy: {describe(strategy)}; precision {PRECISIONS[mode]}")
    return strategy


# tf.distribute's public names for the classes behind them (tf.distribute.MultiWorkerMirroredStrategy
# is a CollectiveAllReduceStrategy): what a user asked for with --strategy is what they read.
PUBLIC_NAMES = {"CollectiveAllReduceStrategy": "MultiWorkerMirroredStrategy", "TPUStrategyV2": "TPUStrategy"}


def describe(strategy) -> str:
    """E.g. "MultiWorkerMirroredStrategy: 2 replica(s) on 2 workers"."""
    name = PUBLIC_NAMES.get(type(strategy).__name__, type(strategy).__name__)
    workers = getattr(getattr(strategy, "extended", None), "_num_workers", 1) or 1
    return f"{name}: {strategy.num_replicas_in_sync} replica(s)" + (f" on {workers} workers" if workers > 1 else "")


def is_default(strategy) -> bool:
    """True for no strategy or TensorFlow's default one (no distribution at all)."""
    return strategy is None or type(strategy).__name__ == "_DefaultDistributionStrategy"


def task_info(strategy) -> tuple[str | None, int]:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return None, 0
    return resolver.task_type, int(resolver.task_id or 0)


def is_chief(strategy) -> bool:
    """True on the worker that writes the run directory: the chief, else worker 0."""
    kind, index = task_info(strategy)
    if kind is None or kind == "chief":
        return True
    spec = strategy.cluster_resolver.cluster_spec().as_dict()
    return kind == "worker" and index == 0 and "chief" not in spec


def worker_out(out: str, strategy) -> str:
    """The --out a worker writes to: the chief's own, OUT/.worker-N for the others."""
    if is_chief(strategy):
        return out
    kind, index = task_info(strategy)
    return os.path.join(out, f".{kind}-{index}")


def scope(strategy):
    """strategy.scope(), or a no-op context without a strategy."""
    import contextlib

    return strategy.scope() if strategy is not None else contextlib.nullcontext()


# --------------------------------------------------------------------------- batches and losses


def per_replica_batch(global_batch: int, strategy) -> int:
    """global // replicas; the global batch must split evenly."""
    n = strategy.num_replicas_in_sync if strategy is not None else 1
    if global_batch % n:
        raise UserError(f"--batch-size {global_batch} does not split over {n} replicas; use a multiple of {n}")
    return global_batch // n


def replica_loss(per_example, global_batch_size=None):
    """One replica's share of the global-batch mean: sum(per_example) / global batch size.

    tf.distribute sums the replicas' gradients, so each replica must differentiate this, not
    its own mean (that would scale the step by the replica count). Equal to the plain mean
    without a strategy. (tf.nn.compute_average_loss.)
    """
    import tensorflow as tf

    return tf.nn.compute_average_loss(per_example, global_batch_size=global_batch_size)


def distribute_arrays(strategy, make, images, labels=None, global_batch: int = 32):
    """Distributes an in-memory data set: `make(images, labels, batch_size)` builds a batched
    tf.data pipeline (e.g. data_pipelines.make_dataset). Without distribution it is called once
    with the global batch; with a strategy, once per input pipeline (one per worker) on an equal
    share of the examples, with per-replica batches, via distribute_datasets_from_function."""

    if is_default(strategy):
        return make(images, labels, global_batch)
    per_replica = per_replica_batch(global_batch, strategy)

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

    return _from_function(strategy, dataset_fn, per_replica)


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
    return _from_function(strategy, fn, None)


def with_class_weights(ds, class_weight: dict | None):
    """(x, y) batches -> (x, y, sample_weight) from {class: weight} (y one-hot or soft: its argmax;
    or integer labels). What fit(class_weight=...) does, for pipelines that are distributed first."""
    import tensorflow as tf

    if not class_weight:
        return ds
    table = tf.constant([float(class_weight.get(i, 1.0)) for i in range(max(class_weight) + 1)], tf.float32)

    def add(x, y):
        index = tf.argmax(y, axis=-1) if y.shape.rank and y.shape.rank > 1 else tf.cast(y, tf.int64)
        return x, y, tf.gather(table, index)

    return ds.map(add, num_parallel_calls=tf.data.AUTOTUNE)


def _from_function(strategy, dataset_fn, per_replica=None):
    import tensorflow as tf

    def fn(ctx):
        ds = dataset_fn(ctx)
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF  # sharded above
        return ds.with_options(options)

    return strategy.distribute_datasets_from_function(fn)


# --------------------------------------------------------------------------- models


def _walk(layer, seen=None):
    seen = set() if seen is None else seen
    if id(layer) in seen:
        return
    seen.add(id(layer))
    yield layer
    for child in getattr(layer, "layers", None) or []:
        yield from _walk(child, seen)
    for attr in ("encoder", "decoder", "generator", "discriminator", "ema_generator", "student", "teacher"):
        child = getattr(layer, attr, None)
        if child is not None and hasattr(child, "layers"):
            yield from _walk(child, seen)


def prepare_model(model, strategy) -> int:
    """With more than one replica, BatchNormalization layers compute batch statistics over the
    GLOBAL batch (synchronized=True), so training doesn't depend on the replica count. Returns
    the number of layers changed."""
    import keras

    if strategy is None or strategy.num_replicas_in_sync <= 1:
        return 0
    n = 0
    for layer in _walk(model):
        if isinstance(layer, keras.layers.BatchNormalization) and not layer.synchronized:
            layer.synchronized = True
            n += 1
    return n
