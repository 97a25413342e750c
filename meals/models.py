import hashlib

from django.conf import settings
from django.db import models

from nutricoach.nutrients import NUTRIENTS, NutrientTotals, non_negative_constraints


class ParseStatus(models.TextChoices):
    PENDING = "pending", "pending"
    PARSED = "parsed", "parsed"
    FAILED = "failed", "failed"
    NEEDS_REVIEW = "needs_review", "needs review"


class Parser(models.TextChoices):
    LOCAL = "local", "local USDA parser"
    OPENAI = "openai", "OpenAI"


class MealQuerySet(models.QuerySet):
    def active(self):
        return self.filter(archived=False)


class Meal(NutrientTotals):
    """A meal as the user described it, with totals recomputed from its food items."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="meals")
    name = models.CharField(max_length=200, blank=True)
    description = models.TextField()
    description_hash = models.CharField(max_length=64, editable=False)
    eaten_at = models.DateTimeField()
    local_date = models.DateField(help_text="The date of eaten_at in the owner's time zone.")
    parse_status = models.CharField(max_length=16, choices=ParseStatus.choices, default=ParseStatus.PENDING)
    parser = models.CharField(max_length=16, choices=Parser.choices, blank=True)
    parse_error = models.TextField(blank=True)
    parse_job = models.ForeignKey(
        "jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    parsed_at = models.DateTimeField(null=True, blank=True)
    archived = models.BooleanField(default=False)
    archived_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = MealQuerySet.as_manager()

    class Meta:
        ordering = ["-eaten_at", "-id"]
        indexes = [
            models.Index(fields=["owner", "local_date"], name="meal_owner_date"),
            # Serves the nightly aggregation by local date without touching the table.
            # Archived meals count in summaries too, so the index covers them.
            models.Index(fields=["local_date", "owner"], include=list(NUTRIENTS), name="meal_date_owner_totals"),
        ]
        constraints = non_negative_constraints("meal", NUTRIENTS)

    def __str__(self):
        return self.name or self.description[:40]

    def save(self, *args, **kwargs):
        self.description_hash = hashlib.sha256(self.description.encode()).hexdigest()
        super().save(*args, **kwargs)


class FoodItem(NutrientTotals):
    """One food of a meal: its amount as written, its weight and its nutrients."""

    meal = models.ForeignKey(Meal, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveSmallIntegerField(default=0)
    name = models.CharField(max_length=200)
    quantity = models.DecimalField(max_digits=10, decimal_places=3)
    unit = models.CharField(max_length=32, help_text="The unit as parsed, or 'count' for a number of pieces.")
    grams = models.DecimalField(max_digits=10, decimal_places=2)
    estimated = models.BooleanField(default=False, help_text="The amount was vague and a default portion was used.")
    source = models.CharField(max_length=200, blank=True, help_text="The USDA food or model that gave the nutrients.")

    class Meta:
        ordering = ["meal", "position", "id"]
        constraints = [
            *non_negative_constraints("fooditem", NUTRIENTS),
            models.CheckConstraint(condition=models.Q(quantity__gt=0), name="fooditem_quantity_positive"),
            models.CheckConstraint(condition=models.Q(grams__gte=0), name="fooditem_grams_non_negative"),
        ]

    def __str__(self):
        return f"{self.quantity} {self.unit} {self.name}"
