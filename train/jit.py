"""`--jit-compile auto|on|off`: XLA for a model's train step, or plain tf.function, chosen per machine.

XLA speeds the DCGAN's step up by half on one CPU kind and slows it down by a third on another
(benchmarks/RESULTS.md, "DCGAN training speed"), so `auto` (the default) decides on the machine the run starts
on: it builds the run's own model twice (once per mode, with the run's batch shape), runs a few
warm-up steps of each, then times a few more in alternating rounds, and keeps the faster. The
trial models are thrown away and the caller reseeds before it builds the real one, so the run
trains exactly as it would with that mode given outright.

The choice is recorded in the run's options.json (`jit_compile_resolved`, and the measured
images/s in `jit_compile_timings` with the CPU in `jit_compile_cpu`). A resumed run keeps its
recorded choice unless the command line gives `--jit-compile on|off` (or `auto` again, to time
anew, e.g. on another machine). Under a distribution strategy `auto` means off (as Keras does).
What a run saved before the option had these modes meant is read in train/legacy.py.

A model whose XLA compile takes minutes on a CPU (StyleGAN's) passes the run's step count: a run
shorter than SHORT_RUN_STEPS could never win back the trial, so `auto` means off there untimed.
"""

from __future__ import annotations

import gc
import time

import click

from train.rundirs import update_run_options

MODES = ("auto", "on", "off")
WARMUP_STEPS = 2  # the first traces / compiles the step
TIMED_STEPS = 3
SHORT_RUN_STEPS = 500  # train steps below which timing XLA (minutes of compiling) costs more than it can save


def jit_compile_option():
    """The click option `--jit-compile auto|on|off` (auto the default)."""
    return click.option(
        "--jit-compile", type=click.Choice(MODES), default="auto", show_default=True,
        help="XLA for the train step: on, off, or auto = time a few steps of each at the start of the run and keep "
             "the faster (recorded in options.json; a --resume keeps it). Off under a --strategy unless on is given.")


def _given_on_command_line(name: str = "jit_compile") -> bool:
    ctx = click.get_current_context(silent=True)
    return ctx is not None and ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE


def time_modes(build, batch_shape, warmup: int = WARMUP_STEPS, steps: int = TIMED_STEPS) -> tuple[dict, dict]:
    """Images/s of `build(jit_compile)`'s train step with XLA off and on, on random inputs of
    `batch_shape` in [-1, 1]: `warmup` steps each (tracing, compiling), then `steps` timed rounds of
    one step of each, in alternating order (a load that changes meanwhile hits both alike).
    Returns ({"off": ips, "on": ips or None}, {mode: error}): XLA that cannot build or compile the
    step counts as unavailable (None), not as a failure of the run."""
    import keras
    import numpy as np
    import tensorflow as tf

    class StepTimer(keras.callbacks.Callback):  # the step itself, without fit()'s own set-up
        def on_train_batch_begin(self, batch, logs=None):
            self.t = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.seconds = time.perf_counter() - self.t

    rng = np.random.default_rng(0)
    shapes = batch_shape if isinstance(batch_shape[0], tuple) else (batch_shape,)  # a model fed (images, targets): a shape each
    x = tuple(rng.uniform(-1, 1, s).astype("float32") if i == 0 else rng.dirichlet(np.ones(s[-1]), s[:-1]).astype("float32")
              for i, s in enumerate(shapes))
    x = x if len(x) > 1 else x[0]
    ds = tf.data.Dataset.from_tensors(x).repeat()
    timer = StepTimer()
    models, errors, seconds = {}, {}, {}
    for mode in ("off", "on"):
        try:
            model = build(mode == "on")
            if bool(model.jit_compile) != (mode == "on"):  # Keras turns XLA off for layers without support
                raise RuntimeError("Keras does not support XLA for this model")
            model.fit(ds, steps_per_epoch=warmup, epochs=1, verbose=0, shuffle=False)
        except Exception as e:  # noqa: BLE001 - only XLA may fail here; plain tf.function failing is the run's error
            if mode == "off":
                raise
            errors[mode] = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            continue
        models[mode], seconds[mode] = model, 0.0
    for r in range(steps):
        for mode in sorted(models, reverse=bool(r % 2)):
            models[mode].fit(ds, steps_per_epoch=1, epochs=1, verbose=0, shuffle=False, callbacks=[timer])
            seconds[mode] += timer.seconds
    models.clear()
    gc.collect()
    ips = {mode: (round(shapes[0][0] * steps / seconds[mode], 2) if mode in seconds else None) for mode in ("off", "on")}
    return ips, errors


