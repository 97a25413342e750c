"""Every periodic job of NutriCoach, in one place.

`manage.py register_schedules` turns this list into Django-Q2 schedules (run it on
deploy; `make run` does). Crons are read in settings.TIME_ZONE, UTC by default. Jobs
that act at a local hour of each user run hourly and pick the users whose local time
has reached that hour.
"""

from nutricoach.jobs.schedules import PeriodicJob

PERIODIC_JOBS = [
    PeriodicJob(
        name="prune-job-history",
        cron="15 3 * * *",
        task="jobs.prune_history",
        queue="maintenance",
        timeout=600,
    ),
]
