"""What an export writes: NAME.tflite, NAME.report.json, the labels files, a run's side files
(StyleGAN directions, VAE latents) and its manifest.json entries, every file renamed into place only
once all are written, manifest.json last (write_outputs: what a kill at each step leaves)."""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import tempfile

import click

from core.cli import UserError
from core.crop import CropContract
from core.files import check_can_write, ensure_writable_dir, json_kind, sha256_file
from export.tflite import Target


def vae_latents(source: str, opts: dict, base: str, results) -> list:
    """A VAE run's latents.json (from `python -m train vae-latents`), copied as BASE-latents.json and named
    under "latents" in the decoder's manifest entry (the keyboard's morph panel reads it). SOURCE is the run,
    or its decoder.keras alone (`python -m export tflite RUN/decoder.keras` ships the decoder without the encoder)."""
    decoders = [r for t, r, _ in results if t.task == "vae-decoder"]
    if not decoders or (os.path.isdir(source) and opts.get("kind") != "vae"):
        return []
    source = source if os.path.isdir(source) else os.path.dirname(os.path.abspath(source))
    path = os.path.join(source, "latents.json")
    if not os.path.isfile(path):
        click.echo(f"note: no latents.json in {source}: the keyboard's morph panel needs one "
                   f"(python -m train vae-latents {source}), then export again", err=True)
        return []
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        dims = {len(e["z"]) for key in ("characters", "expressions") for e in doc[key]}
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError(f"unreadable latents file {path} (make it again with python -m train vae-latents {source})") from None
    z_dim = decoders[0]["input"]["shape"][-1]
    if dims != {z_dim}:
        raise UserError(f"{path} holds latents of size {sorted(dims)}, the decoder takes {z_dim}: make it again with "
                        f"python -m train vae-latents {source}")
    encoder = os.path.join(source, "encoder.keras")
    if os.path.isfile(encoder) and os.path.getmtime(encoder) > os.path.getmtime(path):
        click.secho(f"warning: {path} is older than encoder.keras (the run trained on): the morph's faces may be off; "
                    f"python -m train vae-latents {source} refreshes it", fg="yellow", err=True)
    name = f"{base}-latents.json"
    for r in decoders:
        r["latents"] = name
    return [(path, name, None)]


def side_files(source: str, opts: dict, base: str) -> list:
    """[(source path, file name, manifest entry or None)] copied beside the models: a StyleGAN run's directions.json."""
    path = os.path.join(source, "directions.json") if os.path.isdir(source) else ""
    if opts.get("kind") != "stylegan" or not os.path.isfile(path):
        return []
    name = f"{base}-directions.json"
    return [(path, name, {"name": f"{base}-directions", "task": "stylegan-directions", "path": name,
                          "description": "w_avg and named unit directions in w space with their scales (w + alpha * scale * vector)"})]


def manifest_entry(target: Target, r: dict) -> dict:
    v = r["verification"]
    keep = ("accuracy", "macro_f1", "keras_accuracy", "keras_macro_f1", "accuracy_diff_points", "agreement",
            "psnr_db", "max_abs_error", "snr_db", "examples")
    metrics = {k: v[k] for k in keep if k in v}
    metrics["latency_ms_1_thread"] = r["latency_ms"]["1_thread"]
    metrics["verified"] = r["passed"]
    entry = {
        "name": r["name"], "task": r["task"], "path": r["file"], "labels": target.labels if target.family == "classifier" else None,
        "input": r["input"], "outputs": r["outputs"], "quant": r["quant"], "size_bytes": r["size_bytes"],
        "metrics": metrics, "command": r["command"], "commit": r["commit"],
    }
    # the bytes the entry describes (write_outputs: how a kill between renames is told apart)
    entry |= {"sha256": r["sha256"]} if r.get("sha256") else {}
    entry |= ({"latents": r["latents"]} if r.get("latents") else {}) | ({"flip_average": True} if target.flip_average else {})
    shape = tuple(r["input"].get("shape") or target.input_shape)
    if r["task"] == "expression" and len(shape) == 4 and shape[1] == shape[2] and shape[3] == 1:
        # The crop that turns a face detector's box into this model's input, read by emojify and the page.
        entry["crop"] = CropContract(size=int(shape[1])).to_dict()
    return entry


