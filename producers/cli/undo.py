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
    _start_and_maybe_wait(lambda: start_undo(run_id, skip_conflicts=skip_conflicts), wait, as_json=as_json)


def _preview_text(p: dict[str, Any]) -> str:
    lines = [f"undoing run {p['run_id']} ({p['connection']}) would (dry run, nothing changed):"]
    for part in ("people", "units", "positions"):
        e = p[part]
        if e["updates"] or e["deactivations"]:
            lines.append(
                f"  {part}: restore {e['updates']}, deactivate {e['deactivations']}, reactivate {e['reactivations']}"
            )
    for tbl, c in p["by_table"].items():
        lines.append(f"  lms.{tbl}: {c['restored']} row(s) restored, {c['created']} created by the run undone")
    if len(lines) == 1:
        lines.append("  change nothing: the run changed no row")
    if p["conflicts"]:
        lines.append(f"conflicts: {p['conflicts']} row(s) changed since (refused unless --skip-conflicts):")
        lines += [f"  {c}" for c in p["conflicts_sample"]]
        if p["conflicts"] > len(p["conflicts_sample"]):
            lines.append(f"  ... and {p['conflicts'] - len(p['conflicts_sample'])} more")
    for why in p["exceeds"]:
        lines.append(f"would wait for approval: {why}")
    return "\n".join(lines)
