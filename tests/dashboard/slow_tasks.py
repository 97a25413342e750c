"""A job handler that reports progress in slow steps, so a browser can watch each one.

Worker processes import this module through JOB_EXTRA_TASK_MODULES.
"""

import time

from nutricoach.jobs.registry import job_task

STEP_SECONDS = 1.2


@job_task("dashboard.slow_steps", queue="meal-processing", attempts=1)
def slow_steps(ctx, steps=4):
    for step in range(1, steps + 1):
        time.sleep(STEP_SECONDS)
        ctx.progress(step * 100 // (steps + 1), f"step {step} of {steps} done")
    return {"steps": steps}