def check_output_folder(out_dir: str) -> dict:
    """Before anything is converted (minutes): that --out can be written (it, or the folder it would
    be made in) and that a manifest.json already there is one export can merge into. Returns that
    manifest ({"version": 1, "models": []} when there is none); creates nothing."""
    check_can_write(out_dir)
    return read_manifest(os.path.join(out_dir, "manifest.json"))


def read_manifest(manifest_path: str) -> dict:
    """An export folder's manifest.json as {"version", "models": [entry, ...]} (a bare list of entries,
    as written by early versions, is taken too); any other shape is a one-line error."""
    if not os.path.exists(manifest_path):
        return {"version": 1, "models": []}
    try:
        with open(manifest_path, encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, ValueError):
        raise UserError(f"cannot read the existing {manifest_path} (not JSON text); fix or remove it") from None
    if isinstance(manifest, list):
        manifest = {"version": 1, "models": manifest}
    models = manifest.get("models", []) if isinstance(manifest, dict) else None
    if not isinstance(models, list) or not all(isinstance(m, dict) for m in models):
        what = json_kind(manifest) if not isinstance(manifest, dict) else "object whose 'models' is not a list of entries"
        raise UserError(f"the existing {manifest_path} is not an export manifest (a JSON {what}, expected "
                        '{"version": 1, "models": [...]}); fix or remove it')
    return manifest


TMP_PREFIX = ".tmp-export-"  # + the writer's pid: a leftover of a killed export is known as one


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stale_entries(out_dir: str, entries=None) -> list:
    """The paths of `entries` (default: every entry of OUT_DIR's manifest.json) whose file is not the
    one the entry describes: missing, or its sha256 differs (its size_bytes, for an entry written before
    sha256 was recorded). Empty unless an export into OUT_DIR was killed between its renames (see
    write_outputs) or a file was changed by hand."""
    if entries is None:
        entries = read_manifest(os.path.join(out_dir, "manifest.json"))["models"]
    stale = []
    for m in entries:
        path = os.path.join(out_dir, str(m.get("path", "")))
        if not m.get("path") or not os.path.isfile(path):
            stale.append(m.get("path"))
        elif m.get("sha256"):
            if sha256_file(path) != m["sha256"]:
                stale.append(m["path"])
        elif isinstance(m.get("size_bytes"), int) and os.path.getsize(path) != m["size_bytes"]:
            stale.append(m["path"])
    return stale


def remove_leftovers(out_dir: str) -> list:
    """Removes the temporary files (TMP_PREFIX + pid) that an export killed before its renames left in
    OUT_DIR; those of an export still running (its pid alive) are left alone. Returns the removed names."""
    removed = []
    for path in glob.glob(os.path.join(glob.escape(out_dir), TMP_PREFIX + "*")):
        pid = os.path.basename(path)[len(TMP_PREFIX):].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
            continue  # alive (or reused by another process): not ours to remove
        except ProcessLookupError:
            pass
        except (PermissionError, OverflowError):
            continue
        with contextlib.suppress(OSError):
            os.remove(path)
            removed.append(os.path.basename(path))
    return removed


def _stage(out_dir: str, data: bytes, suffix: str) -> str:
    """DATA in a new temporary file of OUT_DIR (flushed to disk), with a finished file's mode."""
    fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{os.getpid()}-", suffix=suffix, dir=out_dir)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600
    except BaseException:
        os.remove(tmp)
        raise
    return tmp


def _fsync_dir(path: str) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _merge(manifest: dict, entry: dict) -> None:
    manifest["models"] = [m for m in manifest.get("models", []) if m.get("path") != entry["path"]] + [entry]


