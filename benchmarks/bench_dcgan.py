"""Training images/s of the PyTorch-tutorial DCGAN (64x64, nz 100, batch 128 by default):
Keras (eager tf.function and XLA jit_compile) against PyTorch on the same CPU, in one run.

Each measurement runs in its own fresh Python process (one after the other, in one invocation):
PyTorch's OpenMP worker threads keep spinning after its steps and slowed a TensorFlow measurement
in the same process by half.

Same network, same step (D on a real and a fake batch, then G through the updated D on the same
fakes), same BCE loss and Adam(2e-4, 0.5), random data, no augmentation. Needs the [bench]
extra (torch==2.13.0 CPU).

    .venv/bin/python benchmarks/bench_dcgan.py --size 64 --batch-size 128 --steps 10 --json benchmarks/results/dcgan_speed_64.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KINDS = ("torch", "keras", "keras_xla")


def bench_keras(size, batch, steps, warmup, jit):
    import keras
    import numpy as np

    from keras_models.dcgan import DCGAN, get_preset

    p = get_preset("pytorch-tutorial")
    g, d = p.build(size)
    gan = DCGAN(d, g, p.nz, augment="", seed=0)
    gan.compile(keras.optimizers.Adam(p.lr, beta_1=0.5), keras.optimizers.Adam(p.lr, beta_1=0.5), keras.losses.BinaryCrossentropy(),
                jit_compile=jit)
    x = np.random.default_rng(0).uniform(-1, 1, (batch, size, size, 3)).astype("float32")
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensors(x).repeat()
    gan.fit(ds, steps_per_epoch=warmup, epochs=1, verbose=0)
    t = time.perf_counter()
    gan.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0)
    return batch * steps / (time.perf_counter() - t)


def bench_torch(size, batch, steps, warmup, threads):
    import math

    import torch
    from torch import nn

    torch.manual_seed(0)
    if threads:
        torch.set_num_threads(threads)
    nz, n = 100, int(math.log2(size)) - 2
    gl = []
    for i in range(n):
        cin, cout = (nz if i == 0 else 64 * 2 ** (n - i)), 64 * 2 ** (n - 1 - i)
        gl += [nn.ConvTranspose2d(cin, cout, 4, 1 if i == 0 else 2, 0 if i == 0 else 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)]
    netG = nn.Sequential(*gl, nn.ConvTranspose2d(64, 3, 4, 2, 1, bias=False), nn.Tanh())
    dl = []
    for i in range(n):
        cin, cout = (3 if i == 0 else 64 * 2 ** (i - 1)), 64 * 2**i
        dl += [nn.Conv2d(cin, cout, 4, 2, 1, bias=False)] + ([nn.BatchNorm2d(cout)] if i else []) + [nn.LeakyReLU(0.2, True)]
    netD = nn.Sequential(*dl, nn.Conv2d(64 * 2 ** (n - 1), 1, 4, 1, 0, bias=False), nn.Sigmoid())
    crit = nn.BCELoss()
    oD = torch.optim.Adam(netD.parameters(), 2e-4, betas=(0.5, 0.999))
    oG = torch.optim.Adam(netG.parameters(), 2e-4, betas=(0.5, 0.999))
    real = torch.rand(batch, 3, size, size) * 2 - 1

    def step():
        netD.zero_grad()
        out = netD(real).view(-1)
        errD_real = crit(out, torch.ones_like(out))
        errD_real.backward()
        fake = netG(torch.randn(batch, nz, 1, 1))
        out = netD(fake.detach()).view(-1)
        errD_fake = crit(out, torch.zeros_like(out))
        errD_fake.backward()
        oD.step()
        netG.zero_grad()
        out = netD(fake).view(-1)
        errG = crit(out, torch.ones_like(out))
        errG.backward()
        oG.step()

    for _ in range(warmup):
        step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * steps / (time.perf_counter() - t)


def _measure(kind, a):
    if kind == "torch":
        return bench_torch(a.size, a.batch_size, a.steps, a.warmup, a.torch_threads)
    return bench_keras(a.size, a.batch_size, a.steps, a.warmup, kind == "keras_xla")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--torch-threads", type=int, default=0, help="0 = torch's default")
    ap.add_argument("--json", default=None, help="Also write the results here.")
    ap.add_argument("--only", choices=KINDS, default=None, help=argparse.SUPPRESS)  # one measurement, in this process
    a = ap.parse_args()
    if a.only:
        print(f"RESULT {_measure(a.only, a)!r}")
        return
    res = {"size": a.size, "batch": a.batch_size, "steps": a.steps, "cpus": os.cpu_count()}
    for kind in KINDS:
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), *sys.argv[1:], "--only", kind], capture_output=True, text=True)
        lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
        if proc.returncode or not lines:
            tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
            print(f"{kind}: failed ({tail[0]})", file=sys.stderr)
            continue
        res[f"{kind}_images_per_s"] = float(lines[-1].split()[1])
    for kind in ("keras", "keras_xla"):
        if "torch_images_per_s" in res and f"{kind}_images_per_s" in res:
            res[f"{kind}_over_torch"] = res[f"{kind}_images_per_s"] / res["torch_images_per_s"]
    for k, v in res.items():
        print(f"{k:>24}: {v:.3g}" if isinstance(v, float) else f"{k:>24}: {v}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
