"""The face mesh: MediaPipe's face_landmark.tflite (468 landmarks) through ai_edge_litert, and how a face
becomes its input, written once (the page's `static/js/face_mesh.js` is a line-by-line twin of the pure
functions here: the same float64 operations in the same order, parity-tested in tests/test_browser_mesh.py).

The model (taken out of the mediapipe 0.10.21 wheel by `python -m mobile_demo.setup_assets`, Apache-2.0)
takes a 1x192x192x3 float RGB image in [0, 1] (MediaPipe's face_landmark_cpu graph: ImageToTensorCalculator
with output_tensor_float_range 0..1; on 40 FER-2013 test faces drawn into frames, [0, 1] puts the eyes nearer
BlazeFace's and tracks steadier than [-1, 1], though the score alone barely tells them apart: the model is
robust to the range) and gives 468 x (x, y, z) in the input's pixels (z: depth, the same scale as x, smaller =
nearer the camera) and a face-presence logit (MediaPipe: sigmoid, >= MIN_SCORE still a face; ~+16 on a
face, ~-10 on noise or a flat grey).

The region of interest (ROI) is MediaPipe's (face_detection_front_detection_to_roi,
face_landmark_landmarks_to_roi): a square centred on the face, turned with the line of the eyes, 1.5x the
face's size:

- from a BlazeFace face: centred on its box, side 1.5 x max(w, h), turned with the line from the right eye
  to the left eye (its first two key points);
- from the previous frame's mesh (tracking, so that BlazeFace is needed only to find the face again when the
  score drops): turned with the line from landmark 33 (right eye, outer corner) to 263 (left eye, outer
  corner); centred on the landmarks' extent measured along those turned axes, side 1.5 x its larger side.

The turn is c = dx / r, s = dy / r, r = sqrt(dx*dx + dy*dy) (no trigonometry, as core.crop); the ROI's
sides run along (c, s) and (-s, c) (the face's down).

The crop (`crop_input`): output pixel (row i, column j) is one bilinear sample of the frame at
u = (j + 0.5) / 192 - 0.5, v = (i + 0.5) / 192 - 0.5,
qx = cx + side * (u * c - v * s) - 0.5, qy = cy + side * (u * s + v * c) - 0.5 (frame pixel centres at
k + 0.5); x0 = floor(qx), tx = qx - x0, x0 and x0 + 1 clamped to 0..W-1 (y the same), each of R, G, B
(1 - ty) * ((1 - tx) * p[y0, x0] + tx * p[y0, x1]) + ty * ((1 - tx) * p[y1, x0] + tx * p[y1, x1]),
divided by 255, then rounded to float32. One sample a pixel, as MediaPipe's ImageToTensorCalculator
(bilinear, replicated border), so that the page's crop costs ~1 ms.

Back to the frame (`to_frame`): a landmark (x, y, z) of the input lands at u = x / 192 - 0.5,
v = y / 192 - 0.5, X = cx + side * (u * c - v * s), Y = cy + side * (u * s + v * c), Z = z / 192 * side.
"""

from __future__ import annotations

import dataclasses
import math
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
MESH_PATH = os.path.join(HERE, "static", "vendor", "face_landmark.tflite")
INPUT_SIZE = 192
NUM_LANDMARKS = 468
ROI_SCALE = 1.5  # MediaPipe's RectTransformationCalculator scale_x = scale_y for both ROIs
MIN_SCORE = 0.5  # MediaPipe's min_tracking_confidence: under it the face is lost, BlazeFace finds it again
RIGHT_EYE_OUTER, LEFT_EYE_OUTER = 33, 263
# The BlazeFace-like box of a mesh (face_from_mesh), in units of the distance between the eye centres (iod),
# along the face's own axes from the middle of the eyes: the medians over 117 neutral PublicTest faces drawn
# 200-300 px wide into 640x480 frames (BlazeFace's box against the mesh tracked from it; sideways -0.02).
BOX_SIDE_IOD = 2.35
BOX_DOWN_IOD = 0.54


@dataclasses.dataclass(frozen=True)
class Roi:
    """The mesh's input square in frame pixels: centre, side, and the cosine / sine of its turn."""

    cx: float
    cy: float
    side: float
    c: float = 1.0
    s: float = 0.0

    @property
    def angle(self) -> float:
        """The turn in degrees (image y down: positive turns clockwise on screen)."""
        return math.degrees(math.atan2(self.s, self.c))


def turn_of(x0: float, y0: float, x1: float, y1: float) -> tuple[float, float]:
    """(c, s) of the line from (x0, y0) to (x1, y1); (1, 0) for a point."""
    dx = x1 - x0
    dy = y1 - y0
    r = math.sqrt(dx * dx + dy * dy)
    if r > 0:
        return dx / r, dy / r
    return 1.0, 0.0


