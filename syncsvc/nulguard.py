"""A NUL character in an API or webhook request's path, query or headers is a 400 before any
view runs: PostgreSQL refuses it in every text column, so a lookup (or a webhook's event id
header stored) with it would be a 500."""
from __future__ import annotations

from django.http import JsonResponse

_GUARDED = ("/api/", "/webhooks/")


class NulGuardMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith(_GUARDED):
            if "\x00" in request.path:
                return _refused("path")
            for name, values in request.GET.lists():
                if "\x00" in name or any("\x00" in value for value in values):
                    return _refused(name.replace("\x00", "\\u0000"))
            for name, value in request.headers.items():
                if "\x00" in value:
                    return _refused(name)
        return self.get_response(request)


def _refused(field: str) -> JsonResponse:
    message = "Null characters are not allowed."
    return JsonResponse({"detail": f"{field}: {message}", "errors": {field: [message]}}, status=400)
