"""The figures of a finished VAE run (reference 001's): loss.png, latent_distribution.png,
reconstructions.png and new_faces.png."""

from __future__ import annotations

import csv
import math
import os

import numpy as np

from core.files import atomic_path
from core.images import grid, save_png

HIST_DIMS = 50


def write_plots(run_dir, encoder, decoder, images, seed=0):
    """loss.png, latent_distribution.png, reconstructions.png, new_faces.png (reference 001's figures)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from keras_models.vae.latent import decode, encode

    def save(fig, name):
        with atomic_path(os.path.join(run_dir, name), ".png") as tmp:
            fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
        plt.close(fig)

    save(loss_figure(plt, os.path.join(run_dir, "log.csv")), "loss.png")

    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(images), size=min(len(images), 2000), replace=False))
    z = encode(encoder, images[pick])
    save(latent_figure(plt, z), "latent_distribution.png")

    # Reconstructions: originals (top) and decoded z_mean (bottom), spread over all sources.
    k = min(10, len(images))
    idx = np.linspace(0, len(images) - 1, k).astype(int)
    recon = decode(decoder, encode(encoder, images[idx]))
    pairs = np.concatenate([images[idx], recon])
    save_png(os.path.join(run_dir, "reconstructions.png"), grid(pairs, cols=k, rows=2), scale=2)

    new = decode(decoder, rng.standard_normal((30, z.shape[1])).astype(np.float32))
    save_png(os.path.join(run_dir, "new_faces.png"), grid(new, cols=10, rows=3), scale=2)


def loss_figure(plt, log_path):
    """The total, reconstruction and KL loss per epoch, from log.csv (which covers resumed runs); with
    held-out images (--val-split), their KL beside the training KL and their PSNR in a fourth panel."""
    from matplotlib.ticker import MaxNLocator

    rows = []
    if os.path.exists(log_path):
        with open(log_path, newline="") as f:
            rows = list(csv.DictReader(f))

    def series(key):
        return [(int(r["epoch"]) + 1, float(r[key])) for r in rows if r.get(key) not in (None, "", "NA")]

    # (title, [(log.csv column, legend label or None)]) per panel
    heldout = bool(series("val_psnr"))
    panels = [("total loss", [("total_loss", None)]), ("reconstruction loss", [("reconstruction_loss", None)]),
              ("KL", [("kl_loss", "training"), ("val_kl", "held out")] if heldout else [("kl_loss", None)])]
    if heldout:
        panels.append(("held-out reconstruction PSNR (dB)", [("val_psnr", None)]))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.4 * len(panels), 3.5))
    for ax, (title, lines) in zip(axes, panels):
        for key, label in lines:
            vals = series(key)
            if vals:
                ax.plot(*zip(*vals), marker="o" if len(vals) < 30 else None, label=label)
        if len(lines) > 1:
            ax.legend()
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    return fig


def latent_figure(plt, z):
    """Histograms of the first HIST_DIMS dimensions of z_mean against N(0, 1)."""
    dims = min(HIST_DIMS, z.shape[1])
    cols = 10
    r = math.ceil(dims / cols)
    fig, axes = plt.subplots(r, cols, figsize=(cols * 1.6, r * 1.4), squeeze=False)
    xs = np.linspace(-3, 3, 100)
    pdf = np.exp(-0.5 * xs**2) / np.sqrt(2 * np.pi)
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= dims:
            ax.axis("off")
            continue
        ax.hist(z[:, i], bins=20, range=(-3, 3), density=True, color="tab:blue", alpha=0.7)
        ax.plot(xs, pdf, color="tab:orange", lw=1)
        ax.set_title(str(i), fontsize=7)
    fig.suptitle(f"z_mean over {len(z)} images (first {dims} dims) vs N(0,1)")
    return fig
