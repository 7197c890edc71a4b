"""`python -m train evaluate`: accuracy, macro-F1, per-class metrics and a confusion-matrix PNG."""

from __future__ import annotations

import os

import click
import numpy as np

from core.cli import UserError
from core.files import atomic_path, check_can_write, write_json
from core.metrics import metrics_from_predictions


def plot_confusion(metrics: dict, path: str, title: str = ""):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.array(metrics["confusion_matrix"], dtype=float)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    labels = metrics["labels"]
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5))
    for ax, mat, fmt, sub in ((axes[0], cm, "{:.0f}", "counts"), (axes[1], norm, "{:.2f}", "row-normalised")):
        vmax = max(float(cm.max()), 1.0) if sub == "counts" else 1.0  # counts on their own scale
        ax.imshow(mat, cmap="Blues", vmin=0, vmax=vmax)
        ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
        ax.set_yticks(range(len(labels)), labels)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(sub)
        for i in range(len(labels)):
            for j in range(len(labels)):
                ax.text(j, i, fmt.format(mat[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if mat[i, j] > 0.5 * vmax else "black")
    fig.suptitle(f"{title}  accuracy {metrics['accuracy'] * 100:.2f} %  macro-F1 {metrics['macro_f1'] * 100:.2f} %")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


def predict_probs(model_path: str, images: np.ndarray, tta: bool = False, batch_size: int = 256) -> np.ndarray:
    """Class probabilities from a `.keras` or `.tflite` classifier; TTA averages flips and shifts."""
    from core.runtime import load_classifier

    clf = load_classifier(model_path)
    x = images.astype(np.float32)
    views = [x]
    if tta:
        views.append(x[:, :, ::-1])
        pad = np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)), mode="reflect")
        h, w = x.shape[1:3]
        views += [pad[:, 0:h, 0:w], pad[:, 4:h + 4, 4:w + 4]]
    return np.mean([clf.predict(v, batch_size) for v in views], axis=0)


SKIPPED_SHOWN = 5  # unreadable files named in the output and the JSON (all are counted)


def evaluate_model(model_path, images, labels, label_names, json_path, tta=False, title=None, skipped=()) -> dict:
    """Metrics of the images that could be read; `skipped` (one line per unreadable file) is
    counted and the first few named in the JSON, so figures over part of a folder say so."""
    probs = predict_probs(model_path, images, tta)
    metrics = metrics_from_predictions(labels, probs.argmax(-1), label_names)
    metrics.update(model=model_path, tta=tta, skipped=len(skipped), skipped_files=list(skipped[:SKIPPED_SHOWN]))
    plot_confusion(metrics, os.path.splitext(json_path)[0] + ".png", title or os.path.basename(model_path))
    write_json(json_path, metrics)
    return metrics


def model_io(clf) -> tuple[tuple[int, int, int], int]:
    """((H, W, C) input, number of outputs) of a loaded classifier (.keras or .tflite)."""
    if hasattr(clf, "model"):
        shape, out = clf.model.input_shape, clf.model.output_shape
    else:
        shape, out = tuple(clf.inp["shape"]), tuple(clf.out["shape"])
    return (int(shape[1]), int(shape[2]), int(shape[3])), int(out[-1])


@click.command("evaluate")
@click.option("--model", "model_path", required=True, help=".keras or .tflite classifier.")
@click.option("--data", required=True, help="Kaggle-layout folder (class sub-folders) or FER CSV.")
@click.option("--usage", default=None, help="FER CSV rows (e.g. PublicTest).")
@click.option("--json", "json_path", required=True, help="Where to write the metrics JSON (PNG goes beside it).")
@click.option("--tta", is_flag=True, help="Average over flips and shifts.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Evaluate only the first N images.")
def evaluate(model_path, data, usage, json_path, tta, limit):
    """Evaluate a classifier: accuracy, macro-F1, per-class P/R/F1, confusion matrix."""
    from core.runtime import load_classifier
    from data_pipelines import load_source

    if not os.path.exists(model_path):
        raise UserError(f"model not found: {model_path}")
    out_dir = os.path.dirname(os.path.abspath(json_path))
    if not os.path.isdir(out_dir):
        raise UserError(f"output folder does not exist: {out_dir}")
    check_can_write(out_dir)  # before the model runs over the whole data set
    if os.path.isdir(json_path):
        raise UserError(f"--json {json_path} is a folder; give a file name (e.g. {os.path.join(json_path, 'metrics.json')})")
    clf = load_classifier(model_path)  # a labels file that is not text is a DataError (one line)
    in_shape, n_out = model_io(clf)
    if in_shape[0] != in_shape[1] or in_shape[2] not in (1, 3):
        raise UserError(f"{model_path} takes {in_shape[0]}x{in_shape[1]}x{in_shape[2]} input; evaluate needs a square grey or "
                        "RGB image classifier")
    size, channels = clf.input_size, clf.channels
    ds = load_source(data, size, channels, labeled=True, class_names=clf.labels, usage=usage, limit=limit)
    labels = clf.labels or list(ds.class_names)
    if n_out != len(labels):
        raise UserError(f"{model_path} has {n_out} outputs but the labels are {len(labels)} classes ({', '.join(labels)})")
    if not len(ds):
        raise UserError(f"no readable images in {data}" + (f" ({len(ds.skipped)} unreadable, e.g. {ds.skipped[0]})" if ds.skipped else ""))
    m = evaluate_model(model_path, ds.images, ds.labels, labels, json_path, tta, skipped=ds.skipped)
    click.echo(f"{model_path} on {data}: {m['count']} images")
    if ds.skipped:
        total = len(ds.skipped) + m["count"]
        click.secho(f"warning: skipped {len(ds.skipped)} of {total} files, unreadable ({100 * len(ds.skipped) / total:.0f} %): "
                    f"the figures below are over the other {m['count']}", fg="yellow", err=True)
        for line in ds.skipped[:SKIPPED_SHOWN]:
            click.echo(f"  skipped: {line}", err=True)
        if len(ds.skipped) > SKIPPED_SHOWN:
            click.echo(f"  ... and {len(ds.skipped) - SKIPPED_SHOWN} more (all counted in {json_path})", err=True)
    click.echo(f"accuracy {m['accuracy'] * 100:.2f} %   macro-F1 {m['macro_f1'] * 100:.2f} %")
    click.echo(f"{'class':>10} {'precision':>9} {'recall':>7} {'f1':>6} {'n':>5}")
    for name, pc in m["per_class"].items():
        click.echo(f"{name:>10} {pc['precision']:9.3f} {pc['recall']:7.3f} {pc['f1']:6.3f} {pc['support']:5d}")
    click.echo(f"wrote {json_path} and {os.path.splitext(json_path)[0]}.png")
COMMANDS = [evaluate]
