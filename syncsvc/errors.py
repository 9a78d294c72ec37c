"""Every API error has the shape `{"detail": "...", "errors": {"field": ["..."]}}`.

Field paths name the row of a list body: `[3].price`.
"""
from __future__ import annotations

from rest_framework import status as http
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from inventory.errors import BulkRowsError, InventoryError


def _flatten(errors, prefix: str = "") -> dict[str, list[str]]:
    flat: dict[str, list[str]] = {}
    if isinstance(errors, dict):
        for key, value in errors.items():
            if isinstance(key, int):  # a row of a list body
                path = f"{prefix}[{key}]"
            elif key == "non_field_errors":
                path = prefix or key
            else:
                path = f"{prefix}.{key}" if prefix else str(key)
            flat.update(_flatten(value, path))
    elif isinstance(errors, list) and errors and all(isinstance(e, (dict, list)) for e in errors):
        for index, value in enumerate(errors):
            if value:
                flat.update(_flatten(value, f"{prefix}[{index}]"))
    else:
        messages = errors if isinstance(errors, list) else [errors]
        flat[prefix or "non_field_errors"] = [str(m) for m in messages]
    return flat


def _summary(errors: dict[str, list[str]]) -> str:
    first = next(iter(errors.items()), None)
    if first is None:
        return "Invalid input."
    field, messages = first
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{field}: {messages[0]}{more}"


def exception_handler(exc, context):
    if isinstance(exc, BulkRowsError):
        errors = {f"[{index}].{field}": [message] for index, row in exc.rows.items() for field, message in row.items()}
        return Response({"detail": f"{exc.message}. {_summary(errors)}", "errors": errors}, status=http.HTTP_400_BAD_REQUEST)
    if isinstance(exc, InventoryError):
        errors = {exc.field: [exc.message]} if exc.field else {}
        return Response({"detail": exc.message, "errors": errors}, status=exc.status)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, ValidationError):
        errors = _flatten(response.data)
        response.data = {"detail": _summary(errors), "errors": errors}
    elif isinstance(response.data, dict) and "detail" in response.data:
        response.data = {"detail": str(response.data["detail"]), "errors": {}}
    return response


def not_found(request, exception=None):
    """handler404: a path no URL matches (an id that is not a number, ...). Under the API it is
    JSON in the error shape like every other answer there; elsewhere Django's own page."""
    from django.http import JsonResponse
    from django.views.defaults import page_not_found

    if request.path.startswith(("/api/", "/webhooks/")):
        return JsonResponse({"detail": "Not found.", "errors": {}}, status=http.HTTP_404_NOT_FOUND)
    return page_not_found(request, exception)
