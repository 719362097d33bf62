"""Each kind validates its own keys: `connections apply` refuses an unknown kind and a key that
another kind owns, on the line at fault, and applies nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from producers.cli import cli
from schemas.connections import ConfigError, load_connections_toml

USERS = '[[connections]]\nname = "a"\nkind = "users"\n{extra}\n[connections.mapping]\nemail = "E"\n'
HMM = '[[connections]]\nname = "a"\nkind = "hmm"\n{extra}\n'


def _apply(tmp_path: Path, text: str) -> str:
    config = tmp_path / "connections.toml"
    config.write_text(text)
    result = CliRunner().invoke(cli, ["connections", "apply", str(config)])
    assert result.exit_code == 1, result.output
    return result.output


def test_connections_apply_refuses_an_unknown_kind_naming_its_line(tmp_path: Path) -> None:
    output = _apply(tmp_path, '[[connections]]\nname = "a"\nkind = "nonsense"\n')
    assert "refused, nothing applied" in output
    assert "connections.toml:3: connections[0] kind: unknown kind 'nonsense'" in output


@pytest.mark.parametrize(
    ("text", "line", "key", "owners"),
    [
        (USERS.format(extra='parts = ["user"]'), 4, "parts", "hierarchy"),
        (USERS.format(extra="location = 'x'"), 4, "location", "transcript_export or skills_export or xapi_export"),
        (USERS.format(extra="") + '[connections.files.org.mapping]\nkey = "k"\n', 7, "files", "hierarchy"),
        (HMM.format(extra="full_feed = true"), 4, "full_feed", "users or hierarchy"),
        (HMM.format(extra="zip = true"), 4, "zip", "transcript_export or skills_export or xapi_export"),
    ],
)
def test_a_key_another_kind_owns_is_refused_naming_its_line(text: str, line: int, key: str, owners: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_connections_toml(text, "c.toml")
    assert str(refused.value).startswith(f"c.toml:{line}: connections[0] {key}: {key} applies to kind {owners} only")


def test_connections_apply_refuses_a_key_of_another_kind_and_applies_nothing(tmp_path: Path) -> None:
    output = _apply(tmp_path, HMM.format(extra="full_feed = true"))
    assert "connections.toml:4: connections[0] full_feed: full_feed applies to kind users or hierarchy only" in output


def test_a_table_an_export_does_not_take_is_refused_on_its_header_line() -> None:
    text = '[[connections]]\nname = "a"\nkind = "xapi_export"\n\n[connections.mapping]\nemail = "E"\n'
    with pytest.raises(ConfigError, match=r"^c\.toml:5: connections\[0\] mapping: "):
        load_connections_toml(text, "c.toml")
