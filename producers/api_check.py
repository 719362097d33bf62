"""What ``feedsync api check`` and the console's "API check" button both do: a connection's API
source reached with its stored config, and its first page through the mapping, masked, with what
its filters would leave out. Nothing is written."""

from __future__ import annotations

from dataclasses import dataclass

from schemas.filters import FilterConfig
from schemas.kinds import KindConfig, connection_from_json
from schemas.settings import get_settings
from workers import store
from workers.errors import TerminalError
from workers.runs.create import live_connection
from workers.sources import FetchSpec
from workers.sources.preview import Preview, check_mapping, preview, spec_of


@dataclass(frozen=True)
class Checked:
    spec: FetchSpec
    found: Preview
    filters: FilterConfig | None


def stored_config(name: str) -> KindConfig:
    """The connection's config as applied; TerminalError naming it if there is none."""
    with store.connect() as conn:
        row = live_connection(conn, name)
    if row is None:
        raise TerminalError(f"no connection named {name!r}: see `feedsync connections list`")
    return connection_from_json(row["config"])


def check(name: str) -> Checked:
    """Raises FeedsyncError (its sentence names what failed, never a secret or a value)."""
    config = stored_config(name)
    spec = spec_of(name, config)
    filters = getattr(config, "filters", None)
    return Checked(spec, preview(spec, check_mapping(name, config), get_settings(), filters), filters)
