"""A held plan's people in full (the console's CSV download): who it would create or deactivate,
read from the run's staged tables while it waits for a decision."""

from __future__ import annotations

from typing import Any

from workers import store
from workers.connectors.users.plan import PLANNED_PEOPLE_COLUMNS, planned_people
from workers.rows import read_run

COLUMNS = PLANNED_PEOPLE_COLUMNS


def people(run_id: int) -> list[dict[str, Any]] | None:
    """The people of a users run held for approval, or None when the run is not such a run (its
    staged tables are gone once it is decided)."""
    with store.connect() as conn:
        run = read_run(conn, run_id)
        if run is None or run.kind != "users" or run.status.value != "awaiting_approval":
            return None
        return planned_people(conn, run)
