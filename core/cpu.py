"""What this CPU is: the x86 vector extensions that decide TensorFlow's oneDNN kernels.

The same code takes other kernels on an AVX2 and on an AVX-512 machine (other rounding, other
int8 speed, and a training crash on one), so figures and failures name the CPU they came from.
"""

from __future__ import annotations

import os
import platform

FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")


def cpu_flags(path: str = "/proc/cpuinfo") -> set[str]:
    """The flags of the first processor in /proc/cpuinfo (empty where there is none)."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_model(path: str = "/proc/cpuinfo") -> str:
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_kind(flags: set[str] | None = None) -> str:
    """'AVX-512' (with VNNI/BF16 named), 'AVX2' or the machine name: the kind of kernels oneDNN picks."""
    flags = cpu_flags() if flags is None else flags
    if "avx512f" in flags:
        extra = [n for f, n in (("avx512_vnni", "VNNI"), ("avx512_bf16", "BF16"), ("amx_tile", "AMX")) if f in flags]
        return "AVX-512" + (f" ({', '.join(extra)})" if extra else "")
    if "avx2" in flags:
        return "AVX2"
    return platform.machine()


def describe() -> str:
    """One line: the model, the kind and the core count, for logs, benchmarks and CI."""
    flags = cpu_flags()
    have = [f for f in FLAGS if f in flags]
    return f"{cpu_model()}; {cpu_kind(flags)}; flags {' '.join(have) or 'none of ' + '/'.join(FLAGS)}; {os.cpu_count()} cores"


def onednn_enabled() -> bool:
    """Whether TensorFlow will use oneDNN (its default on x86-64 unless TF_ENABLE_ONEDNN_OPTS=0)."""
    return os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1").strip().lower() not in ("0", "false")


# TensorFlow 2.21's oneDNN aborts (segfault, "double free", malloc assertion) while training some nets
# whose convolutions have fewer than 16 channels on AVX-512 machines, e.g. EmoNet with widths (8, 16) at
# 48x48 (8 or 12 channels in the first stage); 16 channels and more train fine, and
# TF_ENABLE_ONEDNN_OPTS=0 avoids it. Image-output convolutions (1 to 4 channels: the DCGAN's and
# StyleGAN's to-RGB, the VAE's output) train fine there and are not counted.
MIN_SAFE_CHANNELS = 16
IMAGE_CHANNELS = 4


def narrow_convolutions(model) -> list[str]:
    """Names of the convolution layers (nested models included) with more than IMAGE_CHANNELS and
    fewer than MIN_SAFE_CHANNELS filters."""
    found = []
    for layer in model._flatten_layers(include_self=False, recursive=True):
        filters = getattr(layer, "filters", None)
        if isinstance(filters, int) and "Conv" in type(layer).__name__ and IMAGE_CHANNELS < filters < MIN_SAFE_CHANNELS:
            found.append(f"{layer.name} ({filters})")
    return found


def onednn_training_warning(model, flags: set[str] | None = None) -> str | None:
    """One line when training `model` may crash TensorFlow's oneDNN on this CPU, else None."""
    flags = cpu_flags() if flags is None else flags
    if "avx512f" not in flags or not onednn_enabled():
        return None
    narrow = narrow_convolutions(model)
    if not narrow:
        return None
    more = f" and {len(narrow) - 3} more" if len(narrow) > 3 else ""
    return (f"warning: convolutions with fewer than {MIN_SAFE_CHANNELS} channels ({', '.join(narrow[:3])}{more}) can crash "
            f"TensorFlow's oneDNN in training on this AVX-512 CPU; if it aborts, rerun with TF_ENABLE_ONEDNN_OPTS=0 "
            f"or use {MIN_SAFE_CHANNELS}+ channels")


if __name__ == "__main__":
    print(describe())
