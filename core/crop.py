"""The crop contract: how a face detector's box becomes an expression model's input, written once.

A contract is stored with the model (the `"crop"` key of its entry in `mobile_demo/models/manifest.json`,
written by `python -m export tflite` for expression models) and read by `emojify` (this module) and by the
keyboard page (`mobile_demo/static/js/crop.js`, a line-by-line twin of the code below). Both compute the
same float64 operations in the same order, so they give the same pixels.

The steps, for a frame (RGB uint8) and a detector box (x, y, w, h in frame pixels, fractional):

1. square: side = scale * max(w, h); centre = (x + w/2, y + h/2 + shift * max(w, h)) (y grows down,
   so a negative shift moves the crop up). No rounding: the square keeps fractional coordinates.
2. grey, per frame pixel: (cR*R + cG*G + cB*B + 2**(bits-1)) >> bits with c = round(weight * 2**bits):
   ITU-R 601 luma in 14-bit fixed point (integers: the same in every language; OpenCV 4.13's
   cvtColor(RGB2GRAY) differs from it by one level on ~0.3 % of random pixels). A Y'CbCr frame (a camera's
   I420 or NV12, as the page reads it) is already luma: its Y' plane through `luma_table` (limited range
   16-235 stretched to 0-255, full range as it is), with no colour conversion. An RGB frame decoded from it
   by the 601 matrix gives the same grey up to rounding; one decoded by the 709 matrix (HD cameras) a few
   levels more on coloured pixels, so the page reads every frame of a camera as luma, detection frames too.
3. resize the square to size x size ("area"): each output pixel is the mean of the frame pixels under it,
   each weighted by the exact area it covers (a box filter, as OpenCV's INTER_AREA) when the square is
   larger than the output; bilinear between pixel centres when it is smaller. Separable: every row
   first (taps in increasing x), then every column (taps in increasing y), in float64.
4. pixels outside the frame: "replicate" (the nearest edge pixel) or "constant" (`fill`).
5. round half up to uint8.

With roll "eyes" the square turns with the face: its sides follow the line from the right eye to the left
eye (the detector's first two key points; c = dx / r, s = dy / r with r = sqrt(dx*dx + dy*dy), no
trigonometry, so that both languages get the same bits), the shift moves the centre along the face's own
down (-s, c), and the crop is made in two steps:

a. the axis-aligned square around the turned one (side B = side * (|c| + |s|), same centre) is resampled
   by steps 2-4 to M x M grey pixels, M = ceil(2 * size * (|c| + |s|)), float64 (not rounded);
b. each output pixel (row i, column j) is the mean of four bilinear samples of that grid, in the order
   (a, b) = (.25, .25), (.75, .25), (.25, .75), (.75, .75): u = (j + a) / size - 0.5, v = (i + b) / size - 0.5,
   qx = (B / 2 + side * (u * c - v * s)) * (M / B) - 0.5, qy = (B / 2 + side * (u * s + v * c)) * (M / B) - 0.5;
   x0 = floor(qx), tx = qx - x0, x0 and x0 + 1 clamped to 0..M-1 (y the same), and the sample is
   (1 - ty) * ((1 - tx) * g[y0, x0] + tx * g[y0, x1]) + ty * ((1 - tx) * g[y1, x0] + tx * g[y1, x1]);
   the four summed left to right, times 0.25, then rounded as in step 5.

Without key points (a detector that gives none) the square stays upright, by the same two steps.

The model takes that crop as float32 (its manifest "input" says the range).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from core.faces import square_around

BORDERS = ("replicate", "constant")
RESIZES = ("area",)
ROLLS = ("keep", "eyes")  # keep: the square stays upright; eyes: it turns with the line between the eyes


@dataclasses.dataclass(frozen=True)
class CropContract:
    """How a detector box becomes the model's grey size x size input (see the module's docstring)."""

    # Measured with benchmarks/bench_page_crop.py --sweep --limit 1500 (PublicTest faces drawn 110-320 px into
    # 640x480 frames, BlazeFace short-range; benchmarks/results/page_crop_sweep-*.json): the FER square is a
    # median 1.185x the box's side (IQR 1.08-1.31) and its centre 0.096 of the side above the box's (IQR
    # 0.135-0.044; sideways -0.004): BlazeFace's box runs from the brows to the chin, FER's square from the
    # forehead to below the chin. Of the grid (scale 1.1-1.25 x shift -0.12-0), scale 1.15 / shift -0.095
    # gives the crops nearest the FER squares' own (mean |difference| 34.6 grey levels, 40.1 at the worst);
    # the shipped model's accuracy is flat over the grid (61.3-63.4 %, 62.0 % here, noise ~1 point).
    size: int = 48
    scale: float = 1.15
    shift: float = -0.095
    border: str = "replicate"
    fill: int = 128
    grey: tuple = (0.299, 0.587, 0.114)
    grey_bits: int = 14
    resize: str = "area"
    box: str = "blazeface-short-range"
    # Heads tilted 30 deg cost the shipped model 6-7 points with "keep" (benchmarks/bench_framing.py); a
    # contract written before this key existed (no "roll" in its manifest) keeps the square upright.
    roll: str = "eyes"

    def __post_init__(self):
        problems = []
        if not (isinstance(self.size, int) and 1 <= self.size <= 4096):
            problems.append(f"size {self.size!r}")
        if not (isinstance(self.scale, int | float) and 0.1 <= self.scale <= 10):
            problems.append(f"scale {self.scale!r}")
        if not (isinstance(self.shift, int | float) and abs(self.shift) <= 2):
            problems.append(f"shift {self.shift!r}")
        if self.border not in BORDERS:
            problems.append(f"border {self.border!r} (known: {', '.join(BORDERS)})")
        if not (isinstance(self.fill, int) and 0 <= self.fill <= 255):
            problems.append(f"fill {self.fill!r}")
        if not (len(self.grey) == 3 and all(isinstance(v, int | float) and v >= 0 for v in self.grey)
                and abs(sum(self.grey) - 1) < 1e-3):
            problems.append(f"grey weights {self.grey!r} (three, summing to 1)")
        if not (isinstance(self.grey_bits, int) and 8 <= self.grey_bits <= 20):
            problems.append(f"grey_bits {self.grey_bits!r}")
        if self.resize not in RESIZES:
            problems.append(f"resize {self.resize!r} (known: {', '.join(RESIZES)})")
        if self.roll not in ROLLS:
            problems.append(f"roll {self.roll!r} (known: {', '.join(ROLLS)})")
        if problems:
            raise ValueError("bad crop contract: " + "; ".join(problems))

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["grey"] = list(self.grey)
        return d

    @classmethod
    def from_dict(cls, d: dict | None, **defaults) -> CropContract:
        """A contract from a manifest's "crop" object; missing keys take `defaults`, then the class's."""
        d = dict(d or {})
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names - {"note"})
        if unknown:
            raise ValueError(f"bad crop contract: unknown keys {unknown}")
        older = {"roll": "keep"} if d else {}  # a manifest's contract without "roll" was written before it existed
        kw = {**older, **defaults, **{k: v for k, v in d.items() if k in names}}
        if "grey" in kw:
            kw["grey"] = tuple(float(v) for v in kw["grey"])
        return cls(**kw)

    def grey_coefficients(self) -> tuple[int, int, int]:
        return tuple(int(math.floor(w * (1 << self.grey_bits) + 0.5)) for w in self.grey)

    def square(self, x: float, y: float, w: float, h: float) -> tuple[float, float, float]:
        """(left, top, side) of the crop square for a detector box, in frame pixels (fractional)."""
        cx, cy, side = square_around(x, y, w, h, self.scale, self.shift)
        return cx - side / 2, cy - side / 2, side

    def turned_square(self, x: float, y: float, w: float, h: float, keypoints=None) -> tuple[float, float, float, float, float]:
        """(centre x, centre y, side, c, s) of the crop square turned with the eyes (roll "eyes"): c, s the
        cosine and sine of the eye line's angle (1, 0 without key points), the shift along the face's down."""
        c, s = 1.0, 0.0
        if keypoints is not None:
            dx = float(keypoints[1][0]) - float(keypoints[0][0])
            dy = float(keypoints[1][1]) - float(keypoints[0][1])
            r = math.sqrt(dx * dx + dy * dy)
            if r > 0:
                c, s = dx / r, dy / r
        m = max(float(w), float(h))
        d = self.shift * m
        return float(x) + float(w) / 2 - d * s, float(y) + float(h) / 2 + d * c, m * self.scale, c, s

    def turned_grid(self, side: float, c: float, s: float) -> tuple[float, int]:
        """(B, M): the side of the upright square around the turned one, and the grid it is resampled to."""
        spread = abs(c) + abs(s)
        return side * spread, int(math.ceil(2 * self.size * spread))


DEFAULT = CropContract()


def to_grey(image: np.ndarray, contract: CropContract = DEFAULT) -> np.ndarray:
    """HxW uint8 grey of an HxW (already grey), HxWx1, HxWx3 (RGB) or HxWx4 (RGBA) uint8 image."""
    image = np.asarray(image)
    if image.ndim == 2:
        return image.astype(np.uint8, copy=False)
    if image.shape[2] == 1:
        return image[:, :, 0].astype(np.uint8, copy=False)
    cr, cg, cb = contract.grey_coefficients()
    rgb = image[:, :, :3].astype(np.int32)  # 255 * 2**20 still fits
    g = (cr * rgb[:, :, 0] + cg * rgb[:, :, 1] + cb * rgb[:, :, 2] + (1 << (contract.grey_bits - 1))) >> contract.grey_bits
    return np.clip(g, 0, 255).astype(np.uint8)


def luma_table(full_range: bool = False) -> np.ndarray:
    """Y' (0..255) -> grey uint8 for a Y'CbCr frame's luma plane: full range as it is; limited ("video") range
    stretched, (y - 16) * 255 / 219 rounded half up in integers and clipped (crop.js lumaTable is its twin)."""
    y = np.arange(256, dtype=np.int64)
    if full_range:
        return y.astype(np.uint8)
    return np.clip(((y - 16) * 510 + 219) // 438, 0, 255).astype(np.uint8)


def axis_taps(start: float, length: float, n_out: int, n_src: int, border: str = "replicate"):
    """Resampling taps along one axis: (index (n_out, T) int64, weight (n_out, T) float64).

    Output pixel j covers [start + j*f, start + (j+1)*f) of the source, f = length / n_out. With f >= 1
    each source pixel k weighs the length of [k, k+1) it covers, over f; with f < 1 the two pixels
    around the output pixel's centre start + (j + 0.5)*f - 0.5 are interpolated linearly. Indices past
    the source are clamped ("replicate") or -1 ("constant": the fill value)."""
    start, length = float(start), float(length)
    f = length / n_out
    j = np.arange(n_out, dtype=np.float64)
    if f >= 1:
        a = start + j * f
        b = start + (j + 1) * f
        taps = int(math.ceil(f)) + 1
        k = np.floor(a)[:, None] + np.arange(taps, dtype=np.float64)
        w = np.maximum(np.minimum(b[:, None], k + 1) - np.maximum(a[:, None], k), 0.0) / f
    else:
        c = start + (j + 0.5) * f - 0.5
        k0 = np.floor(c)
        t = c - k0
        k = k0[:, None] + np.arange(2, dtype=np.float64)
        w = np.stack([1 - t, t], axis=1)
    idx = k.astype(np.int64)
    if border == "replicate":
        idx = np.clip(idx, 0, n_src - 1)
    else:
        idx = np.where((idx >= 0) & (idx < n_src), idx, -1)
    return idx, w


def resample(image: np.ndarray, left: float, top: float, width: float, height: float, out_w: int, out_h: int,
             border: str = "replicate", fill: float = 0.0, convert=None) -> np.ndarray:
    """The rectangle (left, top, width, height) of an HxW or HxWxC image resampled to out_h x out_w
    (x out C), float64, by `axis_taps` along x then along y (see the module's docstring). `convert`
    (e.g. to_grey) is applied to the source pixels the taps read, and only to those."""
    img = np.asarray(image)
    h, w = img.shape[:2]
    ix, wx = axis_taps(left, width, out_w, w, border)
    iy, wy = axis_taps(top, height, out_h, h, border)
    rows, cols = np.unique(iy[iy >= 0]), np.unique(ix[ix >= 0])
    if not len(cols):  # "constant" and the rectangle wholly left or right of the image: every tap is `fill`
        cols = np.zeros(1, np.int64)
    if len(rows) and len(cols) and rows[-1] - rows[0] + 1 == len(rows) and cols[-1] - cols[0] + 1 == len(cols):
        src = img[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]  # the usual case: one block, no copy
    else:
        src = img[rows[:, None], cols[None, :]]
    if convert is not None:
        src = convert(src)
    squeeze = src.ndim == 2
    src = (src[:, :, None] if squeeze else src).astype(np.float64)  # (rows, cols, C)
    cpos = np.searchsorted(cols, np.maximum(ix, 0))
    horiz = np.zeros((len(rows) + 1, out_w, src.shape[2]))  # the last row: a row of `fill` outside the frame
    for t in range(ix.shape[1]):
        vals = src[:, cpos[:, t]]
        if border != "replicate":
            vals = np.where((ix[:, t] >= 0)[None, :, None], vals, float(fill))
        horiz[:-1] = horiz[:-1] + wx[None, :, t, None] * vals
        horiz[-1] = horiz[-1] + wx[:, t, None] * float(fill)
    pos = np.where(iy >= 0, np.searchsorted(rows, np.maximum(iy, 0)), len(rows))
    out = np.zeros((out_h, out_w, src.shape[2]))
    for t in range(iy.shape[1]):
        out = out + wy[:, t, None, None] * horiz[pos[:, t]]
    return out[:, :, 0] if squeeze else out


def round_to_uint8(x: np.ndarray) -> np.ndarray:
    """Crop values (0..255, float64) rounded half up and clipped to uint8; core.images.to_uint8 instead scales
    a network's output range (tanh -1..1 or sigmoid 0..1) to 0..255."""
    return np.clip(np.floor(np.asarray(x, np.float64) + 0.5), 0, 255).astype(np.uint8)


def crop_square(frame: np.ndarray, left: float, top: float, side: float, contract: CropContract = DEFAULT) -> np.ndarray:
    """The square (left, top, side) of a frame as the contract's size x size grey uint8 crop."""
    out = resample(frame, left, top, side, side, contract.size, contract.size, contract.border, contract.fill,
                   convert=lambda px: to_grey(px, contract))
    return round_to_uint8(out)


SUBSAMPLES = ((0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75))


def crop_turned(frame: np.ndarray, cx: float, cy: float, side: float, c: float, s: float,
                contract: CropContract = DEFAULT) -> np.ndarray:
    """The square of `side` centred on (cx, cy), its sides along (c, s) and (-s, c), as the contract's
    size x size grey uint8 crop (steps a and b of the module's docstring)."""
    n = contract.size
    big, m = contract.turned_grid(side, c, s)
    grid = resample(frame, cx - big / 2, cy - big / 2, big, big, m, m, contract.border, contract.fill,
                    convert=lambda px: to_grey(px, contract))
    k = m / big
    j = np.arange(n, dtype=np.float64)[None, :]
    i = np.arange(n, dtype=np.float64)[:, None]
    total = np.zeros((n, n))
    for a, b in SUBSAMPLES:
        u = (j + a) / n - 0.5
        v = (i + b) / n - 0.5
        qx = (big / 2 + side * (u * c - v * s)) * k - 0.5
        qy = (big / 2 + side * (u * s + v * c)) * k - 0.5
        x0, y0 = np.floor(qx), np.floor(qy)
        tx, ty = qx - x0, qy - y0
        xa, xb = np.clip(x0, 0, m - 1).astype(np.int64), np.clip(x0 + 1, 0, m - 1).astype(np.int64)
        ya, yb = np.clip(y0, 0, m - 1).astype(np.int64), np.clip(y0 + 1, 0, m - 1).astype(np.int64)
        sample = (1 - ty) * ((1 - tx) * grid[ya, xa] + tx * grid[ya, xb]) + ty * ((1 - tx) * grid[yb, xa] + tx * grid[yb, xb])
        total = total + sample
    return round_to_uint8(total * 0.25)


def crop(frame: np.ndarray, box, contract: CropContract = DEFAULT, keypoints=None) -> np.ndarray:
    """The model's grey uint8 size x size input for a detector box (x, y, w, h) of an RGB(A) or grey frame;
    with roll "eyes" the square turns with the eye line of `keypoints` (the detector's, right eye first)."""
    x, y, w, h = (float(v) for v in box)
    if contract.roll == "eyes":
        return crop_turned(frame, *contract.turned_square(x, y, w, h, keypoints), contract)
    return crop_square(frame, *contract.square(x, y, w, h), contract)
