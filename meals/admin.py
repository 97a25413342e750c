from django.contrib import admin, messages
from django.utils import timezone

from meals import services
from meals.models import FoodItem, Meal


class FoodItemInline(admin.TabularInline):
    model = FoodItem
    extra = 0
    fields = ["position", "name", "quantity", "unit", "grams", "calories", "protein", "carbs", "fat", "fiber",
              "estimated", "source"]


class ArchivedFilter(admin.SimpleListFilter):
    """Leave archived meals out of the list unless staff ask for them."""

    title = "archived"
    parameter_name = "archived"

    def lookups(self, request, model_admin):
        return [("no", "Active"), ("yes", "Archived"), ("all", "All")]

    def choices(self, changelist):
        for lookup, title in self.lookup_choices:
            yield {
                "selected": (self.value() or "no") == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request, queryset):
        value = self.value() or "no"
        if value == "all":
            return queryset
        return queryset.filter(archived=value == "yes")


@admin.register(Meal)
class MealAdmin(admin.ModelAdmin):
    list_display = ["id", "owner", "name", "local_date", "parse_status", "parser", "calories", "archived"]
    list_filter = [ArchivedFilter, "parse_status", "parser", "local_date"]
    search_fields = ["description", "name", "owner__email"]
    date_hierarchy = "local_date"
    raw_id_fields = ["owner"]
    readonly_fields = ["description_hash", "parse_job", "parsed_at", "created_at", "updated_at", "archived_at"]
    inlines = [FoodItemInline]
    actions = ["reparse", "archive", "unarchive"]

    @admin.action(description="Parse the selected meals again")
    def reparse(self, request, queryset):
        for meal in queryset:
            services.meal_reparse(meal=meal)
        messages.success(request, f"Enqueued {queryset.count()} parse jobs.")

    @admin.action(description="Archive the selected meals")
    def archive(self, request, queryset):
        count = queryset.filter(archived=False).update(archived=True, archived_at=timezone.now())
        messages.success(request, f"Archived {count} meals.")

    @admin.action(description="Restore the selected meals from the archive")
    def unarchive(self, request, queryset):
        # archived_at stays set so that the nightly archiving leaves the restored meal alone.
        count = queryset.filter(archived=True).update(archived=False)
        messages.success(request, f"Restored {count} meals.")


@admin.register(FoodItem)
class FoodItemAdmin(admin.ModelAdmin):
    list_display = ["name", "meal", "quantity", "unit", "grams", "calories", "estimated"]
    search_fields = ["name"]
    raw_id_fields = ["meal"]