def resolve_jit_compile(options: dict, run_dir: str, resumed: bool, strategy, build, batch_shape,
                        run_steps: int | None = None) -> bool:
    """Whether the run's train step uses XLA, from --jit-compile (see the module's docstring).
    `build(jit_compile)` makes a fresh compiled model like the run's; it is only called for `auto`
    timing, and not when `run_steps` (the run's train steps, given by a model whose XLA compile is
    slow) is under SHORT_RUN_STEPS. Records the outcome in options (and RUN/options.json) and prints
    one line about it."""
    from train.distribute import is_default

    mode = options.get("jit_compile", "auto")
    record = {"jit_compile": mode}
    if mode in ("on", "off"):
        how = "--jit-compile " + mode if _given_on_command_line() or not resumed else f"the run's --jit-compile {mode}"
        click.echo(f"jit-compile: XLA {mode} ({how})")
        resolved = mode
    elif not is_default(strategy):
        resolved = "off"
        click.echo(f"jit-compile auto: XLA off under --strategy {options.get('strategy')} (--jit-compile on to force it)")
    elif resumed and options.get("jit_compile_resolved") in ("on", "off") and not _given_on_command_line():
        from core.cpu import cpu_kind

        resolved, timed_on = options["jit_compile_resolved"], options.get("jit_compile_cpu")
        other = f"; this CPU is {cpu_kind()}: --jit-compile auto times it again here" if timed_on and timed_on != cpu_kind() else ""
        click.echo(f"jit-compile auto: XLA {resolved}, the run's recorded choice ({_describe(options.get('jit_compile_timings') or {})}"
                   f"{' on ' + timed_on if timed_on else ''}{other})")
    elif run_steps is not None and run_steps < SHORT_RUN_STEPS:
        resolved = "off"
        record["jit_compile_short_run"] = int(run_steps)
        click.echo(f"jit-compile auto: XLA off, untimed (a short run: {run_steps} step{'s' if run_steps != 1 else ''}, fewer than the "
                   f"{SHORT_RUN_STEPS} that timing XLA's compile could pay back; --jit-compile on to force it)")
    else:
        from core.cpu import cpu_kind

        ips, errors = time_modes(build, batch_shape)
        resolved = "on" if ips["on"] is not None and ips["on"] > ips["off"] else "off"
        record.update(jit_compile_timings=ips, jit_compile_cpu=cpu_kind())
        if errors:
            record["jit_compile_errors"] = errors
        failed = f"; XLA failed: {errors['on']}" if "on" in errors else ""
        click.echo(f"jit-compile auto: XLA {resolved} ({_describe(ips)} on {record['jit_compile_cpu']}, batch {batch_shape[0]}; "
                   f"{WARMUP_STEPS} warm-up + {TIMED_STEPS} timed steps each{failed})")
    record["jit_compile_resolved"] = resolved
    options.update(record)
    if run_dir:
        update_run_options(run_dir, record)  # timings of an earlier auto stay when on/off is given
    return resolved == "on"


def _describe(ips: dict) -> str:
    parts = [f"{label} {ips[m]:.1f} images/s" for m, label in (("off", "plain tf.function"), ("on", "XLA")) if ips.get(m) is not None]
    return ", ".join(parts) or "no timings"
