"""Face geometry: what a face does, from its 468-point mesh (MediaPipe's face_landmark.tflite), written once.

The page's `mobile_demo/static/js/face_geometry.js` is a line-by-line twin of this module: the same float64
operations in the same order (parity-tested in tests/test_browser_mesh.py, equal within 1e-9).

Landmarks are MediaPipe's canonical indices, in frame pixels (x right, y down, z depth in the same scale,
smaller = nearer the camera). "Left" and "right" are the subject's: the subject's right eye (33 outer corner,
133 inner; lids 159 / 145) is on the image's left in an unmirrored picture, the left eye 263 / 362, lids
386 / 374. Lips: 13 / 14 inner middle, 0 / 17 outer middle, 61 / 291 corners (right / left). Brows: 105 / 334
upper middle, 63 / 293 upper outer, 107 / 336 upper inner. Forehead 10, nose base 2.

1. `measure(landmarks)`: the face's own 3D frame (x: from the right eye's centre to the left eye's, each the
   middle of its two corners; y: the line from the forehead (10) to the nose base (2), made square to x;
   z = x cross y, away from the camera), origin between the eyes, unit the distance between the eye centres
   (inter-ocular distance, iod). Every point as (u, v) along x and y in iod: the measures below do not change
   when the face moves, grows or turns in the picture (roll), and little when it turns in depth (the mesh's z).
   The raw measures: each eye's openness (the mean of three lid gaps over the eye's width), the inner lips' gap
   (jaw), the mouth's width, each mouth corner's height and distance from the lips' middle, the inner and outer
   brows' heights above the eye line and the gap between the inner brows; the head's yaw, pitch and roll in
   degrees, the frame's turn taken as roll (about the camera's axis) after pitch after yaw (yaw > 0: the nose
   turns toward the image's right; pitch > 0: the nose turns up; roll > 0: the face turns clockwise on screen,
   as emojify's eye_angle).
2. `coefficients(measures, neutral)`: each 0..1 relative to the user's neutral face (a `Calibration`'s median
   of ~2 s of frames; without one DEFAULT_NEUTRAL, measured on neutral faces, with SLACK: changes count only
   beyond how much faces differ at rest), the head angles less the neutral ones.
3. `OneEuroFilter` (Casiez, Roussel, Vogel, CHI 2012) smooths each coefficient over time (`CoefficientFilter`):
   little jitter when the face is still, little lag when it moves.
"""

from __future__ import annotations

import math

# Landmarks (MediaPipe face mesh, 468 points).
RIGHT_EYE_CORNERS = (33, 133)  # outer, inner
LEFT_EYE_CORNERS = (263, 362)
RIGHT_EYE_LIDS = ((160, 144), (159, 145), (158, 153))  # (upper, lower)
LEFT_EYE_LIDS = ((387, 373), (386, 374), (385, 380))
LIP_INNER = (13, 14)  # upper, lower
LIP_OUTER = (0, 17)
MOUTH_CORNERS = (61, 291)  # right, left
BROW_INNER = (107, 336)  # right, left
BROW_OUTER_RIGHT = (105, 63)
BROW_OUTER_LEFT = (334, 293)
FOREHEAD, NOSE_BASE = 10, 2

MEASURES = ("eye_right", "eye_left", "jaw", "mouth_width", "corner_right_v", "corner_left_v", "corner_right_out",
            "corner_left_out", "brow_inner", "brow_outer_right", "brow_outer_left", "brow_gap", "yaw", "pitch", "roll")
COEFFICIENTS = ("eye_open_left", "eye_open_right", "jaw_open", "mouth_width", "smile_left", "smile_right", "pucker",
                "brow_inner_up", "brow_outer_up_left", "brow_outer_up_right", "brow_down", "yaw", "pitch", "roll")
ANGLES = ("yaw", "pitch", "roll")

# The measures of a neutral face: the median over 117 neutral FER-2013 test faces drawn 200-300 px wide into
# 640x480 frames (mobile_demo.page_crops.make_frame), each meshed from its BlazeFace ROI then once from its own
# (tracking); left and right averaged, yaw and roll 0 (the faces' medians: 1.2 and -0.2 degrees). On 40 happy
# faces against it: smile 1.0 / 1.0, mouth_width 0.96; 39 surprised: jaw_open 0.23, brows up 0.22-0.31;
# 29 angry: brow_down 0.33.
DEFAULT_NEUTRAL = {
    "eye_right": 0.295, "eye_left": 0.295, "jaw": 0.033, "mouth_width": 0.763, "corner_right_v": 1.056,
    "corner_left_v": 1.056, "corner_right_out": 0.383, "corner_left_out": 0.383, "brow_inner": 0.322,
    "brow_outer_right": 0.354, "brow_outer_left": 0.354, "brow_gap": 0.472, "yaw": 0.0, "pitch": 2.5, "roll": 0.0,
}

