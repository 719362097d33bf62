"""``feedsync undo RUN_ID``: undo a completed import run, or preview it with ``--dry-run``."""

from __future__ import annotations

import json
from typing import Any

import click

from producers.cli.base import cli, fail
from producers.cli.runs import _start_and_maybe_wait


@cli.command()
@click.argument("run_id", type=int)
@click.option("--dry-run", is_flag=True, help="print what the undo would change and the conflicts; change nothing")
@click.option(
    "--skip-conflicts", is_flag=True, help="leave rows changed since by other runs as they are; undo the rest"
)
@click.option(
    "--json", "as_json", is_flag=True, help="as JSON: the preview (with --dry-run), or the undo run's id and status"
)
@click.option("--wait", is_flag=True, help="wait for the undo run; exit non-zero if it failed")
def undo(run_id: int, dry_run: bool, skip_conflicts: bool, as_json: bool, wait: bool) -> None:
    """Undo run RUN_ID: a run of type undo restores every row it changed, where the row still holds
    what the run wrote. People it created are deactivated, people it deactivated reactivated."""
    from producers.commands import CommandError
    from producers.undo import preview, start_undo

    if dry_run:
        try:
            p = preview(run_id)
        except CommandError as exc:
            fail(str(exc))
        click.echo(json.dumps(p, indent=2, default=str) if as_json else _preview_text(p))
        return
    _start_and_maybe_wait(
        lambda: start_undo(run_id, skip_conflicts=skip_conflicts),
        wait,
        as_json=as_json,
        audit=("undo", f"run {run_id}"),
    )


def _preview_text(p: dict[str, Any]) -> str:
    from producers.undo import preview_lines

    return "\n".join(preview_lines(p))
