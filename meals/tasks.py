"""The meal-processing queue's job: parse a meal description into food items."""

import logging
import time

from meals import services
from meals.models import Meal
from meals.parsing import get_parser
from nutricoach.jobs.backoff import MEAL_DEFAULT
from nutricoach.jobs.errors import TerminalError
from nutricoach.jobs.registry import job_task

logger = logging.getLogger(__name__)


def _record_failure(job, error):
    services.meal_mark_parse_failed(meal_id=job.payload.get("meal_id"), reason=str(error).splitlines()[0])


@job_task(
    services.PARSE_TASK,
    queue="meal-processing",
    attempts=3,
    backoff=MEAL_DEFAULT,
    on_dead_letter=_record_failure,
)
def parse_meal(ctx, meal_id):
    """Parse a meal's description and replace its items and totals."""
    meal = Meal.objects.filter(pk=meal_id).only("id", "description", "description_hash").first()
    if meal is None:
        raise TerminalError(f"Meal {meal_id} does not exist; it may have been deleted.")
    parser = get_parser()
    ctx.progress(10, f"parsing meal {meal_id} ({len(meal.description)} characters) with the {parser.name} parser")

    started = time.monotonic()
    parsed = parser.parse(meal.description, attempt=ctx.attempt)
    parse_ms = int((time.monotonic() - started) * 1000)
    ctx.progress(50, f"{parser.name} parser returned {len(parsed.items)} items in {parse_ms} ms")

    review_note = "; ".join(parsed.review_reasons)
    ctx.progress(70, f"validated {len(parsed.items)} items" + (f"; needs review: {review_note}" if review_note else ""))

    started = time.monotonic()
    stored = services.meal_store_parse(
        meal_id=meal.id,
        description_hash=meal.description_hash,
        parser=parser.name,
        items=parsed.items,
        needs_review=parsed.needs_review,
        review_note=review_note,
    )
    store_ms = int((time.monotonic() - started) * 1000)
    if stored is None:
        ctx.log(f"meal {meal_id} was deleted or edited during the parse; result discarded")
        return {"meal_id": meal_id, "stored": False}
    ctx.progress(100, f"stored {len(parsed.items)} items in {store_ms} ms")
    return {
        "meal_id": meal_id,
        "stored": True,
        "status": stored.parse_status,
        "parser": parser.name,
        "items": len(parsed.items),
        "calories": str(stored.calories),
    }
