"""The period key of each notification kind: what it names and how it is parsed.

- goal_alert and goal_reminder: the user's local date, `YYYY-MM-DD`.
- weekly_report: the ISO week of the user's local dates, `YYYY-Www` (Monday to Sunday).
- operations_alert: `<queue>:<metric>:<YYYY-MM-DDTHH>`, the UTC hour the alert is for,
  so each staff user gets at most one alert per queue and metric per hour.
"""

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from notifications.exceptions import NotificationRequestError
from notifications.models import NotificationKind

ISO_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
OPERATIONS_KEY = re.compile(r"^(?P<queue>[\w.-]+):(?P<metric>[\w.-]+):(?P<hour>\d{4}-\d{2}-\d{2}T\d{2})$")


@dataclass(frozen=True)
class OperationsPeriod:
    queue: str
    metric: str
    hour: datetime


def parse_period_key(kind, period_key):
    """Return the date, week start (a Monday) or OperationsPeriod that `period_key` names.

    Raise NotificationRequestError naming the expected format when it does not parse.
    """
    if kind in (NotificationKind.GOAL_ALERT, NotificationKind.GOAL_REMINDER):
        return _parse_date(kind, period_key)
    if kind == NotificationKind.WEEKLY_REPORT:
        return _parse_week(period_key)
    if kind == NotificationKind.OPERATIONS_ALERT:
        return _parse_operations_key(period_key)
    raise NotificationRequestError(
        f"Unknown notification kind {kind!r}; use one of {', '.join(NotificationKind.values)}."
    )


def week_key(day):
    """Return the weekly_report period key of the ISO week that contains `day`."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def operations_key(*, queue, metric, at):
    """Return the operations_alert period key for `queue`, `metric` and the UTC hour of `at`."""
    return f"{queue}:{metric}:{at.astimezone(UTC):%Y-%m-%dT%H}"


def week_days(monday):
    return [monday + timedelta(days=offset) for offset in range(7)]


def _parse_date(kind, period_key):
    try:
        return date.fromisoformat(period_key)
    except (TypeError, ValueError):
        raise NotificationRequestError(
            f"Invalid period key {period_key!r} for {kind}: use the local date as YYYY-MM-DD."
        ) from None


def _parse_week(period_key):
    match = ISO_WEEK.match(period_key or "")
    try:
        if match is None:
            raise ValueError(period_key)
        return date.fromisocalendar(int(match[1]), int(match[2]), 1)
    except ValueError:
        raise NotificationRequestError(
            f"Invalid period key {period_key!r} for weekly_report: use the ISO week as YYYY-Www, e.g. 2026-W49."
        ) from None


def _parse_operations_key(period_key):
    match = OPERATIONS_KEY.match(period_key or "")
    try:
        if match is None:
            raise ValueError(period_key)
        hour = datetime.strptime(match["hour"], "%Y-%m-%dT%H").replace(tzinfo=UTC)
    except ValueError:
        raise NotificationRequestError(
            f"Invalid period key {period_key!r} for operations_alert: use <queue>:<metric>:<YYYY-MM-DDTHH> "
            "with the UTC hour, e.g. notifications:waiting:2026-12-04T21."
        ) from None
    return OperationsPeriod(queue=match["queue"], metric=match["metric"], hour=hour)
