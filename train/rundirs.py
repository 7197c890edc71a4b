"""Run directories: `out/NNNNN-kind-desc/` made with the next free number, and a run's options.json."""

from __future__ import annotations

import os
import re

from core.cli import UserError
from core.files import ensure_writable_dir, read_options_file, write_json


def new_run_dir(out: str, kind: str, desc: str) -> str:
    """Creates `out/NNNNN-kind-desc/` with the next free number (stylegan2-ada style)."""
    ensure_writable_dir(out)
    numbers = [int(m.group(1)) for d in os.listdir(out) if (m := re.match(r"^(\d{5})-", d))]
    desc = re.sub(r"[^A-Za-z0-9_.-]+", "_", desc).strip("_") or "run"
    path = os.path.join(out, f"{max(numbers, default=0) + 1:05d}-{kind}-{desc}")
    os.makedirs(path)
    return path


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
