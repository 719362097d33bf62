"""The ``feedsync`` command group and what its commands share: tables, JSON, one-line failures."""

from __future__ import annotations

import sys
from typing import Any, NoReturn

import click

from producers.output import json_text, printable, printable_lines
from schemas.settings import get_settings
from workers.logs import configure_logging

#: A count of something to show or do: 1 or more (0 or less is a mistake, never "no limit").
POSITIVE = click.IntRange(min=1)


def echo_json(data: Any) -> None:
    click.echo(json_text(data))


def echo_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    if not rows:
        click.echo("(none)")
        return
    cells = [[printable(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    click.echo("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)))
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))


def fail(message: str) -> NoReturn:
    click.echo(f"feedsync: {printable_lines(message)}", err=True)
    sys.exit(1)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """feedsync: keeps a learning platform's people in step with the systems that own them."""
    configure_logging(get_settings().log_level)
