"""Warnings for a run with errors, to where its connection says: a webhook (JSON POST) and e-mail
(SMTP from settings). Sent once per run and channel (claimed in sync.notifications before sending,
so a redelivered finalize never sends twice), after the run's outcome has committed. A warning
that cannot be sent is recorded and logged, never changes the run, and is tried again by the
scheduler up to MAX_ATTEMPTS times with growing pauses.

The message says what failed, how many rows, and how to get the error report. It carries error
messages and positions, never row values: no personal data leaves in a warning.
"""

from __future__ import annotations

import json
import smtplib
import ssl
import urllib.request
from email.message import EmailMessage
from typing import Any

import structlog

from schemas.connections import connection_from_json
from schemas.settings import Settings, get_settings
from workers import store

log = structlog.get_logger(__name__)

WARN_STATUSES = ("completed_with_errors", "failed")


MAX_ATTEMPTS = 5
RETRY_BASE_S = 300  # then 10, 20 and 40 minutes


def run_finished(run_id: int) -> dict[str, str]:
    """Send the warnings of a finished run, if it has errors; returns channel -> outcome."""
    with store.connect() as conn:
        run = _run_to_warn(conn, run_id)
        if run is None:
            return {}
        notify = connection_from_json(run["config"]).notify
        assert notify is not None
        wanted = [c for c, on in (("webhook", notify.webhook), ("email", notify.email)) if on]
        claimed = [
            r["channel"]
            for r in store.fetch_all(
                conn,
                """INSERT INTO sync.notifications (run_id, channel) SELECT %s, unnest(%s::text[])
                   ON CONFLICT DO NOTHING RETURNING channel""",
                (run_id, wanted),
            )
        ]
    return _deliver(run, claimed)


def retry_due() -> dict[tuple[int, str], str]:
    """Try again the warnings whose pause is over (called by the scheduler)."""
    with store.connect() as conn:
        due = store.fetch_all(
            conn,
            """UPDATE sync.notifications n SET attempts = attempts + 1, next_at = NULL
               WHERE (run_id, channel) IN (
                   SELECT run_id, channel FROM sync.notifications
                   WHERE sent_at IS NULL AND next_at <= now() FOR UPDATE SKIP LOCKED)
               RETURNING run_id, channel""",
        )
        runs = {r["run_id"]: _run_to_warn(conn, r["run_id"]) for r in due}
    outcomes = {}
    for row in due:
        run = runs[row["run_id"]]
        if run is None:  # no longer a run with errors (a replay completed it since)
            continue
        for channel, outcome in _deliver(run, [row["channel"]]).items():
            outcomes[(row["run_id"], channel)] = outcome
    return outcomes


def _run_to_warn(conn: Any, run_id: int) -> dict[str, Any] | None:
    run = store.fetch_one(conn, "SELECT * FROM sync.runs WHERE id = %s", (run_id,))
    if run is None or connection_from_json(run["config"]).notify is None:
        return None
    # People deactivated is worth a warning even when nothing went wrong: a feed cut short looks the same.
    if run["status"] not in WARN_STATUSES and not int(run["counts"].get("deactivated", 0)):
        return None
    return run


def _deliver(run: dict[str, Any], channels: list[str]) -> dict[str, str]:
    """Send on the claimed channels and record each outcome; a failure is tried again later."""
    if not channels:
        return {}
    settings = get_settings()
    run_id = int(run["id"])
    notify = connection_from_json(run["config"]).notify
    assert notify is not None
    with store.connect() as conn:
        report = _report(conn, run)
    outcomes = {}
    for channel in channels:
        try:
            if channel == "webhook":
                assert notify.webhook is not None
                _post(notify.webhook, report, settings)
            else:
                _mail(notify.email, report, settings)
            outcomes[channel], error = "sent", None
        except Exception as exc:  # a warning that cannot go out must not fail the run
            outcomes[channel], error = "failed", f"{type(exc).__name__}: {exc}"
            log.warning("run warning not sent; it is tried again later", channel=channel, error=error)
        with store.connect() as conn:
            conn.execute(
                """UPDATE sync.notifications SET sent_at = CASE WHEN %(e)s::text IS NULL THEN now() END, error = %(e)s,
                          next_at = CASE WHEN %(e)s::text IS NOT NULL AND attempts < %(max)s
                                         THEN now() + make_interval(secs => %(base)s * 2 ^ (attempts - 1)) END
                   WHERE run_id = %(run)s AND channel = %(ch)s""",
                {"e": error, "max": MAX_ATTEMPTS, "base": RETRY_BASE_S, "run": run_id, "ch": channel},
            )
    return outcomes


