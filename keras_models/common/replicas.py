"""Random draws under tf.distribute that do not depend on how the global batch is split."""

from __future__ import annotations


def replica_rows(draw, batch):
    """`draw(n)` for the whole global batch, and this replica's `batch` rows of it: under
    tf.distribute every replica gets different noise (not copies of one draw), and the global
    batch's noise is the one a single device would draw. Equal per-replica batches assumed."""
    import tensorflow as tf

    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return draw(batch)
    return draw(batch * ctx.num_replicas_in_sync)[ctx.replica_id_in_sync_group * batch:][:batch]
