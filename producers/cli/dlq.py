"""Dead letters: list, show, replay, purge."""

from __future__ import annotations

import sys

import click

from producers.cli.base import cli, echo_json, echo_table, fail
from producers.output import printable
from schemas.settings import get_settings


@cli.group()
def dlq() -> None:
    """Dead-lettered messages: list, show, replay, purge."""


@dlq.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.option("--all", "include_replayed", is_flag=True, help="include dead letters already replayed")
def dlq_list(as_json: bool, include_replayed: bool) -> None:
    """Each dead letter with its id, queue, actor, run, connection, error, attempts and age."""
    from producers import dlq as dead

    rows = dead.list_dead_letters(include_replayed)
    if as_json:
        echo_json(rows)
    else:
        echo_table(rows, ["id", "queue", "actor", "run_id", "connection", "attempts", "age_s", "error"])


@dlq.command("show")
@click.argument("dead_letter_id", type=int)
def dlq_show(dead_letter_id: int) -> None:
    """The whole message and its error."""
    from producers import dlq as dead

    row = dead.show(dead_letter_id)
    if row is None:
        fail(f"no dead letter {dead_letter_id}")
    echo_json(row)


@dlq.command("replay")
@click.argument("ids", nargs=-1, type=int)
@click.option("--run", "run_id", type=int, help="every dead letter of this run")
@click.option("--all", "everything", is_flag=True, help="every dead letter not yet replayed")
@click.option("--dry-run", is_flag=True, help="say what would be replayed, change nothing")
@click.option("--force", is_flag=True, help="also replay messages whose stage already succeeded")
def dlq_replay(ids: tuple[int, ...], run_id: int | None, everything: bool, dry_run: bool, force: bool) -> None:
    """Republish dead letters to their original queue with a fresh retry count."""
    from producers import dlq as dead
    from producers.queries import run_status

    if not ids and run_id is None and not everything:
        fail("name dead letter ids, --run RUN_ID or --all")
    missing = dead.missing(list(ids))
    if missing:
        fail(f"no dead letter {', '.join(map(str, missing))}; see `feedsync dlq list --all`")
    if run_id is not None and run_status(run_id) is None:
        fail(f"no run {run_id}")
    from producers.audit import cli_action

    if dry_run:
        results = dead.replay(get_settings(), ids=list(ids), run_id=run_id, everything=everything, dry_run=True)
    else:
        target = f"run {run_id}" if run_id is not None else ("all" if everything else None)
        with cli_action("replay", target) as detail:
            results = dead.replay(get_settings(), ids=list(ids), run_id=run_id, everything=everything, force=force)
            # The dead letters' ids, each with what became of it (replayed, skipped, refused).
            detail["results"] = {str(r.dead_letter_id): r.outcome for r in results}
    if not results:
        click.echo("no dead letters to replay")
    for r in results:
        outcome = r.outcome.replace("_", " ") + (f": {printable(r.reason)}" if r.reason else "")
        click.echo(f"dead letter {r.dead_letter_id} ({r.actor}, run {r.run_id}): {outcome}")
    if any(r.outcome == "refused" for r in results):
        sys.exit(1)


@dlq.command("purge")
@click.argument("ids", nargs=-1, type=int)
@click.option("--older-than", "days", type=float, help="purge dead letters older than DAYS (0 or more)")
@click.option(
    "--include-unreplayed", is_flag=True, help="also dead letters never replayed (the only record of work not done)"
)
def dlq_purge(ids: tuple[int, ...], days: float | None, include_unreplayed: bool) -> None:
    """Delete archived dead letters that were replayed (with --include-unreplayed, also the others)."""
    import math

    from producers import dlq as dead

    if not ids and days is None:
        fail("name dead letter ids or --older-than DAYS")
    if days is not None and not (math.isfinite(days) and days >= 0):
        fail(f"--older-than {days}: give a number of days, 0 or more (e.g. --older-than 30)")
    result = dead.purge(ids=list(ids), older_than_days=days, include_unreplayed=include_unreplayed)
    if result.missing:
        fail(f"no dead letter {', '.join(map(str, result.missing))}; nothing purged")
    click.echo(f"purged {result.purged} dead letters")
    if result.kept_unreplayed:
        click.echo(
            f"kept {result.kept_unreplayed} never replayed; replay them, or add --include-unreplayed to purge them too"
        )
