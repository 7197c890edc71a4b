"""Expression targets for emoji images: each image's weights over the seven FER expressions, looked
up by its emoji name in an emoji map (the keyboard's `mobile_demo/static/emoji_map.json` format:
{"labels": [...the seven...], "emoji": [{"name": ..., "weights": {expression: weight}}]}).

Emoji sets name every image by its Unicode name ("grinning face"), the same in every set, so one
table labels all of them. Images whose name the map does not hold are left out (and counted).
"""

from __future__ import annotations

import json

import numpy as np

from core.errors import DataError
from core.labels import FER_LABELS
from data_pipelines.imageset import ImageSet


def read_weights(path: str) -> dict[str, np.ndarray]:
    """name -> weights (7 float32 in FER_LABELS order, summing to 1) from an emoji map file."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"cannot read the emoji map {path}: {e}") from None
    if not isinstance(doc, dict) or tuple(doc.get("labels", ())) != FER_LABELS or not isinstance(doc.get("emoji"), list):
        raise DataError(f"{path} is not an emoji map: it needs \"labels\" {list(FER_LABELS)} and an \"emoji\" list")
    table = {}
    for i, e in enumerate(doc["emoji"]):
        w = e.get("weights") if isinstance(e, dict) else None
        name = e.get("name") if isinstance(e, dict) else None
        if not isinstance(name, str) or not isinstance(w, dict) or set(w) - set(FER_LABELS):
            raise DataError(f"{path}: emoji #{i} needs a name and weights over {list(FER_LABELS)}")
        row = np.array([float(w.get(k, 0.0)) for k in FER_LABELS], np.float32)
        if not np.all(np.isfinite(row)) or np.any(row < 0) or abs(float(row.sum()) - 1.0) > 1e-4:
            raise DataError(f"{path}: emoji #{i} ({name!r}) weights must be >= 0 and sum to 1")
        table[name] = row
    return table


def with_expression_targets(images: ImageSet, path: str) -> tuple[ImageSet, np.ndarray, int]:
    """(the images the map names, labelled with their argmax expression; their weights (N, 7); how
    many images were left out because the map does not name them)."""
    table = read_weights(path)
    keep = [i for i, n in enumerate(images.names) if n in table]
    if not keep:
        raise DataError(f"no image of the data has a name in {path} (expression targets need named emoji, e.g. --data emoji:all)")
    weights = np.stack([table[images.names[i]] for i in keep])
    idx = np.array(keep)
    subset = ImageSet(images.images[idx], weights.argmax(1).astype(np.int32), FER_LABELS, [images.names[i] for i in keep],
                      list(images.skipped))
    return subset, weights, len(images) - len(keep)


def balanced_indices(labels: np.ndarray, floor: float = 0.5, seed: int = 0) -> np.ndarray:
    """Indices that repeat the rarer classes' images until each class has at least `floor` times the
    largest class's count (whole copies first, then a seeded draw), every image at least once."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    counts = {c: int((labels == c).sum()) for c in np.unique(labels)}
    target = int(np.ceil(floor * max(counts.values())))
    out = [np.arange(len(labels))]
    for c, n in counts.items():
        if n < target:
            members = np.flatnonzero(labels == c)
            extra = target - n
            out += [members] * (extra // n) + [rng.choice(members, extra % n, replace=False)]
    return np.sort(np.concatenate(out))
