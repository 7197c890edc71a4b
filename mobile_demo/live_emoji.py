"""The live emoji: a vector emoji drawn from a face's coefficients (core.face_geometry), specified once here.

`draw_live_emoji(coeffs, size)` draws it as RGBA (transparent background, anti-aliased by drawing 4x larger
and averaging); the page's `static/js/live_emoji.js` `drawLiveEmoji(ctx, coeffs, size)` draws the same
geometry on a 2D canvas. Coordinates are in units of the side `size`, from the square's centre, y down; the
subject's right side is the image's left (as the camera sees the face, unmirrored):

- face: a disc of radius 0.46, #FFCC4D, outlined #E0A030 (0.012 wide); it does not turn.
- everything else turns by the head's roll about the centre (positive: clockwise on screen) and is shifted by
  (0.10 sin(yaw), -0.10 sin(pitch)) first (the angles clamped to +-60 degrees), colour #664500:
- eyes at (-0.16, -0.06) (the subject's right: eye_open_right) and (+0.16, -0.06): an ellipse of half-axes
  0.05 x 0.075 * open while open >= 0.15, else a closed lid: a quadratic curve from (-0.06, 0) to (+0.06, 0)
  about the eye's centre with control point (0, 0.03), 0.022 wide, round caps;
- brows: a line 0.03 wide, round caps, from the inner end (-+0.07, -0.215 - 0.07 inner_up + 0.07 down) to the
  outer end (-+0.25, -0.20 - 0.07 outer_up), inner_up = brow_inner_up, outer_up = that side's brow_outer_up,
  down = brow_down;
- mouth at (0, 0.20): half width W = 0.16 (0.7 + 0.6 mouth_width)(1 - 0.5 pucker), opening
  H = 0.015 + 0.22 jaw_open + 0.05 pucker, corners (-W, -0.08 smile_right) and (+W, -0.08 smile_left)
  about its centre, smile = (smile_left + smile_right) / 2; filled between the upper lip (a quadratic curve
  from corner to corner with control point (0, 0.03 smile - 0.6 H)) and the lower lip (control point
  (0, 0.10 smile + 1.4 H)).
"""

from __future__ import annotations

import math

import numpy as np

FACE = (0xFF, 0xCC, 0x4D, 255)
OUTLINE = (0xE0, 0xA0, 0x30, 255)
FEATURE = (0x66, 0x45, 0x00, 255)
RADIUS = 0.46
SUPERSAMPLE = 4
NEUTRAL = {"eye_open_left": 1.0, "eye_open_right": 1.0, "jaw_open": 0.0, "mouth_width": 0.5, "smile_left": 0.0,
           "smile_right": 0.0, "pucker": 0.0, "brow_inner_up": 0.0, "brow_outer_up_left": 0.0, "brow_outer_up_right": 0.0,
           "brow_down": 0.0, "yaw": 0.0, "pitch": 0.0, "roll": 0.0}


def _shift(k: dict) -> tuple[float, float]:
    def clamp_deg(a):
        return math.radians(max(-60.0, min(60.0, a)))

    return 0.10 * math.sin(clamp_deg(k["yaw"])), -0.10 * math.sin(clamp_deg(k["pitch"]))


def _quad(p0, c, p1, n: int = 24) -> list[tuple[float, float]]:
    t = np.linspace(0, 1, n)
    x = (1 - t) ** 2 * p0[0] + 2 * (1 - t) * t * c[0] + t ** 2 * p1[0]
    y = (1 - t) ** 2 * p0[1] + 2 * (1 - t) * t * c[1] + t ** 2 * p1[1]
    return list(zip(x.tolist(), y.tolist()))


