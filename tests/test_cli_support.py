"""The commands' shared error path: a user error is one line on stderr, even after TensorFlow's
native start-up lines (which TF_CPP_MIN_LOG_LEVEL does not silence) have been printed."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}

NOISY = textwrap.dedent(r'''
    import os, sys
    from train.cli_support import filter_native_stderr
    print("filter", filter_native_stderr(), flush=True)
    os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
    os.write(2, b"I0000 00:00:1795575726.584179   15065 cudart_stub.cc:31] Could not find cuda drivers\n")
    os.write(2, b"E0000 00:00:1795574849.075873    9434 cuda_platform.cc:52] failed call to cuInit: INTERNAL\n")
    os.write(2, b"E0000 00:00:1795574849.075873    9434 some_kernel.cc:7] a real native error\n")
    print("a Python warning", file=sys.stderr)
    raise RuntimeError("boom")
''')


def _python(code, **env):
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=dict(ENV, **env), capture_output=True, text=True, timeout=120)


def test_native_noise_is_dropped_and_the_rest_passes():
    proc = _python(NOISY)
    assert proc.stdout.strip() == "filter True"
    assert "absl::InitializeLog" not in proc.stderr and "cudart_stub" not in proc.stderr and "cuInit" not in proc.stderr
    assert "a real native error" in proc.stderr and "a Python warning" in proc.stderr
    assert "Traceback" in proc.stderr and proc.stderr.rstrip().endswith("RuntimeError: boom")
    assert proc.returncode == 1


def test_filter_is_off_when_tensorflow_logs_are_asked_for():
    proc = _python(NOISY, TF_CPP_MIN_LOG_LEVEL="0")
    assert proc.stdout.strip() == "filter False"
    assert "cudart_stub" in proc.stderr and "absl::InitializeLog" in proc.stderr


def test_user_error_after_tensorflow_loaded_is_one_line(tmp_path):
    """`python -m train` loads TensorFlow before the command runs; the error is still the only line."""
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = subprocess.run([sys.executable, "-m", "train", "vae", "--data", str(empty), "--epochs", "1", "--out", str(tmp_path / "runs")],
                          cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: no images (.png, .jpg, .jpeg, .webp, .gif, .bmp) in {empty}"], proc.stderr
    assert not (tmp_path / "runs").exists() or not os.listdir(tmp_path / "runs")
