"""The ``feedsync`` command."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any, NoReturn

import click

from producers.output import json_text, printable, printable_lines
from schemas.settings import get_settings
from workers.logs import configure_logging

#: A count of something to show or do: 1 or more (0 or less is a mistake, never "no limit").
POSITIVE = click.IntRange(min=1)


def _emit_json(data: Any) -> None:
    click.echo(json_text(data))


def _table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    if not rows:
        click.echo("(none)")
        return
    cells = [[printable(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    click.echo("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)))
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))


def _fail(message: str) -> NoReturn:
    click.echo(f"feedsync: {printable_lines(message)}", err=True)
    sys.exit(1)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """feedsync: keeps a learning platform's people in step with the systems that own them."""
    configure_logging(get_settings().log_level)


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
def connections_apply(file: Path) -> None:
    """Validate FILE (TOML) and store its connections and group rules."""
    from producers.commands import apply_connections
    from schemas.connections import ConfigError, load_connections_toml
    from schemas.rules import load_rules_toml
    from workers.rules import apply_rules

    text = _read_toml(file)
    try:
        parsed = load_connections_toml(text, str(file))
        rules = load_rules_toml(text, str(file))
    except ConfigError as exc:
        _fail(f"refused, nothing applied:\n{exc}")
    except RecursionError:  # tomllib recurses once per level of nested arrays or tables
        _fail(f"refused, nothing applied:\n{file}: values are nested too deeply to be a connections file")
    for name, outcome in apply_connections(parsed):
        click.echo(f"{name}: {outcome}")
    for name, outcome in apply_rules(rules):
        click.echo(f"group {name}: {outcome}")


def _read_toml(file: Path) -> str:
    """The file as text, or a refusal naming the line and column of the first byte that is not UTF-8."""
    data = file.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        _fail(
            f"refused, nothing applied:\n{file}:{line}: column {column}: byte 0x{data[exc.start]:02x} is not UTF-8; "
            "save the file as UTF-8"
        )


@connections.command("list")
@click.option("--json", "as_json", is_flag=True)
def connections_list(as_json: bool) -> None:
    """List live connections."""
    from producers.commands import list_connections

    rows = list_connections()
    if as_json:
        _emit_json(rows)
    else:
        _table(rows, ["name", "kind", "enabled", "trigger", "path", "files_waiting"])


@connections.command("delete")
@click.argument("name")
@click.option("--force", is_flag=True, help="also cancel its runs that have not ended and remove their files")
def connections_delete(name: str, force: bool) -> None:
    """Delete a connection; its history stays. Refused while it has runs going or files waiting."""
    from producers.commands import CommandError, delete_connection

    try:
        cancelled = delete_connection(name, force=force)
    except CommandError as exc:
        _fail(str(exc))
    for run_id in cancelled:
        click.echo(f"run {run_id}: cancelled")
    click.echo(f"{printable(name)}: deleted (its runs stay in the history)")


def _settings_for_children() -> Any:
    """Settings, with the folders as resolved here passed on to every process started from here."""
    import os

    s = get_settings()
    os.environ["FEEDSYNC_DROP_DIR"] = str(s.drop_dir)
    os.environ["FEEDSYNC_EXPORT_DIR"] = str(s.export_dir)
    os.environ["FEEDSYNC_STORE_DIR"] = str(s.store_dir)
    os.environ["FEEDSYNC_KEYS_DIR"] = str(s.keys_dir)
    return s


@cli.command()
@click.option("--processes", type=POSITIVE, default=None, help="worker processes (default FEEDSYNC_WORKER_PROCESSES)")
@click.option("--threads", type=POSITIVE, default=None, help="threads per process (default FEEDSYNC_WORKER_THREADS)")
def worker(processes: int | None, threads: int | None) -> None:
    """Run a supervised group of Dramatiq worker processes."""
    from producers.supervisor import Child, Supervisor, dramatiq_argv

    s = _settings_for_children()
    argv = dramatiq_argv(processes or s.worker_processes, threads or s.worker_threads)
    sys.exit(Supervisor([Child("worker", argv)]).run())


