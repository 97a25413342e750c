"""Measure how many meal descriptions per second the local parser handles on one core.

Usage: python bench/parser_speed.py [CSV]

CSV defaults to the NutriBench sample at ../shared/data/meal_descriptions_sample.csv
(column `meal_description`); the script exits cleanly when it is absent. It parses the
descriptions repeatedly (about 10,000 parses) after loading the table once, twice: with
the match cache warm, as in a long-running worker, and with the cache cleared before
each description, the worst case for new food names. A plain regex tokenisation of the
same strings runs in the same process as a baseline, and the ratio is printed.
"""

from __future__ import annotations

import csv
import os
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CSV = ROOT.parent / "shared" / "data" / "meal_descriptions_sample.csv"
TARGET_PARSES = 10_000


def load_descriptions(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as handle:
        return [row["meal_description"] for row in csv.DictReader(handle) if row.get("meal_description")]


def rate(function, descriptions: list[str], repeats: int) -> float:
    started = time.perf_counter()
    for _ in range(repeats):
        for description in descriptions:
            function(description)
    return repeats * len(descriptions) / (time.perf_counter() - started)


def main() -> int:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nutricoach.settings")
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_CSV
    if not path.exists():
        print(f"skipped: {path} not found")
        return 0
    descriptions = load_descriptions(path)
    repeats = max(1, TARGET_PARSES // len(descriptions))

    from meals.parsing.local import LocalParser
    from nutricoach.jobs.errors import JobError

    started = time.perf_counter()
    parser = LocalParser()
    print(f"start-up (load and index the food table): {time.perf_counter() - started:.2f} s")

    word = re.compile(r"[a-z0-9]+")
    baseline = rate(lambda text: word.findall(text.lower()), descriptions, repeats)

    failures = 0

    def parse(text: str) -> None:
        nonlocal failures
        try:
            parser.parse(text)
        except JobError:
            failures += 1

    def parse_cold(text: str) -> None:
        parser.index._search_tokens.cache_clear()
        parse(text)

    cold = rate(parse_cold, descriptions, 1 if repeats < 5 else repeats // 5)
    warm = rate(parse, descriptions, repeats)

    count = repeats * len(descriptions)
    print(f"descriptions: {len(descriptions)} from {path}, {count} parses per warm run")
    print(f"parses that raised a parse error (counted in the rate): {failures}")
    print(f"baseline regex tokenisation: {baseline:,.0f} descriptions/s")
    print(f"local parser, warm match cache: {warm:,.0f} descriptions/s ({warm / baseline:.4f} of baseline)")
    print(f"local parser, cache cleared per description: {cold:,.0f} descriptions/s ({cold / baseline:.4f} of baseline)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
