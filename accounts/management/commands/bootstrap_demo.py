import json
import secrets

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import ApiToken, User

STAFF_EMAIL = "staff@nutricoach.localhost"
USER_EMAIL = "demo@nutricoach.localhost"


class Command(BaseCommand):
    help = (
        "Create a demo staff account and a demo user with an API token, once, and print their "
        "credentials. The credentials are kept in the data folder so later runs print the same ones."
    )

    def handle(self, *args, **options):
        path = settings.DATA_DIR / "demo-credentials.json"
        try:
            saved = json.loads(path.read_text()) if path.exists() else {}
        except ValueError as exc:
            raise CommandError(
                f"{path} is not valid JSON ({exc}); delete it to create new demo credentials."
            ) from None
        if not isinstance(saved, dict):
            raise CommandError(f"{path} does not contain a JSON object; delete it to create new demo credentials.")

        with transaction.atomic():
            staff_password = self._ensure_user(STAFF_EMAIL, saved.get("staff_password"), is_staff=True)
            user_password = self._ensure_user(USER_EMAIL, saved.get("user_password"), is_staff=False)
            token = saved.get("token")
            user = User.objects.get(email=USER_EMAIL)
            if not token or not ApiToken.objects.active().filter(user=user, key_hint=token[:8]).exists():
                _, token = ApiToken.issue(user=user, name="demo token")

        saved = {"staff_password": staff_password, "user_password": user_password, "token": token}
        path.write_text(json.dumps(saved))
        path.chmod(0o600)
        self.stdout.write(
            "\nDemo accounts (kept in %s):\n"
            "  staff (admin): %s / %s\n"
            "  user:          %s / %s\n"
            "  user API token: %s\n" % (path, STAFF_EMAIL, staff_password, USER_EMAIL, user_password, token)
        )

    def _ensure_user(self, email, password, *, is_staff):
        user = User.objects.filter(email=email).first()
        if user is not None and password and user.check_password(password):
            return password
        password = secrets.token_urlsafe(12)
        if user is None:
            user = User(email=email, time_zone="Europe/Berlin", email_verified=True)
        user.is_staff = is_staff
        user.is_superuser = is_staff
        user.set_password(password)
        user.save()
        return password
