"""The rule-based meal parser: amounts and food names matched against the USDA table.

A description is split into items at commas, semicolons, line breaks, sentence ends and
connectors ("plus", "along with", ...). "and" and "with" split too, unless the phrase
on both sides is one food name in the table ("macaroni and cheese"). Each item's amount
is read by `meals.parsing.quantities`, its name is matched by `meals.parsing.foods`,
and its weight comes from the food's SR28 household portions or, failing that, from
the default portions below, in which case the item is marked estimated.

NOTE: on the NutriBench sample of 200 natural-language descriptions
(`bench/parser_accuracy.py`), 39% of meals land within 7.5 g of the reference
carbohydrate and 31% within 20% of the reference energy. Mixed dishes ("a peanut
butter and jelly sandwich"), brand names missing from SR28 and vague amounts are the
main misses, so treat the local parser's numbers as rough.
"""

from __future__ import annotations

import re
from decimal import Decimal

from .base import ParsedMeal, Parser
from .foods import (
    GROUP_BEVERAGES,
    GROUP_FATS_OILS,
    GROUP_SOUPS,
    Food,
    FoodIndex,
    Portion,
    brand_tokens,
    default_index,
    expand_synonyms,
    tokenize,
)
from .quantities import (
    AMOUNT_WORDS,
    DESCRIPTIVE_WORDS,
    SERVING_QUALIFIERS,
    ESTIMATED_UNITS,
    MASS_UNITS,
    NUMBER_WORDS,
    SIZE_WORDS,
    VAGUE_WORDS,
    VOLUME_UNITS,
    Amount,
    normalize_amounts,
    read_amount,
    tokenize_words,
)
from .validation import build_meal, validate_description

MODEL_NAME = "usda-sr28"
CUP_ML = 236.588

# A match must cover at least this share of the name's known words (weighted by rarity).
MIN_COVERAGE = 0.5
VAGUE_MIN_COVERAGE = 0.75
# Share of a name's words that must be food words when no amount is written.
MIN_KNOWN_SHARE = 0.5

_CONNECTORS = re.compile(
    r"\b(?:along with|together with|as well as|followed by|accompanied by|alongside|paired with|"
    r"plus|then|also|on the side|with a side of|a side of|side of)\b|[;+&\n!?]|\.(?!\d)"
)
_JOINERS = re.compile(r"\b(and|with|w)\b")
# Words that end a food name and start context or another clause ("for a snack",
# "while munching on an apple"), so the text splits there too.
_CLAUSE_WORDS = re.compile(
    r"\b(?:for|at|during|before|after|while|because|since|as|to|which|that|when|this|today|yesterday|"
    r"tonight|from|on)\b"
)
# "for my lunch break", "during a quick snack", "at dinner time": when the food was
# eaten, which names no food. A trailing "snack" stays when a food follows it ("a snack cake").
_MEAL_CONTEXT = re.compile(
    r"\b(?:for|during|at)\s+(?:(?:my|a|an|the|our|this|today's|tonight's)\s+)?(?:[a-z]+\s+)?"
    r"(?:breakfast|brunch|lunch|dinner|supper|snack|dessert|meal)(?:\s+(?:time|break|today|tonight))?"
    r"(?=\s*(?:[,.;!?]|$|i\b|we\b))"
)
# "made with", "filled with", "smothered in": what follows is part of the food before
# it. Without its own amount the clause is dropped, because the food's USDA entry
# already counts it; with an amount ("topped with a scoop of ice cream") it is an item.
_INGREDIENT_CLAUSE = re.compile(
    r"\b(?:(?:made|prepared|cooked)\s+(?:with|from|using)|"
    r"(?:filled|stuffed|topped|smothered|studded|loaded|enriched|fortified|coated|covered|drizzled|sprinkled|"
    r"mixed|seasoned|dipped|garnished|enveloped|infused|dusted|glazed|spread|sweetened|layered)\s+(?:with|in))\b"
    r"([^,;.!?]*)"
)
_HAS_AMOUNT = re.compile(r"\b(?:a|an|\d[\d./]*|one|two|three|four|five|six|half|some|cup|cups|slice|slices|scoop|scoops)\b")
# "from a fast food place", "from Burger King": where the food came from. A clause
# with a number ("from a 12 oz can") keeps its amount.
_SOURCE_CLAUSE = re.compile(r"\bfrom\s+(?![^,;.!?]*\d)[^,;.!?]*")
MEAL_WORDS = frozenset(
    "breakfast brunch lunch dinner supper snack snacks dessert meal morning afternoon evening night".split()
)
FILLER_WORDS = DESCRIPTIVE_WORDS | SERVING_QUALIFIERS | {"serving"}
SIZE_FACTORS = {"small": 0.75, "medium": 1.0, "large": 1.33, "extra large": 1.6}

