"""[connections.filters] on a hierarchy bundle: who of the user file is imported is decided as for a
users connection (the same code), before the sanity check; units and positions are never filtered.
A person whose manager was filtered out is imported without that link, neither rejected nor warned;
filtered people are counted and never taken for gone, and a person who leaves the filters is
reported, or deactivated when the connection says so."""

from __future__ import annotations

from typing import Any

import pytest

from producers import queries
from schemas.connections import ConfigError, load_connections_toml
from tests.conftest import sql
from tests.data import MAPPINGS, POSITIONS, UNITS, USER, sync
from tests.data import connect as connect_hr
from tests.stubpipeline import Pipeline

#: The bundle's user file with a worker type, as an HR system exports it.
HEADER = USER.rstrip("\n") + ",Worker Type\n"
WORKER_TYPE = MAPPINGS + 'worker_type = "Worker Type"\n'


def person(key: str, unit: str = "SALES", manager: str = "", worker_type: str = "Employee") -> str:
    return f"{key},{key}@x.com,{key.title()},Doe,{unit},REP,{manager},NZ,{worker_type}\n"


def connect(filters: str, extra: str = "") -> None:
    connect_hr(extra, WORKER_TYPE + "\n[connections.filters]\n" + filters)


def bundle(people: str) -> dict[str, str]:
    return {"org.csv": UNITS, "pos.csv": POSITIONS, "user.csv": HEADER + people}


def imported() -> dict[str, tuple[str | None, bool]]:
    """Each person: (their manager's id, active)."""
    rows = sql(
        "SELECT u.external_id, m.external_id, u.active FROM lms.users u LEFT JOIN lms.users m ON m.id = u.manager_id"
    )
    return {key: (manager, active) for key, manager, active in rows}


def test_exclude_values_leave_contingent_workers_out_and_their_reports_come_without_that_manager(
    pipeline: Pipeline,
) -> None:
    connect('exclude_values = { worker_type = ["Contingent"] }\n')
    people = (
        person("e1", "EAST-1", "m1")
        + person("m1", "EAST", "boss1", "Contingent")
        + person("boss1")
        + person("e2", "OPS", "boss1", " contingent ")  # compared trimmed, whatever the case
    )
    run = sync(pipeline, bundle(people))
    assert imported() == {"boss1": (None, True), "e1": (None, True)}
    # e1's manager was filtered out: known, not missing, so no row error of any kind.
    assert run["status"] == "completed" and queries.errors(run["run_id"]) == []
    assert (run["counts"]["read"], run["counts"]["created"], run["details"]["filtered"]) == (10, 2, 2)
    assert run["kind_counts"]["people"]["filtered"] == 2
    assert run["plan"]["filtered"] == 2
    # Units and positions are never filtered.
    assert sql("SELECT count(*) FROM lms.org_units")[0][0] == 4


def test_under_managers_takes_the_tree_below_them_even_through_an_excluded_manager(pipeline: Pipeline) -> None:
    connect('under_managers = ["Boss1@x.com"]\nexclude_values = { worker_type = ["Contingent"] }\n')
    people = (
        person("boss1")
        + person("m1", "EAST", "boss1", "Contingent")  # in the tree, but excluded
        + person("e1", "EAST-1", "m1")  # under boss1 through m1: imported, without m1
        + person("boss2", "OPS")
        + person("m2", "OPS", "boss2")
        + person("x", "OPS", "y")  # x <-> y: a cycle outside the tree, filtered, never walked forever
        + person("y", "OPS", "x")
    )
    run = sync(pipeline, bundle(people))
    assert imported() == {"boss1": (None, True), "e1": (None, True)}
    assert run["status"] == "completed" and queries.errors(run["run_id"]) == []
    assert run["details"]["filtered"] == 5


