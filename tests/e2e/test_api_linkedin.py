"""LinkedIn Learning as an admin would run it: `feedsync up` running, a linkedin_learning connection
pointed at a LinkedIn-shaped server of ours, `feedsync sync` on demand, and the CLI and the database
to read what happened. The secret is only in the environment, never in a log line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.api_linkedin import SECRET_ENV, LinkedInVendor, activity, course, linkedin_toml, people_csv
from tests.apiservers import CLIENT_SECRET, Served
from tests.conftest import feedsync, sql

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

LEARNERS = [f"learner{i}@example.com" for i in range(20)]


def sync(env: dict[str, str], name: str) -> dict[str, Any]:
    feedsync("sync", name, "--wait", env=env, check=False, timeout=300)
    latest: dict[str, Any] = json.loads(feedsync("history", "--json", env=env).stdout)[0]
    return latest


def test_a_linkedin_catalog_and_its_activity_import_through_feedsync_up_and_ten_gone_are_retired(
    settings: Any, rabbit_env: dict[str, str], start: Any, tmp_path: Path
) -> None:
    env = {**rabbit_env, SECRET_ENV: CLIENT_SECRET}
    catalog = [course(n, "en_US" if n % 2 else "fr_FR") for n in range(250)] + [course(900, "de_DE")]
    vendor = LinkedInVendor(
        courses=catalog,
        reports=[activity(e, i, seconds=1200, progress=100, completions=1) for i, e in enumerate(LEARNERS)],
    )
    people = settings.drop_dir / "import/user/internal/learners.csv"
    with Served(vendor) as served:
        config = tmp_path / "connections.toml"
        config.write_text(
            '[[connections]]\nname = "hr-users"\nkind = "users"\ntrigger = "on_schedule"\n'
            'path = "import/user/internal/*.csv"\n'
            '[connections.mapping]\nemail = "Email"\nfirst_name = "First Name"\nlast_name = "Last Name"\n'
            + linkedin_toml(served.url)
        )
        out = feedsync("connections", "apply", str(config), env=env).stdout
        assert "linkedin: created" in out
        up = start("up", "--processes", "1", "--threads", "2", env=env)
        up.wait_for("watching the drop dir")
        people.parent.mkdir(parents=True, exist_ok=True)
        people.write_text(people_csv(LEARNERS))
        assert sync(env, "hr-users")["status"] == "completed", up.output()[-3000:]

        run = sync(env, "linkedin")

        assert run["status"] == "completed", up.output()[-3000:]
        assert (run["details"]["fetched_pages"], run["details"]["fetched_records"]) == (4, 270)
        assert run["content"]["courses_created"] == 250 and run["content"]["progress_written"] == 20
        assert sql("SELECT count(*) FROM lms.courses WHERE provider = 'linkedin_learning' AND status = 'active'") == [
            (250,)
        ]
        assert sql("SELECT count(*) FROM lms.learner_progress WHERE status = 'completed'") == [(20,)]
        shown = feedsync("run", str(run["run_id"]), env=env).stdout
        assert "courses: 250 created" in shown, shown

        vendor.courses = catalog[10:]
        again = sync(env, "linkedin")

        assert again["status"] == "completed", up.output()[-3000:]
        assert again["content"]["courses_retired"] == 10
        assert sql("SELECT count(*) FROM lms.courses WHERE status = 'retired'") == [(10,)]
        assert sql("SELECT count(*) FROM lms.learner_progress") == [(20,)]  # kept on retired courses
        tokens = set(vendor.valid_tokens)

    log = up.output()
    assert "api fetch done" in log and CLIENT_SECRET not in log
    assert not any(t in log for t in tokens)
