"""BatchNormalization synchronised over the replicas, so that batch statistics (and so losses)
don't depend on how the global batch is split."""

from __future__ import annotations


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
