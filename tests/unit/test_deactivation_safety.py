"""A full feed deactivates people only when it can say who is gone: a feed cut short waits for
approval under the default threshold, deactivations are counted and announced, and a rejected row
never makes its person "gone" (a row whose person cannot be read holds the run for approval)."""

from __future__ import annotations

from typing import Any

from click.testing import CliRunner

from producers import queries
from producers.cli import cli
from tests.conftest import sql
from tests.data import PEOPLE, POSITIONS, UNITS, active, apply, connect, people, person, sync
from tests.notifying import Inbox
from tests.stubpipeline import HEADER, Pipeline

FEED = "import/user/internal/"


def test_a_full_feed_cut_in_half_waits_for_approval_under_the_default_threshold(pipeline: Pipeline) -> None:
    apply("full_feed = true\n")  # no max_deactivate: the default applies
    pipeline.import_files((FEED + "day1.csv", people(100)))
    held = pipeline.import_files((FEED + "day2.csv", people(50)))
    run = queries.run_detail(held)
    assert run is not None and run["status"] == "awaiting_approval"
    assert run["plan"]["held_because"] == [
        "it would deactivate 50 of 100 people (max_deactivate = 10% (the default for a full feed))"
    ]
    assert active() == 100 and run["counts"].get("deactivated", 0) == 0


def test_deactivations_are_counted_in_history_and_send_the_connections_warning(
    pipeline: Pipeline,
    smtp: Inbox,
    webhook: tuple[str, list[dict[str, Any]]],
) -> None:
    url, received = webhook
    apply(
        'full_feed = true\nmax_deactivate = "60%"\n'
        f'[connections.notify]\nwebhook = "{url}"\nemail = ["hr-it@example.com"]\n'
    )
    pipeline.import_files((FEED + "day1.csv", people(100)))
    assert received == [] and smtp.messages == [], "a clean run that deactivated nobody sends nothing"
    run_id = pipeline.import_files((FEED + "day2.csv", people(50)))

    (run,) = [r for r in queries.history() if r["run_id"] == run_id]
    assert (run["status"], run["counts"]["deactivated"]) == ("completed", 50) and active() == 50
    table = CliRunner().invoke(cli, ["history", "hr-users"])
    assert table.exit_code == 0, table.output
    header, newest = (line.split() for line in table.output.splitlines()[:2])
    assert newest[header.index("DEACTIVATED")] == "50"
    as_json = CliRunner().invoke(cli, ["history", "hr-users", "--json"])
    assert '"deactivated": 50' in as_json.output

    (hook,) = received
    assert (hook["event"], hook["run_id"], hook["status"], hook["deactivated"]) == (
        "run_deactivated_people", run_id, "completed", 50,
    )  # fmt: skip
    ((recipients, mail),) = smtp.messages
    body = mail.get_payload()
    assert recipients == ["hr-it@example.com"] and "50 people deactivated" in body
    assert "@x.com" not in body + str(hook), "no row values (personal data) in a warning"


def test_a_file_whose_every_row_has_an_extra_field_deactivates_nobody_without_approval(pipeline: Pipeline) -> None:
    apply('full_feed = true\nmax_deactivate = "100%"\n')  # only the unreadable rows may hold this run
    pipeline.import_files((FEED + "day1.csv", people(100)))
    extra = HEADER + "".join(f"p{i}@x.com,P{i},L,,S,extra\n" for i in range(100))
    held = pipeline.import_files((FEED + "day2.csv", extra))
    run = queries.run_detail(held)
    assert run is not None and run["status"] == "awaiting_approval" and active() == 100
    (why,) = run["plan"]["held_because"]
    assert why.startswith(
        "it would deactivate 100 people while 100 rejected row(s) could not be read for who they are about "
        f"({FEED}day2.csv line 2, {FEED}day2.csv line 3,"
    )
    assert "@x.com" not in why


def test_a_cp1252_file_read_as_utf8_does_not_deactivate_the_people_with_accented_names(pipeline: Pipeline) -> None:
    apply('full_feed = true\nmax_deactivate = "100%"\n')
    feed = HEADER + "".join(f"p{i}@x.com,{'Zoë' if i < 20 else 'Zoe'}{i},L,,S\n" for i in range(100))
    pipeline.import_files((FEED + "day1.csv", feed))
    assert active() == 100
    held = pipeline.import_files((FEED + "day2.csv", feed.encode("cp1252")))  # the connection reads UTF-8
    run = queries.run_detail(held)
    assert run is not None and run["status"] == "awaiting_approval" and active() == 100
    assert (run["plan"]["deactivations"], run["plan"]["unreadable_rejected"]) == (20, 20)
    assert {c for (c,) in sql("SELECT DISTINCT code FROM sync.row_errors WHERE run_id = %s", (held,))} == {
        "bad_encoding"
    }


def test_a_row_refused_for_another_column_than_its_email_keeps_its_person_active(pipeline: Pipeline) -> None:
    apply('full_feed = true\nrequired = ["email", "first_name"]\n')
    pipeline.import_files((FEED + "day1.csv", people(100)))
    day2 = people(100).replace("p7@x.com,P7,", "p7@x.com,,")  # first name missing: refused, e-mail readable
    run_id = pipeline.import_files((FEED + "day2.csv", day2))
    run = queries.run_detail(run_id)
    assert run is not None and run["status"] == "completed_with_errors"
    assert [(e["line"], e["code"]) for e in queries.errors(run_id)] == [(9, "required")]
    assert run["counts"]["deactivated"] == 0 and active() == 100
    assert sql("SELECT active FROM lms.users WHERE email = 'p7@x.com'") == [(True,)]


def test_a_bundle_user_row_whose_id_cannot_be_read_holds_the_people_deactivation(pipeline: Pipeline) -> None:
    connect('full_feed = true\nmax_deactivate = "100%"')
    sync(pipeline, {"org.csv": UNITS, "pos.csv": POSITIONS, "user.csv": PEOPLE})
    broken = PEOPLE.replace(person("m2", "OPS", "boss2", "MGR"), person("m2", "OPS", "boss2", "MGR")[:-1] + ",x\n")
    run = sync(pipeline, {"org.csv": UNITS, "pos.csv": POSITIONS, "user.csv": broken})
    assert run["status"] == "awaiting_approval"
    assert run["plan"]["people"]["unreadable_rejected"] == 1 and run["plan"]["people"]["deactivations"] == 1
    assert "import/hierarchy/user.csv line 6" in run["plan"]["held_because"][0]
    assert sql("SELECT count(*) FROM lms.users WHERE active")[0][0] == 5
