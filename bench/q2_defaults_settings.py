"""Settings for the benchmark's bare Django-Q2 baseline at Django-Q2's and Django's defaults.

Only what the benchmark needs differs from the defaults: the cluster's name (so it
serves the queue the benchmark fills), two workers like every other scenario, and
save_limit 0, which keeps every result so the benchmark can count them. The default
save_limit of 250 would also delete an old result on each save, so this baseline is
if anything faster than Django-Q2 out of the box.
"""

from nutricoach.settings import *  # noqa: F403
from nutricoach.settings import DATABASES, REDIS_URL, SILENCED_SYSTEM_CHECKS

# Django's default: a new database connection for every request or task.
DATABASES["default"]["CONN_MAX_AGE"] = 0
DATABASES["default"]["CONN_HEALTH_CHECKS"] = False

Q_CLUSTER = {"name": "maintenance", "workers": 2, "save_limit": 0, "redis": REDIS_URL}
# The job runtime's checks stop a cluster that serves only one queue; this one serves
# bare tasks, not jobs.
SILENCED_SYSTEM_CHECKS = [*SILENCED_SYSTEM_CHECKS, "jobs.E001", "jobs.E002", "jobs.E003", "jobs.E004"]
