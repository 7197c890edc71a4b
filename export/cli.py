"""`python -m export tflite SOURCE ...` and `python -m export report DIR`."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shlex
import shutil

import click
import numpy as np

from core.cli import UserError
from core.files import atomic_path, ensure_writable_dir
from core.provenance import git_commit
from export.tflite import (
    MIN_CALIBRATION,
    QUANTS,
    Target,
    TFLiteRunner,
    check,
    compare,
    convert,
    keras_outputs,
    latency_ms,
    make_target,
    op_names,
)

RUN_MODELS = {
    # run kind -> [(file candidates in order, part suffix, task)]
    "expression": [(("best.keras", "last.keras"), "", "expression")],
    "vae": [(("encoder.keras",), "encoder", "vae-encoder"), (("decoder.keras",), "decoder", "vae-decoder")],
    "dcgan": [(("generator.keras",), "", "emote-generator")],
    "stylegan": [(("mapping.keras",), "mapping", "stylegan-mapping"), (("synthesis.keras",), "synthesis", "stylegan-synthesis")],
}
INT8_TARGET_DROP = 0.3  # the product's budget for int8 (points); the hard gate is THRESHOLDS
INPUT_RANGES = {"0-255": (0.0, 255.0), "0-1": (0.0, 1.0), "-1-1": (-1.0, 1.0)}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli():
    """Export Emotekit models to verified .tflite files (and report on them)."""


# --------------------------------------------------------------------------- loading


def load_keras(path: str):
    """A `.keras` model, with Emotekit's custom layers registered first."""
    import importlib
    import pkgutil

    import keras

    import keras_models

    if not os.path.exists(path):
        raise UserError(f"model not found: {path}")
    if not path.endswith(".keras") or not os.path.isfile(path):
        raise UserError(f"not a .keras model file: {path}")
    for mod in pkgutil.walk_packages(keras_models.__path__, "keras_models."):
        with contextlib.suppress(Exception):  # a half-finished sibling module must not block exports
            importlib.import_module(mod.name)
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as e:  # noqa: BLE001 - anything that fails to load is a bad model file for the user
        msg = str(e).strip().splitlines()[0][:120] if str(e).strip() else type(e).__name__
        raise UserError(f"not a Keras model file: {path} ({msg})") from None


def _read_lines(path):
    with open(path) as f:
        return [ln.strip() for ln in f if ln.strip()]


def resolve_source(source: str, task: str | None):
    """[(Target, part suffix)], run options (or {}), default base name."""
    from core.runtime import read_labels

    if not os.path.exists(source):
        raise UserError(f"source not found: {source}")
    if os.path.isdir(source):
        opts_path = os.path.join(source, "options.json")
        if not os.path.isfile(opts_path):
            raise UserError(f"not a run directory (no options.json) and not a .keras file: {source}")
        with open(opts_path) as f:
            opts = json.load(f)
        kind = opts.get("kind")
        if kind not in RUN_MODELS:
            raise UserError(f"{source}: don't know how to export a {kind!r} run (known: {', '.join(RUN_MODELS)})")
        targets = []
        for candidates, part, run_task in RUN_MODELS[kind]:
            found = next((os.path.join(source, c) for c in candidates if os.path.isfile(os.path.join(source, c))), None)
            if found is None:
                if kind == "stylegan" and targets:
                    continue
                raise UserError(f"{source}: no {' or '.join(candidates)} in this {kind} run (has it finished an epoch?)")
            labels = _read_lines(os.path.join(source, "labels.txt")) if os.path.isfile(os.path.join(source, "labels.txt")) else None
            t = make_target(load_keras(found), found, task or run_task, labels)
            targets.append((t, part))
        base = opts.get("arch") or kind
        return targets, opts, base
    model = load_keras(source)
    t = make_target(model, source, task, read_labels(source))
    return [(t, "")], {}, os.path.splitext(os.path.basename(source))[0]


