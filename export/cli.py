"""`python -m export tflite SOURCE ...`, `python -m export report DIR` and `python -m export sliders FILE`."""

from __future__ import annotations

import glob
import json
import os
import shlex
import shutil
import sys

import click

from core.cli import FiniteFloatRange, UserError
from core.labels import FER_LABELS
from core.provenance import git_commit
from export.calibration import INPUT_RANGES, prepare_data
from export.manifest import check_output_folder, side_files, stale_entries, vae_latents, write_outputs
from export.sources import resolve_source, with_flip_average
from export.tflite import MIN_CALIBRATION, QUANTS, TFLiteRunner, check, compare, convert, keras_outputs, latency_ms, op_names

INT8_TARGET_DROP = 0.3  # the product's budget for int8 (points); the hard gate is THRESHOLDS


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli():
    """Export Emotekit models to verified .tflite files (and report on them)."""


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
@click.option("--min-agreement", type=FiniteFloatRange(), default=None, help="Override: classifiers' least top-1 agreement (0..1).")
@click.option("--max-acc-drop", type=FiniteFloatRange(), default=None, help="Override: classifiers' largest accuracy drop (points).")
@click.option("--min-psnr", type=FiniteFloatRange(), default=None, help="Override: images' least PSNR (dB).")
@click.option("--min-snr", type=FiniteFloatRange(), default=None, help="Override: vectors' least SNR (dB).")
@click.option("--flip-average", is_flag=True,
              help="Classifiers: average the face and its mirror image inside the graph (two passes, one call).")
