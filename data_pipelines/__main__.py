"""python -m data_pipelines <tool>: TFRecords and the dataset tools (reference 000's pipeline).

    tfrecords SOURCE --out DIR --shards N   any --data source -> sharded TFRecords + spec.json
    crop-voc IMAGES ANNOTATIONS --out DIR   crops of LabelImg / Pascal-VOC boxes, OUT/<label>/
    crop-faces SRC --out DIR                automatic face crops (OpenCV Haar cascade)
    dedup SRC [--threshold N] [--delete]    near-duplicate images by perceptual dHash
    square SRC --out DIR --size N           every image to N x N (pad or crop)
    emoji-sets [--install]                  the built-in emoji sets, their licences, what is installed
    npz SOURCE... --val VAL --out FILE.npz  a labelled set as one compressed .npz (training without TensorFlow)
    tag SOURCE --model M --out TAGS.json    the expression model's seven probabilities for every face image

Bad input ends in one line on stderr and exit status 2; output folders are built under a
temporary name and appear only when complete.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from core.cli import filter_native_stderr  # noqa: E402

if __name__ == "__main__":
    filter_native_stderr()  # before TensorFlow loads: its C++ start-up lines would bury one-line errors

import click  # noqa: E402

from core.cli import UserError, run_cli  # noqa: E402

ON_ERROR = click.option("--on-error", type=click.Choice(["skip", "fail"]), default="skip", show_default=True,
                        help="An unreadable image: skip it (listed and counted) or stop.")


def _err(msg):
    click.echo(msg, err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli():
    """Emotekit dataset tools."""


@cli.command("tfrecords")
@click.argument("source")
@click.option("--out", required=True, help="Output folder (local or gs://bucket/path); must be new or empty.")
@click.option("--shards", type=click.IntRange(min=1), default=4, show_default=True, help="Number of TFRecord files.")
@click.option("--image-size", type=click.IntRange(min=1), default=64, show_default=True, help="Images are stored size x size.")
@click.option("--channels", type=click.Choice([1, 3]), default=3, show_default=True, help="1 (grey) or 3 (RGB).")
@click.option("--labeled", is_flag=True, help="Store class labels (sub-folders, FER CSV, TFDS).")
@click.option("--usage", default=None, help="FER CSV / TFDS rows: Training, PublicTest or PrivateTest.")
@click.option("--limit", type=int, default=None, help="Only the first N examples.")
@ON_ERROR
def tfrecords_cmd(source, out, shards, image_size, channels, labeled, usage, limit, on_error):
    """Writes SOURCE (any --data value: folder, FER CSV, emoji:twemoji, tfds:fer2013) as TFRecords."""
    from data_pipelines import load_source
    from data_pipelines.tfrecords import is_remote, write_tfrecords

    if not is_remote(out) and os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
        raise UserError(f"output folder is not empty: {out}")  # before reading the source (minutes, for a big one)
    data = load_source(source, image_size, channels, labeled=labeled, usage=usage, limit=limit, on_error=on_error)
    for line in data.skipped:
        _err(f"skipped: {line}")
    spec = write_tfrecords(data, out, shards, source=source)
    click.echo(f"wrote {spec['count']} examples ({'x'.join(map(str, spec['image_shape']))}"
               f"{', ' + str(len(spec['labels'])) + ' classes' if spec['labeled'] else ''}) in {len(spec['shards'])} shard(s)"
               f" to {out}" + (f"; skipped {len(data.skipped)} unreadable file(s)" if data.skipped else ""))


@cli.command("crop-voc")
@click.argument("images_dir")
@click.argument("annotations_dir")
@click.option("--out", required=True, help="Output folder (new or empty): OUT/<label>/<picture>_<k>.png.")
@click.option("--size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--pad", is_flag=True, help="Pad each box to a square with white instead of centre-cropping it.")
def crop_voc_cmd(images_dir, annotations_dir, out, size, pad):
    """Crops the LabelImg / Pascal-VOC boxes of ANNOTATIONS_DIR/*.xml out of the pictures in IMAGES_DIR."""
    from data_pipelines.voc import crop_voc

    r = crop_voc(images_dir, annotations_dir, out, size=size, pad=pad)
    per = ", ".join(f"{k} {v}" for k, v in sorted(r["per_class"].items()))
    click.echo(f"wrote {r['crops']} crops from {r['annotations']} annotations to {out} ({per})")


@cli.command("crop-faces")
@click.argument("src")
@click.option("--out", required=True, help="Output folder (new or empty).")
@click.option("--size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--margin", type=click.FloatRange(min=0), default=0.2, show_default=True, help="Box widened by this fraction per side.")
@ON_ERROR
def crop_faces_cmd(src, out, size, margin, on_error):
    """Finds faces in the pictures under SRC (OpenCV Haar cascade) and writes square crops."""
    from data_pipelines.faces import crop_faces

    r = crop_faces(src, out, size=size, margin=margin, on_error=on_error, log=_err)
    click.echo(f"wrote {r['faces']} face crops from {r['pictures']} pictures to {out}; "
               f"{len(r['no_face'])} without a face, {r['skipped']} unreadable")


@cli.command("dedup")
@click.argument("src")
@click.option("--threshold", type=click.IntRange(0, 64), default=4, show_default=True,
              help="Max Hamming distance of the 64-bit dHash for two images to count as duplicates.")
@click.option("--delete", "action", flag_value="delete",
              help="Delete the duplicates (keeps the first real file of each group; links to it are duplicates).")
@click.option("--list", "action", flag_value="list", default=True, help="Only list them (the default).")
@ON_ERROR
def dedup_cmd(src, threshold, action, on_error):
    """Finds near-duplicate images under SRC by perceptual difference hash (dHash). A link and the file
    it names are one picture: the real file is kept, the link listed as its duplicate."""
    from data_pipelines.images import list_images
    from data_pipelines.imagetools import find_duplicates, report_duplicates

    special: list = []
    paths = list_images(src, log=_err, special=special)
    groups, skipped = find_duplicates(paths, threshold, on_error=on_error, log=_err)
    n_dup = sum(len(g) - 1 for g in groups)
    report_duplicates(groups, delete=action == "delete", log=click.echo)
    click.echo(f"{'deleted' if action == 'delete' else 'found'} {n_dup} duplicate(s) in {len(groups)} group(s) among {len(paths)} images"
               + (f"; skipped {len(skipped)} unreadable" if skipped else "")
               + (f", {len(special)} not regular files" if special else ""))


@cli.command("square")
@click.argument("src")
@click.option("--out", required=True, help="Output folder (new or empty); same relative paths, .png.")
@click.option("--size", type=click.IntRange(min=1), required=True)
@click.option("--pad", "mode", flag_value="pad", default=True, help="Letterbox on white (the default).")
@click.option("--crop", "mode", flag_value="crop", help="Centre-crop instead.")
@ON_ERROR
def square_cmd(src, out, size, mode, on_error):
    """Resizes every image under SRC to SIZE x SIZE RGB PNGs, padding or cropping to a square."""
    from data_pipelines.imagetools import square_images

    r = square_images(src, out, size, mode, on_error=on_error, log=_err)
    click.echo(f"wrote {r['written']} {size}x{size} images to {out}" + (f"; skipped {r['skipped']} unreadable" if r["skipped"] else "")
               + (f"; skipped {r['not_regular']} not regular files" if r["not_regular"] else ""))


@cli.command("npz")
@click.argument("sources", nargs=-1, required=True)
@click.option("--val", "val_sources", multiple=True, help="Validation data (repeatable), stored as x_val / y_val.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Output .npz file.")
@click.option("--image-size", type=click.IntRange(min=8), default=48, show_default=True)
@click.option("--channels", type=click.Choice([1, 3]), default=1, show_default=True, help="1 (grey) or 3 (RGB).")
@click.option("--usage", default=None, help="FER CSV / TFDS rows for training (default Training); --val takes PublicTest.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N examples of each source.")
@click.option("--filter", "filter_", type=click.Choice(["up", "none"]), default="up", show_default=True,
              help="Store rows as differences to the row above (about a fifth smaller, exact) or as pixels.")
@click.option("--compression", type=click.Choice(["deflate", "lzma"]), default="deflate", show_default=True,
              help="lzma: about an eighth smaller, minutes slower to write (for a size limit on a transfer).")
@ON_ERROR
def npz_cmd(sources, val_sources, out, image_size, channels, usage, limit, filter_, compression, on_error):
    """Writes labelled SOURCES (FER folders, a FER CSV, tfds:fer2013, ...) as one compressed .npz, for
    `python -m train.npz_teacher` on a machine without TensorFlow (Keras 3 on JAX)."""
    from core.npz import write_npz
    from data_pipelines import load_sources

    if not out.endswith(".npz"):
        raise UserError(f"--out must end in .npz, got {out}")
    csv = len(sources) == 1 and sources[0].lower().endswith(".csv")
    train = load_sources(sources, image_size, channels, labeled=True, usage=usage or ("Training" if csv else None),
                         limit=limit, on_error=on_error)
    val = None
    if val_sources:
        val_csv = all(v.lower().endswith(".csv") for v in val_sources)
        val = load_sources(val_sources, image_size, channels, labeled=True, class_names=train.class_names,
                           usage="PublicTest" if val_csv else None, limit=limit, on_error=on_error)
    for line in train.skipped + (val.skipped if val else []):
        _err(f"skipped: {line}")
    write_npz(out, train.images, train.labels, train.class_names, val.images if val else None, val.labels if val else None,
              source=" ".join(sources) + (" --val " + " ".join(val_sources) if val_sources else ""), filter=filter_,
              compression=compression)
    click.echo(f"wrote {out}: {len(train)} training images" + (f", {len(val)} validation" if val else "")
               + f", {len(train.class_names)} classes, {os.path.getsize(out) / 2**20:.1f} MiB")


@cli.command("emoji-sets")
@click.option("--install", is_flag=True, help="Install the npm sets (npm ci, render the SVG ones); skipped when installed.")
@click.option("--force", is_flag=True, help="With --install: install again even if installed.")
@click.option("--quiet", is_flag=True, help="With --install: print nothing when already installed, and no table.")
def emoji_sets_cmd(install, force, quiet):
    """Lists the emoji sets of `--data emoji:<set>` (and emoji:all): installed or not, face count, image licence."""
    from data_pipelines import emoji_sets as es

    if force and not install:
        raise UserError("--force goes with --install")
    if install:
        r = es.install(force=force, log=_err)
        if r["done"]:
            click.echo("installed the emoji sets: " + ", ".join(f"{k} {v} images" for k, v in r["installed"].items())
                       + f" ({es.folder_size(os.path.join(es.emoji_dir(), 'node_modules')) / 1e6:.0f} MB in {es.emoji_dir()}/node_modules)")
        if quiet:
            return
    installed = es.installed_sets()
    click.echo(f"{'set':<9} {'faces':>5} {'all':>5}  {'image licence':<13} package")
    for name, s in es.EMOJI_SETS.items():
        if name in installed:
            faces, every = len(es.set_entries(name, "faces")), len(es.set_entries(name, "all"))
        else:
            faces = every = "-"
        click.echo(f"{name:<9} {faces:>5} {every:>5}  {s.licence:<13} {s.package}{'' if name in installed else '  (not installed)'}")
    missing = [n for n in es.EMOJI_SETS if n not in installed]
    if missing:
        click.echo(f"not installed: {', '.join(missing)}; {es.INSTALL_HINT}")


@cli.command("tag")
@click.argument("source")
@click.option("--model", required=True, type=click.Path(dir_okay=False),
              help="The expression model (.tflite or .keras) whose probabilities tag the images.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The tags file (.json) to write.")
@click.option("--sheets", type=click.Path(file_okay=False), default=None,
              help="Also write one PNG a class here: the images the model rates most that class (tags-<class>.png).")
@click.option("--per-class", type=click.IntRange(1, 256), default=16, show_default=True, help="Images on each sheet.")
@click.option("--image-size", type=click.IntRange(16, 512), default=64, show_default=True, help="Images are read at this size.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N images.")
@ON_ERROR
def tag_cmd(source, model, out, sheets, per_class, image_size, limit, on_error):
    """Tags every image of SOURCE (a folder or emoji:<set>, each image one whole face) with the seven
    expression probabilities of MODEL, through the model's crop contract; writes them with the model's
    sha256 and this command to OUT."""
    import sys

    from core.files import check_can_write
    from core.images import save_png
    from core.runtime import load_classifier
    from data_pipelines import load_source
    from data_pipelines import tags as T

    if not out.lower().endswith(".json"):
        raise UserError(f"--out must be a .json file, got {out}")
    check_can_write(os.path.dirname(os.path.abspath(out)))
    classifier = load_classifier(model)
    data = load_source(source, image_size, 3, limit=limit, on_error=on_error)
    for line in data.skipped:
        _err(f"skipped: {line}")
    probs = T.tag_images(classifier, data.images)
    names = data.names or [str(i) for i in range(len(data))]
    doc = T.make_tags(names, probs, model_path=model, source=source, image_size=image_size,
                      command="python -m data_pipelines " + " ".join(sys.argv[1:]), skipped=len(data.skipped))
    T.save_tags(out, doc)
    click.echo(f"wrote {out}: {len(names)} images, top class " + ", ".join(f"{k} {v}" for k, v in doc["counts"].items()))
    if sheets:
        os.makedirs(sheets, exist_ok=True)
        for name, sheet in T.class_sheets(data.images, probs, per_class=per_class).items():
            save_png(os.path.join(sheets, f"tags-{name}.png"), sheet, scale=2)
        click.echo(f"wrote {len(doc['labels'])} sheets to {sheets}")


def stop_on_signals():
    """Ctrl+C, SIGTERM and SIGHUP end a tool in one line, status 128 + the signal's number, through the
    `finally` blocks that remove an output folder still under its temporary name (staged_dir)."""
    import signal

    def stop(signum, frame):
        signal.signal(signum, signal.SIG_IGN)  # a second signal does not cut the clean-up short
        _err(f"interrupted ({signal.Signals(signum).name})")
        raise SystemExit(128 + signum)

    for sig in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None:
            signal.signal(sig, stop)


if __name__ == "__main__":
    stop_on_signals()
    run_cli(cli, "python -m data_pipelines")
