"""Reading what happened: history, one run, its errors, groups, status."""

from __future__ import annotations

import sys
from typing import Any

import click

from producers.cli.base import POSITIVE, cli, echo_json, echo_table, fail
from producers.output import printable, printable_lines
from schemas.settings import get_settings


@cli.command()
@click.argument("connection", required=False)
@click.option("--json", "as_json", is_flag=True)
@click.option("--limit", type=POSITIVE, default=50, show_default=True)
def history(connection: str | None, as_json: bool, limit: int) -> None:
    """Execution history, newest first."""
    from producers.queries import count_columns
    from producers.queries import history as query

    rows = query(connection, limit)
    if as_json:
        echo_json(rows)
        return
    flat = [
        {
            **r,
            "errors": "yes" if r["has_errors"] else "",
            # The rows of the run's files and the people it deactivated, as columns; the rest in the
            # kind's own terms (a content run's courses, an export's rows), never as people.
            **count_columns(r.get("kind_counts") or {}),
            # A drop set aside: which run imported those bytes (none yet: they wait for a run).
            **(
                {"status": f"duplicate of run {r['duplicate_of_run']}" if r["duplicate_of_run"] else "duplicate"}
                if r["type"] == "duplicate"
                else {}
            ),
            # feedsync undo: the undo names the run it undid, the undone run its undo.
            **({"type": f"undo of {r['undo_of']}"} if r.get("undo_of") else {}),
            **({"status": f"{r['status']}, undone by {r['undone_by']}"} if r.get("undone_by") else {}),
        }
        for r in rows
    ]
    exports = ["window", "file"] if any(r.get("export") for r in rows) else []
    for r in flat:
        if r.get("export"):  # an export's window (from, to: UTC dates) and its file
            e = r["export"]
            r.update(window=f"{e['window_from'][:10]}..{e['window_to'][:10]}", file=e["file"])
    echo_table(
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
            "rejected",
            "deactivated",
            "counts",
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
        echo_json(rows)
        return
    echo_table(
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
        fail(f"no run {run_id}")
    if as_json:
        echo_json(r)
        return
    took = "not started" if r["duration_s"] is None else f"{r['duration_s']}s"
    if r["wait_s"] is not None:
        took += f" (plus {r['wait_s']}s waiting for approval)"
    click.echo(f"run {r['run_id']}  {r['connection']}  {r['type']}  {r['status']}  {took}")
    click.echo(f"started: {r['started_at'] or 'not yet'}  finished: {r['finished_at'] or 'not yet'}")
    _echo_decision(r)
    if r["error"]:
        click.echo(f"error: {printable_lines(r['error'])}")
    if r["undo_of"]:
        click.echo(f"undo of run {r['undo_of']}")
    if r["undone_by"]:
        click.echo(f"undone by run {r['undone_by']}")
    _echo_counts(r)
    if r["note"]:
        click.echo(f"note: {printable_lines(r['note'])}")
    if r["export"]:
        e = r["export"]
        click.echo(f"export: {e['folder']}/{e['file']}  rows={e['rows']}  bytes={e['bytes']}  sha256={e['sha256']}")
        click.echo(f"window: {e['window_from']} (inclusive) to {e['window_to']} (exclusive), by change time")
    _echo_plan(r)
    click.echo("\nfiles:")
    # Processed feeds are removed after their run (user feeds at once, content feeds after retention).
    files = [{**f, "kept": "removed" if f["removed_at"] else "kept"} for f in r["files"]]
    echo_table(files, ["file", "status", "rows_read", "chunks", "kept", "error"])
    if r["memberships"]:
        click.echo("\ngroup memberships changed:")
        echo_table(r["memberships"], ["group", "change", "people", "sample"])
    click.echo("\nstages:")
    echo_table(r["stages"], ["stage", "part", "status", "attempts", "duration_s", "error"])
    if r["actions"]:
        click.echo("\nactions:")
        echo_table(r["actions"], ["action", "from_status", "done_by", "done_at", "reason"])


def _echo_decision(r: dict[str, Any]) -> None:
    """Who approved or rejected a held run, when and why (feedsync approve/reject --comment, the console)."""
    if r["held_at"]:
        click.echo(f"held for approval: {r['held_at']}")
    d = r["decision"]
    if d:
        why = f": {printable(d['comment'])}" if d["comment"] else " (no comment)"
        click.echo(f"{d['outcome']} by {printable(d['by'])} at {d['at']}{why}")


def _echo_counts(r: dict[str, Any]) -> None:
    """The kind's counts, a line per thing counted, then every count as recorded (for support)."""
    if not r["kind_counts"]:
        waiting = {
            "queued": "counts: none yet (the run has not started)",
            "awaiting_approval": "counts: none yet (nothing applied; the plan below is what it would do)",
        }
        click.echo(waiting.get(r["status"], "counts: none"))
        return
    for noun, verbs in r["kind_counts"].items():
        click.echo(f"{noun}: " + ", ".join(f"{n} {verb}" for verb, n in verbs.items()))
    recorded = {**{k: v for k, v in r["counts"].items() if v}, **r["details"]}
    if recorded:
        click.echo("recorded: " + ", ".join(f"{k}={v}" for k, v in recorded.items()))


def _echo_plan(r: dict[str, Any]) -> None:
    """The plan, only when the load computed one (a dry run, or a safety rule that needed it),
    said to be a plan: what the load would do, computed before it applied anything."""
    plan = r.get("plan") or {}
    if "creates" in plan:
        parts = [(p.replace("_", " "), p) for p in ("creates", "updates", "deactivations", "manager_moves")]
        if "filter_leavers" in plan:  # a connection with [connections.filters]
            parts += [("filtered out", "filtered"), ("leaving the filters", "filter_leavers")]
    elif "courses_in_feed" in plan:
        parts = [("courses in the feed", "courses_in_feed"), ("progress rows in the feed", "progress_rows_in_feed")]
    else:
        return
    if r["dry_run"]:
        label = "plan (dry run: nothing was applied):"
    elif r["status"] == "awaiting_approval" and plan.get("held_deactivations"):
        label = "plan (creates and updates applied; the deactivations wait for approval):"
    elif r["status"] == "awaiting_approval":
        label = "plan (what the load will do if approved):"
    else:
        label = "plan (computed before the load; the counts above are what it did):"
    click.echo("\n" + label)
    for reason in plan.get("held_because", []):
        click.echo(f"  waiting for approval: {printable(reason)}")
    for text, part in parts:
        sample = printable(", ".join(plan.get(f"{part}_sample", [])))
        click.echo(f"  {text}: {plan.get(part, 0)}" + (f"  e.g. {sample}" if sample else ""))


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
        fail(f"no run {run_id}")
    rows = query(run_id)
    if as_json:
        echo_json(rows)
    elif as_csv:
        write_csv(
            sys.stdout, ["file", "line", "column", "column_name", "code", "message", "value", "row_rejected"], rows
        )
    else:
        echo_table(rows, ["file", "line", "column", "column_name", "code", "message"])


@cli.command()
@click.option("--json", "as_json", is_flag=True)
def status(as_json: bool) -> None:
    """Where feedsync reads and writes, and what is going on now."""
    import psycopg

    from producers.attention import needs_attention, summary
    from producers.queries import overview
    from producers.workergroups import worker_groups

    s = get_settings()
    # Absolute: a relative FEEDSYNC_DROP_DIR was resolved once, against the folder feedsync started in.
    info: dict[str, Any] = {"drop_dir": str(s.drop_dir), "store_dir": str(s.store_dir), "export_dir": str(s.export_dir)}
    if s.store_url:
        info["store_url"] = s.store_url
    try:
        info.update(overview())
        attention = needs_attention()
        info["needs_attention"] = [
            {"what": i.what, "connection": i.connection, "severity": i.severity, "text": i.text}
            for i in attention.items
        ]
        info["worker_groups"] = worker_groups(s)
    except psycopg.Error as exc:
        info["database"] = f"unreachable: {type(exc).__name__}"
    if as_json:
        echo_json(info)
        return
    click.echo(f"drop dir:     {printable(info['drop_dir'])}")
    click.echo(f"store dir:    {printable(info['store_dir'])}")
    if "store_url" in info:
        click.echo(f"object store: {printable(info['store_url'])}")
    click.echo(f"export dir:   {printable(info['export_dir'])}")
    if "database" in info:
        click.echo(f"database:     {info['database']}")
        sys.exit(1)
    click.echo(f"connections:  {info['connections']}")
    click.echo("runs:         " + ", ".join(f"{k} {v}" for k, v in info["runs"].items()))
    click.echo(f"files waiting for a run: {info['files_waiting']}")
    click.echo(f"dead letters not replayed: {info['dead_letters']}")
    click.echo(f"needs attention: {summary(attention)}")
    for item in attention.items:
        click.echo(f"  {item.what.replace('_', ' ')}  {printable(item.connection)}: {printable(item.text)}")
    groups = info["worker_groups"]
    click.echo(f"worker groups: {sum(g['state'] == 'alive' for g in groups)} alive" + (":" if groups else ""))
    for g in groups:
        click.echo(
            f"  {printable(g['worker_group'])}  {g['state']}  host {printable(g['hosts'])}  "
            f"processes {g['live_processes']}  last heartbeat {g['seconds_ago']} s ago"
        )
