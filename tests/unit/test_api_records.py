"""From API records to CSV cells: any JSON shape gives one cell per mapped field, never an error
(a record the import cannot use becomes a row error there, with its line)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from workers.sources.records import cell, lookup, rows

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
