"""The local parser: amounts, units, vague portions and whole descriptions."""

from decimal import Decimal
from fractions import Fraction

import pytest

from meals.parsing import NoFoodItemsError
from meals.parsing.local import LocalParser
from meals.parsing.quantities import normalize_amounts, read_amount, tokenize_words
from nutricoach.jobs.errors import TerminalError


@pytest.fixture(scope="module")
def parser():
    return LocalParser()


def amount_of(text):
    return read_amount(tokenize_words(normalize_amounts(text)))


def single_item(parser, text):
    meal = parser.parse(text)
    assert len(meal.items) == 1, [item.name for item in meal.items]
    return meal.items[0]


@pytest.mark.parametrize(
    ("text", "quantity"),
    [
        ("2 eggs", Fraction(2)),
        ("2.5 cups", Fraction(5, 2)),
        ("½ cup", Fraction(1, 2)),
        ("¾ cup", Fraction(3, 4)),
        ("⅓ cup", Fraction(1, 3)),
        ("2½ cups", Fraction(5, 2)),
        ("2 ½ cups", Fraction(5, 2)),
        ("2 1/2 cups", Fraction(5, 2)),
        ("1 and 1/2 cups", Fraction(3, 2)),
        ("1 and a half cups", Fraction(3, 2)),
        ("one and a half cups", Fraction(3, 2)),
        ("1\u20442 cup", Fraction(1, 2)),
        ("1/2 cup", Fraction(1, 2)),
        ("one egg", Fraction(1)),
        ("twelve grapes", Fraction(12)),
        ("twenty almonds", Fraction(20)),
        ("a dozen eggs", Fraction(12)),
        ("half a dozen eggs", Fraction(6)),
        ("a banana", Fraction(1)),
        ("an apple", Fraction(1)),
        ("half a cup", Fraction(1, 2)),
        ("a half cup", Fraction(1, 2)),
        ("a couple of cookies", Fraction(2)),
        ("a few crackers", Fraction(3)),
        ("2x eggs", Fraction(2)),
        ("3 x bananas", Fraction(3)),
    ],
)
def test_quantity_forms(text, quantity):
    assert amount_of(text).quantity == quantity


def test_multiplier_after_name(parser):
    item = single_item(parser, "eggs x2")

    assert item.quantity == Decimal("2.000")
    assert item.unit == "count"


@pytest.mark.parametrize(
    ("text", "unit", "kind"),
    [
        ("100 g", "g", "mass"),
        ("100g", "g", "mass"),
        ("100 grams", "g", "mass"),
        ("1 kg", "kg", "mass"),
        ("4 oz", "oz", "mass"),
        ("4 ounces", "oz", "mass"),
        ("1 lb", "lb", "mass"),
        ("2 pounds", "lb", "mass"),
        ("250 ml", "ml", "volume"),
        ("1 l", "l", "volume"),
        ("2 cups", "cup", "volume"),
        ("1 tablespoon", "tbsp", "volume"),
        ("1 tbsp", "tbsp", "volume"),
        ("2 teaspoons", "tsp", "volume"),
        ("1 tsp", "tsp", "volume"),
        ("12 fl oz", "fl oz", "volume"),
        ("12 fluid ounces", "fl oz", "volume"),
        ("a glass of", "glass", "volume"),
        ("a mug of", "mug", "volume"),
        ("2 slices of", "slice", "household"),
        ("a piece of", "piece", "household"),
        ("a bowl of", "bowl", "household"),
        ("a handful of", "handful", "household"),
        ("a serving of", "serving", "household"),
        ("a can of", "can", "household"),
        ("a bottle of", "bottle", "household"),
        ("a scoop of", "scoop", "household"),
        ("a plate of", "plate", "household"),
    ],
)
def test_unit_forms(text, unit, kind):
    amount = amount_of(text)

    assert amount.unit == unit
    assert amount.kind == kind


@pytest.mark.parametrize(("text", "size"), [("a small apple", "small"), ("a medium apple", "medium"), ("a large apple", "large")])
def test_size_words(parser, text, size):
    item = single_item(parser, text)

    assert item.unit == size
    assert "Apples" in item.source


def test_sizes_change_weight(parser):
    small = single_item(parser, "a small apple").grams
    medium = single_item(parser, "a medium apple").grams
    large = single_item(parser, "a large apple").grams

    assert small < medium < large


def test_mass_units_convert_to_grams(parser):
    assert single_item(parser, "200g chicken breast").grams == Decimal("200.00")
    assert single_item(parser, "1 kg potatoes").grams == Decimal("1000.00")
    assert single_item(parser, "4 oz salmon").grams == Decimal("113.40")
    assert single_item(parser, "1 lb ground beef").grams == Decimal("453.59")