def input_range(target: Target, choice: str, opts: dict) -> tuple[str, str]:
    """(range key, preprocessing text) of the image input."""
    if choice != "auto":
        return choice, _preproc_text(choice, target)
    rescale = [layer for layer in target.model.layers[:4] if type(layer).__name__ == "Rescaling"]
    if rescale:
        return "0-255", _preproc_text("0-255", target) + " (scaled inside the model)"
    key = opts.get("input_range")
    if key in INPUT_RANGES:
        return key, _preproc_text(key, target)
    click.echo(f"note: {os.path.basename(target.source)} has no Rescaling layer: assuming inputs in [0, 1] (use --input-range)", err=True)
    return "0-1", _preproc_text("0-1", target)


def _preproc_text(key, target):
    ch = target.input_shape[-1]
    kind = "grey" if ch == 1 else "RGB"
    return {"0-255": f"{kind} face crop, raw pixels 0..255 as float32",
            "0-1": f"{kind} image, pixels / 255 as float32 in [0, 1]",
            "-1-1": f"{kind} image, pixels / 127.5 - 1 as float32 in [-1, 1]"}[key]


def _scale(images: np.ndarray, key: str) -> np.ndarray:
    x = images.astype(np.float32)
    return {"0-255": x, "0-1": x / 255.0, "-1-1": x / 127.5 - 1.0}[key]


def _data_specs(opts: dict, data: tuple, calib: tuple, family: str):
    """(eval specs, eval usage, calibration specs, calibration usage)."""
    run_data = tuple(opts.get("data") or ())
    csv_run = len(run_data) == 1 and run_data[0].lower().endswith(".csv")
    if data:
        ev, ev_usage = data, ("PublicTest" if len(data) == 1 and data[0].lower().endswith(".csv") and family == "classifier" else None)
    elif family == "classifier" and opts.get("val_data"):
        ev, ev_usage = tuple(opts["val_data"]), None
    elif family == "classifier" and csv_run:
        ev, ev_usage = run_data, "PublicTest"
    elif run_data:
        ev, ev_usage = run_data, None
    else:
        ev, ev_usage = (), None
    if calib:
        cal, cal_usage = calib, ("Training" if len(calib) == 1 and calib[0].lower().endswith(".csv") else None)
    elif run_data and all(os.path.exists(s) or ":" in s for s in run_data):
        cal, cal_usage = run_data, ("Training" if csv_run else None)
    else:
        cal, cal_usage = ev, ev_usage
    return ev, ev_usage, cal, cal_usage


def _load_images(specs, usage, target: Target, limit: int, labeled: bool):
    from data_pipelines import load_sources

    size, ch = target.input_shape[1], target.input_shape[3]
    if target.input_shape[1] != target.input_shape[2]:
        raise UserError(f"{target.source}: non-square input {target.input_shape[1:3]} is not supported")
    kw = {"usage": usage} if usage else {}
    if labeled:
        s = load_sources(specs, size, ch, labeled=True, class_names=tuple(target.labels) if target.labels else None, limit=limit, **kw)
        labels = s.labels
        if target.labels and tuple(s.class_names) != tuple(target.labels):
            missing = [c for c in s.class_names if c not in target.labels]
            if missing:
                raise UserError(f"data classes {missing} are not among the model's labels {target.labels}")
            labels = np.array([target.labels.index(s.class_names[i]) for i in labels], np.int32)
        return s.images[:limit], labels[:limit]
    s = load_sources(specs, size, ch, labeled=False, limit=limit, **kw)
    return s.images[:limit], None


def _spread(n_total, n):
    return np.unique(np.linspace(0, n_total - 1, num=min(n, n_total)).astype(int))


