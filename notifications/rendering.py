"""Render a notification's subject, plain text and HTML from the database.

The job payload carries only ids, the period key and a few facts. Every number is read
here when the message is built and shown in the user's energy unit, and every date and
time is shown in the user's time zone. Templates live in templates/notifications/<kind>/ as
subject.txt, body.txt and body.html. The HTML template escapes what it prints; the text
templates turn autoescaping off because plain text needs no entities.
"""

from dataclasses import dataclass
from datetime import UTC, timedelta
from decimal import ROUND_HALF_UP, Decimal
from urllib.parse import urlencode

from django.conf import settings
from django.db.models import Count, Sum
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.models import EnergyUnit
from meals.models import Meal
from notifications.exceptions import NotificationUndeliverable
from notifications.models import NotificationKind
from notifications.periods import parse_period_key, week_days
from summaries.models import DailySummary, Goal, GoalStatus

KJ_PER_KCAL = Decimal("4.184")
WHOLE = Decimal(1)
MACROS = (("protein", "Protein"), ("carbs", "Carbohydrates"), ("fat", "Fat"))


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def render_notification(*, user, kind, period_key, data, now=None):
    """Render the email for one notification as of `now`; raise NotificationUndeliverable if its facts are missing."""
    period = parse_period_key(kind, period_key)
    now = now or timezone.now()
    context = {
        "user": user,
        "greeting_name": user.full_name or user.email.split("@")[0],
        "site_url": _absolute("/"),
        "kind_label": NotificationKind(kind).label,
        **CONTEXT_BUILDERS[kind](user, period, data, now),
    }
    subject = render_to_string(f"notifications/{kind}/subject.txt", context)
    return RenderedEmail(
        # A header cannot span lines, and templates end with a newline.
        subject=" ".join(subject.split()),
        text=render_to_string(f"notifications/{kind}/body.txt", context),
        html=render_to_string(f"notifications/{kind}/body.html", context),
    )


def format_energy(kcal, unit):
    """Format an amount of energy given in kcal as whole kcal or kJ with its unit."""
    if kcal is None:
        return "no value"
    if unit == EnergyUnit.KJ:
        return f"{_whole(kcal * KJ_PER_KCAL):,} kJ"
    return f"{_whole(kcal):,} kcal"


def format_grams(grams):
    return "no value" if grams is None else f"{_whole(grams):,} g"


def format_date(day):
    """Format a date as in "Tuesday 1 December 2026"."""
    return f"{day:%A} {day.day} {day:%B %Y}"


def _whole(value):
    return Decimal(value).quantize(WHOLE, rounding=ROUND_HALF_UP)


def _absolute(path, **query):
    url = settings.SITE_URL.rstrip("/") + path
    return f"{url}?{urlencode(query)}" if query else url


def _summaries_url(start, end):
    return _absolute(reverse("api:list_summaries"), start=start.isoformat(), end=end.isoformat())


def _meals_url(day):
    return _absolute(reverse("api:list_meals"), date=day.isoformat())


def _goal_alert_context(user, day, data, now):
    summary = DailySummary.objects.filter(user=user, local_date=day).first()
    if summary is None:
        raise NotificationUndeliverable(
            f"User {user.id} has no daily summary for {day}; summarise that date before sending its goal alert."
        )
    if summary.goal_calories is None:
        raise NotificationUndeliverable(
            f"The daily summary of user {user.id} for {day} has no goal to compare with; no goal alert to send."
        )

    difference = summary.calories - summary.goal_calories
    rows = [{
        "label": "Energy",
        "eaten": format_energy(summary.calories, user.energy_unit),
        "goal": format_energy(summary.goal_calories, user.energy_unit),
    }]
    for field, label in MACROS:
        rows.append({
            "label": label,
            "eaten": format_grams(getattr(summary, field)),
            "goal": format_grams(getattr(summary, f"goal_{field}")),
        })
    return {
        "date": format_date(day),
        "status": summary.goal_status,
        "status_label": summary.get_goal_status_display(),
        "is_above": difference > 0,
        "difference": format_energy(abs(difference), user.energy_unit),
        "percent": _whole(abs(difference) * 100 / summary.goal_calories),
        "meal_count": summary.meal_count,
        "rows": rows,
        "summary_url": _summaries_url(day, day),
        "meals_url": _meals_url(day),
    }


