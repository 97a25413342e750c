from django.core.management.base import BaseCommand, CommandError

from accounts.models import ApiToken, User


class Command(BaseCommand):
    help = "Issue an API token for an existing user and print only the token."

    def add_arguments(self, parser):
        parser.add_argument("email", help="Email address of the user the token is for.")
        parser.add_argument("--name", default="API token", help="A label for the token, shown in admin.")

    def handle(self, *args, email, name, **options):
        max_length = ApiToken._meta.get_field("name").max_length
        if len(name) > max_length:
            raise CommandError(
                f"--name is {len(name)} characters long; the maximum is {max_length}. Pass a shorter --name."
            )
        user = User.objects.filter(email__iexact=email.strip()).first()
        if user is None:
            raise CommandError(f"No user with email {email!r}; create the user first (manage.py createsuperuser).")
        if not user.is_active:
            raise CommandError(f"User {email!r} is inactive; activate it in admin before issuing a token.")
        _, raw = ApiToken.issue(user=user, name=name)
        self.stdout.write(raw)
