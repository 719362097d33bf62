"""The admin's loop (issue 14): what an admin does to fix things works every time, and nothing is
set aside without a line they can see."""

from __future__ import annotations

from pathlib import Path

from producers import queries
from producers.commands import apply_connections, delete_connection
from schemas.connections import load_connections_toml
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
