from django.conf import settings
from django.db import models

from nutricoach.nutrients import NUTRIENTS, NutrientTotals, non_negative_constraints, nutrient_field

GOAL_FIELDS = ("calories", "protein", "carbs", "fat")


class Goal(models.Model):
    """Daily targets; a user has at most one active goal at a time."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="goals")
    calories = nutrient_field("energy (kcal)")
    protein = nutrient_field("protein (g)")
    carbs = nutrient_field("carbohydrates (g)")
    fat = nutrient_field("fat (g)")
    is_active = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user"], condition=models.Q(is_active=True), name="goal_one_active_per_user"
            ),
            models.CheckConstraint(condition=models.Q(calories__gt=0), name="goal_calories_positive"),
            *non_negative_constraints("goal", GOAL_FIELDS[1:]),
        ]

    def __str__(self):
        return f"{self.calories} kcal for {self.user}"


class GoalStatus(models.TextChoices):
    NO_GOAL = "no_goal", "no goal"
    BELOW = "below", "below goal"
    WITHIN = "within", "within goal"
    ABOVE = "above", "above goal"


class DailySummary(NutrientTotals):
    """A user's totals for one local date, compared with the goal active when computed."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="daily_summaries")
    local_date = models.DateField()
    meal_count = models.PositiveIntegerField(default=0)
    goal = models.ForeignKey(Goal, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    goal_calories = models.DecimalField("goal energy (kcal)", max_digits=10, decimal_places=2, null=True, blank=True)
    goal_protein = models.DecimalField("goal protein (g)", max_digits=10, decimal_places=2, null=True, blank=True)
    goal_carbs = models.DecimalField("goal carbohydrates (g)", max_digits=10, decimal_places=2, null=True, blank=True)
    goal_fat = models.DecimalField("goal fat (g)", max_digits=10, decimal_places=2, null=True, blank=True)
    goal_status = models.CharField(max_length=16, choices=GoalStatus.choices, default=GoalStatus.NO_GOAL)
    needs_recompute = models.BooleanField(
        default=False, help_text="A meal of this date changed after the summary was computed."
    )
    computed_at = models.DateTimeField(null=True, blank=True)
    revision = models.PositiveIntegerField(
        default=0,
        editable=False,
        help_text="Counts meal changes that marked this row stale. A run keeps needs_recompute set "
        "when the count changed while it was computing.",
    )

    class Meta:
        ordering = ["-local_date", "user"]
        verbose_name_plural = "daily summaries"
        constraints = [
            models.UniqueConstraint(fields=["user", "local_date"], name="dailysummary_unique_user_date"),
            *non_negative_constraints("dailysummary", NUTRIENTS),
        ]
        indexes = [
            models.Index(fields=["local_date"], condition=models.Q(needs_recompute=True), name="summary_stale"),
        ]

    def __str__(self):
        return f"{self.user} on {self.local_date}"
