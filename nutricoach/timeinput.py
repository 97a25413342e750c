"""Reading client-supplied times the same way on every endpoint.

An aware ISO 8601 datetime is taken as is. A naive one is read in the user's time zone.
A date without a time, a time that does not exist there (a daylight-saving gap) or an
unparseable string is rejected with an error that names the value and the fix.
"""

from datetime import UTC, datetime, timedelta

from django.utils.dateparse import parse_date, parse_datetime

EXAMPLE = "2026-12-04T12:30:00+01:00"
# Earlier times are typing mistakes, and times near year 1 overflow in zone conversions.
EARLIEST_YEAR = 1900


class TimeInputError(ValueError):
    """A client time string that cannot be used; the message explains why and what to send."""


def parse_client_datetime(value, zone, *, field="eaten_at"):
    """Return an aware datetime for `value` read in `zone` (a ZoneInfo); raise TimeInputError."""
    # parse_datetime reads a bare date as midnight, so look for one first.
    try:
        is_date_only = parse_date(value) is not None
    except ValueError:
        is_date_only = False
    if is_date_only:
        raise TimeInputError(f"{field} {value!r} is a date without a time; send a datetime such as {EXAMPLE}.")
    try:
        parsed = parse_datetime(value)
    except ValueError:
        parsed = None
    if parsed is None:
        raise TimeInputError(f"{field} {value!r} is not an ISO 8601 datetime; send one such as {EXAMPLE}.")
    if parsed.year < EARLIEST_YEAR:
        raise TimeInputError(f"{field} {value!r} is before {EARLIEST_YEAR}; send when the meal was eaten.")
    if parsed.tzinfo is not None:
        return parsed

    local = parsed.replace(tzinfo=zone)
    if local.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != parsed:
        raise TimeInputError(
            f"{field} {value!r} does not exist in {zone.key} (the clocks skip it for daylight saving); "
            "send the time with its UTC offset."
        )
    return local


def check_not_future(moment, *, field="eaten_at", now=None, slack=timedelta(hours=1)):
    now = now or datetime.now(UTC)
    if moment > now + slack:
        raise TimeInputError(f"{field} {moment.isoformat()} is in the future; send when the meal was eaten.")
    return moment


def local_date_of(moment, zone):
    return moment.astimezone(zone).date()
