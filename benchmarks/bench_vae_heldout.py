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

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402


def heldout_by_source(options: dict) -> list[tuple[str, object]]:
    """[(data spec, ImageSet of its held-out images)], split exactly as train/vae.py splits."""
    from data_pipelines import load_source
    from train.vae import _split

    out = []
    for i, spec in enumerate(options["data"]):
        s = load_source(spec, options["image_size"], 3, limit=options["limit"], on_error="skip")
        out.append((spec, _split(s, options["val_split"], options["seed"] + i)[1]))
    return out


def psnr(mse: float) -> float:
    return float(10 * np.log10(1.0 / max(mse, 1e-12)))


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
    enc = keras.models.load_model(os.path.join(args.run, "encoder.keras"), compile=False)
    dec = keras.models.load_model(os.path.join(args.run, "decoder.keras"), compile=False)
    result = {"run": args.run, "val_split": options["val_split"], "sources": {}}
    rows, sq_sum, pixels = [], 0.0, 0
    for spec, held in heldout_by_source(options):
        x = np.asarray(held.images, np.float32)
        z, _ = enc.predict(x, batch_size=64, verbose=0)
        r = dec.predict(z, batch_size=64, verbose=0).astype(np.float64)
        err = (r - x / 255.0) ** 2
        sq_sum, pixels = sq_sum + float(err.sum()), pixels + err.size
        mse = float(err.mean())
        result["sources"][spec] = {"images": len(x), "mse": mse, "psnr_db": psnr(mse)}
        print(f"{spec}: {len(x)} held-out images, reconstruction MSE {mse:.5f}, PSNR {psnr(mse):.2f} dB")
        k = min(args.columns, len(x))
        rows += [np.concatenate(list(x[:k] / 255.0), 1), np.concatenate(list(r[:k]), 1)]
    mse = sq_sum / pixels
    result |= {"images": sum(s["images"] for s in result["sources"].values()), "mse": mse, "psnr_db": psnr(mse)}
    print(f"all: {result['images']} held-out images, reconstruction MSE {mse:.5f}, PSNR {psnr(mse):.2f} dB")
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
