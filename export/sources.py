"""What SOURCE names: a run directory (its kind's model files, labels and options) or a bare `.keras` file."""

from __future__ import annotations

import dataclasses
import os

from core.cli import UserError
from core.files import read_options_file
from core.runtime import read_labels
from export.tflite import make_target

RUN_MODELS = {
    # run kind -> [(file candidates in order, part suffix, task)]
    "expression": [(("best.keras", "last.keras"), "", "expression")],
    "vae": [(("encoder.keras",), "encoder", "vae-encoder"), (("decoder.keras",), "decoder", "vae-decoder")],
    "dcgan": [(("generator.keras",), "", "emote-generator")],
    "stylegan": [(("mapping.keras",), "mapping", "stylegan-mapping"), (("synthesis.keras",), "synthesis", "stylegan-synthesis")],
}


def load_keras(path: str):
    """A `.keras` model, with Emotekit's custom layers registered first."""
    import keras

    # Every family with custom classes registers them with Keras when imported (the expression
    # classifiers use Keras' own layers only). A new family with custom classes is added here.
    import keras_models.dcgan.gan  # noqa: F401
    import keras_models.stylegan  # noqa: F401
    import keras_models.vae.model  # noqa: F401

    if not os.path.exists(path):
        raise UserError(f"model not found: {path}")
    if not path.endswith(".keras") or not os.path.isfile(path):
        raise UserError(f"not a .keras model file: {path}")
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
    if not os.path.exists(source):
        raise UserError(f"source not found: {source}")
    if os.path.isdir(source):
        opts_path = os.path.join(source, "options.json")
        if not os.path.isfile(opts_path):
            raise UserError(f"not a run directory (no options.json) and not a .keras file: {source}")
        opts = read_options_file(opts_path)
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


def with_flip_average(target):
    """`target` with its classifier averaged over the face and its mirror image inside the graph."""
    from keras_models.expression.tta import flip_averaged, is_flip_averaged

    if target.family != "classifier":
        raise UserError(f"{target.source}: --flip-average is for classifiers; this is a {target.family}")
    if is_flip_averaged(target.model):  # a second wrap would run 4 passes for the same average
        raise UserError(f"{target.source} already averages the face and its mirror image: export it without --flip-average")
    return dataclasses.replace(target, model=flip_averaged(target.model))