# How far a measure moves from neutral for its coefficient to go from 0 to 1 (iod, or a ratio of the neutral).
EYE_CLOSED = 0.25  # an eye whose openness is this fraction of its neutral one or less: 0 (closed)
EYE_OPEN = 0.9  # this fraction of the neutral one or more: 1 (open)
JAW_SPAN = 0.45  # the inner lips 0.45 iod (~2.8 cm) further apart than at rest: jaw_open 1
WIDTH_SPAN = 0.5  # mouth_width: 0.5 at the neutral width, 0 at 75 % of it, 1 at 125 %
PUCKER_SPAN = 0.25  # the mouth 25 % narrower than at rest: pucker 1
JAW_IN_CORNERS = 0.3  # an open jaw lowers the mouth corners by about this fraction of the lips' gap
SMILE_SPAN = 0.12  # a corner 0.12 iod higher (or twice that further out) than at rest: smile 1
BROW_SPAN = 0.1  # a brow 0.1 iod (~6 mm) higher than at rest: up 1
BROW_DOWN_SPAN = 0.08  # inner brows 0.08 iod lower (or twice that closer together): brow_down 1
# Without a calibration, how far faces differ at rest (about one standard deviation over the neutral faces above):
# each change from DEFAULT_NEUTRAL counts only beyond it, so that an uncalibrated face is not read as frowning
# or puckering because its brows sit low or its mouth is small. A calibration's neutral has no slack.
SLACK = {"eye": 0.2, "jaw": 0.035, "width": 0.1, "smile": 0.08, "brow": 0.05}
NO_SLACK = {"eye": 0.0, "jaw": 0.0, "width": 0.0, "smile": 0.0, "brow": 0.0}


DEG = 180 / math.pi


def clamp01(x: float) -> float:
    return min(1.0, max(0.0, x))


def soften(x: float, slack: float) -> float:
    """x moved toward 0 by `slack` (0 within it)."""
    return max(0.0, x - slack) if x > 0 else min(0.0, x + slack)


def _point(lm, k: int) -> tuple[float, float, float]:
    p = lm[k]
    return float(p[0]), float(p[1]), float(p[2])


def _mid(a, b) -> tuple[float, float, float]:
    return (a[0] + b[0]) / 2, (a[1] + b[1]) / 2, (a[2] + b[2]) / 2


def _dot(a, b) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _norm(a) -> float:
    return math.sqrt(a[0] * a[0] + a[1] * a[1] + a[2] * a[2])


class FaceFrame:
    """The face's own frame (see the module's docstring): (u, v) of any landmark in iod."""

    def __init__(self, lm):
        self.lm = lm
        er = _mid(_point(lm, RIGHT_EYE_CORNERS[0]), _point(lm, RIGHT_EYE_CORNERS[1]))
        el = _mid(_point(lm, LEFT_EYE_CORNERS[0]), _point(lm, LEFT_EYE_CORNERS[1]))
        self.origin = _mid(er, el)
        x = (el[0] - er[0], el[1] - er[1], el[2] - er[2])
        self.iod = _norm(x)
        if not self.iod > 0:
            raise ValueError("the eyes are in one place: not a face mesh")
        ex = (x[0] / self.iod, x[1] / self.iod, x[2] / self.iod)
        top, base = _point(lm, FOREHEAD), _point(lm, NOSE_BASE)
        d = (base[0] - top[0], base[1] - top[1], base[2] - top[2])
        k = _dot(d, ex)
        y = (d[0] - k * ex[0], d[1] - k * ex[1], d[2] - k * ex[2])
        n = _norm(y)
        if not n > 0:
            raise ValueError("the forehead and the nose lie on the eye line: not a face mesh")
        ey = (y[0] / n, y[1] / n, y[2] / n)
        self.ex, self.ey = ex, ey
        self.ez = (ex[1] * ey[2] - ex[2] * ey[1], ex[2] * ey[0] - ex[0] * ey[2], ex[0] * ey[1] - ex[1] * ey[0])

    def u(self, k: int) -> float:
        p = _point(self.lm, k)
        o = self.origin
        return ((p[0] - o[0]) * self.ex[0] + (p[1] - o[1]) * self.ex[1] + (p[2] - o[2]) * self.ex[2]) / self.iod

    def v(self, k: int) -> float:
        p = _point(self.lm, k)
        o = self.origin
        return ((p[0] - o[0]) * self.ey[0] + (p[1] - o[1]) * self.ey[1] + (p[2] - o[2]) * self.ey[2]) / self.iod


