"""Synthetic face meshes for the geometry, cue and live-emoji tests: a neutral face (the landmarks that
core.face_geometry, mobile_demo.face_mesh and live_cues read), moved as a face moves, placed in a frame."""

from __future__ import annotations

import math

import numpy as np

# The median (u, v, w) of each landmark over 117 neutral FER-2013 test faces drawn into 640x480 frames and meshed
# (BlazeFace ROI, then tracked once), in the face's own frame of core.face_geometry (units: the eye distance).
NEUTRAL_FACE = {
    0: (-0.001, 0.969, -0.285),
    1: (-0.004, 0.673, -0.559),
    2: (-0.002, 0.746, -0.306),
    10: (0.000, -0.794, -0.306),
    13: (0.000, 1.059, -0.189),
    14: (-0.001, 1.095, -0.162),
    17: (0.001, 1.248, -0.165),
    33: (-0.718, -0.019, 0.041),
    61: (-0.380, 1.054, 0.020),
    63: (-0.806, -0.334, -0.100),
    105: (-0.660, -0.369, -0.211),
    107: (-0.237, -0.324, -0.345),
    133: (-0.282, 0.019, -0.041),
    144: (-0.585, 0.054, -0.039),
    145: (-0.500, 0.063, -0.062),
    152: (-0.001, 1.651, 0.159),
    153: (-0.420, 0.056, -0.067),
    158: (-0.446, -0.077, -0.093),
    159: (-0.530, -0.081, -0.090),
    160: (-0.615, -0.069, -0.067),
    234: (-1.067, 0.167, 0.905),
    263: (0.719, -0.019, 0.040),
    291: (0.385, 1.059, 0.020),
    293: (0.804, -0.336, -0.104),
    334: (0.655, -0.372, -0.212),
    336: (0.237, -0.322, -0.343),
    362: (0.281, 0.019, -0.040),
    373: (0.584, 0.053, -0.039),
    374: (0.500, 0.061, -0.062),
    380: (0.420, 0.055, -0.067),
    385: (0.446, -0.074, -0.094),
    386: (0.531, -0.081, -0.090),
    387: (0.615, -0.069, -0.067),
    454: (1.078, 0.169, 0.904),
}

RIGHT_LIDS_UPPER, LEFT_LIDS_UPPER = (160, 159, 158), (387, 386, 385)
RIGHT_LIDS_LOWER, LEFT_LIDS_LOWER = (144, 145, 153), (373, 374, 380)


def face(**moves) -> dict[int, list[float]]:
    """The neutral face's points, changed by `moves`: close_left / close_right (0..1 of the lid gap shut),
    brow_left / brow_right (outer brow up, eye distances), brows_inner (inner brows up), frown (inner brows down
    and together), open_mouth (lower lip and chin down), pucker (mouth corners in, a fraction of the width),
    smile (corners up and out)."""
    p = {k: list(v) for k, v in NEUTRAL_FACE.items()}
    for upper, lower, key in ((RIGHT_LIDS_UPPER, RIGHT_LIDS_LOWER, "close_right"), (LEFT_LIDS_UPPER, LEFT_LIDS_LOWER, "close_left")):
        t = moves.get(key, 0.0)
        for a, b in zip(upper, lower):
            p[a][1] += t * 0.92 * (p[b][1] - p[a][1])
    for pts, key in (((105, 63), "brow_right"), ((334, 293), "brow_left")):
        for k in pts:
            p[k][1] -= moves.get(key, 0.0)
    for k in (107, 336):
        p[k][1] -= moves.get("brows_inner", 0.0)
        p[k][1] += moves.get("frown", 0.0)
        p[k][0] *= 1 - moves.get("frown", 0.0)
    for k in (14, 17, 152):
        p[k][1] += moves.get("open_mouth", 0.0)
    for k in (61, 291):
        p[k][0] *= 1 - moves.get("pucker", 0.0)
        p[k][0] *= 1 + moves.get("smile", 0.0)
        p[k][1] -= moves.get("smile", 0.0)
    return p


def place(points: dict, cx: float = 320.0, cy: float = 240.0, scale: float = 100.0, roll: float = 0.0, yaw: float = 0.0,
          pitch: float = 0.0) -> np.ndarray:
    """The 468 x 3 landmarks (frame pixels) of face points turned by yaw, then pitch, then roll (degrees, as
    core.face_geometry measures them), `scale` pixels an eye distance, centred at (cx, cy); unused landmarks
    at the middle of the eyes."""
    lm = np.zeros((468, 3))
    ya, pa, ra = math.radians(yaw), math.radians(pitch), math.radians(roll)
    for k, (u, v, w) in points.items():
        u, w = u * math.cos(ya) - w * math.sin(ya), u * math.sin(ya) + w * math.cos(ya)  # nose (w < 0) to +x
        v, w = v * math.cos(pa) + w * math.sin(pa), -v * math.sin(pa) + w * math.cos(pa)  # nose (w < 0) up
        x, y = u * math.cos(ra) - v * math.sin(ra), u * math.sin(ra) + v * math.cos(ra)
        lm[k] = (cx + scale * x, cy + scale * y, scale * w)
    lm[[k for k in range(468) if k not in points]] = (cx, cy, 0.0)
    return lm
