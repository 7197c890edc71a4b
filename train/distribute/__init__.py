"""tf.distribute for `python -m train`: strategies, mixed precision and distributed input pipelines.

Every model command takes ``--strategy {default,mirrored,multiworker,tpu}`` (``--tpu ADDRESS``) and
``--mixed-precision {off,fp16,bf16}``; ``--batch-size`` is always the GLOBAL batch, split evenly
over the replicas. The pieces, one module each:

- ``strategies``: :func:`setup` (from a command's options) = :func:`set_mixed_precision` +
  :func:`make_strategy`. Call it before anything else touches TensorFlow: a multi-worker strategy
  must be created first. :func:`is_chief` / :func:`worker_out`: only the chief writes the real run
  directory; other workers write theirs under ``OUT/.worker-N`` so that nothing collides on shared storage.
- ``cluster``: TF_CONFIG checked (:func:`parse_tf_config`) and a TPU address probed before TensorFlow uses them.
- ``keras_patch``: :func:`fix_multi_worker_fit`, which the multi-worker strategy installs (Keras 3
  fit() bugs, tensorflow/tensorflow#72388).
- ``inputs``: :func:`distribute_arrays` / :func:`distribute_tfrecords`: ``strategy.distribute_datasets_from_function``
  with per-replica batches of ``global // replicas``; in-memory data is split by example between
  the input pipelines (one per worker), TFRecord folders by shard files.
- ``batchnorm``: :func:`prepare_model`: BatchNormalization layers synchronised over the replicas, so
  that batch statistics (and so losses) don't depend on how the global batch is split.

The custom ``train_step``s (VAE, DCGAN) scale each replica's loss to its share of the global-batch
mean (tf.distribute sums the replicas' gradients).

``EMOTEKIT_VIRTUAL_CPUS=N`` splits the CPU into N logical devices before TensorFlow starts, so
that ``--strategy mirrored`` runs N replicas on a machine without GPUs (tests, trying things out).
"""

from train.distribute.batchnorm import prepare_model
from train.distribute.cluster import parse_tf_config
from train.distribute.inputs import distribute_arrays, distribute_tfrecords, per_replica_batch, tfrecord_input_fn, with_class_weights
from train.distribute.keras_patch import fix_multi_worker_fit
from train.distribute.strategies import (
    PRECISIONS,
    STRATEGIES,
    VIRTUAL_CPUS_ENV,
    configure_virtual_cpus,
    describe,
    is_chief,
    is_default,
    make_strategy,
    scope,
    set_mixed_precision,
    setup,
    task_info,
    worker_out,
)

__all__ = ["PRECISIONS", "STRATEGIES", "VIRTUAL_CPUS_ENV", "configure_virtual_cpus", "describe", "distribute_arrays",
           "distribute_tfrecords", "fix_multi_worker_fit", "is_chief", "is_default", "make_strategy", "parse_tf_config",
           "per_replica_batch", "prepare_model", "scope", "set_mixed_precision", "setup", "task_info", "tfrecord_input_fn",
           "with_class_weights", "worker_out"]
