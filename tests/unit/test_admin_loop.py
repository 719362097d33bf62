"""The admin's loop (issue 14): what an admin does to fix things works every time, and nothing is
set aside without a line they can see."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from producers import queries, registry, scheduler
from producers.commands import apply_connections
from producers.connection_admin import delete_connection
from schemas import pathpattern
from schemas.connections import ConfigError, load_connections_toml
from tests.conftest import feedsync, sql
from tests.stubpipeline import HEADER, USERS_TOML, Pipeline

INBOX = "import/user/internal"
FULL = HEADER + "ann@x.com,Ann,Ames,,Sales\nbob@x.com,Bob,Berg,,Sales\ncid@x.com,Cid,Cole,,Sales\n"
FULL_FEED = USERS_TOML.replace('kind = "users"', 'kind = "users"\nfull_feed = true\nmax_deactivate = "100%"')


def active() -> dict[str, bool]:
    return dict(sql("SELECT email, active FROM lms.users"))


def apply(toml: str) -> list[tuple[str, str]]:
    return apply_connections(load_connections_toml(toml))


def test_a_connection_deleted_and_created_again_under_its_name_still_owns_its_people(pipeline: Pipeline) -> None:
    apply(FULL_FEED)
    pipeline.import_files((f"{INBOX}/monday.csv", FULL))
    delete_connection("hr-users")
    assert apply(FULL_FEED) == [("hr-users", "created")]

    # Unchanged people are not written by a run: only ownership carried over lets the full feed see them.
    pipeline.import_files((f"{INBOX}/tuesday.csv", HEADER + "ann@x.com,Ann,Ames,,Sales\n"))
    assert active() == {"ann@x.com": True, "bob@x.com": False, "cid@x.com": False}
    assert queries.history("hr-users")[0]["counts"]["deactivated"] == 2


def test_a_second_connections_file_keeps_the_first_files_group_rules_unless_pruned(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    pipeline.import_files((f"{INBOX}/monday.csv", FULL))
    first, second = tmp_path / "hr.toml", tmp_path / "other.toml"
    first.write_text(USERS_TOML + '\n[[rules]]\ngroup = "Sales"\nattributes = { department = "Sales" }\n')
    second.write_text(USERS_TOML.replace("hr-users", "crm-users").replace("import/user/internal", "crm"))
    feedsync("connections", "apply", str(first))
    assert members() == {"Sales": 3}

    out = feedsync("connections", "apply", str(second)).stdout
    assert "group Sales: kept (not in this file; --prune removes it)" in out
    assert members() == {"Sales": 3}

    out = feedsync("connections", "apply", "--prune", str(second)).stdout
    assert "group Sales: removed" in out
    assert members() == {} and sql("SELECT active FROM lms.groups") == [(False,)]


def members() -> dict[str, int]:
    rows = sql(
        "SELECT g.name, count(*) FROM lms.group_members m JOIN lms.groups g ON g.id = m.group_id GROUP BY g.name"
    )
    return {name: int(n) for name, n in rows}


@pytest.mark.parametrize(
    ("a", "b", "meet"),
    [
        ("import/*.csv", "import/user/*.csv", False),
        ("import/**", "import/user/*.csv", True),
        ("import/**/*.csv", "import/*.csv", True),
        ("hr/*.csv", "hr/users-*.csv", True),
        ("hr/*.csv", "hr/*.xlsx", False),
        ("hr/[a-c]*.csv", "hr/d*.csv", False),
        ("hr/[!a]*.csv", "hr/a*.csv", False),
        ("hr/?.csv", "hr/ab.csv", False),
    ],
)
def test_two_path_patterns_overlap_only_when_some_file_matches_both(a: str, b: str, meet: bool) -> None:
    assert pathpattern.overlap(a, b) is meet and pathpattern.overlap(b, a) is meet


def test_a_star_stays_inside_one_folder_and_two_stars_reach_any_depth(pipeline: Pipeline) -> None:
    pipeline.drop(f"{INBOX}/deeper/users.csv", FULL)
    assert registry.scan(pipeline.settings) == []
    apply(USERS_TOML.replace("import/user/internal/*.csv", "import/user/internal/**/*.csv"))
    assert [t.outcome for t in registry.scan(pipeline.settings)] == ["registered"]
    pipeline.drain()
    assert len(active()) == 3


def test_connections_whose_paths_overlap_are_refused_at_apply_naming_both_lines(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    other = USERS_TOML.replace("hr-users", "all-users").replace("import/user/internal/*.csv", "import/**")
    both = tmp_path / "both.toml"
    both.write_text(USERS_TOML + other)
    out = feedsync("connections", "apply", str(both), check=False)
    assert out.returncode == 1
    assert "both.toml:5: connection 'hr-users' path 'import/user/internal/*.csv' overlaps line 18" in out.stderr

    alone = tmp_path / "other.toml"
    alone.write_text(other)
    out = feedsync("connections", "apply", str(alone), check=False)
    assert out.returncode == 1
    assert "overlaps the path 'import/user/internal/*.csv' of connection 'hr-users'" in out.stderr
    assert [r[0] for r in sql("SELECT name FROM sync.connections")] == ["hr-users"]


def test_upload_refuses_a_file_its_connection_would_never_take_saying_why(pipeline: Pipeline, tmp_path: Path) -> None:
    apply('[[connections]]\nname = "hmm"\nkind = "hmm"\n')
    archive, workbook, hyphens = tmp_path / "users.zip", tmp_path / "client_hmm12_20170304.xlsx", tmp_path / "x.csv"
    for f in (archive, workbook, hyphens):
        f.write_bytes(b"PK\x03\x04")
    hyphens = hyphens.rename(tmp_path / "client-hmm12-20170304.csv")

    out = feedsync("upload", "hr-users", str(archive), check=False)
    assert out.returncode == 1 and "hr-users would never take it: it does not match the connection's path" in out.stderr
    out = feedsync("upload", "hmm", str(workbook), check=False)
    assert out.returncode == 1 and "'import/hmm/*.csv'" in out.stderr
    out = feedsync("upload", "hmm", str(hyphens), check=False)
    assert out.returncode == 1 and "is not a Harvard ManageMentor feed name" in out.stderr
    assert not any(p.is_file() for p in pipeline.settings.drop_dir.rglob("*"))


def test_connections_list_shows_the_files_waiting_and_those_ignored_with_why(pipeline: Pipeline) -> None:
    apply(USERS_TOML.replace('kind = "users"', 'kind = "users"\ndone_marker = true'))
    pipeline.drop(f"{INBOX}/monday.csv", FULL)  # waits for its marker
    pipeline.drop(f"{INBOX}/monday.zip", b"PK")
    listed = json.loads(feedsync("connections", "list", "--json").stdout)
    hr = next(c for c in listed if c["name"] == "hr-users")
    assert hr["files_waiting"] == 1 and hr["files_in_drop_dir"] == [f"{INBOX}/monday.csv"]
    assert hr["files_ignored"] == [
        {"file": f"{INBOX}/monday.zip", "why": "it does not match the connection's path 'import/user/internal/*.csv'"}
    ]
    text = feedsync("connections", "list").stdout
    assert f"hr-users: ignored {INBOX}/monday.zip: it does not match" in text


STATE_TOML = USERS_TOML.replace('department = "Department"', 'department = "Department"\nstate = "State"')
STATE_HEADER = HEADER.rstrip("\n") + ",State\n"


def test_a_mapped_state_column_deactivates_and_reactivates_people_explicitly(pipeline: Pipeline) -> None:
    apply(STATE_TOML.replace('kind = "users"', 'kind = "users"\nmax_deactivate = "50%"'))
    pipeline.import_files(
        (
            f"{INBOX}/monday.csv",
            STATE_HEADER + "ann@x.com,Ann,Ames,,Sales,ACTIVE\nbob@x.com,Bob,Berg,,Sales,DELETED\n"
            "cid@x.com,Cid,Cole,,Sales,\ndan@x.com,Dan,Dunn,,Sales, active \n",
        )
    )
    assert active() == {"ann@x.com": True, "bob@x.com": False, "cid@x.com": True, "dan@x.com": True}

    run_id = pipeline.import_files(
        (
            f"{INBOX}/tuesday.csv",
            STATE_HEADER + "ann@x.com,Ann,Ames,,Sales,Suspended\nbob@x.com,Bob,Berg,,Sales,Active\n"
            "cid@x.com,Cid,Cole,,Sales,Gone\n",
        )
    )
    assert active() == {"ann@x.com": False, "bob@x.com": True, "cid@x.com": True, "dan@x.com": True}
    run = queries.run_detail(run_id)
    assert run is not None and run["counts"]["deactivated"] == 1
    assert [(e["line"], e["column"], e["code"], e["value"], e["row_rejected"]) for e in queries.errors(run_id)] == [
        (4, 6, "invalid_state", "Gone", True)
    ]


def test_deactivations_by_state_wait_for_approval_past_the_default_threshold(pipeline: Pipeline) -> None:
    apply(STATE_TOML)
    rows = "".join(f"p{i}@x.com,P,{i},,Sales,ACTIVE\n" for i in range(10))
    pipeline.import_files((f"{INBOX}/monday.csv", STATE_HEADER + rows))
    gone = rows.replace("p0@x.com,P,0,,Sales,ACTIVE", "p0@x.com,P,0,,Sales,DELETED").replace(
        "p1@x.com,P,1,,Sales,ACTIVE", "p1@x.com,P,1,,Sales,DELETED"
    )
    run_id = pipeline.import_files((f"{INBOX}/tuesday.csv", STATE_HEADER + gone))
    run = queries.run_detail(run_id)
    assert run is not None and run["status"] == "awaiting_approval"
    assert run["plan"]["held_because"] == [
        "it would deactivate 2 of 10 people (max_deactivate = 10% (the default for a mapped state))"
    ]
    assert all(active().values())


def test_a_bundles_user_file_is_removed_when_its_run_ends_and_its_units_are_kept_like_content(
    pipeline: Pipeline,
) -> None:
    from tests.data import PEOPLE, POSITIONS, UNITS, connect, sync

    connect()
    run = sync(pipeline, {"org.csv": UNITS, "pos.csv": POSITIONS, "user.csv": PEOPLE})
    assert run["status"] == "completed"
    kept = dict(sql("SELECT regexp_replace(original_path, '^.*/', ''), removed_at IS NULL FROM sync.feed_files"))
    assert kept == {"org.csv": True, "pos.csv": True, "user.csv": False}
    assert [f["kept"] for f in _files_shown(run["run_id"])] == ["kept", "kept", "removed"]


def _files_shown(run_id: int) -> list[dict[str, str]]:
    detail = queries.run_detail(run_id)
    assert detail is not None
    return [{"file": f["file"], "kept": "removed" if f["removed_at"] else "kept"} for f in detail["files"]]


def test_feedsync_run_shows_a_plan_only_when_one_was_computed_and_says_it_is_a_plan(pipeline: Pipeline) -> None:
    run_id = pipeline.import_files((f"{INBOX}/monday.csv", FULL))
    shown = feedsync("run", str(run_id)).stdout
    assert "created=3" in shown and "creates:" not in shown, "no plan was computed for this run"

    apply(FULL_FEED)
    run_id = pipeline.import_files((f"{INBOX}/tuesday.csv", HEADER + "ann@x.com,Ann,Ames,,Sales\n"))
    shown = feedsync("run", str(run_id)).stdout
    assert "plan (computed before the load; the counts above are what it did):" in shown
    assert "deactivations: 2" in shown


def test_a_schedule_every_three_hours_fires_each_slot_with_its_access_mode_and_lists_the_next(
    pipeline: Pipeline,
) -> None:
    start = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)
    apply(
        USERS_TOML.replace('kind = "users"', 'kind = "users"\ntrigger = "on_schedule"')
        + f'\n[connections.schedule]\nstart = "{start.isoformat()}"\nevery_hours = 3\naccess = "exclusive"\n'
    )
    sql("UPDATE sync.schedules SET armed_at = %s", (start - timedelta(hours=1),))
    pipeline.drop(f"{INBOX}/monday.csv", FULL)
    fired = []
    for h in (0, 1, 3, 6):
        fired.append(scheduler.tick(at=start + timedelta(hours=h, minutes=1)))
        pipeline.drain()
    assert [len(f) for f in fired] == [1, 0, 1, 1]
    assert [(h["type"], h["access"]) for h in queries.history()] == [("scheduled", "exclusive")] * 3

    sql("SELECT set_config('feedsync.clock', '', false)")
    (listed,) = [c for c in json.loads(feedsync("connections", "list", "--json").stdout) if c["name"] == "hr-users"]
    now = datetime.now(UTC)
    next_slot = datetime.fromisoformat(listed["next_slot"])
    assert now < next_slot <= now + timedelta(hours=3) and (next_slot - start) % timedelta(hours=3) == timedelta(0)


def test_a_schedule_needs_exactly_one_of_every_days_or_every_hours() -> None:
    toml = USERS_TOML + '\n[connections.schedule]\nstart = "2026-11-01T02:00:00Z"\nevery_days = 1\nevery_hours = 12\n'
    with pytest.raises(ConfigError, match="a schedule needs one of every_days or every_hours"):
        load_connections_toml(toml)


def test_a_dry_run_previews_a_file_from_outside_the_drop_dir_and_writes_nothing(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    pipeline.import_files((f"{INBOX}/monday.csv", FULL))
    before = sql("SELECT email, first_name, active FROM lms.users ORDER BY email")
    tuesday = tmp_path / "tuesday.csv"
    tuesday.write_text(HEADER + "ann@x.com,Anne,Ames,,Sales\ndan@x.com,Dan,Dunn,,Sales\n")

    out = feedsync("sync", "hr-users", "--dry-run", "--file", str(tuesday), "--wait")
    run_id = int(out.stdout.split("run ", 1)[1].split(":", 1)[0])
    run = queries.run_detail(run_id)
    assert run is not None and run["status"] == "completed" and run["dry_run"]
    assert (run["plan"]["creates"], run["plan"]["updates"]) == (1, 1)
    assert [f["file"] for f in run["files"]] == ["tuesday.csv"]
    assert sql("SELECT email, first_name, active FROM lms.users ORDER BY email") == before
    # Nothing of the preview waits for a real run, and nothing of it stays in the store.
    assert sql("SELECT count(*) FROM sync.feed_files WHERE status IN ('registered', 'claimed')") == [(0,)]
    assert not any(p.is_file() for p in (pipeline.settings.store_dir / "previews").rglob("*"))

    # The same bytes dropped for real afterwards import: a preview is not an import.
    run_id = pipeline.import_files((f"{INBOX}/tuesday.csv", tuesday.read_text()))
    assert queries.history()[0]["run_id"] == run_id and queries.history()[0]["counts"]["created"] == 1


def test_a_file_preview_is_refused_without_dry_run(pipeline: Pipeline, tmp_path: Path) -> None:
    f = tmp_path / "x.csv"
    f.write_text(HEADER)
    out = feedsync("sync", "hr-users", "--file", str(f), check=False)
    assert out.returncode == 1 and "use it with --dry-run" in out.stderr
