"""Connections as code and typed messages: refused with the line at fault, validated both ways."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from schemas.connections import ConfigError, Threshold, load_connections_toml
from schemas.kinds import HmmConnection, UsersConnection
from schemas.messages import FeedArrived, ParseFile, message_for_actor

GOOD = """
[[connections]]
name = "hr-users"
kind = "users"

[connections.mapping]
email = "Email"
manager = "Manager Email"
nickname = "DontImportFromSource"
"""


def test_the_example_connection_loads_with_the_default_path() -> None:
    (c,) = load_connections_toml(GOOD)
    assert isinstance(c, UsersConnection)
    assert c.path == "import/user/internal/*.csv" and c.key == "email"
    assert c.imported_mapping == {"email": "Email", "manager": "Manager Email"}
    assert c.profile_attributes == []


@pytest.mark.parametrize(
    ("change", "line", "says"),
    [
        (('kind = "users"', 'kind = "ldap"'), 4, "unknown kind 'ldap'"),
        (('manager = "Manager Email"', 'manager = ""'), 8, "'manager' is mapped to nothing"),
        (('email = "Email"', 'email = "DontImportFromSource"'), 7, "mapping must name the feed column for 'email'"),
        (('nickname = "DontImportFromSource"', 'Nick-Name = "N"'), 9, "attribute name 'Nick-Name'"),
        (('kind = "users"', 'kind = "users"\nfull_feed = "yes"'), 5, "full_feed"),
    ],
    ids=["unknown-kind", "manager-to-nothing", "email-not-imported", "bad-attribute-name", "wrong-type"],
)
def test_a_wrongly_typed_config_is_refused_with_the_line_at_fault(
    change: tuple[str, str], line: int, says: str
) -> None:
    text = GOOD.replace(*change)
    with pytest.raises(ConfigError) as exc:
        load_connections_toml(text, "conn.toml")
    assert f"conn.toml:{line}:" in str(exc.value)
    assert says in str(exc.value)


def test_not_toml_and_no_connections_are_refused_clearly() -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_connections_toml("[[connections]\nname=", "x.toml")
    with pytest.raises(ConfigError, match=r"no \[\[connections\]\] table"):
        load_connections_toml("title = 'nothing'", "x.toml")


def test_thresholds_are_counts_or_percentages() -> None:
    assert Threshold.parse(50).exceeded(51, 1000) and not Threshold.parse(50).exceeded(50, 1000)
    assert Threshold.parse("10%").exceeded(11, 100) and not Threshold.parse("10%").exceeded(10, 100)
    with pytest.raises(ValueError, match="not a threshold"):
        Threshold.parse("ten")


def test_messages_refuse_unknown_fields_and_bad_values_on_send_and_on_receive() -> None:
    assert ParseFile(run_id=1, file_id=2).to_kwargs() == {"schema_version": 1, "run_id": 1, "file_id": 2}
    with pytest.raises(ValidationError):
        ParseFile.from_kwargs({"run_id": 1, "file_id": 2, "rows": [["a"]]})
    with pytest.raises(ValidationError):
        FeedArrived(
            connection="c",
            file_id=1,
            path="p",
            sha256="not-a-hash",
            size=1,
            detected_at=datetime(2026, 1, 1, tzinfo=UTC),
        )
    with pytest.raises(ValidationError):
        message_for_actor("parse_file", {"run_id": 1, "file_id": 2, "schema_version": 2})
    assert message_for_actor("unknown_actor", {}) is None


def test_content_connections_take_column_renames_and_refuse_what_only_users_have() -> None:
    ok = load_connections_toml('[[connections]]\nname = "hmm"\nkind = "hmm"\n[connections.mapping]\ntitle = "Name"\n')
    assert isinstance(ok[0], HmmConnection)
    assert (ok[0].path, ok[0].mapping) == ("import/hmm/*.csv", {"title": "Name"})
    with pytest.raises(ConfigError) as exc:
        load_connections_toml('[[connections]]\nname = "g"\nkind = "getabstract"\n[connections.mapping]\ntitel = "x"\n')
    assert "connections.toml:5: connections[0] mapping.titel: 'titel' is not a column of getabstract feeds" in str(
        exc.value
    )
    with pytest.raises(ConfigError, match="create_learners applies to content connections"):
        load_connections_toml(
            '[[connections]]\nname = "u"\nkind = "users"\ncreate_learners = true\n[connections.mapping]\nemail = "E"\n'
        )
