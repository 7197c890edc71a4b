"""python -m mobile_demo.setup_assets: fetch what the demo needs but the repository doesn't hold.

1. BlazeFace short-range (`face_detection_short_range.tflite`) and the face mesh
   (`face_landmark.tflite`: 468 landmarks, the live emoji's model; mobile_demo/face_mesh.py), both
   Apache-2.0 (Google, MediaPipe), taken out of the mediapipe 0.10.21 wheel with `pip download --no-deps`
   (one download for both, only when one is missing; pip's cache serves a second one) and zipfile:
   mediapipe itself is never installed (its numpy<2 / protobuf<5 pins clash with TensorFlow 2.21).
2. LiteRT.js's dist files (`@litertjs/core`, `@litertjs/wasm-utils`) copied from
   `mobile_demo/node_modules` (installed by `npm ci`) into `static/vendor/litertjs/`.

Everything lands in `mobile_demo/static/vendor/` (git-ignored). Idempotent: a step whose result is
already there is skipped. Called by `scripts/setup.sh --web`.
"""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

import click

from core.cli import UserError, run_cli
from core.files import atomic_path, sha256_file

HERE = os.path.dirname(os.path.abspath(__file__))
VENDOR = os.path.join(HERE, "static", "vendor")
BLAZEFACE = os.path.join(VENDOR, "face_detection_short_range.tflite")
MEDIAPIPE_VERSION = "0.10.21"
WHEEL_MEMBER = "mediapipe/modules/face_detection/face_detection_short_range.tflite"
# sha256 of the file in the cp311 manylinux mediapipe 0.10.21 wheel (other platforms' wheels are
# expected to hold the same bytes; a different file is accepted if it is a TFLite flatbuffer).
BLAZEFACE_SHA256 = "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8"
FACE_MESH = os.path.join(VENDOR, "face_landmark.tflite")
MESH_MEMBER = "mediapipe/modules/face_landmark/face_landmark.tflite"
FACE_MESH_SHA256 = "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814"  # 1,242,398 bytes
NODE_MODULES = os.path.join(HERE, "node_modules")
LITERT_PACKAGES = ("core", "wasm-utils")



def is_tflite(head: bytes) -> bool:
    """A TFLite flatbuffer carries the identifier TFL3 at bytes 4..8."""
    return len(head) >= 8 and head[4:8] == b"TFL3"


def _valid_file(path: str) -> bool:
    if not os.path.isfile(path) or os.path.getsize(path) < 1000:
        return False
    with open(path, "rb") as f:
        return is_tflite(f.read(8))


def extract_member(wheel: str, member: str, dest: str) -> str:
    """Copies one TFLite file out of a mediapipe wheel into `dest` (atomically)."""
    try:
        with zipfile.ZipFile(wheel) as z:
            data = z.read(member)
    except (zipfile.BadZipFile, KeyError, OSError) as e:
        raise UserError(f"{wheel} has no {member} ({type(e).__name__})") from None
    if not is_tflite(data[:8]):
        raise UserError(f"{member} in {wheel} is not a TFLite file")
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    with atomic_path(dest) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
    return dest


def extract_blazeface(wheel: str, dest: str = BLAZEFACE) -> str:
    """Copies the short-range face detector out of a mediapipe wheel into `dest` (atomically)."""
    return extract_member(wheel, WHEEL_MEMBER, dest)


def wheel_assets(blazeface: str = BLAZEFACE, face_mesh: str = FACE_MESH) -> list[tuple[str, str, str, str]]:
    """What setup_assets takes out of the mediapipe wheel: (name, wheel member, sha256 in the cp311 wheel, dest)."""
    return [("BlazeFace", WHEEL_MEMBER, BLAZEFACE_SHA256, blazeface),
            ("the face mesh", MESH_MEMBER, FACE_MESH_SHA256, face_mesh)]


def fetch_from_wheel(assets, wheel: str | None = None, quiet=False) -> list[str]:
    """Puts each (name, member, sha256, dest) of `assets` at its dest unless a TFLite file is already there;
    the missing ones come from `wheel`, or from one download of the mediapipe wheel for all of them."""
    missing = []
    for name, member, digest, dest in assets:
        if _valid_file(dest):
            if not quiet:
                click.echo(f"ok: {os.path.relpath(dest)} already there")
        else:
            missing.append((name, member, digest, dest))
    if missing and wheel:
        for _name, member, _digest, dest in missing:
            extract_member(wheel, member, dest)
    elif missing:
        _download_and_extract(missing, quiet)
    if not quiet:
        for _name, _member, digest, dest in missing:
            known = "known sha256" if sha256_file(dest) == digest else "sha256 differs from the cp311 wheel's"
            click.echo(f"ok: {os.path.relpath(dest)} ({os.path.getsize(dest)} bytes, {known})")
    return [a[3] for a in assets]


