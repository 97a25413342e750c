from django.contrib import admin

from summaries.models import DailySummary, Goal


@admin.register(Goal)
class GoalAdmin(admin.ModelAdmin):
    list_display = ["user", "calories", "protein", "carbs", "fat", "is_active", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["user__email"]
    raw_id_fields = ["user"]


@admin.register(DailySummary)
class DailySummaryAdmin(admin.ModelAdmin):
    list_display = ["user", "local_date", "meal_count", "calories", "goal_calories", "goal_status", "needs_recompute"]
    list_filter = ["goal_status", "needs_recompute", "local_date"]
    search_fields = ["user__email"]
    date_hierarchy = "local_date"
    raw_id_fields = ["user", "goal"]
