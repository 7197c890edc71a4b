"""Face detection for the emojify app: BlazeFace short-range through ai_edge_litert, Haar as a fallback.

BlazeFace (`face_detection_short_range.tflite`, taken out of the mediapipe 0.10.21 wheel by
`python -m mobile_demo.setup_assets`) takes a 1x128x128x3 float image in [-1, 1] and gives, for each of
896 SSD anchors, 16 regressors (box centre offset, box size, 6 key points) and one score logit. The
anchors and the decoding below are MediaPipe's `face_detection_short_range` graph settings
(SsdAnchorsCalculator, TensorsToDetectionsCalculator, NonMaxSuppressionCalculator); the web page
(static JS) implements the same steps.

Without the BlazeFace file, OpenCV's Haar cascade (`haarcascade_frontalface_default.xml`, shipped
in opencv-python-headless 4.13) is used instead.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
BLAZEFACE_PATH = os.path.join(HERE, "static", "vendor", "face_detection_short_range.tflite")

# MediaPipe face_detection_short_range.pbtxt: SsdAnchorsCalculatorOptions / TensorsToDetectionsCalculatorOptions.
INPUT_SIZE = 128
STRIDES = (8, 16, 16, 16)
ANCHOR_OFFSET = 0.5
NUM_BOXES = 896
NUM_COORDS = 16
NUM_KEYPOINTS = 6
BOX_SCALE = 128.0  # x_scale = y_scale = w_scale = h_scale
SCORE_CLIP = 100.0
MIN_SCORE = 0.5
NMS_IOU = 0.3
# A whole-frame face under this score does not spare a still image the tiled pass: in cluttered rooms the
# whole-frame pass finds a large false face at 0.5-0.6 beside a small real one that only the tiles find
# (8 of 200 frames with a 120-px face, benchmarks/bench_framing.py's frames).
SURE_SCORE = 0.65
KEYPOINT_NAMES = ("right_eye", "left_eye", "nose_tip", "mouth_center", "right_ear_tragion", "left_ear_tragion")


@dataclasses.dataclass
class Face:
    """A face in image pixels: box (x, y, w, h) (may extend past the image edges), score, key points (6x2 or None)."""

    x: float
    y: float
    w: float
    h: float
    score: float
    keypoints: np.ndarray | None = None

    @property
    def box(self) -> tuple[int, int, int, int]:
        return int(round(self.x)), int(round(self.y)), int(round(self.w)), int(round(self.h))


def ssd_anchors(input_size: int = INPUT_SIZE, strides=STRIDES, offset: float = ANCHOR_OFFSET) -> np.ndarray:
    """MediaPipe SSD anchors (fixed_anchor_size, aspect ratio 1, interpolated scale 1) as (N, 2) centres in [0, 1].

    Consecutive layers with the same stride share one grid; each layer adds 2 anchors per cell
    (aspect ratio 1.0 plus the interpolated scale), so strides (8, 16, 16, 16) give 16x16x2 + 8x8x6 = 896.
    With fixed_anchor_size every anchor's width and height is 1.
    """
    centres = []
    layer = 0
    while layer < len(strides):
        stride = strides[layer]
        per_cell = 0
        while layer < len(strides) and strides[layer] == stride:
            per_cell += 2
            layer += 1
        n = int(np.ceil(input_size / stride))
        ys, xs = np.meshgrid((np.arange(n) + offset) / n, (np.arange(n) + offset) / n, indexing="ij")
        grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(grid, per_cell, axis=0))
    return np.concatenate(centres).astype(np.float32)


ANCHORS = ssd_anchors()


def decode_boxes(raw: np.ndarray, anchors: np.ndarray = ANCHORS, scale: float = BOX_SCALE) -> np.ndarray:
    """Regressors (N, 16) -> (N, 16) normalised [xmin, ymin, xmax, ymax, kx0, ky0, ... kx5, ky5] in [0, 1] units."""
    raw = np.asarray(raw, np.float32).reshape(-1, NUM_COORDS)
    ax, ay = anchors[:, 0], anchors[:, 1]
    cx = raw[:, 0] / scale + ax
    cy = raw[:, 1] / scale + ay
    w = raw[:, 2] / scale
    h = raw[:, 3] / scale
    out = np.empty_like(raw)
    out[:, 0], out[:, 1] = cx - w / 2, cy - h / 2
    out[:, 2], out[:, 3] = cx + w / 2, cy + h / 2
    kp = raw[:, 4:].reshape(-1, NUM_KEYPOINTS, 2) / scale + anchors[:, None, :]
    out[:, 4:] = kp.reshape(-1, NUM_KEYPOINTS * 2)
    return out


def sigmoid_scores(logits: np.ndarray, clip: float = SCORE_CLIP) -> np.ndarray:
    x = np.clip(np.asarray(logits, np.float64).reshape(-1), -clip, clip)
    return (1.0 / (1.0 + np.exp(-x))).astype(np.float32)


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one [xmin, ymin, xmax, ymax] box with each row of `boxes`."""
    ix = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    iy = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = ix * iy
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def weighted_nms(dets: np.ndarray, scores: np.ndarray, iou_threshold: float = NMS_IOU):
    """MediaPipe's WEIGHTED non-max suppression: each kept detection is the score-weighted mean
    of the candidates overlapping it by more than `iou_threshold`; its score is the best one's."""
    order = np.argsort(-scores)
    dets, scores = dets[order], scores[order]
    remaining = np.arange(len(scores))
    kept = []
    while remaining.size:
        first = remaining[0]
        overlap = iou(dets[first, :4], dets[remaining, :4])
        members = remaining[overlap > iou_threshold]
        if members.size == 0:  # degenerate (zero-area) box: keep it on its own
            members = remaining[:1]
        w = scores[members][:, None]
        kept.append((np.sum(dets[members] * w, axis=0) / np.sum(w), float(scores[first])))
        remaining = np.setdiff1d(remaining, members, assume_unique=True)
        remaining = remaining[np.argsort(-scores[remaining], kind="stable")]
    return kept


