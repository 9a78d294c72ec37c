"""The answer to a request a service refused as a whole (`ResyncError`, `RefreshError`: each
has `field`, `message` and `status`)."""
from __future__ import annotations

from rest_framework.exceptions import ValidationError
from rest_framework.response import Response


def refusal_response(error) -> Response:
    """A 400 as DRF's validation error naming the field; any other status with the same body shape."""
    if error.status == 400:
        raise ValidationError({error.field: [error.message]}) from None
    return Response({"detail": error.message, "errors": {error.field: [error.message]}}, status=error.status)
