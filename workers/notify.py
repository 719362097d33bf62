"""Warnings for a run with errors, to where its connection says: a webhook (JSON POST) and e-mail
(SMTP from settings). Sent once per run and channel (claimed in sync.notifications before sending,
so a redelivered finalize never sends twice), after the run's outcome has committed. A warning
that cannot be sent is recorded and logged, never changes the run, and is tried again by the
scheduler's notifier thread (producers/notifier.py) up to MAX_ATTEMPTS times with growing pauses.

The message says what failed, how many rows, and how to get the error report. It carries the
run's and its rejected files' error sentences, and the first errors' positions and codes, never
row values: no personal data leaves in a warning.

A webhook is posted to the one address its host was resolved to and checked against (no second
lookup an attacker's DNS could answer differently), never to an internal address unless
FEEDSYNC_WEBHOOK_ALLOW_PRIVATE says so, and never through a redirect. Every network failure
reads the same, so a webhook cannot be used to map which internal ports are open.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import json
import smtplib
import socket
import ssl
import threading
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

import structlog

from schemas.config_parts import Notify
from schemas.kinds import connection_from_json
from schemas.settings import Settings, get_settings
from workers import store
from workers.errors import safe_text

log = structlog.get_logger(__name__)

WARN_STATUSES = ("completed_with_errors", "failed")


MAX_ATTEMPTS = 5
RETRY_BASE_S = 300  # then 10, 20 and 40 minutes

UNREACHABLE = "the webhook could not be reached (no connection, no answer in time, or no TLS handshake)"
INTERNAL = (
    "the webhook's host is a loopback, private, link-local, multicast or unspecified address, which "
    "feedsync does not post to: use a public address, or set FEEDSYNC_WEBHOOK_ALLOW_PRIVATE=true"
)
PLAINTEXT_AUTH = (
    "FEEDSYNC_SMTP_TLS is none, so the SMTP user and password would be sent unencrypted: set "
    "FEEDSYNC_SMTP_TLS to starttls or ssl (or FEEDSYNC_SMTP_ALLOW_PLAINTEXT_AUTH=true on a trusted link)"
)


class NotSent(Exception):
    """A warning that did not go out; its text is safe to store and log."""


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
    """Try again every warning whose pause is over."""
    outcomes: dict[tuple[int, str], str] = {}
    while (one := retry_next()) is not None:
        outcomes.update(one)
    return outcomes


def retry_next() -> dict[tuple[int, str], str] | None:
    """Try again the oldest warning whose pause is over (the scheduler's notifier, producers/notifier.py,
    takes them one at a time so that its round keeps to its budget); None when none is due."""
    with store.connect() as conn:
        row = store.fetch_one(
            conn,
            """UPDATE sync.notifications n SET attempts = attempts + 1, next_at = NULL
               WHERE (run_id, channel) = (
                   SELECT run_id, channel FROM sync.notifications
                   WHERE sent_at IS NULL AND next_at <= now() ORDER BY next_at LIMIT 1 FOR UPDATE SKIP LOCKED)
               RETURNING run_id, channel""",
        )
        if row is None:
            return None
        run = _run_to_warn(conn, row["run_id"])
    if run is None:  # no longer a run with errors (a replay completed it since)
        return {}
    return {(row["run_id"], channel): outcome for channel, outcome in _deliver(run, [row["channel"]]).items()}


def send(notify: Notify, payload: dict[str, Any], subject: str, body: str) -> dict[str, str]:
    """Send one message (an alarm, producers/alarms.py) on the channels ``notify`` names, once, now;
    returns channel -> "sent" or the safe sentence why not. The caller claims it and keeps the outcome."""
    settings = get_settings()
    outcomes = {}
    for channel, on in (("webhook", notify.webhook), ("email", notify.email)):
        if not on:
            continue
        try:
            if channel == "webhook":
                assert notify.webhook is not None
                _post(notify.webhook, payload, settings)
            else:
                _mail(notify.email, subject, body, settings)
            outcomes[channel] = "sent"
        except Exception as exc:  # an alarm that cannot go out must not stop the others
            outcomes[channel] = str(exc) if isinstance(exc, NotSent) else safe_text(exc)
            log.warning("alarm not sent; it is sent again at the next repeat", channel=channel, error=outcomes[channel])
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
                subject = f"feedsync: run {run_id} of {report['connection']} {report['status'].replace('_', ' ')}"
                _mail(notify.email, subject, _text(report), settings)
            outcomes[channel], error = "sent", None
        except Exception as exc:  # a warning that cannot go out must not fail the run
            outcomes[channel], error = "failed", str(exc) if isinstance(exc, NotSent) else safe_text(exc)
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
        """SELECT file_name, line, column_name, code FROM sync.row_errors WHERE run_id = %s
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
        # Where and what kind, not the message: a row error's message may quote the cell.
        "first_errors": [
            {"file": e["file_name"], "line": e["line"], "column": e["column_name"], "code": e["code"]} for e in first
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
            lines.append(f"  {where}: {e['code']}")
    lines.append(f"\nThe full error report: {r['report']} (or feedsync run {r['run_id']}).")
    return "\n".join(lines) + "\n"


def _post(url: str, report: dict[str, Any], settings: Settings) -> None:
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        port = 0
    if parts.scheme not in ("http", "https") or not parts.hostname or not port:
        raise NotSent("the webhook is not an http(s) URL")  # also checked when the connection is applied
    addresses = _resolve(parts.hostname, port, settings)
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = _PinnedHTTPS(parts.hostname, port, addresses, settings.notify_timeout_s)
    else:
        connection = _PinnedHTTP(parts.hostname, port, addresses, settings.notify_timeout_s)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    # The socket's timeout bounds each read; a server that drips a byte at a time would pass every one.
    # The whole send gets the same number: at the deadline the socket is shut, which ends a blocked read.
    deadline = threading.Timer(settings.notify_timeout_s, _cut, (connection,))
    deadline.daemon = True
    deadline.start()
    try:
        connection.request("POST", path, json.dumps(report).encode(), {"Content-Type": "application/json"})
        status = connection.getresponse().status
    except (OSError, http.client.HTTPException):
        raise NotSent(UNREACHABLE) from None
    finally:
        deadline.cancel()
        connection.close()
    if 300 <= status < 400:
        raise NotSent(f"the webhook answered HTTP {status}, a redirect, which feedsync does not follow")
    if not 200 <= status < 300:
        raise NotSent(f"the webhook answered HTTP {status}")


def _cut(connection: http.client.HTTPConnection) -> None:
    sock = connection.sock
    if sock is not None:
        with contextlib.suppress(OSError):  # already closed: the send ended as the deadline came
            sock.shutdown(socket.SHUT_RDWR)


Address = tuple[socket.AddressFamily, tuple[Any, ...]]


def _resolve(host: str, port: int, settings: Settings) -> list[Address]:
    """The addresses the webhook may be posted to, resolved once and checked."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        raise NotSent(UNREACHABLE) from None
    if not found:
        raise NotSent(UNREACHABLE)
    # Every address the name has must pass, not just the first: which one is used is not ours to pick.
    if not settings.webhook_allow_private and any(_internal(str(info[4][0])) for info in found):
        raise NotSent(INTERNAL)
    return [(family, address) for family, _, _, _, address in found]


def _internal(host: str) -> bool:
    ip = ipaddress.ip_address(host)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    # is_global is false for loopback, RFC 1918, fc00::/7, link-local, unspecified, CGNAT and the
    # reserved ranges; multicast counts as global there, so it is named too.
    return not ip.is_global or ip.is_multicast


def _connect(addresses: list[Address], timeout: float) -> socket.socket:
    """The first checked address that answers, as socket.create_connection would, with no new lookup."""
    failure: OSError = ConnectionError("no address")
    for family, address in addresses:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(address)
            return sock
        except OSError as exc:
            sock.close()
            failure = exc
    raise failure


class _PinnedHTTP(http.client.HTTPConnection):
    """HTTP to the checked address; the Host header still names the webhook's host."""

    def __init__(self, host: str, port: int, addresses: list[Address], timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._pinned = (addresses, timeout)

    def connect(self) -> None:
        self.sock = _connect(*self._pinned)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to the checked address; the certificate is verified for the webhook's host name."""

    def __init__(self, host: str, port: int, addresses: list[Address], timeout: float) -> None:
        self._tls = ssl.create_default_context()
        super().__init__(host, port, timeout=timeout, context=self._tls)
        self._pinned = (addresses, timeout)

    def connect(self) -> None:
        sock = _connect(*self._pinned)
        self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)


def _mail(to: list[str], subject: str, body: str, settings: Settings) -> None:
    if not settings.smtp_host:
        raise NotSent("no SMTP server configured: set FEEDSYNC_SMTP_HOST")
    login = bool(settings.smtp_user or (settings.smtp_password and settings.smtp_password.get_secret_value()))
    if login and settings.smtp_tls == "none" and not settings.smtp_allow_plaintext_auth:
        raise NotSent(PLAINTEXT_AUTH)
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = settings.smtp_from
    msg["To"] = ", ".join(to)
    msg.set_content(body)
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