def fetch_blazeface(dest: str = BLAZEFACE, wheel: str | None = None, quiet=False) -> str:
    """Puts BlazeFace at `dest` unless the right file is already there."""
    return fetch_from_wheel(wheel_assets(blazeface=dest)[:1], wheel, quiet)[0]


def fetch_face_mesh(dest: str = FACE_MESH, wheel: str | None = None, quiet=False) -> str:
    """Puts the face mesh (face_landmark.tflite) at `dest` unless the right file is already there."""
    return fetch_from_wheel(wheel_assets(face_mesh=dest)[1:], wheel, quiet)[0]


def _download_and_extract(missing, quiet: bool) -> None:
    names = " and ".join(m[0] for m in missing)
    with tempfile.TemporaryDirectory(prefix="mediapipe-wheel-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", f"mediapipe=={MEDIAPIPE_VERSION}", "--no-deps",
               "--only-binary=:all:", "--quiet", "--disable-pip-version-check", "-d", tmp]
        if not quiet:
            click.echo(f"downloading the mediapipe {MEDIAPIPE_VERSION} wheel (not installed; ~35 MB) for {names} ...")
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wheels = [f for f in os.listdir(tmp) if f.endswith(".whl")]
        if proc.returncode != 0 or not wheels:
            last = (proc.stderr or proc.stdout).strip().splitlines()
            why = last[-1] if last else f"pip exited with {proc.returncode}"
            raise UserError(f"could not download the mediapipe {MEDIAPIPE_VERSION} wheel for {names}: {why}")
        for _name, member, _digest, dest in missing:
            extract_member(os.path.join(tmp, wheels[0]), member, dest)


def _sync_tree(src: str, dst: str) -> int:
    """Copies the files of `src` into `dst` that are missing or differ; returns how many were copied."""
    copied = 0
    for root, _dirs, files in os.walk(src):
        rel = os.path.relpath(root, src)
        out_dir = os.path.normpath(os.path.join(dst, rel))
        os.makedirs(out_dir, exist_ok=True)
        for name in files:
            s, d = os.path.join(root, name), os.path.join(out_dir, name)
            if os.path.isfile(d) and filecmp.cmp(s, d, shallow=False):
                continue
            with atomic_path(d) as tmp:
                shutil.copyfile(s, tmp)
            copied += 1
    return copied


def copy_litertjs(node_modules: str = NODE_MODULES, vendor: str = VENDOR, quiet=False) -> list[str]:
    """Mirrors `node_modules/@litertjs/<pkg>/` (package.json, dist/, wasm/) into `vendor/litertjs/<pkg>/`.

    The layout stays the npm one, so the page imports `/static/vendor/litertjs/core/dist/index.js`
    (an import map resolves `@litertjs/wasm-utils` to `/static/vendor/litertjs/wasm-utils/dist/index.js`)
    and points LiteRT.js's wasm loader at `/static/vendor/litertjs/core/wasm/`.
    """
    done = []
    base = os.path.join(node_modules, "@litertjs")
    if not os.path.isdir(base):
        if not quiet:
            click.echo(f"skip: no {os.path.relpath(base)} (run `npm ci` in mobile_demo/ for the web page)")
        return done
    for pkg in LITERT_PACKAGES:
        src = os.path.join(base, pkg)
        if not os.path.isfile(os.path.join(src, "package.json")):
            raise UserError(f"{src} is missing or incomplete: run `npm ci` in mobile_demo/")
        dst = os.path.join(vendor, "litertjs", pkg)
        n = 0
        for part in ("dist", "wasm"):
            if os.path.isdir(os.path.join(src, part)):
                n += _sync_tree(os.path.join(src, part), os.path.join(dst, part))
        for extra in ("package.json", "LICENSE", "README.md"):
            s_, d_ = os.path.join(src, extra), os.path.join(dst, extra)
            if os.path.isfile(s_) and not (os.path.isfile(d_) and filecmp.cmp(s_, d_, shallow=False)):
                with atomic_path(d_) as tmp:
                    shutil.copyfile(s_, tmp)
                n += 1
        done.append(dst)
        if not quiet:
            click.echo(f"ok: {os.path.relpath(dst)} ({n} files updated)")
    return done


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--wheel", type=click.Path(dir_okay=False), help="Use this mediapipe wheel instead of downloading one.")
@click.option("--skip-litertjs", is_flag=True, help="Only fetch the models (BlazeFace, the face mesh).")
@click.option("--quiet", "-q", is_flag=True)
def main(wheel, skip_litertjs, quiet):
    """Fetch BlazeFace and the face mesh (from the mediapipe wheel) and copy LiteRT.js into mobile_demo/static/vendor/."""
    if wheel and not os.path.isfile(wheel):
        raise UserError(f"wheel not found: {wheel}")
    try:
        fetch_from_wheel(wheel_assets(), wheel, quiet)
    finally:  # offline with a model missing: LiteRT.js is still copied, what is there is kept
        if not skip_litertjs:
            copy_litertjs(quiet=quiet)


if __name__ == "__main__":
    run_cli(main, "python -m mobile_demo.setup_assets")
