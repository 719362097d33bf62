"""The ``feedsync`` command: one module per group of commands, each adding its commands to ``cli``."""

from producers.cli import alerts, api, demo, dlq, history, processes, runs, setup, undo
from producers.cli.base import cli
from producers.console.cli import register as register_console
from producers.sftp_cli import sftp

__all__ = ["cli", "main"]

# Imported for the commands they register on ``cli``.
_COMMAND_MODULES = (setup, processes, runs, history, dlq, alerts, demo, undo, api)
register_console(cli)  # `feedsync web` and `feedsync admins` (producers/console/cli.py)
cli.add_command(sftp)  # `feedsync sftp keygen|fingerprint|check|pull` (producers/sftp_cli.py)


def main() -> None:
    cli()
