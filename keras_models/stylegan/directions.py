"""Attribute directions in w space: auto-labels from image statistics, InterFaceGAN linear
boundaries (logistic regression in numpy), orthogonalisation against the other attributes,
GANSpace PCA directions, and the directions file (JSON) the CLI and the web page read.

An edit moves w by `alpha * scale * vector`, where `vector` is a unit vector and `scale` is the
standard deviation of the sampled ws along it: alpha = +2 is two standard deviations.
"""

from __future__ import annotations

import json
import os

import numpy as np

from core.errors import ConfigError

FORMAT = "emotekit-stylegan-directions"
VERSION = 1

# ------------------------------------------------------------------ image statistics (auto-labels)
# Face crops in the anime set are tight: hair fills the top and the sides, the eyes sit at ~45-60 %
# of the height, the mouth at ~72-86 %. Regions are fractions of (height, width).
REGIONS = {
    "top": (0.0, 0.18, 0.15, 0.85),
    "lower_sides": ((0.55, 1.0, 0.0, 0.16), (0.55, 1.0, 0.84, 1.0)),
    "mouth": (0.72, 0.88, 0.38, 0.62),
    "mouth_skin": (0.64, 0.72, 0.35, 0.65),
    "bridge": (0.46, 0.60, 0.42, 0.58),
    "eyes": (0.42, 0.62, 0.15, 0.85),
    "cheeks": ((0.62, 0.74, 0.18, 0.32), (0.62, 0.74, 0.68, 0.82)),
}

ATTRIBUTES = {
    "hair_brightness": "brightness of the hair (mean value of the top band): dark <-> light hair",
    "hair_hue_red": "redness of the hair colour (cos of the mean hue of the top band): blue/green <-> red/pink",
    "hair_saturation": "saturation of the hair colour: grey/white/black <-> vivid",
    "hair_length": "hair-coloured pixels in the lower side bands: short <-> long hair",
    "mouth_open": "dark/red pixels in the mouth box against the skin above it: closed <-> open mouth / smile",
    "glasses": "edge energy on the nose bridge between the eyes (frames cross it): none <-> glasses",
    "eye_size": "dark/saturated pixels in the eye band: small <-> large eyes",
    "blush": "red minus green on the cheeks: pale <-> blushing",
}


def _crop(x, box):
    h, w = x.shape[1:3]
    y0, y1, x0, x1 = box
    return x[:, int(round(y0 * h)):max(int(round(y1 * h)), int(round(y0 * h)) + 1),
             int(round(x0 * w)):max(int(round(x1 * w)), int(round(x0 * w)) + 1)]


def _hsv(x):
    """x float (..., 3) in [0, 1] -> hue (radians), saturation, value."""
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    v = x.max(-1)
    c = v - x.min(-1)
    s = np.where(v > 1e-6, c / np.maximum(v, 1e-6), 0.0)
    # hue via the opponent-colour angle (smooth, no case analysis)
    hue = np.arctan2(np.sqrt(3.0) * (g - b), 2 * r - g - b)
    return hue, s, v


