from django.http import JsonResponse
from django.shortcuts import render
from django.views.defaults import page_not_found
from django.views.defaults import server_error as html_server_error


def _error_json(status, code, message):
    return JsonResponse({"error": {"code": code, "message": message, "details": []}}, status=status)


def not_found(request, exception=None):
    """Return the API's error shape for API paths and the HTML page for other paths."""
    if request.path.startswith("/api/"):
        return _error_json(404, "not_found", f"No API endpoint at {request.path}; see /api/docs.")
    return page_not_found(request, exception)


def server_error(request):
    if request.path.startswith("/api/"):
        return _error_json(500, "server_error", "Internal server error.")
    return html_server_error(request)


def home(request):
    return render(request, "home.html")
