"""The pipeline on the real broker: worker processes, publisher confirms, redelivery."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from producers import feedgen, queries, registry
from producers.commands import apply_connections
from schemas.connections import load_connections_toml
from schemas.messages import FinalizeRun, LoadRun, ParseFile, TransformChunk
from tests.conftest import sql
from tests.services import wait_run
from tests.waiting import poll_until
from workers.broker import publish

pytestmark = pytest.mark.integration


def apply_demo() -> None:
    apply_connections(load_connections_toml(feedgen.DEMO_CONNECTIONS))


def test_a_dropped_feed_is_imported_by_worker_processes_over_rabbitmq(
    settings: Any, rabbit_broker: Any, start: Any
) -> None:
    apply_demo()
    worker = start("worker", "--processes", "2", "--threads", "2")
    feed = feedgen.generate_users(settings.drop_dir / "import/user/internal/people.csv", 3000, bad_rows=2)
    taken = registry.scan(settings)
    assert [t.outcome for t in taken] == ["registered"]
    run = wait_run()
    assert run["status"] == "completed_with_errors", worker.output()[-2000:]
    assert run["counts"]["created"] == 2998 and run["counts"]["rejected"] == 2
    links = dict(sql("SELECT u.email, m.email FROM lms.users u LEFT JOIN lms.users m ON m.id = u.manager_id"))
    assert links == {e: feed.managers[e] for e in feed.emails}


def test_stage_messages_delivered_again_to_two_worker_processes_change_nothing(
    settings: Any, rabbit_broker: Any, rabbit_env: dict[str, str], start: Any
) -> None:
    apply_demo()
    worker = start("worker", "--processes", "2", "--threads", "2", env={**rabbit_env, "FEEDSYNC_CHUNK_ROWS": "500"})
    feedgen.generate_users(settings.drop_dir / "import/user/internal/people.csv", 2000, bad_rows=1)
    registry.scan(settings)
    run_id = wait_run()["run_id"]
    before = (
        sql("SELECT email, updated_at, manager_id FROM lms.users ORDER BY email"),
        sql("SELECT stage, part, status FROM sync.stage_runs ORDER BY id"),
        sql("SELECT count(*) FROM sync.row_errors"),
        sql("SELECT status, counts, finished_at FROM sync.runs"),
    )
    file_id = sql("SELECT file_id FROM sync.run_files")[0][0]
    chunks = sql("SELECT count(*) FROM sync.chunks")[0][0]
    assert chunks == 4
    sent: list[str] = []
    for _ in range(2):  # each twice, so both worker processes hold copies at once
        sent.append(publish(ParseFile(run_id=run_id, file_id=file_id)))
        for c in range(chunks):
            sent.append(publish(TransformChunk(run_id=run_id, file_id=file_id, chunk_no=c)))
        sent.append(publish(LoadRun(run_id=run_id)))
        sent.append(publish(FinalizeRun(run_id=run_id)))
    _wait_all_skipped(worker, sent)
    after = (
        sql("SELECT email, updated_at, manager_id FROM lms.users ORDER BY email"),
        sql("SELECT stage, part, status FROM sync.stage_runs ORDER BY id"),
        sql("SELECT count(*) FROM sync.row_errors"),
        sql("SELECT status, counts, finished_at FROM sync.runs"),
    )
    assert after == before
    assert queries.history()[0]["run_id"] == run_id


def _wait_all_skipped(worker: Any, message_ids: list[str], timeout_s: float = 60) -> None:
    """Wait until the workers have handled every one of these messages, each as a duplicate: a
    message still unacknowledged is in no queue count, so counting queues cannot tell."""
    skipped = ("duplicate of a finished stage; skipped", "run already finished; message skipped")

    def all_skipped() -> bool:
        seen = set()
        for line in worker.output().splitlines():
            if line.startswith("{") and any(s in line for s in skipped):
                seen.add(json.loads(line).get("message_id"))
        return seen >= set(message_ids)

    poll_until(
        all_skipped,
        timeout=timeout_s,
        interval=0.2,
        message=lambda: f"not every message was handled as a duplicate:\n{worker.output()[-3000:]}",
    )


def test_a_path_outside_the_drop_dir_and_symlinks_are_refused(settings: Any, tmp_path: Path) -> None:
    apply_demo()
    outside = tmp_path / "secret.csv"
    outside.write_text("Email\nx@y.com\n")
    link = settings.drop_dir / "import/user/internal/link.csv"
    link.parent.mkdir(parents=True)
    link.symlink_to(outside)
    (settings.drop_dir / "import/user/internal/.hidden.csv").write_text("Email\n")
    (settings.drop_dir / "import/user/internal/upload.csv.part").write_text("Email\n")
    taken = registry.scan(settings)
    assert [(t.path, t.outcome) for t in taken] == [("import/user/internal/link.csv", "refused")]
    assert sql("SELECT count(*) FROM sync.feed_files")[0][0] == 0
