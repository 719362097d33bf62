"""Shared fixtures. Tests use a database and a RabbitMQ vhost of their own, so a developer's data
and queues are never touched. The pytest process itself uses the stub broker (the unit tier);
integration and e2e tests run real worker processes against RabbitMQ."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.sql import Composed

TEST_DB = os.environ.get("FEEDSYNC_TEST_DATABASE", "feedsync_test")
PG_BASE = os.environ.get("FEEDSYNC_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
# Both can be set so two checkouts can run their suites at once without sharing state.
TEST_VHOST = os.environ.get("FEEDSYNC_TEST_VHOST", "feedsync_test")
RABBIT_URL = os.environ.get("FEEDSYNC_TEST_BROKER_URL", f"amqp://guest:guest@127.0.0.1:5672/{TEST_VHOST}")
DATABASE_URL = f"{PG_BASE}/{TEST_DB}"
SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples"

# Before any feedsync import reads settings: the pytest process is the stub-broker tier.
os.environ["FEEDSYNC_DATABASE_URL"] = DATABASE_URL
os.environ["FEEDSYNC_BROKER_URL"] = "stub://"
os.environ.setdefault("FEEDSYNC_LOG_LEVEL", "WARNING")
os.environ["FEEDSYNC_SETTLE_MS"] = "50"
os.environ["FEEDSYNC_MIN_BACKOFF_MS"] = "50"
os.environ["FEEDSYNC_MAX_BACKOFF_MS"] = "500"

import workers.logs  # noqa: E402 (after the settings above)

# A test that captures log events must see them whatever logged first (workers/logs.py).
workers.logs.CACHE_LOGGERS = False


def _samples_missing() -> str:
    return (
        f"the conformance tier was not run: its sample feeds are not at {SAMPLES} "
        "(clone the repository beside shared/ to run it)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The conformance tier reads ../shared/samples in place. Without it every other tier still runs
    and the session ends saying so; FEEDSYNC_REQUIRE_SAMPLES=1 (CI) makes that a failure."""
    if SAMPLES.is_dir():
        return
    if os.environ.get("FEEDSYNC_REQUIRE_SAMPLES") == "1":
        raise pytest.UsageError(f"FEEDSYNC_REQUIRE_SAMPLES=1 and {_samples_missing()}")
    dropped = [item for item in items if item.get_closest_marker("conformance")]
    if dropped:
        items[:] = [item for item in items if not item.get_closest_marker("conformance")]
        config.hook.pytest_deselected(items=dropped)
        config.stash[_SAMPLES_NOTE] = f"{_samples_missing()}; {len(dropped)} tests left out."


_SAMPLES_NOTE = pytest.StashKey[str]()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    note = config.stash.get(_SAMPLES_NOTE, None)
    if note:
        terminalreporter.write_line(note, yellow=True, bold=True)


def _ensure_vhost() -> None:
    ctl = shutil.which("rabbitmqctl")
    if ctl is None or not RABBIT_URL.endswith(f"/{TEST_VHOST}"):
        return
    subprocess.run([ctl, "-q", "add_vhost", TEST_VHOST], capture_output=True, timeout=60)
    subprocess.run(
        [ctl, "-q", "set_permissions", "-p", TEST_VHOST, "guest", ".*", ".*", ".*"],
        capture_output=True,
        timeout=60,
        check=True,
    )