def image_scores(images) -> dict:
    """Scores (N,) per attribute for images uint8 (N, H, W, 3) or float in [-1, 1]."""
    x = np.asarray(images)
    x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else (np.clip(x.astype(np.float32), -1, 1) + 1) / 2
    n = len(x)
    top = _crop(x, REGIONS["top"]).reshape(n, -1, 3)
    hue, sat, val = _hsv(top)
    chroma = sat * val
    hair_rgb = np.median(top, axis=1)  # (N, 3)
    sides = np.concatenate([_crop(x, b).reshape(n, -1, 3) for b in REGIONS["lower_sides"]], axis=1)
    dist = np.sqrt(((sides - hair_rgb[:, None]) ** 2).sum(-1))
    mouth = _crop(x, REGIONS["mouth"]).reshape(n, -1, 3)
    skin = _crop(x, REGIONS["mouth_skin"]).reshape(n, -1, 3)
    skin_v = np.median(skin.mean(-1), axis=1)
    mouth_v = mouth.mean(-1)
    mouth_red = mouth[..., 0] - mouth[..., 1]
    skin_red = np.median(skin[..., 0] - skin[..., 1], axis=1)
    bridge = _crop(x, REGIONS["bridge"]).mean(-1)
    gy, gx = np.abs(np.diff(bridge, axis=1))[:, :, :-1], np.abs(np.diff(bridge, axis=2))[:, :-1, :]
    eyes = _crop(x, REGIONS["eyes"]).reshape(n, -1, 3)
    _, eye_s, eye_v = _hsv(eyes)
    cheeks = np.concatenate([_crop(x, b).reshape(n, -1, 3) for b in REGIONS["cheeks"]], axis=1)
    return {
        "hair_brightness": val.mean(1),
        "hair_hue_red": np.sum(np.cos(hue) * chroma, 1) / np.maximum(chroma.sum(1), 1e-6),
        "hair_saturation": sat.mean(1),
        "hair_length": (dist < 0.18).mean(1),
        "mouth_open": np.mean((mouth_v < skin_v[:, None] - 0.15) | (mouth_red > skin_red[:, None] + 0.12), axis=1),
        "glasses": (gy.mean((1, 2)) + gx.mean((1, 2))),
        "eye_size": np.mean((eye_v < 0.45) | (eye_s > 0.45), axis=1),
        "blush": (cheeks[..., 0] - cheeks[..., 1]).mean(1),
    }


# ------------------------------------------------------------------ boundaries


def logistic_boundary(w, y, l2=1e-2, steps=300, lr=0.5):
    """A linear boundary between labels y in {0, 1} for rows of w: logistic regression on the
    standardised ws by full-batch gradient descent (with Nesterov momentum). Returns
    (unit normal in w space, pointing to y = 1; training accuracy)."""
    w = np.asarray(w, np.float64)
    y = np.asarray(y, np.float64)
    mu, sd = w.mean(0), w.std(0) + 1e-8
    xs = (w - mu) / sd
    theta, b = np.zeros(xs.shape[1]), 0.0
    v_t, v_b = np.zeros_like(theta), 0.0
    for _ in range(steps):
        t_look, b_look = theta + 0.9 * v_t, b + 0.9 * v_b
        p = 1 / (1 + np.exp(-(xs @ t_look + b_look)))
        g_t = xs.T @ (p - y) / len(y) + l2 * t_look
        g_b = float(np.mean(p - y))
        v_t, v_b = 0.9 * v_t - lr * g_t, 0.9 * v_b - lr * g_b
        theta, b = theta + v_t, b + v_b
    acc = float(np.mean(((xs @ theta + b) > 0) == (y > 0.5)))
    normal = theta / sd  # back to raw w coordinates: score = (w - mu) / sd . theta
    return normal / (np.linalg.norm(normal) + 1e-12), acc


def fit_boundaries(ws, scores: dict, fraction=0.3, **kw) -> dict:
    """InterFaceGAN: for each attribute, label the top `fraction` of the scores 1 and the bottom
    `fraction` 0, fit a linear boundary in w space. Returns {name: (unit vector, accuracy)}."""
    out = {}
    for name, s in scores.items():
        s = np.asarray(s, np.float64)
        lo, hi = np.quantile(s, fraction), np.quantile(s, 1 - fraction)
        keep = (s <= lo) | (s >= hi)
        if keep.sum() < 4 or hi <= lo:
            continue
        out[name] = logistic_boundary(np.asarray(ws)[keep], (s[keep] >= hi).astype(np.float64), **kw)
    return out


