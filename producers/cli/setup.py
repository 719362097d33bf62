"""Setting feedsync up: migrations and connections as code."""

from __future__ import annotations

from pathlib import Path

import click

from producers.cli.base import cli, echo_json, echo_table, fail
from producers.output import printable
from schemas.settings import get_settings


@cli.command()
def migrate() -> None:
    """Create the database if missing and apply the SQL migrations."""
    from workers.migrations import migrate as run_migrations

    applied = run_migrations(get_settings())
    click.echo(f"applied: {', '.join(applied)}" if applied else "database is up to date")


@cli.group()
def connections() -> None:
    """Connections as code."""


@connections.command("apply")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--prune", is_flag=True, help="also remove the group rules FILE does not declare")
@click.option("--force", is_flag=True, help="apply even where FILE would undo a change made in the console")
def connections_apply(file: Path, prune: bool, force: bool) -> None:
    """Validate FILE (TOML) and store its connections and group rules. Rules of other files stay
    unless --prune. A file that lacks a change made in the console is refused, naming the settings
    it would undo, unless --force."""
    from producers.commands import CommandError, apply_connections
    from schemas.connections import ConfigError, load_connections_toml
    from schemas.rules import load_rules_toml
    from workers.rules import apply_rules

    text = _read_toml(file)
    try:
        parsed = load_connections_toml(text, str(file))
        rules = load_rules_toml(text, str(file))
    except ConfigError as exc:
        fail(f"refused, nothing applied:\n{exc}")
    except RecursionError:  # tomllib recurses once per level of nested arrays or tables
        fail(f"refused, nothing applied:\n{file}: values are nested too deeply to be a connections file")
    from producers.audit import cli_action

    with cli_action("connections_apply", file.name) as detail:
        try:
            applied = apply_connections(parsed, source_file=str(file.resolve()), force=force)
        except CommandError as exc:
            detail["refused"] = f"refused: {exc}"
            fail("refused, nothing applied:\n" + "\n".join(f"{file}: {line}" for line in str(exc).splitlines()))
        grouped = apply_rules(rules, prune=prune)
        # What changed: each connection and group rule with its outcome (created, updated, unchanged ...).
        detail["connections"] = {name: outcome for name, outcome in applied}
        if rules:
            detail["groups"] = {name: outcome for name, outcome in grouped}
    for name, outcome in applied:
        click.echo(f"{name}: {outcome}")
    for name, outcome in grouped:
        click.echo(f"group {name}: {outcome}")


def _read_toml(file: Path) -> str:
    """The file as text, or a refusal naming the line and column of the first byte that is not UTF-8."""
    data = file.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        fail(
            f"refused, nothing applied:\n{file}:{line}: column {column}: byte 0x{data[exc.start]:02x} is not UTF-8; "
            "save the file as UTF-8"
        )


@connections.command("list")
@click.option("--json", "as_json", is_flag=True)
def connections_list(as_json: bool) -> None:
    """List live connections."""
    from producers.connection_admin import list_connections

    rows = list_connections(get_settings())
    if as_json:
        echo_json(rows)
        return
    echo_table(
        [{**r, "files_ignored": len(r["files_ignored"])} for r in rows],
        ["name", "kind", "enabled", "trigger", "path", "files_waiting", "files_ignored", "next_slot"],
    )
    for r in rows:
        if r["parked_until"] is not None:  # an API's daily quota used up (workers/sources/linkedin.py)
            click.echo(
                f"{printable(r['name'])}: parked until {r['parked_until']:%Y-%m-%d %H:%M}Z: "
                f"{printable(r['parked_reason'] or 'the API')} answered HTTP 429 (daily quota); scheduled runs wait"
            )
    for r in rows:  # nothing sits in the drop dir in silence
        for f in r["files_ignored"]:
            click.echo(f"{printable(r['name'])}: ignored {printable(f['file'])}: {printable(f['why'])}")


@connections.command("delete")
@click.argument("name")
@click.option("--force", is_flag=True, help="also cancel its runs that have not ended and remove their files")
def connections_delete(name: str, force: bool) -> None:
    """Delete a connection; its history stays. Refused while it has runs going or files waiting."""
    from producers.commands import CommandError
    from producers.connection_admin import delete_connection

    try:
        cancelled = delete_connection(name, force=force)
    except CommandError as exc:
        fail(str(exc))
    for run_id in cancelled:
        click.echo(f"run {run_id}: cancelled")
    click.echo(f"{printable(name)}: deleted (its runs stay in the history)")
