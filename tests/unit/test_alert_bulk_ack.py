"""`feedsync alerts ack` acknowledges a flood at once: several ids, or every NEW alert of a kind
and connection pattern, audited in sync.audit (also when nothing matched)."""

from __future__ import annotations

from click.testing import CliRunner

from producers.cli import cli
from tests.alarmdata import flood, states
from tests.conftest import sql


def test_ack_by_kind_and_connection_pattern_acknowledges_every_match_and_audits_it(settings: object) -> None:
    flood()
    acked = CliRunner().invoke(cli, ["alerts", "ack", "--kind", "failed_runs", "--connection", "hr-*", "--by", "alice"])
    assert acked.exit_code == 0, acked.output
    assert acked.output == ("2 alert(s) acknowledged by alice:\n  1 (failed_runs on hr-a)\n  3 (failed_runs on hr-b)\n")
    assert states() == [
        (1, "ACKNOWLEDGED", "alice"), (2, "NEW", None), (3, "ACKNOWLEDGED", "alice"), (4, "NEW", None),
    ]  # fmt: skip
    audited = sql("SELECT admin, action, target, outcome, detail, client FROM sync.audit ORDER BY id")
    assert audited == [
        ("alice", "alerts_ack", "kind failed_runs; connection hr-*", "ok", {"ids": [1, 3]}, "cli"),
    ]

    several = CliRunner().invoke(cli, ["alerts", "ack", "2", "4", "--by", "bob"])
    assert several.exit_code == 0, several.output
    assert [s for _, s, _ in states()] == ["ACKNOWLEDGED"] * 4

    nothing = CliRunner().invoke(cli, ["alerts", "ack", "--kind", "held", "--by", "bob"])
    assert nothing.exit_code == 1 and "no NEW alert matches kind held; see feedsync alerts" in nothing.output
    assert sql("SELECT outcome FROM sync.audit ORDER BY id")[-1] == (
        "refused: no open alert not yet acknowledged matches",
    )


def test_ack_without_an_id_or_a_filter_is_refused_in_one_sentence(settings: object) -> None:
    flood()
    bare = CliRunner().invoke(cli, ["alerts", "ack"])
    assert bare.exit_code == 1
    assert "name the alerts to acknowledge: their ids, --kind or --connection" in bare.output
    assert "Traceback" not in bare.output and [s for _, s, _ in states()] == ["NEW"] * 4


def test_a_connection_pattern_takes_percent_and_underscore_literally(settings: object) -> None:
    flood()
    literal = CliRunner().invoke(cli, ["alerts", "ack", "--connection", "hr_%", "--by", "alice"])
    assert literal.exit_code == 1 and [s for _, s, _ in states()] == ["NEW"] * 4
