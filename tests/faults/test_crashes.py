"""Faults 1 and 3: a worker killed with SIGKILL in the middle of a load, and PostgreSQL losing the
stage's backend and then restarting. Each time the run completes once, with no row lost, none
duplicated and no half-written stage."""

from __future__ import annotations

import csv
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql as q

import tests.conftest
from producers import feedgen, registry
from producers.commands import apply_connections
from schemas.connections import load_connections_toml
from tests.conftest import TEST_DB, sql
from tests.faults.helpers import run_status, users_state, wait_for
from tests.faults.private_servers import PrivatePostgres
from tests.gates import Gate

pytestmark = [pytest.mark.faults, pytest.mark.slow]


def expected_users(path: Path) -> list[tuple[Any, ...]]:
    """What an undisturbed import of the feed gives (the demo mapping)."""
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    good = {r["Email"] for r in rows}
    return sorted(
        (
            r["Email"],
            r["First Name"],
            r["Last Name"],
            r["Manager Email"] if r["Manager Email"] in good else None,
            {"department": r["Department"], "job_title": r["Job Title"], "location": r["Location"]},
            True,
        )
        for r in rows
    )


@pytest.mark.parametrize("access", ["exclusive", "online"])
def test_a_worker_killed_mid_load_completes_once_after_restart(
    settings: Any, rabbit_env: dict[str, str], rabbit_broker: Any, start: Any, access: str, gate: Gate
) -> None:
    from producers.commands import start_sync
    from schemas.states import AccessMode

    apply_connections(load_connections_toml(feedgen.DEMO_CONNECTIONS))
    # exclusive: killed inside the one load transaction; online: killed inside the third of its batches.
    fault = gate.at("load.merged") if access == "exclusive" else gate.at("load.batch")
    held_at = 1 if access == "exclusive" else 3
    gate.open(through=held_at - 1)
    first = start(
        "worker",
        "--processes",
        "1",
        "--threads",
        "2",
        env={
            **rabbit_env,
            "FEEDSYNC_FAILPOINTS": fault,
            "FEEDSYNC_LOAD_BATCH_ROWS": "1000",
            "FEEDSYNC_LOAD_INSERT_ROWS": "1000",
        },
    )
    feed = feedgen.generate_users(settings.drop_dir / "import/user/internal/people.csv", 5000)
    expected = expected_users(feed.path)
    start_sync(settings, "hr-users", access=AccessMode(access))
    wait_for(lambda: gate.hits >= held_at, 60, "the load to be under way", first)
    os.killpg(first.proc.pid, signal.SIGKILL)  # the supervisor and its worker processes, no goodbye
    first.proc.wait()
    gate.open()
    visible = sql("SELECT count(*) FROM lms.users")[0][0]
    if access == "exclusive":
        assert visible == 0  # all or nothing
    else:
        assert 0 < visible < 5000  # two batches committed, the third died with its worker
        assert sql("SELECT count(*) FROM sync.load_batches")[0][0] == 2

    second = start(
        "worker",
        "--processes",
        "1",
        "--threads",
        "2",
        env={**rabbit_env, "FEEDSYNC_LOAD_BATCH_ROWS": "1000", "FEEDSYNC_LOAD_INSERT_ROWS": "1000"},
    )
    wait_for(lambda: run_status("hr-users") == "completed", 90, "the run to complete after restart", second)
    assert users_state() == expected
    assert sql("SELECT count(*) FROM sync.runs")[0][0] == 1
    assert sql("SELECT attempts, status FROM sync.stage_runs WHERE stage = 'load'") == [(2, "succeeded")]
    assert sql("SELECT attempts, status FROM sync.stage_runs WHERE stage = 'finalize'") == [(1, "succeeded")]
    assert sql("SELECT counts->>'created' FROM sync.runs")[0][0] == "5000"


