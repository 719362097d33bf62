"""Starting and deciding runs: upload, sync, rerun, approve, reject, cancel."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from producers.cli.base import cli, fail
from producers.output import printable, printable_lines
from schemas.settings import get_settings


@cli.command()
@click.argument("connection")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def upload(connection: str, files: tuple[Path, ...]) -> None:
    """Copy FILES into CONNECTION's drop folder atomically."""
    from producers.audit import cli_action
    from producers.commands import CommandError
    from producers.commands import upload as do_upload

    with cli_action("upload", connection) as detail:
        try:
            dropped = do_upload(get_settings(), connection, list(files))
        except CommandError as exc:
            detail["refused"] = f"refused: {exc}"
            fail(str(exc))
        detail["files"] = len(dropped)
    for p in dropped:
        click.echo(f"dropped {printable(p)}")


def _start_and_maybe_wait(
    start: Any, wait: bool, *, as_json: bool = False, audit: tuple[str, str] | None = None
) -> None:
    """Queue a run with ``start()``; with --wait (always with the stub broker) follow it to the end.
    ``as_json``: one JSON object (run_id, status, error) instead of the lines, exit codes the same.
    ``audit``: the action and its target, recorded in the audit when the run is queued (or refused)."""
    from producers.commands import CommandError, wait_for_run
    from schemas.states import RunStatus

    if audit is not None:
        start = _audited(start, *audit)
    settings = get_settings()
    say = (lambda _line: None) if as_json else click.echo
    try:
        if settings.is_stub:
            from producers.inprocess import inprocess_worker

            with inprocess_worker():
                run_id = start()
                st = wait_for_run(run_id)
        else:
            run_id = start()
            say(f"run {run_id} queued")
            if not wait:
                if as_json:
                    click.echo(json.dumps({"run_id": run_id, "status": "queued", "error": None}))
                return
            st = wait_for_run(run_id)
    except CommandError as exc:
        fail(str(exc))
    if as_json:
        click.echo(json.dumps({"run_id": run_id, "status": str(st["status"]), "error": st["error"]}, default=str))
    else:
        click.echo(f"run {run_id}: {st['status']}" + (f": {printable_lines(st['error'])}" if st["error"] else ""))
        _echo_export_file(run_id)
        if st["status"] == RunStatus.AWAITING_APPROVAL:
            click.echo(f"see its plan with `feedsync run {run_id}`, then `feedsync approve {run_id}` or `reject`")
    if st["status"] in (RunStatus.FAILED, RunStatus.REJECTED, RunStatus.CANCELLED):
        sys.exit(2)


def _audited(start: Any, action: str, target: str) -> Any:
    """``start``, recording the action in the audit with the run it queued, or refused."""
    from producers.audit import cli_action

    def run() -> int:
        with cli_action(action, target) as detail:
            detail["run_id"] = run_id = int(start())
        return run_id

    return run


def _echo_export_file(run_id: int) -> None:
    from producers.queries import run_detail

    detail = run_detail(run_id)
    e = detail["export"] if detail else None
    if e and e["rows"] is not None:
        click.echo(f"wrote {e['folder']}/{e['file']} ({e['rows']} rows)")


@cli.command()
@click.argument("connection")
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="dated feeds from this day to today; an export: what changed from this day (00:00 UTC) until now",
)
@click.option(
    "--access",
    type=click.Choice(["online", "exclusive"]),
    default="online",
    show_default=True,
    help="exclusive: one transaction, readers see all or none; online: committed in batches",
)
@click.option("--dry-run", is_flag=True, help="compute the plan; write nothing to the learning store")
@click.option(
    "--file",
    "preview_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="with --dry-run: plan this file alone, from anywhere (not the drop dir)",
)
@click.option("--wait", is_flag=True, help="wait for the run; exit non-zero if it failed")
def sync(connection: str, since: Any, access: str, dry_run: bool, preview_file: Path | None, wait: bool) -> None:
    """Start an on-demand run of CONNECTION: the files present now, or dated files since a day."""
    from producers.commands import start_sync
    from schemas.states import AccessMode

    if preview_file is not None:
        if not dry_run or since:
            fail("--file previews one file: use it with --dry-run, without --since")
        _preview(connection, preview_file, AccessMode(access), wait)
        return
    if not dry_run:
        _pull_first(connection)
    _start_and_maybe_wait(
        lambda: start_sync(
            get_settings(),
            connection,
            access=AccessMode(access),
            dry_run=dry_run,
            since=since.date() if since else None,
        ),
        wait,
        audit=("sync", connection),
    )


def _pull_first(connection: str) -> None:
    """An SFTP pull connection fetches from its server first (min_file_age_s honoured), then runs."""
    from producers.commands import CommandError
    from producers.pull_first import pull_first

    try:
        said = pull_first(get_settings(), connection)
    except CommandError as exc:
        fail(str(exc))
    if said:
        click.echo(f"{printable(connection)}: {said}")


def _preview(connection: str, path: Path, access: Any, wait: bool) -> None:
    from producers.preview import PreviewError, preview

    try:
        _start_and_maybe_wait(lambda: preview(get_settings(), connection, path, access), wait)
    except PreviewError as exc:
        fail(str(exc))


@cli.command()
@click.argument("connection")
@click.option("--run", "run_id", type=int, help="the run to rerun; only the latest is allowed")
@click.option("--wait", is_flag=True, help="wait for the run; exit non-zero if it failed")
def rerun(connection: str, run_id: int | None, wait: bool) -> None:
    """Rerun CONNECTION's latest run with the files it used, as they are now."""
    from producers.commands import rerun as do_rerun

    _start_and_maybe_wait(lambda: do_rerun(get_settings(), connection, run_id), wait, audit=("rerun", connection))


def _decide(decision: str, run_id: int, done: str, comment: str | None) -> None:
    from producers import commands
    from producers.audit import cli_action

    with cli_action(decision, f"run {run_id}") as detail:
        if comment:
            detail["comment"] = comment
        try:
            getattr(commands, decision)(run_id, comment)
        except commands.CommandError as exc:
            detail["refused"] = f"refused: {exc}"
            fail(str(exc))
    click.echo(f"run {run_id}: {done}")


@cli.command()
@click.argument("run_id", type=int)
@click.option("--comment", help="why, kept with the run and shown with the decision")
def approve(run_id: int, comment: str | None) -> None:
    """Apply a run that waits for approval."""
    _decide("approve", run_id, "approved; applying", comment)


@cli.command()
@click.argument("run_id", type=int)
@click.option("--comment", help="why, kept with the run and shown with the decision")
def reject(run_id: int, comment: str | None) -> None:
    """Discard a run that waits for approval; nothing of it is applied."""
    _decide("reject", run_id, "rejected", comment)


@cli.command()
@click.argument("run_id", type=int)
@click.option("--reason", help="why, kept with the run (sync.run_actions)")
def cancel(run_id: int, reason: str | None) -> None:
    """End a queued, held (awaiting_approval) or stuck in_progress run; the connection's next run starts."""
    from producers.audit import cli_action
    from producers.commands import CommandError
    from producers.commands import cancel as do_cancel

    with cli_action("cancel", f"run {run_id}") as detail:
        try:
            was = do_cancel(run_id, reason)
        except CommandError as exc:
            detail["refused"] = f"refused: {exc}"
            fail(str(exc))
        detail["was"] = str(was)
    click.echo(f"run {run_id}: cancelled (was {was})")
