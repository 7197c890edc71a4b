"""Files written atomically: a reader never sees half a file, and a failed write leaves the old one."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile

from core.cli import UserError


@contextlib.contextmanager
def atomic_path(path: str, suffix: str | None = None):
    """Yields a temporary path beside `path`; renames it into place only if the block succeeds."""
    directory = os.path.dirname(os.path.abspath(path)) or "."
    suffix = suffix if suffix is not None else os.path.splitext(path)[1]
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=directory)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; finished files get the usual mode
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_json(path: str, obj) -> None:
    """`obj` as indented JSON (anything else as str), written atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2, default=str)
            f.write("\n")


def ensure_writable_dir(path: str) -> str:
    """`path`, made if need be; a folder that cannot be made or written is a one-line error."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create output folder {path}: {e.strerror}") from None
    if not os.access(path, os.W_OK):
        raise UserError(f"output folder is not writable: {path}")
    return path


def check_can_write(out_dir: str) -> None:
    """That files can be made in `out_dir`, or (not there yet) in the folder it would be made in,
    before minutes of work go into them; creates nothing. Tried with a real file: os.access says
    yes to root on a folder it cannot write in (a read-only mount, /sys)."""
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


def sha256_file(path: str) -> str:
    """The sha256 of a file's bytes (hex), read a megabyte at a time."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
