"""Audit everything, whoever does it: every admin action done with the CLI is a row of the same
audit as the console's, with the operating-system user, source ``cli`` and what it did (the
connections applied, the files uploaded, the dead letters replayed), refusals included."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from producers.cli import cli
from tests.conftest import sql
from tests.data import people
from tests.stubpipeline import USERS_TOML, Pipeline

FEED = "import/user/internal/"


def feedsync(*args: str, code: int = 0, stdin: str | None = None) -> str:
    out = CliRunner().invoke(cli, list(args), input=stdin)
    assert out.exit_code == code, (args, out.output, out.exception)
    return out.output


def cli_rows() -> list[dict[str, Any]]:
    return [
        {"who": w, "action": a, "target": t, "outcome": o, "detail": d}
        for (w, a, t, o, d) in sql(
            "SELECT admin, action, target, outcome, detail FROM sync.audit WHERE source = 'cli' ORDER BY id"
        )
    ]


def held(pipeline: Pipeline, day: str) -> int:
    """A run held for approval: the full feed drops everyone but p0 (over max_deactivate = 1)."""
    return pipeline.import_files((FEED + f"{day}.csv", people(1)))


@pytest.fixture
def keys_dir(settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from schemas.settings import get_settings

    monkeypatch.setenv("FEEDSYNC_KEYS_DIR", str(tmp_path / "keys"))
    get_settings.cache_clear()
    return tmp_path / "keys"


def test_every_cli_action_is_one_audit_row_with_the_os_user_and_what_it_did(
    pipeline: Pipeline, tmp_path: Path, keys_dir: Path
) -> None:
    me = getpass.getuser()
    conf = tmp_path / "connections.toml"
    top, mapping = USERS_TOML.split("[connections.mapping]")
    conf.write_text(top + "full_feed = true\nmax_deactivate = 1\n[connections.mapping]" + mapping)
    feedsync("connections", "apply", str(conf))

    files = [tmp_path / "a.csv", tmp_path / "b.csv"]
    files[0].write_text(people(3))
    files[1].write_text(people(3, start=3))
    feedsync("upload", "hr-users", *map(str, files))
    feedsync("sync", "hr-users")
    (first,) = sql("SELECT max(id) FROM sync.runs")[0]
    # The rerun is queued (and audited) but fails: its feeds were removed after their run.
    feedsync("rerun", "hr-users", code=2)
    (rerun,) = sql("SELECT max(id) FROM sync.runs")[0]

    b = held(pipeline, "day2")
    feedsync("reject", str(b))
    pipeline.drain()
    c = held(pipeline, "day3")
    feedsync("cancel", str(c), "--reason", "not today")
    pipeline.drain()
    a = held(pipeline, "day4")
    feedsync("approve", str(a))
    pipeline.drain()
    feedsync("undo", str(a))
    (undo_run,) = sql("SELECT max(id) FROM sync.runs")[0]
    feedsync("approve", str(c), code=1)  # refused: recorded too

    ((dl,),) = sql(
        """INSERT INTO sync.dead_letters (message_id, queue_name, actor_name, run_id, message, error, attempts)
           VALUES ('m-audit', 'load', 'gone_actor', %s, '{"kwargs": {}}', 'stage failed', 5) RETURNING id""",
        (first,),
    )
    feedsync("dlq", "replay", str(dl), code=1)  # an actor that no longer exists: refused, and audited
    feedsync("sftp", "keygen", "hr-users")
    if "producers.console" in sys.modules or _has_console():
        feedsync("admins", "add", "zoe", "--role", "viewer", stdin="a long enough password\n")
        feedsync("admins", "remove", "zoe")

    rows = cli_rows()
    assert {r["who"] for r in rows} == {me}
    by = [(r["action"], r["target"]) for r in rows]
    assert by[:11] == [
        ("connections_apply", "connections.toml"),
        ("upload", "hr-users"),
        ("sync", "hr-users"),
        ("rerun", "hr-users"),
        ("reject", f"run {b}"),
        ("cancel", f"run {c}"),
        ("approve", f"run {a}"),
        ("undo", f"run {a}"),
        ("approve", f"run {c}"),
        ("replay", None),
        ("sftp_keygen", "hr-users"),
    ]
    detail = {(r["action"], r["target"]): r for r in rows}
    assert rows[0]["detail"] == {"connections": {"hr-users": "updated"}}
    assert rows[1]["detail"] == {"files": 2}
    assert rows[2]["detail"] == {"run_id": first} and rows[3]["detail"] == {"run_id": rerun}
    assert rows[7]["detail"] == {"run_id": undo_run}
    assert rows[5]["detail"]["was"] == "awaiting_approval"
    assert rows[8]["outcome"].startswith("refused: ") and all(r["outcome"] == "ok" for r in rows[:8])
    assert detail[("replay", None)]["detail"] == {"results": {str(dl): "refused"}}
    if len(rows) > 11:
        assert by[11:] == [("admins_add", "zoe"), ("admins_remove", "zoe")]
        assert rows[11]["detail"] == {"role": "viewer"}


def test_connections_apply_records_what_changed_and_a_refusal(pipeline: Pipeline, tmp_path: Path) -> None:
    conf = tmp_path / "hr.toml"
    conf.write_text(USERS_TOML)
    feedsync("connections", "apply", str(conf))  # the pipeline applied it already: unchanged
    conf.write_text(USERS_TOML.replace('path = "import/user/internal/*.csv"', 'path = "import/user/*.csv"'))
    feedsync("connections", "apply", str(conf))
    bad = tmp_path / "bad.toml"
    bad.write_text(USERS_TOML.replace('kind = "users"', 'kind = "users"\nfull_feed = "maybe"'))
    feedsync("connections", "apply", str(bad), code=1)
    rows = cli_rows()
    assert [r["detail"].get("connections") for r in rows[:2]] == [{"hr-users": "unchanged"}, {"hr-users": "updated"}]
    # A file that does not parse never reaches the store: refused before any action is taken.
    assert len(rows) == 2


def _has_console() -> bool:
    try:
        import argon2  # noqa: F401  (the console extra)
    except ImportError:
        return False
    return True
