"""Kind ``users``: one or more user CSVs merged into lms.users.

Everything per row happens in SQL, set-based: mapping, validation and the row hash in the
transform (one statement per chunk, ``transform``), the decision in ``plan``, and the merge in
``load`` (one statement per step).
"""

from typing import Literal

from schemas.connections import USER_CORE_ATTRIBUTES
from schemas.kinds import KindConfig
from workers.connectors.contract import Step
from workers.connectors.users.blockwrite import screen_block, write_block
from workers.connectors.users.load import apply_deactivations, finish, insert_people, load_steps, update_people
from workers.connectors.users.plan import (
    BUCKETS,
    classify,
    exceeded_thresholds,
    growth_reasons,
    limit_text,
    needs_plan,
    plan,
    prepare,
    unreadable_reason,
    unreadable_rows,
)
from workers.connectors.users.transform import (
    EMAIL_BAD_DOTS,
    EMAIL_RE,
    config_of,
    create_staging,
    file_spec,
    transform_chunk,
)
from workers.connectors.users.vector import prepare_block

EXPORT: Literal[False] = False
#: People's data: a users feed is removed as soon as its run has ended.
RETENTION_DAYS: int | None = 0
HISTORY_COUNTS: tuple[str, ...] = ()
EMPTY_RUN: str | None = None


def expected_files(config: KindConfig) -> dict[str, str] | None:
    return None  # any number of files, each a whole feed


__all__ = [
    "BUCKETS",
    "EMAIL_BAD_DOTS",
    "EMAIL_RE",
    "EMPTY_RUN",
    "EXPORT",
    "HISTORY_COUNTS",
    "RETENTION_DAYS",
    "USER_CORE_ATTRIBUTES",
    "Step",
    "apply_deactivations",
    "classify",
    "config_of",
    "create_staging",
    "exceeded_thresholds",
    "expected_files",
    "file_spec",
    "finish",
    "growth_reasons",
    "insert_people",
    "limit_text",
    "load_steps",
    "needs_plan",
    "plan",
    "prepare",
    "prepare_block",
    "screen_block",
    "transform_chunk",
    "unreadable_reason",
    "unreadable_rows",
    "update_people",
    "write_block",
]
