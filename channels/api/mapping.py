"""Attribute mappings and the schema drift they answer, per channel:

- `GET|POST /channels/{id}/attribute-mappings/`, `GET|PATCH|DELETE .../{mapping}/`: an invalid
  mapping is a 400 naming the field (`target`, `target_type`, `product_type`, `pim_attribute`);
- `GET /channels/{id}/unmapped-attributes/?open=true|false`: attributes sent without a mapping.
"""
from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from ..models import AttributeMapping, Channel, UnmappedAttribute
from ..services.mapping import MappingInvalid, mapping_delete, mapping_save

OPS = ("ops",)


class AttributeMappingSerializer(serializers.ModelSerializer):
    class Meta:
        model = AttributeMapping
        fields = ("id", "pim_attribute", "target", "target_type", "product_type", "enabled", "created_at", "updated_at")
        read_only_fields = ("id", "created_at", "updated_at")
        # Uniqueness is the service's to answer (naming the field), not the serializer's.
        validators: list = []


class UnmappedAttributeSerializer(serializers.ModelSerializer):
    class Meta:
        model = UnmappedAttribute
        fields = ("attribute", "first_seen_at", "last_seen_at", "example_sku", "count", "resolved_at", "resolution")


def _saved(channel: Channel, mapping: AttributeMapping | None, values: dict) -> AttributeMapping:
    try:
        return mapping_save(channel=channel, mapping=mapping, **values)
    except MappingInvalid as invalid:
        raise ValidationError(invalid.errors) from None


class AttributeMappingList(generics.ListAPIView):
    write_roles = OPS
    serializer_class = AttributeMappingSerializer

    def get_queryset(self):
        return AttributeMapping.objects.filter(channel_id=self.kwargs["pk"]).order_by("pim_attribute", "product_type")

    def list(self, request, *args, **kwargs):
        get_object_or_404(Channel, pk=kwargs["pk"])
        return super().list(request, *args, **kwargs)

    @extend_schema(request=AttributeMappingSerializer, responses={201: AttributeMappingSerializer})
    def post(self, request, pk):
        """Map a PIM attribute to a channel field; refused (400) when the field is not one the
        channel can take."""
        channel = get_object_or_404(Channel, pk=pk)
        body = AttributeMappingSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        mapping = _saved(channel, None, body.validated_data)
        return Response(AttributeMappingSerializer(mapping).data, status=status.HTTP_201_CREATED)


class AttributeMappingDetail(generics.RetrieveAPIView):
    write_roles = OPS
    serializer_class = AttributeMappingSerializer

    def get_object(self):
        return get_object_or_404(AttributeMapping, pk=self.kwargs["mapping_id"], channel_id=self.kwargs["pk"])

    @extend_schema(request=AttributeMappingSerializer, responses={200: AttributeMappingSerializer})
    def patch(self, request, pk, mapping_id):
        mapping = self.get_object()
        body = AttributeMappingSerializer(mapping, data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        mapping = _saved(mapping.channel, mapping, body.validated_data)
        return Response(AttributeMappingSerializer(mapping).data)

    def delete(self, request, pk, mapping_id):
        mapping_delete(mapping=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class UnmappedAttributeList(generics.ListAPIView):
    serializer_class = UnmappedAttributeSerializer

    def get_queryset(self):
        rows = UnmappedAttribute.objects.filter(channel_id=self.kwargs["pk"]).order_by("attribute")
        wanted = self.request.query_params.get("open", "true").lower()
        if wanted not in ("true", "false", "all"):
            raise ValidationError({"open": ["true, false or all"]})
        if wanted != "all":
            rows = rows.filter(resolved_at__isnull=wanted == "true")
        return rows

    def list(self, request, *args, **kwargs):
        get_object_or_404(Channel, pk=kwargs["pk"])
        return super().list(request, *args, **kwargs)
