"""Runs `python -m train ...` or `python -m data_pipelines ...` in-process for the tests, through the same
error path as the shell."""

from __future__ import annotations

import sys


def run_command(cli, prog: str, args, monkeypatch, capsys):
    """Runs the Click group `cli` as `prog ARGS` through run_cli; returns (exit status, stdout, stderr)."""
    from core.cli import run_cli

    monkeypatch.setattr(sys, "argv", [prog, *map(str, args)])
    code = 0
    try:
        run_cli(cli, prog)
    except SystemExit as e:
        code = e.code or 0
    out, err = capsys.readouterr()
    return code, out, err


def run_train(args, monkeypatch, capsys):
    """Runs `python -m train ARGS` in-process; returns (exit status, stdout, stderr)."""
    from train.__main__ import cli

    return run_command(cli, "python -m train", args, monkeypatch, capsys)


def run_data_tools(args, monkeypatch, capsys):
    """Runs `python -m data_pipelines ARGS` in-process; returns (exit status, stdout, stderr)."""
    from data_pipelines.__main__ import cli

    return run_command(cli, "python -m data_pipelines", args, monkeypatch, capsys)
