"""Throughput charts for the admin's queue overview, drawn as inline SVG on the server.

The admin loads no JavaScript or stylesheets from outside the project, so the charts
are plain SVG elements with a <title> on each bar as its tooltip.
"""

from dataclasses import dataclass
from datetime import UTC, timedelta

from django.db.models import Count, Q
from django.db.models.functions import TruncHour, TruncMinute
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from nutricoach.jobs.models import ErrorKind, JobAttempt

# A failed attempt records its error kind as its outcome.
FAILED_OUTCOMES = ErrorKind.values

CHART_WIDTH = 720
CHART_HEIGHT = 170
PLOT_LEFT = 36
PLOT_TOP = 10
PLOT_BOTTOM = 24
COMPLETED_COLOUR = "#2e7d4f"
FAILED_COLOUR = "#c0392b"


@dataclass(frozen=True)
class Bucket:
    start: object
    completed: int
    failed: int


@dataclass(frozen=True)
class Series:
    title: str
    buckets: list
    label_every: int
    label_format: str
    step: timedelta


def attempt_series(*, unit, count, queue=None, now=None):
    """Count completed and failed attempts per minute or hour over the last `count` units.

    The newest bucket is the one that contains `now`. Counting attempts rather than jobs
    shows retries as failures the moment they happen, not only when a job dead-letters.
    Raise ValueError for a unit other than "minute" or "hour".
    """
    if unit not in ("minute", "hour"):
        raise ValueError(f"Chart unit must be 'minute' or 'hour', got {unit!r}.")
    now = (now or timezone.now()).astimezone(UTC)
    step = timedelta(minutes=1) if unit == "minute" else timedelta(hours=1)
    truncate = TruncMinute if unit == "minute" else TruncHour
    newest = now.replace(second=0, microsecond=0) if unit == "minute" else now.replace(minute=0, second=0, microsecond=0)
    since = newest - step * (count - 1)

    attempts = JobAttempt.objects.filter(finished_at__gte=since)
    if queue:
        attempts = attempts.filter(queue=queue)
    rows = (
        # Buckets are cut in UTC, so hours line up with `since` in every time zone.
        attempts.annotate(bucket=truncate("finished_at", tzinfo=UTC))
        .values("bucket")
        .annotate(
            completed=Count("id", filter=Q(outcome="completed")),
            failed=Count("id", filter=Q(outcome__in=FAILED_OUTCOMES)),
        )
        .order_by()
    )
    by_start = {row["bucket"]: row for row in rows}

    buckets = []
    for index in range(count):
        start = since + step * index
        row = by_start.get(start, {})
        buckets.append(Bucket(start, row.get("completed", 0), row.get("failed", 0)))
    return buckets


def throughput_series(*, queue=None, now=None):
    """Return the per-minute series of the last hour and the per-hour series of the last day."""
    now = now or timezone.now()
    return [
        Series("Last hour, per minute", attempt_series(unit="minute", count=60, queue=queue, now=now),
               label_every=10, label_format="%H:%M", step=timedelta(minutes=1)),
        Series("Last day, per hour", attempt_series(unit="hour", count=24, queue=queue, now=now),
               label_every=3, label_format="%H:%M", step=timedelta(hours=1)),
    ]


def render_svg(series):
    """Render a series as a stacked bar chart: completed below, failed on top."""
    plot_width = CHART_WIDTH - PLOT_LEFT - 4
    plot_height = CHART_HEIGHT - PLOT_TOP - PLOT_BOTTOM
    peak = max((bucket.completed + bucket.failed for bucket in series.buckets), default=0)
    scale_max = max(peak, 1)
    slot = plot_width / len(series.buckets)
    bar_width = max(1.0, slot * 0.8)
    baseline = PLOT_TOP + plot_height

    bars = []
    labels = []
    for index, bucket in enumerate(series.buckets):
        x = PLOT_LEFT + index * slot + (slot - bar_width) / 2
        local_start = timezone.localtime(bucket.start)
        completed_height = plot_height * bucket.completed / scale_max
        failed_height = plot_height * bucket.failed / scale_max
        tooltip = f"{local_start:%Y-%m-%d %H:%M}: {bucket.completed} completed, {bucket.failed} failed"
        if completed_height > 0:
            bars.append(_rect(x, baseline - completed_height, bar_width, completed_height, COMPLETED_COLOUR, tooltip))
        if failed_height > 0:
            top = baseline - completed_height - failed_height
            bars.append(_rect(x, top, bar_width, failed_height, FAILED_COLOUR, tooltip))
        if index % series.label_every == 0:
            labels.append((f"{x:.1f}", CHART_HEIGHT - 8, local_start.strftime(series.label_format)))

    bar_elements = format_html_join(
        "", '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}</title></rect>', bars
    )
    label_elements = format_html_join("", '<text x="{}" y="{}" font-size="10">{}</text>', labels)
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" class="throughput-chart" role="img" width="{}" height="{}" '
        'viewBox="0 0 {} {}" aria-label="{}: {} completed, {} failed">'
        '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#888"/>'
        '<text x="2" y="{}" font-size="10">{}</text><text x="2" y="{}" font-size="10">0</text>'
        "{}{}</svg>",
        CHART_WIDTH, CHART_HEIGHT, CHART_WIDTH, CHART_HEIGHT, series.title,
        sum(bucket.completed for bucket in series.buckets), sum(bucket.failed for bucket in series.buckets),
        PLOT_LEFT, baseline, CHART_WIDTH - 4, baseline,
        PLOT_TOP + 8, scale_max, baseline,
        bar_elements, label_elements,
    )


def _rect(x, y, width, height, colour, tooltip):
    # format_html escapes its arguments into strings, so numbers are formatted first.
    return (f"{x:.1f}", f"{y:.1f}", f"{width:.1f}", f"{height:.1f}", colour, tooltip)
