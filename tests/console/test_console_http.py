"""The console over HTTP (Starlette's TestClient, the real PostgreSQL): every page and download
behind sign-in, every action refused to viewers and to forms without their CSRF token, sign-in
throttled. The actions themselves are in test_console_operations.py."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.conftest import feedsync, sql
from tests.console.conftest import PASSWORD, csrf_of, form_token, sign_in
from tests.data import a_run, audit_rows, row_error

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
