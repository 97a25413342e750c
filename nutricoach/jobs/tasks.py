"""Jobs the job runtime runs on itself."""

from nutricoach.jobs import alerts
from nutricoach.jobs.registry import job_task


@job_task("jobs.check_queue_alerts", queue="maintenance", attempts=2)
def check_queue_alerts(ctx, scheduled_for=None):
    """Alert staff about queues whose oldest waiting job or failure rate passes its threshold."""
    report = alerts.send_queue_alerts()
    ctx.progress(100, f"{len(report['alerts'])} alerts, {report['enqueued']} notifications enqueued")
    return report
