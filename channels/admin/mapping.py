"""Admin for attribute mappings, the schema drift list (with "map…" links that open a
prefilled mapping form) and a shadow channel's diff against the store's live values."""
from __future__ import annotations

from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from ..models import AttributeMapping, Channel, UnmappedAttribute
from ..services.live_values import ReadFailed, ReadThrottled, can_read_back
from ..services.mapping import MappingInvalid, mapping_save, mapping_validate
from ..services.shadow import shadow_diff

SHADOW_DIFF_SKUS = 50


class AttributeMappingForm(forms.ModelForm):
    class Meta:
        model = AttributeMapping
        fields = ["channel", "pim_attribute", "target", "target_type", "product_type", "enabled"]

    def clean(self):
        data = super().clean()
        channel = data.get("channel")
        if channel is not None:
            errors = mapping_validate(
                channel.kind, data.get("target") or "", target_type=data.get("target_type") or "",
                product_type=data.get("product_type") or "",
            )
            for name, problems in errors.items():
                for problem in problems:
                    self.add_error(name, problem)
        return data


@admin.register(AttributeMapping)
class AttributeMappingAdmin(admin.ModelAdmin):
    form = AttributeMappingForm
    list_display = ("channel", "pim_attribute", "target", "target_type", "product_type", "enabled", "updated_at")
    list_filter = ("channel", "enabled")
    search_fields = ("pim_attribute", "target")

    def get_changeform_initial_data(self, request):
        # "map…" from the drift list: `?channel=<id>&pim_attribute=<name>`.
        return {key: request.GET[key] for key in ("channel", "pim_attribute") if key in request.GET}

    def save_model(self, request, obj, form, change):
        """Through the service: the same validation as the API, and the drift it resolves."""
        values = {name: form.cleaned_data.get(name) for name in ("pim_attribute", "target", "target_type",
                                                                 "product_type", "enabled")}
        try:
            mapping_save(channel=form.cleaned_data["channel"], mapping=obj, **values)
        except MappingInvalid as invalid:  # a race with another edit (the form checked the rest)
            messages.error(request, str(invalid))

    def get_urls(self):
        return [
            path("shadow-diff/<int:channel_id>/", self.admin_site.admin_view(self.shadow_diff_view),
                 name="channels_shadow_diff"),
            *super().get_urls(),
        ]

    def shadow_diff_view(self, request, channel_id: int):
        """The first SKUs (or `?sku=`) of the catalog: would send, live, differs."""
        channel = get_object_or_404(Channel, pk=channel_id)
        rows, error = [], ""
        skus = [s.strip() for s in request.GET.get("sku", "").split(",") if s.strip()]
        if not can_read_back(channel):
            error = f"a {channel.kind} channel cannot be read back"
        else:
            from inventory.models import Variant

            wanted = skus or list(Variant.objects.order_by("sku").values_list("sku", flat=True)[:SHADOW_DIFF_SKUS])
            try:
                rows = shadow_diff(channel=channel, skus=wanted)
            except (ReadThrottled, ReadFailed) as failed:
                error = f"the channel cannot be read now: {failed}"
        context = {**self.admin_site.each_context(request), "title": f"Shadow diff: {channel.name}",
                   "channel": channel, "rows": rows, "error": error, "skus": ",".join(skus)}
        return TemplateResponse(request, "admin/channels/shadow_diff.html", context)


@admin.register(UnmappedAttribute)
class UnmappedAttributeAdmin(admin.ModelAdmin):
    list_display = ("attribute", "channel", "example_sku", "count", "first_seen_at", "last_seen_at", "resolved_at",
                    "map_link")
    list_filter = ("channel", ("resolved_at", admin.EmptyFieldListFilter))
    search_fields = ("attribute", "example_sku")
    readonly_fields = ("channel", "attribute", "first_seen_at", "last_seen_at", "example_sku", "count", "resolved_at",
                       "resolution")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="map")
    def map_link(self, row: UnmappedAttribute):
        if row.resolved_at is not None:
            return row.resolution
        url = reverse("admin:channels_attributemapping_add") + "?" + urlencode(
            {"channel": row.channel_id, "pim_attribute": row.attribute})
        return format_html('<a href="{}">map…</a>', url)

    def changelist_view(self, request, extra_context=None):
        # Open ones by default: the list is what needs a person.
        if "resolved_at__isempty" not in request.GET and not request.GET.get("_changelist_filters") and not request.GET:
            return HttpResponseRedirect(request.path + "?resolved_at__isempty=1")
        return super().changelist_view(request, extra_context)
