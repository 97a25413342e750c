"""Amounts in meal descriptions: numbers, number words, fractions, units and sizes.

`normalize_amounts` rewrites the text so that every amount is plain ASCII tokens
("2½cups" becomes "2 1/2 cups"), and `read_amount` reads the amount at the start of a
word list. Units map to a canonical name and a kind: mass in grams, volume in
millilitres, or a household measure whose weight depends on the food.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

VULGAR_FRACTIONS = {
    "½": "1/2", "⅓": "1/3", "⅔": "2/3", "¼": "1/4", "¾": "3/4", "⅕": "1/5", "⅖": "2/5", "⅗": "3/5",
    "⅘": "4/5", "⅙": "1/6", "⅚": "5/6", "⅐": "1/7", "⅛": "1/8", "⅜": "3/8", "⅝": "5/8", "⅞": "7/8",
    "⅑": "1/9", "⅒": "1/10",
}

NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "dozen": 12,
}
# Words that stand for an amount on their own. "a few" and "several" are read as 3.
AMOUNT_WORDS = {
    "a": Fraction(1), "an": Fraction(1), "half": Fraction(1, 2), "quarter": Fraction(1, 4),
    "couple": Fraction(2), "few": Fraction(3), "several": Fraction(3), "single": Fraction(1),
}
# Vague amounts: a default portion is used and the item is marked estimated.
VAGUE_WORDS = {"some", "little", "bit", "any", "much", "lot", "lots", "plenty", "extra"}

MASS_UNITS = {
    "g": Decimal(1), "gram": Decimal(1), "grams": Decimal(1), "gr": Decimal(1), "gm": Decimal(1),
    "kg": Decimal(1000), "kilo": Decimal(1000), "kilos": Decimal(1000), "kilogram": Decimal(1000),
    "kilograms": Decimal(1000), "mg": Decimal("0.001"),
    "oz": Decimal("28.3495"), "ounce": Decimal("28.3495"), "ounces": Decimal("28.3495"),
    "lb": Decimal("453.592"), "lbs": Decimal("453.592"), "pound": Decimal("453.592"), "pounds": Decimal("453.592"),
}
# Millilitres per unit, in US customary cups, tablespoons, teaspoons and fluid ounces.
# A glass is taken as 8 fl oz and a mug as 10 fl oz. Both are conventions, so items
# measured in them are marked estimated.
VOLUME_UNITS = {
    "ml": Decimal(1), "milliliter": Decimal(1), "milliliters": Decimal(1), "millilitre": Decimal(1),
    "millilitres": Decimal(1), "l": Decimal(1000), "liter": Decimal(1000), "liters": Decimal(1000),
    "litre": Decimal(1000), "litres": Decimal(1000), "dl": Decimal(100), "cl": Decimal(10),
    "cup": Decimal("236.588"), "cups": Decimal("236.588"),
    "tablespoon": Decimal("14.787"), "tablespoons": Decimal("14.787"), "tbsp": Decimal("14.787"),
    "tbs": Decimal("14.787"), "tbl": Decimal("14.787"),
    "teaspoon": Decimal("4.929"), "teaspoons": Decimal("4.929"), "tsp": Decimal("4.929"),
    "floz": Decimal("29.574"), "pint": Decimal("473.176"), "pints": Decimal("473.176"),
    "quart": Decimal("946.353"), "quarts": Decimal("946.353"),
    "glass": Decimal("236.588"), "glasses": Decimal("236.588"), "mug": Decimal("295.735"), "mugs": Decimal("295.735"),
}
CANONICAL_UNITS = {
    "gram": "g", "grams": "g", "gr": "g", "gm": "g", "kilo": "kg", "kilos": "kg", "kilogram": "kg",
    "kilograms": "kg", "ounce": "oz", "ounces": "oz", "lbs": "lb", "pound": "lb", "pounds": "lb",
    "milliliter": "ml", "milliliters": "ml", "millilitre": "ml", "millilitres": "ml", "liter": "l",
    "liters": "l", "litre": "l", "litres": "l", "cups": "cup", "tablespoon": "tbsp", "tablespoons": "tbsp",
    "tbs": "tbsp", "tbl": "tbsp", "teaspoon": "tsp", "teaspoons": "tsp", "floz": "fl oz", "pints": "pint",
    "quarts": "quart", "glasses": "glass", "mugs": "mug",
}
# Household measures whose weight comes from the food's SR28 portions when it has one.
HOUSEHOLD_UNITS = {
    "slice": "slice", "slices": "slice", "piece": "piece", "pieces": "piece", "pc": "piece", "pcs": "piece",
    "bowl": "bowl", "bowls": "bowl", "handful": "handful", "handfuls": "handful", "serving": "serving",
    "servings": "serving", "portion": "serving", "portions": "serving", "helping": "serving",
    "can": "can", "cans": "can", "bottle": "bottle", "bottles": "bottle", "scoop": "scoop", "scoops": "scoop",
    "plate": "plate", "plates": "plate", "plateful": "plate", "bag": "bag", "bags": "bag", "packet": "packet",
    "packets": "packet", "package": "package", "packages": "package", "pack": "package", "box": "box",
    "bar": "bar", "bars": "bar", "stick": "stick", "sticks": "stick", "carton": "carton", "jar": "jar",
    "container": "container", "cube": "cube", "cubes": "cube", "pat": "pat", "pats": "pat",
    "pinch": "pinch", "dash": "dash", "sprinkle": "dash", "splash": "splash", "drizzle": "dash",
    "spoon": "tbsp", "spoons": "tbsp", "spoonful": "tbsp", "spoonfuls": "tbsp", "tablespoonful": "tbsp",
    "teaspoonful": "tsp", "shot": "shot", "shots": "shot", "pint": "pint", "wedge": "wedge", "wedges": "wedge",
    "strip": "strip", "strips": "strip", "fillet": "fillet", "fillets": "fillet", "link": "link", "links": "link",
}
# Household measures with no conventional size are estimated.
ESTIMATED_UNITS = {"bowl", "handful", "plate", "serving", "glass", "mug", "splash", "dash", "pinch"}

# Words between an amount and its unit that do not change it ("a single serving bag").
SERVING_QUALIFIERS = {"single", "individual", "snack", "size", "sized", "fun"}
# Adjectives that describe the eating, not the food ("a chilled bottle of").
DESCRIPTIVE_WORDS = frozenset(
    "delicious tasty yummy nice lovely good great satisfying quick healthy favorite favourite "
    "chilled refreshing warm hearty homemade fresh freshly generous "
    "comforting convenient crisp crispy crunchy mouthwatering flavorful flavourful savory savoury juicy "
    "delightful wonderful scrumptious perfect perfectly cool ripe tender fluffy zesty steaming piping "
    "prepackaged decadent luscious indulgent classic simple light-hearted nutritious wholesome".split()
)

SIZE_WORDS = {
    "small": "small", "little": "small", "mini": "small", "medium": "medium", "regular": "medium",
    "large": "large", "big": "large", "huge": "extra large", "jumbo": "extra large",
}

_FRACTION_SLASH = "\u2044"
_VULGAR = "".join(VULGAR_FRACTIONS)
_DIGIT_BEFORE_VULGAR = re.compile(rf"(\d)\s*([{_VULGAR}])")
_NUMBER_UNIT = re.compile(r"(\d)([a-z])")
_AND_FRACTION = re.compile(r"\b(\d+)\s+and\s+(?:a\s+)?(\d+/\d+)\b")
_WORD_AND_HALF = re.compile(
    rf"\b({'|'.join(w for w in NUMBER_WORDS if w != 'dozen')}|\d+)\s+and\s+a\s+(half|quarter)\b"
)
_FLUID_OUNCE = re.compile(r"\bfl\.?\s*oz\.?|\bfluid\s+ounces?\b")
_TOKEN = re.compile(r"\d+(?:\.\d+)?(?:/\d+)?|[a-z]+(?:'[a-z]+)?|[,;+&]")


def _and_half(match: re.Match) -> str:
    whole = match.group(1)
    whole_value = int(whole) if whole.isdigit() else NUMBER_WORDS[whole]
    part = Fraction(1, 2) if match.group(2) == "half" else Fraction(1, 4)
    return _format_fraction(whole_value + part)


def _format_fraction(value: Fraction) -> str:
    return str(Decimal(value.numerator) / Decimal(value.denominator))


def normalize_amounts(text: str) -> str:
    """Lower-case the text and rewrite amounts as ASCII: "2½" to "2 1/2", "200g" to "200 g".

    Also merges "1 and 1/2" and "one and a half" into one number, marks multipliers
    ("2x", "x2") with a `times` token, and turns "fl oz" into the single word "floz".
    """
    text = text.lower().replace(_FRACTION_SLASH, "/").replace("\u00a0", " ")
    text = _DIGIT_BEFORE_VULGAR.sub(r"\1 \2", text)
    for char, fraction in VULGAR_FRACTIONS.items():
        text = text.replace(char, f" {fraction} ")
    text = _FLUID_OUNCE.sub(" floz ", text)
    # "100% juice", "2% milk": a percentage describes the food, never an amount.
    text = re.sub(r"\d+(?:\.\d+)?\s*%", " ", text)
    text = _AND_FRACTION.sub(r"\1 \2", text)
    text = _WORD_AND_HALF.sub(_and_half, text)
    text = re.sub(r"(\d)\s*[x×](?=\s|$)", r"\1 times", text)
    text = re.sub(r"(?:^|\s)[x×]\s*(\d+(?:\.\d+)?)\b", r" times \1", text)
    text = _NUMBER_UNIT.sub(r"\1 \2", text)
    return text


def tokenize_words(text: str) -> list[str]:
    """Split normalised text into numbers, words and the separators , ; + &."""
    return _TOKEN.findall(text)


def parse_number(token: str) -> Fraction | None:
    """Read "2", "2.5" or "1/2" as an exact Fraction, or return None."""
    try:
        if "/" in token:
            numerator, denominator = token.split("/")
            if int(denominator) == 0:
                return None
            return Fraction(int(numerator), int(denominator))
        return Fraction(Decimal(token))
    except (ValueError, ArithmeticError):
        return None


@dataclass
class Amount:
    """An amount read from the words before a food name.

    `quantity` is None when no amount was written. `unit` is canonical ("g", "cup",
    "slice") or None for a count of pieces; `kind` is "mass", "volume", "household" or
    "count". `size` is "small", "medium", "large" or "extra large" when written.
    `vague` marks words like "some" that name no amount.
    """

    quantity: Fraction | None = None
    unit: str | None = None
    kind: str = "count"
    size: str | None = None
    vague: bool = False
    consumed: int = 0


def classify_unit(word: str) -> tuple[str, str] | None:
    """Return (canonical unit, kind) for a unit word, or None."""
    if word in MASS_UNITS:
        return CANONICAL_UNITS.get(word, word), "mass"
    if word in VOLUME_UNITS:
        return CANONICAL_UNITS.get(word, word), "volume"
    if word in HOUSEHOLD_UNITS:
        unit = HOUSEHOLD_UNITS[word]
        if unit in VOLUME_UNITS:
            return unit, "volume"
        return unit, "household"
    return None


def _read_number(words: list[str], index: int) -> tuple[Fraction | None, int]:
    """Read a number, a mixed number ("2 1/2") or a number word at `index`."""
    if index >= len(words):
        return None, index
    word = words[index]
    value = parse_number(word) if word[0].isdigit() else None
    if value is not None:
        index += 1
        if index < len(words) and "/" in words[index] and "/" not in word and value.denominator == 1:
            fraction = parse_number(words[index])
            if fraction is not None and fraction < 1:
                value += fraction
                index += 1
        return value, index
    if word in NUMBER_WORDS:
        return Fraction(NUMBER_WORDS[word]), index + 1
    return None, index


def read_amount(words: list[str]) -> Amount:
    """Read the amount at the start of `words` (already normalised and split).

    Handles "2", "2.5", "2 1/2", "two", "a", "an", "half", "half a", "a half",
    "a couple of", "a few", "a dozen", "half a dozen", multipliers ("2 times" from "2x"),
    a size word and a unit with an optional "of".
    """
    amount = Amount()
    index = 0
    quantity = None

    # Leading vague words ("some", "a little", "a bit of").
    while index < len(words) and words[index] in VAGUE_WORDS:
        amount.vague = True
        index += 1

    while index < len(words):
        word = words[index]
        number, after = _read_number(words, index)
        if number is not None:
            quantity = number if quantity is None else quantity * number
            index = after
            continue
        if word in AMOUNT_WORDS:
            value = AMOUNT_WORDS[word]
            if word in ("a", "an") and quantity is not None:
                # "half a cup", "2 a day": the article adds no amount.
                index += 1
                continue
            if word in ("a", "an") and index + 1 < len(words) and words[index + 1] in ("little", "bit", "lot"):
                amount.vague = True
                index += 2
                continue
            if quantity is not None and word in ("half", "quarter"):
                quantity = quantity * value if quantity == 1 else quantity + value
            else:
                quantity = value if quantity is None else quantity * value
            index += 1
            continue
        if word == "times":
            index += 1
            continue
        break

    if index < len(words) and words[index] == "of" and quantity is not None:
        index += 1

    # Size words and units, in either order ("large cup", "cup, large"), then "of".
    while index < len(words):
        word = words[index]
        if word in SERVING_QUALIFIERS or word in DESCRIPTIVE_WORDS:
            index += 1
            continue
        if word in SIZE_WORDS and amount.size is None:
            amount.size = SIZE_WORDS[word]
            if word == "little" and quantity is None:
                amount.vague = True
            index += 1
            continue
        if word == "extra" and index + 1 < len(words) and words[index + 1] in ("large", "big"):
            amount.size = "extra large"
            index += 2
            continue
        unit = classify_unit(word)
        if unit is not None and (amount.unit in (None, "serving") or unit[1] == "household"):
            # "a single serving bag" is one serving and "a 12 fl oz can" is 12 fl oz: a
            # later container word is consumed but does not replace the first unit.
            if amount.unit is None:
                amount.unit, amount.kind = unit
            index += 1
            if index < len(words) and words[index] == "of":
                index += 1
            continue
        break

    amount.quantity = quantity
    amount.consumed = index
    return amount


def find_trailing_amount(words: list[str]) -> tuple[Amount, int] | None:
    """Find an amount after the food name ("chicken 200 g", "eggs times 2", "rice (1 cup)").

    Returns the amount and the index where it starts, or None.
    """
    for start in range(1, len(words)):
        word = words[start]
        if word == "times" and start + 1 < len(words):
            number, after = _read_number(words, start + 1)
            if number is not None:
                return Amount(quantity=number, consumed=after - start), start
        number, _ = _read_number(words, start)
        if number is None:
            continue
        amount = read_amount(words[start:])
        if amount.quantity is not None:
            return amount, start
    return None