def roi_from_face(face, scale: float = ROI_SCALE) -> Roi:
    """The ROI of a BlazeFace face (face_detector.Face: box x, y, w, h and key points, right eye first)."""
    c, s = 1.0, 0.0
    if face.keypoints is not None:
        kp = face.keypoints
        c, s = turn_of(float(kp[0][0]), float(kp[0][1]), float(kp[1][0]), float(kp[1][1]))
    x, y, w, h = float(face.x), float(face.y), float(face.w), float(face.h)
    return Roi(x + w / 2, y + h / 2, max(w, h) * scale, c, s)


def roi_from_mesh(landmarks, scale: float = ROI_SCALE) -> Roi:
    """The ROI of the next frame from this frame's mesh (468 x 2 or 3, frame pixels)."""
    lm = np.asarray(landmarks, np.float64)
    c, s = turn_of(float(lm[RIGHT_EYE_OUTER, 0]), float(lm[RIGHT_EYE_OUTER, 1]),
                   float(lm[LEFT_EYE_OUTER, 0]), float(lm[LEFT_EYE_OUTER, 1]))
    x, y = lm[:NUM_LANDMARKS, 0], lm[:NUM_LANDMARKS, 1]
    a = x * c + y * s  # along the eye line
    b = y * c - x * s  # along the face's down
    a_min, a_max, b_min, b_max = float(a.min()), float(a.max()), float(b.min()), float(b.max())
    am = (a_min + a_max) / 2
    bm = (b_min + b_max) / 2
    return Roi(am * c - bm * s, am * s + bm * c, max(a_max - a_min, b_max - b_min) * scale, c, s)


def crop_input(frame: np.ndarray, roi: Roi, size: int = INPUT_SIZE) -> np.ndarray:
    """The ROI of an RGB(A) uint8 frame as the model's size x size x 3 float32 input in [0, 1] (see the module's docstring)."""
    img = np.asarray(frame)
    h, w = img.shape[:2]
    j = np.arange(size, dtype=np.float64)[None, :]
    i = np.arange(size, dtype=np.float64)[:, None]
    u = (j + 0.5) / size - 0.5
    v = (i + 0.5) / size - 0.5
    qx = roi.cx + roi.side * (u * roi.c - v * roi.s) - 0.5
    qy = roi.cy + roi.side * (u * roi.s + v * roi.c) - 0.5
    x0, y0 = np.floor(qx), np.floor(qy)
    tx, ty = (qx - x0)[:, :, None], (qy - y0)[:, :, None]
    xa, xb = np.clip(x0, 0, w - 1).astype(np.intp), np.clip(x0 + 1, 0, w - 1).astype(np.intp)
    ya, yb = np.clip(y0, 0, h - 1).astype(np.intp) * w, np.clip(y0 + 1, 0, h - 1).astype(np.intp) * w
    flat = img[:, :, :3].reshape(-1, 3) if img.ndim == 3 else np.repeat(img.reshape(-1, 1), 3, axis=1)

    def px(k):
        return np.take(flat, k.ravel(), axis=0).reshape(size, size, 3).astype(np.float64)

    # (1 - ty) * ((1 - tx) * p[ya, xa] + tx * p[ya, xb]) + ty * ((1 - tx) * p[yb, xa] + tx * p[yb, xb]), in place
    sx = 1 - tx
    sample = px(ya + xa)
    sample *= sx
    sample += tx * px(ya + xb)
    sample *= 1 - ty
    lower = px(yb + xa)
    lower *= sx
    lower += tx * px(yb + xb)
    lower *= ty
    sample += lower
    return (sample / 255).astype(np.float32)


def to_frame(raw: np.ndarray, roi: Roi, size: int = INPUT_SIZE) -> np.ndarray:
    """The model's landmarks (468 x 3, input pixels) in frame pixels (468 x 3 float64; z in the same scale)."""
    r = np.asarray(raw, np.float64).reshape(-1, 3)
    u = r[:, 0] / size - 0.5
    v = r[:, 1] / size - 0.5
    out = np.empty_like(r)
    out[:, 0] = roi.cx + roi.side * (u * roi.c - v * roi.s)
    out[:, 1] = roi.cy + roi.side * (u * roi.s + v * roi.c)
    out[:, 2] = r[:, 2] / size * roi.side
    return out


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-100.0, min(100.0, float(x)))))


def face_from_mesh(landmarks, score: float = 1.0):
    """A BlazeFace-like face_detector.Face of a mesh (for the expression crop on tracked frames, where no
    detector runs): key points right eye, left eye (eye centres), nose tip, mouth centre, right and left
    ear tragion (234, 454); the box a square of BOX_SIDE_IOD x the eye distance, its centre BOX_DOWN_IOD
    below the middle of the eyes along the face's down."""
    from mobile_demo.face_detector import Face

    lm = np.asarray(landmarks, np.float64)
    rx, ry = (lm[33, 0] + lm[133, 0]) / 2, (lm[33, 1] + lm[133, 1]) / 2
    lx, ly = (lm[263, 0] + lm[362, 0]) / 2, (lm[263, 1] + lm[362, 1]) / 2
    c, s = turn_of(rx, ry, lx, ly)
    iod = math.sqrt((lx - rx) * (lx - rx) + (ly - ry) * (ly - ry))
    side = BOX_SIDE_IOD * iod
    cx = (rx + lx) / 2 - BOX_DOWN_IOD * iod * s
    cy = (ry + ly) / 2 + BOX_DOWN_IOD * iod * c
    kp = np.array([[rx, ry], [lx, ly], lm[1, :2], (lm[13, :2] + lm[14, :2]) / 2, lm[234, :2], lm[454, :2]], np.float32)
    return Face(float(cx - side / 2), float(cy - side / 2), float(side), float(side), float(score), kp)


