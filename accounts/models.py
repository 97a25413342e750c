import hashlib
import secrets
import zoneinfo

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone


def validate_time_zone(value):
    """Raise ValidationError unless value is an IANA time zone name."""
    if value not in zoneinfo.available_timezones():
        raise ValidationError(
            "%(value)s is not an IANA time zone name; use one such as Europe/Berlin.",
            params={"value": value},
        )


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email, password, **fields):
        if not email:
            raise ValueError("An email address is required to create a user.")
        user = self.model(email=self.normalize_email(email).lower(), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **fields):
        fields.setdefault("is_staff", False)
        fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **fields)

    def create_superuser(self, email, password=None, **fields):
        fields.setdefault("is_staff", True)
        fields.setdefault("is_superuser", True)
        fields.setdefault("email_verified", True)
        return self._create_user(email, password, **fields)


class EnergyUnit(models.TextChoices):
    KCAL = "kcal", "kilocalories"
    KJ = "kj", "kilojoules"


class User(AbstractBaseUser, PermissionsMixin):
    """A NutriCoach account, logged in by email address."""

    email = models.EmailField(unique=True)
    full_name = models.CharField(max_length=150, blank=True)
    # Indexed because the hourly summary runs select users by zone.
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone], db_index=True)
    email_verified = models.BooleanField(default=False)
    energy_unit = models.CharField(max_length=8, choices=EnergyUnit.choices, default=EnergyUnit.KCAL)
    notify_goal_alerts = models.BooleanField("email goal alerts", default=True)
    notify_goal_reminders = models.BooleanField("email goal reminders", default=True)
    notify_weekly_reports = models.BooleanField("email weekly reports", default=True)
    notify_operations_alerts = models.BooleanField(
        "email operations alerts", default=True, help_text="Staff only: queue health alerts."
    )
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = []

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return self.email

    @property
    def zone(self):
        return zoneinfo.ZoneInfo(self.time_zone)

    def wants_notification(self, kind):
        """Return whether the user has left emails of this notification kind on."""
        field = {
            "goal_alert": "notify_goal_alerts",
            "goal_reminder": "notify_goal_reminders",
            "weekly_report": "notify_weekly_reports",
            "operations_alert": "notify_operations_alerts",
        }[kind]
        return getattr(self, field)


TOKEN_PREFIX = "nc_"


def hash_token(raw):
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiTokenQuerySet(models.QuerySet):
    def active(self):
        return self.filter(revoked_at__isnull=True, user__is_active=True)


class ApiToken(models.Model):
    """A bearer token for API clients, stored as its SHA-256 hash.

    Tokens carry 256 bits of randomness, so a fast hash is enough: there is nothing to
    guess, and the lookup stays one indexed query per request.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, default="API token")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    key_hint = models.CharField(max_length=12, editable=False, help_text="The first characters of the token.")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.name} ({self.key_hint}…) for {self.user}"

    @classmethod
    def issue(cls, *, user, name="API token"):
        """Create a token for user and return (token, raw key); the raw key is shown once."""
        raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token = cls.objects.create(user=user, name=name, key_hash=hash_token(raw), key_hint=raw[:8])
        return token, raw
