"""Ranking from geometry: the emoji table (mobile_demo.emoji_table) re-ranked with what the face does.

Each cue is a strength 0..1 computed from the face's coefficients (core.face_geometry): a wink, both eyes
closed, one brow up, a pucker, a mouth wide open, a tilted head. An emoji's score is the table's cosine
(between its expression weights and the classifier's probabilities, 0..1) plus, for every cue, the cue's
strength times the emoji's weight in CUES. A cue at full strength adds 1 to its first emoji: more than any
difference of cosines, so the top suggestion follows what the face does; where two emoji share a cue (eyes
closed: 😌 or 😴) the classifier's probabilities choose between them. Tongue out has no signal in the mesh.

The page's `static/js/cues.js` is a line-by-line twin (tests/test_browser_mesh.py compares them).
"""

from __future__ import annotations

import numpy as np

# cue -> {emoji: weight}. Emoji missing from a table are skipped.
CUES = {
    "wink": {"😉": 1.0, "😜": 0.5},
    "eyes_closed": {"😌": 1.0, "😴": 1.0},
    "one_brow_up": {"🤨": 1.0},
    "pucker": {"😗": 1.0, "😘": 0.9, "😙": 0.6, "😚": 0.6},
    "mouth_open": {"😮": 1.0, "😱": 0.9, "😲": 0.7},
    "scream": {"😱": 0.3},
    "head_tilt": {"🤔": 1.0},
}


def clamp01(x: float) -> float:
    return min(1.0, max(0.0, x))


def cue_strengths(k: dict) -> dict[str, float]:
    """The strength 0..1 of each cue in CUES for coefficients `k` (core.face_geometry.COEFFICIENTS, smoothed)."""
    left, right = k["eye_open_left"], k["eye_open_right"]
    lo, hi = min(left, right), max(left, right)
    b_lo = min(k["brow_outer_up_left"], k["brow_outer_up_right"])
    b_hi = max(k["brow_outer_up_left"], k["brow_outer_up_right"])
    closed_mouth = clamp01(1 - k["jaw_open"] / 0.4)
    mouth_open = clamp01((k["jaw_open"] - 0.45) / 0.35)
    return {
        "wink": clamp01((hi - lo - 0.4) / 0.3) * clamp01((0.5 - lo) / 0.3),
        "eyes_closed": clamp01((0.35 - hi) / 0.25),
        "one_brow_up": clamp01((b_hi - b_lo - 0.3) / 0.3) * clamp01((b_hi - 0.4) / 0.3),
        "pucker": clamp01((k["pucker"] - 0.3) / 0.4) * closed_mouth,
        "mouth_open": mouth_open,
        "scream": mouth_open * k["brow_inner_up"],
        "head_tilt": clamp01((abs(k["roll"]) - 12) / 10),
    }


def cue_bonus(chars, strengths: dict) -> np.ndarray:
    """What the cues add to each emoji of `chars` (in order)."""
    bonus = np.zeros(len(chars))
    index = {c: i for i, c in enumerate(chars)}
    for cue, emoji in CUES.items():
        s = strengths.get(cue, 0.0)
        for char, w in emoji.items():
            if char in index:
                bonus[index[char]] += s * w
    return bonus


def scores(probs, coeffs: dict | None, table=None) -> np.ndarray:
    """Each emoji's score: the table's cosine for `probs` (zeros without them) plus the cues of `coeffs` (none without them)."""
    from mobile_demo.emoji_table import load_table

    table = table or load_table()
    base = table.scores(probs) if probs is not None else np.zeros(len(table))
    return base + (cue_bonus(table.chars, cue_strengths(coeffs)) if coeffs is not None else 0.0)


def rank_live(probs, coeffs: dict | None, k: int = 5, table=None) -> list[tuple[str, float]]:
    """Top-k (emoji, score) for 7 expression probabilities (FER_LABELS order) and the face's coefficients."""
    from mobile_demo.emoji_table import load_table

    table = table or load_table()
    s = scores(probs, coeffs, table)
    order = np.argsort(-s, kind="stable")[: max(0, int(k))]
    return [(table.chars[i], float(s[i])) for i in order]
