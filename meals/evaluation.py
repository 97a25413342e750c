"""Compare parsed meals with reference nutrients: read the reference CSV, score, report.

The CSV has one meal per row with the columns `meal_description`, `carb_g` (grams of
carbohydrate) and `energy_kcal`, as in the NutriBench meal descriptions. Other columns
are ignored. `manage.py evaluate_meals` and `bench/parser_accuracy.py` share this code,
so both report the same figures.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

REQUIRED_COLUMNS = ("meal_description", "carb_g", "energy_kcal")

# A meal counts as close when its carbohydrate is within this many grams of the
# reference, and its energy within this share of the reference energy.
CARBS_TOLERANCE_GRAMS = 7.5
ENERGY_TOLERANCE_SHARE = 0.20

# Meal statuses besides the stored parse statuses (parsed, needs_review, failed).
REJECTED = "rejected"
UNFINISHED = "unfinished"
STATUSES_WITH_TOTALS = ("parsed", "needs_review")

DESCRIPTION_WIDTH = 48


class ReferenceFileError(ValueError):
    """The reference CSV is missing a column or has a value that is not a number."""


@dataclass(frozen=True)
class ReferenceMeal:
    """One CSV row: the description and its reference carbohydrate (g) and energy (kcal)."""

    row: int
    description: str
    carbs: float
    energy: float


@dataclass
class EvaluatedMeal:
    """A reference meal with the parse outcome: status, parsed totals and the reason for a failure."""

    reference: ReferenceMeal
    status: str = UNFINISHED
    carbs: float | None = None
    energy: float | None = None
    error: str = ""

    @property
    def has_totals(self) -> bool:
        return self.status in STATUSES_WITH_TOTALS and self.carbs is not None and self.energy is not None

    @property
    def carbs_close(self) -> bool:
        return self.has_totals and abs(self.carbs - self.reference.carbs) <= CARBS_TOLERANCE_GRAMS

    @property
    def energy_close(self) -> bool:
        return self.has_totals and abs(self.energy - self.reference.energy) <= ENERGY_TOLERANCE_SHARE * self.reference.energy


@dataclass(frozen=True)
class Summary:
    """Counts per status, mean absolute errors over meals with totals, and close shares over all meals."""

    total: int
    counts: dict[str, int]
    with_totals: int
    carbs_mae: float | None
    energy_mae: float | None
    carbs_close: int
    energy_close: int

    def share(self, count: int) -> float:
        return count / self.total if self.total else 0.0


def _number(value: str, *, row: int, column: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ReferenceFileError(f"row {row}: {column} is {value!r}, not a number") from None
    if not math.isfinite(number) or number < 0:
        raise ReferenceFileError(f"row {row}: {column} is {value!r}; it must be a finite number, zero or more")
    return number


def read_reference_csv(path: Path, *, limit: int | None = None) -> list[ReferenceMeal]:
    """Read up to `limit` reference meals; raise ReferenceFileError for a bad header or value.

    Rows count from 2, the first line after the header, as a spreadsheet shows them.
    Rows with an empty description are skipped.
    """
    meals = []
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = [column for column in REQUIRED_COLUMNS if column not in (reader.fieldnames or [])]
        if missing:
            raise ReferenceFileError(
                f"{path} has no column {', '.join(missing)}; the header must contain {', '.join(REQUIRED_COLUMNS)}"
            )
        for row_number, row in enumerate(reader, start=2):
            if limit is not None and len(meals) >= limit:
                break
            description = (row["meal_description"] or "").strip()
            if not description:
                continue
            meals.append(ReferenceMeal(
                row=row_number,
                description=description,
                carbs=_number(row["carb_g"], row=row_number, column="carb_g"),
                energy=_number(row["energy_kcal"], row=row_number, column="energy_kcal"),
            ))
    return meals


def summarize(results: list[EvaluatedMeal]) -> Summary:
    """Count statuses and compute the errors; failed or unfinished meals count as misses."""
    counts: dict[str, int] = {}
    for result in results:
        counts[result.status] = counts.get(result.status, 0) + 1
    scored = [result for result in results if result.has_totals]
    carbs_mae = sum(abs(r.carbs - r.reference.carbs) for r in scored) / len(scored) if scored else None
    energy_mae = sum(abs(r.energy - r.reference.energy) for r in scored) / len(scored) if scored else None
    return Summary(
        total=len(results),
        counts=counts,
        with_totals=len(scored),
        carbs_mae=carbs_mae,
        energy_mae=energy_mae,
        carbs_close=sum(result.carbs_close for result in results),
        energy_close=sum(result.energy_close for result in results),
    )


def _truncate(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _optional(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_table(results: list[EvaluatedMeal]) -> list[str]:
    """Return one line per meal: row, description, reference and parsed carbs and energy, status."""
    header = (
        f"{'row':>4}  {'description':<{DESCRIPTION_WIDTH}}  {'carbs ref':>9}  {'carbs':>7}  "
        f"{'kcal ref':>8}  {'kcal':>7}  status"
    )
    lines = [header, "-" * len(header)]
    for result in results:
        reference = result.reference
        status = result.status + (f": {_truncate(result.error, 60)}" if result.error else "")
        lines.append(
            f"{reference.row:>4}  {_truncate(reference.description, DESCRIPTION_WIDTH):<{DESCRIPTION_WIDTH}}  "
            f"{reference.carbs:>9.1f}  {_optional(result.carbs):>7}  "
            f"{reference.energy:>8.0f}  {_optional(result.energy, 0):>7}  {status}"
        )
    return lines


def format_summary(summary: Summary) -> list[str]:
    """Return the summary lines: counts, mean absolute errors and the shares of close meals."""
    counts = summary.counts
    lines = [
        f"meals: {summary.total} (parsed {counts.get('parsed', 0)}, needs review {counts.get('needs_review', 0)}, "
        f"failed {counts.get('failed', 0)}, rejected by the API {counts.get(REJECTED, 0)}, "
        f"unfinished {counts.get(UNFINISHED, 0)})",
    ]
    if summary.with_totals:
        lines.append(
            f"mean absolute error over the {summary.with_totals} meals with totals: "
            f"carbs {summary.carbs_mae:.1f} g, energy {summary.energy_mae:.0f} kcal"
        )
    else:
        lines.append("mean absolute error: no meal has totals")
    lines.append(
        f"within {CARBS_TOLERANCE_GRAMS:g} g of the reference carbs: {summary.carbs_close}/{summary.total} "
        f"({100 * summary.share(summary.carbs_close):.1f}%)"
    )
    lines.append(
        f"within {100 * ENERGY_TOLERANCE_SHARE:.0f}% of the reference energy: {summary.energy_close}/{summary.total} "
        f"({100 * summary.share(summary.energy_close):.1f}%)"
    )
    lines.append("Failed, rejected and unfinished meals count as misses.")
    return lines
