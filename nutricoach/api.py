"""The JSON API root: authentication, routers and the one error shape.

Every error response, 4xx or 5xx, has the body
    {"error": {"code": "...", "message": "...", "details": [...]}}
where `details` lists {"field", "message"} pairs for invalid input.
"""

import logging
from datetime import timedelta

from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import Http404
from django.utils import timezone
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.security import HttpBearer, SessionAuth

from accounts.models import ApiToken, hash_token

logger = logging.getLogger(__name__)

# Writing last_used_at on every request would turn each read into a write.
TOKEN_TOUCH_INTERVAL = timedelta(minutes=5)


class BearerToken(HttpBearer):
    """Authenticate API clients by `Authorization: Bearer <token>`."""

    def authenticate(self, request, token):
        # A request that sends a bearer token is a token client: an invalid token must get
        # 401, not fall through to session authentication and fail its CSRF check with 403.
        if not token or len(token) > 200:
            raise AuthenticationError()
        api_token = ApiToken.objects.active().select_related("user").filter(key_hash=hash_token(token)).first()
        if api_token is None:
            raise AuthenticationError()
        now = timezone.now()
        if api_token.last_used_at is None or now - api_token.last_used_at > TOKEN_TOUCH_INTERVAL:
            ApiToken.objects.filter(pk=api_token.pk).update(last_used_at=now)
        request.user = api_token.user
        return api_token.user


class BrowserSession(SessionAuth):
    """Authenticate logged-in browsers by session cookie, checking their CSRF token.

    A request without a logged-in session gets 401 like any unauthenticated request,
    because Ninja's session check would otherwise fail its CSRF check first and return 403.
    """

    def __call__(self, request):
        if not request.user.is_authenticated:
            return None
        return super().__call__(request)


api = NinjaAPI(
    title="NutriCoach API",
    version="1.0",
    description="Meal parsing, goals, daily summaries and job status. Authenticate with a bearer token "
    "(`Authorization: Bearer nc_...`) or a browser session with its CSRF token.",
    auth=[BearerToken(), BrowserSession()],
    urls_namespace="api",
)


def error_response(request, status, code, message, details=None):
    return api.create_response(
        request, {"error": {"code": code, "message": message, "details": details or []}}, status=status
    )


def _field_name(location):
    # Ninja reports locations such as ("body", "payload", "description"); clients want the field.
    parts = [str(part) for part in location if part not in ("body", "payload", "query", "path")]
    return ".".join(parts) or "body"


def _plain_message(message):
    # Pydantic prefixes the messages of custom validators with "Value error, ".
    return message.removeprefix("Value error, ")


@api.exception_handler(ValidationError)
def on_validation_error(request, exc):
    details = [
        {"field": _field_name(error.get("loc", ())), "message": _plain_message(error.get("msg", "invalid"))}
        for error in exc.errors
    ]
    summary = "; ".join(f"{detail['field']}: {detail['message']}" for detail in details)
    return error_response(request, 422, "invalid_input", f"Invalid input: {summary}", details)


@api.exception_handler(AuthenticationError)
def on_authentication_error(request, exc):
    return error_response(
        request, 401, "not_authenticated",
        "Authentication required: send 'Authorization: Bearer <token>' or log in.",
    )


@api.exception_handler(Http404)
def on_not_found(request, exc):
    return error_response(request, 404, "not_found", str(exc) or "Not found.")


@api.exception_handler(HttpError)
def on_http_error(request, exc):
    codes = {400: "bad_request", 403: "forbidden", 404: "not_found", 405: "method_not_allowed", 409: "conflict"}
    return error_response(request, exc.status_code, codes.get(exc.status_code, "error"), str(exc))


@api.exception_handler(DatabaseError)
def on_database_error(request, exc):
    if isinstance(exc, (OperationalError, InterfaceError)):
        logger.warning("database unavailable for %s %s: %s", request.method, request.path, exc)
        return error_response(request, 503, "service_unavailable", "The database is unavailable; retry shortly.")
    logger.exception("database error for %s %s", request.method, request.path)
    return error_response(request, 500, "server_error", "Internal server error.")


@api.exception_handler(Exception)
def on_unexpected_error(request, exc):
    logger.exception("unhandled error for %s %s", request.method, request.path)
    return error_response(request, 500, "server_error", "Internal server error.")


api.add_router("/meals", "meals.api.router")
api.add_router("/jobs", "nutricoach.jobs.api.router")
api.add_router("/queues", "nutricoach.jobs.api.queues_router")
api.add_router("/", "summaries.api.router")