def prepare_data(target: Target, opts: dict, data: tuple, calib: tuple, quant: str, range_choice: str,
                 calib_size: int, verify_size: int, seed: int):
    """(calibration inputs or None, verification inputs, verification labels or None, input description)."""
    if target.family in ("decoder", "mapping"):
        dim = target.input_shape[1]
        rng_c, rng_v = np.random.default_rng(seed), np.random.default_rng(seed + 1)
        cal = rng_c.standard_normal((calib_size, dim)).astype(np.float32) if quant == "int8" else None
        ver = rng_v.standard_normal((min(verify_size, 256), dim)).astype(np.float32)
        desc = {"name": target.input_name, "shape": list(target.input_shape), "dtype": "float32",
                "preprocessing": f"latent vector, standard normal N(0, 1) of size {dim}"}
        mapping_path = os.path.join(os.path.dirname(target.source), "mapping.keras")
        if target.task == "stylegan-synthesis" and os.path.isfile(mapping_path):
            # Synthesis takes w, not z: verify and calibrate on real ws (mapping of N(0, 1) latents).
            mapping = load_keras(mapping_path)
            ver, cal = (None if a is None else np.asarray(mapping.predict(a, batch_size=64, verbose=0), np.float32) for a in (ver, cal))
            desc["preprocessing"] = (f"w of size {dim} from stylegan-mapping (z ~ N(0, 1)); truncation w_avg + psi (w - w_avg) "
                                     "and slider edits w + alpha * scale * vector use the directions file")
        return cal, ver, None, desc
    key, text = input_range(target, range_choice, opts)
    desc = {"name": target.input_name, "shape": list(target.input_shape), "dtype": "float32", "preprocessing": text,
            "range": list(INPUT_RANGES[key])}
    ev, ev_usage, cal_specs, cal_usage = _data_specs(opts, data, calib, target.family)
    if not ev:
        raise UserError(f"--data is required to verify {os.path.basename(target.source)} "
                        f"({'a labelled folder or FER CSV' if target.family == 'classifier' else 'an image folder'})")
    labeled = target.family == "classifier"
    xv, yv = _load_images(ev, ev_usage, target, verify_size, labeled)
    cal = None
    if quant == "int8":
        if tuple(cal_specs) == tuple(ev) and cal_usage == ev_usage:
            xc = xv if len(xv) >= calib_size else _load_images(ev, ev_usage, target, calib_size, labeled)[0]
        else:
            xc = _load_images(cal_specs, cal_usage, target, calib_size, labeled)[0]
        if len(xc) < MIN_CALIBRATION:
            raise UserError(f"int8 calibration needs at least {MIN_CALIBRATION} examples; {', '.join(cal_specs)} has {len(xc)} (add more with --calib-data)")
        cal = _scale(xc[_spread(len(xc), calib_size)], key)
    return cal, _scale(xv, key), yv, desc


# --------------------------------------------------------------------------- tflite command


@cli.command("tflite")
@click.argument("source")
@click.option("--quant", type=click.Choice(QUANTS), default="int8", show_default=True)
@click.option("--out", "out_dir", required=True, help="Folder for NAME.tflite, NAME.report.json, labels.txt and manifest.json.")
@click.option("--data", multiple=True, help="Verification data (default: the run's validation data). Repeatable.")
@click.option("--calib-data", multiple=True, help="int8 calibration data (default: the run's training data, else --data).")
@click.option("--name", default=None, help="Base file name (default: the architecture or the .keras file's name + quant).")
@click.option("--task", default=None, help="Manifest task (default: from the run kind or the model's shape).")
@click.option("--force", is_flag=True, help="Write even when the check against Keras fails (loudly).")
@click.option("--calib-size", type=click.IntRange(min=MIN_CALIBRATION), default=500, show_default=True)
@click.option("--verify-size", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--input-range", "range_choice", type=click.Choice(["auto", *INPUT_RANGES]), default="auto", show_default=True,
              help="Pixel range the model takes (auto: 0-255 when it has a Rescaling layer, else the run's input_range, else 0-1).")
