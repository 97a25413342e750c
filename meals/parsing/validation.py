"""Checks shared by both parsers: types, signs, bounds and energy consistency.

Hard-impossible values (a string for a number, a negative amount, 6 kg of one food,
more fat than the food weighs) raise `ValueOutOfRangeError` or `SchemaError`, naming
the item, field and value. Both are terminal, because another attempt with the same
input cannot fix them for the local parser and rarely does for the model. Possible but implausible values
(a 3,000 kcal item, energy that disagrees with the macros) are kept and flag the meal
for review.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal

from .base import NUTRIENTS, NoFoodItemsError, ParsedItem, ParsedMeal, ParseError, SchemaError, ValueOutOfRangeError

CENT = Decimal("0.01")
MILLI = Decimal("0.001")

# Field sizes of meals.models.FoodItem.
MAX_NAME_LENGTH = 200
MAX_UNIT_LENGTH = 32
MAX_SOURCE_LENGTH = 200

MAX_DESCRIPTION_LENGTH = 5_000
MAX_ITEMS = 100

# Hard bounds: beyond these a value is an error, not a meal.
MAX_QUANTITY = Decimal(10_000)
MAX_ITEM_GRAMS = Decimal(5_000)
MAX_ITEM_CALORIES = Decimal(5_000)
MAX_MEAL_CALORIES = Decimal(10_000)
# Pure fat has 9 kcal/g, so no food is denser; the slack covers rounding.
MAX_KCAL_PER_GRAM = Decimal("9.9")
ENERGY_DENSITY_SLACK_KCAL = Decimal(5)
# No macro may exceed the item's weight, and protein + carbs + fat together may exceed
# it only by rounding. Fiber is left out of the sum because USDA counts it in carbs.
MACRO_WEIGHT_FACTOR = Decimal("1.05")
MACRO_WEIGHT_SLACK_GRAMS = Decimal(1)

# Review bounds: possible, but worth a human look.
REVIEW_ITEM_GRAMS = Decimal(2_000)
REVIEW_ITEM_CALORIES = Decimal(2_000)
REVIEW_MEAL_CALORIES = Decimal(4_000)
# Energy is compared with 4 kcal/g protein and carbs and 9 kcal/g fat. USDA uses
# food-specific Atwater factors, so the tolerance is loose: 30% plus 20 kcal.
ENERGY_TOLERANCE_FACTOR = Decimal("0.30")
ENERGY_TOLERANCE_KCAL = Decimal(20)
# Alcohol has 7 kcal/g and is not a macro. Drinks hold at most about 40% alcohol by
# weight, so energy above the macros may reach 2.8 kcal per gram of the item's weight
# that is not protein, carbs, fat or fiber.
ALCOHOL_KCAL_PER_OTHER_GRAM = Decimal("2.8")


def quantize(value: Decimal, step: Decimal = CENT) -> Decimal:
    """Round to `step` (two places by default), half up, like the stored fields."""
    return value.quantize(step, rounding=ROUND_HALF_UP)


def to_decimal(value, *, label: str, field: str) -> Decimal:
    """Convert a JSON number to Decimal, raising for strings, bools, NaN and infinity."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise SchemaError(f"{label}: {field} must be a number, got {value!r}")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueOutOfRangeError(f"{label}: {field} must be a finite number, got {value!r}")
        return Decimal(repr(value))
    if isinstance(value, Decimal) and not value.is_finite():
        raise ValueOutOfRangeError(f"{label}: {field} must be a finite number, got {value!r}")
    return Decimal(value)


def validate_description(description) -> str:
    """Return the stripped description, raising ParseError when empty or too long."""
    if not isinstance(description, str):
        raise ParseError(f"meal description must be text, got {type(description).__name__}")
    text = description.strip()
    if not text:
        raise NoFoodItemsError("no food items found in description: it is empty")
    if len(text) > MAX_DESCRIPTION_LENGTH:
        raise ParseError(
            f"meal description is {len(text)} characters long; the maximum is {MAX_DESCRIPTION_LENGTH}"
        )
    return text


def _text_field(value, *, label: str, field: str, max_length: int, default: str | None = None) -> str:
    if value is None and default is not None:
        return default
    if not isinstance(value, str):
        raise SchemaError(f"{label}: {field} must be a string, got {value!r}")
    text = " ".join(value.split())
    if not text:
        if default is not None:
            return default
        raise SchemaError(f"{label}: {field} is empty")
    return text[:max_length]


