from datetime import date, datetime, timedelta
from decimal import Decimal

from django.http import Http404
from ninja import Path, Router, Schema, Status
from ninja.errors import ValidationError
from pydantic import Field

from nutricoach.schemas import StrictSchema
from summaries import services
from summaries.models import DailySummary, Goal

router = Router(tags=["goals and summaries"])

MAX_SUMMARY_RANGE_DAYS = 366
MAX_ID = 2**63 - 1


class GoalIn(StrictSchema):
    calories: Decimal = Field(gt=0, le=20000, max_digits=10, decimal_places=2, description="kcal per day")
    protein: Decimal = Field(default=Decimal(0), ge=0, le=2000, max_digits=10, decimal_places=2, description="g per day")
    carbs: Decimal = Field(default=Decimal(0), ge=0, le=2000, max_digits=10, decimal_places=2, description="g per day")
    fat: Decimal = Field(default=Decimal(0), ge=0, le=2000, max_digits=10, decimal_places=2, description="g per day")
    activate: bool = True


class GoalOut(Schema):
    id: int
    calories: Decimal
    protein: Decimal
    carbs: Decimal
    fat: Decimal
    is_active: bool
    created_at: datetime
    activated_at: datetime | None


class SummaryOut(Schema):
    local_date: date
    meal_count: int
    calories: Decimal
    protein: Decimal
    carbs: Decimal
    fat: Decimal
    fiber: Decimal
    goal_calories: Decimal | None
    goal_protein: Decimal | None
    goal_carbs: Decimal | None
    goal_fat: Decimal | None
    goal_status: str
    needs_recompute: bool
    computed_at: datetime | None


@router.post("/goals", response={201: GoalOut}, summary="Create a goal")
def create_goal(request, payload: GoalIn):
    """Create a daily goal; it becomes the active goal unless activate is false."""
    fields = payload.dict(exclude={"activate"})
    return Status(201, services.goal_create(user=request.auth, activate=payload.activate, **fields))


@router.get("/goals", response=list[GoalOut], summary="List goals")
def list_goals(request):
    return Goal.objects.filter(user=request.auth)


@router.post("/goals/{goal_id}/activate", response=GoalOut, summary="Activate a goal")
def activate_goal(request, goal_id: int = Path(..., ge=1, le=MAX_ID)):
    goal = Goal.objects.filter(user=request.auth, pk=goal_id).first()
    if goal is None:
        raise Http404(f"No goal {goal_id} for this account.")
    return services.goal_activate(goal=goal)


@router.get("/summaries", response=list[SummaryOut], summary="Daily summaries in a date range")
def list_summaries(request, start: date, end: date):
    """List the caller's daily summaries from start to end, both included (local dates)."""
    if end < start:
        raise ValidationError([{"loc": ("query", "end"), "msg": f"end {end} is before start {start}"}])
    if end - start > timedelta(days=MAX_SUMMARY_RANGE_DAYS - 1):
        raise ValidationError([{
            "loc": ("query", "end"),
            "msg": f"the range {start} to {end} spans more than {MAX_SUMMARY_RANGE_DAYS} days; ask for less",
        }])
    return DailySummary.objects.filter(user=request.auth, local_date__range=(start, end)).order_by("local_date")