@cli.command()
def watch() -> None:
    """Watch the drop dir and register finished files."""
    import signal

    from producers.watcher import Watcher

    w = Watcher(get_settings())
    signal.signal(signal.SIGTERM, lambda *_: w.stop())
    try:
        w.run()
    except KeyboardInterrupt:
        w.stop()


@cli.command()
def scheduler() -> None:
    """Run periodic duties: schedules, the outbox sweeper and file retention."""
    import signal

    from producers import scheduler as sched

    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    try:
        sched.run(get_settings(), stopping)
    except KeyboardInterrupt:
        stopping.set()


@cli.command()
@click.option("--processes", type=POSITIVE, default=None)
@click.option("--threads", type=POSITIVE, default=None)
def up(processes: int | None, threads: int | None) -> None:
    """Worker group, watcher and scheduler in one supervised process group."""
    from producers.supervisor import Child, Supervisor, dramatiq_argv, feedsync_argv

    s = _settings_for_children()
    children = [
        Child("worker", dramatiq_argv(processes or s.worker_processes, threads or s.worker_threads)),
        Child("watcher", feedsync_argv("watch")),
        Child("scheduler", feedsync_argv("scheduler")),
        Child("sftp-pull", feedsync_argv("sftp", "pull")),
    ]
    sys.exit(Supervisor(children).run())


@cli.command()
@click.argument("connection")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def upload(connection: str, files: tuple[Path, ...]) -> None:
    """Copy FILES into CONNECTION's drop folder atomically."""
    from producers.commands import CommandError
    from producers.commands import upload as do_upload

    try:
        for p in do_upload(get_settings(), connection, list(files)):
            click.echo(f"dropped {printable(p)}")
    except CommandError as exc:
        _fail(str(exc))


def _start_and_maybe_wait(start: Any, wait: bool) -> None:
    """Queue a run with ``start()``; with --wait (always with the stub broker) follow it to the end."""
    from producers.commands import CommandError, wait_for_run
    from schemas.states import RunStatus

    settings = get_settings()
    try:
        if settings.is_stub:
            from producers.inprocess import inprocess_worker

            with inprocess_worker():
                run_id = start()
                st = wait_for_run(run_id)
        else:
            run_id = start()
            click.echo(f"run {run_id} queued")
            if not wait:
                return
            st = wait_for_run(run_id)
    except CommandError as exc:
        _fail(str(exc))
    click.echo(f"run {run_id}: {st['status']}" + (f": {printable_lines(st['error'])}" if st["error"] else ""))
    _echo_export_file(run_id)
    if st["status"] == RunStatus.AWAITING_APPROVAL:
        click.echo(f"see its plan with `feedsync run {run_id}`, then `feedsync approve {run_id}` or `reject`")
    if st["status"] in (RunStatus.FAILED, RunStatus.REJECTED, RunStatus.CANCELLED):
        sys.exit(2)


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
@click.option("--wait", is_flag=True, help="wait for the run; exit non-zero if it failed")
def sync(connection: str, since: Any, access: str, dry_run: bool, wait: bool) -> None:
    """Start an on-demand run of CONNECTION: the files present now, or dated files since a day."""
    from producers.commands import start_sync
    from schemas.states import AccessMode

    _start_and_maybe_wait(
        lambda: start_sync(
            get_settings(),
            connection,
            access=AccessMode(access),
            dry_run=dry_run,
            since=since.date() if since else None,
        ),
        wait,
    )


@cli.command()
@click.argument("connection")
@click.option("--run", "run_id", type=int, help="the run to rerun; only the latest is allowed")
@click.option("--wait", is_flag=True, help="wait for the run; exit non-zero if it failed")
def rerun(connection: str, run_id: int | None, wait: bool) -> None:
    """Rerun CONNECTION's latest run with the files it used, as they are now."""
    from producers.commands import rerun as do_rerun

    _start_and_maybe_wait(lambda: do_rerun(get_settings(), connection, run_id), wait)