@click.option("--min-agreement", type=float, default=None, help="Override: classifiers' least top-1 agreement (0..1).")
@click.option("--max-acc-drop", type=float, default=None, help="Override: classifiers' largest accuracy drop (points).")
@click.option("--min-psnr", type=float, default=None, help="Override: images' least PSNR (dB).")
@click.option("--min-snr", type=float, default=None, help="Override: vectors' least SNR (dB).")
@click.option("--seed", type=int, default=0, show_default=True)
def tflite(source, quant, out_dir, data, calib_data, name, task, force, calib_size, verify_size, range_choice,
           min_agreement, max_acc_drop, min_psnr, min_snr, seed):
    """Convert SOURCE (a run directory or a .keras file) to NAME.tflite, verified against Keras."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    targets, opts, base = resolve_source(source, task)
    base = name or base
    overrides = {"min_agreement": min_agreement, "max_acc_drop": max_acc_drop, "min_psnr": min_psnr, "min_snr": min_snr}
    command = _command_line(source, quant, out_dir, data, calib_data, name, task, force, calib_size, verify_size, range_choice, overrides, seed)
    commit = git_commit()
    results = []
    for target, part in targets:
        fname = "-".join(p for p in (base, part) if p) + (f"-{quant}" if not name else "")
        click.echo(f"{fname}: {target.family} {tuple(target.input_shape)} from {target.source}, {quant}")
        cal, xv, yv, in_desc = prepare_data(target, opts, data, calib_data, quant, range_choice, calib_size, verify_size, seed)
        blob = convert(target, quant, cal)
        ops = op_names(blob)
        got = TFLiteRunner(blob).run(xv, target.output_names)
        ref = keras_outputs(target, xv)
        metrics = compare(target, ref, got, yv)
        thresholds, fails = check(target, quant, metrics, overrides)
        lat1 = latency_ms(blob, xv[0], 1)
        threads = os.cpu_count() or 1
        latn = latency_ms(blob, xv[0], threads)
        report = {
            "name": fname, "file": fname + ".tflite", "task": target.task, "family": target.family, "quant": quant,
            "source": target.source, "size_bytes": len(blob), "ops": ops,
            "latency_ms": {"1_thread": round(lat1, 4), f"{threads}_threads": round(latn, 4)},
            "input": in_desc, "outputs": target.outputs_desc(), "verification": metrics, "thresholds": thresholds,
            "passed": not fails, "failures": fails, "command": command, "commit": commit,
        }
        click.echo("  " + _summary(report))
        drop = -metrics.get("accuracy_diff_points", 0.0)
        if quant == "int8" and drop > INT8_TARGET_DROP and not fails:
            click.echo(f"  note: int8 costs {drop:.2f} accuracy points here (target <= {INT8_TARGET_DROP}); "
                       "quantization-aware training would recover some", err=True)
        results.append((target, report, blob))
    failed = [(r["name"], f) for _, r, _ in results for f in r["failures"]]
    if failed and not force:
        what = "; ".join(f"{n}: {f}" for n, f in failed)
        raise UserError(f"verification against Keras failed ({what}); nothing written (--force writes anyway)")
    if failed:
        click.secho("!" * 72 + "\nWARNING: --force: writing .tflite files that FAILED verification against Keras:\n  "
                    + "\n  ".join(f"{n}: {f}" for n, f in failed) + "\n" + "!" * 72, fg="red", bold=True, err=True)
    write_outputs(out_dir, results, _side_files(source, opts, base) + _vae_latents(source, opts, base, results))


def _vae_latents(source: str, opts: dict, base: str, results) -> list:
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


def _side_files(source: str, opts: dict, base: str) -> list:
    """[(source path, file name, manifest entry or None)] copied beside the models: a StyleGAN run's directions.json."""
    path = os.path.join(source, "directions.json") if os.path.isdir(source) else ""
    if opts.get("kind") != "stylegan" or not os.path.isfile(path):
        return []
    name = f"{base}-directions.json"
    return [(path, name, {"name": f"{base}-directions", "task": "stylegan-directions", "path": name,
                          "description": "w_avg and named unit directions in w space with their scales (w + alpha * scale * vector)"})]


def _command_line(source, quant, out_dir, data, calib_data, name, task, force, calib_size, verify_size, range_choice, overrides, seed):
    parts = ["python", "-m", "export", "tflite", source, "--quant", quant, "--out", out_dir]
    parts += [a for d in data for a in ("--data", d)] + [a for d in calib_data for a in ("--calib-data", d)]
    for flag, value, default in (("--name", name, None), ("--task", task, None), ("--calib-size", calib_size, 500),
                                 ("--verify-size", verify_size, 1000), ("--input-range", range_choice, "auto"), ("--seed", seed, 0)):
        if value != default:
            parts += [flag, str(value)]
    for k, v in overrides.items():
        if v is not None:
            parts += ["--" + k.replace("_", "-"), str(v)]
    if force:
        parts.append("--force")
    return " ".join(shlex.quote(p) for p in parts)


