"""What an export writes: NAME.tflite, NAME.report.json, the labels files, a run's side files
(StyleGAN directions, VAE latents) and its manifest.json entries, every file renamed into place only
once all are written."""

from __future__ import annotations

import contextlib
import json
import os
import shutil

import click

from core.cli import UserError
from core.crop import CropContract
from core.files import atomic_path, check_can_write, ensure_writable_dir, json_kind
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
    } | ({"latents": r["latents"]} if r.get("latents") else {}) | ({"flip_average": True} if target.flip_average else {})
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


def write_outputs(out_dir: str, results, side_files=(), manifest: dict | None = None):
    """All files at temporary names first; renamed into place only once every one is written.
    `manifest`: the folder's manifest as check_output_folder read it (read again when None)."""
    ensure_writable_dir(out_dir)
    manifest_path = os.path.join(out_dir, "manifest.json")
    manifest = read_manifest(manifest_path) if manifest is None else manifest
    with contextlib.ExitStack() as stack:
        for target, report, blob in results:
            stem = os.path.join(out_dir, report["name"])
            tmp = stack.enter_context(atomic_path(stem + ".tflite"))
            with open(tmp, "wb") as f:
                f.write(blob)
            if target.family == "classifier" and target.labels:
                for p in (stem + ".labels.txt", os.path.join(out_dir, "labels.txt")):
                    tmp = stack.enter_context(atomic_path(p, suffix=".txt"))
                    with open(tmp, "w") as f:
                        f.write("\n".join(target.labels) + "\n")
            tmp = stack.enter_context(atomic_path(stem + ".report.json"))
            with open(tmp, "w") as f:
                json.dump(report, f, indent=2)
                f.write("\n")
            entry = manifest_entry(target, report)
            manifest["models"] = [m for m in manifest.get("models", []) if m.get("path") != entry["path"]] + [entry]
        for src, fname, entry in side_files:
            shutil.copyfile(src, stack.enter_context(atomic_path(os.path.join(out_dir, fname))))
            if entry is not None:
                manifest["models"] = [m for m in manifest.get("models", []) if m.get("path") != entry["path"]] + [entry]
        tmp = stack.enter_context(atomic_path(manifest_path))
        with open(tmp, "w") as f:
            json.dump(manifest, f, indent=2)
            f.write("\n")
    for _, report, _ in results:
        click.echo(f"wrote {os.path.join(out_dir, report['file'])} ({report['size_bytes'] / 1024:.1f} KiB) and its report; manifest "
                   f"{manifest_path}")
