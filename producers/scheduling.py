"""Schedule slots in SQL, on the database clock: slot k of a schedule is ``start_at + k * every_hours``."""

from __future__ import annotations

#: The latest slot at or before now (over ``s``: sync.schedules), for a schedule that has started.
CURRENT_SLOT = (
    "s.start_at + floor(EXTRACT(EPOCH FROM sync.clock() - s.start_at) / (s.every_hours * 3600))"
    " * s.every_hours * interval '1 hour'"
)

#: The next slot after now: the start itself while it is still ahead.
NEXT_SLOT = (
    f"CASE WHEN sync.clock() < s.start_at THEN s.start_at ELSE {CURRENT_SLOT} + s.every_hours * interval '1 hour' END"
)

#: How many slots lie between two instants (%(slot)s and %(prev)s or armed_at), for catch-up notes.
SLOTS_BETWEEN = (
    "floor(EXTRACT(EPOCH FROM %(slot)s - start_at) / (every_hours * 3600))"
    " - floor(EXTRACT(EPOCH FROM coalesce(%(prev)s, armed_at) - start_at) / (every_hours * 3600))"
)