def _report(conn: Any, run: dict[str, Any]) -> dict[str, Any]:
    counts = run["counts"]
    first = store.fetch_all(
        conn,
        """SELECT file_name, line, column_name, code, message FROM sync.row_errors WHERE run_id = %s
           ORDER BY rejected DESC, file_name, line NULLS FIRST, id LIMIT 5""",
        (run["id"],),
    )
    rejected_files = store.fetch_all(
        conn,
        """SELECT f.original_path, rf.error FROM sync.run_files rf JOIN sync.feed_files f ON f.id = rf.file_id
           WHERE rf.run_id = %s AND rf.status = 'rejected' ORDER BY rf.ordinal""",
        (run["id"],),
    )
    return {
        "event": "run_with_errors" if run["status"] in WARN_STATUSES else "run_deactivated_people",
        "run_id": run["id"],
        "connection": run["connection_name"],
        "kind": run["kind"],
        "status": run["status"],
        "rows_rejected": int(counts.get("rejected", 0)),
        "warnings": int(counts.get("warnings", 0)),
        "deactivated": int(counts.get("deactivated", 0)),
        "files": int(counts.get("files", 0)),
        "files_rejected": [{"file": f["original_path"], "error": f["error"]} for f in rejected_files],
        "error": run["error"],
        "first_errors": [
            {
                "file": e["file_name"],
                "line": e["line"],
                "column": e["column_name"],
                "code": e["code"],
                "message": e["message"],
            }
            for e in first
        ],
        "report": f"feedsync errors {run['id']} --csv",
    }


def _text(r: dict[str, Any]) -> str:
    lines = [
        f"Run {r['run_id']} of {r['connection']} ({r['kind']}) ended {r['status'].replace('_', ' ')}.",
        f"{r['rows_rejected']} row(s) rejected, {r['warnings']} warning(s), "
        f"{len(r['files_rejected'])} of {r['files']} file(s) rejected.",
    ]
    if r["deactivated"]:
        lines.append(f"{r['deactivated']} people deactivated: missing from the full feed.")
    if r["error"]:
        lines.append(f"Error: {r['error']}")
    for f in r["files_rejected"]:
        lines.append(f"Rejected file {f['file']}: {f['error']}")
    if r["first_errors"]:
        lines.append("\nFirst errors:")
        for e in r["first_errors"]:
            where = (
                f"{e['file']}"
                + (f" line {e['line']}" if e["line"] else "")
                + (f" column {e['column']}" if e["column"] else "")
            )
            lines.append(f"  {where}: {e['message']}")
    lines.append(f"\nThe full error report: {r['report']} (or feedsync run {r['run_id']}).")
    return "\n".join(lines) + "\n"


def _post(url: str, report: dict[str, Any], settings: Settings) -> None:
    if not url.startswith(("http://", "https://")):  # also checked when the connection is applied
        raise ValueError(f"the webhook {url!r} is not an http(s) URL")
    request = urllib.request.Request(  # noqa: S310  (scheme checked above)
        url, data=json.dumps(report).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=settings.notify_timeout_s) as response:  # noqa: S310
        if response.status >= 300:
            raise OSError(f"the webhook answered HTTP {response.status}")


def _mail(to: list[str], report: dict[str, Any], settings: Settings) -> None:
    if not settings.smtp_host:
        raise RuntimeError("no SMTP server configured: set FEEDSYNC_SMTP_HOST")
    msg = EmailMessage()
    msg["Subject"] = f"feedsync: run {report['run_id']} of {report['connection']} {report['status'].replace('_', ' ')}"
    msg["From"] = settings.smtp_from
    msg["To"] = ", ".join(to)
    msg.set_content(_text(report))
    timeout = settings.notify_timeout_s
    if settings.smtp_tls == "ssl":
        client: smtplib.SMTP = smtplib.SMTP_SSL(
            settings.smtp_host, settings.smtp_port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        client = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout)
    with client:
        if settings.smtp_tls == "starttls":
            client.starttls(context=ssl.create_default_context())
        if settings.smtp_user and settings.smtp_password is not None:
            client.login(settings.smtp_user, settings.smtp_password.get_secret_value())
        client.send_message(msg)
