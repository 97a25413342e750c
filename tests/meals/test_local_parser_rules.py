"""Matching rules of the local parser that keep context words and brands out of meals."""

from decimal import Decimal

import pytest

from meals.parsing import NoFoodItemsError
from meals.parsing.local import LocalParser


@pytest.fixture(scope="module")
def parser():
    return LocalParser()


def sources(meal):
    return [item.source.split(": ", 1)[1] for item in meal.items]


def test_meal_context_is_not_a_food(parser):
    meal = parser.parse("For my lunch break, I had a banana.")

    assert sources(meal) == ["Bananas, raw"]
    assert not meal.needs_review


def test_place_after_from_is_not_a_food(parser):
    meal = parser.parse("a cheeseburger from Burger King")

    assert len(meal.items) == 1
    assert sources(meal)[0].startswith("Fast foods, cheeseburger")


def test_ingredient_clause_belongs_to_food(parser):
    meal = parser.parse("a cup of pinto beans mixed with white rice")

    assert [item.name for item in meal.items] == ["pinto beans"]
    assert meal.items[0].unit == "cup"


def test_ingredient_clause_with_amount_is_item(parser):
    meal = parser.parse("a slice of cake topped with a scoop of vanilla ice cream")

    assert [item.unit for item in meal.items] == ["slice", "scoop"]
    assert "ice cream" in meal.items[1].name


def test_diet_drink_matches_low_calorie_entry(parser):
    meal = parser.parse("a 12 fl oz can of diet cola")

    assert "low calorie" in sources(meal)[0]
    assert meal.items[0].carbs < Decimal(2)


def test_soft_drink_matches_carbonated_beverage(parser):
    meal = parser.parse("a 12 fl oz can of soft drink")

    assert "carbonated" in sources(meal)[0].lower()


def test_adjective_between_article_and_unit(parser):
    meal = parser.parse("a comforting can of chicken noodle soup")

    assert meal.items[0].unit == "can"
    assert sources(meal)[0].startswith("Soup, chicken noodle")


def test_cup_of_chips_weighs_as_light_snack(parser):
    meal = parser.parse("a cup of crispy tortilla chips")

    assert Decimal(20) <= meal.items[0].grams <= Decimal(40)


def test_preparation_word_alone_matches_nothing(parser):
    with pytest.raises(NoFoodItemsError):
        parser.parse("a cup of cooked fufu")
