"""The meal-processing queue's job: parse a meal description into food items."""

import logging
import time

from meals import services
from meals.exceptions import MealNotFoundError, ParseSupersededError, StaleParseError
from meals.models import Meal
from meals.parsing import get_parser
from nutricoach.jobs.backoff import MEAL_DEFAULT
from nutricoach.jobs.errors import RetryableError, TerminalError
from nutricoach.jobs.registry import job_task

logger = logging.getLogger(__name__)

# Each edit of the description during a parse costs one more parse in the same attempt.
# Past this many parses the attempt ends with a retryable error.
MAX_PARSES_PER_ATTEMPT = 3


def _record_failure(job, error):
    services.meal_mark_parse_failed(
        meal_id=job.payload.get("meal_id"),
        job_id=job.id,
        reason=str(error).splitlines()[0],
        parser=get_parser().name,
    )


def _ms_since(started):
    return int((time.monotonic() - started) * 1000)


@job_task(
    services.PARSE_TASK,
    queue="meal-processing",
    attempts=3,
    backoff=MEAL_DEFAULT,
    on_dead_letter=_record_failure,
)
def parse_meal(ctx, meal_id):
    """Parse a meal's description and replace its items and totals.

    Raise TerminalError when the meal does not exist. When the description was edited
    during the parse, the stale result is discarded and the new description parsed.
    A meal that a newer parse job owns, or that was deleted during the parse, is left alone.
    """
    parser = get_parser()
    for _ in range(MAX_PARSES_PER_ATTEMPT):
        started = time.monotonic()
        meal = Meal.objects.filter(pk=meal_id).only("id", "description", "description_hash", "parse_job_id").first()
        if meal is None:
            raise TerminalError(f"Meal {meal_id} does not exist; it may have been deleted.")
        if meal.parse_job_id is not None and str(meal.parse_job_id) != str(ctx.job.id):
            ctx.log(f"meal {meal_id} is parsed by the newer job {meal.parse_job_id}; nothing to do")
            return {"meal_id": meal_id, "stored": False, "reason": "superseded"}
        ctx.progress(
            10,
            f"loaded meal {meal_id} ({len(meal.description)} characters) in {_ms_since(started)} ms; "
            f"parsing with the {parser.name} parser",
        )

        started = time.monotonic()
        parsed = parser.parse(meal.description, attempt=ctx.attempt)
        ctx.progress(50, f"{parser.name} parser returned {len(parsed.items)} items in {_ms_since(started)} ms")

        started = time.monotonic()
        totals = parsed.totals
        review_note = "; ".join(parsed.review_reasons)
        ctx.progress(
            70,
            f"checked {len(parsed.items)} items in {_ms_since(started)} ms: {totals['calories']} kcal, "
            f"{totals['carbs']} g carbs" + (f"; needs review: {review_note}" if review_note else ""),
        )

        started = time.monotonic()
        try:
            stored = services.meal_store_parse(
                meal_id=meal.id,
                job_id=ctx.job.id,
                description_hash=meal.description_hash,
                parser=parser.name,
                items=parsed.items,
                needs_review=parsed.needs_review,
                review_note=review_note,
            )
        except StaleParseError:
            ctx.log(f"the description of meal {meal_id} changed during the parse; result discarded, parsing again")
            continue
        except (MealNotFoundError, ParseSupersededError) as exc:
            ctx.log(f"result discarded: {exc}")
            return {"meal_id": meal_id, "stored": False, "reason": str(exc)}
        ctx.progress(100, f"stored {len(parsed.items)} items in {_ms_since(started)} ms")
        return {
            "meal_id": meal_id,
            "stored": True,
            "status": stored.parse_status,
            "parser": parser.name,
            "items": len(parsed.items),
            "calories": str(stored.calories),
            "carbs": str(stored.carbs),
        }

    raise RetryableError(
        f"the description of meal {meal_id} changed {MAX_PARSES_PER_ATTEMPT} times during one attempt; retrying later"
    )