def _eye(f: FaceFrame, corners, lids) -> float:
    gap = 0.0
    for upper, lower in lids:
        gap += f.v(lower) - f.v(upper)
    width = abs(f.u(corners[1]) - f.u(corners[0]))
    return gap / 3 / width if width > 0 else 0.0


def measure(landmarks) -> dict[str, float]:
    """The raw measures (MEASURES) of a mesh: 468 (x, y, z) landmarks in frame pixels."""
    f = FaceFrame(landmarks)
    mid = (f.u(LIP_INNER[0]) + f.u(LIP_INNER[1]) + f.u(LIP_OUTER[0]) + f.u(LIP_OUTER[1])) / 4
    # The head's turn as roll (about the camera's axis) after pitch after yaw: the roll from the face's down
    # (ey), then the face's forward (-ez) unturned by it gives the yaw and the pitch.
    ez = f.ez
    roll = math.atan2(-f.ey[0], f.ey[1])
    c, s = math.cos(roll), math.sin(roll)
    zx = ez[0] * c + ez[1] * s
    zy = ez[1] * c - ez[0] * s
    return {
        "eye_right": _eye(f, RIGHT_EYE_CORNERS, RIGHT_EYE_LIDS),
        "eye_left": _eye(f, LEFT_EYE_CORNERS, LEFT_EYE_LIDS),
        "jaw": f.v(LIP_INNER[1]) - f.v(LIP_INNER[0]),
        "mouth_width": f.u(MOUTH_CORNERS[1]) - f.u(MOUTH_CORNERS[0]),
        "corner_right_v": f.v(MOUTH_CORNERS[0]),
        "corner_left_v": f.v(MOUTH_CORNERS[1]),
        "corner_right_out": mid - f.u(MOUTH_CORNERS[0]),
        "corner_left_out": f.u(MOUTH_CORNERS[1]) - mid,
        "brow_inner": -(f.v(BROW_INNER[0]) + f.v(BROW_INNER[1])) / 2,
        "brow_outer_right": -(f.v(BROW_OUTER_RIGHT[0]) + f.v(BROW_OUTER_RIGHT[1])) / 2,
        "brow_outer_left": -(f.v(BROW_OUTER_LEFT[0]) + f.v(BROW_OUTER_LEFT[1])) / 2,
        "brow_gap": f.u(BROW_INNER[1]) - f.u(BROW_INNER[0]),
        "yaw": math.atan2(-zx, math.sqrt(zy * zy + ez[2] * ez[2])) * DEG,
        "pitch": math.atan2(zy, ez[2]) * DEG,
        "roll": roll * DEG,
    }


def _eye_open(r: float, neutral: float, slack: float) -> float:
    return clamp01((r / neutral + slack - EYE_CLOSED) / (EYE_OPEN - EYE_CLOSED)) if neutral > 0 else 1.0


def _smile(v: float, out: float, jaw: float, n_v: float, n_out: float, n_jaw: float, slack: float) -> float:
    lift = n_v - (v - JAW_IN_CORNERS * (jaw - n_jaw))
    return clamp01(soften(lift + 0.5 * (out - n_out), slack) / SMILE_SPAN)


def coefficients(m: dict, neutral: dict | None = None) -> dict[str, float]:
    """COEFFICIENTS of measures `m`, each 0..1 (the head angles in degrees) relative to `neutral` (a
    Calibration's), or without one to DEFAULT_NEUTRAL with SLACK."""
    n = neutral or DEFAULT_NEUTRAL
    sl = NO_SLACK if neutral else SLACK
    width = 1 + soften(m["mouth_width"] / n["mouth_width"] - 1, sl["width"]) if n["mouth_width"] > 0 else 1.0
    down = soften((n["brow_inner"] - m["brow_inner"]) + 0.5 * (n["brow_gap"] - m["brow_gap"]), sl["brow"])
    return {
        "eye_open_left": _eye_open(m["eye_left"], n["eye_left"], sl["eye"]),
        "eye_open_right": _eye_open(m["eye_right"], n["eye_right"], sl["eye"]),
        "jaw_open": clamp01(soften(m["jaw"] - n["jaw"], sl["jaw"]) / JAW_SPAN),
        "mouth_width": clamp01(0.5 + (width - 1) / WIDTH_SPAN),
        "smile_left": _smile(m["corner_left_v"], m["corner_left_out"], m["jaw"], n["corner_left_v"], n["corner_left_out"], n["jaw"],
                             sl["smile"]),
        "smile_right": _smile(m["corner_right_v"], m["corner_right_out"], m["jaw"], n["corner_right_v"], n["corner_right_out"],
                              n["jaw"], sl["smile"]),
        "pucker": clamp01((1 - width) / PUCKER_SPAN),
        "brow_inner_up": clamp01(soften(m["brow_inner"] - n["brow_inner"], sl["brow"]) / BROW_SPAN),
        "brow_outer_up_left": clamp01(soften(m["brow_outer_left"] - n["brow_outer_left"], sl["brow"]) / BROW_SPAN),
        "brow_outer_up_right": clamp01(soften(m["brow_outer_right"] - n["brow_outer_right"], sl["brow"]) / BROW_SPAN),
        "brow_down": clamp01(down / BROW_DOWN_SPAN),
        "yaw": m["yaw"] - n["yaw"],
        "pitch": m["pitch"] - n["pitch"],
        "roll": m["roll"] - n["roll"],
    }


