"""Writes on goals and daily summaries."""

import logging

from django.db import transaction
from django.utils import timezone

from summaries.models import Goal

logger = logging.getLogger(__name__)


@transaction.atomic
def goal_create(*, user, calories, protein, carbs, fat, activate=True):
    """Create a goal, making it the active one unless activate is False."""
    goal = Goal.objects.create(user=user, calories=calories, protein=protein, carbs=carbs, fat=fat)
    if activate:
        goal = goal_activate(goal=goal)
    return goal


@transaction.atomic
def goal_activate(*, goal):
    """Make goal the user's only active goal."""
    # Lock the user's goals so two concurrent activations cannot both succeed.
    list(Goal.objects.select_for_update().filter(user_id=goal.user_id))
    Goal.objects.filter(user_id=goal.user_id, is_active=True).exclude(pk=goal.pk).update(is_active=False)
    goal.is_active = True
    goal.activated_at = timezone.now()
    goal.save(update_fields=["is_active", "activated_at"])
    return goal
