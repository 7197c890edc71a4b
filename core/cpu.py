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


if __name__ == "__main__":
    print(describe())
