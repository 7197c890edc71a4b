"""Strategies by name, mixed precision, and which worker writes what.

:func:`setup` (from a command's options) = :func:`set_mixed_precision` + :func:`make_strategy`.
Call it before anything else touches TensorFlow: a multi-worker strategy must be created first.
"""

from __future__ import annotations

import os

from core.cli import UserError
from train.distribute.cluster import on_tpu_vm, parse_tf_config, probe_tpu
from train.distribute.keras_patch import fix_multi_worker_fit

STRATEGIES = ("default", "mirrored", "multiworker", "tpu")
PRECISIONS = {"off": "float32", "fp16": "mixed_float16", "bf16": "mixed_bfloat16"}
VIRTUAL_CPUS_ENV = "EMOTEKIT_VIRTUAL_CPUS"


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


def _tpu_strategy(address: str | None):
    import tensorflow as tf

    address = address or os.environ.get("TPU_NAME") or None
    if address and "://" in address:
        probe_tpu(address)
    if address is None and not on_tpu_vm():
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
        from core.files import read_options_file

        mode = read_options_file(saved).get("mixed_precision") or "off"
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
