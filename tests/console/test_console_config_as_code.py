"""Config as code stays the truth: a change made in the console is written into the connections file
the connection came from (comments kept), shown as a diff and recorded; `connections apply` of a
file that lacks it says which settings it would undo and refuses without --force."""

from __future__ import annotations

import shutil
from pathlib import Path

from starlette.testclient import TestClient

from schemas.connections import load_connections_toml
from tests.conftest import feedsync, sql
from tests.console.conftest import form_token
from tests.stubpipeline import USERS_TOML, Pipeline

COMMENTED = "# HR's people feed: reviewed in git by the HR integration team\n" + USERS_TOML.replace(
    'path = "import/user/internal/*.csv"', 'path = "import/user/internal/*.csv"   # where Workday drops it'
)


def _schedule(client: TestClient, every: str, start_time: str = "03:30") -> str:
    r = client.post(
        "/connections/hr-users/schedule",
        data={
            "csrf": form_token(client),
            "start_date": "2026-12-01",
            "start_time": start_time,
            "every": every,
            "every_unit": "days",
            "schedule_enabled": "on",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return str(r.headers["location"])


def test_a_schedule_set_in_the_console_is_written_to_its_file_with_comments_kept_and_shown_as_a_diff(
    as_admin: TestClient, pipeline: Pipeline, tmp_path: Path
) -> None:
    hr = tmp_path / "hr.toml"
    hr.write_text(COMMENTED)
    feedsync("connections", "apply", str(hr))
    assert sql("SELECT source_file FROM sync.connections") == [(str(hr.resolve()),)]

    page = as_admin.get(_schedule(as_admin, "2"))
    written = hr.read_text()
    assert written.startswith(COMMENTED.rstrip("\n")), "the file keeps what it said, comments included"
    assert "# where Workday drops it" in written
    (config,) = load_connections_toml(written)
    assert config.schedule is not None and config.schedule.every_days == 2
    assert config.schedule.start.isoformat() == "2026-12-01T03:30:00+00:00"
    assert "+[connections.schedule]" in page.text and "+every_days = 2" in page.text
    assert f"Written to <code>{hr.resolve()}</code>" in page.text
    assert sql("SELECT connection_name, settings, changed_by, source_file FROM sync.console_changes") == [
        ("hr-users", ["schedule"], "console:ada", str(hr.resolve()))
    ]
    # Saving the same schedule again writes nothing and records nothing.
    assert as_admin.get(_schedule(as_admin, "2")).url.query == b"unchanged=1"
    assert hr.read_text() == written
    assert sql("SELECT count(*) FROM sync.console_changes") == [(1,)]


def test_connections_apply_of_a_file_without_the_console_change_is_refused_until_forced(
    as_admin: TestClient, pipeline: Pipeline, tmp_path: Path
) -> None:
    hr, old = tmp_path / "hr.toml", tmp_path / "hr-before.toml"
    hr.write_text(COMMENTED)
    shutil.copy(hr, old)
    feedsync("connections", "apply", str(hr))
    _schedule(as_admin, "2")

    refused = feedsync("connections", "apply", str(old), check=False)
    assert refused.returncode != 0
    said = refused.stdout + refused.stderr
    assert "refused, nothing applied" in said
    assert "hr-users: this file would undo what the console changed (schedule;" in said
    assert "--force" in said
    assert sql("SELECT every_days FROM sync.schedules") == [(2,)], "nothing was undone"

    # The file the console wrote carries the change: applying it settles it.
    assert "hr-users: unchanged" in feedsync("connections", "apply", str(hr)).stdout
    assert sql("SELECT settled_at IS NOT NULL, overridden_at FROM sync.console_changes") == [(True, None)]
    _schedule(as_admin, "4")

    forced = feedsync("connections", "apply", "--force", str(old)).stdout
    assert "hr-users: updated; undid the console's change of schedule.every_days" in forced
    assert sql("SELECT count(*) FROM sync.schedules") == [(0,)]
    ((by,),) = sql("SELECT overridden_by FROM sync.console_changes WHERE overridden_at IS NOT NULL")
    assert sql("SELECT count(*) FROM sync.console_changes WHERE settled_at IS NULL AND overridden_at IS NULL") == [(0,)]
    assert "@" in by, "the OS user who forced it"
    # Undone and recorded: the next apply of that file is not refused again.
    assert "hr-users: unchanged" in feedsync("connections", "apply", str(old)).stdout
    page = as_admin.get("/connections/hr-users").text
    assert "undone by" in page and "apply --force" in page


def test_a_connection_whose_file_is_unknown_is_changed_in_the_database_and_still_guarded(
    as_admin: TestClient, pipeline: Pipeline, tmp_path: Path
) -> None:
    page = as_admin.get(_schedule(as_admin, "3")).text
    assert "Not written to a file" in page
    assert sql("SELECT every_days FROM sync.schedules") == [(3,)]
    plain = tmp_path / "plain.toml"
    plain.write_text(USERS_TOML)
    refused = feedsync("connections", "apply", str(plain), check=False)
    assert refused.returncode != 0 and "(schedule;" in refused.stdout + refused.stderr


def test_a_table_added_to_a_connection_keeps_the_next_connections_comment_with_it(
    as_admin: TestClient, pipeline: Pipeline, tmp_path: Path
) -> None:
    crm = USERS_TOML.lstrip("\n").replace("hr-users", "crm-users").replace("import/user/internal/*.csv", "crm/*.csv")
    second = "\n# CRM contacts, owned by the sales team\n" + crm
    hr = tmp_path / "all.toml"
    hr.write_text(COMMENTED + second)
    feedsync("connections", "apply", str(hr))
    _schedule(as_admin, "2")
    written = hr.read_text()
    schedule = written.index("[connections.schedule]")
    comment = written.index("# CRM contacts, owned by the sales team\n[[connections]]")
    assert written.index('nickname = "DontImportFromSource"') < schedule < comment
    assert [c.name for c in load_connections_toml(written)] == ["hr-users", "crm-users"]
