"""Kind ``users``: one or more user CSVs merged into lms.users.

Everything per row happens in SQL, set-based: mapping, validation and the row hash in the
transform (one statement per chunk, ``transform``), the decision in ``plan``, and the merge in
``load`` (one statement per step). It changes people: the load's assign step then evaluates the
group rules again for those it changed.
"""

from __future__ import annotations

from schemas.connections import USER_CORE_ATTRIBUTES
from workers.connectors import tables
from workers.connectors.contract import ASSIGN_COUNTS, PEOPLE, PLANNED_ROWS, ROWS_READ, Counted, ImportKind
from workers.connectors.users.load import (
    apply_deactivations,
    changed_people,
    finish,
    insert_people,
    load_steps,
    update_people,
)
from workers.connectors.users.plan import (
    BUCKETS,
    classify,
    exceeded_thresholds,
    needs_plan,
    plan,
    prepare,
)
from workers.connectors.users.transform import (
    EMAIL_RE,
    bad_email,
    config_of,
    create_staging,
    file_spec,
    transform_chunk,
)


class Users(ImportKind):
    NAME = "users"
    README_SECTION = "Connections"
    TABLES = (tables.USERS, *tables.RULES)
    HISTORY_COUNTS = ASSIGN_COUNTS
    ASSIGNS_GROUPS = True
    #: People's data: a users feed is removed as soon as its run has ended.
    RETENTION_DAYS = 0
    PLAN_COUNTS = (
        *PLANNED_ROWS,
        ("creates", ("created",)),
        ("updates", ("updated",)),
        ("deactivations", ("deactivated",)),
        ("manager_moves", ("manager_moves",)),
        ("filtered", ("filtered",)),
    )
    HISTORY = (
        ROWS_READ,
        Counted("people", (*PEOPLE.verbs, ("filtered", "filtered"))),
        Counted("memberships", (("added", "memberships_added"), ("removed", "memberships_removed"))),
    )

    file_spec = staticmethod(file_spec)
    create_staging = staticmethod(create_staging)
    transform_chunk = staticmethod(transform_chunk)
    prepare = staticmethod(prepare)
    classify = staticmethod(classify)
    needs_plan = staticmethod(needs_plan)
    plan = staticmethod(plan)
    exceeded_thresholds = staticmethod(exceeded_thresholds)
    load_steps = staticmethod(load_steps)
    finish = staticmethod(finish)
    changed_people = staticmethod(changed_people)


__all__ = [
    "BUCKETS",
    "EMAIL_RE",
    "USER_CORE_ATTRIBUTES",
    "Users",
    "apply_deactivations",
    "bad_email",
    "config_of",
    "insert_people",
    "update_people",
]