def test_count_is_not_grams(parser):
    item = single_item(parser, "2 eggs")

    assert item.unit == "count"
    assert item.quantity == Decimal("2.000")
    assert Decimal(70) <= item.grams <= Decimal(120)


def test_number_after_name_with_unit(parser):
    item = single_item(parser, "chicken breast 150 g")

    assert item.grams == Decimal("150.00")


def test_volume_uses_food_density(parser):
    milk = single_item(parser, "1 cup of milk")
    rice = single_item(parser, "1 cup of cooked rice")

    assert Decimal(230) <= milk.grams <= Decimal(260)
    assert Decimal(140) <= rice.grams <= Decimal(210)
    assert milk.estimated is False


def test_spoons_scale_from_cup(parser):
    tablespoon = single_item(parser, "1 tbsp peanut butter").grams
    teaspoon = single_item(parser, "1 tsp peanut butter").grams

    assert Decimal(14) <= tablespoon <= Decimal(18)
    assert teaspoon < tablespoon


def test_slice_uses_usda_portion(parser):
    item = single_item(parser, "2 slices of white bread")

    assert item.unit == "slice"
    assert Decimal(40) <= item.grams <= Decimal(70)
    assert item.estimated is False


@pytest.mark.parametrize("text", ["some rice", "rice", "a bowl of cereal", "a handful of almonds", "a plate of pasta"])
def test_vague_amounts_are_estimated(parser, text):
    item = single_item(parser, text)

    assert item.estimated is True
    assert item.grams > 0


def test_mac_and_cheese_is_one_food(parser):
    item = single_item(parser, "a cup of mac and cheese")

    assert "Macaroni and cheese" in item.source or "macaroni and cheese" in item.source.lower()


def test_and_splits_separate_foods(parser):
    meal = parser.parse("2 eggs and a slice of toast")

    assert len(meal.items) == 2
    assert meal.items[0].name == "eggs"
    assert meal.items[1].unit == "slice"


@pytest.mark.parametrize("text", ["2 eggs, 1 banana", "2 eggs; 1 banana", "2 eggs\n1 banana", "2 eggs plus 1 banana", "2 eggs with 1 banana"])
def test_separators_split_items(parser, text):
    assert len(parser.parse(text).items) == 2


def test_mixed_number_with_and_is_not_split(parser):
    item = single_item(parser, "1 and 1/2 cups of milk")

    assert item.quantity == Decimal("1.500")


def test_breakfast_description(parser):
    meal = parser.parse("For breakfast I had 2 scrambled eggs, a slice of whole wheat toast and a cup of orange juice.")
    totals = meal.totals

    assert len(meal.items) == 3
    assert Decimal(250) <= totals["calories"] <= Decimal(550)
    assert Decimal(25) <= totals["carbs"] <= Decimal(70)
    assert Decimal(12) <= totals["protein"] <= Decimal(30)


def test_lunch_description(parser):
    meal = parser.parse("a medium apple, a banana and a bottle of water")
    totals = meal.totals

    assert len(meal.items) == 3
    assert Decimal(150) <= totals["calories"] <= Decimal(260)
    assert Decimal(40) <= totals["carbs"] <= Decimal(65)
    assert totals["fat"] < Decimal(3)


def test_dinner_description(parser):
    meal = parser.parse("200g grilled chicken breast with 1 cup of rice and a cup of broccoli")
    totals = meal.totals

    assert len(meal.items) == 3
    assert Decimal(400) <= totals["calories"] <= Decimal(800)
    assert Decimal(40) <= totals["protein"] <= Decimal(75)


def test_snack_description(parser):
    meal = parser.parse("a handful of almonds and 1 tbsp of peanut butter")

    assert len(meal.items) == 2
    assert Decimal(200) <= meal.totals["calories"] <= Decimal(350)
    assert meal.items[0].estimated is True


def test_items_carry_usda_source(parser):
    meal = parser.parse("a banana")

    assert meal.parser == "local"
    assert meal.items[0].source.startswith("USDA SR28 ")
    assert meal.totals["calories"] == meal.items[0].calories


def test_no_food_is_terminal(parser):
    with pytest.raises(NoFoodItemsError) as caught:
        parser.parse("went for a long walk")

    assert isinstance(caught.value, TerminalError)
    assert "no food items found in description" in str(caught.value)


def test_empty_description_is_terminal(parser):
    with pytest.raises(NoFoodItemsError):
        parser.parse("   ")


def test_percentage_is_not_an_amount(parser):
    item = single_item(parser, "a cup of 2% milk")

    assert item.quantity == Decimal("1.000")
    assert item.unit == "cup"


def test_unknown_food_with_amount_flags_review(parser):
    meal = parser.parse("2 eggs and 3 cups of zxqv")

    assert len(meal.items) == 1
    assert meal.needs_review is True
    assert any("zxqv" in reason for reason in meal.review_reasons)
