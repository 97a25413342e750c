"""Mark daily summaries stale when a meal that counts towards them changes.

Meal.save() and Meal.delete() send these signals; queryset updates and bulk inserts
do not, so code that writes meals that way calls services.summaries_mark_stale itself.
"""

from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver

from meals.models import Meal
from nutricoach.nutrients import NUTRIENTS
from summaries import services

# The meal fields a daily summary depends on.
# Archived meals still count: a summary is the record of its day, and archiving only
# moves old meals out of the default lists.
TRACKED_FIELDS = ("owner_id", "local_date", *NUTRIENTS)


def _counted_pair(values):
    """Return the (user_id, local_date) a meal counts towards."""
    return (values["owner_id"], values["local_date"])


@receiver(pre_save, sender=Meal, dispatch_uid="summaries.meal_pre_save")
def remember_meal_before_save(sender, instance, raw, update_fields, **kwargs):
    instance._summary_fields_before = None
    if raw or instance._state.adding or instance.pk is None:
        return
    if update_fields is not None and not {name.removesuffix("_id") for name in TRACKED_FIELDS} & {
        name.removesuffix("_id") for name in update_fields
    }:
        return
    instance._summary_fields_before = Meal.objects.filter(pk=instance.pk).values(*TRACKED_FIELDS).first()


@receiver(post_save, sender=Meal, dispatch_uid="summaries.meal_post_save")
def mark_summaries_after_meal_save(sender, instance, created, raw, update_fields, **kwargs):
    if raw:
        return
    before = getattr(instance, "_summary_fields_before", None)
    instance._summary_fields_before = None
    after = {name: getattr(instance, name) for name in TRACKED_FIELDS}
    if not created and before is None:
        # Either no tracked field was saved, or the row was inserted by a save() with an
        # explicit primary key: only the second case changes a summary.
        if update_fields is not None:
            return
    elif before == after:
        return

    pairs = {pair for pair in (_counted_pair(before) if before else None, _counted_pair(after)) if pair}
    services.summaries_mark_stale(pairs=pairs)


@receiver(post_delete, sender=Meal, dispatch_uid="summaries.meal_post_delete")
def mark_summaries_after_meal_delete(sender, instance, origin=None, **kwargs):
    # Deleting a user cascades to meals and summaries alike; a stale row written then
    # would point at the user being deleted.
    if origin is not None and not isinstance(origin, Meal) and getattr(origin, "model", None) is not Meal:
        return
    pair = _counted_pair({name: getattr(instance, name) for name in TRACKED_FIELDS})
    if pair:
        services.summaries_mark_stale(pairs=[pair])
