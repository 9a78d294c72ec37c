"""GET /api/v1/changes/{id}/trace/: one change, hop by hop, per channel."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from ..trace import change_trace


class ChangeTraceView(APIView):
    @extend_schema(responses={200: dict})
    def get(self, request, change_id: str):
        """Per channel that takes the change's aspect: the attempts that carried it (from the
        first after the change to the first success, retries between), each hop's timestamp
        (committed, enqueued, started, acknowledged, verified) and the durations between them,
        the outcome (delivered, pending, failed, not owed) and whether it was coalesced."""
        if not (change_id.isascii() and change_id.isdigit()) or len(change_id) > 18:
            raise ValidationError({"id": ["A change id is a positive integer."]})
        trace = change_trace(change_id=int(change_id))
        if trace is None:
            raise NotFound(f"No change {change_id} (unknown, or pruned by retention).")
        return Response(trace)
