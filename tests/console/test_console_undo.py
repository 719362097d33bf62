"""The console's Undo button: the same command as `feedsync undo`, audited, refused with the
conflicting rows named, and offered only on runs that can be undone."""

from __future__ import annotations

from starlette.testclient import TestClient

from tests.conftest import sql
from tests.console.conftest import form_token
from tests.data import apply, audit_rows, people
from tests.stubpipeline import HEADER, Pipeline

FEED = "import/user/internal/"


def test_undo_from_a_runs_page_queues_the_undo_and_the_page_says_the_run_was_undone(
    as_admin: TestClient, pipeline: Pipeline
) -> None:
    apply()
    pipeline.import_files((FEED + "day1.csv", people(2)))
    a = pipeline.import_files((FEED + "day2.csv", people(2, tag="A")))
    b = pipeline.import_files((FEED + "day3.csv", HEADER + "p1@x.com,P1,L,,B\n"))
    assert "Undo run" in as_admin.get(f"/runs/{a}").text

    refused = as_admin.post(f"/runs/{a}/undo", data={"csrf": form_token(as_admin)})
    assert refused.status_code == 400 and f"(changed by run {b})" in refused.text
    r = as_admin.post(
        f"/runs/{a}/undo", data={"csrf": form_token(as_admin), "skip_conflicts": "1"}, follow_redirects=False
    )
    assert r.status_code == 303
    u = int(r.headers["location"].rsplit("/", 1)[1])
    pipeline.drain()
    assert sql("SELECT status, trigger, undo_of FROM sync.runs WHERE id = %s", (u,)) == [("completed", "undo", a)]
    page = as_admin.get(f"/runs/{a}").text
    assert f'undone by <a href="/runs/{u}">run #{u}</a>' in page and "Undo run" not in page
    assert f'undo of <a href="/runs/{a}">#{a}</a>' in as_admin.get(f"/runs/{u}").text
    assert sql("SELECT done_by FROM sync.run_actions WHERE run_id = %s AND action = 'undo'", (a,)) == [("console:ada",)]
    assert [(act, o[:7]) for (_, act, _, o) in audit_rows()][-2:] == [("undo", "refused"), ("undo", "ok")]


def test_a_rejected_skip_deactivations_run_offers_undo_for_the_part_it_applied(
    as_admin: TestClient, pipeline: Pipeline
) -> None:
    from producers import registry
    from producers.commands import reject, start_sync

    apply('full_feed = true\nmax_deactivate = 1\non_threshold = "skip_deactivations"\n')
    pipeline.import_files((FEED + "day1.csv", people(5)))
    pipeline.drop(FEED + "day2.csv", people(3, tag="T"))  # p3, p4 gone: held; the changes applied
    registry.scan(pipeline.settings, announce=False)
    a = start_sync(pipeline.settings, "hr-users")
    pipeline.drain()
    reject(a)
    pipeline.drain()
    assert sql("SELECT status FROM sync.runs WHERE id = %s", (a,)) == [("rejected",)]
    assert "Undo run" in as_admin.get(f"/runs/{a}").text


def test_the_undo_preview_page_says_what_the_cli_dry_run_says_and_offers_the_checkbox_not_the_flag(
    as_admin: TestClient, pipeline: Pipeline
) -> None:
    from click.testing import CliRunner

    from producers.cli import cli

    apply()
    pipeline.import_files((FEED + "day1.csv", people(2)))
    a = pipeline.import_files((FEED + "day2.csv", people(2, tag="A")))
    b = pipeline.import_files((FEED + "day3.csv", HEADER + "p1@x.com,P1,L,,B\n"))
    assert f'href="/runs/{a}/undo/preview"' in as_admin.get(f"/runs/{a}").text
    page = as_admin.get(f"/runs/{a}/undo/preview").text
    dry = CliRunner().invoke(cli, ["undo", str(a), "--dry-run"]).output.splitlines()
    for line in dry:
        if not line.startswith("conflicts:"):
            assert line.strip() in page, line
    assert f"person p1@x.com (changed by run {b})" in page and 'name="skip_conflicts"' in page
    assert "--skip-conflicts" not in page
    refused = as_admin.post(f"/runs/{a}/undo", data={"csrf": form_token(as_admin)})
    assert refused.status_code == 400 and "person p1@x.com" in refused.text
    assert "--skip-conflicts" not in refused.text and "Leave rows changed since as they are" in refused.text
