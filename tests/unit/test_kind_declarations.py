"""The kinds' declarations are the facts: the journal's triggers in the database are exactly the
declared journaled tables with their keys, two kinds writing one table declare it alike, and the
export config mirrors the export kinds (the schemas may not import the workers)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from schemas.exports import DEFAULT_LOCATION, ExportConnection
from tests import examplekind
from tests.conftest import sql
from workers import connectors
from workers.connectors.contract import ExportKind
from workers.runs import journal


@pytest.fixture
def example_kind() -> Iterator[None]:
    examplekind.register()  # a kind the tests keep is a kind: its tables are compared too
    try:
        yield
    finally:
        examplekind.unregister()


@pytest.mark.usefixtures("example_kind")
def test_the_journal_triggers_are_the_declared_journaled_tables_with_their_keys() -> None:
    rows = sql(
        """SELECT c.relname, p.proname, encode(t.tgargs, 'escape')
           FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
           JOIN pg_proc p ON p.oid = t.tgfoid
           WHERE n.nspname = 'lms' AND p.proname LIKE 'journal\\_%' AND NOT t.tgisinternal"""
    )
    triggers: dict[str, set[tuple[str, ...]]] = {}
    for table, function, args in rows:
        key = tuple(re.findall(r"r\.(\w+)", args))
        triggers.setdefault(table, set()).add((function, *key))
    declared = {
        name: {(f, *t.key) for f in ("journal_insert", "journal_update", "journal_delete")}
        for name, t in journal.tables().items()
    }
    assert triggers == declared


def test_undo_applies_a_table_before_the_tables_it_points_at() -> None:
    order = [t.name for t in connectors.declared_tables()]
    for t in connectors.declared_tables():
        for target in t.points_at:
            assert order.index(t.name) < order.index(target), (t.name, target)


def test_the_export_config_names_the_export_kinds_and_their_folders() -> None:
    exports = {k.NAME: k for k in connectors.kinds() if isinstance(k, ExportKind)}
    assert set(ExportConnection.kinds()) == set(exports)
    assert {name: k.FOLDER for name, k in exports.items()} == DEFAULT_LOCATION


def test_the_exports_check_is_the_registry_not_a_list_in_the_database() -> None:
    assert (
        sql(
            """SELECT conname FROM pg_constraint WHERE conrelid = 'sync.exports'::regclass AND contype = 'c'
           AND pg_get_constraintdef(oid) LIKE '%kind%'"""
        )
        == []
    )


@pytest.mark.usefixtures("example_kind")
def test_the_declared_tables_exist_with_their_keys_and_owned_ones_name_their_connection() -> None:
    owned = {
        t
        for (t,) in sql(
            """SELECT table_name FROM information_schema.columns
               WHERE table_schema = 'lms' AND column_name = 'source_connection_id'"""
        )
    }
    for t in connectors.declared_tables():
        key = sql(
            """SELECT a.attname FROM pg_index i
               JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
               WHERE i.indrelid = %s::regclass AND i.indisprimary
               ORDER BY array_position(i.indkey::int2[], a.attnum)""",
            (f"lms.{t.name}",),
        )
        assert tuple(k for (k,) in key) == t.key, t.name
    assert {t.name for t in connectors.declared_tables() if t.owned} == owned
