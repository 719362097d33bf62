"""The ``feedsync`` command group and what its commands share: tables, JSON, one-line failures."""

from __future__ import annotations

import sys
from typing import Any, NoReturn

import click
from pydantic import ValidationError

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


def _takes(error: Any) -> str:
    """What a setting takes, from pydantic's error: its own messages never hold the value given, and
    the settings' validators are written not to (a value may be a secret or a person's path)."""
    ctx = error.get("ctx") or {}
    kind = error["type"]
    if kind == "value_error":
        return str(ctx.get("error", "a valid value"))
    return {
        "int_parsing": "a whole number",
        "int_type": "a whole number",
        "int_from_float": "a whole number",
        "float_parsing": "a number",
        "bool_parsing": "true or false",
        "greater_than_equal": f"a number of at least {ctx.get('ge')}",
        "greater_than": f"a number greater than {ctx.get('gt')}",
        "less_than_equal": f"a number of at most {ctx.get('le')}",
        "less_than": f"a number less than {ctx.get('lt')}",
        "literal_error": f"one of {ctx.get('expected')}",
        "string_pattern_mismatch": f"a value of the form {ctx.get('pattern')}",
    }.get(kind, "a valid value")


def settings_problem(exc: ValidationError) -> str:
    """One sentence naming each bad FEEDSYNC_ variable and what it takes, never its value."""
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        loc = [str(part) for part in error["loc"]]
        if not loc:  # a check across settings: its sentence names the variables it concerns
            problems.append(str(error.get("ctx", {}).get("error", error["msg"])))
            continue
        variable = loc[0].upper() if loc[0].upper().startswith("FEEDSYNC_") else f"FEEDSYNC_{loc[0].upper()}"
        problems.append(f"{variable} takes {_takes(error)}")
    return "; ".join(problems) + "; fix the environment (or unset the variable for its default) and try again"


def fail(message: str) -> NoReturn:
    click.echo(f"feedsync: {printable_lines(message)}", err=True)
    sys.exit(1)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """feedsync: keeps a learning platform's people in step with the systems that own them."""
    try:
        settings = get_settings()
    except ValidationError as exc:
        # pydantic's own text holds the value given, and a traceback holds it again.
        fail(settings_problem(exc))
    configure_logging(settings.log_level)