def shapes(coeffs: dict) -> list[tuple]:
    """The drawing as shapes in the unturned face frame: ("ellipse", cx, cy, rx, ry), ("stroke", points, width),
    ("fill", points). draw_live_emoji turns them by the roll."""
    k = {**NEUTRAL, **{key: float(v) for key, v in coeffs.items() if key in NEUTRAL}}
    fx, fy = _shift(k)
    out = []
    for side, open_ in ((-1, k["eye_open_right"]), (1, k["eye_open_left"])):
        ex, ey = side * 0.16 + fx, -0.06 + fy
        if open_ >= 0.15:
            out.append(("ellipse", ex, ey, 0.05, 0.075 * open_))
        else:
            out.append(("stroke", _quad((ex - 0.06, ey), (ex, ey + 0.03), (ex + 0.06, ey)), 0.022))
    for side, outer in ((-1, k["brow_outer_up_right"]), (1, k["brow_outer_up_left"])):
        inner = (side * 0.07 + fx, -0.215 - 0.07 * k["brow_inner_up"] + 0.07 * k["brow_down"] + fy)
        out.append(("stroke", [inner, (side * 0.25 + fx, -0.20 - 0.07 * outer + fy)], 0.03))
    mx, my = fx, 0.20 + fy
    w = 0.16 * (0.7 + 0.6 * k["mouth_width"]) * (1 - 0.5 * k["pucker"])
    h = 0.015 + 0.22 * k["jaw_open"] + 0.05 * k["pucker"]
    smile = (k["smile_left"] + k["smile_right"]) / 2
    left, right = (mx - w, my - 0.08 * k["smile_right"]), (mx + w, my - 0.08 * k["smile_left"])
    upper = _quad(left, (mx, my + 0.03 * smile - 0.6 * h), right)
    lower = _quad(right, (mx, my + 0.10 * smile + 1.4 * h), left)
    out.append(("fill", upper + lower[1:-1]))
    return out


def draw_live_emoji(coeffs: dict, size: int) -> np.ndarray:
    """The live emoji for coefficients `coeffs` (core.face_geometry.COEFFICIENTS; missing ones neutral) as a
    size x size x 4 RGBA uint8 image with a transparent background."""
    from PIL import Image, ImageDraw

    size = max(1, int(size))
    big = size * SUPERSAMPLE
    roll = math.radians(float(coeffs.get("roll", 0.0)))
    c, s = math.cos(roll), math.sin(roll)

    def px(p):  # face units (unturned) -> supersampled pixels, turned clockwise on screen by the roll
        return (big / 2 + big * (p[0] * c - p[1] * s), big / 2 + big * (p[0] * s + p[1] * c))

    im = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    d = ImageDraw.Draw(im)
    r, o = RADIUS * big, 0.012 * big
    d.ellipse([big / 2 - r, big / 2 - r, big / 2 + r, big / 2 + r], fill=OUTLINE)
    d.ellipse([big / 2 - r + o, big / 2 - r + o, big / 2 + r - o, big / 2 + r - o], fill=FACE)
    for shape in shapes(coeffs):
        if shape[0] == "ellipse":
            _, ex, ey, rx, ry = shape
            t = np.linspace(0, 2 * np.pi, 64, endpoint=False)
            d.polygon([px((ex + rx * math.cos(a), ey + ry * math.sin(a))) for a in t], fill=FEATURE)
        elif shape[0] == "stroke":
            _, points, width = shape
            pts = [px(p) for p in points]
            wpx = width * big
            d.line(pts, fill=FEATURE, width=max(1, int(round(wpx))), joint="curve")
            for x, y in (pts[0], pts[-1]):  # round caps
                d.ellipse([x - wpx / 2, y - wpx / 2, x + wpx / 2, y + wpx / 2], fill=FEATURE)
        else:
            d.polygon([px(p) for p in shape[1]], fill=FEATURE)
    return np.asarray(im.resize((size, size), Image.BOX))


def live_emoji_box(landmarks) -> tuple[int, int, int, int]:
    """The square (x0, y0, x1, y1), whole pixels, that the live emoji covers for a mesh: centred on the mesh's
    extent along its own axes, its disc (0.92 of the side) 1.15x the extent's larger side."""
    from mobile_demo.face_mesh import roi_from_mesh

    roi = roi_from_mesh(landmarks, scale=1.15 / (2 * RADIUS))
    x0, y0 = int(round(roi.cx - roi.side / 2)), int(round(roi.cy - roi.side / 2))
    n = max(1, int(round(roi.side)))
    return x0, y0, x0 + n, y0 + n
