"""OpenAPI post-processing: the error answers every operation can give, documented once.

drf-spectacular documents only the success of each operation; the API also answers, in the
shape `{"detail", "errors"}` (syncsvc.errors): 400 for bad input (body, query or path), 401
without a valid token, 403 for a token whose role may not do it, 404 for a path naming no
row, 415 for a body that is not JSON. Views add their own (409, ...) with `extend_schema`.
"""
from __future__ import annotations

from rest_framework import serializers


class Error(serializers.Serializer):
    """Every error answer (syncsvc.errors): for a view's own codes, `responses={409: Error}`."""

    detail = serializers.CharField()
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))


ERROR = {
    "type": "object",
    "properties": {
        "detail": {"type": "string"},
        "errors": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
    },
    "required": ["detail", "errors"],
}
_REF = {"$ref": "#/components/schemas/Error"}
_DESCRIPTIONS = {
    "400": "Bad input, naming each field",
    "401": "No token, or not a valid one",
    "403": "The token's role may not do this",
    "404": "No such row",
    "415": "The body is not JSON",
}
_METHODS = ("get", "post", "put", "patch", "delete")


def _answers(path: str, method: str, operation: dict) -> list[str]:
    codes = []
    if operation.get("parameters") or "requestBody" in operation:
        codes.append("400")
    if {} not in operation.get("security", []):  # `[{}]`: a public operation
        codes += ["401", "403"]
    if "{" in path:
        codes.append("404")
    if "requestBody" in operation:
        codes.append("415")
    return codes


def error_responses(result, generator, request, public):
    """POSTPROCESSING_HOOKS entry: add the error answers and their schema to every operation."""
    result.setdefault("components", {}).setdefault("schemas", {}).setdefault("Error", ERROR)
    for path, item in result.get("paths", {}).items():
        for method in _METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            for code in _answers(path, method, operation):
                responses.setdefault(code, {"description": _DESCRIPTIONS[code],
                                            "content": {"application/json": {"schema": _REF}}})
    return result