# Words that start SR28 portion descriptions measured by volume or mass, not by piece.
NON_COUNT_MEASURES = frozenset(
    "cup cups tbsp tablespoon tsp teaspoon oz fl lb g ml liter quart pint gallon package container jar can "
    "bottle serving nlea cubic inch box bag packet envelope portion".split()
)
ML_PER_MEASURE = {"cup": CUP_ML, "cups": CUP_ML, "tbsp": 14.787, "tablespoon": 14.787, "tsp": 4.929,
                  "teaspoon": 4.929, "fl": 29.574, "ml": 1.0}
# SR28 measure words that fit each household unit, in order of preference.
PORTION_WORDS = {
    "slice": ("slice",),
    "piece": ("piece", "pieces", "pce", "item", "each", "unit"),
    "can": ("can",),
    "bottle": ("bottle",),
    "scoop": ("scoop",),
    "bag": ("bag", "packet", "package"),
    "packet": ("packet", "package", "envelope"),
    "package": ("package", "pkg", "container", "box"),
    "box": ("box", "package"),
    "bar": ("bar",),
    "stick": ("stick",),
    "carton": ("carton", "container"),
    "jar": ("jar",),
    "container": ("container",),
    "cube": ("cube",),
    "pat": ("pat",),
    "wedge": ("wedge",),
    "strip": ("strip", "slice"),
    "fillet": ("fillet",),
    "link": ("link", "sausage"),
    "serving": ("serving", "nlea"),
}
# Default portions when the food has no matching SR28 portion: (amount, "g" or "ml").
# These are common US household sizes and are estimates, so the item is marked so.
DEFAULT_PORTIONS = {
    "slice": (30, "g"), "piece": (50, "g"), "bowl": (1.5 * CUP_ML, "ml"), "handful": (30, "g"),
    "serving": (100, "g"), "can": (355, "ml"), "bottle": (500, "ml"), "scoop": (0.5 * CUP_ML, "ml"),
    "plate": (350, "g"), "bag": (28, "g"), "packet": (28, "g"), "package": (100, "g"), "box": (250, "g"),
    "bar": (50, "g"), "stick": (10, "g"), "carton": (240, "ml"), "jar": (400, "g"), "container": (170, "g"),
    "cube": (5, "g"), "pat": (5, "g"), "pinch": (0.4, "g"), "dash": (0.6, "g"), "splash": (15, "ml"),
    "shot": (44, "ml"), "wedge": (50, "g"), "strip": (8, "g"), "fillet": (150, "g"), "link": (45, "g"),
    "count": (100, "g"),
}
# Density in g/ml when the food has no cup, spoon or fluid-ounce portion.
LIQUID_GROUPS = {GROUP_BEVERAGES, GROUP_SOUPS}
LIQUID_DENSITY = 1.0
FAT_DENSITY = 0.92
SOLID_DENSITY = 0.6
# Foods outside the liquid groups that are drunk ("Milk, chocolate, fat free").
LIQUID_WORDS = frozenset("milk juice drink beverage beverages smoothie shake nectar lemonade".split())
# Chips, puffs and popcorn are mostly air: SR28 weighs a cup of plain popcorn at 8 g
# and a cup of corn flakes at 28 g, so 0.12 g/ml is used when the cup portion is missing.
LIGHT_SNACK_WORDS = frozenset("chips chip crisps puffs popcorn twists curls cereal cereals flakes".split())
LIGHT_SNACK_CATEGORIES = frozenset(["snacks", "cereals ready-to-eat", "cereals"])
LIGHT_SNACK_DENSITY = 0.12