def letterbox(image: np.ndarray, size: int = INPUT_SIZE):
    """RGB uint8 HxWx3 -> (size x size x 3 float32 in [-1, 1], scale, pad_x, pad_y) keeping the aspect ratio.

    A pixel (x, y) of the input lands at (x * scale + pad_x, y * scale + pad_y) in the square; the
    border is 0 (mid grey after scaling). The image is shrunk to round(w * scale) x round(h * scale)
    (halves up) with pixel-area weights (bilinear to enlarge) and no rounding to uint8: OpenCV's
    INTER_AREA (INTER_LINEAR) on float32, which is core.crop.resample, the page's blazeface.js resample,
    up to float32 rounding (1e-5 of a grey level in the tensor).
    """
    import cv2

    h, w = image.shape[:2]
    scale = size / max(h, w)
    nw, nh = max(1, int(np.floor(w * scale + 0.5))), max(1, int(np.floor(h * scale + 0.5)))
    pad_x, pad_y = (size - nw) // 2, (size - nh) // 2
    out = np.zeros((size, size, 3), np.float32)
    region = cv2.resize(np.ascontiguousarray(image[:, :, :3], np.float32), (nw, nh),
                        interpolation=cv2.INTER_AREA if scale <= 1 else cv2.INTER_LINEAR)  # core.crop: bilinear to enlarge
    out[pad_y:pad_y + nh, pad_x:pad_x + nw] = np.clip(region / 127.5 - 1.0, -1.0, 1.0)  # float32 sums overshoot a little
    return out, scale, pad_x, pad_y


def to_rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    if image.shape[2] == 4:
        return image[:, :, :3]
    return image


