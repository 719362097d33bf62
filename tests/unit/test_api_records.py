"""From API records to CSV cells: any JSON shape gives one cell per mapped field, never an error
(a record the import cannot use becomes a row error there, with its line)."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from workers.sources.records import cell, converter, lookup, rows

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
field_names = st.lists(
    st.sampled_from(["mail", "manager.mail", "accountEnabled", "a.b.c", "IsActive", "x"]), min_size=1
)


@given(st.lists(json_values, max_size=10), field_names)
def test_any_record_shape_gives_one_text_cell_per_field(records: list[Any], fields: list[str]) -> None:
    out = list(rows(records, tuple(fields)))

    assert len(out) == len(records)
    assert all(len(row) == len(fields) and all(isinstance(c, str) for c in row) for row in out)


def test_dotted_paths_reach_into_objects_and_ignore_case_as_the_apis_do() -> None:
    record = {"Manager": {"Mail": "boss@x.org"}, "ReportsTo": None, "ReportsTo.Email": None}

    assert lookup(record, "manager.mail") == "boss@x.org"
    assert lookup(record, "ReportsTo.Email") is None
    assert lookup({"ReportsTo.Email": "flat@x.org"}, "ReportsTo.Email") == "flat@x.org", "Bulk CSV columns are flat"
    assert lookup({"manager": "not an object"}, "manager.mail") is None


def test_cells_say_state_fields_as_state_values_and_lists_joined() -> None:
    assert (cell(True, "accountEnabled"), cell(False, "IsActive"), cell(False, "manager.accountEnabled")) == (
        "ACTIVE",
        "INACTIVE",
        "INACTIVE",
    )
    assert (cell(True, "onPremisesSyncEnabled"), cell(None, "mail"), cell(3, "n")) == ("true", "", "3")
    assert cell(["+1 555", "+1 556"], "businessPhones") == "+1 555;+1 556"
    assert cell({"b": 1, "a": "x"}, "employeeOrgData") == '{"a":"x","b":1}'


# Names that meet: exact and in another case, flat dotted keys beside the objects they shadow.
names = st.sampled_from(
    [
        *("mail", "Mail", "manager", "Manager", "accountEnabled", "IsActive", "a", "B", "c", "ReportsTo", "Email"),
        *("ReportsTo.Email", "manager.mail", "businessPhones"),
    ]
) | st.text(max_size=3)
shaped_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(names, inner, max_size=4),
    max_leaves=12,
)
paths = st.sampled_from(
    [
        *("mail", "MAIL", "manager.mail", "Manager.Mail", "accountEnabled", "manager.accountEnabled", "IsActive"),
        *("ReportsTo.Email", "a.b.c", "A.B.C", "businessPhones", "x"),
    ]
)


def generic(record: Any, fields: tuple[str, ...]) -> list[str]:
    return [cell(lookup(record, f), f) for f in fields]


@given(st.lists(st.dictionaries(names, shaped_values, max_size=6) | shaped_values, max_size=8), st.lists(paths))
def test_the_compiled_fields_give_the_cells_lookup_and_cell_give(records: list[Any], fields: list[str]) -> None:
    row = converter(tuple(fields))

    assert [row(r) for r in records] == [generic(r, tuple(fields)) for r in records]


def test_the_compiled_fields_agree_on_the_shapes_graph_and_salesforce_send() -> None:
    fields: tuple[str, ...] = ("mail", "givenName", "manager.mail", "accountEnabled", "IsActive", "ReportsTo.Email")
    fields += ("businessPhones",)
    fields += ("employeeOrgData", "age", "manager.accountEnabled", "Manager.Mail", "MAIL")
    records: list[Any] = [
        {"mail": "a@x.org", "givenName": "A", "manager": {"mail": "boss@x.org"}, "accountEnabled": True},
        {"mail": None, "manager": None, "accountEnabled": False, "IsActive": True, "age": 41.5},
        {"Mail": "b@x.org", "Manager": {"Mail": "c@x.org", "accountEnabled": False}, "businessPhones": ["1", 2]},
        {"ReportsTo.Email": "flat@x.org", "ReportsTo": {"Email": "nested@x.org"}, "employeeOrgData": {"b": [1]}},
        {"ReportsTo.Email": None, "ReportsTo": {"Email": "nested@x.org"}, "businessPhones": [True, "x"]},
        {"manager": {"mail": 7}, "givenName": ["x", {"y": 1}], "accountEnabled": 1, "IsActive": "yes"},
        MappingProxyType({"mail": "view@x.org", "manager": {"mail": "boss@x.org"}}),
        {"manager": MappingProxyType({"mail": "view@x.org"})},
        "not an object",
        None,
        [{"mail": "in a list@x.org"}],
    ]
    row = converter(fields)

    assert [row(r) for r in records] == [generic(r, fields) for r in records]
    assert row(records[0])[:4] == ["a@x.org", "A", "boss@x.org", "ACTIVE"]