class LocalParser(Parser):
    """Parses descriptions with rules and the shipped USDA SR28 table, without network calls."""

    name = "local"

    def __init__(self, index: FoodIndex | None = None):
        self.index = index or default_index()

    def parse(self, description: str, attempt: int = 1) -> ParsedMeal:
        text = validate_description(description)
        raw_items = []
        unmatched = []
        for phrase in self._split_items(normalize_amounts(text)):
            item = self._parse_phrase(phrase)
            if item is None:
                continue
            if isinstance(item, str):
                unmatched.append(item)
            else:
                raw_items.append(item)
        meal = build_meal(raw_items, parser=self.name, model=MODEL_NAME, description=text)
        for name in unmatched:
            meal.review_reasons.append(f"no USDA food matched {name!r}, so it is not counted")
        meal.needs_review = bool(meal.review_reasons)
        return meal

    # Splitting

    def _split_items(self, text: str) -> list[list[str]]:
        phrases = []
        text = _MEAL_CONTEXT.sub(",", text)
        text = _INGREDIENT_CLAUSE.sub(_ingredient_clause, text)
        text = _SOURCE_CLAUSE.sub(",", text)
        text = _CLAUSE_WORDS.sub(",", _CONNECTORS.sub(",", text))
        for chunk in text.split(","):
            parts = [tokenize_words(part) for part in _JOINERS.split(chunk)[::2]]
            phrases.extend(self._merge_food_names([part for part in parts if part]))
        return phrases

    def _merge_food_names(self, parts: list[list[str]]) -> list[list[str]]:
        """Join neighbouring parts split at "and"/"with" when together they name one food."""
        merged: list[list[str]] = []
        for part in parts:
            if merged and not _starts_with_amount(part):
                joined = merged[-1] + ["and"] + part
                left_name = _name_words(merged[-1])
                if left_name and _name_words(part) and self._is_one_food(_name_words(joined)):
                    merged[-1] = joined
                    continue
            merged.append(part)
        return merged

    def _names_a_food(self, name: list[str], match) -> bool:
        """Return whether most name words are food words and the match covers the main one.

        A branded food counts only when the phrase names its brand, because brand
        entries ("Fast Break", "ZONE PERFECT") share everyday words with context
        phrases ("my lunch break", "perfect for winding down").
        """
        tokens = expand_synonyms(tokenize(" ".join(name)))
        if not tokens:
            return False
        brands = brand_tokens(match.food)
        if brands and not brands.intersection(tokens):
            return False
        known_share = sum(token in self.index.postings for token in tokens) / len(tokens)
        return match.head_matched and match.coverage >= VAGUE_MIN_COVERAGE and known_share >= MIN_KNOWN_SHARE

    def _is_one_food(self, name_words: list[str]) -> bool:
        tokens = expand_synonyms(tokenize(" ".join(name_words)))
        known = [token for token in tokens if token in self.index.postings]
        if len(known) < 2:
            return False
        match = self.index.search(" ".join(name_words))
        if match is None or match.coverage < 0.999:
            return False
        # The matched food must name the joined words in its first two segments.
        head = set(tokenize(",".join(match.food.description.split(",")[:2])))
        return all(token in head for token in known)

    # One item

    def _parse_phrase(self, words: list[str]):
        """Return a raw item dict, an unmatched name (str), or None for a phrase with no food."""
        amount, name = _split_amount_and_name(words)
        if not name:
            return None
        match = self.index.search(" ".join(name))
        explicit = amount.quantity is not None and (
            amount.unit is not None or amount.size is not None or amount.quantity != 1
        )
        if match is None or (match.coverage < MIN_COVERAGE and not match.head_matched):
            return " ".join(name) if explicit else None
        if not explicit and not self._names_a_food(name, match):
            # With no amount, or only "a", a phrase must clearly name a food to count as one.
            return None

        food = match.food
        quantity, unit, grams, estimated = weigh(food, amount)
        factor = grams / 100.0
        return {
            "name": " ".join(name),
            "quantity": Decimal(str(round(quantity, 3))),
            "unit": unit,
            "grams": _decimal(grams),
            "calories": _decimal(food.kcal * factor),
            "protein": _decimal(food.protein * factor),
            "carbs": _decimal(food.carbs * factor),
            "fat": _decimal(food.fat * factor),
            "fiber": _decimal(food.fiber * factor),
            "estimated": estimated,
            "source": f"USDA SR28 {food.ndb}: {food.description}",
        }


def _ingredient_clause(match: re.Match) -> str:
    clause = match.group(1)
    return "," + clause if _HAS_AMOUNT.search(clause) else ","


def _decimal(value: float) -> Decimal:
    return Decimal(str(round(value, 2)))


