"""Kind ``hierarchy``: org.csv (units), pos.csv (positions) and user.csv (people) as one bundle.

Everything is keyed by the HR system's id numbers. The bundle is checked whole before anything is
applied (``prepare``): duplicates, references to a unit, position or manager that exists neither
in the bundle nor in the store, and cycles in the unit tree or the manager chains, each reported
with its whole chain on every row of the cycle. Rows with errors are dropped from staging (and
whatever depends on them, until nothing more falls); the rest is applied in dependency order:
units, positions, people, manager links, deactivations (full feeds), then the group rules for the
people the run changed.
"""

from typing import Literal

from workers.connectors.hierarchy.check import prepare
from workers.connectors.hierarchy.load import (
    apply_deactivations,
    apply_managers,
    apply_rules,
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

EXPORT: Literal[False] = False
#: Kept as long as content feeds (FEEDSYNC_CONTENT_RETENTION_DAYS) unless the connection says.
RETENTION_DAYS: int | None = None
HISTORY_COUNTS: tuple[str, ...] = ()
EMPTY_RUN: str | None = None

__all__ = [
    "EMPTY_RUN",
    "EXPORT",
    "HISTORY_COUNTS",
    "LABEL",
    "RETENTION_DAYS",
    "TREES",
    "apply_deactivations",
    "apply_managers",
    "apply_rules",
    "apply_tree",
    "apply_users",
    "classify",
    "config_of",
    "create_staging",
    "exceeded_thresholds",
    "expected_files",
    "file_spec",
    "finish",
    "load_steps",
    "needs_plan",
    "plan",
    "prepare",
    "transform_chunk",
]
