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
    from core.cli import filter_native_stderr
    print("filter", filter_native_stderr(), flush=True)
    os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
    os.write(2, b"I0000 00:00:1795575726.584179   15065 cudart_stub.cc:31] Could not find cuda drivers\n")
    os.write(2, b"E0000 00:00:1795574849.075873    9434 cuda_platform.cc:52] failed call to cuInit: INTERNAL\n")
    os.write(2, b"E0000 00:00:1796561328.696554    7189 meta_optimizer.cc:967] remapper failed: INVALID_ARGUMENT: Mutation::Apply "
                b"error: fanout 'StatefulPartitionedCall/LeakyReluGrad' exist for missing node 'StatefulPartitionedCall/add'.\n")
    os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
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
    assert "remapper failed" not in proc.stderr and "XNNPACK" not in proc.stderr  # Grappler giving up; TFLite's delegate
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


def test_keras_shuffle_warning_is_not_printed(monkeypatch, capsys):
    """Keras warns "`shuffle=True` was passed, but will be ignored" for every tf.data fit: noise
    around a command's output, dropped by run_cli; other warnings still print."""
    import warnings

    import click

    from core.cli import run_cli

    @click.group()
    def group():
        pass

    @group.command()
    def go():
        warnings.warn("`shuffle=True` was passed, but will be ignored since the data `x` was provided as a tf.data.Dataset.",
                      UserWarning, stacklevel=1)
        warnings.warn("a warning that matters", UserWarning, stacklevel=1)

    monkeypatch.setattr(sys, "argv", ["prog", "go"])
    with warnings.catch_warnings():  # printed as Python prints them (pytest would record them instead)
        warnings.simplefilter("default")
        warnings.showwarning = lambda message, category, *a, **k: print(f"{category.__name__}: {message}", file=sys.stderr)
        run_cli(group, "prog")
    err = capsys.readouterr().err
    assert "shuffle=True" not in err and "a warning that matters" in err


def _cli_raising(exc):
    import click

    @click.group()
    def group():
        pass

    @group.command()
    def go():
        raise exc

    return group


def test_config_error_is_one_line_but_a_bug_keeps_its_traceback(monkeypatch, capsys):
    """run_cli: a ConfigError (a size or preset the user chose) is one line and exit 2; any
    other ValueError is a programming error and must propagate with its traceback."""
    import pytest

    from core.cli import run_cli
    from core.errors import ConfigError

    monkeypatch.setattr(sys, "argv", ["prog", "go"])
    with pytest.raises(SystemExit) as e:
        run_cli(_cli_raising(ConfigError("image_size must be a power of two\nmore detail")), "prog")
    assert e.value.code == 2
    assert capsys.readouterr().err.strip() == "error: image_size must be a power of two"
    with pytest.raises(ValueError, match="a bug"):
        run_cli(_cli_raising(ValueError("a bug")), "prog")


def test_onednn_warning_names_narrow_convolutions(monkeypatch):
    """One line before training a net with < 16-channel convolutions on AVX-512 with oneDNN on;
    nothing on AVX2, with oneDNN off, or with 16+ channels."""
    import keras

    from core.cpu import narrow_convolutions, onednn_training_warning

    def net(width, out=16):
        x = keras.Input((16, 16, 1))
        return keras.Model(x, keras.layers.Conv2D(out, 3, name="out")(keras.layers.Conv2D(width, 3, name="narrow")(x)))

    avx512, avx2 = {"avx2", "avx512f", "avx512_vnni"}, {"avx2", "fma"}
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    assert narrow_convolutions(net(8)) == ["narrow (8)"]
    message = onednn_training_warning(net(8), avx512)
    assert message and "\n" not in message and "narrow (8)" in message and "TF_ENABLE_ONEDNN_OPTS=0" in message
    assert onednn_training_warning(net(16), avx512) is None
    assert onednn_training_warning(net(16, out=3), avx512) is None  # an RGB output layer trains fine
    assert narrow_convolutions(net(12, out=3)) == ["narrow (12)"]
    assert onednn_training_warning(net(8), avx2) is None
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    assert onednn_training_warning(net(8), avx512) is None


def test_ci_names_the_cpu():
    """.ci/run prints the CPU's kind and flags first, so that a failure can be tied to a machine."""
    from core.cpu import cpu_kind, describe

    assert cpu_kind({"avx2", "avx512f", "avx512_vnni", "avx512_bf16"}) == "AVX-512 (VNNI, BF16)"
    assert cpu_kind({"avx2", "fma"}) == "AVX2"
    assert "cores" in describe()
    with open(os.path.join(ROOT, ".ci", "run")) as f:
        assert "core.cpu" in f.read()
