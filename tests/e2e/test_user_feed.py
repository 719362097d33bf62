"""The issue's acceptance path, as an admin would do it: `feedsync up` running, files dropped into the
drop dir, and the CLI to read what happened."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from producers import feedgen
from tests.conftest import feedsync, sql
from tests.waiting import poll_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CONNECTIONS = Path(__file__).resolve().parents[2] / "examples" / "connections.toml"


def entries(env: dict[str, str]) -> list[dict[str, Any]]:
    """The history as shown: runs and drops set aside as duplicates."""
    shown: list[dict[str, Any]] = json.loads(feedsync("history", "--json", env=env).stdout)
    return shown


def history(env: dict[str, str]) -> list[dict[str, Any]]:
    return [r for r in entries(env) if r["type"] != "duplicate"]


def wait_for_runs(env: dict[str, str], n: int, timeout_s: float = 120) -> list[dict[str, Any]]:

    def finished() -> list[dict[str, Any]]:
        runs = history(env)
        return runs if len(runs) >= n and all(r["status"] not in ("queued", "in_progress") for r in runs) else []

    return poll_until(
        finished, timeout=timeout_s, interval=0.5, message=lambda: f"expected {n} finished runs, have {history(env)}"
    )


def drop(src: Path, dst: Path) -> None:
    """Write the file into the drop dir the way an SFTP upload does: open, write, close."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    with open(src, "rb") as f, open(dst, "wb") as out:
        out.write(f.read())


def test_ten_thousand_people_dropped_into_a_running_feedsync(
    settings: Any, rabbit_env: dict[str, str], start: Any, tmp_path: Path
) -> None:
    env = rabbit_env
    assert "hr-users: created" in feedsync("connections", "apply", str(CONNECTIONS), env=env).stdout
    up = start("up", "--processes", "2", "--threads", "2")
    up.wait_for("watching the drop dir")
    inbox = settings.drop_dir / "import/user/internal"

    feed = feedgen.generate_users(tmp_path / "people.csv", 10_000, seed=42)
    drop(feed.path, inbox / "people-20261122.csv")
    (run,) = wait_for_runs(env, 1)
    assert run["status"] == "completed", up.output()[-3000:]
    assert run["type"] == "file_drop"
    assert run["counts"] == {
        "read": 10_000,
        "created": 10_000,
        "updated": 0,
        "unchanged": 0,
        "deactivated": 0,
        "rejected": 0,
    }
    assert {"run_id", "connection", "start_date", "started_at", "finished_at", "duration_s"} <= set(run)
    links = dict(sql("SELECT u.email, m.email FROM lms.users u LEFT JOIN lms.users m ON m.id = u.manager_id"))
    assert links == feed.managers

    # The same bytes again, under another name: recorded as a duplicate, not imported twice.
    drop(feed.path, inbox / "people-again.csv")
    poll_until(
        lambda: sql("SELECT 1 FROM sync.file_drops WHERE duplicate"),
        timeout=30,
        interval=0.2,
        message="the second drop was not recorded as a duplicate",
    )
    assert sql("SELECT path FROM sync.file_drops WHERE duplicate") == [("import/user/internal/people-again.csv",)]
    assert [(e["type"], e["duplicate_of_run"] if e["run_id"] is None else e["run_id"]) for e in entries(env)] == [
        ("duplicate", run["run_id"]),
        ("file_drop", run["run_id"]),
    ]

    # A copy with three bad rows: completed_with_errors, and exactly those three lines listed.
    lines = feed.path.read_text(encoding="utf-8").splitlines(keepends=True)
    bad_lines = [5001, 7502, 9999]  # as a text editor numbers them (header = 1), all leaves of the tree
    for n in bad_lines:
        lines[n - 1] = lines[n - 1].replace("@example.com", "#example.com", 1)
    bad = tmp_path / "people-bad.csv"
    bad.write_text("".join(lines), encoding="utf-8")
    drop(bad, inbox / "people-20261123.csv")
    runs = wait_for_runs(env, 2)
    assert runs[0]["status"] == "completed_with_errors"
    assert runs[0]["counts"]["rejected"] == 3 and runs[0]["counts"]["unchanged"] == 9_997
    errors = json.loads(feedsync("errors", str(runs[0]["run_id"]), "--json", env=env).stdout)
    assert [(e["file"], e["line"], e["column"], e["code"]) for e in errors] == [
        ("import/user/internal/people-20261123.csv", n, 1, "invalid_email") for n in bad_lines
    ]
    report = feedsync("errors", str(runs[0]["run_id"]), "--csv", env=env).stdout.splitlines()
    assert report[0].startswith("file,line,column") and len(report) == 4

    detail = json.loads(feedsync("run", str(runs[0]["run_id"]), "--json", env=env).stdout)
    assert [s["stage"] for s in detail["stages"]][:2] == ["plan", "parse"]
    assert all(s["status"] == "succeeded" for s in detail["stages"])


def test_connections_apply_refuses_a_bad_file_and_upload_and_sync_import(
    settings: Any, rabbit_env: dict[str, str], start: Any, tmp_path: Path
) -> None:
    env = rabbit_env
    bad = tmp_path / "bad.toml"
    bad.write_text(CONNECTIONS.read_text().replace('kind = "users"', 'kind = "userz"'))
    refused = feedsync("connections", "apply", str(bad), env=env, check=False)
    assert refused.returncode == 1
    assert f"{bad}:4: connections[0] kind: unknown kind 'userz'" in refused.stderr
    assert json.loads(feedsync("connections", "list", "--json", env=env).stdout) == []

    feedsync("connections", "apply", str(CONNECTIONS), env=env)
    listed = json.loads(feedsync("connections", "list", "--json", env=env).stdout)
    assert sorted((c["name"], c["kind"], c["path"]) for c in listed) == [
        ("getabstract", "getabstract", "import/getabstract/*.xlsx"),
        ("hmm", "hmm", "import/hmm/*.csv"),
        ("hr", "hierarchy", "import/hierarchy/*.csv"),
        ("hr-users", "users", "import/user/internal/*.csv"),
        ("lrs-import", "xapi", "import/xapi/*.csv"),
        ("skills", "skills_export", ""),  # exports take no files
        ("transcripts", "transcript_export", ""),
        ("xapi-out", "xapi_export", ""),
    ]

    start("worker", "--processes", "1", "--threads", "2")  # no watcher: the admin syncs on demand
    feed = feedgen.generate_users(tmp_path / "p.csv", 500)
    assert "dropped" in feedsync("upload", "hr-users", str(feed.path), env=env).stdout
    assert (settings.drop_dir / "import/user/internal/p.csv").exists()
    out = feedsync("sync", "hr-users", "--wait", env=env)
    assert out.stdout.strip().endswith("completed")
    (run,) = history(env)
    assert run["type"] == "on_demand" and run["counts"]["created"] == 500
