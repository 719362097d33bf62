"""A kind is one module: the example kind in tests/examplekind.py (its config class and its
connector, registered by the test and named nowhere else) goes through a whole run on the stub
pipeline, and the config registry refuses its key on another kind's connection."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from producers import queries
from producers.commands import apply_connections
from schemas.connections import ConfigError, load_connections_toml
from tests import examplekind
from tests.conftest import sql
from tests.stubpipeline import HEADER, Pipeline

NICKNAMES = '[[connections]]\nname = "nicks"\nkind = "nicknames"\nattribute = "alias"\n'


@pytest.fixture
def example_kind() -> Iterator[None]:
    examplekind.register()
    try:
        yield
    finally:
        examplekind.unregister()


@pytest.mark.usefixtures("example_kind")
def test_a_kind_kept_in_one_module_goes_through_a_whole_run(pipeline: Pipeline) -> None:
    pipeline.import_files(("import/user/internal/people.csv", HEADER + "ann@x.com,Ann,A,,Sales\nbob@x.com,Bob,B,,\n"))
    apply_connections(load_connections_toml(NICKNAMES))
    run_id = pipeline.import_files(("import/nicknames/n.csv", "Email,Nickname\nann@x.com,Annie\nbob@x.com,\n"))
    (run,) = [r for r in queries.history("nicks") if r["run_id"] == run_id]
    assert run["status"] == "completed_with_errors"
    assert run["content"] == {"nicknames_set": 1}
    assert run["kind_counts"]["nicknames"] == {"set": 1}
    assert sql("SELECT attributes ->> 'alias' FROM lms.users WHERE email_key = 'ann@x.com'") == [("Annie",)]
    assert sql("SELECT line, code FROM sync.row_errors WHERE run_id = %s", (run_id,)) == [(3, "required")]
    # Its retention (0 days) applies to its files as to any kind's.
    assert sql("SELECT removed_at IS NOT NULL FROM sync.feed_files WHERE original_path = 'import/nicknames/n.csv'") == [
        (True,)
    ]


@pytest.mark.usefixtures("example_kind")
def test_the_example_kinds_key_is_refused_on_another_kinds_connection_naming_its_line() -> None:
    text = '[[connections]]\nname = "a"\nkind = "hmm"\nattribute = "alias"\n'
    with pytest.raises(
        ConfigError, match=r"^c\.toml:4: connections\[0\] attribute: attribute applies to kind nicknames"
    ):
        load_connections_toml(text, "c.toml")


def test_an_unregistered_kind_is_refused_by_the_loader() -> None:
    with pytest.raises(ConfigError, match="unknown kind 'nicknames'"):
        load_connections_toml(NICKNAMES, "c.toml")