def _is_amount_word(word: str) -> bool:
    return (
        word[0].isdigit()
        or word in NUMBER_WORDS
        or word in AMOUNT_WORDS
        or word in VAGUE_WORDS
        or word in SIZE_WORDS
        or word in MASS_UNITS
        or word in VOLUME_UNITS
    )


def _starts_with_amount(words: list[str]) -> bool:
    return bool(words) and (words[0][0].isdigit() or words[0] in NUMBER_WORDS or words[0] in ("a", "an", "some"))


def _name_words(words: list[str]) -> list[str]:
    _, name = _split_amount_and_name(words)
    return name


def _clean_name(words: list[str]) -> list[str]:
    name = []
    for word in words:
        if word in MEAL_WORDS or word in FILLER_WORDS or word in SIZE_WORDS or word in (",", ";", "+", "&"):
            continue
        if word in NUMBER_WORDS or word in AMOUNT_WORDS or word[0].isdigit() or word == "times" or word == "of":
            continue
        name.append(word)
    return name


def _split_amount_and_name(words: list[str]) -> tuple[Amount, list[str]]:
    """Find the phrase's amount and return it with the food name words.

    An amount with a number or unit ("360 g", "2 cups") wins over an article ("a") found
    earlier. The name is every other word of the phrase, cleaned, so "chicken 200 g" works.
    """
    best: tuple[int, Amount] | None = None
    start = 0
    while start < len(words):
        if not _is_amount_word(words[start]):
            start += 1
            continue
        amount = read_amount(words[start:])
        if amount.consumed == 0:
            start += 1
            continue
        explicit = amount.unit is not None or words[start][0].isdigit() or words[start] in NUMBER_WORDS
        if best is None or (explicit and not _is_explicit(words, best)):
            best = (start, amount)
        if explicit:
            break
        start += amount.consumed

    if best is None:
        return Amount(), _clean_name(words)
    start, amount = best
    name = _clean_name(words[:start]) + _clean_name(words[start + amount.consumed:])
    return amount, name


def _is_explicit(words: list[str], best: tuple[int, Amount]) -> bool:
    start, amount = best
    return amount.unit is not None or words[start][0].isdigit() or words[start] in NUMBER_WORDS


# Weights


def _measure_words(portion: Portion) -> list[str]:
    return re.findall(r"[a-z]+", portion.measure.lower())


def _is_count_portion(portion: Portion) -> bool:
    words = _measure_words(portion)
    return bool(words) and words[0] not in NON_COUNT_MEASURES


def _find_portion(food: Food, measure_words: tuple[str, ...], size: str | None) -> Portion | None:
    candidates = [p for p in food.portions if _measure_words(p)[:1] and _measure_words(p)[0] in measure_words]
    if not candidates:
        candidates = [p for p in food.portions if set(_measure_words(p)) & set(measure_words)]
    if size:
        sized = [p for p in candidates if size.split()[-1] in _measure_words(p)]
        if sized:
            return sized[0]
    return candidates[0] if candidates else None


def _sized_portion(food: Food, size: str) -> Portion | None:
    size_words = size.split()
    for portion in food.portions:
        words = _measure_words(portion)
        if not words or not (words[0] in size_words or words[0] in ("extra", "serving")):
            continue
        if size == "large" and "extra" in words:
            continue
        if all(word in words for word in size_words):
            return portion
    return None


def _count_portion(food: Food) -> Portion | None:
    candidates = [p for p in food.portions if _is_count_portion(p)]
    for preferred in ("medium", "large"):
        for portion in candidates:
            words = _measure_words(portion)
            if preferred in words and "extra" not in words:
                return portion
    return candidates[0] if candidates else None


SMALL_MEASURES = frozenset("oz fl tbsp tablespoon tsp teaspoon g lb cubic inch".split())


def _serving_portion(food: Food) -> Portion | None:
    """Return the portion for "one serving": an SR28 serving, a cup of a drink, or the first sizeable measure."""
    for portion in food.portions:
        if "serving" in _measure_words(portion):
            return portion
    if food.group in LIQUID_GROUPS:
        for portion in food.portions:
            if _measure_words(portion)[:1] == ["cup"]:
                return portion
    for portion in food.portions:
        words = _measure_words(portion)
        if words and words[0] not in SMALL_MEASURES:
            return portion
    return food.portions[0] if food.portions else None


