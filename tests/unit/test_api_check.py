"""`feedsync api check CONNECTION` shows the first page of a Graph-shaped server of ours through the
mapping, masked, and writes nothing; `connections apply` refuses a literal secret on its line
without repeating it; `feedsync run` shows what a fetch pulled."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from producers.cli import cli
from tests.apidata import entra_toml, graph_with_secret
from tests.apiservers import CLIENT_SECRET, Served
from tests.conftest import sql
from tests.stubpipeline import Pipeline

__all__ = ["graph_with_secret"]  # the fixture "graph", used by name


def apply_file(tmp_path: Path, text: str) -> str:
    config = tmp_path / "connections.toml"
    config.write_text(text)
    result = CliRunner().invoke(cli, ["connections", "apply", str(config)])
    return f"{result.exit_code}\n{result.output}"


def test_api_check_prints_the_fields_and_the_first_five_records_masked_and_writes_nothing(
    pipeline: Pipeline, graph: Served, tmp_path: Path
) -> None:
    assert apply_file(tmp_path, entra_toml(graph.url)).startswith("0\n")

    result = CliRunner().invoke(cli, ["api", "check", "entra-users"])

    assert result.exit_code == 0, result.output
    out = result.output
    assert "first page of msgraph: 100 records, more pages follow" in out
    fields = next(ln for ln in out.splitlines() if ln.startswith("fields found: ")).removeprefix("fields found: ")
    assert fields.split(", ") == [
        "accountEnabled",
        "employeeType",
        "givenName",
        "id",
        "mail",
        "manager.mail",
        "surname",
    ]
    records = [ln.strip() for ln in out.splitlines() if ln.startswith("  ")]
    assert len(records) == 5
    assert records[1] == (
        "2. email=pe***  first_name=Gi***  last_name=Su***  manager=pe***  state=AC***  worker_type=Em***"
    )
    assert records[0].split("  ")[3] == "manager=", "the top of the tree has no manager"
    assert "person1@contoso.example" not in out and "Given1" not in out and CLIENT_SECRET not in out
    assert len(graph.vendor.api_requests()) == 1, "the first page only"
    assert sql("SELECT count(*) FROM sync.runs")[0][0] == 0
    assert sql("SELECT count(*) FROM sync.feed_files")[0][0] == 0
    assert not pipeline.settings.store_dir.exists() or not any(pipeline.settings.store_dir.rglob("*.csv"))


def test_api_check_says_in_one_sentence_when_the_token_is_refused(
    pipeline: Pipeline, graph: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert apply_file(tmp_path, entra_toml(graph.url)).startswith("0\n")
    monkeypatch.setenv("GRAPH_CLIENT_SECRET", "wrong-" + CLIENT_SECRET)

    result = CliRunner().invoke(cli, ["api", "check", "entra-users"])

    assert result.exit_code == 1
    assert result.output.startswith("feedsync: entra-users") and len(result.output.strip().splitlines()) == 1
    assert CLIENT_SECRET not in result.output and graph.vendor.api_requests() == []


def test_connections_apply_refuses_a_literal_secret_on_its_line_without_repeating_it(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    text = entra_toml("https://graph.microsoft.com", api_extra=f'client_secret = "{CLIENT_SECRET}"\n')
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if ln.startswith("client_secret ="))

    out = apply_file(tmp_path, text)

    assert out.startswith("1\n")
    assert f"connections.toml:{line}: connections[0] api.client_secret: client_secret is never written" in out
    assert CLIENT_SECRET not in out
    assert sql("SELECT count(*) FROM sync.connections WHERE name = 'entra-users'")[0][0] == 0


def test_feedsync_run_shows_what_the_fetch_pulled(pipeline: Pipeline, graph: Served, tmp_path: Path) -> None:
    assert apply_file(tmp_path, entra_toml(graph.url)).startswith("0\n")
    synced = CliRunner().invoke(cli, ["sync", "entra-users"])
    assert synced.exit_code == 0, synced.output
    pipeline.drain()
    ((run_id,),) = sql("SELECT id FROM sync.runs")

    shown = CliRunner().invoke(cli, ["run", str(run_id)])

    assert shown.exit_code == 0, shown.output
    # Every count as recorded, after the lines in the kind's own terms.
    counts = next(ln for ln in shown.output.splitlines() if ln.startswith("recorded: "))
    assert "created=248" in counts and "deactivated=2" in counts  # the two disabled accounts
    assert "fetched_pages=3" in counts and "fetched_records=250" in counts
