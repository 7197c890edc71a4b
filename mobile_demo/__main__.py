"""python -m mobile_demo [serve] [--host H] [--port P] [--https] | emojify ..."""

import importlib
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from core.cli import filter_native_stderr  # noqa: E402

if __name__ == "__main__":
    filter_native_stderr()  # before TensorFlow loads: its C++ start-up lines would bury one-line errors

import click  # noqa: E402

from core.cli import run_cli  # noqa: E402


class DefaultGroup(click.Group):
    """A group that runs `serve` when no subcommand is named (`python -m mobile_demo --port 9000`)."""

    default_command = "serve"

    def parse_args(self, ctx, args):
        if not args or (args[0] not in self.commands and args[0] not in ("-h", "--help")):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


@click.group(cls=DefaultGroup, context_settings={"help_option_names": ["-h", "--help"]})
def cli():
    """Emotekit's on-device emoji keyboard. With no command: serve the web app (see `serve --help`)."""


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Loopback by default; 0.0.0.0 opens it to the local network.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="TCP port (0: any free port).")
@click.option("--https", "use_https", is_flag=True,
              help="Serve over HTTPS with a self-signed certificate made now (phones give cameras to secure pages only).")
@click.option("--models", "models_dir", type=click.Path(file_okay=False), default=None,
              help="Serve the models (manifest.json and .tflite files) from this folder instead of mobile_demo/models/.")
@click.option("--verbose", is_flag=True, help="Log every request.")
def serve(host, port, use_https, models_dir, verbose):
    """Serve the emoji keyboard (the page, its models and LiteRT.js) from this folder only."""
    from mobile_demo import server as srv

    models_dir = os.path.abspath(models_dir) if models_dir else srv.MODELS
    previous = _stop_on_signals()  # before the --https key exists: from then on a SIGTERM removes it
    httpd = None
    try:
        httpd = srv.make_server(host, port, https=use_https, verbose=verbose, models_dir=models_dir)
        _announce(httpd, host, use_https, models_dir)
        httpd.serve_forever()
    except (KeyboardInterrupt, Stopped):
        click.echo("stopped")
    finally:
        if httpd is not None:
            httpd.server_close()
            if httpd.temp_cert_dir:  # the key never outlives the server
                import shutil

                shutil.rmtree(httpd.temp_cert_dir, ignore_errors=True)
        _restore_signals(previous)


def _announce(httpd, host, use_https, models_dir):
    from mobile_demo import server as srv

    scheme = "https" if use_https else "http"
    bound_port = httpd.server_address[1]
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    if ":" in shown:
        shown = f"[{shown}]"
    if not os.path.exists(os.path.join(models_dir, "manifest.json")):
        click.echo(f"note: {os.path.relpath(models_dir)}/manifest.json is missing: the page will say its models are not shipped yet")
    click.echo(f"Emotekit keyboard on {scheme}://{shown}:{bound_port}/  (Ctrl+C to stop)")
    if not srv.is_loopback(host):
        click.echo(f"warning: listening on {host}, reachable from the network", err=True)
        for ip in srv.lan_addresses():
            click.echo(f"  on a phone: {scheme}://{ip}:{bound_port}/")
        if not use_https:
            click.echo("  phones give the camera to https pages only: add --https", err=True)
    if use_https:
        click.echo(f"  self-signed certificate {httpd.cert_path}: the browser will ask you to accept it once")


class Stopped(Exception):
    """SIGTERM or SIGHUP (a service manager, `kill`, a closed terminal): stop as Ctrl+C does."""


def _stop_on_signals() -> dict:
    """SIGTERM and SIGHUP stop the server the way Ctrl+C does, so that its `finally` runs (the --https key is
    removed). Returns the previous handlers; nothing is changed outside the main thread."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return {}

    raised = []

    def stop(signum, frame):
        if not raised:  # once: a second signal must not cut the clean-up short
            raised.append(signum)
            raise Stopped(signal.Signals(signum).name)

    previous = {}
    for name in ("SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None:
            previous[sig] = signal.signal(sig, stop)
    return previous


def _restore_signals(previous: dict) -> None:
    import signal

    for sig, handler in previous.items():
        signal.signal(sig, handler)


# Subcommands that live in their own modules (each defines a Click command of the same name).
for _module_name, _command_name in [("mobile_demo.emojify", "emojify")]:
    cli.add_command(getattr(importlib.import_module(_module_name), _command_name))

if __name__ == "__main__":
    run_cli(cli, "python -m mobile_demo")
