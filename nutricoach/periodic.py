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
]
