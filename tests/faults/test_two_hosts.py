"""Two hosts, one history: two worker groups with no shared filesystem (each its own FEEDSYNC_*_DIRs
and temporary folder, its own group name), one watcher, one S3 endpoint (moto's server on
127.0.0.1), the same PostgreSQL and RabbitMQ. A 200,000-person feed is parsed and transformed on
both; one group is killed with SIGKILL mid-run; the run completes on the other, exactly once."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from producers import feedgen
from producers.cli import cli
from producers.commands import apply_connections
from schemas.connections import load_connections_toml
from tests.conftest import sql
from tests.faults.helpers import run_status, wait_for
from tests.gates import Gate
from tests.s3server import S3Server

pytestmark = [pytest.mark.faults, pytest.mark.slow]

PEOPLE = 200_000


def _host_env(base: dict[str, str], s3: S3Server, root: Path, name: str) -> dict[str, str]:
    """A host of its own: nothing under another host's folders, files only through the object store."""
    for sub in ("drop", "store", "export", "tmp"):
        (root / name / sub).mkdir(parents=True)
    return {
        **base,
        **s3.env,
        "FEEDSYNC_DROP_DIR": str(root / name / "drop"),
        "FEEDSYNC_STORE_DIR": str(root / name / "store"),
        "FEEDSYNC_EXPORT_DIR": str(root / name / "export"),
        "TMPDIR": str(root / name / "tmp"),
        "FEEDSYNC_WORKER_GROUP": name,
        "FEEDSYNC_HEARTBEAT_INTERVAL_S": "1",
        # Chunks of 10,000 rows: twenty transform messages, so both groups take some.
        "FEEDSYNC_CHUNK_ROWS": "10000",
    }


def _groups_of(stage: str) -> set[str]:
    return {g for (g,) in sql("SELECT DISTINCT worker_group FROM sync.stage_runs WHERE stage = %s", (stage,))}


def test_two_worker_groups_share_a_run_and_one_killed_mid_parse_leaves_it_complete_exactly_once(
    s3: S3Server, settings: Any, rabbit_env: dict[str, str], start: Any, tmp_path: Path, gate: Gate
) -> None:
    apply_connections(load_connections_toml(feedgen.DEMO_CONNECTIONS))
    hosts = tmp_path / "hosts"
    watcher_env = {**_host_env(rabbit_env, s3, hosts, "watcher"), "FEEDSYNC_DROP_DIR": str(settings.drop_dir)}
    # The parse holds before committing its 7th chunk (the gate is the test's hand, not a shared file
    # a stage needs): by then six chunks are staged and their transforms queued for both groups.
    gate.open(through=6)
    worker = ("worker", "--processes", "1", "--threads", "2")
    groups = {
        name: start(
            *worker, env={**_host_env(rabbit_env, s3, hosts, name), "FEEDSYNC_FAILPOINTS": gate.at("parse.chunk")}
        )
        for name in ("host-a", "host-b")
    }
    wait_for(lambda: len(sql("SELECT 1 FROM sync.worker_heartbeats")) == 2, 60, "both groups to beat", groups["host-b"])
    watcher = start("watch", env=watcher_env)

    # Written beside the drop folder and renamed in, as an HR system's upload completes.
    staging = tmp_path / "people.csv"
    feedgen.generate_users(staging, PEOPLE)
    target = settings.drop_dir / "import/user/internal/people.csv"
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staging, target)

    gate.wait_reached(7, timeout_s=120)
    wait_for(lambda: _done("transform") >= 6, 120, "the six staged chunks transformed", watcher)
    transformed_by = _groups_of("transform")
    ((parser,),) = sql("SELECT worker_group FROM sync.stage_runs WHERE stage = 'parse'")
    survivor = ({"host-a", "host-b"} - {parser}).pop()
    os.killpg(groups[parser].proc.pid, signal.SIGKILL)  # the group's supervisor and processes, no goodbye
    groups[parser].proc.wait()
    gate.open()
    # RabbitMQ redelivers the parse the killed group held un-acked; the survivor resumes it at its offset.
    wait_for(lambda: run_status("hr-users") in {"completed", "failed"}, 150, "the run to end", groups[survivor])

    run = sql("SELECT id, status, counts FROM sync.runs")
    assert [r[1] for r in run] == ["completed"], run
    counts = run[0][2]
    assert int(counts["read"]) == PEOPLE and int(counts["created"]) == PEOPLE, counts
    # Every person once: no row twice, none lost.
    assert sql("SELECT count(*), count(DISTINCT email) FROM lms.users") == [(PEOPLE, PEOPLE)]
    chunks = sql("SELECT count(*), count(DISTINCT chunk_no), sum(rows) FROM sync.chunks")[0]
    assert chunks[0] == chunks[1] == PEOPLE // 10_000 and chunks[2] == PEOPLE, chunks
    # The stage records show both hosts: transforms on both, the parse finished by the survivor on its
    # second attempt (the first died with its host).
    assert transformed_by == {"host-a", "host-b"}
    assert sql("SELECT worker_group, attempts FROM sync.stage_runs WHERE stage = 'parse'") == [(survivor, 2)]
    assert sql("SELECT count(*) FROM sync.stage_runs WHERE status <> 'succeeded'") == [(0,)]
    # No host ever kept the feed on its disk: only the object store did (the watcher's copy is gone).
    for name in ("host-a", "host-b", "watcher"):
        assert not [p for p in (hosts / name / "store").rglob("*") if p.is_file()], name

    # The killed group is listed as lost once it has been silent for three heartbeat intervals (the
    # status command's settings: the default 10 s), however fast the survivor finished the run.
    def status_once_lost() -> str | None:
        out = str(CliRunner().invoke(cli, ["status"]).output)
        return out if f"{parser}  lost" in out else None

    shown = wait_for(status_once_lost, 90, "the killed group as lost")
    assert f"{survivor}  alive" in shown, shown


def _done(stage: str) -> int:
    return int(sql("SELECT count(*) FROM sync.stage_runs WHERE stage = %s AND status = 'succeeded'", (stage,))[0][0])