def write_outputs(out_dir: str, results, side_files=(), manifest: dict | None = None):
    """Writes an export into OUT_DIR so that a kill at any point leaves the previous state or the new one,
    as manifest.json tells it. `manifest`: the folder's manifest as check_output_folder read it (read
    again when None).

    Every file is first written in full (and flushed to disk) at a temporary name, TMP_PREFIX + pid;
    only then are they renamed into place, one os.replace each, in this order:

    1. the files a manifest entry describes by sha256 and size_bytes: NAME.tflite, and side files
       with an entry of their own (a StyleGAN run's directions.json);
    2. their companions, which no entry hashes: NAME.report.json, labels.txt and NAME.labels.txt,
       a VAE's latents.json;
    3. manifest.json, last: its rename is the moment the new export exists.

    What a reader sees after a kill:
    - while writing, or before the first rename: the previous state, untouched (plus temporary files,
      which the next export into the folder removes: remove_leftovers);
    - between two renames: the previous manifest.json, with some files already the new ones. Such
      a state is detectable, not silent: an entry whose file was replaced no longer matches its
      sha256 (stale_entries lists it; size_bytes alone would not do, a re-trained model of the same
      architecture has the same size), and, since the hashed files go first, a companion is only new
      once every hashed file is, so some entry is stale whenever any file is new (unless the new
      model is byte for byte the old one, whose companions then describe it as well). Rerunning
      the export ends it; an export of other models into the folder warns about stale entries it keeps;
    - after the manifest's rename: the new state, every entry matching its file.
    The manifest never names a file it does not describe except in that detectable window."""
    ensure_writable_dir(out_dir)
    remove_leftovers(out_dir)
    manifest_path = os.path.join(out_dir, "manifest.json")
    manifest = read_manifest(manifest_path) if manifest is None else manifest
    hashed, companions, written = [], [], set()
    staged_manifest = []
    try:
        for target, report, blob in results:
            stem = os.path.join(out_dir, report["name"])
            report["sha256"] = sha256_bytes(blob)
            hashed.append((_stage(out_dir, blob, ".tflite"), stem + ".tflite"))
            if target.family == "classifier" and target.labels:
                text = ("\n".join(target.labels) + "\n").encode()
                for p in (stem + ".labels.txt", os.path.join(out_dir, "labels.txt")):
                    companions.append((_stage(out_dir, text, ".txt"), p))
            companions.append((_stage(out_dir, (json.dumps(report, indent=2) + "\n").encode(), ".json"), stem + ".report.json"))
            entry = manifest_entry(target, report)
            _merge(manifest, entry)
            written.add(entry["path"])
        for src, fname, entry in side_files:
            with open(src, "rb") as f:
                data = f.read()
            staged = (_stage(out_dir, data, os.path.splitext(fname)[1]), os.path.join(out_dir, fname))
            if entry is None:
                companions.append(staged)
                continue
            hashed.append(staged)
            _merge(manifest, entry | {"size_bytes": len(data), "sha256": sha256_bytes(data)})
            written.add(entry["path"])
        kept = [m for m in manifest.get("models", []) if m.get("path") not in written]
        for path in stale_entries(out_dir, kept):
            click.secho(f"warning: {manifest_path} names {path}, which is not the file it describes (missing, or replaced "
                        "by an export that was killed before it finished): export that model again", fg="yellow", err=True)
        staged_manifest.append((_stage(out_dir, (json.dumps(manifest, indent=2) + "\n").encode(), ".json"), manifest_path))
        for tmp, final in hashed + companions + staged_manifest:
            os.replace(tmp, final)
        _fsync_dir(out_dir)
    finally:
        for tmp, _ in hashed + companions + staged_manifest:
            if os.path.exists(tmp):
                os.remove(tmp)
    for _, report, _ in results:
        click.echo(f"wrote {os.path.join(out_dir, report['file'])} ({report['size_bytes'] / 1024:.1f} KiB) and its report; manifest "
                   f"{manifest_path}")
