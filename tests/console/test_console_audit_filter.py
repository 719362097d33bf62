"""The audit page lists console and CLI actions alike and filters them by who, what and when."""

from __future__ import annotations

from starlette.testclient import TestClient

from producers.audit import record
from tests.conftest import sql


def test_the_audit_page_shows_cli_rows_and_filters_by_who_what_and_when(as_admin: TestClient) -> None:
    record("olga", "connections_apply", "hr.toml", detail={"connections": {"hr-users": "updated"}}, source="cli")
    record("olga", "replay", None, detail={"results": {"7": "replayed"}}, source="cli")
    record("ada", "sync", "hr-users", detail={"run": 3})
    sql("UPDATE sync.audit SET at = '2026-11-02T10:00:00Z' WHERE action = 'connections_apply'")

    page = as_admin.get("/audit").text
    assert "olga" in page and "<td>cli</td>" in page and "<td>console</td>" in page and "updated" in page
    assert "7" in as_admin.get("/audit?action=replay").text and "replayed" in as_admin.get("/audit?action=replay").text

    by_who = as_admin.get("/audit?who=olga").text
    assert "hr.toml" in by_who and "hr-users</td>" not in by_who
    by_what = as_admin.get("/audit?action=sync").text
    assert "hr-users" in by_what and "hr.toml" not in by_what
    by_when = as_admin.get("/audit?from=2026-11-01&to=2026-11-02").text
    assert "hr.toml" in by_when and "replayed" not in by_when
    bad = as_admin.get("/audit?from=yesterday")
    assert bad.status_code == 400 and "from: give a day as YYYY-MM-DD" in bad.text
    assert '<option value="replay"' in page, "the form offers the actions the audit holds"