def _decide(decision: str, run_id: int, done: str) -> None:
    from producers import commands

    try:
        getattr(commands, decision)(run_id)
    except commands.CommandError as exc:
        _fail(str(exc))
    click.echo(f"run {run_id}: {done}")


@cli.command()
@click.argument("run_id", type=int)
def approve(run_id: int) -> None:
    """Apply a run that waits for approval."""
    _decide("approve", run_id, "approved; applying")


@cli.command()
@click.argument("run_id", type=int)
def reject(run_id: int) -> None:
    """Discard a run that waits for approval; nothing of it is applied."""
    _decide("reject", run_id, "rejected")


@cli.command()
@click.argument("run_id", type=int)
@click.option("--reason", help="why, kept with the run (sync.run_actions)")
def cancel(run_id: int, reason: str | None) -> None:
    """End a queued, held (awaiting_approval) or stuck in_progress run; the connection's next run starts."""
    from producers.commands import CommandError
    from producers.commands import cancel as do_cancel

    try:
        was = do_cancel(run_id, reason)
    except CommandError as exc:
        _fail(str(exc))
    click.echo(f"run {run_id}: cancelled (was {was})")


@cli.command()
@click.argument("connection", required=False)
@click.option("--json", "as_json", is_flag=True)
@click.option("--limit", type=POSITIVE, default=50, show_default=True)
def history(connection: str | None, as_json: bool, limit: int) -> None:
    """Execution history, newest first."""
    from producers.queries import history as query

    rows = query(connection, limit)
    if as_json:
        _emit_json(rows)
        return
    flat = [
        {
            **r,
            "errors": "yes" if r["has_errors"] else "",
            **{k: r["counts"][k] for k in ("read", "created", "updated", "unchanged", "deactivated", "rejected")},
            # created/updated/retired courses, and learner records written
            "courses": "{courses_created}/{courses_updated}/{courses_retired}".format(**r["content"])
            if r["content"]
            else "",
            "progress": r["content"]["progress_written"] if r["content"] else "",
        }
        for r in rows
    ]
    content = ["courses", "progress"] if any(r["content"] for r in rows) else []
    exports = ["window", "rows", "file"] if any(r["export"] for r in rows) else []
    for r in flat:
        if r["export"]:  # an export's window (from, to: UTC dates) and its file
            e = r["export"]
            r.update(window=f"{e['window_from'][:10]}..{e['window_to'][:10]}", rows=e["rows"], file=e["file"])
    _table(
        flat,
        [
            "run_id",
            "connection",
            "type",
            "start_date",
            "started_at",
            "duration_s",
            "status",
            "read",
            "created",
            "updated",
            "unchanged",
            "deactivated",
            "rejected",
            *content,
            *exports,
            "errors",
        ],
    )


@cli.command()
@click.option("--json", "as_json", is_flag=True)
def groups(as_json: bool) -> None:
    """Groups from the rules, with their sizes."""
    from workers.rules import groups as query

    rows = query()
    if as_json:
        _emit_json(rows)
        return
    _table(
        [
            {
                **r,
                "rule": ", ".join(f"{k}={v}" for k, v in r["rule"].items() if v),
                "programs": ", ".join(r["programs"]),
            }
            for r in rows
        ],
        ["name", "members", "active", "rule", "programs"],
    )


