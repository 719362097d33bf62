"""Faults 2 and 6: RabbitMQ stopped for 20 seconds mid-run, and the watcher stopped while 50 files
arrive (one still being written)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from producers import feedgen
from producers.commands import apply_connections
from schemas.connections import load_connections_toml
from tests.conftest import feedsync, sql
from tests.faults.helpers import wait_for
from tests.faults.private_servers import PrivateRabbit
from tests.gates import Gate

pytestmark = [pytest.mark.faults, pytest.mark.slow]

HEADER = "Email,First Name,Last Name,Manager Email,Department,Job Title,Location\n"


# Never skipped: faking the outage would test nothing, and a machine that runs this suite has RabbitMQ
# (a missing rabbitmq-server fails the fixture, saying so). The node is the test's own (own_rabbitmq):
# stopping the machine's shared broker would break every other checkout testing against it.
def test_rabbitmq_stopped_for_twenty_seconds_mid_run(
    settings: Any, rabbit_env: dict[str, str], own_rabbitmq: PrivateRabbit, start: Any, gate: Gate
) -> None:
    own_env = {**rabbit_env, "FEEDSYNC_BROKER_URL": own_rabbitmq.url}
    apply_connections(load_connections_toml(feedgen.DEMO_CONNECTIONS))
    env = {**own_env, "FEEDSYNC_CHUNK_ROWS": "1000", "FEEDSYNC_FAILPOINTS": gate.at("parse.chunk")}
    up = start("up", "--processes", "1", "--threads", "2", env=env)
    up.wait_for("watching the drop dir")
    inbox = settings.drop_dir / "import/user/internal"
    first = feedgen.generate_users(inbox / "first.csv", 8000)
    gate.wait_reached()  # the parse is held at its first chunk ...
    own_rabbitmq.stop_app()
    try:
        stopped = time.monotonic()
        gate.open()  # ... and goes on while the broker is down: its messages wait in the outbox
        # A file arriving during the outage is registered; its message waits in the outbox.
        second = feedgen.generate_users(inbox / "second.csv", 500, seed=5, fanout=3)
        wait_for(lambda: sql("SELECT count(*) FROM sync.feed_files")[0][0] == 2, 30, "the second file", up)
        # An admin command during the outage says what happened instead of reporting a lost publish.
        out = feedsync("sync", "hr-users", env=own_env, check=False)
        assert out.returncode == 0 and "queued" in out.stdout
        time.sleep(max(0.0, 20 - (time.monotonic() - stopped)))
    finally:
        own_rabbitmq.start_app()
    wait_for(
        lambda: (
            sql("SELECT count(*) FROM sync.runs WHERE status IN ('queued', 'in_progress')")[0][0] == 0
            and sql("SELECT count(*) FROM sync.feed_files WHERE status = 'imported'")[0][0] == 2
        ),
        180,
        "every run to finish after the broker came back",
        up,
    )
    statuses = [r[0] for r in sql("SELECT status FROM sync.runs ORDER BY id")]
    assert set(statuses) == {"completed"}, statuses
    emails = {e for (e,) in sql("SELECT email FROM lms.users")}
    assert emails == set(first.emails) | set(second.emails)
    assert sql("SELECT count(*) FROM sync.outbox WHERE published_at IS NULL")[0][0] == 0


def test_watcher_stopped_while_fifty_files_arrive_one_still_being_written(
    settings: Any, rabbit_env: dict[str, str], start: Any
) -> None:
    apply_connections(load_connections_toml(feedgen.DEMO_CONNECTIONS))
    start("worker", "--processes", "1", "--threads", "4")
    watcher = start("watch")
    watcher.wait_for("watching the drop dir")
    assert watcher.stop() == 0  # stopped cleanly by SIGTERM
    inbox = settings.drop_dir / "import/user/internal"
    for i in range(49):
        rows = "".join(f"f{i}-p{j}@x.com,P{j},F{i},,Dept,Role,Here\n" for j in range(20))
        (inbox / f"feed-{i:02d}.csv").write_text(HEADER + rows, encoding="utf-8")
    growing = open(inbox / "feed-49.csv", "w", encoding="utf-8")  # noqa: SIM115  (closed below)
    growing.write(HEADER)
    growing.flush()

    restarted = start("watch")
    wait_for(lambda: sql("SELECT count(*) FROM sync.feed_files")[0][0] == 49, 60, "the 49 finished files", restarted)
    for j in range(20):  # still being written for a while after the others were taken
        growing.write(f"f49-p{j}@x.com,P{j},F49,,Dept,Role,Here\n")
        growing.flush()
        time.sleep(0.25)
        assert "import/user/internal/feed-49.csv" not in {
            p for (p,) in sql("SELECT original_path FROM sync.feed_files")
        }
    growing.close()

    wait_for(
        lambda: (
            sql("SELECT count(*) FROM sync.feed_files WHERE status = 'imported'")[0][0] == 50
            and sql("SELECT count(*) FROM sync.runs WHERE status IN ('queued', 'in_progress')")[0][0] == 0
        ),
        120,
        "all 50 files imported",
        restarted,
    )
    assert sql("SELECT count(*), count(DISTINCT file_id) FROM sync.run_files")[0] == (50, 50)
    assert sql("SELECT count(*) FROM lms.users")[0][0] == 1000
    complete = len(HEADER) + sum(len(f"f49-p{j}@x.com,P{j},F49,,Dept,Role,Here\n") for j in range(20))
    assert sql("SELECT size_bytes FROM sync.feed_files WHERE original_path LIKE '%%feed-49.csv'") == [(complete,)]
    assert {s for (s,) in sql("SELECT status FROM sync.runs")} == {"completed"}
