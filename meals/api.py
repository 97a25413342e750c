from datetime import date, datetime
from decimal import Decimal
from uuid import UUID

from django.http import Http404
from ninja import Field, Path, Router, Schema, Status
from ninja.conf import settings as ninja_settings
from ninja.errors import ValidationError
from ninja.pagination import LimitOffsetPagination, paginate
from pydantic import field_validator

from meals import services
from meals.models import Meal
from nutricoach import timeinput
from nutricoach.schemas import StrictSchema, clean_text

router = Router(tags=["meals"])

DESCRIPTION_MAX_LENGTH = 2000
MAX_ID = 2**63 - 1


class MealPagination(LimitOffsetPagination):
    """Limit and offset bounded to a 64-bit integer, so a larger value gets 422, not a database error."""

    class Input(Schema):
        limit: int = Field(ninja_settings.PAGINATION_PER_PAGE, ge=1, le=MAX_ID)
        offset: int = Field(0, ge=0, le=MAX_ID)


class MealParseIn(StrictSchema):
    description: str
    meal_name: str | None = None
    eaten_at: str | None = None

    @field_validator("description")
    @classmethod
    def check_description(cls, value):
        return clean_text(value, field="description", min_length=1, max_length=DESCRIPTION_MAX_LENGTH)

    @field_validator("meal_name")
    @classmethod
    def check_meal_name(cls, value):
        if value is None:
            return value
        return clean_text(value, field="meal_name", min_length=0, max_length=200)


class MealParseAccepted(Schema):
    meal_id: int
    job_id: UUID
    status: str
    job_url: str
    meal_url: str


class FoodItemOut(Schema):
    name: str
    quantity: Decimal
    unit: str
    grams: Decimal
    calories: Decimal
    protein: Decimal
    carbs: Decimal
    fat: Decimal
    fiber: Decimal
    estimated: bool


class MealOut(Schema):
    id: int
    name: str
    description: str
    eaten_at: datetime
    local_date: date
    parse_status: str
    parser: str
    parse_error: str
    job_id: UUID | None
    calories: Decimal
    protein: Decimal
    carbs: Decimal
    fat: Decimal
    fiber: Decimal
    items: list[FoodItemOut]
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_job_id(meal):
        return meal.parse_job_id

    @staticmethod
    def resolve_items(meal):
        return list(meal.items.all())


def invalid(field, message):
    return ValidationError([{"loc": ("body", "payload", field), "msg": message, "type": "value_error"}])


def read_eaten_at(value, user):
    """Return the aware time a meal was eaten, or raise a 422 naming the value."""
    if value is None:
        return None
    try:
        return timeinput.check_not_future(timeinput.parse_client_datetime(value, user.zone))
    except timeinput.TimeInputError as exc:
        raise invalid("eaten_at", str(exc)) from None


@router.post("/parse", response={202: MealParseAccepted}, summary="Submit a meal for parsing")
def parse_meal(request, payload: MealParseIn):
    """Store a meal description and enqueue its parsing; poll the job for progress."""
    user = request.auth
    eaten_at = read_eaten_at(payload.eaten_at, user)
    meal, job = services.meal_create_for_parsing(
        owner=user, description=payload.description, name=payload.meal_name or "", eaten_at=eaten_at
    )
    return Status(202, {
        "meal_id": meal.id,
        "job_id": job.id,
        "status": job.state,
        "job_url": f"/api/jobs/{job.id}",
        "meal_url": f"/api/meals/{meal.id}",
    })


@router.get("", response=list[MealOut], summary="List meals")
@paginate(MealPagination)
def list_meals(request, date: date | None = None):
    """List the caller's meals, newest first, optionally of one local date."""
    meals = Meal.objects.active().filter(owner=request.auth).prefetch_related("items")
    if date is not None:
        meals = meals.filter(local_date=date)
    return meals


@router.get("/{meal_id}", response=MealOut, summary="Get a meal")
def get_meal(request, meal_id: int = Path(..., ge=1, le=MAX_ID)):
    meal = Meal.objects.filter(owner=request.auth, pk=meal_id).prefetch_related("items").first()
    if meal is None:
        raise Http404(f"No meal {meal_id} for this account.")
    return meal
