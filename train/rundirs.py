"""Run directories: `out/NNNNN-kind-desc/` made with the next free number, and a run's options.json."""

from __future__ import annotations

import json
import os
import re

from core.cli import UserError
from core.files import ensure_writable_dir, write_json


def check_can_write(out_dir: str) -> None:
    """That files can be made in `out_dir`, or (not there yet) in the folder it would be made in,
    before minutes of work go into them; creates nothing. Tried with a real file: os.access says
    yes to root on a folder it cannot write in (a read-only mount, /sys)."""
    import tempfile

    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise UserError(f"{out_dir} is a file, not a folder")
    probe = os.path.abspath(out_dir)
    while not os.path.isdir(probe):
        parent = os.path.dirname(probe)
        if os.path.exists(parent) and not os.path.isdir(parent):
            raise UserError(f"cannot create output folder {out_dir}: {parent} is a file")
        probe = parent
    try:
        with tempfile.TemporaryFile(dir=probe, prefix=".tmp-probe-"):
            pass
    except OSError as e:
        where = "" if probe == os.path.abspath(out_dir) else f" (to make {out_dir} in)"
        raise UserError(f"output folder is not writable: {probe}{where}: {e.strerror}") from None


def new_run_dir(out: str, kind: str, desc: str) -> str:
    """Creates `out/NNNNN-kind-desc/` with the next free number (stylegan2-ada style)."""
    ensure_writable_dir(out)
    numbers = [int(m.group(1)) for d in os.listdir(out) if (m := re.match(r"^(\d{5})-", d))]
    desc = re.sub(r"[^A-Za-z0-9_.-]+", "_", desc).strip("_") or "run"
    path = os.path.join(out, f"{max(numbers, default=0) + 1:05d}-{kind}-{desc}")
    os.makedirs(path)
    return path


def json_kind(value) -> str:
    """The JSON name of a parsed value's type, for messages: object, array, string, number, ..."""
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(type(value), "number")


def read_options_file(path: str) -> dict:
    """A run's options.json as a dict; a file that is not a JSON object (truncated, hand-edited, a
    list) is a one-line error naming it."""
    try:
        with open(path, encoding="utf-8") as f:
            opts = json.load(f)
    except UnicodeDecodeError:
        raise UserError(f"{path} is not a run's options file (not UTF-8 text)") from None
    except ValueError as e:
        raise UserError(f"{path} is damaged (not valid JSON: {e.msg} at line {e.lineno}); restore it or start a new run") from None
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror}") from None
    if not isinstance(opts, dict):
        raise UserError(f"{path} is damaged: a JSON {json_kind(opts)}, not the object of a run's options")
    return opts


def load_run_options(run_dir: str, kind: str) -> dict:
    path = os.path.join(run_dir, "options.json")
    if not os.path.isfile(path):
        raise UserError(f"not a run directory (no options.json): {run_dir}")
    opts = read_options_file(path)
    if opts.get("kind") != kind:
        raise UserError(f"{run_dir} is a {opts.get('kind')!r} run, not {kind!r}")
    return opts


def update_run_options(run_dir: str, record: dict) -> None:
    """Updates only these keys of RUN/options.json (a resume's in-memory options differ from the file's)."""
    path = os.path.join(run_dir, "options.json")
    if not os.path.isfile(path):
        return
    saved = read_options_file(path)
    saved.update(record)
    write_json(path, saved)
