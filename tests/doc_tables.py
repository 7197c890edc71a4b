"""Helpers of the bad-input corpora (docs/bad-input-*.md): a doc's table as rows of cells, a folder
nothing can be written in."""

from __future__ import annotations

import os


def table_cells(doc: str, section: str = "## The corpus") -> list[dict]:
    """The rows of the first table under `section` in the Markdown file `doc`, each a dict of its cells
    by column name (stripped, backticks kept)."""
    with open(doc, encoding="utf-8") as f:
        text = f.read().split(section, 1)[1].split("\n## ", 1)[0]
    lines = [ln for ln in text.splitlines() if ln.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    return [dict(zip(header, (c.strip() for c in ln.strip().strip("|").split("|")))) for ln in lines[2:]]


def unwritable(tmp_path) -> str:
    """A folder nothing can be written in: 0555, or for root (whom permissions do not stop) /proc."""
    if os.geteuid() == 0:
        return "/proc"
    d = tmp_path / "readonly"
    d.mkdir()
    d.chmod(0o555)
    return str(d)