@dataclasses.dataclass
class Mesh:
    """One face's mesh: landmarks (468 x 3, frame pixels), score (sigmoid of the logit), its ROI, and in a
    video the number of its track (MeshTracker: the same face from frame to frame)."""

    landmarks: np.ndarray
    score: float
    roi: Roi
    track: int = 0


class FaceMesh:
    """face_landmark.tflite on RGB uint8 frames."""

    def __init__(self, path: str = MESH_PATH, num_threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter

        from core.cli import UserError

        if not os.path.isfile(path):
            raise UserError(f"face mesh model not found: {path} (run `python -m mobile_demo.setup_assets`)")
        try:
            self.interp = Interpreter(model_path=path, num_threads=num_threads)
            self.interp.allocate_tensors()
        except Exception as e:  # noqa: BLE001 - any load failure means a bad file
            raise UserError(f"not a TFLite model file: {path} ({str(e).splitlines()[0][:80]})") from None
        inp = self.interp.get_input_details()
        outs = {int(np.prod(d["shape"])): d["index"] for d in self.interp.get_output_details()}
        if len(inp) != 1 or tuple(inp[0]["shape"]) != (1, INPUT_SIZE, INPUT_SIZE, 3) or NUM_LANDMARKS * 3 not in outs or 1 not in outs:
            raise UserError(f"{path} is not MediaPipe's face mesh (input {[tuple(d['shape']) for d in inp]})")
        self.input_index = inp[0]["index"]
        self.mesh_index, self.score_index = outs[NUM_LANDMARKS * 3], outs[1]

    def raw(self, tensor: np.ndarray) -> tuple[np.ndarray, float]:
        """One 192x192x3 [0, 1] input -> (landmarks 468 x 3 in input pixels, face logit)."""
        self.interp.set_tensor(self.input_index, np.asarray(tensor, np.float32)[None])
        self.interp.invoke()
        mesh = self.interp.get_tensor(self.mesh_index).reshape(NUM_LANDMARKS, 3)
        return mesh.astype(np.float64), float(self.interp.get_tensor(self.score_index).reshape(-1)[0])

    def run(self, frame: np.ndarray, roi: Roi) -> Mesh:
        raw, logit = self.raw(crop_input(frame, roi))
        return Mesh(to_frame(raw, roi), sigmoid(logit), roi)


class MeshTracker:
    """The faces of a video as meshes, frame by frame: each mesh's ROI comes from the previous frame's mesh
    (MediaPipe's tracking); the detector runs when fewer than `max_faces` are tracked, at once when none is,
    else every `detect_every` frames, and a face it finds that no mesh covers starts a new one."""

    def __init__(self, detector, mesh: FaceMesh, max_faces: int = 4, min_score: float = MIN_SCORE, detect_every: int = 3):
        self.detector, self.mesh = detector, mesh
        self.max_faces, self.min_score, self.detect_every = max_faces, min_score, detect_every
        self.reset()

    def reset(self) -> None:
        self.meshes: list[Mesh] = []
        self.since = 0  # frames since the detector last ran
        self.frames = 0  # frames seen
        self.tracks = 0  # tracks started

    def __call__(self, rgb: np.ndarray) -> list[Mesh]:
        meshes = []
        for t in self.meshes:
            m = self.mesh.run(rgb, roi_from_mesh(t.landmarks))
            if m.score >= self.min_score and not self._covered(m.roi, meshes):  # two tracks on one face: one
                m.track = t.track
                meshes.append(m)
        self.frames += 1
        self.since += 1
        if not meshes or (len(meshes) < self.max_faces and self.since >= self.detect_every):
            self.since = 0
            for face in self.detector.detect(rgb):
                if len(meshes) >= self.max_faces:
                    break
                roi = roi_from_face(face)
                if self._covered(roi, meshes):
                    continue  # a face already tracked
                m = self.mesh.run(rgb, roi)
                if m.score >= self.min_score:
                    m.track = self.tracks
                    self.tracks += 1
                    meshes.append(m)
        self.meshes = meshes
        return meshes

    @staticmethod
    def _covered(roi: Roi, meshes: list[Mesh]) -> bool:
        """Whether a mesh of `meshes` has its ROI's centre within a third of its side of `roi`'s."""
        return any(math.hypot(roi.cx - m.roi.cx, roi.cy - m.roi.cy) < m.roi.side / 3 for m in meshes)
