"""Files written atomically: a reader never sees half a file, and a failed write leaves the old one."""

from __future__ import annotations

import contextlib
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