@click.option("--seed", type=int, default=0, show_default=True)
def tflite(source, quant, out_dir, data, calib_data, name, task, force, calib_size, verify_size, range_choice,
           min_agreement, max_acc_drop, min_psnr, min_snr, flip_average, seed):
    """Convert SOURCE (a run directory or a .keras file) to NAME.tflite, verified against Keras."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    manifest = check_output_folder(out_dir)  # before minutes of converting
    targets, opts, base = resolve_source(source, task)
    if flip_average:
        targets = [(with_flip_average(t), part) for t, part in targets]
    base = name or base
    overrides = {"min_agreement": min_agreement, "max_acc_drop": max_acc_drop, "min_psnr": min_psnr, "min_snr": min_snr}
    command = _command_line(source, quant, out_dir, data, calib_data, name, task, force, calib_size, verify_size, range_choice, overrides,
                            seed, flip_average)
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
    manifest = check_output_folder(out_dir)  # again: still writable, and what is there now is merged
    write_outputs(out_dir, results, side_files(source, opts, base) + vae_latents(source, opts, base, results), manifest)


def _command_line(source, quant, out_dir, data, calib_data, name, task, force, calib_size, verify_size, range_choice, overrides, seed,
                  flip_average=False):
    parts = ["python", "-m", "export", "tflite", source, "--quant", quant, "--out", out_dir]
    parts += [a for d in data for a in ("--data", d)] + [a for d in calib_data for a in ("--calib-data", d)]
    for flag, value, default in (("--name", name, None), ("--task", task, None), ("--calib-size", calib_size, 500),
                                 ("--verify-size", verify_size, 1000), ("--input-range", range_choice, "auto"), ("--seed", seed, 0)):
        if value != default:
            parts += [flag, str(value)]
    for k, v in overrides.items():
        if v is not None:
            parts += ["--" + k.replace("_", "-"), str(v)]
    if flip_average:
        parts.append("--flip-average")
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
            s += (f", accuracy {v['accuracy'] * 100:.2f} % (Keras {v['keras_accuracy'] * 100:.2f} %, "
                  f"{v['accuracy_diff_points']:+.2f} points)")
    elif "psnr_db" in v:
        s += f", PSNR {v['psnr_db']:.1f} dB, max abs err {v['max_abs_error']:.4f}"
    else:
        s += f", SNR {v['snr_db']:.1f} dB"
    return s + ("" if r["passed"] else "  FAILED: " + "; ".join(r["failures"]))


@cli.command("sliders")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--keep", required=True, help="Comma list of the directions to keep: those whose slider sheet shows a visible change.")
@click.option("--reason", default="no visible change in its slider sheet", show_default=True, help="Recorded for each one dropped.")
def sliders(path, keep, reason):
    """Keep only the named StyleGAN directions in PATH (a run's directions.json before `export tflite`,
    or a shipped *-directions.json), so that the page drops the sliders that change nothing visibly."""
    from core.files import atomic_path
    from keras_models.stylegan.directions import load_directions, save_directions, select_directions

    names = [n.strip() for n in keep.split(",") if n.strip()]
    if not names:
        raise UserError("--keep names no direction")
    try:
        load_directions(path)  # checks the file
    except FileNotFoundError as e:
        raise UserError(str(e)) from None
    with open(path) as f:
        data = select_directions(json.load(f), names, reason)
    save_directions(path, data, atomic=atomic_path)
    click.echo(f"{path}: kept {', '.join(data['directions'])}; dropped {', '.join(data['dropped']) or 'none'}")


@cli.command("expression-directions")
@click.argument("models", type=click.Path(file_okay=False))
@click.option("--classifier", required=True, type=click.Path(dir_okay=False), help="The expression model that tags the samples.")
@click.option("--samples", type=click.IntRange(200, 100_000), default=10_000, show_default=True,
              help="Generator samples tagged for each boundary.")
@click.option("--sheets", type=click.Path(file_okay=False), default=None,
              help="Write a sheet per expression here: stylegan-sheet-<name>.png, vae-wear-<name>.png.")
def expression_directions(models, classifier, samples, sheets):
    """Expression directions for the shipped generators in MODELS (stylegan-mapping/-synthesis.tflite with
    stylegan-directions.json; vae-decoder.tflite with vae-decoder-latents.json), from samples tagged by
    CLASSIFIER: sliders added to the directions file, "expression_vectors" to the latents file."""
    import numpy as np

    from core.files import atomic_path, sha256_file
    from core.images import grid, save_png, to_uint8
    from core.runtime import load_classifier
    from export import expression_directions as E
    from keras_models.stylegan.directions import save_directions

    def path(name):
        p = os.path.join(models, name)
        if not os.path.isfile(p):
            raise UserError(f"{models} has no {name}")
        return p

    def read_json(p):
        try:
            with open(p) as f:
                return json.load(f)
        except ValueError as e:
            raise UserError(f"{p} is not JSON ({e})") from None

    clf = load_classifier(classifier)
    digest = sha256_file(classifier)
    dirs_path, lat_path = path("stylegan-directions.json"), path("vae-decoder-latents.json")
    mapping, synthesis = E.Generator(path("stylegan-mapping.tflite")), E.Generator(path("stylegan-synthesis.tflite"))
    decoder = E.Generator(path("vae-decoder.tflite"))
    doc = E.stylegan_directions(read_json(dirs_path), mapping, synthesis, clf, n=samples, log=click.echo)
    doc["expressions"]["classifier_sha256"] = digest
    latents = read_json(lat_path)
    vectors = E.vae_expression_vectors(decoder, clf, int(latents["z_dim"]), n=samples, characters=latents["characters"],
                                       expressions=latents["expressions"], log=click.echo)
    latents["expression_vectors"] = vectors
    latents["expression_vectors_from"] = {"classifier_sha256": digest, "samples": samples,
                                          "note": "z_character + t * scale * vector: the character wearing the expression"}
    save_directions(dirs_path, doc, atomic=atomic_path)
    with atomic_path(lat_path, ".json") as tmp, open(tmp, "w") as f:
        json.dump(latents, f)
    click.echo(f"wrote {dirs_path} ({', '.join(doc['directions'])}) and {lat_path} ({', '.join(vectors)})")
    if sheets:
        os.makedirs(sheets, exist_ok=True)
        ws = E.stylegan_ws(mapping, [1000000, 1000001, 1000002], np.asarray(doc["w_avg"], np.float32), doc.get("psi", 0.8))
        chars = [c["z"] for c in latents["characters"][:4]]
        for name in vectors:
            d = doc["directions"][name]
            img = E.sheet(lambda w: to_uint8(synthesis(w)), ws, d["vector"], d["scale"], alphas=(-3, -2, -1, 0, 1, 2, 3))
            save_png(os.path.join(sheets, f"stylegan-sheet-{name}.png"), grid(img, cols=7), scale=2)
            v = vectors[name]
            img = E.sheet(lambda z: to_uint8(decoder(z), low=0.0, high=1.0), chars, v["vector"], v["scale"])
            save_png(os.path.join(sheets, f"vae-wear-{name}.png"), grid(img, cols=4), scale=2)
        click.echo(f"wrote the sheets to {sheets}")


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
    # The manifest is what the page loads: an entry whose file is missing or not the one it describes is worth a line.
    stale = stale_entries(directory) if os.path.exists(os.path.join(directory, "manifest.json")) else []
    for path in stale:
        click.echo(f"stale manifest entry: {path} is missing or not the file manifest.json describes (export it again)")


@cli.command("emote-ids")
@click.argument("generator", type=click.Path(exists=True, dir_okay=False))
@click.option("--judge", required=True, type=click.Path(exists=True, dir_okay=False),
              help="judge.keras from `python -m train emote-judge` (trained on real emoji only).")
@click.option("--data", multiple=True, default=("emoji:all",), show_default=True, help="The generator's training emoji (for novelty).")
@click.option("--scan", type=click.IntRange(16, 100_000), default=1024, show_default=True, help="Ids 0..scan-1 judged per expression.")
@click.option("--keep", type=click.IntRange(1, 10_000), default=64, show_default=True, help="Best ids kept per expression.")
@click.option("--sheets", type=click.Path(file_okay=False), default=None,
              help="Write emote-grid-plain.png (ids 0..8 of each expression, a column each) and emote-grid-ranked.png (the first shown).")
def emote_ids(generator, judge, data, scan, keep, sheets):
    """Rank the emote ids of an expression GENERATOR (.tflite, input noise_and_expression) by the judge:
    writes emote-ids.json beside it (the best ids per expression first, and how often the judge sees the
    expression asked for)."""
    import keras

    from core.files import atomic_path, sha256_file
    from core.images import grid, save_png
    from data_pipelines import load_sources
    from export import emote_ids as EI
    from export.expression_directions import Generator
    from export.tflite import CONDITIONAL_INPUT

    try:
        gen = Generator(generator)
    except ValueError as e:
        raise UserError(f"cannot load {generator}: {str(e).splitlines()[0]}") from None
    if gen.runner.input_name != CONDITIONAL_INPUT:
        raise UserError(f"{generator} is not an expression emote generator "
                        f"(its input is {gen.runner.input_name!r}, not {CONDITIONAL_INPUT})")
    size = int(gen.runner.interp.get_input_details()[0]["shape"][-1])
    try:
        model = keras.saving.load_model(judge, compile=False)
    except (ValueError, OSError) as e:
        raise UserError(f"cannot load the judge {judge}: {str(e).splitlines()[0]}") from None
    train_images = load_sources(list(data), int(model.input_shape[1]), 3).images
    best, measured, (plain, shown) = EI.rank_ids(gen, model, size - len(FER_LABELS), train_images, scan, keep, log=click.echo)
    judge_report = os.path.join(os.path.dirname(judge), "judge.json")
    held = None
    if os.path.isfile(judge_report):
        with open(judge_report) as f:
            held = json.load(f)["heldout"]
    doc = {"about": "Emote ids of the expression emote generator, the judge's best first for each expression (the panel shows "
                    "these first; any id 0..4294967295 stays valid). measured: how often the judge, trained on real emoji only, "
                    "sees the expression asked for.",
           "generator": os.path.basename(generator), "generator_sha256": sha256_file(generator), "judge_sha256": sha256_file(judge),
           "judge_heldout": held, "ids": best, "measured": measured,
           "command": "python -m export emote-ids " + " ".join(sys.argv[2:])}
    out = os.path.join(os.path.dirname(os.path.abspath(generator)), "emote-ids.json")
    with atomic_path(out, ".json") as tmp, open(tmp, "w") as f:
        json.dump(doc, f, indent=1)
    o = measured["overall"]
    click.echo(f"wrote {out}: judged as asked {o['judged_as_asked']:.1%} of plain ids, "
               f"{o['judged_as_asked_shown_first']:.1%} of those shown first; novelty ratio {o['plain_ids']['novelty_ratio']:.2f}, "
               f"diversity {o['plain_ids']['diversity']:.2f} of the data's")
    if sheets:
        os.makedirs(sheets, exist_ok=True)
        for name, imgs in (("plain", plain), ("ranked", shown)):
            save_png(os.path.join(sheets, f"emote-grid-{name}.png"), grid(imgs.reshape(-1, *imgs.shape[2:]), cols=len(FER_LABELS)), scale=2)