def _food_head_words(food: Food) -> set[str]:
    """Return the words of the description's first segment, after a category such as "Snacks"."""
    segments = [segment.strip().lower() for segment in food.description.split(",")]
    if len(segments) > 1 and segments[0] in LIGHT_SNACK_CATEGORIES | {"beverages"}:
        return set(re.findall(r"[a-z]+", segments[0] + " " + segments[1]))
    return set(re.findall(r"[a-z]+", segments[0]))


def density(food: Food) -> tuple[float, bool]:
    """Return the food's density in g/ml and whether it is a default (estimated) value."""
    for portion in food.portions:
        words = _measure_words(portion)
        if words and words[0] in ML_PER_MEASURE:
            return portion.grams_each / ML_PER_MEASURE[words[0]], False
    head_words = _food_head_words(food)
    if food.group in LIQUID_GROUPS or head_words & LIQUID_WORDS:
        return LIQUID_DENSITY, True
    if head_words & LIGHT_SNACK_WORDS:
        return LIGHT_SNACK_DENSITY, True
    if food.group == GROUP_FATS_OILS:
        return FAT_DENSITY, True
    return SOLID_DENSITY, True


def _default_grams(food: Food, unit: str) -> tuple[float, bool]:
    amount, kind = DEFAULT_PORTIONS[unit]
    if kind == "ml":
        food_density, _ = density(food)
        return amount * food_density, True
    return float(amount), True


def weigh(food: Food, amount: Amount) -> tuple[float, str, float, bool]:
    """Return (quantity, unit, grams, estimated) for an amount of a food."""
    quantity = float(amount.quantity) if amount.quantity is not None else 1.0
    estimated = amount.vague or amount.quantity is None
    unit = amount.unit

    if amount.kind == "mass":
        return quantity, unit, quantity * float(MASS_UNITS[unit]), estimated

    if amount.kind == "volume":
        millilitres = quantity * float(VOLUME_UNITS[_volume_key(unit)])
        food_density, default_density = density(food)
        size_factor = SIZE_FACTORS.get(amount.size, 1.0) if unit in ESTIMATED_UNITS else 1.0
        return quantity, unit, millilitres * food_density * size_factor, (
            estimated or default_density or unit in ESTIMATED_UNITS
        )

    if amount.kind == "household":
        if unit in ("bowl", "plate", "handful", "pinch", "dash", "splash", "shot"):
            grams, _ = _default_grams(food, unit)
            grams *= SIZE_FACTORS.get(amount.size, 1.0)
            return quantity, unit, quantity * grams, True
        portion = _find_portion(food, PORTION_WORDS.get(unit, (unit,)), amount.size)
        if portion is None and unit == "piece":
            portion = _count_portion(food)
        if portion is None and unit == "serving":
            portion = _serving_portion(food)
        if portion is not None:
            grams_each = portion.grams if unit == "serving" else portion.grams_each
            return quantity, unit, quantity * grams_each, estimated or unit in ESTIMATED_UNITS
        grams, _ = _default_grams(food, unit)
        return quantity, unit, quantity * grams * SIZE_FACTORS.get(amount.size, 1.0), True

    # A count of pieces, or no amount at all.
    if amount.quantity is None and amount.size is None:
        portion = _serving_portion(food)
        if portion is None:
            return 1.0, "serving", DEFAULT_PORTIONS["serving"][0], True
        return 1.0, "serving", portion.grams, True

    label = amount.size or "count"
    if food.group in LIQUID_GROUPS and amount.size is None:
        # "a coke", "two coffees": one drink is one serving of it.
        portion = _serving_portion(food)
        if portion is not None:
            return quantity, label, quantity * portion.grams, estimated
    if amount.size:
        portion = _sized_portion(food, amount.size)
        if portion is not None:
            return quantity, label, quantity * portion.grams_each, estimated
    portion = _count_portion(food)
    size_factor = SIZE_FACTORS.get(amount.size, 1.0) if amount.size else 1.0
    if portion is not None:
        return quantity, label, quantity * portion.grams_each * size_factor, estimated or amount.size is not None
    portion = _serving_portion(food)
    grams_each = portion.grams if portion is not None else DEFAULT_PORTIONS["count"][0]
    return quantity, label, quantity * grams_each * size_factor, True


def _volume_key(unit: str) -> str:
    return {"fl oz": "floz"}.get(unit, unit)

