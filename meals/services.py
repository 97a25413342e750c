"""Writes on meals: create a meal for parsing, store a parse result, record a failure."""

import logging
import uuid

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from meals.exceptions import MealNotFoundError, ParseSupersededError, StaleParseError
from meals.models import FoodItem, Meal, ParseStatus
from nutricoach import timeinput
from nutricoach.jobs import services as jobs
from nutricoach.nutrients import NUTRIENTS, ZERO, quantize

logger = logging.getLogger(__name__)

PARSE_TASK = "meals.parse_meal"


def parse_is_rate_limited():
    """Return whether parse jobs count against the meal queue's rate limit.

    The limit protects the LLM account; the local parser has no such limit.
    """
    return bool(settings.OPENAI_API_KEY) or settings.JOB_RATE_LIMIT_LOCAL_PARSER


@transaction.atomic
def meal_create_for_parsing(*, owner, description, name="", eaten_at=None, priority=None):
    """Create a meal and enqueue its parse job in one transaction; return (meal, job)."""
    eaten_at = eaten_at or timezone.now()
    # The job id is chosen first so the meal row is written once: the foreign key is
    # checked at commit, after the job row exists.
    job_id = uuid.uuid4()
    meal = Meal.objects.create(
        owner=owner,
        name=name,
        description=description,
        eaten_at=eaten_at,
        local_date=timeinput.local_date_of(eaten_at, owner.zone),
        parse_job_id=job_id,
    )
    job = jobs.enqueue(
        PARSE_TASK,
        {"meal_id": meal.id},
        owner=owner,
        priority=priority,
        rate_limited=parse_is_rate_limited(),
        job_id=job_id,
    ).job
    return meal, job


def meal_reparse(*, meal):
    """Enqueue a new parse of an existing meal; return the job."""
    with transaction.atomic():
        job = jobs.enqueue(PARSE_TASK, {"meal_id": meal.id}, owner=meal.owner, rate_limited=parse_is_rate_limited()).job
        Meal.objects.filter(pk=meal.pk).update(parse_job=job, parse_status=ParseStatus.PENDING, parse_error="")
    return job


def _lock_meal_for_job(*, meal_id, job_id):
    """Lock and return the meal a parse job works on.

    Raise MealNotFoundError when the meal is gone, and ParseSupersededError when a newer
    parse job owns it. A meal whose parse job was never recorded (parse_job is null)
    belongs to any job.
    """
    meal = Meal.objects.select_for_update().filter(pk=meal_id).first()
    if meal is None:
        raise MealNotFoundError(f"meal {meal_id} does not exist; it may have been deleted")
    if job_id is not None and meal.parse_job_id is not None and str(meal.parse_job_id) != str(job_id):
        raise ParseSupersededError(f"meal {meal_id} is now parsed by job {meal.parse_job_id}, not job {job_id}")
    return meal


@transaction.atomic
def meal_store_parse(*, meal_id, job_id=None, description_hash, parser, items, needs_review=False, review_note=""):
    """Replace the meal's items and totals with a parse result, all or nothing.

    The meal row is locked while its items are replaced, so a retry or a second
    delivery never leaves duplicate items, and the totals are the sums of the stored
    (rounded) items. Raise MealNotFoundError, ParseSupersededError, or StaleParseError
    when the description changed since the parse began; nothing is written then.
    """
    meal = _lock_meal_for_job(meal_id=meal_id, job_id=job_id)
    if meal.description_hash != description_hash:
        raise StaleParseError(f"the description of meal {meal_id} changed during the parse")

    meal.items.all().delete()
    rows = []
    for position, item in enumerate(items):
        rows.append(FoodItem(
            meal=meal,
            position=position,
            name=item.name[:200],
            quantity=item.quantity,
            unit=item.unit[:32],
            grams=quantize(item.grams),
            estimated=item.estimated,
            source=(item.source or "")[:200],
            **{nutrient: quantize(getattr(item, nutrient)) for nutrient in NUTRIENTS},
        ))
    FoodItem.objects.bulk_create(rows)

    for nutrient in NUTRIENTS:
        setattr(meal, nutrient, sum((getattr(row, nutrient) for row in rows), ZERO))
    meal.parse_status = ParseStatus.NEEDS_REVIEW if needs_review else ParseStatus.PARSED
    meal.parse_error = review_note if needs_review else ""
    meal.parser = parser
    meal.parsed_at = timezone.now()
    meal.save()
    return meal


@transaction.atomic
def meal_mark_parse_failed(*, meal_id, reason, job_id=None, parser=""):
    """Record a failed parse: no items, zero totals and the reason the API shows.

    Return the meal, or None when the meal is gone or a newer parse job owns it.
    """
    try:
        meal = _lock_meal_for_job(meal_id=meal_id, job_id=job_id)
    except (MealNotFoundError, ParseSupersededError) as exc:
        logger.info("parse failure of job %s not recorded: %s", job_id, exc)
        return None

    meal.items.all().delete()
    for nutrient in NUTRIENTS:
        setattr(meal, nutrient, ZERO)
    meal.parse_status = ParseStatus.FAILED
    meal.parse_error = reason[:2000]
    meal.parser = parser or meal.parser
    meal.parsed_at = None
    meal.save()
    logger.warning("meal %s parse failed: job=%s reason=%s", meal_id, job_id, reason[:200])
    return meal
