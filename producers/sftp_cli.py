"""``feedsync sftp …``: keys, the server's fingerprint to pin, a dry look at a connection, the pull."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NoReturn

import click

from producers.output import printable, printable_lines
from schemas.settings import get_settings
from workers import extras
from workers.errors import FeedsyncError, safe_text

if TYPE_CHECKING:
    import asyncssh


def _fail(message: str) -> NoReturn:
    click.echo(f"feedsync: {printable_lines(message)}", err=True)
    sys.exit(1)


def _connection(name: str) -> dict[str, Any]:
    from producers.registry import live_connections

    found = [c for c in live_connections(get_settings()) if c["name"] == name] or _export_connection(name)
    if not found:
        _fail(f"no connection named {name!r}: see `feedsync connections list`")
    if not found[0]["config"].get("sftp"):
        _fail(f"{name} has no [connections.sftp] section")
    return found[0]


def _export_connection(name: str) -> list[dict[str, Any]]:
    """An export connection of that name (it takes no files, so the registry does not list it)."""
    from schemas.exports import DEFAULT_LOCATION
    from workers import store

    with store.connect() as conn:
        return store.fetch_all(
            conn,
            """SELECT id, name, kind, config, enabled FROM sync.connections
               WHERE deleted_at IS NULL AND name = %s AND kind = ANY(%s)""",
            (name, list(DEFAULT_LOCATION)),
        )


@contextlib.contextmanager
def _needs_sftp(what: str) -> Iterator[None]:
    """Around the import of asyncssh (the [sftp] extra), here and not at the top of the module so that
    `feedsync --help` and every other command run without loading it."""
    try:
        with extras.needs("sftp", what):
            yield
    except extras.MissingExtra as exc:
        _fail(str(exc))


@click.group()
def sftp() -> None:
    """SFTP: pull feeds from a server, push exports to one."""


@sftp.command()
@click.argument("connection")
@click.option("--force", is_flag=True, help="replace an existing key pair (the old public key stops working)")
def keygen(connection: str, force: bool) -> None:
    """Make an ed25519 key pair for CONNECTION and print the public line to install on the server."""
    with _needs_sftp("`feedsync sftp keygen`"):
        import asyncssh

    settings = get_settings()
    if not connection or "/" in connection or connection.startswith("."):
        _fail(f"{connection!r} is not a connection name")
    path = settings.keys_dir / connection
    if path.exists() and not force:
        _fail(f"{path} exists: its public key is {path}.pub (give --force to replace the pair)")
    settings.keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = asyncssh.generate_private_key("ssh-ed25519", comment=f"feedsync-{connection}")
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key.export_private_key())
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    from producers.audit import cli_action

    with cli_action("sftp_keygen", connection) as detail:
        detail["replaced"] = bool(force)
    public = key.export_public_key().decode("ascii").strip()
    path.with_name(path.name + ".pub").write_text(public + "\n")
    click.echo(f"private key: {path} (mode 0600; never leaves this host)")
    click.echo("install this line in the server's authorized_keys for the connection's user:")
    click.echo(public)
    click.echo(f'then set key_file = "{connection}" in [connections.sftp] and `feedsync sftp check {connection}`')


@sftp.command()
@click.argument("host")
@click.option("--port", type=click.IntRange(1, 65535), default=22, show_default=True)
@click.option("--timeout", type=click.FloatRange(min=1), default=30, show_default=True, help="seconds")
def fingerprint(host: str, port: int, timeout: float) -> None:
    """Print the key HOST presents and its SHA-256 fingerprint, to pin as host_key."""
    with _needs_sftp("`feedsync sftp fingerprint`"):
        import asyncssh

    async def fetch() -> asyncssh.SSHKey | None:
        return await asyncio.wait_for(asyncssh.get_server_host_key(host, port, config=None), timeout)

    try:
        key = asyncio.run(fetch())
    except (OSError, TimeoutError, asyncssh.Error) as exc:
        _fail(f"could not reach {host}:{port}: {safe_text(exc)}")
    if key is None:
        _fail(f"{host}:{port} presented no host key")
    line = " ".join(key.export_public_key().decode("ascii").split()[:2])
    click.echo(f'host_key = "{line}"')
    click.echo(f"fingerprint: {key.get_fingerprint('sha256')}")
    click.echo(
        "Check this fingerprint with the server's owner by another channel (their documentation, a call, "
        "`ssh-keygen -lf` on the server) before pinning it: anyone between here and the server could have answered."
    )


@sftp.command()
@click.argument("connection")
def check(connection: str) -> None:
    """Connect and list CONNECTION's remote_dir; say what the next poll would take, and why not the rest."""
    with _needs_sftp("`feedsync sftp check`"):
        from producers import sftp_loop, sftp_pull

    settings = get_settings()
    c = _connection(connection)
    if _pushes(c):
        _check_push(settings, c)
        return
    last = sftp_loop.last_poll(c)
    if last is not None:
        outcome = "ok" if last["ok"] else f"failed: {last['error']}"
        click.echo(f"last poll: {last['polled_at']:%Y-%m-%d %H:%M:%S}Z, {printable_lines(outcome)}")
    try:
        decisions = sftp_pull.check(settings, c)
    except FeedsyncError as exc:
        _fail(str(exc))  # our own sentence (workers.files.sftp): what failed and what to check
    cfg = sftp_pull.sftp_config(c)
    assert cfg is not None
    click.echo(f"{printable(connection)}: connected to {cfg.describe()} (host key pinned and verified)")
    if not decisions:
        click.echo("the folder is empty")
    for d in decisions:
        verdict = "take" if d.take else "skip"
        click.echo(f"{verdict}  {printable(d.entry.name)}  ({d.entry.size} bytes): {d.why}")
    taking = sum(d.take for d in decisions)
    click.echo(f"the next poll would take {taking} file(s)")


def _pushes(c: dict[str, Any]) -> bool:
    """An export connection pushes its file to the server; the others pull from it."""
    from schemas.exports import DEFAULT_LOCATION

    return c["kind"] in DEFAULT_LOCATION


def _check_push(settings: Any, c: dict[str, Any]) -> None:
    """Connect, write a probe file into remote_dir and remove it: the export's push would work."""
    from producers.sftp_pull import sftp_config
    from workers.files.sftp_destination import probe

    cfg = sftp_config(c)
    assert cfg is not None
    try:
        remote = probe(settings, cfg, c["name"])
    except FeedsyncError as exc:
        _fail(str(exc))
    click.echo(f"{printable(c['name'])}: connected to {cfg.describe()} (host key pinned and verified)")
    click.echo(f"wrote and removed the probe file {printable(remote)}: the export can be pushed there")


@sftp.command()
@click.argument("connection", required=False)
@click.option("--once", is_flag=True, help="poll now (each connection, or CONNECTION) once and exit")
def pull(connection: str | None, once: bool) -> None:
    """Pull every SFTP connection's files when due (what `feedsync up` runs)."""
    with _needs_sftp("`feedsync sftp pull`"):
        from producers import sftp_loop, sftp_pull

    settings = get_settings()
    if once:
        targets = [_connection(connection)] if connection else sftp_loop.pulling_connections(settings)
        for c in targets:
            try:
                result = sftp_pull.poll(settings, c)
            except FeedsyncError as exc:
                _fail(str(exc))
            click.echo(f"{printable(c['name'])}: pulled {len(result.taken)}, handled {len(result.handled)}")
        return
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    try:
        sftp_loop.run(settings, stopping)
    except KeyboardInterrupt:
        stopping.set()
