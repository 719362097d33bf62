"""What needs a human, first: the Connections page's strip, the nav's counts and the tiles' colours
(producers/attention.py, also `feedsync status`); a failed or dead-lettered run's ⚠, its report
and Replay; approvals as a decision (confirm, comment, who/when/why, the plan's people as CSV)."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta
from typing import Any

from click.testing import CliRunner
from starlette.testclient import TestClient

from producers import queries
from producers.cli import cli
from tests.conftest import sql
from tests.console.conftest import form_token, text_of
from tests.data import apply, people
from tests.historystore import dead_lettered
from tests.stubpipeline import Pipeline

USERS = "import/user/internal/"


def held_and_dead_lettered(pipeline: Pipeline) -> tuple[int, int]:
    """hr-users with a dead-lettered run, then a full feed of 10 after one of 20: held (50% gone)."""
    dead = dead_lettered(pipeline, USERS + "crash.csv", people(3, start=100))
    apply("full_feed = true\n")
    pipeline.import_files((USERS + "day1.csv", people(20)))
    held = pipeline.import_files((USERS + "day2.csv", people(10)))
    assert sql("SELECT status FROM sync.runs WHERE id IN (%s, %s) ORDER BY id", (dead, held)) == [
        ("failed",),
        ("awaiting_approval",),
    ]
    return held, dead


def cli_out(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, (args, result.output, result.exception)
    return result.output


def test_the_connections_page_opens_with_the_held_and_the_dead_lettered_run_counted_in_the_nav(
    as_admin: TestClient, pipeline: Pipeline
) -> None:
    held, dead = held_and_dead_lettered(pipeline)
    page = as_admin.get("/connections").text
    strip = text_of(page.split('<div class="tiles">')[0])
    assert "Needs attention (2)" in strip
    assert f"Held hr-users : run #{held} waits for approval: " in strip
    assert f"Dead-lettered hr-users : run #{dead} has 1 dead-lettered message: replay once the cause is fixed" in strip
    assert f'href="/runs/{held}"' in page and f'href="/runs/{dead}"' in page
    # The nav counts them on every page; the tile is red (its worst item is the dead letter).
    assert "Connections , 2 need attention" in text_of(as_admin.get("/audit").text)
    assert re.search(r'class="tile health-bad[^"]*" href="/connections/hr-users"', page)
    listed = text_of(as_admin.get("/runs").text)
    assert re.search(rf"#{dead} failed ⚠ hr-users file drop .* replay", listed)
    status = cli_out("status")
    assert "needs attention: 1 held run, 1 failed or dead-lettered run" in status
    assert f"dead lettered  hr-users: run #{dead} has 1 dead-lettered message" in status


def test_a_tile_is_not_green_while_its_connection_has_an_open_missing_alert_and_an_unsent_notice_shows(
    as_admin: TestClient,
) -> None:
    from tests.unit.alarmhelp import connect, evaluate, run, utc

    # A webhook nobody listens on: the alert's notice cannot be sent.
    connect('by = "07:30"\ntz = "Europe/Zurich"\n', extra='[connections.notify]\nwebhook = "http://127.0.0.1:9/"\n')
    run(utc(2026, 11, 29, 6, 0))
    before = as_admin.get("/connections").text
    assert re.search(r'class="tile health-ok[^"]*" href="/connections/hr-users"', before)
    assert "Nothing needs attention" in before
    evaluate(utc(2026, 11, 30, 6, 31))
    page = as_admin.get("/connections").text
    # The last run completed, yet the feed is missing: the tile says so, in colour and in words.
    assert re.search(r'class="tile health-bad[^"]*" href="/connections/hr-users"', page)
    assert "Needs attention</p>" in page
    strip = text_of(page.split('<div class="tiles">')[0])
    assert "Alert hr-users : missing alert:" in strip
    assert "Not sent hr-users : the notice of alert #1 (missing) could not be sent" in strip
    assert "Alerts , 1 open" in text_of(page)


def test_approve_asks_to_confirm_takes_a_comment_and_the_run_shows_who_when_why_and_the_wait_apart(
    as_admin: TestClient, pipeline: Pipeline
) -> None:
    apply("full_feed = true\n")
    pipeline.import_files((USERS + "day1.csv", people(20)))
    held = pipeline.import_files((USERS + "day2.csv", people(10)))
    page = as_admin.get(f"/runs/{held}").text
    assert 'data-confirm="Approve run' in page and 'data-confirm="Reject run' in page
    assert 'name="comment"' in page and "Waiting for approval" in page
    # What it read is shown before anything is applied (not "read 0").
    assert "rows 10 read 0 rejected" in text_of(page) and "Read 10 rows." in text_of(page)
    # An hour of waiting for a decision, as if the admin came back after lunch.
    sql(
        "UPDATE sync.runs SET started_at = started_at - interval '1 hour', held_at = held_at - interval '1 hour' "
        "WHERE id = %s",
        (held,),
    )
    done = as_admin.post(
        f"/runs/{held}/approve",
        data={"csrf": form_token(as_admin), "comment": "HR confirmed the 10 leavers"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    pipeline.drain()
    r = queries.run_detail(held)
    assert r is not None and r["status"] == "completed"
    assert r["decision"]["outcome"] == "approved" and r["decision"]["by"] == "console:ada"
    assert r["decision"]["comment"] == "HR confirmed the 10 leavers"
    assert r["wait_s"] >= 3600 and r["duration_s"] < 600
    took = datetime.fromisoformat(r["finished_at"]) - datetime.fromisoformat(r["started_at"])
    assert abs(took - timedelta(seconds=r["duration_s"] + r["wait_s"])) < timedelta(milliseconds=50)
    shown = text_of(as_admin.get(f"/runs/{held}").text)
    assert "Waiting for approval" not in shown
    assert f"Approved by console:ada at {r['decision']['at'][:19].replace('T', ' ')}Z" in shown
    assert "“HR confirmed the 10 leavers”" in shown and "waiting for approval)" in shown
    assert "Started " in shown and "Finished " in shown and "not counted in its duration" in shown
    out = cli_out("run", str(held))
    assert "approved by console:ada at " in out and ": HR confirmed the 10 leavers" in out
    assert "waiting for approval)" in out.splitlines()[0] and "None" not in out


def test_reject_with_a_comment_after_downloading_everyone_the_plan_would_deactivate(
    as_admin: TestClient, pipeline: Pipeline
) -> None:
    apply("full_feed = true\n")
    pipeline.import_files((USERS + "day1.csv", people(20)))
    held = pipeline.import_files((USERS + "day2.csv", people(10)))
    page = as_admin.get(f"/runs/{held}").text
    assert f'href="/runs/{held}/plan-people.csv"' in page
    got = as_admin.get(f"/runs/{held}/plan-people.csv")
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(got.text)))
    assert list(rows[0]) == ["change", "email", "first_name", "last_name", "external_id"]
    (plan,) = sql("SELECT plan FROM sync.runs WHERE id = %s", (held,))[0]
    assert len(rows) == plan["deactivations"] + plan["creates"] == 10  # everyone, not the sample of 5
    assert {r["change"] for r in rows} == {"deactivate"}
    assert set(plan["deactivations_sample"]) <= {r["email"] for r in rows}
    rejected = as_admin.post(
        f"/runs/{held}/reject", data={"csrf": form_token(as_admin), "comment": "wrong file: half the company"}
    )
    assert rejected.status_code == 200
    shown = text_of(rejected.text)
    assert "Rejected by console:ada at " in shown and "“wrong file: half the company”" in shown
    assert "Waiting for approval" not in shown and "It had been held because" in shown
    assert as_admin.get(f"/runs/{held}/plan-people.csv").status_code == 404  # decided: its staged rows are gone
    assert "rejected by console:ada at " in cli_out("run", str(held))


def test_the_plan_people_csv_is_behind_sign_in(console: TestClient, pipeline: Pipeline) -> None:
    apply("full_feed = true\n")
    pipeline.import_files((USERS + "day1.csv", people(20)))
    held = pipeline.import_files((USERS + "day2.csv", people(10)))
    r = console.get(f"/runs/{held}/plan-people.csv", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/sign-in")


def test_a_dead_lettered_runs_page_says_what_happened_and_replays_it(
    as_admin: TestClient, pipeline: Pipeline, settings: Any
) -> None:
    dead = dead_lettered(pipeline, USERS + "crash.csv", people(3))
    page = as_admin.get(f"/runs/{dead}").text
    shown = text_of(page)
    assert "⚠ What happened and what to do" in shown
    assert "1 message of this run failed every retry and was set aside as a dead letter" in shown
    assert "stage transform dead-lettered after 2 attempts" in shown
    assert 'action="/dead-letters/replay"' in page and f'name="run_id" value="{dead}"' in page
    assert 'aria-label="dead-lettered"' in page
    token = form_token(as_admin)
    preview = as_admin.post("/dead-letters/replay", data={"csrf": token, "scope": "run", "run_id": str(dead)})
    assert "would replay" in preview.text and "Confirm replay" in preview.text
    as_admin.post("/dead-letters/replay", data={"csrf": token, "scope": "run", "run_id": str(dead), "confirm": "yes"})
    pipeline.drain()
    assert sql("SELECT status FROM sync.runs WHERE id = %s", (dead,)) == [("completed",)]
    after = text_of(as_admin.get(f"/runs/{dead}").text)
    assert "What happened and what to do" not in after
    assert "Nothing needs attention" in as_admin.get("/connections").text
