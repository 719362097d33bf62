"""``feedsync web`` and ``feedsync admins``: registered on the main command group by cli.py."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import click

from producers.output import printable
from workers import extras


def _fail(message: str) -> None:
    click.echo(f"feedsync: {printable(message)}", err=True)
    sys.exit(1)


@contextlib.contextmanager
def _needs_console(what: str) -> Iterator[None]:
    """Around the imports of the console's web stack (the [console] extra): they are made by these
    commands only, so that the rest of the CLI and the workers never load it."""
    try:
        with extras.needs("console", what):
            yield
    except extras.MissingExtra as exc:
        _fail(str(exc))


@click.command()
@click.option("--bind", help="HOST:PORT to listen on (default FEEDSYNC_WEB_BIND, else 127.0.0.1:8080)")
def web(bind: str | None) -> None:
    """Serve the admin console."""
    with _needs_console("`feedsync web`"):
        import uvicorn

        from producers.console.app import create_app
    from schemas.settings import get_settings

    s = get_settings()
    host, _, port = (bind or s.web_bind or "127.0.0.1:8080").rpartition(":")
    if not host or not port.isdigit():
        _fail(f"--bind {bind}: give HOST:PORT, e.g. 127.0.0.1:8080")
    if bool(s.web_tls_cert) != bool(s.web_tls_key):
        _fail("set both FEEDSYNC_WEB_TLS_CERT and FEEDSYNC_WEB_TLS_KEY to serve over TLS, or neither")
    uvicorn.run(
        create_app(),
        host=host,
        port=int(port),
        ssl_certfile=s.web_tls_cert,
        ssl_keyfile=s.web_tls_key,
        # URLs hold connection names and run numbers only, never a person's data.
        access_log=True,
        log_level=s.log_level.lower(),
        server_header=False,
        # uvicorn believes X-Forwarded-* from 127.0.0.1 by default; only the listed proxies here.
        proxy_headers=bool(s.trusted_proxies),
        forwarded_allow_ips=s.trusted_proxies or [],
    )


@click.group()
def admins() -> None:
    """Who may sign in to the console: add, list, remove, unlock."""


@admins.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["admin", "viewer"]), required=True, help="viewers change nothing")
def admins_add(name: str, role: str) -> None:
    """Add an admin; the password is read from a prompt, or from the first line of stdin."""
    with _needs_console("`feedsync admins add`"):
        from producers.console import accounts

    if sys.stdin.isatty():
        password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    from producers.audit import cli_action

    with cli_action("admins_add", name) as detail:
        detail["role"] = role
        try:
            accounts.add_admin(name, password, role)
        except accounts.AccountError as exc:
            detail["refused"] = f"refused: {exc}"
            _fail(str(exc))
    click.echo(f"{printable(name)}: added as {role}")


@admins.command("list")
def admins_list() -> None:
    """Admins with their role and open sessions."""
    with _needs_console("`feedsync admins list`"):
        from producers.console import accounts

    rows = accounts.list_admins()
    if not rows:
        click.echo("(none)")
    for r in rows:
        click.echo(f"{printable(r['name'])}  {r['role']}  added {r['created_at']:%Y-%m-%d}  sessions {r['sessions']}")


@admins.command("remove")
@click.argument("name")
def admins_remove(name: str) -> None:
    """Remove an admin and end their sessions; the audit keeps what they did."""
    with _needs_console("`feedsync admins remove`"):
        from producers.console import accounts

    from producers.audit import cli_action

    with cli_action("admins_remove", name) as detail:
        try:
            accounts.remove_admin(name)
        except accounts.AccountError as exc:
            detail["refused"] = f"refused: {exc}"
            _fail(str(exc))
    click.echo(f"{printable(name)}: removed")


@admins.command("unlock")
@click.argument("name")
def admins_unlock(name: str) -> None:
    """Let an admin locked out by failed sign-ins sign in again; audited as you."""
    from producers.console import throttle
    from producers.dlq import admin_identity

    if not throttle.unlock(name, by=admin_identity()):
        _fail(f"no admin named {name!r}; see `feedsync admins list`")
    click.echo(
        f"{printable(name)}: unlocked; the failed sign-ins so far (for this name, or from any address it "
        "signs in from) no longer count for it"
    )


def register(group: click.Group) -> None:
    group.add_command(web)
    group.add_command(admins)