def orthogonalize(vectors: dict, order=None) -> dict:
    """Each unit vector with the span of all the others projected out (conditional editing:
    moving along one leaves the others' scores unchanged, to first order), renormalised."""
    names = list(order or vectors)
    out = {}
    for name in names:
        others = np.stack([vectors[o] for o in names if o != name], axis=1) if len(names) > 1 else None
        v = np.asarray(vectors[name], np.float64)
        if others is not None:
            q, _ = np.linalg.qr(others)
            v = v - q @ (q.T @ v)
        out[name] = v / (np.linalg.norm(v) + 1e-12)
    return out


def pca_directions(ws, k=8):
    """GANSpace: the top-k principal directions of sampled ws (unit vectors), with the standard
    deviation along each and the fraction of variance it explains."""
    w = np.asarray(ws, np.float64)
    c = w - w.mean(0)
    _, s, vt = np.linalg.svd(c, full_matrices=False)
    var = s**2 / max(len(w) - 1, 1)
    k = min(k, len(vt))
    return vt[:k], np.sqrt(var[:k]), var[:k] / var.sum()


# ------------------------------------------------------------------ the directions file


def make_directions(w_avg, entries: dict, **meta) -> dict:
    """entries: {name: {"vector": unit (w_dim,), "scale": float, "kind": str, ...}}."""
    dirs = {}
    for name, e in entries.items():
        e = dict(e)
        v = np.asarray(e.pop("vector"), np.float64)
        dirs[name] = dict(e, vector=[float(a) for a in v / (np.linalg.norm(v) + 1e-12)], scale=float(e["scale"]))
    return dict({"format": FORMAT, "version": VERSION, "w_dim": int(len(w_avg)), "w_avg": [float(a) for a in w_avg],
                 "directions": dirs}, **meta)


def save_directions(path, data: dict, atomic=None) -> None:
    """Writes the JSON (through `atomic(path)`, a context manager yielding a temporary path, when given)."""
    text = json.dumps(data, indent=1) + "\n"
    if atomic is None:
        with open(path, "w") as f:
            f.write(text)
        return
    with atomic(path) as tmp:
        with open(tmp, "w") as f:
            f.write(text)


def select_directions(data: dict, keep, reason: str) -> dict:
    """The directions file `data` (as JSON) with only the directions named in `keep`; the others are
    listed under "dropped" with `reason`, so that the page shows no slider that does nothing visible."""
    keep = list(dict.fromkeys(keep))
    unknown = [n for n in keep if n not in data["directions"]]
    if unknown:
        raise ConfigError(f"unknown direction {unknown[0]!r}; the file has: {', '.join(data['directions'])}")
    dropped = dict(data.get("dropped") or {}, **{n: reason for n in data["directions"] if n not in keep})
    return dict(data, directions={n: data["directions"][n] for n in keep}, dropped=dropped)


def load_directions(path) -> dict:
    """Reads and checks a directions file; vectors become float32 arrays."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no directions file: {path}")
    try:
        with open(path) as f:
            data = json.load(f)
    except ValueError as e:
        raise ConfigError(f"not a JSON directions file: {path} ({e})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ConfigError(f"not an Emotekit StyleGAN directions file: {path}")
    dim = int(data["w_dim"])
    data["w_avg"] = np.asarray(data["w_avg"], np.float32)
    for name, e in data["directions"].items():
        e["vector"] = np.asarray(e["vector"], np.float32)
        if e["vector"].shape != (dim,):
            raise ConfigError(f"{path}: direction {name!r} has {e['vector'].shape[0]} values, expected {dim}")
    return data


def apply_edits(w, directions: dict, edits: dict):
    """w (..., w_dim) + sum of alpha * scale * vector for each {name: alpha}."""
    w = np.array(w, np.float32, copy=True)
    for name, alpha in edits.items():
        if name not in directions:
            raise KeyError(name)
        e = directions[name]
        w = w + float(alpha) * float(e["scale"]) * np.asarray(e["vector"], np.float32)
    return w


def truncate(w, w_avg, psi):
    return np.asarray(w_avg, np.float32) + float(psi) * (np.asarray(w, np.float32) - np.asarray(w_avg, np.float32))
