"""The standard kind suite: every registered import kind (and tests/examplekind.py's) passes the
same tests, run over the registry as the Singer SDK's standard tap tests are. A kind gets them by
being registered and adding its sample delivery to tests/kindsamples.py.

The store is compared whole (every table of the ``lms`` schema, read from the catalog, not from the
declarations), so a kind whose declarations miss a table it writes fails the undo test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from psycopg import sql as psql

from producers import queries
from producers.commands import apply_connections
from producers.undo import start_undo
from schemas.connections import load_connections_toml
from tests import examplekind
from tests.conftest import sql
from tests.kindsamples import PEOPLE, SAMPLES
from tests.kindsuite import IMPORT_KINDS, deliver, status
from tests.stubpipeline import Pipeline
from workers import connectors
from workers.connectors.contract import ImportKind
from workers.runs import journal, retention
from workers.staging import stage_table


def store(*, change_time_of: frozenset[str] = frozenset()) -> dict[str, list[str]]:
    """Every row of every lms table, whole; ``updated_at`` left out of the tables named (undo
    stamps the rows it gives back to an export read by change time as changed now)."""
    out: dict[str, list[str]] = {}
    for (table,) in sql("SELECT tablename FROM pg_tables WHERE schemaname = 'lms' ORDER BY tablename"):
        drop = psql.SQL(" - 'updated_at'") if table in change_time_of else psql.SQL("")
        rows = sql(psql.SQL("SELECT (to_jsonb(t){})::text FROM {} t").format(drop, psql.Identifier("lms", table)))
        out[table] = sorted(r[0] for r in rows)
    return out


def test_every_registered_import_kind_has_a_sample_delivery() -> None:
    assert set(IMPORT_KINDS) == set(SAMPLES)


@pytest.mark.parametrize("name", IMPORT_KINDS)
def test_its_readme_section_says_how_to_set_it_up(name: str) -> None:
    examplekind.register()
    try:
        section = connectors.import_kind(name).README_SECTION
    finally:
        examplekind.unregister()
    readme = Path(__file__).resolve().parents[2] / "README.md"
    headings = {line.lstrip("#").strip() for line in readme.read_text().splitlines() if line.startswith("##")}
    assert section in headings


def test_a_bad_header_fails_the_file_naming_its_line(kind: ImportKind, pipeline: Pipeline) -> None:
    sample = SAMPLES[kind.NAME]
    if sample.api:
        # An API kind has no header an admin could get wrong: its fetch writes the file, header and
        # all, from the kind's own field list. Its bad input is a bad response instead, and that is
        # checked where the kind's server can send one: tests/unit/test_linkedin_learning.py
        # ::test_a_pull_cut_off_mid_catalog_retires_nothing (the run fails in one sentence, nothing changes).
        pytest.skip("an API kind's file is written by its fetch, header and all: no header can be wrong")
    run_id = deliver(pipeline, sample, sample.bad_header)
    # The run fails, or (a bundle whose other files are good) imports those and says the file failed.
    assert status(run_id) in ("failed", "completed_with_errors")
    assert (
        sql("SELECT status FROM sync.run_files WHERE run_id = %s ORDER BY ordinal DESC LIMIT 1", (run_id,))
        == [("rejected",)]
        or status(run_id) == "failed"
    )
    texts = [e for (e,) in sql("SELECT error FROM sync.run_files WHERE run_id = %s AND error IS NOT NULL", (run_id,))]
    texts += [e for (e,) in sql("SELECT error FROM sync.runs WHERE id = %s AND error IS NOT NULL", (run_id,))]
    assert any("line 1" in t for t in texts), texts


def test_a_bad_row_is_reported_with_its_line_and_column(kind: ImportKind, pipeline: Pipeline) -> None:
    sample = SAMPLES[kind.NAME]
    run_id = deliver(pipeline, sample, sample.bad_row)
    assert status(run_id) in ("completed_with_errors", "failed")
    errors = sql("SELECT line, column_name FROM sync.row_errors WHERE run_id = %s", (run_id,))
    assert (sample.bad_line, sample.bad_column) in errors, errors


def test_the_same_delivery_twice_changes_nothing(kind: ImportKind, pipeline: Pipeline) -> None:
    sample = SAMPLES[kind.NAME]
    deliver(pipeline, sample, sample.first)
    first = store()
    deliver(pipeline, sample, sample.first)
    assert store() == first


def test_a_dry_run_writes_nothing(kind: ImportKind, pipeline: Pipeline) -> None:
    sample = SAMPLES[kind.NAME]
    before = store()
    run_id = deliver(pipeline, sample, sample.first, dry_run=True)
    assert status(run_id) in ("completed", "completed_with_errors", "awaiting_approval"), status(run_id)
    assert store() == before


def test_undo_restores_the_store_exactly(kind: ImportKind, pipeline: Pipeline) -> None:
    sample = SAMPLES[kind.NAME]
    deliver(pipeline, sample, sample.first)
    by_change = frozenset(t for t, d in journal.tables().items() if d.exported_by_change)
    before = store(change_time_of=by_change)
    run_id = deliver(pipeline, sample, sample.second)
    assert status(run_id) == "completed", queries.run_detail(run_id)
    assert store(change_time_of=by_change) != before  # the second delivery changed something to undo
    undo_id = start_undo(run_id)
    pipeline.drain()
    assert status(undo_id) == "completed", queries.run_detail(undo_id)
    assert store(change_time_of=by_change) == before


def test_retention_removes_its_files(kind: ImportKind, pipeline: Pipeline) -> None:
    sample = SAMPLES[kind.NAME]
    run_id = deliver(pipeline, sample, sample.first)
    stored = [pipeline.settings.store_dir / p for (p,) in sql("SELECT stored_path FROM sync.feed_files")]
    assert stored
    if kind.RETENTION_DAYS != 0:  # 0: removed as soon as the run ended, before any sweep
        assert any(p.exists() for p in stored)
    retention.sweep(run_id=run_id, at=datetime.now(UTC) + timedelta(days=3650))
    assert not any(p.exists() for p in stored)
    assert sql("SELECT count(*) FROM sync.feed_files WHERE removed_at IS NULL") == [(0,)]


def test_its_history_counts_show(kind: ImportKind, pipeline: Pipeline) -> None:
    sample = SAMPLES[kind.NAME]
    run_id = deliver(pipeline, sample, sample.first)
    (shown,) = [r for r in queries.history(sample.name) if r["run_id"] == run_id]
    if kind.HISTORY_COUNTS:
        assert list(shown["content"]) == list(kind.HISTORY_COUNTS)
    else:
        assert shown["content"] is None


class _NicknamesForgettingItsTable(examplekind.Nicknames):
    """The example kind as a kind would be written that keeps a table of its own (each nickname set,
    in ``lms.nickname_log``) and forgot to declare it: no journal trigger, so undo cannot see it."""

    def load_steps(self, conn: Any, run: Any, *, whole: bool, batch_rows: int) -> list[Any]:
        return [*super().load_steps(conn, run, whole=whole, batch_rows=batch_rows), _log_nicknames]


def _log_nicknames(conn: Any, run: Any) -> dict[str, int]:
    staged = stage_table("nick", run.id)
    n = conn.execute(
        psql.SQL("INSERT INTO lms.nickname_log (email, nickname) SELECT email, nickname FROM {}").format(staged)
    ).rowcount
    return {"logged": n}


def test_the_suite_fails_a_kind_whose_declarations_miss_a_table_it_writes(pipeline: Pipeline) -> None:
    sql("CREATE TABLE lms.nickname_log (email text, nickname text)")
    examplekind.register()
    connectors.unregister(examplekind.KIND)
    connectors.register(_NicknamesForgettingItsTable())
    try:
        forgetful = connectors.import_kind(examplekind.KIND)
        pipeline.import_files(("import/user/internal/people.csv", PEOPLE))
        apply_connections(load_connections_toml(SAMPLES[examplekind.KIND].toml))
        with pytest.raises(AssertionError, match="nickname_log"):
            test_undo_restores_the_store_exactly(forgetful, pipeline)
    finally:
        examplekind.unregister()
        sql("DROP TABLE lms.nickname_log")
