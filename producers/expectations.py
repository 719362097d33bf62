"""When a daily feed is due: the deadlines of a connection's ``[connections.expect]`` in its time zone.

A day's deadline is ``by`` on that day's local clock in ``tz``, plus ``grace_min``; a day not in
``days`` has none. A feed meets a deadline when a run imported it after the deadline of the calendar
day before (whether or not that day is in ``days``) and by the deadline itself, so a feed for
Monday 00:10 that arrives on Sunday at 23:55 is on time, and one for Monday that arrives on Saturday
is not.

Wall-clock times are turned into instants by ``zoneinfo``: on the night the clocks go forward a
``by`` that does not exist (02:30 in Zurich) falls an hour later on the new clock (03:30); on the
night they go back, a ``by`` that happens twice means the first time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from schemas.config_parts import Expect

#: How far back and ahead a deadline is looked for: a week and a bit covers any set of days.
_LOOK_DAYS = 9


@dataclass(frozen=True)
class Deadline:
    day: date  # the local day the feed is for
    at: datetime  # UTC
    opens: datetime  # UTC: the deadline of the calendar day before; a run after it counts for this day

    def describe(self, expect: Expect) -> str:
        grace = f" + {expect.grace_min} min grace" if expect.grace_min else ""
        return f"{self.day:%a %Y-%m-%d} {expect.by}{grace} {expect.tz} ({self.at:%Y-%m-%d %H:%M}Z)"


def deadline_of(expect: Expect, day: date) -> datetime:
    by = expect.by_time
    assert by is not None
    local = datetime.combine(day, by, tzinfo=expect.zone)
    return local.astimezone(UTC) + expect.grace


def _deadline(expect: Expect, day: date) -> Deadline:
    return Deadline(day, deadline_of(expect, day), deadline_of(expect, day - timedelta(days=1)))


def _days_around(expect: Expect, now: datetime) -> list[date]:
    today = now.astimezone(expect.zone).date()
    return [today + timedelta(days=k) for k in range(-_LOOK_DAYS, _LOOK_DAYS + 1)]


def latest(expect: Expect, now: datetime) -> Deadline | None:
    """The last deadline at or before ``now``."""
    days = [d for d in _days_around(expect, now) if d.weekday() in expect.weekdays]
    passed = [_deadline(expect, d) for d in days if deadline_of(expect, d) <= now]
    return passed[-1] if passed else None


def following(expect: Expect, now: datetime) -> Deadline | None:
    """The first deadline after ``now``."""
    days = [d for d in _days_around(expect, now) if d.weekday() in expect.weekdays]
    ahead = [_deadline(expect, d) for d in days if deadline_of(expect, d) > now]
    return ahead[0] if ahead else None
