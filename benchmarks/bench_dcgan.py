"""Training images/s of the PyTorch-tutorial DCGAN (64x64, nz 100, batch 128 by default):
Keras (eager tf.function and XLA jit_compile) against PyTorch on the same CPU, in one run.

Each measurement runs in its own fresh Python process (one after the other, in one invocation):
PyTorch's OpenMP worker threads keep spinning after its steps and slowed a TensorFlow measurement
in the same process by half.

Same network, same step (D on a real and a fake batch, then G through the updated D on the same
fakes), same BCE loss and Adam(2e-4, 0.5), random data, no augmentation. Needs the [bench]
extra (torch==2.13.0 CPU).

XLA helps on one CPU kind and hurts on another (issue 16), so every figure names the CPU it came
from (core.cpu), and the `keras_auto` row is what `python -m train dcgan --jit-compile auto` would
pick here: its short start-of-run trial (train.jit.time_modes) in its own process, reported with
the images/s this benchmark measured for the mode it chose.

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
KINDS = ("torch", "keras", "keras_xla", "keras_auto")


def _keras_gan(size, jit):
    import keras

    from keras_models.dcgan import DCGAN, get_preset

    p = get_preset("pytorch-tutorial")
    g, d = p.build(size)
    gan = DCGAN(d, g, p.nz, augment="", seed=0)
    gan.compile(keras.optimizers.Adam(p.lr, beta_1=0.5), keras.optimizers.Adam(p.lr, beta_1=0.5), keras.losses.BinaryCrossentropy(),
                jit_compile=jit)
    return gan


def bench_auto(size, batch):
    """--jit-compile auto's trial on this model: {"choice": "on"|"off", "off": ips, "on": ips}."""
    from train.jit import time_modes

    ips, _ = time_modes(lambda jit: _keras_gan(size, jit), (batch, size, size, 3))
    return dict(ips, choice="on" if ips["on"] is not None and ips["on"] > ips["off"] else "off")


def bench_keras(size, batch, steps, warmup, jit):
    import numpy as np

    gan = _keras_gan(size, jit)
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
    if kind == "keras_auto":
        return bench_auto(a.size, a.batch_size)
    return bench_keras(a.size, a.batch_size, a.steps, a.warmup, kind == "keras_xla")


def main():
    from core.cpu import cpu_kind, describe

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--torch-threads", type=int, default=0, help="0 = torch's default")
    ap.add_argument("--no-auto", action="store_true", help="Skip the keras_auto row (--jit-compile auto's trial).")
    ap.add_argument("--json", default=None, help="Also write the results here.")
    ap.add_argument("--only", choices=KINDS, default=None, help=argparse.SUPPRESS)  # one measurement, in this process
    a = ap.parse_args()
    if a.only:
        print(f"RESULT {json.dumps(_measure(a.only, a))}")
        return
    cpu, kind_of_cpu = describe(), cpu_kind()
    print(f"CPU: {cpu}")
    res = {"size": a.size, "batch": a.batch_size, "steps": a.steps, "cpus": os.cpu_count(), "cpu": cpu, "cpu_kind": kind_of_cpu}
    auto = None
    for kind in KINDS if not a.no_auto else KINDS[:-1]:
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), *sys.argv[1:], "--only", kind], capture_output=True, text=True)
        lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
        if proc.returncode or not lines:
            tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
            print(f"{kind}: failed ({tail[0]})", file=sys.stderr)
            continue
        value = json.loads(lines[-1][len("RESULT "):])
        if kind == "keras_auto":
            auto = value
        else:
            res[f"{kind}_images_per_s"] = float(value)
    if auto is not None:  # the choice, its trial's figures, and this benchmark's figure for the chosen mode
        res["keras_auto_choice"] = auto["choice"]
        res["keras_auto_trial_images_per_s"] = {"off": auto["off"], "on": auto["on"]}
        chosen = res.get("keras_xla_images_per_s" if auto["choice"] == "on" else "keras_images_per_s")
        if chosen is not None:
            res["keras_auto_images_per_s"] = chosen
    for kind in ("keras", "keras_xla", "keras_auto"):
        if "torch_images_per_s" in res and f"{kind}_images_per_s" in res:
            res[f"{kind}_over_torch"] = res[f"{kind}_images_per_s"] / res["torch_images_per_s"]
    rows = []
    for kind, label in (("torch", "PyTorch"), ("keras", "Keras, plain tf.function"), ("keras_xla", "Keras, XLA"),
                        ("keras_auto", f"Keras, --jit-compile auto (chose XLA {res.get('keras_auto_choice')})")):
        if f"{kind}_images_per_s" in res:
            rows.append({"kind": kind, "label": label, "images_per_s": res[f"{kind}_images_per_s"],
                         "over_torch": res.get(f"{kind}_over_torch"), "cpu": kind_of_cpu})
    res["rows"] = rows
    print(f"\n{a.size}x{a.size}, batch {a.batch_size}, {a.steps} steps\n| | images/s | vs PyTorch | CPU |\n|---|---:|---:|---|")
    for r in rows:
        vs = f"{r['over_torch']:.2f}" if r["over_torch"] is not None else "-"
        print(f"| {r['label']} | {r['images_per_s']:.1f} | {vs} | {r['cpu']} |")
    if auto is not None:
        trial = ", ".join(f"{'XLA' if m == 'on' else 'plain'} {v:.1f}"
                          for m, v in res["keras_auto_trial_images_per_s"].items() if v is not None)
        print(f"auto's own trial (2 warm-up + 3 timed steps each): {trial} images/s on {kind_of_cpu}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
