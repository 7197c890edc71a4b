"""The one way a training runs: every model family's command goes through `run_training`.

A family (`train/expression.py`, `vae.py`, `dcgan.py`, `stylegan.py`) is its Click options, a
frozen options dataclass (a subclass of `TrainOptions`), a preset registry and a `fit`; it
registers them as one `Family`. `run_training` takes every family through the same steps, in
this order:

1. the options   with --resume, the run's own (train/legacy.py reads older ones); a value given
                 that differs from the run's is refused (`refuse_changed_options`)
2. validate      the family's checks (`Family.validate`), each failure one line
3. preset        the family's preset by name; --image-size and --lr default to the preset's
                 (`Family.resolve` derives the family's other settings from it)
4. dry run       --dry-run prints the resolved options and stops
5. strategy      tf.distribute and mixed precision, before any other TensorFlow work
                 (a multi-worker strategy must come first)
6. data          `Family.load_data`, before a new run folder exists: bad data leaves none behind
7. run folder    a new numbered folder with options.json, or the resumed run's options.json
                 rewritten (a raised --epochs); the training image count recorded
8. fit           `Family.fit(run, options, preset, data)`, which says what the run holds
9. finish        one line: "done: RUN (what it holds)"

User errors (UserError, ConfigError, DataError) go up to `core.cli.run_cli`, which shows them in
one line; a new run that fails before its first epoch leaves no folder behind.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import shutil
import time
from collections.abc import Callable, Mapping
from typing import Any

import click

from core.cli import UserError, user_errors
from core.files import write_json
from core.provenance import git_commit
from train.legacy import upgrade_options
from train.resume import check_same_data
from train.rundirs import load_run_options, new_run_dir

# What a resumed run may take from the command line; every other option is the run's own (a value
# given that differs from the run's is refused, not silently dropped).
RESUME_MAY_CHANGE = {"resume", "epochs", "time_limit", "jit_compile", "strategy", "tpu", "dry_run", "out", "on_error"}


@dataclasses.dataclass(frozen=True)
class TrainOptions:
    """The options every family shares (train/common.py's `common_options`), resolved: `image_size`
    and `lr` hold the preset's when not given. A family's options subclass this."""

    data: tuple[str, ...] = ()
    image_size: int | None = None
    epochs: int = 10
    batch_size: int = 64
    lr: float | None = None
    seed: int = 0
    preset: str | None = None
    out: str = "runs"
    resume: str | None = None
    limit: int | None = None
    on_error: str = "skip"
    dry_run: bool = False
    time_limit: float | None = None
    strategy: str = "default"
    tpu: str | None = None
    mixed_precision: str = "off"

    @classmethod
    def of(cls, options: Mapping[str, Any]):
        """The dataclass of an options dict (a command's, or a run's options.json: its other keys
        are left out, and an option it lacks takes the default)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in options.items() if k in names})


@dataclasses.dataclass
class Run:
    """A run folder being trained: `options` is its options.json as a dict (steps such as
    --jit-compile auto add what they decide to it and to the file)."""

    dir: str
    resumed: bool
    strategy: Any
    options: dict


@dataclasses.dataclass(frozen=True)
class Family:
    """One model family's part of a training run. `presets` maps names to frozen presets with at
    least `name`, `image_size` and `lr`; `preset_option` is the option that names one."""

    kind: str
    options: type[TrainOptions]
    presets: Mapping[str, Any]
    load_data: Callable[[TrainOptions], Any]  # returns the data; len() of it is the training image count
    fit: Callable[[Run, TrainOptions, Any, Any], str]  # returns what the run holds, for the last line
    describe: Callable[[TrainOptions], str]  # the run folder's name after NNNNN-kind-
    validate: Callable[[dict], None] = lambda options: None
    preset_name: Callable[[dict], str | None] = lambda options: options["preset"]
    resolve: Callable[[dict, Any], None] = lambda options, preset: None
    check_size: Callable[[Any, int], None] = lambda preset, size: None
    preset_option: str = "--preset"
    distributed: bool = True  # takes --strategy, --tpu and --mixed-precision


