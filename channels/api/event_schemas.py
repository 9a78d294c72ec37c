"""The published event contracts: `GET /api/v1/event-schemas/` and
`GET /api/v1/event-schemas/{type}/{version}/` (the JSON Schema, `application/schema+json`).

Public: subscribers (a search index, a CMS) fetch them to validate what they receive, with or
without a syncsvc token, so these views ignore authentication altogether (a stale token
must not lock a subscriber out of a public document).
"""
from __future__ import annotations

import json

from django.http import HttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from ..contracts.catalog import UnknownSchema, event_schema, event_types

SCHEMA_MEDIA_TYPE = "application/schema+json"


class EventSchemaListView(APIView):
    authentication_classes = ()
    permission_classes = (AllowAny,)

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request):
        """Every event type syncsvc emits, with its published versions and the latest."""
        results = [
            {
                "type": known.name,
                "versions": list(known.versions),
                "latest": known.latest,
                "deprecated": list(known.deprecated),
                "description": known.description,
                "schemas": {
                    str(version): request.build_absolute_uri(reverse("event-schema", args=[known.name, version]))
                    for version in known.versions
                },
            }
            for known in sorted(event_types().values(), key=lambda known: known.name)
        ]
        return Response({"count": len(results), "next": None, "previous": None, "results": results})


class EventSchemaView(APIView):
    authentication_classes = ()
    permission_classes = (AllowAny,)

    @extend_schema(responses={(200, SCHEMA_MEDIA_TYPE): OpenApiTypes.OBJECT})
    def get(self, request, event_type: str, version: str):
        """The JSON Schema (draft 2020-12) of one event type at one version."""
        number = version.removeprefix("v")
        if not (number.isascii() and number.isdigit()) or len(number) > 9:
            raise NotFound(f"version must be a number like 2, got {version!r}")
        try:
            schema = event_schema(event_type, int(number))
        except UnknownSchema as error:
            raise NotFound(str(error)) from None
        return HttpResponse(json.dumps(schema, indent=2).encode(), content_type=SCHEMA_MEDIA_TYPE)
