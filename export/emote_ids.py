"""Emote ids ranked by the judge, and the expression emote generator measured by it.

For every expression, the shipped `.tflite` generator makes the emotes of ids 0..scan-1 asked
for that expression; the judge (train/emote_judge.py, trained on real emoji only) scores each.
The ids whose emote the judge finds most clearly of that expression come first in the panel
("New emote" shows them first; any id stays the user's to type). Measured on the same pass:
how often the judge sees the expression asked for, over plain ids (what the model makes) and over
the ranked ones (what the panel shows first), and novelty / diversity against the training emoji
(keras_models.common.sample_metrics.novelty on the first ids of each expression, as the training run measures its grid).
"""

from __future__ import annotations

import numpy as np

from core.labels import FER_LABELS
from export.expression_directions import Generator


def emotes(generator: Generator, ids, expression: int, noise_size: int) -> np.ndarray:
    """uint8 emotes (N, H, W, 3) of `ids` asked for expression index `expression`."""
    from core.images import to_uint8
    from keras_models.common.noise import generator_inputs

    return to_uint8(generator(generator_inputs(list(ids), noise_size, len(FER_LABELS), [expression] * len(ids))))


def rank_ids(generator: Generator, judge, noise_size: int, data_uint8: np.ndarray, scan: int = 1024, keep: int = 64,
             measure: int = 63, log=print) -> tuple[dict, dict, tuple[np.ndarray, np.ndarray]]:
    """({expression: the `keep` best ids}, measurements, (the first ids' emotes, the first shown), each
    (measure // 7, 7, H, W, 3): a column per expression). Ties keep the smaller id."""
    from keras_models.common.sample_metrics import mean_pairwise_distance, novelty
    from keras_models.dcgan.judge import judge_probs

    best, measured, first, shown = {}, {}, [], []
    for k, name in enumerate(FER_LABELS):
        imgs = emotes(generator, range(scan), k, noise_size)
        p = judge_probs(judge, imgs)
        order = np.argsort(-p[:, k], kind="stable")[:keep]
        best[name] = [int(i) for i in order]
        measured[name] = {"judged_as_asked": round(float((p.argmax(1) == k).mean()), 4),
                          "judged_as_asked_shown_first": round(float((p[order].argmax(1) == k).mean()), 4),
                          "mean_p_asked": round(float(p[:, k].mean()), 4), "judged_as": {c: round(float((p.argmax(1) == j).mean()), 4)
                                                                                          for j, c in enumerate(FER_LABELS)}}
        first.append(imgs[:measure // len(FER_LABELS)])
        shown.append(imgs[order[:measure // len(FER_LABELS)]])
        log(f"{name}: judged {name} for {measured[name]['judged_as_asked']:.1%} of ids 0..{scan - 1}, "
            f"{measured[name]['judged_as_asked_shown_first']:.1%} of the {keep} shown first")
    data = data_uint8.astype(np.float32) / 127.5 - 1.0
    data_div = mean_pairwise_distance(data[:256])

    def figures(images):
        x = np.concatenate(images).astype(np.float32) / 127.5 - 1.0
        nov = novelty(x, data)
        nov.pop("nearest_index")
        return {k: round(v, 4) for k, v in nov.items()} | {"diversity": round(mean_pairwise_distance(x) / max(data_div, 1e-9), 4),
                                                             "samples": int(len(x))}

    overall = {"judged_as_asked": round(float(np.mean([m["judged_as_asked"] for m in measured.values()])), 4),
               "judged_as_asked_shown_first": round(float(np.mean([m["judged_as_asked_shown_first"] for m in measured.values()])), 4),
               "scan": scan, "keep": keep, "plain_ids": figures(first), "shown_first": figures(shown)}
    return best, {"overall": overall, "per_expression": measured}, (np.stack(first, 1), np.stack(shown, 1))
