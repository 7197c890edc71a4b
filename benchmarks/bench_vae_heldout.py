"""Held-out reconstruction of a character + emoji VAE run, per source: the images its `--val-split`
held out (the same seeded split `python -m train vae` made, rebuilt from the run's options.json),
encoded to z_mean and decoded. Prints MSE and PSNR for each source and all together, and writes a
figure: for each source, a row of held-out images over a row of their reconstructions.

    .venv/bin/python benchmarks/bench_vae_heldout.py runs/00008-vae-morph-64-anime_faces_all \
        --png docs/samples/vae-morph64-heldout.png --json benchmarks/results/vae_morph64_heldout.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from types import SimpleNamespace

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402


def heldout_by_source(options: dict) -> list[tuple[str, object]]:
    """[(data spec, ImageSet of its held-out images)], split exactly as train/vae.py splits."""
    from data_pipelines import load_source
    from train.vae import split_sources

    sets = [load_source(spec, options["image_size"], 3, limit=options["limit"], on_error="skip") for spec in options["data"]]
    return [(spec, held) for spec, (_, held) in zip(options["data"], split_sources(sets, options["val_split"], options["seed"]))]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", help="a VAE run directory trained with --val-split")
    ap.add_argument("--png", help="figure: held-out images over their reconstructions, one pair of rows per source")
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--columns", type=int, default=10, help="images per source in the figure")
    args = ap.parse_args(argv)

    import keras

    with open(os.path.join(args.run, "options.json")) as f:
        options = json.load(f)
    if not options.get("val_split"):
        sys.exit(f"error: {args.run} held nothing out (trained without --val-split)")
    from train.vae import psnr_db, reconstruct, reconstruction_figures

    vae = SimpleNamespace(**{part: keras.models.load_model(os.path.join(args.run, f"{part}.keras"), compile=False)
                             for part in ("encoder", "decoder")})
    result = {"run": args.run, "val_split": options["val_split"], "sources": {}}
    rows = []
    for spec, held in heldout_by_source(options):
        z_mean, z_log_var, r = reconstruct(vae, held.images)
        f = result["sources"][spec] = {"images": len(held), **reconstruction_figures(held.images, z_mean, z_log_var, r)}
        print(f"{spec}: {len(held)} held-out images, reconstruction MSE {f['mse']:.5f}, PSNR {f['psnr_db']:.2f} dB")
        k = min(args.columns, len(held))
        rows += [np.concatenate(list(held.images[:k] / 255.0), 1), np.concatenate(list(r[:k]), 1)]
    n = sum(s["images"] for s in result["sources"].values())
    mse = sum(s["mse"] * s["images"] for s in result["sources"].values()) / n  # every image has the same pixels
    result |= {"images": n, "mse": mse, "psnr_db": psnr_db(mse)}
    print(f"all: {n} held-out images, reconstruction MSE {mse:.5f}, PSNR {psnr_db(mse):.2f} dB")
    if args.png:
        from PIL import Image

        width = max(row.shape[1] for row in rows)
        rows = [np.pad(row, ((0, 0), (0, width - row.shape[1]), (0, 0)), constant_values=1.0) for row in rows]
        img = (np.clip(np.concatenate(rows, 0), 0, 1) * 255).round().astype(np.uint8)
        Image.fromarray(img).resize((img.shape[1] * 2, img.shape[0] * 2), Image.NEAREST).save(args.png)
        print(f"wrote {args.png}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