def _goal_reminder_context(user, day, data, now):
    totals = Meal.objects.active().filter(owner=user, local_date=day).aggregate(
        meal_count=Count("id"), calories=Sum("calories")
    )
    eaten = totals["calories"] or Decimal(0)
    goal = Goal.objects.filter(user=user, is_active=True).first()
    remaining = None if goal is None else goal.calories - eaten
    return {
        "date": format_date(day),
        "meal_count": totals["meal_count"],
        "eaten": format_energy(eaten, user.energy_unit),
        "goal": None if goal is None else format_energy(goal.calories, user.energy_unit),
        "remaining": None if remaining is None else format_energy(abs(remaining), user.energy_unit),
        "is_over": remaining is not None and remaining < 0,
        "meals_url": _meals_url(day),
        "docs_url": _absolute(reverse("api:openapi-view")),
    }


def _weekly_report_context(user, monday, data, now):
    days = week_days(monday)
    # The report may go out before the week is over (on Sunday morning, say), and a day
    # that has not ended yet is not a day without meals.
    today = now.astimezone(user.zone).date()
    summaries = {
        summary.local_date: summary
        for summary in DailySummary.objects.filter(user=user, local_date__range=(days[0], days[-1]))
    }
    rows = []
    for day in days:
        summary = summaries.get(day)
        rows.append({
            "date": format_date(day),
            "logged": summary is not None and summary.meal_count > 0,
            "in_progress": day >= today,
            "eaten": format_energy(summary.calories, user.energy_unit) if summary else None,
            "goal": format_energy(summary.goal_calories, user.energy_unit) if summary else None,
            "status_label": summary.get_goal_status_display() if summary else None,
        })
    logged = [summary for summary in summaries.values() if summary.meal_count > 0]
    average = sum((summary.calories for summary in logged), Decimal(0)) / len(logged) if logged else None
    return {
        "week_start": format_date(days[0]),
        "week_end": format_date(days[-1]),
        "rows": rows,
        "days_logged": len(logged),
        "days_within_goal": sum(1 for summary in logged if summary.goal_status == GoalStatus.WITHIN),
        "average": None if average is None else format_energy(average, user.energy_unit),
        "summary_url": _summaries_url(days[0], days[-1]),
    }


def _operations_alert_context(user, period, data, now):
    start = period.hour.astimezone(user.zone)
    end = (period.hour + timedelta(hours=1)).astimezone(user.zone)
    return {
        "queue": period.queue,
        "metric": period.metric,
        "value": data.get("value"),
        "threshold": data.get("threshold"),
        "summary": data.get("summary", ""),
        "hour": f"{format_date(start.date())}, {start:%H:%M} to {end:%H:%M} {start:%Z}",
        "hour_utc": f"{period.hour.astimezone(UTC):%Y-%m-%d %H:%M} UTC",
        "overview_url": _absolute(reverse("admin:jobs_queueoverview_changelist")),
        "jobs_url": _absolute(reverse("admin:jobs_job_changelist"), queue__exact=period.queue),
        "dead_letters_url": _absolute(
            reverse("admin:jobs_job_changelist"), queue__exact=period.queue, dead_letter="yes"
        ),
    }


CONTEXT_BUILDERS = {
    NotificationKind.GOAL_ALERT: _goal_alert_context,
    NotificationKind.GOAL_REMINDER: _goal_reminder_context,
    NotificationKind.WEEKLY_REPORT: _weekly_report_context,
    NotificationKind.OPERATIONS_ALERT: _operations_alert_context,
}