def face_coefficients(landmarks, neutral: dict | None = None) -> dict[str, float]:
    """coefficients(measure(landmarks), neutral)."""
    return coefficients(measure(landmarks), neutral)


def median(values) -> float:
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


class Calibration:
    """The user's neutral face: the median of each measure over the frames of the first `seconds` (a blink or
    a word during them does not move it); ready once that long has passed with at least `min_frames`."""

    def __init__(self, seconds: float = 2.0, min_frames: int = 10):
        self.seconds, self.min_frames = seconds, min_frames
        self.samples: list[dict] = []
        self.t0 = self.t = None

    def add(self, measures: dict, t: float) -> bool:
        """Folds in one frame's measures at time `t` (seconds); True once the calibration is ready."""
        if self.t0 is None:
            self.t0 = t
        self.t = t
        self.samples.append({k: measures[k] for k in MEASURES})
        return self.ready

    @property
    def ready(self) -> bool:
        return len(self.samples) >= self.min_frames and self.t - self.t0 >= self.seconds

    def neutral(self) -> dict[str, float]:
        if not self.samples:
            raise ValueError("no frames: nothing to calibrate on")
        return {k: median([s[k] for s in self.samples]) for k in MEASURES}


class OneEuroFilter:
    """The 1-euro filter (Casiez et al. 2012): a low-pass filter whose cutoff frequency grows with the signal's
    speed, min_cutoff + beta * |speed| (Hz), the speed itself low-passed at d_cutoff."""

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.0, d_cutoff: float = 1.0):
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self.reset()

    def reset(self) -> None:
        self.x = self.dx = self.t = None

    @staticmethod
    def alpha(cutoff: float, dt: float) -> float:
        tau = 1 / (2 * math.pi * cutoff)
        return 1 / (1 + tau / dt)

    def __call__(self, x: float, t: float) -> float:
        """The filtered value of sample `x` taken at time `t` (seconds)."""
        if self.t is None:
            self.x, self.dx, self.t = x, 0.0, t
            return x
        dt = t - self.t
        if not dt > 0:  # the same frame again (or time went back): keep the last value
            return self.x
        dx = (x - self.x) / dt
        edx = self.dx + self.alpha(self.d_cutoff, dt) * (dx - self.dx)
        cutoff = self.min_cutoff + self.beta * abs(edx)
        self.x = self.x + self.alpha(cutoff, dt) * (x - self.x)
        self.dx, self.t = edx, t
        return self.x


# Per coefficient (min_cutoff Hz, beta): the 0..1 coefficients move ~5 units/s in a blink (cutoff ~ 20 Hz then),
# the head ~100 degrees/s.
FILTER_COEFFICIENTS = (1.5, 4.0)
FILTER_ANGLES = (1.0, 0.1)
D_CUTOFF = 1.0


class CoefficientFilter:
    """A OneEuroFilter per coefficient (FILTER_ANGLES for the head's angles, FILTER_COEFFICIENTS for the rest)."""

    def __init__(self, coefficients_params=FILTER_COEFFICIENTS, angles_params=FILTER_ANGLES, d_cutoff: float = D_CUTOFF):
        self.filters = {k: OneEuroFilter(*(angles_params if k in ANGLES else coefficients_params), d_cutoff) for k in COEFFICIENTS}

    def reset(self) -> None:
        for f in self.filters.values():
            f.reset()

    def __call__(self, coeffs: dict, t: float) -> dict[str, float]:
        return {k: self.filters[k](coeffs[k], t) for k in COEFFICIENTS}