def test_a_person_moved_under_a_filtered_out_manager_keeps_the_link_they_had(pipeline: Pipeline) -> None:
    connect('exclude_values = { worker_type = ["Contingent"] }\n')
    sync(pipeline, bundle(person("boss1") + person("m1", "EAST", "boss1") + person("e1", "EAST-1", "m1")))
    # e1 now reports to c9, whom the filters leave out and the platform has never had: imported
    # without a manager change, as a users connection does.
    moved = person("boss1") + person("m1", "EAST", "boss1") + person("e1", "EAST-1", "c9")
    run = sync(pipeline, bundle(moved + person("c9", "EAST", "boss1", "Contingent")))
    assert run["status"] == "completed" and queries.errors(run["run_id"]) == []
    assert imported() == {"boss1": (None, True), "m1": ("boss1", True), "e1": ("m1", True)}
    assert run["details"]["filtered"] == 1


def _leaver(pipeline: Pipeline, leavers: str) -> dict[str, Any]:
    connect(
        f'exclude_values = {{ worker_type = ["Contingent"] }}\n{leavers}', 'full_feed = true\nmax_deactivate = "50%"'
    )
    team = [("boss1", "SALES", ""), ("m1", "EAST", "boss1"), ("e1", "EAST-1", "m1"), ("boss2", "OPS", "")]
    team += [("m2", "OPS", "boss2")]
    first = sync(pipeline, bundle("".join(person(k, u, m) for k, u, m in team)))
    assert first["status"] == "completed" and sum(a for _, a in imported().values()) == 5
    # m2 becomes contingent (a leaver of the filter); e1 leaves the file (gone, as in any full feed).
    second = "".join(person(k, u, m, "Contingent" if k == "m2" else "Employee") for k, u, m in team if k != "e1")
    run = sync(pipeline, bundle(second))
    assert run["status"] == "completed", (run["status"], run["plan"])
    assert (run["plan"]["filtered"], run["plan"]["filter_leavers"]) == (1, 1)
    assert run["plan"]["filter_leavers_sample"] == ["m2"]
    return run


def test_a_person_who_leaves_the_filter_is_reported_and_not_deactivated_by_a_full_feed(pipeline: Pipeline) -> None:
    run = _leaver(pipeline, "")
    people = imported()
    assert people["m2"] == ("boss2", True), "a filtered person is never gone"
    assert people["e1"][1] is False
    assert (run["counts"]["deactivated"], run["details"]["filtered"]) == (1, 1)
    assert run["plan"]["people"]["deactivations_sample"] == ["e1"]


def test_a_leaver_is_deactivated_with_filter_leavers_deactivate(pipeline: Pipeline) -> None:
    run = _leaver(pipeline, 'filter_leavers = "deactivate"\n')
    people = imported()
    assert (people["m2"][1], people["e1"][1]) == (False, False)
    assert run["counts"]["deactivated"] == 2
    assert run["plan"]["people"]["deactivations_sample"] == ["e1", "m2"]


TOML = '[[connections]]\nname = "hr"\nkind = "hierarchy"\n{extra}\n' + WORKER_TYPE + "\n[connections.filters]\n{f}"


def test_a_hierarchy_connection_takes_filters_on_its_user_mapping() -> None:
    (cfg,) = load_connections_toml(TOML.format(extra="", f='exclude_values = { worker_type = ["Contingent"] }\n'))
    assert cfg.model_dump()["filters"]["exclude_values"] == {"worker_type": ["Contingent"]}


@pytest.mark.parametrize(
    ("extra", "text", "says"),
    [
        ("", 'exclude_values = { grade = ["A"] }\n', "connections[0] filters.exclude_values: exclude_values names"),
        ('parts = ["org"]', 'exclude_values = { region = ["EU"] }\n', "filters choose who of the user file"),
        ("", 'under_managers = ["boss1"]\n', "under_managers lists the managers' e-mail addresses"),
    ],
)
def test_a_filter_the_user_file_cannot_answer_is_refused(extra: str, text: str, says: str) -> None:
    toml = TOML.format(extra=extra, f=text)
    if extra:  # a bundle of units only: no user file to filter
        toml = toml.split("[connections.files.pos.mapping]")[0] + "[connections.filters]\n" + text
    with pytest.raises(ConfigError) as err:
        load_connections_toml(toml)
    assert says in str(err.value)
