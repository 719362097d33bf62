"""What an admin does in the console and what it shows, each as the CLI's command does it and
audited: error reports, on-demand runs, approvals and cancels, schedules, uploads, dead-letter
replays, the audit and status pages, export downloads and run pages; `feedsync web` serving it."""

from __future__ import annotations

import csv
import io
from typing import Any

from starlette.testclient import TestClient

from producers import queries
from tests.conftest import db_today, feedsync, sql
from tests.console.conftest import PASSWORD, form_token
from tests.data import a_run, apply, audit_rows, people, row_error
from tests.stubpipeline import HEADER, Pipeline
from tests.waiting import poll_until

FEED = "import/user/internal/"


def test_the_error_report_csv_is_the_clis_and_neutralises_formulas(as_admin: TestClient) -> None:
    run_id = a_run(None)
    row_error(run_id, FEED + "a.csv", "not an e-mail address", '=HYPERLINK("http://x")')
    row_error(run_id, FEED + "a.csv", "not an e-mail address", "@SUM(A1)")
    r = as_admin.get(f"/runs/{run_id}/errors.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    cli = feedsync("errors", str(run_id), "--csv").stdout
    assert list(csv.reader(io.StringIO(r.text))) == list(csv.reader(io.StringIO(cli)))
    values = [row["value"] for row in csv.DictReader(io.StringIO(r.text))]
    assert values == ['\'=HYPERLINK("http://x")', "'@SUM(A1)"]
    page = as_admin.get(f"/runs/{run_id}/errors").text
    assert "not an e-mail address" in page and "<td>2</td>" in page  # line shown


def test_an_on_demand_run_from_the_console_is_the_clis_run_and_is_audited(
    as_admin: TestClient, pipeline: Pipeline
) -> None:
    apply("retention_days = 30\n")
    today = db_today()  # the database's date: an on-demand start date is judged by its clock
    pipeline.drop(f"{FEED}users-{today:%Y%m%d}.csv", people(3))
    r = as_admin.post(
        "/connections/hr-users/sync",
        data={"csrf": form_token(as_admin), "since": today.isoformat(), "access": "exclusive", "dry_run": ""},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"].startswith("/runs/")
    run_id = int(r.headers["location"].rsplit("/", 1)[1])
    pipeline.drain()
    run = queries.run_detail(run_id)
    assert run is not None
    assert (run["type"], run["status"], run["since"], run["access"]) == (
        "on_demand",
        "completed",
        today.isoformat(),
        "exclusive",
    )
    assert run["counts"]["created"] == 3
    live = as_admin.get(f"/runs/{run_id}/live").text
    assert "completed" in live and "data-poll" not in live  # a finished run stops the polling
    assert audit_rows()[-1] == ("ada", "sync", "hr-users", "ok")


def test_a_refused_sync_says_why_and_is_audited(as_admin: TestClient, pipeline: Pipeline) -> None:
    apply("enabled = false\n")
    r = as_admin.post("/connections/hr-users/sync", data={"csrf": form_token(as_admin)})
    assert r.status_code == 400 and "is disabled" in r.text
    assert audit_rows()[-1][3].startswith("refused: connection")


def test_approve_and_reject_a_held_full_feed_record_the_console_admin(as_admin: TestClient, pipeline: Pipeline) -> None:
    apply("full_feed = true\n")
    pipeline.import_files((FEED + "day1.csv", people(20)))
    held = pipeline.import_files((FEED + "day2.csv", people(10)))
    page = as_admin.get(f"/runs/{held}").text
    assert "Waiting for approval" in page and "Approve" in page and "Reject" in page
    r = as_admin.post(f"/runs/{held}/approve", data={"csrf": form_token(as_admin)}, follow_redirects=False)
    assert r.status_code == 303
    pipeline.drain()
    run = queries.run_detail(held)
    assert run is not None and run["status"] == "completed" and run["approved_by"] == "console:ada"
    assert run["counts"]["deactivated"] == 10
    again = as_admin.post(f"/runs/{held}/reject", data={"csrf": form_token(as_admin)})
    assert again.status_code == 400 and "not awaiting approval" in again.text
    assert [(a, t, o[:7]) for (_, a, t, o) in audit_rows()][-2:] == [
        ("approve", f"run {held}", "ok"),
        ("reject", f"run {held}", "refused"),
    ]


def test_cancelling_a_held_run_from_its_page_records_who_and_why(as_admin: TestClient, pipeline: Pipeline) -> None:
    apply("full_feed = true\n")
    pipeline.import_files((FEED + "day1.csv", people(20)))
    held = pipeline.import_files((FEED + "day2.csv", people(10)))
    assert "Cancel run" in as_admin.get(f"/runs/{held}").text
    r = as_admin.post(
        f"/runs/{held}/cancel", data={"csrf": form_token(as_admin), "reason": "wrong file"}, follow_redirects=False
    )
    assert r.status_code == 303
    pipeline.drain()
    assert sql("SELECT status FROM sync.runs WHERE id = %s", (held,)) == [("cancelled",)]
    assert sql("SELECT done_by, reason FROM sync.run_actions WHERE run_id = %s", (held,)) == [
        ("console:ada", "wrong file")
    ]
    assert sql("SELECT count(*) FROM lms.users WHERE NOT active")[0][0] == 0, "a cancelled run applies nothing"
    page = as_admin.get(f"/runs/{held}").text
    assert "Cancel run" not in page
    again = as_admin.post(f"/runs/{held}/cancel", data={"csrf": form_token(as_admin)})
    assert again.status_code == 400 and "can be cancelled" in again.text
    assert [(a, o[:7]) for (_, a, _, o) in audit_rows()][-2:] == [("cancel", "ok"), ("cancel", "refused")]


def test_schedule_and_enable_changes_are_applied_as_connections_apply_does_and_audited(
    as_admin: TestClient, pipeline: Pipeline
) -> None:
    token = form_token(as_admin)
    r = as_admin.post(
        "/connections/hr-users/schedule",
        data={
            "csrf": token,
            "start_date": "2026-12-01",
            "start_time": "03:30",
            "every": "2",
            "every_unit": "days",
            "schedule_enabled": "on",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303
    ((start, every, enabled),) = sql("SELECT start_at, every_days, enabled FROM sync.schedules")
    assert (start.isoformat(), every, enabled) == ("2026-12-01T03:30:00+00:00", 2, True)
    assert "Every 2 day(s)" in as_admin.get("/connections").text
    # Twice daily, with the platform closed during the runs (the seeds' "every 12 hours").
    r = as_admin.post(
        "/connections/hr-users/schedule",
        data={
            "csrf": token,
            "start_date": "2026-12-01",
            "start_time": "06:00",
            "every": "12",
            "every_unit": "hours",
            "access": "exclusive",
            "schedule_enabled": "on",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert sql("SELECT every_days, every_hours, access FROM sync.schedules") == [(None, 12, "exclusive")]
    assert "Every 12 hour(s)" in as_admin.get("/connections").text
    bad = as_admin.post(
        "/connections/hr-users/schedule", data={"csrf": token, "start_date": "2026-12-01", "every": "0"}
    )
    assert bad.status_code == 400
    as_admin.post("/connections/hr-users/enabled", data={"csrf": token, "enabled": "false"})
    assert sql("SELECT enabled, config ->> 'enabled' FROM sync.connections") == [(False, "false")]
    assert [a for (_, a, _, o) in audit_rows() if o == "ok"][-2:] == ["schedule", "disable"]


def test_upload_places_the_file_in_the_drop_folder_and_refuses_hidden_names(
    as_admin: TestClient, pipeline: Pipeline
) -> None:
    token = form_token(as_admin)
    r = as_admin.post(
        "/connections/hr-users/upload",
        data={"csrf": token},
        files={"files": ("users-1.csv", (HEADER + "a@x.com,A,B,,S\n").encode(), "text/csv")},
        follow_redirects=False,
    )
    assert r.status_code == 303
    placed = pipeline.settings.drop_dir / FEED / "users-1.csv"
    assert placed.read_text().startswith("Email,")
    assert not [p for p in placed.parent.iterdir() if p.name.startswith(".")]  # no temporary left behind
    hidden = as_admin.post(
        "/connections/hr-users/upload", data={"csrf": token}, files={"files": ("../.x.csv", b"x", "text/csv")}
    )
    assert hidden.status_code == 400 and not (pipeline.settings.drop_dir / FEED / ".x.csv").exists()
    assert audit_rows()[-2][1:] == ("upload", "hr-users", "ok")


def test_dead_letter_replay_is_shown_first_and_done_only_when_confirmed(as_admin: TestClient, settings: Any) -> None:
    run_id = a_run(settings)
    sql("UPDATE sync.runs SET status = 'failed' WHERE id = %s", (run_id,))
    ((dl_id,),) = sql(
        """INSERT INTO sync.dead_letters (message_id, queue_name, actor_name, run_id, message, error, attempts)
           VALUES (gen_random_uuid()::text, 'feedsync.finalize', 'finalize_run', %s, %s, 'boom', 5) RETURNING id""",
        (run_id, f'{{"kwargs": {{"run_id": {run_id}}}}}'),
    )
    assert "boom" in as_admin.get("/dead-letters").text
    assert "finalize_run" in as_admin.get(f"/dead-letters/{dl_id}").text
    token = form_token(as_admin)
    preview = as_admin.post("/dead-letters/replay", data={"csrf": token, "scope": "one", "id": str(dl_id)})
    assert preview.status_code == 200 and "would replay" in preview.text and "Confirm replay" in preview.text
    assert sql("SELECT replayed_at FROM sync.dead_letters") == [(None,)]
    done = as_admin.post(
        "/dead-letters/replay", data={"csrf": token, "scope": "one", "id": str(dl_id), "confirm": "yes"}
    )
    assert done.status_code == 200 and ">replayed<" in done.text
    assert sql("SELECT replayed_by FROM sync.replays") == [("console:ada",)]
    assert audit_rows()[-1][1:] == ("replay", "one", "ok")
    missing = as_admin.post("/dead-letters/replay", data={"csrf": token, "scope": "one", "id": "999"})
    assert missing.status_code == 400 and "no dead letter 999" in missing.text


def test_the_audit_page_lists_who_did_what(as_admin: TestClient) -> None:
    html = as_admin.get("/audit").text
    assert "ada" in html and "sign in" in html


def test_the_execution_status_filters_by_status_and_type_and_counts_every_status(as_admin: TestClient) -> None:
    first = a_run(None)
    second = a_run(None)
    sql("UPDATE sync.runs SET status = 'failed', trigger = 'on_demand' WHERE id = %s", (second,))
    html = as_admin.get("/runs?status=failed").text
    assert f"#{second}" in html and f"#{first}<" not in html
    assert f"#{first}<" in as_admin.get("/runs?type=file_drop").text
    assert "failed: 1" in html and "completed with errors: 1" in html
    # The failed run has its ⚠ (labelled "failed"); the other none until it has row errors.
    listed = as_admin.get("/runs").text
    assert 'aria-label="failed"' in listed and 'aria-label="has errors"' not in listed
    row_error(first, FEED + "a.csv", "not an e-mail address", None)
    listed = as_admin.get("/runs").text
    assert 'aria-label="has errors"' in listed and f"/runs/{first}/errors.csv" in listed


def test_an_export_connection_shows_its_runs_and_its_file_downloads(as_admin: TestClient, pipeline: Pipeline) -> None:
    from tests.data import SINCE
    from tests.unit.exportdata import export_connections, exported, learning
    from tests.unit.exportdata import people as export_people

    export_connections()
    export_people(pipeline)
    learning()
    run = pipeline.sync("transcripts", SINCE)
    path = exported(pipeline, run)
    tiles = as_admin.get("/connections").text
    assert "transcripts" in tiles and "transcript export" in tiles
    page = as_admin.get("/connections/transcripts").text
    assert f"/runs/{run['run_id']}/export" in page and "Upload" not in page
    r = as_admin.get(f"/runs/{run['run_id']}/export")
    assert r.status_code == 200 and r.content == path.read_bytes()
    assert path.name in r.headers["content-disposition"]
    path.unlink()
    assert as_admin.get(f"/runs/{run['run_id']}/export").status_code == 404


def test_the_connection_tiles_show_the_next_schedule_slot_on_the_database_clock(
    as_admin: TestClient, pipeline: Pipeline
) -> None:
    apply('trigger = "on_schedule"\n[connections.schedule]\nstart = 2026-01-01T02:00:00Z\nevery_days = 7\n')
    ((expected,),) = sql(
        """SELECT timestamptz '2026-01-01 02:00Z' + (floor(EXTRACT(EPOCH FROM now() - timestamptz '2026-01-01 02:00Z')
                                                     / (7 * 86400)) + 1) * interval '7 days'"""
    )
    ((overview,),) = [(c["next_slot"],) for c in queries.connections_overview()]
    assert overview == expected and overview > expected.__class__.now(expected.tzinfo)
    assert f"next {expected:%Y-%m-%d %H:%M:%S}Z" in as_admin.get("/connections").text


def test_feedsync_web_serves_the_console_after_feedsync_admins_add(settings: Any) -> None:
    import socket
    import subprocess
    import sys

    import httpx2 as httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run(
        [sys.executable, "-m", "producers.cli", "admins", "add", "root", "--role", "admin"],
        input=PASSWORD + "\n",
        text=True,
        check=True,
        timeout=60,
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "producers.cli", "web", "--bind", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:

        def answered() -> httpx.Response | None:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/connections", follow_redirects=False)
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                return None

        r = poll_until(answered, timeout=60, interval=0.1, message="feedsync web did not start listening")
        assert r.status_code == 303 and r.headers["location"].startswith("/sign-in")
        assert "Sign in" in httpx.get(f"http://127.0.0.1:{port}/sign-in").text
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stderr:
            proc.stderr.close()


def test_a_run_page_shows_the_plan_in_its_kinds_own_terms(as_admin: TestClient, pipeline: Pipeline) -> None:
    """An xAPI run plans no people: its page shows the counts it planned, not "creates: 0"."""
    from tests.xapidata import COMPLETED, CSV_HEADER, connect, drop_and_run

    connect()
    row = f"ann@x.com,{COMPLETED},https://x.test/c1,0.5,true,2026-11-01\n"
    run = drop_and_run(pipeline, "a.csv", CSV_HEADER + row + "bad,,,,,\n")
    card = as_admin.get(f"/runs/{run['run_id']}").text.split('class="card plan"')[1].split("</section>")[0]
    assert "rows read: 2" in card and "rows rejected: 1" in card
    assert "creates" not in card and "manager moves" not in card
    apply("full_feed = true\n")  # a full feed plans its people's changes (deactivations are checked)
    users_run = pipeline.import_files((FEED + "day1.csv", people(3)))
    card = as_admin.get(f"/runs/{users_run}").text.split('class="card plan"')[1].split("</section>")[0]
    assert "creates: 3" in card and "deactivations: 0" in card and "rows read" not in card
