"""Explicit states. Each enum is mirrored by a CHECK constraint in schemas/sql."""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    AWAITING_APPROVAL = "awaiting_approval"
    COMPLETED = "completed"
    COMPLETED_WITH_ERRORS = "completed_with_errors"
    FAILED = "failed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"  # ended by an admin (`feedsync cancel`); late messages for it do nothing

    @property
    def finished(self) -> bool:
        return self in FINISHED_RUN_STATUSES


#: A run in one of these may still apply changes; `feedsync cancel` ends it.
ACTIVE_RUN_STATUSES = frozenset({RunStatus.QUEUED, RunStatus.IN_PROGRESS, RunStatus.AWAITING_APPROVAL})

FINISHED_RUN_STATUSES = frozenset(
    {
        RunStatus.COMPLETED,
        RunStatus.COMPLETED_WITH_ERRORS,
        RunStatus.FAILED,
        RunStatus.REJECTED,
        RunStatus.CANCELLED,
    }
)


class TriggerType(StrEnum):
    SCHEDULED = "scheduled"
    ON_DEMAND = "on_demand"
    FILE_DROP = "file_drop"
    RERUN = "rerun"
    REPLAY = "replay"
    UNDO = "undo"  # `feedsync undo RUN_ID`: restores what another run changed


class StageStatus(StrEnum):
    RUNNING = "running"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DEAD_LETTERED = "dead_lettered"


class FileStatus(StrEnum):
    REGISTERED = "registered"  # taken from the drop dir, waiting for a run
    CLAIMED = "claimed"  # a run is importing it
    IMPORTED = "imported"
    REJECTED = "rejected"  # the file as a whole was refused (bad header, not a CSV, ...)


class AccessMode(StrEnum):
    ONLINE = "online"
    EXCLUSIVE = "exclusive"


class AlertState(StrEnum):
    """An alert is open while NEW or ACKNOWLEDGED (at most one per connection and kind)."""

    NEW = "NEW"
    ACKNOWLEDGED = "ACKNOWLEDGED"  # someone is on it: seen again, it is not sent again
    RESOLVED = "RESOLVED"


class AlertKind(StrEnum):
    LATE = "late"  # something arrived, but nothing was imported by the deadline
    MISSING = "missing"  # nothing arrived by the deadline
    ROW_DRIFT = "row_drift"
    FAILED_RUNS = "failed_runs"
    HELD = "held"
    DEAD_LETTER = "dead_letter"
    PARKED = "parked"  # an API's daily quota is used up: the connection waits until it resets
