from decimal import Decimal

import pytest

from tests.factories import DailySummaryFactory, GoalFactory, UserFactory
from tests.notifications.helpers import ALERT_DATE
from tests.notifications.smtp_server import smtp_mailer, smtp_server  # noqa: F401  (fixtures)


@pytest.fixture(autouse=True)
def site_url(settings):
    settings.SITE_URL = "https://coach.example.test"
    settings.DEFAULT_FROM_EMAIL = "NutriCoach <coach@example.test>"


@pytest.fixture
def alert_user(db):
    """A verified user 20% above an energy goal of 2,000 kcal on ALERT_DATE."""
    user = UserFactory(email="ann@example.com", full_name="Ann", time_zone="Europe/Berlin")
    goal = GoalFactory(user=user)
    DailySummaryFactory(
        user=user,
        local_date=ALERT_DATE,
        meal_count=3,
        calories=Decimal("2400.00"),
        protein=Decimal("90.00"),
        carbs=Decimal("300.00"),
        fat=Decimal("80.00"),
        goal=goal,
        goal_calories=goal.calories,
        goal_protein=goal.protein,
        goal_carbs=goal.carbs,
        goal_fat=goal.fat,
        goal_status="above",
    )
    return user
