"""Schedule slots in SQL, on the database clock: slot k of a schedule is ``start_at + k * every_hours``."""

from __future__ import annotations

from psycopg import sql

#: The latest slot at or before now (over ``s``: sync.schedules), for a schedule that has started.
CURRENT_SLOT = sql.SQL(
    "s.start_at + floor(EXTRACT(EPOCH FROM sync.clock() - s.start_at) / (s.every_hours * 3600))"
    " * s.every_hours * interval '1 hour'"
)

#: The next slot after now: the start itself while it is still ahead.
NEXT_SLOT = sql.SQL(
    "CASE WHEN sync.clock() < s.start_at THEN s.start_at ELSE {current} + s.every_hours * interval '1 hour' END"
).format(current=CURRENT_SLOT)

#: How many slots lie between two instants (%(slot)s and %(prev)s or armed_at), for catch-up notes.
SLOTS_BETWEEN = sql.SQL(
    "floor(EXTRACT(EPOCH FROM %(slot)s - start_at) / (every_hours * 3600))"
    " - floor(EXTRACT(EPOCH FROM coalesce(%(prev)s, armed_at) - start_at) / (every_hours * 3600))"
)