class BlazeFaceDetector:
    """BlazeFace short-range (faces up to ~2 m from a phone camera) on RGB uint8 images of any shape."""

    name = "blazeface"
    # The crop around this box is the expression model's contract (core.crop, the manifest's "crop"),
    # whose scale and shift are measured for BlazeFace boxes: no override here.
    crop_geometry = None
    # The emoji that replaces a face covers this square around the box (scale, shift), hair included.
    emoji_geometry = (1.38, -0.085)

    def __init__(self, path: str = BLAZEFACE_PATH, min_score: float = MIN_SCORE, iou_threshold: float = NMS_IOU,
                 num_threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter

        from core.cli import UserError

        if not os.path.isfile(path):
            raise UserError(f"BlazeFace model not found: {path} (run `python -m mobile_demo.setup_assets`)")
        try:
            self.interp = Interpreter(model_path=path, num_threads=num_threads)
            self.interp.allocate_tensors()
        except Exception as e:  # noqa: BLE001 - any load failure means a bad file
            raise UserError(f"not a TFLite model file: {path} ({str(e).splitlines()[0][:80]})") from None
        inp = self.interp.get_input_details()
        outs = {tuple(d["shape"]): d["index"] for d in self.interp.get_output_details()}
        if len(inp) != 1 or tuple(inp[0]["shape"]) != (1, INPUT_SIZE, INPUT_SIZE, 3) or \
                (1, NUM_BOXES, NUM_COORDS) not in outs or (1, NUM_BOXES, 1) not in outs:
            raise UserError(f"{path} is not BlazeFace short-range (input {[tuple(d['shape']) for d in inp]})")
        self.input_index = inp[0]["index"]
        self.reg_index, self.cls_index = outs[(1, NUM_BOXES, NUM_COORDS)], outs[(1, NUM_BOXES, 1)]
        self.min_score, self.iou_threshold = min_score, iou_threshold

    def raw(self, tensor: np.ndarray):
        """Runs the model on one 128x128x3 [-1, 1] tensor: (regressors (896, 16), logits (896,))."""
        self.interp.set_tensor(self.input_index, tensor[None].astype(np.float32))
        self.interp.invoke()
        return self.interp.get_tensor(self.reg_index)[0], self.interp.get_tensor(self.cls_index)[0, :, 0]

    def detect(self, image: np.ndarray, tiles: bool = True) -> list[Face]:
        """Faces in an image, best first. With `tiles`, an image where the whole-frame pass finds none is
        searched again tile by tile (`tiles_of`): a face 120 px wide in a 640x480 frame is ~24 px in the
        128 px input, under what BlazeFace short-range finds; in a 320 px tile it is 48 px. So is an image
        whose faces all score under SURE_SCORE; the passes' faces are merged, best first."""
        image = to_rgb(image)
        faces = self.detect_in(image)
        if not tiles or any(f.score >= SURE_SCORE for f in faces):
            return faces
        for x, y, w, h in tiles_of(image.shape[1], image.shape[0]):
            faces += [dataclasses.replace(f, x=f.x + x, y=f.y + y, keypoints=f.keypoints + [x, y])
                      for f in self.detect_in(image[y:y + h, x:x + w])]
        return merge_faces(faces)

    def detect_in(self, image: np.ndarray) -> list[Face]:
        """Faces in an RGB image, from one pass of the detector over the whole of it."""
        tensor, scale, pad_x, pad_y = letterbox(image)
        reg, logits = self.raw(tensor)
        scores = sigmoid_scores(logits)
        keep = scores >= self.min_score
        if not keep.any():
            return []
        dets = decode_boxes(reg[keep], ANCHORS[keep])
        faces = []
        for det, score in weighted_nms(dets, scores[keep], self.iou_threshold):
            pts = det.reshape(-1, 2) * INPUT_SIZE  # letterbox pixels
            pts = (pts - [pad_x, pad_y]) / scale  # image pixels
            (x0, y0), (x1, y1) = pts[0], pts[1]
            faces.append(Face(float(x0), float(y0), float(x1 - x0), float(y1 - y0), score, pts[2:].astype(np.float32)))
        return sorted(faces, key=lambda f: -f.score)


def tiles_of(width: int, height: int, size: int = INPUT_SIZE) -> list[tuple[int, int, int, int]]:
    """The second pass's tiles (x, y, w, h) of a W x H frame: squares of side 2/3 of the frame's short side
    (320 px in 640x480), overlapping by half a tile, covering the frame; none when tiles would not be
    at least 1.25x closer than the whole frame (small frames), as the page's blazeface.js tiles()."""
    side = int(np.floor(min(width, height) * 2 / 3 + 0.5))
    if side < size or max(width, height) / side < 1.25:
        return []
    out = []
    ny = max(1, int(np.ceil((height - side) / (side / 2))) + 1)
    nx = max(1, int(np.ceil((width - side) / (side / 2))) + 1)
    for j in range(ny):
        y = 0 if ny == 1 else int(np.floor(j * (height - side) / (ny - 1) + 0.5))
        for i in range(nx):
            x = 0 if nx == 1 else int(np.floor(i * (width - side) / (nx - 1) + 0.5))
            out.append((x, y, side, side))
    return out


def merge_faces(faces: list[Face], iou_threshold: float = NMS_IOU) -> list[Face]:
    """Faces found in overlapping tiles: best first, a face dropped where it overlaps a better one."""
    kept: list[Face] = []
    for f in sorted(faces, key=lambda f: -f.score):
        box = np.array([f.x, f.y, f.x + f.w, f.y + f.h])
        if not kept or iou(box, np.array([[k.x, k.y, k.x + k.w, k.y + k.h] for k in kept])).max() <= iou_threshold:
            kept.append(f)
    return kept


# While a face is tracked, the detector runs on every DETECT_EVERY-th frame only (MediaPipe's scheme: the boxes
# come from the previous detection in between, and the detector runs again at once when it finds no face).
# The page's FacePipeline (static/js/suggest.js) keeps the same track, frame for frame.
DETECT_EVERY = 3
TRACK_JUMP = 0.5  # a detection farther than this (in face widths) from the tracked face starts a new track


class FaceTracker:
    """A video's faces frame by frame, as the keyboard page finds them: a detector pass on every
    DETECT_EVERY-th frame while a face is tracked; while none is, the whole frame and (BlazeFace) each of
    its tiles in turn, one pass a frame; with a track, the whole frame, then the tile nearest the tracked
    face where the whole frame lost it. Returns (faces, detected): the face that continues the track first."""

    def __init__(self, detector, detect_every: int = DETECT_EVERY):
        self.detector = detector
        self.detect_every = detect_every
        self.reset()

    def reset(self) -> None:
        self.track = None  # [faces, age]: the last detection and the frames since
        self.scan = 0

    def _near(self, faces: list[Face]) -> Face | None:
        if not faces or not self.track:
            return None
        t = self.track[0][0]

        def d(f):
            return float(np.hypot(f.x + f.w / 2 - t.x - t.w / 2, f.y + f.h / 2 - t.y - t.h / 2))

        best = min(faces, key=d)
        return best if d(best) <= TRACK_JUMP * t.w else None

    def _detect_live(self, rgb: np.ndarray) -> list[Face]:
        if not hasattr(self.detector, "detect_in"):
            return self.detector.detect(rgb)
        h, w = rgb.shape[:2]
        tiles = tiles_of(w, h)

        def in_tile(tile):
            x, y, tw, th = tile
            return [dataclasses.replace(f, x=f.x + x, y=f.y + y, keypoints=f.keypoints + [x, y])
                    for f in self.detector.detect_in(rgb[y:y + th, x:x + tw])]

        if not self.track:
            k = self.scan % (len(tiles) + 1)
            self.scan += 1
            return self.detector.detect_in(rgb) if k == 0 else in_tile(tiles[k - 1])
        faces = self.detector.detect_in(rgb)
        if not tiles or self._near(faces):
            return faces
        t = self.track[0][0]
        cx, cy = t.x + t.w / 2, t.y + t.h / 2
        view = min(tiles, key=lambda v: float(np.hypot(v[0] + v[2] / 2 - cx, v[1] + v[3] / 2 - cy)))
        return in_tile(view)

    def __call__(self, rgb: np.ndarray) -> tuple[list[Face], bool]:
        if self.track and self.track[1] + 1 < self.detect_every:
            self.track[1] += 1
            return self.track[0], False
        faces = self._detect_live(to_rgb(rgb))
        first = self._near(faces) or (faces[0] if faces else None)
        faces = [first] + [f for f in faces if f is not first] if first else []
        self.track = [faces, 0] if faces else None
        return faces, True


class HaarDetector:
    """OpenCV's frontal-face Haar cascade: the fallback when BlazeFace isn't installed."""

    name = "haar"
    # The cascade's box already frames a face about as FER-2013 does: crop the box itself (the
    # contract's scale and shift are for BlazeFace boxes; its grey, resize and border still apply).
    crop_geometry = {"scale": 1.0, "shift": 0.0}
    emoji_geometry = (1.15, 0.0)

    def __init__(self, min_size: int = 24):
        from core.faces import haar_cascade

        haar_cascade()  # a missing cascade is an error now, not at the first frame
        self.min_size = min_size

    def detect(self, image: np.ndarray) -> list[Face]:
        from core.faces import haar_boxes

        return [Face(float(x), float(y), float(w), float(h), 1.0) for x, y, w, h in haar_boxes(to_rgb(image), self.min_size)]


def load_detector(kind: str = "auto", path: str = BLAZEFACE_PATH):
    """`auto`: BlazeFace if its file is there, else Haar; or `blazeface` / `haar`."""
    if kind == "haar" or (kind == "auto" and not os.path.isfile(path)):
        return HaarDetector()
    return BlazeFaceDetector(path)


def emoji_box(face: Face, scale: float = 1.0, shift: float = 0.0) -> tuple[int, int, int, int]:
    """The emoji's square (x0, y0, x1, y1) in whole pixels: core.faces.square_around the face's box
    (side max(w, h) * scale, centre moved down by `shift` x max(w, h)). It may extend past the image."""
    from core.faces import square_around

    cx, cy, side = square_around(face.x, face.y, face.w, face.h, scale, shift)
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    s = max(1, int(round(side)))
    return x0, y0, x0 + s, y0 + s


def crop_face(image: np.ndarray, face: Face, contract=None) -> np.ndarray:
    """The face as the crop contract's size x size grey uint8 crop (core.crop; default: its defaults)."""
    from core.crop import DEFAULT, crop

    return crop(image, (face.x, face.y, face.w, face.h), contract or DEFAULT, face.keypoints)
