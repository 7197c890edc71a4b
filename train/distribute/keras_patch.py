"""A correction to Keras 3's fit()/evaluate() under a multi-worker strategy (tensorflow/tensorflow#72388),
installed by ``make_strategy("multiworker")`` only."""

from __future__ import annotations


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
