"""A store with one run of every kind and every history row shape (queued, held, completed, failed,
dry run, undo and undone, a duplicate), for the tests that render the history in the CLI and the
console. Built through the stub pipeline, as an admin's day builds it."""

from __future__ import annotations

import os
from datetime import date

from producers import registry
from producers.commands import apply_connections
from producers.undo import start_undo
from schemas.connections import load_connections_toml
from schemas.rules import load_rules_toml
from tests import kindsuite
from tests.api_linkedin import sample_server
from tests.data import apply
from tests.kindsamples import LINKEDIN_URL, PEOPLE, PEOPLE_HEADER, SAMPLES
from tests.stubpipeline import Pipeline
from tests.unit.exportdata import export_connections
from workers import failpoints
from workers.rules import apply_rules

SINCE = date(2026, 11, 1)


def deliver(pipeline: Pipeline, kind: str, files: dict[str, str | bytes], *, dry_run: bool = False) -> int:
    return kindsuite.deliver(pipeline, SAMPLES[kind], files, dry_run=dry_run)


def build(pipeline: Pipeline) -> dict[str, int]:
    """Every shape, by name -> run id (0 for the duplicate, which has no run)."""
    runs: dict[str, int] = {}
    runs["users"] = pipeline.import_files(("import/user/internal/people.csv", PEOPLE + "cy@x.com,Cy,C,ann@x.com,Ops\n"))
    pipeline.drop("import/user/internal/again.csv", PEOPLE + "cy@x.com,Cy,C,ann@x.com,Ops\n")
    registry.scan(pipeline.settings)  # the same bytes again: a duplicate, no run
    pipeline.drain()
    runs["users_failed"] = deliver(pipeline, "users", SAMPLES["users"].bad_header)
    runs["users_dry_run"] = deliver(pipeline, "users", {"d.csv": PEOPLE + "dee@x.com,Dee,D,,Ops\n"}, dry_run=True)
    runs["users_changed"] = deliver(pipeline, "users", SAMPLES["users"].second)
    runs["undo"] = start_undo(runs["users_changed"])
    pipeline.drain()
    runs["users_dead_lettered"] = dead_lettered(pipeline, "import/user/internal/dl.csv", PEOPLE)
    # A full feed that would deactivate two of three people waits for approval (the default 10%).
    apply("full_feed = true\n")
    runs["users_held"] = deliver(pipeline, "users", {"full.csv": PEOPLE_HEADER + "ann@x.com,Ann,A,,Sales\n"})
    for kind in ("hierarchy", "hmm", "getabstract", "xapi"):
        sample = SAMPLES[kind]
        if sample.toml:
            apply_connections(load_connections_toml(sample.toml))
        if sample.rules:
            apply_rules(load_rules_toml(sample.rules))
        runs[kind] = deliver(pipeline, kind, sample.first)
    # A bundle missing its org file waits, queued.
    pipeline.drop("import/hierarchy/user.csv", SAMPLES["hierarchy"].second["user.csv"])
    runs["hierarchy_queued"] = pipeline.import_files()
    export_connections()
    for name in ("transcripts", "skills", "xapi"):
        runs[f"{name}_export"] = pipeline.sync(name, SINCE)["run_id"]
    # An API kind (after the exports, whose rows it would change): what a server of ours answers.
    sample = SAMPLES["linkedin_learning"]
    with sample_server(pipeline.settings.drop_dir / sample.folder) as url:
        apply_connections(load_connections_toml(sample.toml.replace(LINKEDIN_URL, url)))
        runs["linkedin_learning"] = deliver(pipeline, "linkedin_learning", sample.first)
    return runs


def dead_lettered(pipeline: Pipeline, rel: str, body: str) -> int:
    """A run whose transform crashes on every attempt: its message dead-lettered, the run failed
    (as tests/unit/test_failures.py makes one), the fault then cleared for what follows."""
    before, attempts = os.environ.get("FEEDSYNC_FAILPOINTS"), pipeline.settings.max_attempts
    os.environ["FEEDSYNC_FAILPOINTS"] = "transform.start=raise"
    pipeline.settings.max_attempts = 2
    failpoints.reset()
    try:
        return pipeline.import_files((rel, body), expect_failures=True)
    finally:
        if before is None:
            del os.environ["FEEDSYNC_FAILPOINTS"]
        else:
            os.environ["FEEDSYNC_FAILPOINTS"] = before
        pipeline.settings.max_attempts = attempts
        failpoints.reset()
        # The stub broker keeps the dead copy and would raise it at every later join; the store
        # keeps the dead letter (sync.dead_letters), which is what the console and the CLI read.
        for dead in pipeline.broker.dead_letters_by_queue.values():
            dead.clear()


#: What each shape's history row says in its kind's own terms (the CLI's table and the console's
#: list), and what ``feedsync run`` and the console's run page say of it.
LISTED = {
    "users": ["people: 3 created"],
    "users_failed": ["people: 0 created"],
    "users_dry_run": ["people: 0 created"],
    "undo": ["records: 1 removed, 1 deactivated"],
    "users_held": [],  # nothing applied yet: its plan says what it would do
    "users_dead_lettered": ["failed"],  # the console adds ⚠ and its Replay link
    "hierarchy": ["units: 2 created", "positions: 1 created", "people: 1 created", "memberships: 1 added"],
    "hierarchy_queued": [],
    "hmm": ["courses: 2 created", "progress: 1 written"],
    "getabstract": ["courses: 1 created", "progress: 1 written"],
    "linkedin_learning": ["courses: 2 created", "progress: 1 written"],
    "xapi": ["statements: 1 stored"],
    "transcripts_export": ["rows: 2 exported"],
    "skills_export": ["rows: 0 exported"],
    "xapi_export": ["rows: 1 exported"],
}
SHOWN = {
    "users": ["rows: 3 read, 0 rejected", "people: 3 created, 0 updated, 0 unchanged, 0 deactivated"],
    "users_failed": ["rows: 0 read, 0 rejected"],
    # Nothing applied yet, but its file was read: the plan's rows read, not "read 0".
    "users_held": ["rows: 1 read, 0 rejected"],
    "undo": ["records: 0 restored, 1 removed, 1 deactivated, 0 reactivated, 0 conflicts skipped"],
    "hierarchy": [
        "rows: 4 read, 0 rejected",
        "units: 2 created, 0 updated, 0 moved, 0 deactivated",
        "positions: 1 created, 0 updated, 0 moved, 0 deactivated",
        "people: 1 created, 0 updated, 0 unchanged, 0 deactivated, 0 manager moves",
    ],
    "hmm": ["rows: 3 read", "courses: 2 created, 0 updated, 0 unchanged, 0 retired", "progress: 1 written"],
    "getabstract": ["courses: 1 created", "learners: 0 created"],
    "linkedin_learning": [
        "rows: 3 read",
        "courses: 2 created, 0 updated, 0 unchanged, 0 retired",
        "progress: 1 written",
    ],
    "xapi": ["statements: 1 stored, 0 unchanged, 0 voided, 0 filtered", "progress: 0 written"],
    "transcripts_export": ["rows: 2 exported"],
    "skills_export": ["rows: 0 exported"],
    "xapi_export": ["rows: 1 exported"],
}