def _summary(r: dict) -> str:
    v = r["verification"]
    lat = r["latency_ms"]
    s = f"{r['size_bytes'] / 1024:.1f} KiB, " + ", ".join(f"{k.replace('_', ' ')} {t:.3f} ms" for k, t in lat.items())
    if "agreement" in v:
        s += f", top-1 agreement {v['agreement'] * 100:.2f} %"
        if "accuracy" in v:
            s += f", accuracy {v['accuracy'] * 100:.2f} % (Keras {v['keras_accuracy'] * 100:.2f} %, {v['accuracy_diff_points']:+.2f} points)"
    elif "psnr_db" in v:
        s += f", PSNR {v['psnr_db']:.1f} dB, max abs err {v['max_abs_error']:.4f}"
    else:
        s += f", SNR {v['snr_db']:.1f} dB"
    return s + ("" if r["passed"] else "  FAILED: " + "; ".join(r["failures"]))


def _manifest_entry(target: Target, r: dict) -> dict:
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
    } | ({"latents": r["latents"]} if r.get("latents") else {})
    shape = tuple(r["input"].get("shape") or target.input_shape)
    if r["task"] == "expression" and len(shape) == 4 and shape[1] == shape[2] and shape[3] == 1:
        # The crop that turns a face detector's box into this model's input, read by emojify and the page.
        from core.crop import CropContract

        entry["crop"] = CropContract(size=int(shape[1])).to_dict()
    return entry


def write_outputs(out_dir: str, results, side_files=()):
    """All files at temporary names first; renamed into place only once every one is written."""
    ensure_writable_dir(out_dir)
    manifest_path = os.path.join(out_dir, "manifest.json")
    manifest = {"version": 1, "models": []}
    if os.path.isfile(manifest_path):
        try:
            with open(manifest_path) as f:
                manifest = json.load(f)
        except (OSError, ValueError):
            raise UserError(f"cannot read the existing {manifest_path}; fix or remove it") from None
        if isinstance(manifest, list):
            manifest = {"version": 1, "models": manifest}
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
            entry = _manifest_entry(target, report)
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
        click.echo(f"wrote {os.path.join(out_dir, report['file'])} ({report['size_bytes'] / 1024:.1f} KiB) and its report; manifest {manifest_path}")


# --------------------------------------------------------------------------- report command


@cli.command("report")
@click.argument("directory")
def report(directory):
    """Print a table of every NAME.report.json in DIRECTORY."""
    if not os.path.isdir(directory):
        raise UserError(f"not a folder: {directory}")
    paths = sorted(glob.glob(os.path.join(directory, "*.report.json")))
    if not paths:
        raise UserError(f"no *.report.json in {directory}: export something there first")
    rows = [("file", "task", "quant", "KiB", "ms 1T", "ms nT", "agree %", "acc %", "diff pt", "PSNR/SNR", "ok")]
    for p in paths:
        try:
            with open(p) as f:
                r = json.load(f)
            v, lat = r["verification"], list(r["latency_ms"].values())
        except (OSError, ValueError, KeyError):
            raise UserError(f"unreadable report: {p}") from None
        rows.append((
            r["file"], r["task"], r["quant"], f"{r['size_bytes'] / 1024:.1f}", f"{lat[0]:.3f}", f"{lat[-1]:.3f}",
            f"{v['agreement'] * 100:.2f}" if "agreement" in v else "",
            f"{v['accuracy'] * 100:.2f}" if "accuracy" in v else "",
            f"{v['accuracy_diff_points']:+.2f}" if "accuracy_diff_points" in v else "",
            f"{v.get('psnr_db', v.get('snr_db', 0)):.1f} dB" if ("psnr_db" in v or "snr_db" in v) else "",
            "yes" if r.get("passed") else "NO",
        ))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    width = shutil.get_terminal_size((120, 20)).columns
    for i, row in enumerate(rows):
        click.echo("  ".join(str(c).ljust(w) for c, w in zip(row, widths))[:max(width, 120)])
        if i == 0:
            click.echo("  ".join("-" * w for w in widths))
