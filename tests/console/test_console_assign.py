"""The console's run page shows what a run's assign step did to group memberships."""

from __future__ import annotations

import re

from starlette.testclient import TestClient

from producers.commands import apply_connections
from schemas.connections import load_connections_toml
from schemas.rules import load_rules_toml
from tests.stubpipeline import HEADER, USERS_TOML, Pipeline
from workers.rules import apply_rules

RULE = '[[rules]]\ngroup = "Sales"\nattributes = { department = "Sales" }\n'


def counts_table(html: str) -> dict[str, list[str]]:
    """The run's counts as the page shows them, a row per thing counted: its name -> its cells."""
    table = html.split('<table class="counts">')[1].split("</table>")[0]
    rows = re.findall(r"<tr><th>([^<]*)</th>(.*?)</tr>", table)
    return {noun: re.findall(r"<td>([^<]*)</td>", cells) for noun, cells in rows}


def test_a_users_run_page_shows_the_memberships_its_assign_step_changed(
    pipeline: Pipeline, as_admin: TestClient
) -> None:
    apply_connections(load_connections_toml(USERS_TOML + RULE))
    apply_rules(load_rules_toml(USERS_TOML + RULE))
    pipeline.import_files(
        ("import/user/internal/day1.csv", HEADER + "ann@x.com,Ann,A,,Sales\nbob@x.com,Bob,B,,Sales\n")
    )
    run_id = pipeline.import_files(
        ("import/user/internal/day2.csv", HEADER + "ann@x.com,Ann,A,,Sales\nbob@x.com,Bob,B,,Ops\n")
    )
    shown = counts_table(as_admin.get(f"/runs/{run_id}").text)
    assert shown["memberships"] == ["0 added", "1 removed"]
