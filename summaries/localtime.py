"""Local dates and hours of every time zone at a given UTC instant.

Every periodic job here runs hourly in UTC and works out, per IANA zone, what the
local clock shows. Zones come from `zoneinfo.available_timezones()`, the same list that
validates `User.time_zone`, so about 600 rows cover every user whatever their count.
All functions take `now` explicitly, so a replayed or caught-up tick computes the same
dates as the original one.
"""

import zoneinfo
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache


@dataclass(frozen=True)
class ZoneDay:
    """The local date and hour of one time zone at an instant."""

    time_zone: str
    today: date
    hour: int


@lru_cache(maxsize=1)
def zone_names():
    return tuple(sorted(zoneinfo.available_timezones()))


@lru_cache(maxsize=1024)
def _zone(name):
    return zoneinfo.ZoneInfo(name)


def zone_days(now):
    """Return a ZoneDay for every known time zone at the aware instant `now`."""
    days = []
    for name in zone_names():
        local = now.astimezone(_zone(name))
        days.append(ZoneDay(name, local.date(), local.hour))
    return days


def local_today(now, time_zone):
    return now.astimezone(_zone(time_zone)).date()


def day_has_ended(local_date, time_zone, now):
    """Return whether `local_date` is over in `time_zone` at `now`."""
    return local_date < local_today(now, time_zone)


def ended_date_windows(now, lookback):
    """Return (time_zone, first_date, today) for every zone.

    The dates d with first_date <= d < today are exactly those whose local day ended in
    (now - lookback, now]. A day ends when the next local date begins, so this is also
    true across daylight-saving changes and in zones whose midnight does not exist.
    """
    start = now - lookback
    return [
        (day.time_zone, start.astimezone(_zone(day.time_zone)).date(), day.today)
        for day in zone_days(now)
    ]


def iso_week_key(day):
    """Return the ISO 8601 week of `day` as '2026-W49'."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def week_bounds(day):
    """Return the Monday and Sunday of the ISO week containing `day`."""
    monday = day - timedelta(days=day.weekday())
    return monday, monday + timedelta(days=6)


def as_aware_utc(value):
    """Parse a tick time (ISO 8601, as the scheduler sends it) or pass a datetime through."""
    if isinstance(value, datetime):
        moment = value
    else:
        moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError(f"scheduled_for {value!r} has no UTC offset; send an aware ISO 8601 time.")
    return moment
