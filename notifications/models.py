from django.conf import settings
from django.db import models


class NotificationKind(models.TextChoices):
    GOAL_ALERT = "goal_alert", "goal alert"
    GOAL_REMINDER = "goal_reminder", "goal reminder"
    WEEKLY_REPORT = "weekly_report", "weekly report"
    OPERATIONS_ALERT = "operations_alert", "operations alert"


class Channel(models.TextChoices):
    EMAIL = "email", "email"


class DeliveryStatus(models.TextChoices):
    SENDING = "sending", "sending"
    SENT = "sent", "sent"
    FAILED = "failed", "failed"
    UNKNOWN = "unknown", "outcome unknown"
    SKIPPED = "skipped", "skipped"


class NotificationLog(models.Model):
    """One notification per (user, kind, period), claimed before it is sent.

    The unique constraint is what makes a second delivery of the same job send nothing.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=32, choices=NotificationKind.choices)
    channel = models.CharField(max_length=16, choices=Channel.choices, default=Channel.EMAIL)
    period_key = models.CharField(max_length=64, help_text="The date, ISO week or hour the notification is for.")
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.SENDING)
    subject = models.CharField(max_length=255, blank=True)
    recipient = models.EmailField(blank=True)
    error = models.TextField(blank=True)
    data = models.JSONField(
        default=dict, blank=True, help_text="The facts the message was rendered from, kept for a resend."
    )
    attempts = models.PositiveIntegerField(default=0)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "kind", "period_key"], name="notificationlog_unique_period"),
        ]

    def __str__(self):
        return f"{self.kind} {self.period_key} for {self.user}: {self.status}"
