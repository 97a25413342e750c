"""Errors a job handler raises to tell the runtime what to do next.

Any other exception is treated as retryable and recorded as unexpected.
"""


class JobError(Exception):
    """Base class for errors that carry a decision about retrying."""


class RetryableError(JobError):
    """A transient failure: timeouts, connection errors, HTTP 429 and 5xx.

    `retry_after` (seconds), when given, replaces the backoff delay for the next attempt,
    for example from an HTTP Retry-After header.
    """

    def __init__(self, message, *, retry_after=None):
        super().__init__(message)
        self.retry_after = retry_after


class TerminalError(JobError):
    """A failure that another attempt cannot fix; the job goes to the dead letters."""


class RateLimitedError(RetryableError):
    """An upstream rate limit; waits out `retry_after` like any retryable error."""
