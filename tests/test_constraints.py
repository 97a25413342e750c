from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from tests.factories import (
    DailySummaryFactory,
    FoodItemFactory,
    GoalFactory,
    MealFactory,
    NotificationLogFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def assert_rejected(factory, **fields):
    with pytest.raises(IntegrityError), transaction.atomic():
        factory(**fields)


def test_one_active_goal_per_user():
    user = UserFactory()
    GoalFactory(user=user, is_active=True)

    assert_rejected(GoalFactory, user=user, is_active=True)
    GoalFactory(user=user, is_active=False)


def test_goal_calories_must_be_positive():
    assert_rejected(GoalFactory, calories=Decimal("0"))


@pytest.mark.parametrize("field", ["calories", "protein", "carbs", "fat", "fiber"])
def test_meal_nutrients_non_negative(field):
    assert_rejected(MealFactory, **{field: Decimal("-0.01")})


@pytest.mark.parametrize("field", ["calories", "protein", "carbs", "fat", "fiber", "grams"])
def test_food_item_values_non_negative(field):
    assert_rejected(FoodItemFactory, **{field: Decimal("-1")})


def test_food_item_quantity_positive():
    assert_rejected(FoodItemFactory, quantity=Decimal("0"))


def test_daily_summary_unique_per_user_and_date():
    summary = DailySummaryFactory()

    assert_rejected(DailySummaryFactory, user=summary.user, local_date=summary.local_date)


def test_daily_summary_nutrients_non_negative():
    assert_rejected(DailySummaryFactory, calories=Decimal("-1"))


def test_notification_log_unique_per_period():
    log = NotificationLogFactory()

    assert_rejected(NotificationLogFactory, user=log.user, kind=log.kind, period_key=log.period_key)


def test_user_email_unique():
    UserFactory(email="a@example.com")

    assert_rejected(UserFactory, email="a@example.com")
