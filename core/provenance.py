"""Where a file came from: the commit of the code that wrote it."""

from __future__ import annotations

import os
import subprocess


def git_commit() -> str:
    """The short commit of this checkout, or "unknown" (no git, not a checkout)."""
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))), timeout=5).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"
