"""[connections.filters] on a users connection fed by files: who is imported is decided in SQL over
the run's staged people, before the load; filtered people are counted and never taken for gone,
and a person who leaves the filters is reported, or deactivated when the connection says so."""

from __future__ import annotations

from typing import Any

import pytest

from producers import queries
from schemas.connections import ConfigError, load_connections_toml
from tests.conftest import sql
from tests.data import apply
from tests.stubpipeline import HEADER, USERS_TOML, Pipeline

FEED = "import/user/internal/people.csv"


def row(email: str, manager: str = "", department: str = "Staff") -> str:
    return f"{email},{email.split('@')[0].title()},L,{manager},{department}\n"


def imported() -> dict[str, bool]:
    return {e: a for e, a in sql("SELECT email, active FROM lms.users")}


def filters(text: str) -> str:
    return "\n[connections.filters]\n" + text


def test_under_managers_takes_the_manager_and_everyone_below_even_with_a_cycle_in_the_tree(
    pipeline: Pipeline,
) -> None:
    apply(mapping_extra=filters('under_managers = ["vp@x.com"]\n'))
    feed = (
        HEADER
        + row("ceo@x.com")
        + row("vp@x.com", "b@x.com")  # vp -> a -> b -> vp: a cycle inside the filter's tree
        + row("a@x.com", "vp@x.com")
        + row("b@x.com", "a@x.com")
        + row("c@x.com", "b@x.com")
        + row("x@x.com", "y@x.com")  # x <-> y: a cycle outside it
        + row("y@x.com", "x@x.com")
        + row("z@x.com", "ceo@x.com")
    )
    run_id = pipeline.import_files((FEED, feed))
    assert sorted(imported()) == ["a@x.com", "b@x.com", "c@x.com", "vp@x.com"]
    run = queries.run_detail(run_id)
    assert run is not None
    assert (run["counts"]["read"], run["counts"]["created"], run["details"]["filtered"]) == (8, 4, 4)
    assert run["kind_counts"]["people"]["filtered"] == 4


def test_exclude_values_leaves_contingent_workers_out_whatever_their_case(pipeline: Pipeline) -> None:
    apply(mapping_extra=filters('exclude_values = { department = ["Contingent"] }\n'))
    feed = HEADER + row("a@x.com") + row("b@x.com", department=" contingent ") + row("c@x.com", "b@x.com", "")
    run_id = pipeline.import_files((FEED, feed))
    assert sorted(imported()) == ["a@x.com", "c@x.com"]
    run = queries.run_detail(run_id)
    assert run is not None and run["details"]["filtered"] == 1
    # c's manager was filtered out: known, not missing, so no "unknown manager" warning.
    assert run["status"] == "completed" and queries.errors(run_id) == []


def test_include_values_keeps_only_the_listed_values(pipeline: Pipeline) -> None:
    apply(mapping_extra=filters('include_values = { department = ["Sales", "Support"] }\n'))
    feed = HEADER + row("a@x.com", department="Sales") + row("b@x.com", department="Staff") + row("c@x.com", "", "")
    pipeline.import_files((FEED, feed))
    assert sorted(imported()) == ["a@x.com"]


def _leaver(pipeline: Pipeline, leavers: str) -> dict[str, Any]:
    apply("full_feed = true\n", filters(f'exclude_values = {{ department = ["Contingent"] }}\n{leavers}'))
    first = HEADER + "".join(row(f"p{i}@x.com") for i in range(20))
    pipeline.import_files(("import/user/internal/a.csv", first))
    assert sum(imported().values()) == 20
    # p3 becomes contingent (a leaver); p4 leaves the feed (gone, as in any full feed).
    second = HEADER + "".join(row(f"p{i}@x.com", department="Contingent" if i == 3 else "Staff") for i in range(20))
    run_id = pipeline.import_files(("import/user/internal/b.csv", second.replace(row("p4@x.com"), "")))
    run = queries.run_detail(run_id)
    assert run is not None and run["status"] == "completed"
    assert (run["plan"]["filtered"], run["plan"]["filter_leavers"]) == (1, 1)
    assert run["plan"]["filter_leavers_sample"] == ["p3@x.com"]
    return run


def test_a_person_who_leaves_the_filter_is_reported_and_not_deactivated_by_a_full_feed(pipeline: Pipeline) -> None:
    run = _leaver(pipeline, "")
    people = imported()
    assert people["p3@x.com"] is True, "a filtered person is never gone"
    assert people["p4@x.com"] is False
    assert (run["counts"]["deactivated"], run["details"]["filtered"]) == (1, 1)


def test_a_leaver_is_deactivated_with_filter_leavers_deactivate(pipeline: Pipeline) -> None:
    run = _leaver(pipeline, 'filter_leavers = "deactivate"\n')
    people = imported()
    assert (people["p3@x.com"], people["p4@x.com"]) == (False, False)
    assert run["counts"]["deactivated"] == 2
    assert sorted(run["plan"]["deactivations_sample"]) == ["p3@x.com", "p4@x.com"]


@pytest.mark.parametrize(
    ("text", "line", "says"),
    [
        ('exclude_values = { worker_type = ["Contingent"] }\n', 16, "exclude_values names 'worker_type', which"),
        ('include_values = { state = ["Active"] }\n', 16, "filter on state with state_values"),
        ('under_managers = ["not an address"]\n', 16, "under_managers lists the managers' e-mail addresses"),
        ('filter_leavers = "delete"\n', 16, "filters.filter_leavers: Input should be 'report' or 'deactivate'"),
    ],
)
def test_a_filter_on_an_attribute_the_mapping_does_not_import_is_refused_on_its_line(
    text: str, line: int, says: str
) -> None:
    toml = USERS_TOML + filters(text)
    with pytest.raises(ConfigError) as err:
        load_connections_toml(toml)
    assert f"connections.toml:{line}: connections[0] filters." in str(err.value)
    assert says in str(err.value)


def test_under_managers_needs_a_mapped_manager() -> None:
    toml = USERS_TOML.replace('manager = "Manager Email"\n', "") + filters('under_managers = ["a@x.com"]\n')
    with pytest.raises(ConfigError, match="under_managers needs the manager attribute mapped"):
        load_connections_toml(toml)