@pytest.fixture
def on_own_postgres(
    own_postgres: PrivatePostgres, settings: Any, rabbit_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """Moves the test onto its own PostgreSQL: this process's settings, store connections and sql()
    helper, and the environment it returns for the feedsync processes. Restarting the machine's
    shared server would break every other checkout testing against it."""
    from schemas.settings import get_settings
    from workers.migrations import migrate

    url = own_postgres.url(TEST_DB)
    with psycopg.connect(own_postgres.url("postgres"), autocommit=True) as conn:
        conn.execute(q.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(q.Identifier(TEST_DB)))
    monkeypatch.setenv("FEEDSYNC_DATABASE_URL", url)
    monkeypatch.setattr(tests.conftest, "DATABASE_URL", url)
    get_settings.cache_clear()
    assert migrate(get_settings()), "migrations should run on the fresh database"
    yield {**rabbit_env, "FEEDSYNC_DATABASE_URL": url}
    get_settings.cache_clear()


# Never skipped: the test restarts a real server, and there is no honest way to fake that; a machine
# that runs this suite has PostgreSQL's server binaries (a missing initdb fails the fixture, saying so).
def test_a_killed_backend_and_a_postgres_restart_retry_the_stage_until_the_run_completes(
    settings: Any,
    on_own_postgres: dict[str, str],
    own_postgres: PrivatePostgres,
    rabbit_broker: Any,
    start: Any,
    gate: Gate,
) -> None:
    apply_connections(load_connections_toml(feedgen.DEMO_CONNECTIONS))
    worker = start(
        "worker",
        "--processes",
        "1",
        "--threads",
        "2",
        env={**on_own_postgres, "FEEDSYNC_FAILPOINTS": gate.at("load.merged")},
    )
    feed = feedgen.generate_users(settings.drop_dir / "import/user/internal/people.csv", 3000)
    expected = expected_users(feed.path)
    registry.scan(settings)

    gate.wait_reached(1)
    killed = sql(
        """SELECT pg_terminate_backend(pid) FROM pg_stat_activity
           WHERE application_name = 'feedsync-worker' AND state = 'idle in transaction'"""
    )
    assert killed == [(True,)]
    gate.open(through=1)  # the first attempt goes on, to find its connection gone
    gate.wait_reached(2, 60)
    own_postgres.restart()  # the retried load is mid-transaction again: the server goes away under it
    gate.open()

    wait_for(lambda: run_status("hr-users") == "completed", 120, "the run to complete", worker)
    assert users_state() == expected
    load = sql("SELECT attempts, status FROM sync.stage_runs WHERE stage = 'load'")
    assert load == [(3, "succeeded")]
    assert "will be retried" in worker.output()


def test_sigterm_lets_a_running_stage_finish_and_nothing_is_lost(
    settings: Any, rabbit_env: dict[str, str], rabbit_broker: Any, start: Any, gate: Gate
) -> None:
    apply_connections(load_connections_toml(feedgen.DEMO_CONNECTIONS))
    first = start(
        "worker",
        "--processes",
        "1",
        "--threads",
        "2",
        env={**rabbit_env, "FEEDSYNC_FAILPOINTS": gate.at("load.merged")},
    )
    feed = feedgen.generate_users(settings.drop_dir / "import/user/internal/people.csv", 2000)
    expected = expected_users(feed.path)
    registry.scan(settings)
    gate.wait_reached()
    os.kill(first.proc.pid, signal.SIGTERM)  # what systemd or Kubernetes sends, while the load is held
    gate.open()
    assert first.proc.wait(timeout=60) == 0
    # The load was allowed to finish (one attempt); what it queued waits in RabbitMQ for the next worker.
    assert sql("SELECT status, attempts FROM sync.stage_runs WHERE stage = 'load'") == [("succeeded", 1)]
    start("worker", "--processes", "1", "--threads", "2")
    wait_for(lambda: run_status("hr-users") == "completed", 60, "the run to complete")
    assert users_state() == expected
