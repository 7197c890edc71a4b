"""python -m train <model> [options]"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import click  # noqa: E402

from train.cli_support import run_cli  # noqa: E402


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli():
    """Train Emotekit's models. Each run gets a numbered directory under --out (default runs/)."""


def _register():
    from train.evaluate import evaluate
    from train.expression import expression

    cli.add_command(expression)
    cli.add_command(evaluate)
    try:
        from train.vae import vae_commands
    except ImportError:
        vae_commands = []
    for c in vae_commands:
        cli.add_command(c)


_register()

if __name__ == "__main__":
    run_cli(cli, "python -m train")
