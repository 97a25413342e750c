from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import factory

from accounts.models import ApiToken, User, hash_token
from meals.models import FoodItem, Meal
from notifications.models import NotificationLog
from nutricoach.jobs.models import Job
from summaries.models import DailySummary, Goal


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    time_zone = "UTC"
    email_verified = True
    password = factory.django.Password("correct horse battery staple")


class ApiTokenFactory(factory.django.DjangoModelFactory):
    """A token whose raw value is available as `token.raw` after creation."""

    class Meta:
        model = ApiToken

    user = factory.SubFactory(UserFactory)
    name = "test token"
    raw = factory.Sequence(lambda n: f"nc_test_token_{n:06d}_abcdefghijklmnopqrstuvwxyz")
    key_hash = factory.LazyAttribute(lambda token: hash_token(token.raw))
    key_hint = factory.LazyAttribute(lambda token: token.raw[:8])

    @classmethod
    def _create(cls, model_class, *args, raw, **kwargs):
        token = super()._create(model_class, *args, **kwargs)
        token.raw = raw
        return token


class MealFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Meal

    owner = factory.SubFactory(UserFactory)
    description = "2 eggs and a slice of toast"
    eaten_at = factory.LazyFunction(lambda: datetime(2026, 12, 1, 12, 0, tzinfo=UTC))
    local_date = factory.LazyAttribute(lambda meal: meal.eaten_at.astimezone(meal.owner.zone).date())
    calories = Decimal("250.00")
    protein = Decimal("15.00")
    carbs = Decimal("15.00")
    fat = Decimal("12.00")
    fiber = Decimal("1.00")


class FoodItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FoodItem

    meal = factory.SubFactory(MealFactory)
    name = "egg"
    quantity = Decimal("2")
    unit = "count"
    grams = Decimal("100.00")
    calories = Decimal("143.00")
    protein = Decimal("12.60")
    carbs = Decimal("0.70")
    fat = Decimal("9.50")
    fiber = Decimal("0.00")


class GoalFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Goal

    user = factory.SubFactory(UserFactory)
    calories = Decimal("2000.00")
    protein = Decimal("100.00")
    carbs = Decimal("250.00")
    fat = Decimal("70.00")
    is_active = True


class DailySummaryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DailySummary

    user = factory.SubFactory(UserFactory)
    local_date = factory.Sequence(lambda n: date(2026, 1, 1) + timedelta(days=n))
    meal_count = 1


class NotificationLogFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = NotificationLog

    user = factory.SubFactory(UserFactory)
    kind = "goal_alert"
    period_key = factory.Sequence(lambda n: f"2026-01-{(n % 28) + 1:02d}-{n}")


class JobFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Job

    queue = "maintenance"
    task = "tests.noop"
    run_at = factory.LazyFunction(lambda: datetime.now(UTC))
    max_attempts = 3
