"""xAPI rules without the pipeline: typing by the mapping, the strict pass before ralph, one
specific reason per invalid statement, and the connection's config refused on the line at fault."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.connections import ConfigError, load_connections_toml
from schemas.kinds.xapi import XapiConnection, XapiField
from tests.xapistatements import COMPLETED, INVALID, VALID
from workers.connectors.xapi.statements import RowProblem, derived_id, from_column, from_mapping, typed
from workers.connectors.xapi.validation import problem


def test_a_valid_statement_has_no_problem() -> None:
    assert problem(VALID) is None


@pytest.mark.parametrize(("change", "path"), INVALID)
def test_each_broken_rule_is_one_specific_reason(change: dict[str, Any], path: str) -> None:
    found = problem({**VALID, **change})
    assert found is not None
    assert found[0] == path, found
    assert "Field required" not in found[1]  # not the noise of ralph's union branches


def test_extensions_may_hold_nulls_and_any_values() -> None:
    statement = {**VALID, "result": {"extensions": {"https://x.test/ext": None}}}
    assert problem(statement) is None


def test_the_authority_is_kept_as_the_source_lrs_wrote_it() -> None:
    # ALM's own report names an authority member with an empty name: it is the LRS's, not validated.
    authority = {
        "objectType": "Group",
        "member": [{"name": "", "account": {"homePage": "https://a.test", "name": "1"}}],
    }
    assert problem({**VALID, "authority": authority}) is None


@pytest.mark.parametrize(
    ("kind", "cell", "value"),
    [
        ("number", "12", 12),
        ("number", "0.85", 0.85),
        ("number", "-1e-2", -0.01),
        ("boolean", "Yes", True),
        ("boolean", "0", False),
        ("boolean", "false", False),
        ("date", "2026-11-01", "2026-11-01T00:00:00.000Z"),
        ("date", "2026-11-01T12:03:41.8635+02:00", "2026-11-01T10:03:41.863Z"),
        ("date", "11/2/2026 9:05", "2026-11-02T09:05:00.000Z"),
        ("string", "12", "12"),
    ],
)
def test_cells_are_typed_as_their_mapping_says(kind: str, cell: str, value: Any) -> None:
    result = typed("result.x", XapiField(column="C", type=kind), cell)  # type: ignore[arg-type]
    assert result == value and type(result) is type(value)


@pytest.mark.parametrize(("kind", "cell"), [("number", "12 points"), ("boolean", "maybe"), ("date", "tomorrow")])
def test_a_cell_not_of_its_type_is_refused(kind: str, cell: str) -> None:
    with pytest.raises(ValueError, match=f"invalid_{kind}"):
        typed("result.x", XapiField(column="C", type=kind), cell)  # type: ignore[arg-type]


def _cfg(**xapi: Any) -> XapiConnection:
    return XapiConnection.model_validate({"name": "lrs", "kind": "xapi", "xapi": xapi})


def test_mailto_is_added_to_an_mbox_that_lacks_it() -> None:
    cfg = _cfg(**{"actor.mbox": {"column": "E"}, "verb.id": {"column": "V"}, "object.id": {"column": "O"}})
    made = from_mapping(cfg, {"E": "ann@x.com", "V": COMPLETED, "O": "https://x.test/c"})
    assert made == {
        "actor": {"mbox": "mailto:ann@x.com"},
        "verb": {"id": COMPLETED},
        "object": {"id": "https://x.test/c"},
    }


def test_an_empty_required_cell_names_its_column() -> None:
    cfg = _cfg(**{"actor.mbox": {"column": "E"}, "verb.id": {"column": "V"}, "object.id": {"column": "O"}})
    assert from_mapping(cfg, {"E": "ann@x.com", "V": "", "O": "https://x.test/c"}) == RowProblem(
        "V", "required", "'V' is empty; verb.id needs a value"
    )


def test_a_statement_cell_must_be_one_json_object_with_each_property_once() -> None:
    assert isinstance(from_column("S", '{"a": 1, "a": 2}'), RowProblem)
    assert isinstance(from_column("S", "[1]"), RowProblem)
    assert isinstance(from_column("S", "{nope"), RowProblem)
    assert from_column("S", '{"a": 1}') == {"a": 1}


def test_derived_ids_are_stable_per_connection_file_and_line() -> None:
    a = derived_id("lrs", "ab" * 32, 2)
    assert a == derived_id("lrs", "ab" * 32, 2)
    assert len({a, derived_id("lrs", "ab" * 32, 3), derived_id("other", "ab" * 32, 2)}) == 3


BASE = """
[[connections]]
name = "lrs"
kind = "xapi"
{body}
"""


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ('[connections.xapi]\n"verb.id" = { column = "V" }\n"object.id" = { column = "O" }', "actor.mbox"),
        ('[connections.xapi]\n"actor.mbox" = { column = "E" }\n"object.id" = { column = "O" }', "verb.id"),
        ('[connections.xapi]\n"actr.mbox" = { column = "E" }', "not a statement path"),
        ('[connections.xapi]\n"actor.mbox" = { column = "E", value = "x" }', "either column"),
        ('statement_column = "S"\n[connections.xapi]\n"actor.mbox" = { column = "E" }', "remove"),
        ('statement_column = "S"\n[[connections.filters]]\ncolumn = "V"\nop = "in"\nvalue = "a"', "list of values"),
        ('statement_column = "S"\n[[connections.filters]]\ncolumn = "V"\nop = "like"\nvalue = "a"', "op"),
        ('statement_column = "S"\nactivity_map = { "https://a.test/1" = "P1" }', "provider:external_id"),
        ('statement_column = "S"\nkey = "email"', "applies to kind users"),
        ('statement_column = "S"\nmapping = { email = "E" }', "mapping: Extra inputs"),
    ],
)
def test_a_wrong_xapi_connection_is_refused_saying_why(body: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        load_connections_toml(BASE.format(body=body))


def test_an_xapi_connection_takes_its_default_path_and_completion_verbs() -> None:
    (c,) = load_connections_toml(BASE.format(body='statement_column = "Statement JSON"'))
    assert isinstance(c, XapiConnection)
    assert c.path == "import/xapi/*.csv"
    assert c.completion_verbs == [COMPLETED, "http://adlnet.gov/expapi/verbs/passed"]
    assert c.columns == ["Statement JSON"]


def test_a_key_only_xapi_takes_is_refused_on_other_kinds() -> None:
    toml = '[[connections]]\nname = "u"\nkind = "users"\nstatement_column = "S"\n[connections.mapping]\nemail = "E"\n'
    with pytest.raises(ConfigError, match="applies to kind xapi only"):
        load_connections_toml(toml)
