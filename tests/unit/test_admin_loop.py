"""The admin's loop (issue 14): what an admin does to fix things works every time, and nothing is
set aside without a line they can see."""

from __future__ import annotations

from producers import queries
from producers.commands import apply_connections, delete_connection
from schemas.connections import load_connections_toml
from tests.conftest import sql
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
