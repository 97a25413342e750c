"""The parsed-meal structure, the parser interface and the errors parsers raise.

Both parsers return a `ParsedMeal` built by `meals.parsing.validation`, so the job that
stores a meal gets only checked numbers. Every error is a subclass of the job
runtime's `RetryableError` or `TerminalError`, so the runtime retries or dead-letters
the job without knowing which parser ran.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from nutricoach.jobs.errors import RateLimitedError, RetryableError, TerminalError

# The same names and units as `nutricoach.nutrients.NUTRIENTS`: energy in kcal, the
# rest in grams. That module defines Django models, so it is not imported here.
NUTRIENTS = ("calories", "protein", "carbs", "fat", "fiber")

__all__ = [
    "NUTRIENTS",
    "NoFoodItemsError",
    "OutputTruncatedError",
    "ParseError",
    "ParsedItem",
    "ParsedMeal",
    "Parser",
    "RateLimitedError",
    "RefusalError",
    "RetryableError",
    "SchemaError",
    "TerminalError",
    "UpstreamError",
    "ValueOutOfRangeError",
]


class ParseError(TerminalError):
    """A description or model output that another attempt cannot turn into a meal."""


class NoFoodItemsError(ParseError):
    """The description, or the model's reading of it, contains no food item."""


class SchemaError(ParseError):
    """Model output that is not JSON of the expected shape, after the allowed repairs."""


class ValueOutOfRangeError(ParseError):
    """A number that cannot be true: negative, not a number, or beyond a hard bound."""


class RefusalError(ParseError):
    """The model refused to analyse the description."""


class UpstreamError(TerminalError):
    """The model API rejected the request in a way a retry cannot fix (auth, quota, 4xx)."""


class OutputTruncatedError(RetryableError):
    """The model stopped at the token limit; the next attempt needs a larger budget.

    `next_max_completion_tokens` is the budget the parser uses for `attempt + 1`.
    """

    def __init__(self, message, *, next_max_completion_tokens, retry_after=None):
        super().__init__(message, retry_after=retry_after)
        self.next_max_completion_tokens = next_max_completion_tokens


@dataclass(frozen=True)
class ParsedItem:
    """One food of a meal with its amount and nutrients.

    `quantity` and `unit` are the amount as written ("count" for a bare number of
    pieces); `grams` is its weight. Energy is in kcal and the other nutrients in grams,
    all Decimals rounded to two places and never negative. `estimated` is true when the
    amount was vague and a default portion was used. `source` is the USDA food or the
    model that gave the nutrients.
    """

    name: str
    quantity: Decimal
    unit: str
    grams: Decimal
    calories: Decimal
    protein: Decimal
    carbs: Decimal
    fat: Decimal
    fiber: Decimal
    estimated: bool = False
    source: str = ""


@dataclass
class ParsedMeal:
    """A validated meal: its items, which parser and model produced it, and review flags.

    `needs_review` is true when a value is possible but implausible (for example a
    3,000 kcal item); `review_reasons` lists
the findings, one sentence each.
    """

    items: list[ParsedItem]
    parser: str
    model: str = ""
    needs_review: bool = False
    review_reasons: list[str] = field(default_factory=list)

    @property
    def totals(self) -> dict[str, Decimal]:
        """The five nutrients summed over the items."""
        return {name: sum((getattr(item, name) for item in self.items), Decimal("0.00")) for name in NUTRIENTS}


class Parser:
    """Turns a free-text meal description into a validated `ParsedMeal`.

    `parse` raises `RetryableError` or `TerminalError` subclasses only. `attempt` is the
    job's attempt number, starting at 1; parsers that call a model use it to grow their
    output budget after a truncated answer.
    """

    name = ""

    def parse(self, description: str, attempt: int = 1) -> ParsedMeal:
        raise NotImplementedError
