"""The console over HTTP (Starlette's TestClient, the real PostgreSQL): every page and download
behind sign-in, every action refused to viewers and to forms without their CSRF token, sign-in
throttled, and the actions doing what the CLI's commands do, audited."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from starlette.testclient import TestClient

from producers import queries
from tests.conftest import db_today, feedsync, sql
from tests.console.conftest import PASSWORD, csrf_of, form_token, sign_in
from tests.stubpipeline import HEADER, Pipeline
from tests.unit.test_admin_cli import a_run, row_error
from tests.unit.test_sync_modes import apply, people

FEED = "import/user/internal/"

PAGES = [
    "/",
    "/connections",
    "/connections/hr-users",
    "/runs",
    "/runs/1",
    "/runs/1/live",
    "/runs/1/errors",
    "/runs/1/errors.csv",
    "/runs/1/export",
    "/dead-letters",
    "/dead-letters/1",
    "/alerts",
    "/audit",
]
ACTIONS = [
    "/connections/hr-users/sync",
    "/connections/hr-users/rerun",
    "/connections/hr-users/enabled",
    "/connections/hr-users/schedule",
    "/connections/hr-users/upload",
    "/runs/1/approve",
    "/runs/1/reject",
    "/runs/1/cancel",
    "/dead-letters/replay",
    "/alerts/1/ack",
]


def audit_rows() -> list[tuple[Any, ...]]:
    return sql("SELECT admin, action, target, outcome FROM sync.audit ORDER BY id")


@pytest.mark.parametrize("path", PAGES)
def test_every_page_and_download_sends_a_signed_out_browser_to_sign_in(console: TestClient, path: str) -> None:
    a_run(None)
    r = console.get(path, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/sign-in") if path != "/" else r.headers["location"] == "/connections"


@pytest.mark.parametrize("path", ACTIONS)
def test_every_action_sends_a_signed_out_browser_to_sign_in(console: TestClient, path: str) -> None:
    r = console.post(path, data={"csrf": "x"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/sign-in")


@pytest.mark.parametrize("path", ACTIONS)
def test_a_viewer_is_refused_every_action_and_the_refusal_is_audited(as_viewer: TestClient, path: str) -> None:
    run_id = a_run(None)
    sql("UPDATE sync.runs SET status = 'awaiting_approval', finished_at = NULL WHERE id = %s", (run_id,))
    token = form_token(as_viewer)
    r = as_viewer.post(path, data={"csrf": token, "enabled": "false", "scope": "all"}, follow_redirects=False)
    assert r.status_code == 403
    assert "Viewers see everything and change nothing" in r.text
    assert sql("SELECT status FROM sync.runs WHERE id = %s", (run_id,)) == [("awaiting_approval",)]
    assert sql("SELECT enabled FROM sync.connections") == [(True,)]
    assert audit_rows()[-1][0] == "vic" and audit_rows()[-1][3] == "refused: viewer"


@pytest.mark.parametrize("path", ACTIONS)
def test_a_form_without_its_csrf_token_is_refused(as_admin: TestClient, path: str) -> None:
    run_id = a_run(None)
    sql("UPDATE sync.runs SET status = 'awaiting_approval', finished_at = NULL WHERE id = %s", (run_id,))
    for data in ({"enabled": "false"}, {"enabled": "false", "csrf": "forged"}):
        r = as_admin.post(path, data=data, follow_redirects=False)
        assert r.status_code == 403
    assert sql("SELECT status FROM sync.runs WHERE id = %s", (run_id,)) == [("awaiting_approval",)]
    assert sql("SELECT enabled FROM sync.connections") == [(True,)]
    assert audit_rows()[-1][3] == "refused: csrf"


def test_a_form_posted_from_another_site_is_refused_even_with_the_token(as_admin: TestClient) -> None:
    a_run(None)
    token = form_token(as_admin)
    r = as_admin.post(
        "/connections/hr-users/enabled",
        data={"csrf": token, "enabled": "false"},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert r.status_code == 403 and sql("SELECT enabled FROM sync.connections") == [(True,)]


def test_sign_in_without_the_forms_token_is_refused(console: TestClient) -> None:
    r = console.post("/sign-in", data={"name": "ada", "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 403 and "feedsync_session" not in r.cookies


def test_the_session_cookie_is_httponly_and_samesite_and_secure_only_over_tls(
    console: TestClient, settings: Any
) -> None:
    r = sign_in(console, "ada")
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" not in cookie
    from producers.console.app import create_app

    with TestClient(create_app(), base_url="https://console.test") as tls:
        cookie = sign_in(tls, "ada").headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" in cookie


def test_sign_in_is_throttled_after_repeated_failures_even_with_the_right_password(console: TestClient) -> None:
    for _ in range(5):
        assert sign_in(console, "ada", "wrong password!").status_code == 401
    r = sign_in(console, "ada")
    assert r.status_code == 429 and "Too many failed sign-ins" in r.text
    assert "feedsync_session" not in r.cookies
    # Another name from the same address is throttled too: spraying names does not help.
    assert sign_in(console, "vic").status_code == 429
    actions = [a for (_, a, _, _) in audit_rows()]
    assert actions.count("sign_in_failed") == 5 and "sign_in" not in actions


def test_a_wrong_password_and_an_unknown_name_get_the_same_answer(console: TestClient) -> None:
    wrong, unknown = sign_in(console, "ada", "not the password"), sign_in(console, "nobody", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert "do not match an admin" in wrong.text and "do not match an admin" in unknown.text


def test_sign_in_goes_back_to_the_page_asked_for_but_never_to_another_site(console: TestClient) -> None:
    page = console.get("/sign-in?next=//evil.example/x")
    r = console.post(
        "/sign-in",
        data={"name": "ada", "password": PASSWORD, "csrf": csrf_of(page.text), "next": "//evil.example/x"},
        follow_redirects=False,
    )
    assert r.headers["location"] == "/connections"
    assert console.get("/runs", follow_redirects=False).status_code == 200


def test_signing_out_ends_the_session_on_the_server(as_admin: TestClient) -> None:
    cookie = as_admin.cookies["feedsync_session"]
    r = as_admin.post("/sign-out", data={"csrf": form_token(as_admin)}, follow_redirects=False)
    assert r.status_code == 303
    as_admin.cookies.set("feedsync_session", cookie)  # a copied cookie signs nobody in afterwards
    assert as_admin.get("/connections", follow_redirects=False).status_code == 303
    assert [a for (_, a, _, _) in audit_rows()] == ["sign_in", "sign_out"]


def test_removing_an_admin_ends_their_sessions(as_admin: TestClient) -> None:
    feedsync("admins", "remove", "ada")
    assert as_admin.get("/connections", follow_redirects=False).status_code == 303


def test_admins_add_list_and_remove_from_the_cli_with_the_password_on_stdin(settings: Any) -> None:
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "producers.cli", "admins", "add", "grace", "--role", "viewer"],
        input="a long enough password\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "grace: added as viewer" in proc.stdout
    ((stored,),) = sql("SELECT password_hash FROM sync.admins WHERE name = 'grace'")
    assert stored.startswith("$argon2id$") and "a long enough password" not in stored
    assert "grace  viewer" in feedsync("admins", "list").stdout
    short = subprocess.run(
        [sys.executable, "-m", "producers.cli", "admins", "add", "h", "--role", "admin"],
        input="short\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert short.returncode == 1 and "at least 12 characters" in short.stderr
    feedsync("admins", "remove", "grace")
    assert feedsync("admins", "remove", "grace", check=False).returncode == 1


def test_pages_have_no_personal_data_in_their_titles(as_admin: TestClient) -> None:
    run_id = a_run(None)
    row_error(run_id, FEED + "a.csv", "not an e-mail address", "jane.doe@example.com")
    for path in ("/connections", "/connections/hr-users", "/runs", f"/runs/{run_id}", f"/runs/{run_id}/errors"):
        html = as_admin.get(path).text
        title = html.split("<title>")[1].split("</title>")[0]
        assert "jane" not in title and "@" not in title


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
    assert "⚠" not in as_admin.get("/runs").text
    row_error(first, FEED + "a.csv", "not an e-mail address", None)
    assert "⚠" in as_admin.get("/runs").text and f"/runs/{first}/errors.csv" in as_admin.get("/runs").text


def test_an_export_connection_shows_its_runs_and_its_file_downloads(as_admin: TestClient, pipeline: Pipeline) -> None:
    from tests.unit.exportdata import export_connections, exported, learning
    from tests.unit.exportdata import people as export_people
    from tests.unit.test_exports import SINCE

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
    import time

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
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/connections", follow_redirects=False)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "feedsync web did not start listening"
                time.sleep(0.1)
        assert r.status_code == 303 and r.headers["location"].startswith("/sign-in")
        assert "Sign in" in httpx.get(f"http://127.0.0.1:{port}/sign-in").text
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stderr:
            proc.stderr.close()


def test_a_run_page_shows_the_plan_in_its_kinds_own_terms(as_admin: TestClient, pipeline: Pipeline) -> None:
    """An xAPI run plans no people: its page shows the counts it planned, not "creates: 0"."""
    from tests.unit.test_xapi_import import COMPLETED, CSV_HEADER, connect, drop_and_run

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
