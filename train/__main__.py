"""python -m train <model> [options]"""

import importlib
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from core.cli import filter_native_stderr  # noqa: E402

if __name__ == "__main__":
    filter_native_stderr()  # before TensorFlow loads: its C++ start-up lines would bury one-line errors

import click  # noqa: E402

from core.cli import run_cli  # noqa: E402

# Each module defines COMMANDS, a list of Click commands (one per model, plus tools).
COMMAND_MODULES = ["train.expression", "train.evaluate", "train.vae", "train.vae_tools", "train.dcgan", "train.emote_judge",
                   "train.stylegan"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli():
    """Train Emotekit's models. Each run gets a numbered directory under --out (default runs/)."""


for _name in COMMAND_MODULES:
    _module = importlib.import_module(_name)  # a missing or mistyped module is an ImportError, not a hidden command
    for _command in _module.COMMANDS:
        cli.add_command(_command)

if __name__ == "__main__":
    run_cli(cli, "python -m train")