def build_item(raw: dict, *, position: int, source: str = "", estimated: bool = False) -> tuple[ParsedItem, list[str]]:
    """Validate one item's fields and return the item with its review reasons.

    `raw` contains name, quantity, unit, grams and the five nutrients; `position` counts
    from 1 and names the item in messages.
    """
    label = f"item {position}"
    name = _text_field(raw.get("name"), label=label, field="name", max_length=MAX_NAME_LENGTH)
    label = f"item {position} ({name!r})"
    unit = _text_field(raw.get("unit"), label=label, field="unit", max_length=MAX_UNIT_LENGTH, default="count").lower()

    quantity = quantize(to_decimal(raw.get("quantity"), label=label, field="quantity"), MILLI)
    if quantity <= 0:
        raise ValueOutOfRangeError(f"{label}: quantity is {raw.get('quantity')!r}, but must be greater than zero")
    if quantity > MAX_QUANTITY:
        raise ValueOutOfRangeError(f"{label}: quantity is {quantity}, above the maximum of {MAX_QUANTITY}")

    values = {}
    for field in ("grams", *NUTRIENTS):
        value = quantize(to_decimal(raw.get(field), label=label, field=field))
        if value < 0:
            raise ValueOutOfRangeError(f"{label}: {field} is {value}, but must be zero or more")
        values[field] = value

    _check_item_bounds(label, values)
    reasons = _item_review_reasons(label, quantity, unit, values)
    item = ParsedItem(
        name=name,
        quantity=quantity,
        unit=unit,
        estimated=bool(estimated),
        source=(source or "")[:MAX_SOURCE_LENGTH],
        **values,
    )
    return item, reasons


def _check_item_bounds(label: str, values: dict[str, Decimal]) -> None:
    grams = values["grams"]
    calories = values["calories"]
    if grams > MAX_ITEM_GRAMS:
        raise ValueOutOfRangeError(f"{label}: grams is {grams}, above the maximum of {MAX_ITEM_GRAMS} per item")
    if calories > MAX_ITEM_CALORIES:
        raise ValueOutOfRangeError(
            f"{label}: calories is {calories}, above the maximum of {MAX_ITEM_CALORIES} kcal per item"
        )
    max_calories = grams * MAX_KCAL_PER_GRAM + ENERGY_DENSITY_SLACK_KCAL
    if calories > max_calories:
        raise ValueOutOfRangeError(
            f"{label}: calories is {calories} for {grams} g, more than {MAX_KCAL_PER_GRAM} kcal/g, "
            "which no food reaches"
        )
    max_macro = grams * MACRO_WEIGHT_FACTOR + MACRO_WEIGHT_SLACK_GRAMS
    for field in ("protein", "carbs", "fat", "fiber"):
        if values[field] > max_macro:
            raise ValueOutOfRangeError(f"{label}: {field} is {values[field]} g, more than the item's {grams} g")
    macro_sum = values["protein"] + values["carbs"] + values["fat"]
    if macro_sum > max_macro:
        raise ValueOutOfRangeError(
            f"{label}: protein, carbs and fat add up to {macro_sum} g, more than the item's {grams} g"
        )


def _item_review_reasons(label: str, quantity: Decimal, unit: str, values: dict[str, Decimal]) -> list[str]:
    reasons = []
    grams = values["grams"]
    calories = values["calories"]
    if grams > REVIEW_ITEM_GRAMS:
        reasons.append(f"{label}: {grams} g is an unusually large amount")
    if calories > REVIEW_ITEM_CALORIES:
        reasons.append(f"{label}: {calories} kcal is unusually high for one item")

    macro_kcal = 4 * values["protein"] + 4 * values["carbs"] + 9 * values["fat"]
    tolerance = macro_kcal * ENERGY_TOLERANCE_FACTOR + ENERGY_TOLERANCE_KCAL
    other_grams = max(grams - values["protein"] - values["carbs"] - values["fat"] - values["fiber"], Decimal(0))
    alcohol_allowance = other_grams * ALCOHOL_KCAL_PER_OTHER_GRAM
    if calories < macro_kcal - tolerance or calories > macro_kcal + tolerance + alcohol_allowance:
        reasons.append(
            f"{label}: {calories} kcal does not match its macros, which give about {quantize(macro_kcal)} kcal"
        )
    if unit == "count" and quantity >= 2 and grams == quantity:
        reasons.append(f"{label}: the weight equals the piece count ({quantity}); a count may have been read as grams")
    return reasons


def build_meal(raw_items: list[dict], *, parser: str, model: str = "", description: str = "") -> ParsedMeal:
    """Validate every item and the meal totals, and return the ParsedMeal.

    Each raw item is a dict of the item fields, optionally with `estimated` and
    `source`. Raises NoFoodItemsError for an empty list.
    """
    if not raw_items:
        excerpt = " ".join(description.split())[:80]
        raise NoFoodItemsError(f"no food items found in description {excerpt!r}")
    if len(raw_items) > MAX_ITEMS:
        raise ValueOutOfRangeError(f"{len(raw_items)} food items; the maximum per meal is {MAX_ITEMS}")

    items = []
    reasons = []
    for position, raw in enumerate(raw_items, start=1):
        if not isinstance(raw, dict):
            raise SchemaError(f"item {position} must be an object, got {raw!r}")
        item, item_reasons = build_item(
            raw,
            position=position,
            source=raw.get("source") or model,
            estimated=raw.get("estimated", False),
        )
        items.append(item)
        reasons.extend(item_reasons)

    meal = ParsedMeal(items=items, parser=parser, model=model)
    total_calories = meal.totals["calories"]
    if total_calories > MAX_MEAL_CALORIES:
        raise ValueOutOfRangeError(
            f"meal total of {total_calories} kcal is above the maximum of {MAX_MEAL_CALORIES} kcal per meal"
        )
    if total_calories > REVIEW_MEAL_CALORIES:
        reasons.append(f"meal total of {total_calories} kcal is unusually high")
    meal.review_reasons = reasons
    meal.needs_review = bool(reasons)
    return meal
