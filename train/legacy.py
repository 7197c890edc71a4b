"""What earlier versions of Emotekit left in a run folder, read as today's code expects it.

Everything that knows an older layout is here, so the main path (train/run.py, train/resume.py
and the families) reads without it. Each piece says what the earlier version wrote:

- `upgrade_options`: an options.json from before an option existed, or with a value's old
  spelling, as the option's value that means what the run did then.
- `adopt_finished_run`, with `final_gan_state` or `final_classifier_state`: a run that finished
  before backup/ was kept at the end, its final state turned into backup/ once.

(A backup written before the epochs were stamped inside its weights file is read with the epochs
of Keras' own training_metadata.json beside it: train/resume.py, `good_backup`.)

A run of the last release resumes through these (tests/test_legacy.py).
"""

from __future__ import annotations

import json
import os

import click

from train.resume import epochs_done, has_backup, write_backup

# --augment values of the expression trainer by their first names (004: the reference recipe's number).
AUGMENT_ALIASES = {"004": "affine"}


def canonical_augment(value: str | None) -> str | None:
    """An --augment value by its name today (a Click callback, and a saved run's value)."""
    return AUGMENT_ALIASES.get(value, value)


def jit_compile_mode(value, without_a_value: str) -> str:
    """A saved --jit-compile as auto/on/off. Before it had three modes the option was a flag
    (--jit-compile/--no-jit-compile: true/false) or not there at all: `without_a_value` is what
    the family did then."""
    if value is True:
        return "on"
    if value is False:
        return "off"
    if value is None:
        return without_a_value
    value = str(value).lower()
    return value if value in ("auto", "on", "off") else without_a_value


def upgrade_options(kind: str, saved: dict) -> dict:
    """A resumed run's options.json in today's terms (a copy; the file is rewritten by the caller)."""
    saved = dict(saved)
    if kind == "expression" and "augment" in saved:
        saved["augment"] = canonical_augment(saved["augment"])
    if kind == "vae" and "epoch_size" not in saved:
        saved["epoch_size"] = 0  # before --epoch-size an epoch was one pass over the data
    if kind == "dcgan":
        # Without the option the DCGAN compiled its step with XLA unless it ran under a strategy.
        saved["jit_compile"] = jit_compile_mode(saved.get("jit_compile"), "on" if saved.get("strategy", "default") == "default" else "off")
    if kind == "stylegan":
        saved["jit_compile"] = jit_compile_mode(saved.get("jit_compile"), "auto")  # Keras' own choice: now timed
    return saved


def adopt_finished_run(run_dir: str, model, load_final) -> bool:
    """A run finished before backup/ was kept has its final state elsewhere: `load_final(model)`
    loads it and returns the epochs it had done (0 when there is no such state). That state is
    written as backup/ once; from then on the run resumes like any other. True when adopted."""
    if has_backup(run_dir) or epochs_done(run_dir):
        return False
    done = load_final(model)
    if not done:
        return False
    write_backup(model, run_dir, done)
    click.echo(f"{run_dir}: its final state (epoch {done}) is now backup/ for --resume")
    return True


def final_gan_state(run_dir: str, gan) -> int:
    """A GAN run that finished keeping gan.weights.h5 and state.json (and no backup/): loads them
    into `gan` and returns the epochs done (0 when the run has no such state). StyleGAN kept its
    image and step counters in state.json then; they are the GAN's own variables now."""
    weights, state = os.path.join(run_dir, "gan.weights.h5"), os.path.join(run_dir, "state.json")
    if not (os.path.isfile(weights) and os.path.isfile(state)):
        return 0
    with open(state) as f:
        state = json.load(f)
    counters = {"images_seen": float(state.get("kimg", 0)) * 1000, "step_counter": int(state.get("steps", 0))}
    present = {k: v for k, v in counters.items() if hasattr(gan, k)}
    gan.load_weights(weights, skip_mismatch=bool(present))  # the file has no counters
    for name, value in present.items():
        getattr(gan, name).assign(value)
    return int(state.get("epochs_done", 0))


def final_classifier_state(run_dir: str, model, trainer, steps_per_epoch: int) -> int:
    """A classifier run that finished keeping last.keras and log.csv (and no backup/): loads the
    weights into `model`, sets the schedule's step to where it was (the optimizer's moments were
    not kept) and returns the epochs done (0 when the run has no such state)."""
    last, log = os.path.join(run_dir, "last.keras"), os.path.join(run_dir, "log.csv")
    if not (os.path.isfile(last) and os.path.isfile(log)):
        return 0
    with open(log) as f:
        done = max(sum(1 for line in f if line.strip()) - 1, 0)
    model.load_weights(last)
    trainer.optimizer.build(trainer.trainable_variables)
    trainer.optimizer.iterations.assign(steps_per_epoch * done)
    return done
