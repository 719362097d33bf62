"""The admin's view of groups: rules applied with the connections file, `feedsync groups` with
their sizes, and `feedsync run` showing a run's membership changes."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from producers.cli import cli
from tests.data import MAPPINGS, PEOPLE, POSITIONS, RULES, UNITS, sync
from tests.stubpipeline import Pipeline


def test_rules_apply_with_the_connections_and_groups_and_runs_show_them(pipeline: Pipeline, tmp_path: Path) -> None:
    config = tmp_path / "connections.toml"
    config.write_text(f'[[connections]]\nname = "hr"\nkind = "hierarchy"\n{MAPPINGS}\n{RULES}')
    runner = CliRunner()
    applied = runner.invoke(cli, ["connections", "apply", str(config)])
    assert applied.exit_code == 0, applied.output
    assert "hr: created" in applied.output and "group Sales and below: created" in applied.output

    run = sync(pipeline, {"org.csv": UNITS, "pos.csv": POSITIONS, "user.csv": PEOPLE})
    listed = runner.invoke(cli, ["groups", "--json"])
    assert listed.exit_code == 0, listed.output
    sizes = {g["name"]: (g["members"], g["programs"]) for g in json.loads(listed.output)}
    assert sizes == {"Sales and below": (3, ["Sales onboarding"]), "Team of boss2": (1, [])}

    shown = runner.invoke(cli, ["run", str(run["run_id"])])
    assert shown.exit_code == 0, shown.output
    assert "group memberships changed:" in shown.output
    lines = [ln.split() for ln in shown.output.splitlines() if ln.startswith(("Sales and below", "Team of boss2"))]
    assert lines == [
        ["Sales", "and", "below", "added", "3", "boss1,", "e1,", "m1"],
        ["Team", "of", "boss2", "added", "1", "m2"],
    ]

    # A rule removed from the file stays until the file is applied with --prune: then its group is
    # deactivated and loses its members.
    config.write_text(
        f'[[connections]]\nname = "hr"\nkind = "hierarchy"\n{MAPPINGS}\n'
        + RULES.split("[[rules]]")[1].join(["[[rules]]", ""])
    )
    kept = runner.invoke(cli, ["connections", "apply", str(config)])
    assert "group Team of boss2: kept (not in this file; --prune removes it)" in kept.output
    again = runner.invoke(cli, ["connections", "apply", "--prune", str(config)])
    assert again.exit_code == 0, again.output
    sizes = {
        g["name"]: (g["members"], g["active"]) for g in json.loads(runner.invoke(cli, ["groups", "--json"]).output)
    }
    assert sizes == {"Sales and below": (3, True), "Team of boss2": (0, False)}