def run_training(family: Family, given: dict) -> None:
    """Trains one run of `family` from a command's options (see the module's docstring)."""
    options = resumed_options(family.kind, given) if given.get("resume") else dict(given)
    family.validate(options)
    preset = resolve_preset(family, options)
    if options["dry_run"]:
        click.echo(json.dumps(options, indent=2, default=str))
        return
    strategy = None
    if family.distributed:
        from train.distribute import setup

        strategy = setup(options)
    data = family.load_data(family.options.of(options))
    run = open_run(family, options, strategy)
    try:
        check_same_data(run.dir, len(data), run.resumed)
        said = family.fit(run, family.options.of(run.options), preset, data)
    except user_errors():
        if not run.resumed and not os.path.exists(os.path.join(run.dir, "log.csv")):
            shutil.rmtree(run.dir, ignore_errors=True)  # nothing trained: no empty run folder
        raise
    click.echo(f"done: {run.dir} {said}")


def resumed_options(kind: str, given: dict) -> dict:
    """A resumed run's own options, with what this command may change: a raised --epochs, the
    hardware (--strategy, --tpu), --time-limit and --jit-compile when given, and --dry-run."""
    run_dir = given["resume"]
    saved = load_run_options(run_dir, kind)
    ctx = click.get_current_context(silent=True)
    refuse_changed_options(ctx, upgrade_options(kind, saved), run_dir)

    def on_command_line(name: str) -> bool:
        return ctx is not None and ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE

    if on_command_line("epochs") and given.get("epochs") and given["epochs"] > saved.get("epochs", 0):
        saved["epochs"] = given["epochs"]
    saved["resume"] = run_dir
    for key in ("strategy", "tpu"):  # a run may continue on other hardware
        if given.get(key) is not None:
            saved[key] = given[key]
    for key in ("time_limit", "jit_compile"):
        if key in given and on_command_line(key):
            saved[key] = given[key]
    saved["dry_run"] = bool(given.get("dry_run"))
    return upgrade_options(kind, saved)


def refuse_changed_options(ctx, saved: dict, run_dir: str) -> None:
    """A resumed run trains with its own options: one given on the command line with another value
    than the run's (--image-size 32 on a 64-px run) is a one-line error, not silently dropped."""
    if ctx is None:
        return
    for param in ctx.command.params:
        name = param.name
        if name in RESUME_MAY_CHANGE or name not in saved or ctx.get_parameter_source(name) is not click.core.ParameterSource.COMMANDLINE:
            continue
        given, before = ctx.params.get(name), saved[name]
        if isinstance(given, tuple):
            given = list(given)
        if given != before and not (isinstance(given, float) and isinstance(before, (int, float)) and math.isclose(given, before)):
            flag = param.opts[0] if getattr(param, "opts", None) else name
            shown = " ".join(map(str, given)) if isinstance(given, list) else given
            raise UserError(f"{flag} {shown}: {run_dir} trains with {flag} {before}, its own; a resumed run keeps its options "
                            "(drop it, or start a new run)")


def resolve_preset(family: Family, options: dict):
    """The family's preset; --image-size and --lr default to its own (set in `options`)."""
    name = family.preset_name(options)
    if name not in family.presets:
        raise UserError(f"unknown {family.preset_option} {name!r} for {family.kind}; choose one of {', '.join(family.presets)}")
    preset = family.presets[name]
    options["image_size"] = options.get("image_size") or preset.image_size
    family.check_size(preset, options["image_size"])
    options["lr"] = options.get("lr") or preset.lr
    family.resolve(options, preset)
    return preset


def open_run(family: Family, options: dict, strategy) -> Run:
    """A new numbered run folder with options.json (only the chief worker writes the real one),
    or the resumed one with its options.json rewritten (what this command changed stays)."""
    if options.get("resume"):
        run_dir = options["resume"]
        write_json(os.path.join(run_dir, "options.json"), dict(options, dry_run=False))
        return Run(run_dir, True, strategy, options)
    from train.distribute import worker_out

    out = worker_out(options["out"], strategy)
    run_dir = new_run_dir(out, family.kind, family.describe(family.options.of(options)))
    options = dict(options, out=out, kind=family.kind, run_dir=run_dir, commit=git_commit(), host=platform.node(),
                   started=time.strftime("%Y-%m-%d %H:%M:%S"))
    write_json(os.path.join(run_dir, "options.json"), options)
    return Run(run_dir, False, strategy, options)


@dataclasses.dataclass(frozen=True)
class TrainingData:
    """A family's data: the training images (`len()` is their count, recorded in options.json)
    and the images it evaluates on (validation or held-out ones), if any."""

    train: Any
    val: Any = None
    targets: Any = None  # per-image training targets beside the images' labels (the conditional DCGAN's expression weights)
    order: Any = None  # the indices one epoch goes through (repeats balance the classes), when not each image once

    def __len__(self) -> int:
        return len(self.train)