@pytest.fixture(scope="session")
def database() -> Iterator[str]:
    """A fresh database with every migration, once per session, for the tests that use one (through
    `settings`, which every database fixture builds on): pure tests of readers and configs run
    without a PostgreSQL server."""
    with psycopg.connect(f"{PG_BASE}/postgres", autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (TEST_DB,),
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{TEST_DB}"')
    from schemas.settings import get_settings
    from workers.migrations import migrate

    get_settings.cache_clear()
    applied = migrate(get_settings())
    assert applied, "migrations should run on a fresh database"
    yield DATABASE_URL


def _truncate() -> None:
    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        tables = [
            f"{s}.{t}"
            for s, t in conn.execute(
                "SELECT schemaname, tablename FROM pg_tables WHERE schemaname IN ('sync', 'lms')"
            ).fetchall()
        ]
        conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
        for (t,) in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'stage'").fetchall():
            conn.execute(f'DROP TABLE stage."{t}"')


@pytest.fixture
def settings(database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Fresh tables and a drop dir and store of the test's own."""
    _truncate()
    monkeypatch.setenv("FEEDSYNC_DROP_DIR", str(tmp_path / "drop"))
    monkeypatch.setenv("FEEDSYNC_STORE_DIR", str(tmp_path / "store"))
    monkeypatch.setenv("FEEDSYNC_EXPORT_DIR", str(tmp_path / "export"))
    from schemas.settings import get_settings

    get_settings.cache_clear()
    s = get_settings()
    s.drop_dir.mkdir(parents=True)
    yield s
    get_settings.cache_clear()


def sql(query: str | Composed, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []


def db_today() -> date:
    """The UTC date by the database's clock: the one clock that dates runs, windows and exports."""
    return sql("SELECT (now() AT TIME ZONE 'UTC')::date")[0][0]  # type: ignore[no-any-return]


class DbToday:
    """'Today' for a test that looks at what a run dated: the database's UTC date when this is made
    and again when asked, so work that crossed midnight UTC in between matches either date. The host's
    clock is never read (FEEDSYNC_TEST_HOST_CLOCK below moves it on purpose)."""

    def __init__(self) -> None:
        self.first = db_today()

    def dates(self) -> set[date]:
        return {self.first, db_today()}

    def names(self, pattern: str) -> set[str]:
        """``pattern`` with ``{}`` filled with each ISO date, e.g. ``"x_to_{}.csv"``."""
        return {pattern.format(d.isoformat()) for d in self.dates()}


@pytest.fixture(autouse=True)
def host_clock() -> Iterator[None]:
    """FEEDSYNC_TEST_HOST_CLOCK=23:59:58 runs each test with the pytest process's clock set to that UTC
    time today and ticking, while PostgreSQL keeps the real one: a test or a code path that takes
    "today" from the host instead of the database fails within two seconds of its start."""
    at = os.environ.get("FEEDSYNC_TEST_HOST_CLOCK")
    if not at:
        yield
        return
    import time_machine

    with time_machine.travel(datetime.combine(db_today(), time.fromisoformat(at), UTC), tick=True):
        yield


@pytest.fixture
def rabbit_env(settings: Any) -> Iterator[dict[str, str]]:
    """Environment for feedsync subprocesses on the real broker, with the test vhost emptied."""
    _ensure_vhost()
    env = {
        **os.environ,
        "FEEDSYNC_BROKER_URL": RABBIT_URL,
        "FEEDSYNC_DROP_DIR": str(settings.drop_dir),
        "FEEDSYNC_STORE_DIR": str(settings.store_dir),
        "FEEDSYNC_EXPORT_DIR": str(settings.export_dir),
        "FEEDSYNC_LOG_LEVEL": "INFO",
        "FEEDSYNC_RESCAN_INTERVAL_S": "2",
        "FEEDSYNC_OUTBOX_SWEEP_INTERVAL_S": "1",
        "FEEDSYNC_OUTBOX_GRACE_S": "2",
    }
    from workers.broker import ALL_QUEUES

    _purge(ALL_QUEUES)
    yield env
    _purge(ALL_QUEUES)


def _purge(queues: list[str]) -> None:
    import pika

    params = pika.URLParameters(RABBIT_URL)
    conn = pika.BlockingConnection(params)
    ch = conn.channel()
    for q in queues:
        for name in (q, f"{q}.DQ", f"{q}.XQ"):
            try:
                ch.queue_purge(name)
            except pika.exceptions.ChannelClosedByBroker:
                ch = conn.channel()  # the queue does not exist yet: nothing to purge
    conn.close()


def feedsync(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a user would, as a subprocess."""
    proc = subprocess.run(
        [sys.executable, "-m", "producers.cli", *args],
        env=env or dict(os.environ),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"feedsync {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


from tests.gates import gate  # noqa: E402  (a fixture for the wait: failpoint, every tier)
from tests.kindsuite import kind  # noqa: E402  (each registered import kind, its sample connection applied)
from tests.notifying import allow_private, smtp, webhook  # noqa: E402  (fixtures: a local mail and webhook receiver)
from tests.s3server import s3, s3_endpoint  # noqa: E402  (moto S3 server fixtures: the object store tests)
from tests.stubpipeline import pipeline  # noqa: E402  (the fixture, shared by the unit and conformance tiers)

__all__ = ["allow_private", "gate", "kind", "pipeline", "s3", "s3_endpoint", "smtp", "webhook"]
