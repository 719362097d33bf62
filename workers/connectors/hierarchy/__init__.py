"""Kind ``hierarchy``: org.csv (units), pos.csv (positions) and user.csv (people) as one bundle.

Everything is keyed by the HR system's id numbers. The bundle is checked whole before anything is
applied (``prepare``): duplicates, references to a unit, position or manager that exists neither
in the bundle nor in the store, and cycles in the unit tree or the manager chains, each reported
with its whole chain on every row of the cycle. Rows with errors are dropped from staging (and
whatever depends on them, until nothing more falls); the rest is applied in dependency order:
units, positions, people, manager links, deactivations (full feeds), then (the load's assign step)
the group rules for the people the run changed. The connection's filters (``filters.py``) set people
of the user file aside in ``prepare``: counted ``filtered``, never deactivated as missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from psycopg import sql

from schemas.kinds import KindConfig
from schemas.settings import Settings
from workers.connectors import tables
from workers.connectors.contract import ASSIGN_COUNTS, PEOPLE, PLANNED_ROWS, ROWS_READ, Counted, ImportKind
from workers.connectors.hierarchy.check import prepare
from workers.connectors.hierarchy.load import (
    apply_deactivations,
    apply_managers,
    apply_tree,
    apply_users,
    finish,
    load_steps,
)
from workers.connectors.hierarchy.plan import classify, exceeded_thresholds, needs_plan, plan
from workers.connectors.hierarchy.transform import (
    LABEL,
    TREES,
    config_of,
    create_staging,
    expected_files,
    file_spec,
    transform_chunk,
)
from workers.rows import RunRow
from workers.staging import stage_table

if TYPE_CHECKING:
    from workers.sources.pull import FetchResult


class Hierarchy(ImportKind):
    NAME = "hierarchy"
    README_SECTION = "Org units, positions and users: the `hierarchy` bundle"
    TABLES = (tables.USERS, tables.ORG_UNITS, tables.POSITIONS, *tables.RULES)
    #: Rows read add up the three files; units, positions and people are counted apart.
    HISTORY = (
        ROWS_READ,
        Counted(
            "units",
            (
                ("created", "units_created"),
                ("updated", "units_updated"),
                ("moved", "units_moved"),
                ("deactivated", "units_deactivated"),
            ),
        ),
        Counted(
            "positions",
            (
                ("created", "positions_created"),
                ("updated", "positions_updated"),
                ("moved", "positions_moved"),
                ("deactivated", "positions_deactivated"),
            ),
        ),
        Counted("people", (*PEOPLE.verbs, ("manager moves", "manager_moves"), ("filtered", "filtered"))),
        Counted("memberships", (("added", "memberships_added"), ("removed", "memberships_removed"))),
    )
    HISTORY_COUNTS = ASSIGN_COUNTS
    PLAN_COUNTS = (
        *PLANNED_ROWS,
        *(
            (f"{part}.{planned}", (f"{part}_{done}",))
            for part in ("units", "positions")
            for planned, done in (("creates", "created"), ("updates", "updated"), ("deactivations", "deactivated"))
        ),
        ("people.creates", ("created",)),
        ("people.updates", ("updated",)),
        ("people.deactivations", ("deactivated",)),
        ("filtered", ("filtered",)),
    )
    ASSIGNS_GROUPS = True

    file_spec = staticmethod(file_spec)
    expected_files = staticmethod(expected_files)
    create_staging = staticmethod(create_staging)
    transform_chunk = staticmethod(transform_chunk)
    prepare = staticmethod(prepare)
    classify = staticmethod(classify)
    needs_plan = staticmethod(needs_plan)
    plan = staticmethod(plan)
    exceeded_thresholds = staticmethod(exceeded_thresholds)
    load_steps = staticmethod(load_steps)
    finish = staticmethod(finish)

    def pull_bundle(
        self, name: str, config: KindConfig, settings: Settings, work: Path
    ) -> list[tuple[str, FetchResult]] | None:
        """``source = "workday"``: units by Get_Organizations, positions and people by Get_Workers."""
        # Here, not at the top: the HTTP clients' imports (httpx, authlib) are for the worker that
        # pulls, not for every process that lists the kinds (`feedsync sync` included).
        from workers.sources import workday_bundle

        cfg = config_of(config)
        return workday_bundle.pull(name, cfg, settings, work) if cfg.source == "workday" else None

    def changed_people(self, run: RunRow) -> sql.Composable:
        """People created, updated, deactivated or moved, everyone in a moved unit and everyone
        below a person whose manager changed: noted by the load's steps."""
        return stage_table("affected", run.id)

    def people_files(self, config: dict[str, Any]) -> list[str]:
        """Its user file holds people; its units and positions are kept like content feeds."""
        user = (config.get("files") or {}).get("user") or {}
        return [str(user.get("name") or "user.csv")] if "user" in (config.get("parts") or []) else []


__all__ = [
    "LABEL",
    "TREES",
    "Hierarchy",
    "apply_deactivations",
    "apply_managers",
    "apply_tree",
    "apply_users",
    "config_of",
]
