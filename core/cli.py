"""What every Emotekit command shares: user errors shown as one line, and quiet TensorFlow start-up."""

from __future__ import annotations

import atexit
import math
import os
import re
import sys
import threading
import warnings

import click

from core.errors import ConfigError, DataError


class FiniteFloatRange(click.FloatRange):
    """click.FloatRange that also refuses nan and inf (nan passes every comparison of a range, so
    FloatRange(0, 1) takes it)."""

    def convert(self, value, param, ctx):
        rv = super().convert(value, param, ctx)
        if not math.isfinite(rv):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return rv


class UserError(Exception):
    """Something the user can fix (a bad option, a missing file). One line, exit status 2."""


def user_errors():
    """Exception types shown to the user as one line without a traceback."""
    return (UserError, DataError, ConfigError)


# TensorFlow's C++ lines that TF_CPP_MIN_LOG_LEVEL does not reach: absl prints everything logged
# before its InitializeLog() (the CUDA stub probe, the CPU feature notice, cuInit failing on a
# machine without a GPU), however the level is set; Grappler's "remapper failed" (an optimisation
# pass that gives up: the graph runs unoptimised, nothing is wrong) is logged as an error; and the
# TFLite runtime announces its XNNPACK delegate on stderr whenever an interpreter is made.
NATIVE_NOISE = re.compile(
    r"(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IW]\d{4} [\d:.]+ +\d+ [\w.]+\.cc:\d+\] "
    r"|E\d{4} [\d:.]+ +\d+ cuda_\w+\.cc:\d+\] failed call to cuInit"
    r"|E\d{4} [\d:.]+ +\d+ meta_optimizer\.cc:\d+\] \w+ failed: "
    r"|INFO: Created TensorFlow Lite XNNPACK delegate for CPU\."
    r"|To enable the following instructions: .* rebuild TensorFlow)")

# Python warnings about nothing the user did or can change (Emotekit's datasets shuffle themselves).
QUIET_WARNINGS = (r"`shuffle=True` was passed, but will be ignored",)


def quiet_known_warnings() -> None:
    """Drops the QUIET_WARNINGS (library warnings that are noise around a command's output)."""
    for message in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=message)


def filter_native_stderr() -> bool:
    """Drops TensorFlow's native start-up noise (NATIVE_NOISE) from this process' stderr, so that a
    user error stays one line. Everything else, Python's tracebacks included, passes through. Off
    when TF_CPP_MIN_LOG_LEVEL asks for info or warnings (0 or 1). Call it before TensorFlow loads;
    returns whether the filter is on."""
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2").strip() in ("0", "1"):
        return False
    try:
        sys.stderr.flush()
        real = os.dup(2)
        read_end, write_end = os.pipe()
        os.dup2(write_end, 2)
        os.close(write_end)
    except (OSError, ValueError):
        return False
    out = os.fdopen(real, "wb", buffering=0)

    def pump():
        with os.fdopen(read_end, "rb") as lines:
            for line in lines:
                if not NATIVE_NOISE.match(line.decode("utf-8", "replace")):
                    try:
                        out.write(line)
                    except OSError:
                        pass

    thread = threading.Thread(target=pump, name="stderr-filter", daemon=True)
    thread.start()

    def restore():
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(real, 2)  # the pipe's last write end in this process: the pump reads to its end and stops
        thread.join(timeout=5)

    atexit.register(restore)
    return True


def run_cli(group: click.Group, prog_name: str):
    """Runs a Click group; user errors end in one line on stderr and a non-zero status."""
    quiet_known_warnings()
    try:
        group.main(standalone_mode=False, prog_name=prog_name)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("interrupted: resume with --resume RUN_DIR", err=True)
        sys.exit(130)
    except user_errors() as e:  # the first line: a ConfigError of a library may say more below it
        click.echo(f"error: {(str(e).splitlines() or [''])[0]}", err=True)
        sys.exit(2)
