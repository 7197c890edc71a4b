"""The data an export verifies and calibrates on: rebuilt from the run's options.json (its training and
validation data, its input range) unless --data / --calib-data say otherwise; N(0, 1) latents (or the
ws of a StyleGAN mapping) for decoders and generators."""

from __future__ import annotations

import os

import click
import numpy as np

from core.cli import UserError
from core.labels import FER_LABELS
from export.sources import load_keras
from export.tflite import CONDITIONAL_INPUT, MIN_CALIBRATION, Target

INPUT_RANGES = {"0-255": (0.0, 255.0), "0-1": (0.0, 1.0), "-1-1": (-1.0, 1.0)}


def input_range(target: Target, choice: str, opts: dict) -> tuple[str, str]:
    """(range key, preprocessing text) of the image input."""
    if choice != "auto":
        return choice, _preproc_text(choice, target)
    rescale = [layer for layer in _first_layers(target.model, 8) if type(layer).__name__ == "Rescaling"]
    if rescale:
        return "0-255", _preproc_text("0-255", target) + " (scaled inside the model)"
    key = opts.get("input_range")
    if key in INPUT_RANGES:
        return key, _preproc_text(key, target)
    click.echo(f"note: {os.path.basename(target.source)} has no Rescaling layer: assuming inputs in [0, 1] (use --input-range)", err=True)
    return "0-1", _preproc_text("0-1", target)


def _first_layers(model, n):
    """The first `n` layers of `model`, looking inside nested models (a flip-averaged classifier
    starts with its 3 mirror layers and its input, then the classifier)."""
    out = []
    for layer in model.layers:
        out += _first_layers(layer, n - len(out)) if hasattr(layer, "layers") else [layer]
        if len(out) >= n:
            break
    return out[:n]


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
        if target.input_name == CONDITIONAL_INPUT:  # the last 7 values are a one-hot expression, not noise
            k = len(FER_LABELS)
            for a, rng in ((cal, rng_c), (ver, rng_v)):
                if a is not None:
                    a[:, -k:] = np.eye(k, dtype=np.float32)[rng.integers(0, k, len(a))]
            desc["preprocessing"] = (f"noise_for_id(id, {dim - k}) (standard normal) followed by the one-hot of the expression asked for, "
                                     f"in the order of expression_labels")
            desc |= {"noise_size": dim - k, "expression_labels": list(FER_LABELS)}
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
            raise UserError(f"int8 calibration needs at least {MIN_CALIBRATION} examples; {', '.join(cal_specs)} has {len(xc)} (add more "
                            f"with --calib-data)")
        cal = _scale(xc[_spread(len(xc), calib_size)], key)
    return cal, _scale(xv, key), yv, desc