@cli.command()
@click.argument("run_id", type=int)
@click.option("--json", "as_json", is_flag=True)
def run(run_id: int, as_json: bool) -> None:
    """One run with its files and stages."""
    from producers.queries import run_detail

    r = run_detail(run_id)
    if r is None:
        _fail(f"no run {run_id}")
    if as_json:
        _emit_json(r)
        return
    click.echo(f"run {r['run_id']}  {r['connection']}  {r['type']}  {r['status']}  {r['duration_s']}s")
    if r["error"]:
        click.echo(f"error: {printable_lines(r['error'])}")
    click.echo("counts: " + ", ".join(f"{k}={v}" for k, v in {**r["counts"], **r["details"]}.items()))
    if r["note"]:
        click.echo(f"note: {printable_lines(r['note'])}")
    if r["export"]:
        e = r["export"]
        click.echo(f"export: {e['folder']}/{e['file']}  rows={e['rows']}  bytes={e['bytes']}  sha256={e['sha256']}")
        click.echo(f"window: {e['window_from']} (inclusive) to {e['window_to']} (exclusive), by change time")
    plan = r.get("plan")
    if plan:
        click.echo("\nplan:" + (" (dry run)" if r["dry_run"] else ""))
        for reason in plan.get("held_because", []):
            click.echo(f"  waiting for approval: {printable(reason)}")
        for part in ("creates", "updates", "deactivations", "manager_moves"):
            sample = printable(", ".join(plan.get(f"{part}_sample", [])))
            click.echo(f"  {part.replace('_', ' ')}: {plan.get(part, 0)}" + (f"  e.g. {sample}" if sample else ""))
    click.echo("\nfiles:")
    # Processed feeds are removed after their run (user feeds at once, content feeds after retention).
    files = [{**f, "kept": "removed" if f["removed_at"] else "kept"} for f in r["files"]]
    _table(files, ["file", "status", "rows_read", "chunks", "kept", "error"])
    if r["memberships"]:
        click.echo("\ngroup memberships changed:")
        _table(r["memberships"], ["group", "change", "people", "sample"])
    click.echo("\nstages:")
    _table(r["stages"], ["stage", "part", "status", "attempts", "duration_s", "error"])
    if r["actions"]:
        click.echo("\nactions:")
        _table(r["actions"], ["action", "from_status", "done_by", "done_at", "reason"])


