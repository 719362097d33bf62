"""Kind ``users``: one or more user CSVs merged into lms.users.

Everything per row happens in SQL, set-based: mapping, validation and the row hash in the
transform (one statement per chunk, ``transform``), the decision in ``plan``, and the merge in
``load`` (one statement per step).
"""

from schemas.connections import USER_CORE_ATTRIBUTES
from workers.connectors.users.load import Step, apply_deactivations, finish, insert_people, load_steps, update_people
from workers.connectors.users.plan import (
    BUCKETS,
    classify,
    exceeded_thresholds,
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

__all__ = [
    "BUCKETS",
    "EMAIL_BAD_DOTS",
    "EMAIL_RE",
    "USER_CORE_ATTRIBUTES",
    "Step",
    "apply_deactivations",
    "classify",
    "config_of",
    "create_staging",
    "exceeded_thresholds",
    "file_spec",
    "finish",
    "insert_people",
    "limit_text",
    "load_steps",
    "needs_plan",
    "plan",
    "prepare",
    "transform_chunk",
    "unreadable_reason",
    "unreadable_rows",
    "update_people",
]
