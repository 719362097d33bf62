"""The xAPI import's done-when, as an admin meets it: `feedsync up` running with the example
connections, an xAPI CSV dropped into import/xapi/, the history's exact counts, the statements and
completions in the store; the same file dropped again (under another name, and under its own)
adds nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import feedsync, sql
from tests.waiting import poll_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CONNECTIONS = Path(__file__).resolve().parents[2] / "examples" / "connections.toml"
ADL = "http://adlnet.gov/expapi/verbs/"
C1, C2 = "https://courses.example.com/c1", "https://courses.example.com/c2"

# The example's lrs-import mapping: Email, Verb, Activity, Score (number), Done (boolean), When (date).
ROWS = [
    f"ann@example.com,{ADL}completed,{C1},0.9,true,2026-11-01T10:00:00Z",  # 2: a completion on a course
    f"ann@example.com,{ADL}experienced,{C1},,,2026-11-01T09:00:00Z",  # 3: not a completion verb
    f"bob@example.com,{ADL}passed,{C2},0.75,yes,11/2/2026 14:30",  # 4: a completion on a course
    f"bob@example.com,{ADL}completed,https://lrs.example.com/act/9,,true,2026-11-02",  # 5: not a course
    f"carol@example.com,{ADL}completed,{C1},,true,2026-11-03",  # 6: no such learner: stored, a warning
    f"ann@example.com,{ADL}answered,{C2},high,,2026-11-03",  # 7: not a number
    f"bob@example.com,{ADL}completed,courses.example.com/c2,,true,2026-11-03",  # 8: an IRI without a scheme
    f"ann@example.com,{ADL}attempted,{C2},,,2026-11-04T08:15:00.250+01:00",  # 9
]
CSV = "Email,Verb,Activity,Score,Done,When\n" + "\n".join(ROWS) + "\n"


def entries(env: dict[str, str]) -> list[dict[str, Any]]:
    shown: list[dict[str, Any]] = json.loads(feedsync("history", "--json", env=env).stdout)
    return shown


def await_condition(what: str, check: Any, timeout_s: float = 120) -> Any:
    return poll_until(check, timeout=timeout_s, interval=0.3, message=f"not seen: {what}")


def drop(path: Path, text: str) -> None:
    """Written elsewhere and renamed in, as an upload tool that finishes its file does."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.part"
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def test_an_xapi_csv_dropped_into_a_running_feedsync_imports_once_with_exact_counts(
    settings: Any, rabbit_env: dict[str, str], start: Any
) -> None:
    env = rabbit_env
    assert "lrs-import: created" in feedsync("connections", "apply", str(CONNECTIONS), env=env).stdout
    sql(
        "INSERT INTO lms.users (email, first_name, last_name) VALUES"
        " ('ann@example.com', 'Ann', 'A'), ('bob@example.com', 'Bob', 'B')"
    )
    sql(
        "INSERT INTO lms.courses (provider, external_id, title, launch_url) VALUES"
        " ('hmm', 'C1', 'Course one', %s), ('hmm', 'C2', 'Course two', %s)",
        (C1, C2),
    )
    up = start("up", "--processes", "1", "--threads", "2")
    up.wait_for("watching the drop dir")
    inbox = settings.drop_dir / "import/xapi"

    drop(inbox / "activity-1.csv", CSV)
    (run,) = await_condition(
        "the run finished", lambda: [r for r in entries(env) if r["status"] not in ("queued", "in_progress")]
    )
    assert run["connection"] == "lrs-import" and run["type"] == "file_drop"
    assert run["status"] == "completed_with_errors", up.output()[-3000:]
    assert run["counts"] == {
        "read": 8,
        "created": 6,
        "updated": 0,
        "unchanged": 0,
        "deactivated": 0,
        "rejected": 2,
    }
    assert run["content"] == {
        "statements_stored": 6,
        "statements_unchanged": 0,
        "statements_voided": 0,
        "statements_filtered": 0,
        "progress_written": 2,
    }
    errors = json.loads(feedsync("errors", str(run["run_id"]), "--json", env=env).stdout)
    assert [(e["line"], e["column"], e["code"]) for e in errors] == [
        (6, 1, "unknown_learner"),
        (7, 4, "invalid_number"),
        (8, 3, "invalid_statement"),
    ]

    def store() -> tuple[Any, ...]:
        statements = sql(
            "SELECT source_line, actor_email, verb_id, object_id, \"timestamp\" AT TIME ZONE 'UTC',"
            " statement -> 'result' FROM lms.xapi_statements ORDER BY source_line"
        )
        progress = sql(
            "SELECT u.email, c.external_id, p.status, p.completed_on::text, p.score FROM lms.learner_progress p"
            " JOIN lms.users u ON u.id = p.user_id JOIN lms.courses c ON c.id = p.course_id ORDER BY 1, 2"
        )
        return statements, progress

    statements, progress = store()
    assert [(line, email, verb.removeprefix(ADL)) for line, email, verb, *_ in statements] == [
        (2, "ann@example.com", "completed"),
        (3, "ann@example.com", "experienced"),
        (4, "bob@example.com", "passed"),
        (5, "bob@example.com", "completed"),
        (6, "carol@example.com", "completed"),
        (9, "ann@example.com", "attempted"),
    ]
    assert statements[2][4].isoformat() == "2026-11-02T14:30:00"
    assert statements[5][4].isoformat() == "2026-11-04T07:15:00.250000"
    assert statements[0][5] == {"score": {"scaled": 0.9}, "completion": True}
    assert progress == [
        ("ann@example.com", "C1", "completed", "2026-11-01", 90),
        ("bob@example.com", "C2", "completed", "2026-11-02", 75),
    ]

    # The same bytes under another name, then under their own name again: noted, nothing imported.
    drop(inbox / "activity-2.csv", CSV)
    await_condition("the copy noted", lambda: sql("SELECT 1 FROM sync.file_drops WHERE duplicate"))
    await_condition("the copy taken from the drop dir", lambda: not (inbox / "activity-2.csv").exists())
    drop(inbox / "activity-1.csv", CSV)
    await_condition("the same name noted", lambda: len(sql("SELECT 1 FROM sync.file_drops WHERE duplicate")) == 2)
    assert sorted(sql("SELECT path FROM sync.file_drops WHERE duplicate")) == [
        ("import/xapi/activity-1.csv",),
        ("import/xapi/activity-2.csv",),
    ]
    assert [(e["type"], e["duplicate_of_run"] if e["run_id"] is None else e["run_id"]) for e in entries(env)] == [
        ("duplicate", run["run_id"]),
        ("duplicate", run["run_id"]),
        ("file_drop", run["run_id"]),
    ]
    assert store() == (statements, progress)