@cli.command()
@click.argument("run_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@click.option("--csv", "as_csv", is_flag=True, help="the error report as CSV, for the person fixing the file")
def errors(run_id: int, as_json: bool, as_csv: bool) -> None:
    """Row and file errors of a run."""
    from producers.output import write_csv
    from producers.queries import errors as query
    from producers.queries import run_status

    if run_status(run_id) is None:
        _fail(f"no run {run_id}")
    rows = query(run_id)
    if as_json:
        _emit_json(rows)
    elif as_csv:
        write_csv(
            sys.stdout, ["file", "line", "column", "column_name", "code", "message", "value", "row_rejected"], rows
        )
    else:
        _table(rows, ["file", "line", "column", "column_name", "code", "message"])


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
        _emit_json(rows)
    else:
        _table(rows, ["id", "queue", "actor", "run_id", "connection", "attempts", "age_s", "error"])


@dlq.command("show")
@click.argument("dead_letter_id", type=int)
def dlq_show(dead_letter_id: int) -> None:
    """The whole message and its error."""
    from producers import dlq as dead

    row = dead.show(dead_letter_id)
    if row is None:
        _fail(f"no dead letter {dead_letter_id}")
    _emit_json(row)


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
        _fail("name dead letter ids, --run RUN_ID or --all")
    missing = dead.missing(list(ids))
    if missing:
        _fail(f"no dead letter {', '.join(map(str, missing))}; see `feedsync dlq list --all`")
    if run_id is not None and run_status(run_id) is None:
        _fail(f"no run {run_id}")
    results = dead.replay(
        get_settings(), ids=list(ids), run_id=run_id, everything=everything, dry_run=dry_run, force=force
    )
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
        _fail("name dead letter ids or --older-than DAYS")
    if days is not None and not (math.isfinite(days) and days >= 0):
        _fail(f"--older-than {days}: give a number of days, 0 or more (e.g. --older-than 30)")
    result = dead.purge(ids=list(ids), older_than_days=days, include_unreplayed=include_unreplayed)
    if result.missing:
        _fail(f"no dead letter {', '.join(map(str, result.missing))}; nothing purged")
    click.echo(f"purged {result.purged} dead letters")
    if result.kept_unreplayed:
        click.echo(
            f"kept {result.kept_unreplayed} never replayed; replay them, or add --include-unreplayed to purge them too"
        )


@cli.command()
@click.option("--json", "as_json", is_flag=True)
def status(as_json: bool) -> None:
    """Where feedsync reads and writes, and what is going on now."""
    import psycopg

    from producers.queries import overview

    s = get_settings()
    # Absolute: a relative FEEDSYNC_DROP_DIR was resolved once, against the folder feedsync started in.
    info: dict[str, Any] = {"drop_dir": str(s.drop_dir), "export_dir": str(s.export_dir)}
    try:
        info.update(overview())
    except psycopg.Error as exc:
        info["database"] = f"unreachable: {type(exc).__name__}"
    if as_json:
        _emit_json(info)
        return
    click.echo(f"drop dir:     {printable(info['drop_dir'])}")
    click.echo(f"export dir:   {printable(info['export_dir'])}")
    if "database" in info:
        click.echo(f"database:     {info['database']}")
        sys.exit(1)
    click.echo(f"connections:  {info['connections']}")
    click.echo("runs:         " + ", ".join(f"{k} {v}" for k, v in info["runs"].items()))
    click.echo(f"files waiting for a run: {info['files_waiting']}")
    click.echo(f"dead letters not replayed: {info['dead_letters']}")


@cli.command()
@click.option("--rows", type=POSITIVE, default=3000, show_default=True)
@click.option("--bad-rows", type=click.IntRange(min=0), default=5, show_default=True)
def demo(rows: int, bad_rows: int) -> None:
    """Apply a demo connection, drop a generated feed into a running `feedsync up`, show the result."""
    import subprocess
    import tempfile

    from producers import feedgen
    from producers.commands import apply_connections, upload, wait_for_run
    from producers.queries import history as query
    from producers.supervisor import feedsync_argv
    from schemas.connections import load_connections_toml
    from workers.migrations import migrate as run_migrations

    settings = get_settings()
    t0 = time.monotonic()
    run_migrations(settings)
    apply_connections(load_connections_toml(feedgen.DEMO_CONNECTIONS, "demo connections"))
    before = {r["run_id"] for r in query("hr-users", 1000)}
    log_path = Path("var") / "demo-up.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    up_log = open(log_path, "wb")  # noqa: SIM115  (closed below, after `up` stops)
    click.echo(f"started `feedsync up` (its logs: {log_path})")
    up_proc = subprocess.Popen(feedsync_argv("up"), stdout=up_log, stderr=subprocess.STDOUT)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            stamp = time.strftime("%Y%m%d%H%M%S")
            feed = feedgen.generate_users(
                Path(tmp) / f"users-{stamp}.csv", rows, bad_rows=bad_rows, seed=int(time.time())
            )
            upload(settings, "hr-users", [feed.path])
        click.echo(f"dropped a feed of {rows} people ({bad_rows} bad rows); waiting for the run...")
        deadline = time.monotonic() + 110
        new: list[dict[str, Any]] = []
        while not new and time.monotonic() < deadline:
            new = [r for r in query("hr-users", 20) if r["run_id"] not in before]
            time.sleep(0.3)
        if not new:
            _fail("no run started within the time limit; is RabbitMQ up? see `feedsync up` logs above")
        wait_for_run(new[-1]["run_id"], timeout_s=max(5.0, deadline - time.monotonic()))
    finally:
        up_proc.terminate()
        up_proc.wait(timeout=90)
        up_log.close()
    click.echo("\n== execution history (feedsync history hr-users) ==")
    ctx = click.get_current_context()
    ctx.invoke(history, connection="hr-users", as_json=False, limit=5)
    click.echo(f"\n== rejected rows of run {new[-1]['run_id']} (feedsync errors {new[-1]['run_id']}) ==")
    ctx.invoke(errors, run_id=new[-1]["run_id"], as_json=False, as_csv=False)
    click.echo(f"\ndemo finished in {time.monotonic() - t0:.1f}s")


from producers.sftp_cli import sftp as _sftp  # noqa: E402  (its own module; registered here)

cli.add_command(_sftp)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
