"""Each kind's connection config is a class of its own, found by its kind in one registry; the
rows stored before (every import key in every import connection) read the same and apply unchanged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from producers.cli import cli
from schemas.connections import ConfigError, load_connections_toml
from schemas.exports import ExportConnection
from schemas.kinds import (
    GetabstractConnection,
    HierarchyConnection,
    HmmConnection,
    UsersConnection,
    connection_from_json,
    to_json,
)
from tests.conftest import sql

TOML = """
[[connections]]
name = "hr"
kind = "users"
[connections.mapping]
email = "E"

[[connections]]
name = "bundle"
kind = "hierarchy"
parts = ["user"]
[connections.files.user.mapping]
key = "Id"
email = "Mail"

[[connections]]
name = "h"
kind = "hmm"
"""

_COMMON: dict[str, Any] = json.loads(
    '{"create_learners": false, "delimiter": ",", "done_marker": false, "empty_erases": false, "enabled": true, '
    '"encoding": "utf-8", "full_feed": false, "key": "email", "max_change": null, "max_deactivate": null, '
    '"notify": null, "required": ["email"], "retention_days": null, "schedule": null, "settle_seconds": null, '
    '"trigger": "on_arrival"}'
)
#: As version 1 stored them: every import key in every import connection.
STORED_V1: list[dict[str, Any]] = [
    {
        **_COMMON,
        **json.loads(
            '{"files": {}, "kind": "users", "mapping": {"email": "E"}, "name": "hr", "parts": ["org", "pos", "user"], '
            '"path": "import/user/internal/*.csv"}'
        ),
    },
    {
        **_COMMON,
        **json.loads(
            '{"files": {"user": {"delimiter": null, "encoding": null, "mapping": {"email": "Mail", "key": "Id"}, '
            '"name": "user.csv"}}, "kind": "hierarchy", "mapping": {}, "name": "bundle", "parts": ["user"], '
            '"path": "import/hierarchy/*.csv"}'
        ),
    },
    {
        **_COMMON,
        **json.loads(
            '{"files": {}, "kind": "hmm", "mapping": {}, "name": "h", "parts": ["org", "pos", "user"], '
            '"path": "import/hmm/*.csv"}'
        ),
    },
]


def test_each_kind_loads_as_its_own_class() -> None:
    users, bundle, hmm = load_connections_toml(TOML)
    assert type(users) is UsersConnection and type(bundle) is HierarchyConnection and type(hmm) is HmmConnection
    assert "create_learners" not in UsersConnection.model_fields and "key" not in HmmConnection.model_fields
    assert "mapping" not in HierarchyConnection.model_fields and "full_feed" not in GetabstractConnection.model_fields


def test_a_connection_is_stored_as_version_1_stored_it_and_reads_back_the_same() -> None:
    for connection, stored in zip(load_connections_toml(TOML), STORED_V1, strict=True):
        assert to_json(connection) == stored
        assert connection_from_json(stored) == connection


def test_an_export_is_stored_with_its_own_keys_only() -> None:
    (export,) = load_connections_toml('[[connections]]\nname = "t"\nkind = "transcript_export"\n')
    assert isinstance(export, ExportConnection)
    assert set(to_json(export)) == {
        *("name", "kind", "enabled", "trigger", "schedule", "notify", "path", "location", "zip", "status")
    }
    assert connection_from_json(to_json(export)) == export


def test_a_stored_key_of_another_kind_that_is_not_its_default_is_refused() -> None:
    stored = dict(STORED_V1[2])
    stored["full_feed"] = True
    with pytest.raises(ValueError, match="full_feed"):
        connection_from_json(stored)


@pytest.mark.usefixtures("settings")
def test_connections_stored_by_version_1_are_unchanged_when_their_file_is_applied_again(tmp_path: Path) -> None:
    for stored in STORED_V1:
        sql(
            "INSERT INTO sync.connections (name, kind, config, enabled) VALUES (%s, %s, %s, true)",
            (stored["name"], stored["kind"], json.dumps(stored)),
        )
    config = tmp_path / "connections.toml"
    config.write_text(TOML)
    applied = CliRunner().invoke(cli, ["connections", "apply", str(config)])
    assert applied.exit_code == 0, applied.output
    assert applied.output.count("unchanged") == 3, applied.output
    assert [r[0] for r in sql("SELECT config FROM sync.connections ORDER BY id")] == STORED_V1


@pytest.mark.parametrize(
    ("kind", "extra", "says"),
    [
        ("hierarchy", "create_learners = true", "create_learners applies to content connections (hmm, getabstract)"),
        ("hierarchy", "mapping = { a = 'b' }", "maps each file under [connections.files.<part>.mapping]"),
        ("getabstract", "parts = ['user']", "parts applies to kind hierarchy only, not to kind 'getabstract'"),
    ],
)
def test_a_kind_refuses_what_only_other_kinds_take_on_its_line(kind: str, extra: str, says: str) -> None:
    text = f'[[connections]]\nname = "a"\nkind = "{kind}"\n{extra}\n'
    if kind == "hierarchy":
        text += '[connections.files.org.mapping]\nkey = "k"\nname = "n"\n'
    with pytest.raises(ConfigError) as refused:
        load_connections_toml(text, "c.toml")
    assert str(refused.value).startswith("c.toml:4: connections[0] ")
    assert says in str(refused.value)
