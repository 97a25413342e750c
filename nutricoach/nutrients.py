"""Nutrient amounts shared by meals, food items and summaries.

Every nutrient is a Decimal with two decimal places: energy in kilocalories (kcal),
protein, carbohydrates, fat and fiber in grams. Stored values are never negative; each
model that uses these fields adds the database constraint.
"""

from decimal import ROUND_HALF_UP, Decimal

from django.db import models

NUTRIENTS = ("calories", "protein", "carbs", "fat", "fiber")
ZERO = Decimal("0.00")
CENT = Decimal("0.01")


def nutrient_field(verbose_name, **kwargs):
    return models.DecimalField(verbose_name, max_digits=10, decimal_places=2, default=ZERO, **kwargs)


def quantize(value):
    """Round a number to the stored precision (two decimal places, half up)."""
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


def non_negative_constraints(prefix, fields):
    return [
        models.CheckConstraint(condition=models.Q(**{f"{field}__gte": 0}), name=f"{prefix}_{field}_non_negative")
        for field in fields
    ]


class NutrientTotals(models.Model):
    """Abstract base for rows that carry the five nutrient totals."""

    calories = nutrient_field("energy (kcal)")
    protein = nutrient_field("protein (g)")
    carbs = nutrient_field("carbohydrates (g)")
    fat = nutrient_field("fat (g)")
    fiber = nutrient_field("fiber (g)")

    class Meta:
        abstract = True
