from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from summaries import services
from summaries.models import DailySummary
from tests.factories import UserFactory
from tests.summaries.conftest import add_meals

pytestmark = pytest.mark.django_db

# The four daylight-saving changes of 2026 in the two zones, with one zone without DST
# and one with a quarter-hour offset as controls in the same runs.
DST_DAYS = [
    ("Europe/Berlin", date(2026, 3, 29)),
    ("Europe/Berlin", date(2026, 10, 25)),
    ("America/New_York", date(2026, 3, 8)),
    ("America/New_York", date(2026, 11, 1)),
]


def local_midnight(day, zone):
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(zone)).astimezone(UTC)


@pytest.mark.parametrize(("zone", "change_day"), DST_DAYS)
def test_hourly_runs_summarise_each_date_once(zone, change_day):
    users = [UserFactory(time_zone=zone), UserFactory(time_zone=zone), UserFactory(time_zone="Asia/Kathmandu")]
    first_day = change_day - timedelta(days=2)
    start = local_midnight(first_day, zone)
    # A meal every 50 minutes for five days, so meals fall just before and after each
    # local midnight and inside the skipped or repeated hour.
    eaten = [start + timedelta(minutes=50 * step) for step in range(5 * 24 * 60 // 50)]
    for user in users:
        add_meals(user, eaten)
    expected = sorted(
        {(user.pk, moment.astimezone(ZoneInfo(user.time_zone)).date()) for user in users for moment in eaten}
    )

    summarised_at = {}
    tick = start.replace(minute=5) - timedelta(hours=1)
    while tick < start + timedelta(days=6, hours=2):
        result = services.summaries_summarise_ended_days(now=tick)
        for pair in result.summarised + result.recomputed:
            assert pair not in summarised_at, f"{pair} summarised again at {tick}, first at {summarised_at.get(pair)}"
            summarised_at[pair] = tick
        tick += timedelta(hours=1)

    assert sorted(summarised_at) == expected
    for (user_id, day), at in summarised_at.items():
        zone_of_user = next(user.time_zone for user in users if user.pk == user_id)
        day_end = local_midnight(day + timedelta(days=1), zone_of_user)
        assert day_end <= at < day_end + timedelta(hours=1), f"{user_id} {day} summarised at {at}, day ended {day_end}"
    assert DailySummary.objects.count() == len(expected)
    for user in users:
        counts = dict(DailySummary.objects.filter(user=user).values_list("local_date", "meal_count"))
        for day, count in counts.items():
            in_day = [m for m in eaten if m.astimezone(ZoneInfo(user.time_zone)).date() == day]
            assert count == len(in_day), f"{user.time_zone} {day}"


@pytest.mark.parametrize(("zone", "change_day", "hours"), [
    ("Europe/Berlin", date(2026, 3, 29), 23),
    ("Europe/Berlin", date(2026, 10, 25), 25),
    ("America/New_York", date(2026, 3, 8), 23),
    ("America/New_York", date(2026, 11, 1), 25),
])
def test_dst_day_length_counts_all_meals(zone, change_day, hours):
    user = UserFactory(time_zone=zone)
    start = local_midnight(change_day, zone)
    add_meals(user, [start + timedelta(minutes=30 + 60 * hour) for hour in range(hours)])

    services.summaries_summarise_ended_days(now=start + timedelta(hours=hours, minutes=5))

    assert DailySummary.objects.get(user=user, local_date=change_day).meal_count == hours
