"""The kinds the standard kind suite runs over (every registered import kind and
tests/examplekind.py's), its ``kind`` fixture (the kind with its sample connection applied) and how
a sample is delivered, for the test modules that run over every kind (test_standard_kinds,
test_plan_matches_counts)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from producers import registry
from producers.commands import apply_connections, start_sync
from schemas.connections import load_connections_toml
from schemas.rules import load_rules_toml
from tests import examplekind
from tests.api_linkedin import sample_server
from tests.conftest import sql
from tests.kindsamples import LINKEDIN_URL, PEOPLE, SAMPLES, Sample
from tests.stubpipeline import Pipeline
from workers import connectors
from workers.connectors.contract import ImportKind
from workers.rules import apply_rules

examplekind.register()  # the suite's list of kinds is read at collection: the example kind is one
IMPORT_KINDS = [k.NAME for k in connectors.kinds() if isinstance(k, ImportKind)]
examplekind.unregister()


@pytest.fixture(params=IMPORT_KINDS)
def kind(request: pytest.FixtureRequest, pipeline: Pipeline) -> Iterator[ImportKind]:
    examplekind.register()
    try:
        found = connectors.import_kind(request.param)
        sample = SAMPLES[found.NAME]
        with ExitStack() as stack:
            toml = sample.toml
            if sample.api:
                # The kind's API: a server of ours answering what each delivery drops in its folder.
                url = stack.enter_context(sample_server(pipeline.settings.drop_dir / sample.folder))
                toml = toml.replace(LINKEDIN_URL, url)
            if sample.people:
                pipeline.import_files(("import/user/internal/people.csv", PEOPLE))
            if toml:
                apply_connections(load_connections_toml(toml))
            if sample.rules:
                apply_rules(load_rules_toml(sample.rules))
            yield found
    finally:
        examplekind.unregister()


def deliver(pipeline: Pipeline, sample: Sample, files: dict[str, str | bytes], *, dry_run: bool = False) -> int:
    """Drop the files and sync the connection on demand, as an admin does; returns the run's id."""
    for name, body in files.items():
        pipeline.drop(f"{sample.folder}/{name}", body)
    registry.scan(pipeline.settings, announce=False)
    run_id = start_sync(pipeline.settings, sample.name, dry_run=dry_run)
    pipeline.drain()
    return run_id


def status(run_id: int) -> str:
    return str(sql("SELECT status FROM sync.runs WHERE id = %s", (run_id,))[0][0])
