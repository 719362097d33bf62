"""The lms tables more than one kind writes, declared once so that their kinds declare the same
facts. A table only one kind writes is declared by that kind's class."""

from __future__ import annotations

from workers.connectors.contract import Table

USERS = Table("users", ("id",), created="deactivate", owned=True, points_at=("org_units", "positions"))
ORG_UNITS = Table("org_units", ("id",), created="deactivate", owned=True)
POSITIONS = Table("positions", ("id",), created="deactivate", owned=True, points_at=("org_units",))
GROUP_MEMBERS = Table("group_members", ("group_id", "user_id"), points_at=("users",))
ASSIGNMENTS = Table("assignments", ("user_id", "program"), points_at=("users",))
#: Only ever added to, by name, and a group or skill nobody holds harms no one: not journaled.
GROUPS = Table("groups", ("id",), journaled=False)
SKILLS = Table("skills", ("id",), journaled=False)
COURSES = Table("courses", ("id",), created="retire", owned=True)
COURSE_SKILLS = Table("course_skills", ("course_id", "skill_id"), points_at=("courses", "skills"))
LEARNER_PROGRESS = Table(
    "learner_progress", ("user_id", "course_id"), exported_by_change=True, owned=True, points_at=("users", "courses")
)
USER_SKILLS = Table("user_skills", ("user_id", "skill_id"), exported_by_change=True, points_at=("users", "skills"))

#: What the rules write when a load re-evaluates them for the people it changed (workers/rules.py).
RULES = (GROUPS, GROUP_MEMBERS, ASSIGNMENTS)
