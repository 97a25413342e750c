"""Every periodic job of NutriCoach, in one place.

`manage.py register_schedules` turns this list into Django-Q2 schedules (run it on
deploy; `make run` does). Crons are read in settings.TIME_ZONE, UTC by default. Jobs
that act at a local hour of each user run hourly and pick the users whose local time
has reached that hour.
"""

from nutricoach.jobs.schedules import PeriodicJob

PERIODIC_JOBS = [
    # Nightly maintenance at 03:00 in settings.TIME_ZONE (UTC unless set). Each job does a
    # bounded pass under its own lock and chains follow-up jobs while rows remain.
    PeriodicJob(
        name="prune-job-history",
        cron="0 3 * * *",
        task="maintenance.prune_job_history",
        queue="maintenance",
        timeout=600,
    ),
    PeriodicJob(
        name="clear-expired-sessions",
        cron="0 3 * * *",
        task="maintenance.clear_expired_sessions",
        queue="maintenance",
        timeout=600,
    ),
    PeriodicJob(
        name="clean-temp-files",
        cron="0 3 * * *",
        task="maintenance.clean_temp_files",
        queue="maintenance",
        timeout=600,
    ),
    PeriodicJob(
        name="archive-old-meals",
        cron="0 3 * * *",
        task="maintenance.archive_old_meals",
        queue="maintenance",
        timeout=600,
    ),
    PeriodicJob(
        name="check-queue-alerts",
        cron="*/5 * * * *",
        task="jobs.check_queue_alerts",
        queue="maintenance",
        timeout=120,
    ),
    # Data aggregation. The scheduler cluster (settings.JOB_SCHEDULER_QUEUE) fires these
    # ticks, and the jobs run on the data-aggregation cluster. Crons are UTC: each job
    # runs hourly and works out, per IANA time zone, which local date or hour has come.
    # Missed ticks are not replayed, so each run also covers what earlier ticks would
    # have done. Summaries take every day that ended in the last 48 hours; reminders and
    # reports take the rest of the same local day. Minute 5 gives requests sent just
    # before a local midnight time to commit. Zones with :30 and :45 offsets wait up to
    # 35 minutes.
    PeriodicJob(
        name="summarise-ended-days",
        cron="5 * * * *",
        task="summaries.summarise_ended_days",
        queue="data-aggregation",
        timeout=600,
    ),
    PeriodicJob(
        name="check-user-goals",
        cron="10 * * * *",
        task="summaries.check_user_goals",
        queue="data-aggregation",
        timeout=600,
    ),
    # Sunday 09:00 to midnight local falls between Saturday 19:00 UTC (UTC+14) and
    # Monday 12:00 UTC (UTC-12), so the job only runs Saturday to Monday UTC.
    PeriodicJob(
        name="send-weekly-reports",
        cron="15 * * * 6,0,1",
        task="summaries.send_weekly_reports",
        queue="data-aggregation",
        timeout=600,
    ),
]
