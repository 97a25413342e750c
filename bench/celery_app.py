"""A Celery app with one no-op task, the external baseline of the job benchmarks.

The task records the first start and the last finish in Redis so the benchmark can
measure drain time without a result backend.
"""

import os
import time

import redis
from celery import Celery

BROKER_URL = os.environ.get("BENCH_CELERY_BROKER", "redis://127.0.0.1:6379/15")

app = Celery("nutricoach_bench", broker=BROKER_URL)
app.conf.update(task_ignore_result=True, worker_prefetch_multiplier=4, broker_connection_retry_on_startup=True)

_redis = None


def _client():
    global _redis
    if _redis is None:
        _redis = redis.Redis.from_url(BROKER_URL)
    return _redis


@app.task(name="bench.celery_noop")
def celery_noop():
    client = _client()
    now = time.time()
    pipe = client.pipeline(transaction=False)
    pipe.set("bench:first", now, nx=True)
    pipe.set("bench:last", now)
    pipe.incr("bench:done")
    pipe.execute()
