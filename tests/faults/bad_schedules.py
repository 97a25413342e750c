"""Periodic job declarations with one invalid entry, for the register_schedules tests."""

from nutricoach.jobs.schedules import PeriodicJob

VALID = PeriodicJob("prune history", "15 3 * * *", "maintenance.prune_job_history", "maintenance", timeout=600)

BAD_CRON = [VALID, PeriodicJob("typo", "61 * * * *", "maintenance.prune_job_history", "maintenance", timeout=600)]
UNKNOWN_QUEUE = [VALID, PeriodicJob("lost", "0 * * * *", "maintenance.prune_job_history", "emails", timeout=60)]
UNKNOWN_TASK = [VALID, PeriodicJob("ghost", "0 * * * *", "jobs.does_not_exist", "maintenance", timeout=60)]
