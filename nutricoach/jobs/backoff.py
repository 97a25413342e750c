"""Retry delays: fixed, exponential, or exponential with random jitter, each capped."""

import random
from dataclasses import asdict, dataclass

FIXED = "fixed"
EXPONENTIAL = "exponential"
EXPONENTIAL_JITTER = "exponential_jitter"
KINDS = (FIXED, EXPONENTIAL, EXPONENTIAL_JITTER)


@dataclass(frozen=True)
class Backoff:
    """A retry policy; `delay`, `cap` and `jitter` are seconds.

    Exponential delays double per failed attempt: delay, 2 * delay, 4 * delay, ...
    Jitter adds a uniform random amount in [0, jitter). The cap bounds the sum.
    """

    kind: str = EXPONENTIAL
    delay: float = 2.0
    cap: float = 300.0
    jitter: float = 0.0

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"Unknown backoff kind {self.kind!r}; use one of {', '.join(KINDS)}.")
        if self.delay < 0 or self.cap < 0 or self.jitter < 0:
            raise ValueError(f"Backoff delay, cap and jitter must not be negative: {self!r}.")

    @classmethod
    def fixed(cls, delay, *, cap=None):
        return cls(FIXED, delay, delay if cap is None else cap)

    @classmethod
    def exponential(cls, delay, *, cap=300.0):
        return cls(EXPONENTIAL, delay, cap)

    @classmethod
    def exponential_jitter(cls, delay, *, jitter=1.0, cap=300.0):
        return cls(EXPONENTIAL_JITTER, delay, cap, jitter)

    @classmethod
    def from_dict(cls, data):
        return cls(**data) if data else cls()

    def to_dict(self):
        return asdict(self)

    def delay_after(self, attempt, *, rng=random):
        """Return the seconds to wait after failed attempt number `attempt` (1-based)."""
        if self.kind == FIXED:
            seconds = self.delay
        else:
            seconds = self.delay * 2 ** (attempt - 1)
        if self.kind == EXPONENTIAL_JITTER:
            seconds += rng.uniform(0, self.jitter)
        return min(seconds, self.cap)


# Meal parsing: 3 attempts, retried after 2 s then 4 s.
MEAL_DEFAULT = Backoff.exponential(2.0, cap=60.0)
# The general policy for other jobs: 5 attempts, 2^n s plus up to 1 s of jitter, at most 30 s.
DEFAULT = Backoff.exponential_jitter(2.0, jitter=1.0, cap=30.0)
DEFAULT_ATTEMPTS = 5
