"""Runs `python -m train ...` in-process for the tests, through the same error path as the shell."""

from __future__ import annotations

import sys


def run_train(args, monkeypatch, capsys):
    """Runs `python -m train ARGS` in-process; returns (exit status, stdout, stderr)."""
    from core.cli import run_cli
    from train.__main__ import cli

    monkeypatch.setattr(sys, "argv", ["python -m train", *args])
    code = 0
    try:
        run_cli(cli, "python -m train")
    except SystemExit as e:
        code = e.code or 0
    out, err = capsys.readouterr()
    return code, out, err
