"""Shared validation: types, bounds and review flags."""

from decimal import Decimal

import pytest

from meals.parsing import NoFoodItemsError, SchemaError, ValueOutOfRangeError
from meals.parsing.validation import build_meal

BASE = {
    "name": "rice",
    "quantity": 1,
    "unit": "cup",
    "grams": 158,
    "calories": 205,
    "protein": 4.3,
    "carbs": 44.5,
    "fat": 0.4,
    "fiber": 0.6,
}


def meal_of(**changes):
    return build_meal([dict(BASE, **changes)], parser="test")


def test_valid_item_is_rounded():
    item = meal_of(protein=4.256).items[0]

    assert item.protein == Decimal("4.26")
    assert item.quantity == Decimal("1.000")


@pytest.mark.parametrize("value", ["12", True, None, [1], {"value": 1}])
def test_non_numbers_are_rejected(value):
    with pytest.raises(SchemaError) as caught:
        meal_of(carbs=value)

    assert "carbs" in str(caught.value)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_numbers_are_rejected(value):
    with pytest.raises(ValueOutOfRangeError):
        meal_of(fat=value)


@pytest.mark.parametrize("field", ["grams", "calories", "protein", "carbs", "fat", "fiber"])
def test_negative_values_are_rejected(field):
    with pytest.raises(ValueOutOfRangeError) as caught:
        meal_of(**{field: -1})

    assert field in str(caught.value)
    assert "rice" in str(caught.value)


@pytest.mark.parametrize("quantity", [0, -2, 0.0001])
def test_quantity_must_be_positive(quantity):
    with pytest.raises(ValueOutOfRangeError):
        meal_of(quantity=quantity)


def test_item_grams_bound():
    with pytest.raises(ValueOutOfRangeError) as caught:
        meal_of(grams=6000)

    assert "6000" in str(caught.value)


def test_item_calories_bound():
    with pytest.raises(ValueOutOfRangeError):
        meal_of(grams=1000, calories=5500, fat=600)


def test_energy_denser_than_fat_is_rejected():
    with pytest.raises(ValueOutOfRangeError) as caught:
        meal_of(grams=10, calories=900)

    assert "kcal/g" in str(caught.value)


def test_macro_above_item_weight_is_rejected():
    with pytest.raises(ValueOutOfRangeError) as caught:
        meal_of(grams=50, carbs=80, calories=320)

    assert "carbs" in str(caught.value)


def test_meal_calories_bound():
    item = dict(BASE, grams=1000, calories=4000, carbs=450, protein=100, fat=200 / 9 * 2)
    with pytest.raises(ValueOutOfRangeError) as caught:
        build_meal([item, item, item], parser="test")

    assert "meal total" in str(caught.value)


def test_large_item_needs_review():
    meal = meal_of(grams=2500, calories=3200, carbs=700, protein=60, fat=6)

    assert meal.needs_review is True
    assert len(meal.review_reasons) == 2


def test_energy_mismatch_needs_review():
    meal = meal_of(calories=20)

    assert meal.needs_review is True
    assert "does not match its macros" in meal.review_reasons[0]


def test_alcohol_energy_is_not_flagged():
    wine = {"name": "wine", "quantity": 1, "unit": "glass", "grams": 150, "calories": 125,
            "protein": 0.1, "carbs": 4, "fat": 0, "fiber": 0}

    assert build_meal([wine], parser="test").needs_review is False


def test_count_equal_to_grams_needs_review():
    meal = meal_of(unit="count", quantity=3, grams=3, calories=3.9, protein=0.1, carbs=0.8, fat=0, fiber=0)

    assert meal.needs_review is True
    assert "count" in meal.review_reasons[0]


def test_empty_unit_means_count():
    assert meal_of(unit="").items[0].unit == "count"


def test_missing_name_is_rejected():
    with pytest.raises(SchemaError):
        meal_of(name="  ")


def test_empty_items_are_terminal():
    with pytest.raises(NoFoodItemsError) as caught:
        build_meal([], parser="test", description="a walk in the park")

    assert "a walk in the park" in str(caught.value)


def test_totals_sum_items():
    meal = build_meal([BASE, BASE], parser="test")

    assert meal.totals == {
        "calories": Decimal("410.00"),
        "protein": Decimal("8.60"),
        "carbs": Decimal("89.00"),
        "fat": Decimal("0.80"),
        "fiber": Decimal("1.20"),
    }
