"""Measure how close the local parser's carbohydrate and energy come to reference meals.

Usage: python bench/parser_accuracy.py [CSV] [--misses]

CSV defaults to the NutriBench sample named by DEFAULT_CSV (columns meal_description,
carb_g, energy_kcal), and the script exits cleanly when the file is absent. It parses every description in this process, without the API or the job
queue, and prints the same summary as `manage.py evaluate_meals`, which measures the
whole path through a running server. `--misses` also lists each meal outside either
tolerance with its parsed items, to study the parser's rules.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CSV = ROOT.parent / "shared" / "data" / "meal_descriptions_sample.csv"


def main() -> int:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nutricoach.settings")
    arguments = [argument for argument in sys.argv[1:] if argument != "--misses"]
    show_misses = "--misses" in sys.argv[1:]
    path = Path(arguments[0]) if arguments else DEFAULT_CSV
    if not path.exists():
        print(f"skipped: {path} not found")
        return 0

    from meals.evaluation import (
        EvaluatedMeal,
        format_summary,
        read_reference_csv,
        summarize,
    )
    from meals.parsing.local import LocalParser
    from nutricoach.jobs.errors import JobError

    parser = LocalParser()
    results = []
    parsed_meals = []
    for reference in read_reference_csv(path):
        try:
            meal = parser.parse(reference.description)
        except JobError as exc:
            results.append(EvaluatedMeal(reference, status="failed", error=str(exc)))
            parsed_meals.append(None)
            continue
        status = "needs_review" if meal.needs_review else "parsed"
        totals = meal.totals
        results.append(EvaluatedMeal(reference, status=status, carbs=float(totals["carbs"]),
                                     energy=float(totals["calories"])))
        parsed_meals.append(meal)

    if show_misses:
        for result, meal in zip(results, parsed_meals):
            if result.carbs_close and result.energy_close:
                continue
            reference = result.reference
            print(f"\nrow {reference.row}: carbs {reference.carbs:.0f} g, {reference.energy:.0f} kcal; "
                  f"parsed {result.carbs or 0:.0f} g, {result.energy or 0:.0f} kcal: {reference.description}")
            for item in meal.items if meal else ():
                print(f"    {item.quantity} {item.unit} {item.name!r}: {item.grams} g, {item.carbs} g carbs, "
                      f"{item.calories} kcal from {item.source}")
            for reason in meal.review_reasons if meal else [result.error]:
                print(f"    ! {reason}")
        print()

    print(f"reference meals: {len(results)} from {path}")
    for line in format_summary(summarize(results)):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
